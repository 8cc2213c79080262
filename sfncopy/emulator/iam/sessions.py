"""Everything the enforcement reads from (or asks of) moto: role sessions, role policies, bucket owners.

moto keeps what AWS would: STS AssumeRole sessions (``moto.sts.models.sts_backends``, per account and
partition), roles with their inline and attached managed policies (``moto.iam.models.iam_backends``), and
which account made each bucket (``moto.s3.models.s3_backends.bucket_accounts``). This module reads them at
request time, so a policy changed through IAM applies to the next request, as on AWS (apart from IAM's
propagation delay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sfncopy.emulator.iam.policy import Document, PolicyDocumentError, parse_document

# Lambda's execution-role credentials: the emulator does not check expiry, so the length matters little;
# 12 hours is the longest session a role can allow (IAM MaxSessionDuration).
EXECUTION_SESSION_SECONDS = 12 * 3600


class ExecutionRoleError(RuntimeError):
    """A function's execution role cannot be assumed (no role ARN on the function)."""


class DeployedFunction(Protocol):
    """What assuming an execution role reads from moto's ``LambdaFunction``."""

    function_name: str
    role: str
    region: str
    account_id: str


@dataclass(frozen=True)
class RoleSession:
    """An STS AssumeRole session moto issued, found by its access key id."""

    access_key_id: str
    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, the principal named in access-denied messages
    role_arn: str
    session_name: str
    account_id: str
    partition: str
    session_policy: str | None  # the Policy passed to AssumeRole, if any


@dataclass(frozen=True)
class RolePermissions:
    role_id: str  # "AROA...", for aws:userid ("ROLEID:SESSION"); "" when the role does not exist
    policies: tuple[Document, ...]  # inline policies, then the default version of each attached managed one


def assume_execution_role(function: DeployedFunction) -> dict[str, str]:
    """Temporary credentials of the function's execution role, from moto's STS AssumeRole, as Lambda sets them
    in the function's environment: "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN - The access
    keys obtained from the function's execution role" ("Using Lambda environment variables", defined runtime
    environment variables, https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
    The session is named after the function, as CloudTrail shows Lambda's sessions (unverified in the docs).
    """
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    if not function.role:
        raise ExecutionRoleError(f"function {function.function_name} has no execution role")
    backend = sts_backends[function.account_id][get_partition(function.region)]
    session = backend.assume_role(region_name=function.region, role_session_name=function.function_name[:64],
                                  role_arn=function.role, policy="", duration=EXECUTION_SESSION_SECONDS,
                                  external_id="")
    return {"AWS_ACCESS_KEY_ID": session.access_key_id, "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
            "AWS_SESSION_TOKEN": session.session_token}


def find_session(access_key_id: str) -> RoleSession | None:
    """The AssumeRole session that issued this access key, in any account; None for any other key."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            assumed = backend.get_assumed_role_from_access_key(access_key_id)
            if assumed is not None:
                return RoleSession(access_key_id=access_key_id, arn=assumed.arn, role_arn=assumed.role_arn,
                                   session_name=assumed.session_name, account_id=assumed.account_id,
                                   partition=assumed.partition, session_policy=assumed.policy or None)
    return None


def role_permissions(session: RoleSession) -> RolePermissions:
    """The role's policies as IAM holds them now; a role that does not exist has none (everything denied)."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[session.account_id][session.partition].get_role_by_arn(session.role_arn)
    except NotFoundException:  # AssumeRole in moto does not need the role to exist; AWS would refuse it
        return RolePermissions(role_id="", policies=())
    documents: list[Document] = []
    for raw in list(role.policies.values()):
        documents += _parsed(raw)
    for managed in list(role.managed_policies.values()):
        default = next((v for v in managed.versions if v.is_default), None)
        if default is not None:
            documents += _parsed(default.document)
    return RolePermissions(role_id=str(role.id), policies=tuple(documents))


def _parsed(raw: Any) -> list[Document]:
    """A stored document, or nothing when it is not a policy (it then allows nothing, as an empty policy)."""
    try:
        return [parse_document(raw)]
    except (PolicyDocumentError, ValueError):
        return []


def session_policies(session: RoleSession) -> list[Document] | None:
    """The session policy passed to AssumeRole as a one-element list, None when there was none. A session
    policy that cannot be parsed allows nothing."""
    if session.session_policy is None:
        return None
    return _parsed(session.session_policy)


def bucket_owner(bucket: str) -> str | None:
    """The account that created the bucket (moto's default account unless another one made it)."""
    from moto.s3.models import s3_backends

    found: Mapping[str, tuple[str, str]] = s3_backends.bucket_accounts
    entry = found.get(bucket)
    return entry[1] if entry is not None else None


def object_exists(bucket: str, key: str, version_id: str = "") -> bool:
    """Is there such an object (or version) now? A delete marker is not an object."""
    from moto.s3.models import FakeKey, s3_backends

    entry = s3_backends.bucket_accounts.get(bucket)
    if entry is None:
        return False
    partition, account_id = entry
    found = s3_backends[account_id][partition].buckets.get(bucket)
    if found is None:
        return False
    if version_id:
        versions = found.keys.getlist(key, []) or []
        return any(isinstance(v, FakeKey) and str(v.version_id) == version_id for v in versions)
    return isinstance(found.keys.get(key), FakeKey)
