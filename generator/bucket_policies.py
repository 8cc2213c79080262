"""What other accounts add to their bucket and key policies so this stack's roles may use their buckets and
KMS keys (``sfncopy policy --env ENV``): pure functions of the env and the deployed roles' ARNs.

A request across accounts is allowed only when the caller's identity policy allows it and the resource's
own policy names the caller (IAM user guide, "Cross-account policy evaluation logic"). The identity side is
the stack's roles (generator/policies.py); the resource side is derived here from the very same documents,
so the two cannot drift: for every source and target bucket, each role's S3 statements cut down to that
bucket's resources, with the same actions, the same prefix scoping and the same conditions (s3:prefix on
ListBucket, s3:x-amz-acl on PutObjectAcl), and the role as the principal.

KMS: a key in another account needs the same two sides (AWS KMS developer guide, "Allowing users in other
accounts to use a KMS key"). A key policy's Resource is "*", which in a key policy means the key the policy
is attached to (AWS KMS developer guide, "Creating a key policy", whose example statement uses "*").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from generator import policy_size
from generator.settings import EnvSettings
from generator.template import FUNCTIONS, function_specs
from lambdas.errors import SfnCopyError

Document = dict[str, Any]
Statement = dict[str, Any]

# KMS actions S3 calls with the caller's rights for SSE-KMS objects (Amazon S3 user guide, "Using
# server-side encryption with AWS KMS keys (SSE-KMS)", "Permissions": kms:GenerateDataKey to write an object
# encrypted with the key, kms:Decrypt to read one; "Multipart upload API and permissions": a multipart
# upload with a KMS key needs kms:Decrypt too, as S3 reads the encrypted parts to assemble them). S3 does not
# call kms:Encrypt for SSE-KMS: the data key comes from GenerateDataKey, so no role is granted Encrypt.
# Whether a key protects a source or a target is not in the env, so each role gets what it needs for both:
# the planner starts split uploads (writes), the worker reads sources and writes targets (whole and
# multipart), the finalizer completes uploads (kms:Decrypt). Cleanup only aborts: no key use.
KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    "Planner": ("kms:Decrypt", "kms:GenerateDataKey"),
    "Worker": ("kms:Decrypt", "kms:GenerateDataKey"),
    "Finalizer": ("kms:Decrypt",),
}
# planning=sharded: the assembler starts split uploads as the planner does; prepare and the shards read
# manifests of keys (inventory files) that may be encrypted.
SHARDED_KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    "PlanPrepare": ("kms:Decrypt",),
    "PlanShard": ("kms:Decrypt",),
    "PlanAssemble": ("kms:Decrypt", "kms:GenerateDataKey"),
}
ROLE_SUFFIX = "Role"  # the template's role of function "<Logical>" is "<Logical>Role"


class RoleArnsError(SfnCopyError):
    """The deployed stack's role ARNs do not cover every role this env's template has."""


def role_logical_ids(settings: EnvSettings | None = None) -> list[str]:
    """The logical ids of the roles whose statements other accounts must allow, in template order (the
    env's: sharded planning has four more; without an env, those of every stack)."""
    return [spec.logical + ROLE_SUFFIX for spec in (FUNCTIONS if settings is None else function_specs(settings))]


def policy_documents(settings: EnvSettings, role_arns: Mapping[str, str]) -> dict[str, Any]:
    """``{"bucket_policies": {bucket: document}, "key_policies": {key ARN: document}}``: for each source and
    target bucket and each KMS key of the env, the statements its owner adds to the bucket or key policy.
    ``role_arns`` maps the roles' logical ids ("WorkerRole") to the deployed ARNs."""
    missing = [logical for logical in role_logical_ids(settings) if logical not in role_arns]
    if missing:
        raise RoleArnsError(f"the deployed stack has no {', '.join(missing)}: redeploy it (sfncopy deploy)")
    return {"bucket_policies": bucket_policies(settings, role_arns), "key_policies": key_policies(settings, role_arns)}


def bucket_policies(settings: EnvSettings, role_arns: Mapping[str, str]) -> dict[str, Document]:
    """bucket -> a policy document of every statement the stack's roles need on it (sorted by bucket)."""
    partition = partition_of(next(iter(role_arns.values())))
    buckets = sorted({scope.bucket for scope in (*settings.source_buckets, *settings.target_buckets)})
    prefix = sid_prefix(settings)
    documents: dict[str, Document] = {}
    for bucket in buckets:
        statements: list[Statement] = []
        for spec in function_specs(settings):
            principal = role_arns[spec.logical + ROLE_SUFFIX]
            role_document = spec.policy(settings, spec.function_name(settings))
            for statement in role_document["Statement"]:
                cut = for_bucket(statement, bucket, partition)
                if cut is not None:
                    statements.append({"Sid": f"{prefix}{spec.logical}{statement['Sid']}",
                                       "Principal": {"AWS": principal}, **cut})
        documents[bucket] = {"Version": "2012-10-17", "Statement": statements}
    return documents


def key_policies(settings: EnvSettings, role_arns: Mapping[str, str]) -> dict[str, Document]:
    """key ARN -> a policy document of the statements that let the stack's roles use the key for S3."""
    prefix = sid_prefix(settings)
    statements = [{"Sid": f"{prefix}{logical}UseKeyForS3", "Effect": "Allow",
                   "Principal": {"AWS": role_arns[logical + ROLE_SUFFIX]}, "Action": list(actions), "Resource": "*"}
                  for logical, actions in key_actions(settings).items()]
    return {key: {"Version": "2012-10-17", "Statement": statements} for key in settings.kms_key_arns}


def key_actions(settings: EnvSettings) -> dict[str, tuple[str, ...]]:
    return {**KEY_ACTIONS, **SHARDED_KEY_ACTIONS} if settings.sharded else dict(KEY_ACTIONS)


def for_bucket(statement: Statement, bucket: str, partition: str) -> Statement | None:
    """``statement`` (of a role's identity policy) cut down to ``bucket``'s resources, without its Sid; None
    when it grants nothing there (another bucket, or not S3)."""
    actions: Sequence[str] = statement["Action"]
    if not all(action.startswith("s3:") for action in actions):
        return None
    arn = f"arn:{partition}:s3:::{bucket}"
    resources = [resource for resource in (_resolve(r, partition) for r in statement["Resource"])
                 if resource == arn or resource.startswith(arn + "/")]
    if not resources:
        return None
    cut: Statement = {"Effect": statement["Effect"], "Action": list(actions), "Resource": resources}
    if "Condition" in statement:
        cut["Condition"] = statement["Condition"]
    return cut


def _resolve(resource: Any, partition: str) -> str:
    """A resource of our documents as an ARN ("" for one that is not a bucket of the env: the manifest
    bucket the stack creates, whose ARN only the stack knows)."""
    try:
        return str(policy_size.resolve(resource, {"AWS::Partition": partition}))
    except policy_size.UnresolvedIntrinsicError:
        return ""


def partition_of(arn: str) -> str:
    """The partition of an ARN ("aws", "aws-cn", "aws-us-gov")."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        raise RoleArnsError(f"{arn!r} is not an ARN")
    return parts[1]


def sid_prefix(settings: EnvSettings) -> str:
    """Sids start with the stack's name ("sfncopy-dev" -> "SfncopyDev"), so statements for two stacks can
    sit in one policy (Sids are letters and digits)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", settings.stack_name) if part)
