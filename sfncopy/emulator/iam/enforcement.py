"""The middleware's question, answered: may this S3 request go on to moto, or does S3 answer 403 AccessDenied?

``S3Authorizer()(environ, operation)`` returns None to let the request through, or the message of the
``AccessDenied`` error to answer. In order:

1. Bucket owner condition, for every request: an ``x-amz-expected-bucket-owner`` (or, on copies,
   ``x-amz-source-expected-bucket-owner``) that is not the bucket's owner account fails: "If the parameter
   doesn't match the bucket owner's account ID, the request fails with an Access Denied error message"
   ("Verifying bucket ownership with bucket owner condition",
   https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html).
2. The access key of the SigV4 signature (``Authorization`` header or presigned ``X-Amz-Credential``). A key
   that is not an STS AssumeRole session known to moto (the emulator's admin keys, e.g. ``testing``) is not
   restricted. Signatures and session tokens are not verified.
3. The role's policies, read from IAM now, and the session policy if AssumeRole was given one, decide every
   check the request needs (s3_actions.py); the first failing check names the denial.
4. GetObject / HeadObject of an object that does not exist also need ``s3:ListBucket`` (else 403, not 404).

The message has the shape of S3's access-denied messages for requests within one account: "User: user-arn is
not authorized to perform: action on "resource-arn" because context", e.g. ``... because no identity-based
policy allows the s3:GetObject action`` or ``... with an explicit deny in an identity-based policy``
("Troubleshoot access denied (403 Forbidden) errors in Amazon S3", access denied message examples,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html#access-denied-message-examples;
"Troubleshoot access denied error messages", https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from sfncopy.emulator.iam import sessions
from sfncopy.emulator.iam.policy import Check, Decision, Document, evaluate
from sfncopy.emulator.iam.s3_actions import (
    S3Request,
    UnmappedOperation,
    copy_source,
    missing_object_check,
    required_checks,
)
from sfncopy.emulator.middleware import path_style

# S3's plain message, for the bucket owner condition.
ACCESS_DENIED = "Access Denied"
COPY_OPERATIONS = ("CopyObject", "UploadPartCopy")


@dataclass(frozen=True)
class Lookups:
    """The moto reads enforcement needs (sessions.py); tests may pass their own."""

    find_session: Callable[[str], sessions.RoleSession | None] = sessions.find_session
    role_permissions: Callable[[sessions.RoleSession], sessions.RolePermissions] = sessions.role_permissions
    session_policies: Callable[[sessions.RoleSession], list[Document] | None] = sessions.session_policies
    bucket_owner: Callable[[str], str | None] = sessions.bucket_owner
    object_exists: Callable[[str, str, str], bool] = sessions.object_exists


def credential_scope(environ: Mapping[str, Any]) -> list[str]:
    """``AKID/20240101/us-east-1/s3/aws4_request`` split on ``/``, from the header or a presigned query."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        scope = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential", [""])[0]
    return scope.split("/")


def _wsgi_text(text: str) -> str:
    """WSGI hands the path over as latin-1 text of its UTF-8 bytes (PEP 3333); S3 keys are UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    return {name[5:].replace("_", "-").lower(): str(value) for name, value in environ.items()
            if name.startswith("HTTP_")}


def deleted_keys(environ: MutableMapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """DeleteObjects' (key, versionId) pairs; the body is read and put back for moto. A body of unknown
    length is left alone (no keys: the request is then denied)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length <= 0:
        return ()
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ()
    found = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        if "Key" in fields:
            found.append((fields["Key"], fields.get("VersionId", "")))
    return tuple(found)


def s3_request(environ: MutableMapping[str, Any], operation: str) -> S3Request:
    bucket, _, key = _wsgi_text(path_style(environ)).lstrip("/").partition("/")
    query = {k: v[0] for k, v in parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True).items()}
    return S3Request(operation=operation, bucket=bucket, key=key, query=query, headers=request_headers(environ))


def owner_mismatch(request: S3Request, bucket_owner: Callable[[str], str | None]) -> bool:
    """The bucket owner condition fails for the bucket or, on copies, for the source bucket."""
    expected = request.headers.get("x-amz-expected-bucket-owner")
    if expected and request.bucket:
        owner = bucket_owner(request.bucket)
        if owner is not None and owner != expected:
            return True
    expected_source = request.headers.get("x-amz-source-expected-bucket-owner")
    if expected_source and request.operation in COPY_OPERATIONS:
        source_bucket = copy_source(request.headers.get("x-amz-copy-source", ""))[0]
        owner = bucket_owner(source_bucket)
        if owner is not None and owner != expected_source:
            return True
    return False


def global_context(session: sessions.RoleSession, role_id: str, environ: Mapping[str, Any], region: str,
                   bucket_owner: str | None) -> dict[str, tuple[str, ...]]:
    """Keys every request of a role session carries ("AWS global condition context keys",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html): for a role
    session aws:PrincipalArn is the role's ARN, aws:userid is "role-id:session-name"; plus S3's own
    s3:authType, s3:signatureversion and s3:ResourceAccount (list_amazons3)."""
    now = time.time()
    presigned = "Credential=" not in str(environ.get("HTTP_AUTHORIZATION", ""))
    context: dict[str, tuple[str, ...]] = {
        "aws:PrincipalArn": (session.role_arn,),
        "aws:PrincipalAccount": (session.account_id,),
        "aws:PrincipalType": ("AssumedRole",),
        "aws:SecureTransport": ("true" if environ.get("wsgi.url_scheme") == "https" else "false",),
        "aws:CurrentTime": (datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:EpochTime": (str(int(now)),),
        "s3:authType": ("REST-QUERY-STRING" if presigned else "REST-HEADER",),
        "s3:signatureversion": ("AWS4-HMAC-SHA256",),
    }
    if role_id:
        context["aws:userid"] = (f"{role_id}:{session.session_name}",)
    if region:
        context["aws:RequestedRegion"] = (region,)
    if environ.get("REMOTE_ADDR"):
        context["aws:SourceIp"] = (str(environ["REMOTE_ADDR"]),)
    if bucket_owner:
        context["s3:ResourceAccount"] = (bucket_owner,)
    return context


def denial_message(principal: str, check: Check, decision: Decision) -> str:
    """S3's access-denied message for a request within one account (see the module docstring)."""
    on_resource = f' on resource: "{check.resource}"' if check.resource != "*" else ""
    if decision.explicit_deny:
        article = "an" if decision.policy_type[0] in "aeiou" else "a"
        reason = f"with an explicit deny in {article} {decision.policy_type} policy"
    else:
        reason = f"because no {decision.policy_type} policy allows the {check.action} action"
    return f"User: {principal} is not authorized to perform: {check.action}{on_resource} {reason}"


def unmapped_message(principal: str, operation: str) -> str:
    return (f"User: {principal} is not authorized to perform the S3 operation {operation}: the sfncopy emulator "
            "does not know which IAM actions it needs, so it denies it to role sessions "
            "(sfncopy/emulator/iam/s3_actions.py)")


class S3Authorizer:
    """Called by the middleware for every S3 request while enforcement is on; see the module docstring."""

    def __init__(self, lookups: Lookups | None = None) -> None:
        self.lookups = lookups or Lookups()

    def __call__(self, environ: MutableMapping[str, Any], operation: str) -> str | None:
        request = s3_request(environ, operation)
        if owner_mismatch(request, self.lookups.bucket_owner):
            return ACCESS_DENIED
        scope = credential_scope(environ)
        session = self.lookups.find_session(scope[0]) if scope[0] else None
        if session is None:
            return None  # the emulator's admin keys (or an unsigned request): not restricted
        if operation == "DeleteObjects":
            request = replace(request, deleted=deleted_keys(environ))
        try:
            checks = required_checks(request, session.partition)
        except UnmappedOperation as unmapped:
            return unmapped_message(session.arn, unmapped.operation)
        permissions = self.lookups.role_permissions(session)
        session_policies = self.lookups.session_policies(session)
        region = scope[2] if len(scope) == 5 else ""
        extra = global_context(session, permissions.role_id, environ, region,
                               self.lookups.bucket_owner(request.bucket) if request.bucket else None)
        for check in checks:
            decision = evaluate(check.with_context(extra), permissions.policies, session_policies)
            if not decision.allowed:
                return denial_message(session.arn, check, decision)
        listing = missing_object_check(request, session.partition)
        if listing is not None and not self.lookups.object_exists(request.bucket, request.key,
                                                                   request.query.get("versionId", "")):
            decision = evaluate(listing.with_context(extra), permissions.policies, session_policies)
            if not decision.allowed:
                return denial_message(session.arn, listing, decision)
        return None
