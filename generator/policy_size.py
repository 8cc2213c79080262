"""A policy document's size as IAM counts it, with CloudFormation's intrinsics at their longest values.

IAM limits the policies of a role (IAM and AWS STS quotas, "IAM and STS character limits" and "IAM object
quotas": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
- the inline policies of one role: 10,240 characters in all (the aggregate of all of them);
- one managed policy: 6,144 characters;
- "IAM does not count white space when calculating the size of a policy against these limits";
- managed policies attached to one role: 10 by default (an adjustable quota).
A role past a limit makes CloudFormation fail mid-deployment (IAM answers LimitExceeded), so the generator
fits each role's statements first: they stay in the role's inline policy while they fit, and the rest go, in
order, into managed policies attached to the role; an env that needs more than the default quota of managed
policies is refused, naming the role, the size and the settings to change.

The template's documents hold ``Fn::Sub`` / ``Fn::GetAtt`` / ``Ref`` expressions whose values CloudFormation
knows only at deployment: each is counted at the longest value it can take.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator.policies import MANIFEST_BUCKET_RESOURCE, Document, Statement
from generator.settings import EnvSettings, EnvSettingsError

MAX_ROLE_INLINE_POLICIES_SIZE = 10_240  # all inline policies of one role together (IAM quotas page above)
MAX_MANAGED_POLICY_SIZE = 6_144  # one managed policy (IAM quotas page above)
# "Managed policies attached to an IAM role: 10" by default, raisable through Service Quotas (IAM quotas page
# above, "IAM object quotas"; AWS Knowledge Center "iam-increase-policy-size"). We stay within the default.
MAX_MANAGED_POLICIES_PER_ROLE = 10

# --- the longest value of each intrinsic (each with its reason) ---------------------------------------------
# ${AWS::Partition}: the template does not pin its partition. The partitions botocore 1.44 knows
# (botocore/data/partitions.json) are aws, aws-cn, aws-eusc, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
# aws-us-gov: the last is the longest.
LONGEST_PARTITION = "aws-us-gov"
# ${AWS::AccountId}: an account ID is always exactly 12 digits (e.g. the Organizations API reference,
# DescribeAccount: "The regex pattern for an account ID string requires exactly 12 digits").
LONGEST_ACCOUNT_ID = "123456789012"
# ${ManifestBucket.Arn}: the stack creates the manifest bucket without a name, so CloudFormation generates one
# (AWS::S3::Bucket, BucketName: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
# aws-resource-s3-bucket.html). Its form is not documented there, so count the most S3 allows: bucket names
# are at most 63 characters (Amazon S3 User Guide, bucket naming rules; settings.BUCKET).
LONGEST_BUCKET_NAME = "b" * 63
# ${AWS::Region}: the env's own region (sfncopy.deploy's clients, and so the stack, use settings.region);
# function names: the env's (FunctionName is set, "<stack_name>-<suffix>"), so neither needs a guess.

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class UnresolvedIntrinsicError(ValueError):
    """A document holds an intrinsic this module has no value for: add one to ``deployment_values``."""


def deployment_values(*, partition: str, region: str, account_id: str, manifest_bucket: str,
                      functions: Mapping[str, str]) -> dict[str, str]:
    """The value of every intrinsic our documents use, keyed as ``Fn::Sub`` names them ("AWS::Region",
    "ManifestBucket.Arn", "PlannerFunction.Arn"; a bare logical ID is its ``Ref``). ``functions`` maps each
    function's logical ID to its FunctionName."""
    values = {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        MANIFEST_BUCKET_RESOURCE: manifest_bucket,
        f"{MANIFEST_BUCKET_RESOURCE}.Arn": f"arn:{partition}:s3:::{manifest_bucket}",
    }
    for logical, name in sorted(functions.items()):
        values[logical] = name
        values[f"{logical}.Arn"] = f"arn:{partition}:lambda:{region}:{account_id}:function:{name}"
    return values


def longest_values(region: str, functions: Mapping[str, str]) -> dict[str, str]:
    """``deployment_values`` at their longest (the constants above) for a stack in ``region``."""
    return deployment_values(partition=LONGEST_PARTITION, region=region, account_id=LONGEST_ACCOUNT_ID,
                             manifest_bucket=LONGEST_BUCKET_NAME, functions=functions)


def resolve(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with every ``Fn::Sub``, ``Fn::GetAtt`` and ``Ref`` replaced from ``values`` (plain JSON out)."""
    if isinstance(value, list):
        return [resolve(item, values) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::Sub":
            return _substitute(argument, values)
        if key == "Fn::GetAtt":
            name = argument if isinstance(argument, str) else ".".join(argument)
            return _lookup(name, values, key)
        if key == "Ref":
            return _lookup(str(argument), values, key)
        if key.startswith("Fn::"):
            raise UnresolvedIntrinsicError(f"{key} is not supported here (only Fn::Sub, Fn::GetAtt and Ref)")
    return {key: resolve(item, values) for key, item in value.items()}


def _substitute(argument: Any, values: Mapping[str, str]) -> str:
    if isinstance(argument, list):  # [body, {name: value}]: the local names win
        body, local = argument
        values = {**values, **{k: str(resolve(v, values)) for k, v in local.items()}}
    else:
        body = argument

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # "${!Literal}" is written out as "${Literal}"
            return "${" + name[1:] + "}"
        return _lookup(name, values, "Fn::Sub")

    return _SUB_VARIABLE.sub(one, str(body))


def _lookup(name: str, values: Mapping[str, str], intrinsic: str) -> str:
    if name not in values:
        raise UnresolvedIntrinsicError(f"{intrinsic} refers to {name!r}, which has no value here "
                                       f"(known: {', '.join(sorted(values))})")
    return values[name]


def iam_size(document: Mapping[str, Any]) -> int:
    """The characters IAM counts in a plain JSON document: its compact JSON (no white space between tokens).

    Whether IAM also skips white space inside strings is unverified: it is counted here, which can only
    overestimate (and our documents hold none: ARNs, actions and prefixes have no spaces)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def policy_size(document: Mapping[str, Any], values: Mapping[str, str]) -> int:
    """The size IAM counts for ``document`` once its intrinsics take ``values``."""
    return iam_size(resolve(document, values))


# --- fitting a role's statements into its inline policy and managed policies --------------------------------
@dataclass(frozen=True)
class RolePolicies:
    """A role's statements as IAM can hold them: one inline document, then managed ones (maybe none)."""

    inline: Document
    managed: tuple[Document, ...] = ()


def fit_role_policy(settings: EnvSettings, role: str, document: Document, values: Mapping[str, str]) -> RolePolicies:
    """``document``'s statements, in order, in the role's inline policy while they fit and then in managed
    policies of at most ``MAX_MANAGED_POLICY_SIZE`` each; a statement too large for one managed policy is cut
    into parts by its resources. Deterministic: the same document always gives the same documents.

    Raises EnvSettingsError naming the role, its size and the settings to change when even
    ``MAX_MANAGED_POLICIES_PER_ROLE`` managed policies cannot hold it."""
    version = document["Version"]
    empty = iam_size({"Version": version, "Statement": []})
    capacities = (MAX_ROLE_INLINE_POLICIES_SIZE - empty, MAX_MANAGED_POLICY_SIZE - empty)
    statements = [part for statement in document["Statement"]
                  for part in _parts(statement, min(capacities), values)]
    groups: list[list[Statement]] = [[]]
    room = capacities[0]
    for statement in statements:
        size = iam_size(resolve(statement, values))
        if groups[-1] and size + 1 > room:  # 1: the "," before it
            groups.append([])
            room = capacities[1]
        room -= size + (1 if groups[-1] else 0)
        groups[-1].append(statement)
    if len(groups) - 1 > MAX_MANAGED_POLICIES_PER_ROLE:
        size = policy_size(document, values)
        raise EnvSettingsError(settings.path, [
            f"the {role}'s policy would be {size:,} characters as IAM counts them (ARNs at their longest), more "
            f"than the role can hold: {MAX_ROLE_INLINE_POLICIES_SIZE:,} inline plus {MAX_MANAGED_POLICIES_PER_ROLE}"
            f" managed policies of {MAX_MANAGED_POLICY_SIZE:,} (IAM's quotas). It grows with source_buckets "
            f"({len(settings.source_buckets)} entries), target_buckets ({len(settings.target_buckets)}) and "
            f"kms_key_arns ({len(settings.kms_key_arns)}): use fewer bucket/prefix entries, or whole buckets "
            "instead of prefixes (each set of prefixes adds its own ListBucket statement)"])
    inline, *managed = ({"Version": version, "Statement": group} for group in groups)
    return RolePolicies(inline, tuple(managed))


def _parts(statement: Statement, capacity: int, values: Mapping[str, str]) -> list[Statement]:
    """``statement`` itself if it fits ``capacity``, else parts with the same actions and conditions, each
    with a run of its resources (Sid "<Sid>Part<n>": IAM wants a Sid unique within a policy and made of
    letters and digits, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html)."""
    if iam_size(resolve(statement, values)) <= capacity:
        return [statement]
    resources = statement.get("Resource")
    if not isinstance(resources, list) or len(resources) < 2:
        raise ValueError(f"statement {statement.get('Sid', '')!r} alone is larger than a managed policy")
    runs: list[list[Any]] = [[]]
    for resource in resources:
        if runs[-1] and iam_size(resolve(_part(statement, len(runs), [*runs[-1], resource]), values)) > capacity:
            runs.append([])
        runs[-1].append(resource)
    parts = [_part(statement, number, run) for number, run in enumerate(runs, start=1)]
    if any(iam_size(resolve(part, values)) > capacity for part in parts):
        raise ValueError(f"statement {statement.get('Sid', '')!r} has a resource larger than a managed policy")
    return parts


def _part(statement: Statement, number: int, resources: Sequence[Any]) -> Statement:
    part = {**statement, "Resource": list(resources)}
    if "Sid" in statement:
        part["Sid"] = f"{statement['Sid']}Part{number}"
    return part
