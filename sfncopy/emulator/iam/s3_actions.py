"""Which IAM authorization checks an S3 request needs (pure): operation -> [(action, resource ARN, context)].

Sources: "Required permissions for Amazon S3 API operations"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html), each operation's
page of the Amazon S3 API Reference (https://docs.aws.amazon.com/AmazonS3/latest/API/API_<Operation>.html,
"Permissions"; the same text ships in botocore's S3 model), and the S3 condition keys in "Actions,
resources, and condition keys for Amazon S3"
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).

Every request of a role session must pass every check; an operation missing from the tables below is
denied (``UnmappedOperation``): the emulator is stricter than AWS rather than more permissive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from sfncopy.emulator.iam.policy import Check

# Operations on the bucket resource (arn:aws:s3:::bucket) that need exactly one action.
BUCKET_ACTIONS = {
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    # HeadBucket: "you must have permissions to perform the s3:ListBucket action" (API_HeadBucket). moto maps
    # it to a nonexistent s3:HeadBucket. No s3:prefix in its context: a ListBucket grant conditioned on a
    # prefix does not cover it (a condition on an absent key is false, see conditions.py).
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketTagging": "s3:GetBucketTagging",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketTagging": "s3:PutBucketTagging",  # API_DeleteBucketTagging
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetBucketCors": "s3:GetBucketCORS",
    "PutBucketCors": "s3:PutBucketCORS",
    "DeleteBucketCors": "s3:PutBucketCORS",  # API_DeleteBucketCors
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",  # API_DeleteBucketLifecycle
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",  # API_DeleteBucketEncryption
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetBucketPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",  # API_DeletePublicAccessBlock
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",  # API_DeleteBucketOwnershipControls
}
# Listings: the bucket resource, with the request's listing parameters as context keys.
LIST_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
# Listing parameters and the condition keys they fill, only when the request carries them (list_amazons3).
LIST_CONTEXT = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}
# Operations on the object resource (arn:aws:s3:::bucket/key): (action, action with a versionId).
OBJECT_ACTIONS = {
    # API_GetObject: "If you include a versionId ... you must have the s3:GetObjectVersion permission ... The
    # s3:GetObject permission is not required in this scenario." HeadObject needs the same (API_HeadObject).
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "GetObjectAcl": ("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    "PutObjectAcl": ("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "UploadPart": ("s3:PutObject", "s3:PutObject"),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    "ListParts": ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    "RestoreObject": ("s3:RestoreObject", "s3:RestoreObject"),
}
# Writes that create an object, and may set its tags and ACL from headers.
OBJECT_WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")
ACL_HEADERS = ("x-amz-acl", "x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp",
               "x-amz-grant-write", "x-amz-grant-write-acp")
# Request headers whose value S3 puts in the request context under "s3:<header>" (list_amazons3).
HEADER_CONTEXT = ("x-amz-acl", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                  "x-amz-storage-class", "x-amz-metadata-directive", "x-amz-grant-full-control",
                  "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp")
# S3's answer when an object does not exist depends on s3:ListBucket (API_GetObject, API_HeadObject).
MISSING_OBJECT_OPERATIONS = ("GetObject", "HeadObject")


class UnmappedOperation(LookupError):
    """The emulator does not know which permissions an S3 operation needs, so role sessions may not use it."""

    def __init__(self, operation: str) -> None:
        super().__init__(operation)
        self.operation = operation


@dataclass(frozen=True)
class S3Request:
    """What the checks depend on, taken from the HTTP request by enforcement.py."""

    operation: str  # as middleware.s3_operation names it
    bucket: str = ""
    key: str = ""
    query: Mapping[str, str] = field(default_factory=dict)  # the first value of each query parameter
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    deleted: tuple[tuple[str, str], ...] = ()  # DeleteObjects: (key, versionId or "") from the request body


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def object_arn(bucket: str, key: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}/{key}"


def copy_source(header: str) -> tuple[str, str, str]:
    """``x-amz-copy-source``: ``/bucket/some%20key?versionId=v`` -> ("bucket", "some key", "v")."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    return bucket, key, dict(parse_qsl(query)).get("versionId", "")


def request_tags(header: str) -> dict[str, str]:
    """``x-amz-tagging: a=1&b=2`` (URL query encoding) -> {"a": "1", "b": "2"}."""
    return dict(parse_qsl(header, keep_blank_values=True))


def request_context(request: S3Request) -> dict[str, tuple[str, ...]]:
    """The S3 condition keys this request fills (a key the request does not carry stays absent)."""
    context: dict[str, tuple[str, ...]] = {}
    for header in HEADER_CONTEXT:
        if header in request.headers:
            context[f"s3:{header}"] = (request.headers[header],)
    if request.query.get("versionId"):
        context["s3:versionid"] = (request.query["versionId"],)
    if request.operation in LIST_ACTIONS:
        for parameter, key in LIST_CONTEXT.items():
            if parameter in request.query:
                context[key] = (request.query[parameter],)
    if "x-amz-copy-source" in request.headers:
        bucket, key, _ = copy_source(request.headers["x-amz-copy-source"])
        context["s3:x-amz-copy-source"] = (f"{bucket}/{key}",)
    if "x-amz-tagging" in request.headers and request.operation in OBJECT_WRITES:
        tags = request_tags(request.headers["x-amz-tagging"])
        context["s3:RequestObjectTagKeys"] = tuple(tags)
        context.update({f"s3:RequestObjectTag/{k}": (v,) for k, v in tags.items()})
    return context


def required_checks(request: S3Request, partition: str = "aws") -> list[Check]:
    """Every check the request must pass, in the order S3's error message names the first failing one."""
    checks = _checks(request, partition)
    context = request_context(request)
    return [c.with_context(context) for c in checks]


def _checks(request: S3Request, partition: str) -> list[Check]:
    op = request.operation
    bucket = bucket_arn(request.bucket, partition)
    target = object_arn(request.bucket, request.key, partition)
    versioned = bool(request.query.get("versionId"))
    if op == "ListBuckets":
        return [Check("s3:ListAllMyBuckets", "*")]  # no resource type: granted on "*" (list_amazons3)
    if op == "CreateBucket":
        return [Check("s3:CreateBucket", bucket), *_create_bucket_extras(request, bucket)]
    if op in BUCKET_ACTIONS:
        return [Check(BUCKET_ACTIONS[op], bucket)]
    if op in LIST_ACTIONS:
        return [Check(LIST_ACTIONS[op], bucket)]
    if op in OBJECT_ACTIONS:
        plain, with_version = OBJECT_ACTIONS[op]
        return [Check(with_version if versioned else plain, target)]
    if op == "GetObjectAttributes":  # API_GetObjectAttributes: both actions (or both version actions)
        if versioned:
            return [Check("s3:GetObjectVersion", target), Check("s3:GetObjectVersionAttributes", target)]
        return [Check("s3:GetObject", target), Check("s3:GetObjectAttributes", target)]
    if op == "DeleteObjects":  # API_DeleteObjects: s3:DeleteObject (s3:DeleteObjectVersion) per key
        return _delete_objects(request, partition)
    if op in ("PutObject", "CreateMultipartUpload"):
        return [Check("s3:PutObject", target), *_write_extras(request, target)]
    if op in ("CopyObject", "UploadPartCopy"):
        return _copy(request, target, partition)
    raise UnmappedOperation(op)


def _create_bucket_extras(request: S3Request, bucket: str) -> list[Check]:
    """API_CreateBucket: a non-private ACL needs s3:PutBucketAcl, x-amz-object-ownership needs
    s3:PutBucketOwnershipControls, Object Lock needs s3:PutBucketObjectLockConfiguration and s3:PutBucketVersioning."""
    headers = request.headers
    extras = []
    acl = headers.get("x-amz-acl", "private")
    if acl != "private" or any(h in headers for h in ACL_HEADERS[1:]):
        extras.append(Check("s3:PutBucketAcl", bucket))
    if "x-amz-object-ownership" in headers:
        extras.append(Check("s3:PutBucketOwnershipControls", bucket))
    if headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        extras += [Check("s3:PutBucketObjectLockConfiguration", bucket), Check("s3:PutBucketVersioning", bucket)]
    return extras


def _write_extras(request: S3Request, target: str) -> list[Check]:
    """API_PutObject: "To successfully set the tag-set with your PutObject request, you must have the
    s3:PutObjectTagging" permission, and s3:PutObjectAcl to set an ACL. The same for CreateMultipartUpload and a
    CopyObject that replaces the tags: unverified (the stricter reading of the same rule)."""
    extras = []
    if "x-amz-tagging" in request.headers:
        extras.append(Check("s3:PutObjectTagging", target))
    if any(h in request.headers for h in ACL_HEADERS):
        extras.append(Check("s3:PutObjectAcl", target))
    return extras


def _copy(request: S3Request, target: str, partition: str) -> list[Check]:
    """API_CopyObject / API_UploadPartCopy: "you must have s3:GetObject permission to read the source object"
    and "s3:PutObject permission to write the object copy to the destination bucket"; a copy source that names
    a versionId is read with s3:GetObjectVersion (unverified for copies; as for GetObject).

    Copying tags (CopyObject whose x-amz-tagging-directive is COPY, the default): s3:GetObjectTagging on the
    source and s3:PutObjectTagging on the target. Whether S3 asks for them always or only when the source has
    tags is unverified (no AWS page found); the emulator asks always, the stricter behaviour."""
    source_bucket, source_key, source_version = copy_source(request.headers.get("x-amz-copy-source", ""))
    source = object_arn(source_bucket, source_key, partition)
    checks = [Check("s3:PutObject", target),
              Check("s3:GetObjectVersion" if source_version else "s3:GetObject", source)]
    if request.operation == "UploadPartCopy":
        return checks
    directive = request.headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive == "COPY":
        checks += [Check("s3:GetObjectVersionTagging" if source_version else "s3:GetObjectTagging", source),
                   Check("s3:PutObjectTagging", target)]
    elif "x-amz-tagging" in request.headers:
        checks.append(Check("s3:PutObjectTagging", target))
    if any(h in request.headers for h in ACL_HEADERS):
        checks.append(Check("s3:PutObjectAcl", target))
    return checks


def _delete_objects(request: S3Request, partition: str) -> list[Check]:
    """AWS answers per key (an Error element for a denied key, 200 for the request); the emulator denies the
    whole request when any key is denied (stricter), and when it cannot read the keys."""
    if not request.deleted:
        raise UnmappedOperation("DeleteObjects (no keys found in the request body)")
    return [Check("s3:DeleteObjectVersion" if version else "s3:DeleteObject",
                  object_arn(request.bucket, key, partition)) for key, version in request.deleted]


def missing_object_check(request: S3Request, partition: str = "aws") -> Check | None:
    """API_GetObject / API_HeadObject: "If the object that you request doesn't exist, the error that Amazon S3
    returns depends on whether you also have the s3:ListBucket permission": 404 with it, 403 without. Which
    context keys that check sees is unverified; it gets none (no s3:prefix), the stricter choice."""
    if request.operation not in MISSING_OBJECT_OPERATIONS:
        return None
    return Check("s3:ListBucket", bucket_arn(request.bucket, partition))
