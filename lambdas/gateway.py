"""The one module that talks to S3. It owns boto3 and turns its errors into ours (lambdas/errors.py).

Retries: the client uses botocore's "standard" retry mode (exponential backoff with full jitter, on
throttling such as SlowDown, on 500/502/503/504, RequestTimeout and connection errors). What is still
failing after ``max_attempts`` becomes a TransientError, which the state machine retries. Every call
that copies bytes reports how many retries it took (``ResponseMetadata.RetryAttempts``) so results and
reports can show them.
"""

from __future__ import annotations

import copy
import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from lambdas import errors, limits
from lambdas.models import BucketAccess, SourceObject, SseConfig

JSON_CONTENT_TYPE = "application/json"
TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "503", "500", "502", "504", "OperationAborted",
})
_OBJECT_ERRORS: dict[str, type[errors.ObjectError]] = {
    "PreconditionFailed": errors.SourceChangedError,
    "412": errors.SourceChangedError,
    "AccessDenied": errors.AccessDeniedError,
    "403": errors.AccessDeniedError,
    "NoSuchKey": errors.NoSuchKeyError,
    "404": errors.NoSuchKeyError,
    "InvalidObjectState": errors.ObjectArchivedError,
    "NoSuchBucket": errors.NoSuchBucketError,
    "NoSuchUpload": errors.NoSuchUploadError,
}


DENIED_CODES = frozenset({"AccessDenied", "403"})
# S3 answers GetObject/HeadObject of a missing key with 403 instead of 404 unless the caller may list the bucket
# (Amazon S3 API reference, GetObject and HeadObject, "Permissions"). A ListBucket grant conditioned on
# s3:prefix (a bucket narrowed to a prefix) does not count: those requests carry no s3:prefix (unverified;
# the emulator implements this stricter reading). Our roles may list their own prefixes, so a 403 is checked
# with a one-key listing of the key itself before it is taken as a denial.
MISSING_AS_403 = "S3 hides missing keys from roles that may not list the whole bucket"


# HeadObject's field for each additional checksum algorithm S3 keeps (ListObjectsV2 names the algorithm).
CHECKSUM_FIELDS = {
    "CRC32": "ChecksumCRC32", "CRC32C": "ChecksumCRC32C", "CRC64NVME": "ChecksumCRC64NVME",
    "SHA1": "ChecksumSHA1", "SHA256": "ChecksumSHA256",
}


def listed_checksum(item: dict[str, Any]) -> str:
    """The checksum algorithm a listing entry names ("" when none): S3 keeps at most one per object."""
    algorithms = item.get("ChecksumAlgorithm") or ()
    return str(algorithms[0]) if algorithms else ""


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "")) or str(
        err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def translate(err: Exception, what: str, denied_hint: str = "") -> Exception:
    """Our error for a boto3 error raised while doing ``what`` (e.g. "copy s3://b/k"); ``denied_hint`` is
    added to the message of an AccessDenied."""
    if isinstance(err, ClientError):
        code = error_code(err)
        message = err.response.get("Error", {}).get("Message", "") or str(err)
        if code in DENIED_CODES and denied_hint:
            message = f"{message} ({denied_hint})"
        if code in TRANSIENT_CODES:
            return errors.TransientError(f"{what}: {code} after retries: {message}")
        cls = _OBJECT_ERRORS.get(code)
        if cls is not None:
            return cls(f"{what}: {code}: {message}")
        failure = errors.ObjectError(f"{what}: {code}: {message}")
        failure.code = code or "ClientError"
        return failure
    if isinstance(err, (ConnectionError, ReadTimeoutError, BotoCoreError)):
        return errors.TransientError(f"{what}: {type(err).__name__}: {err}")
    return err


@dataclass(frozen=True)
class ObjectHead:
    """What HeadObject says about an object: everything a copy must carry over."""

    size: int
    etag: str
    content_type: str = ""
    cache_control: str = ""
    content_disposition: str = ""
    content_encoding: str = ""
    content_language: str = ""
    expires: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    archive_status: str = ""
    parts_count: int = 0  # > 0 when the object was uploaded in parts (asked with PartNumber=1)
    first_part_size: int = 0  # size of part 1 when asked with PartNumber=1
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> value, when asked with checksums


@dataclass(frozen=True)
class PartInfo:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class UploadInfo:
    key: str
    upload_id: str
    initiated: str


def strip_etag(etag: str) -> str:
    return etag.strip('"')


def tagging_header(tags: dict[str, str]) -> str:
    return urllib.parse.urlencode(sorted(tags.items()))


def make_client(max_attempts: int = 10, max_pool_connections: int = 50) -> Any:
    """An S3 client for AWS or, when AWS_ENDPOINT_URL(_S3) is set, for that endpoint (path-style)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # requests, incl. the first
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"} if endpoint else {},
    )
    return boto3.session.Session().client("s3", config=config)


class S3Gateway:
    """S3 for one role. ``buckets`` says what every request to a source or target bucket carries (a run's
    ``CopyConfig.bucket_access()``, given with ``for_buckets`` once the config is known):

    - ExpectedBucketOwner, and ExpectedSourceBucketOwner for a copy's source: S3 refuses a request to a
      bucket another account owns with 403 Access Denied (Amazon S3 user guide, "Verifying bucket
      ownership with bucket owner condition": for CopyObject the first parameter names the destination's
      expected owner, a second the source's; UploadPartCopy takes the same two).
    - RequestPayer "requester": without it S3 answers 403 to a requester that does not own a Requester Pays
      bucket, for GET, HEAD, POST, PUT and DELETE requests alike (Amazon S3 user guide, "Downloading objects
      from Requester Pays buckets"). On a copy it covers both buckets (Amazon S3 API reference, CopyObject,
      x-amz-request-payer: "If either the source or destination S3 bucket has Requester Pays enabled, the
      requester will pay").
    - ACL: the canned ACL of every object a copy writes into the bucket (CopyObject, CreateMultipartUpload;
      the parts and the completion carry none).

    The manifest location is the stack's own: its requests carry none of these."""

    def __init__(self, client: Any, buckets: Mapping[str, BucketAccess] | None = None) -> None:
        self.client = client
        self.buckets: dict[str, BucketAccess] = dict(buckets or {})

    def for_buckets(self, buckets: Mapping[str, BucketAccess]) -> Self:
        """This gateway (same client, same class) with ``buckets``' conditions (see the class doc); itself
        when it has those already (a run without conditions keeps the gateway it was given)."""
        if dict(buckets) == self.buckets:
            return self
        clone = copy.copy(self)
        clone.buckets = dict(buckets)
        return clone

    def bucket_args(self, bucket: str) -> dict[str, str]:
        """ExpectedBucketOwner and RequestPayer for a request to ``bucket`` (for callers that build requests
        on this gateway's client, lambdas/sharding/listing.py)."""
        return self._access(bucket)

    def _access(self, bucket: str) -> dict[str, str]:
        """ExpectedBucketOwner and RequestPayer for a request to ``bucket``."""
        access = self.buckets.get(bucket)
        args: dict[str, str] = {}
        if access is not None and access.expected_owner:
            args["ExpectedBucketOwner"] = access.expected_owner
        if access is not None and access.request_payer:
            args["RequestPayer"] = access.request_payer
        return args

    def _copy_access(self, src_bucket: str, dst_bucket: str) -> dict[str, str]:
        """The destination's conditions, the source's owner as ExpectedSourceBucketOwner, and RequestPayer
        when either bucket needs it."""
        args = self._access(dst_bucket)
        source = self.buckets.get(src_bucket)
        if source is not None and source.expected_owner:
            args["ExpectedSourceBucketOwner"] = source.expected_owner
        if source is not None and source.request_payer:
            args["RequestPayer"] = source.request_payer
        return args

    def _acl(self, bucket: str) -> dict[str, str]:
        access = self.buckets.get(bucket)
        return {"ACL": access.object_acl} if access is not None and access.object_acl else {}

    def _owner_hint(self, *buckets: str) -> str:
        """For an AccessDenied: the expected owners the request named (S3 answers a mismatch with 403)."""
        owners = [f"{b}: {self.buckets[b].expected_owner}" for b in dict.fromkeys(buckets)
                  if b in self.buckets and self.buckets[b].expected_owner]
        if not owners:
            return ""
        return ("S3 answers AccessDenied also when a bucket is not owned by its expected_bucket_owner, "
                + ", ".join(owners))

    def _translate(self, err: Exception, what: str, *buckets: str) -> Exception:
        return translate(err, what, self._owner_hint(*buckets))

    # --- listing ------------------------------------------------------------------------------------
    def list_objects(self, bucket: str, prefix: str) -> Iterator[SourceObject]:
        """Every object under the prefix, page by page (ListObjectsV2 stops at 1,000 keys a page)."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **self._access(bucket),
                                           PaginationConfig={"PageSize": limits.LIST_PAGE_SIZE}):
                for item in page.get("Contents", ()):
                    modified = item.get("LastModified")
                    yield SourceObject(
                        bucket=bucket,
                        key=item["Key"],
                        size=int(item["Size"]),
                        etag=strip_etag(item.get("ETag", "")),
                        storage_class=item.get("StorageClass", "STANDARD") or "STANDARD",
                        last_modified=modified.isoformat() if modified is not None else "",
                        checksum_algorithm=listed_checksum(item),
                    )
        except ClientError as err:
            raise self._listing_error(err, bucket, prefix) from err

    def _listing_error(self, err: ClientError, bucket: str, prefix: str) -> Exception:
        """A listing that is refused or has no bucket is a location problem (SourceNotFoundError, fatal)."""
        if error_code(err) in {"NoSuchBucket", "AccessDenied", "403", "404"}:
            hint = self._owner_hint(bucket)
            return errors.SourceNotFoundError(
                f"cannot list s3://{bucket}/{prefix}: {error_code(err)} (check the bucket name and "
                f"that this stack may read it{'; ' + hint if hint else ''})")
        return self._translate(err, f"list s3://{bucket}/{prefix}", bucket)

    def list_page(self, bucket: str, prefix: str, start_after: str = "",
                  max_keys: int = limits.LIST_PAGE_SIZE) -> tuple[list[SourceObject], bool]:
        """One ListObjectsV2 request: up to ``max_keys`` objects under ``prefix`` whose keys sort after
        ``start_after`` ("": from the first), in key order, and whether more follow (IsTruncated). S3 lists
        keys in UTF-8 binary order (Amazon S3 user guide, "Listing object keys programmatically"), and
        StartAfter may be any string, a key of the bucket or not (Amazon S3 API reference, ListObjectsV2,
        "StartAfter": "Amazon S3 starts listing after this specified key. StartAfter can be any key in the
        bucket"). Errors as ``list_objects``."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys, **self._access(bucket)}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            resp = self.client.list_objects_v2(**kwargs)
        except ClientError as err:
            raise self._listing_error(err, bucket, prefix) from err
        objects = [SourceObject(bucket=bucket, key=item["Key"], size=int(item["Size"]),
                                etag=strip_etag(item.get("ETag", "")),
                                storage_class=item.get("StorageClass", "STANDARD") or "STANDARD")
                   for item in resp.get("Contents", ())]
        return objects, bool(resp.get("IsTruncated"))

    def location_status(self, bucket: str, prefix: str) -> str:
        """``"ok"`` when this role may list ``prefix`` in ``bucket``, ``"missing"`` when the bucket does not
        exist, ``"denied"`` when listing there is not allowed.

        A one-key ListObjectsV2 under the prefix, not HeadBucket: HeadBucket is authorised as s3:ListBucket
        without the s3:prefix key (Amazon S3 API reference, HeadBucket, "Permissions"), so a role whose
        ListBucket grant is conditioned on s3:prefix (a bucket narrowed to "bucket/prefix/" in the env file)
        is denied HeadBucket (IAM user guide, "IAM JSON policy elements: Condition operators": a condition
        key absent from the request context does not match) while it may list its prefix."""
        try:
            self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1, **self._access(bucket))
            return "ok"
        except ClientError as err:
            code = error_code(err)
            if code in {"404", "NoSuchBucket"}:
                return "missing"
            if code in {"403", "AccessDenied"}:
                return "denied"
            raise self._translate(err, f"list s3://{bucket}/{prefix}", bucket) from err

    def absent(self, bucket: str, key: str) -> bool:
        """Whether ``key`` is missing, asked by listing it: see MISSING_AS_403. A listing that is denied too
        proves nothing (False), so the caller reports the original AccessDenied."""
        try:
            resp = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1, **self._access(bucket))
        except ClientError:
            return False
        return not any(item.get("Key") == key for item in resp.get("Contents", ()))

    # --- reading one object -------------------------------------------------------------------------
    def head_object(self, bucket: str, key: str, if_match: str = "", part_number: int = 0,
                    checksums: bool = False) -> ObjectHead:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **self._access(bucket)}
        if if_match:
            kwargs["IfMatch"] = _quoted(if_match)  # S3 compares the quoted form
        if part_number:
            kwargs["PartNumber"] = part_number
        if checksums:
            kwargs["ChecksumMode"] = "ENABLED"  # S3 returns the object's checksums only when asked
        try:
            resp = self.client.head_object(**kwargs)
        except ClientError as err:
            if error_code(err) in DENIED_CODES and self.absent(bucket, key):
                raise errors.NoSuchKeyError(f"head s3://{bucket}/{key}: NoSuchKey (answered 403: {MISSING_AS_403})"
                                            ) from err
            raise self._translate(err, f"head s3://{bucket}/{key}", bucket) from err
        expires = resp.get("ExpiresString") or resp.get("Expires") or ""
        parts = int(resp.get("PartsCount") or 0)
        length = int(resp["ContentLength"])
        return ObjectHead(
            size=_total_size(resp) if part_number else length,
            etag=strip_etag(resp.get("ETag", "")),
            content_type=resp.get("ContentType", "") or "",
            cache_control=resp.get("CacheControl", "") or "",
            content_disposition=resp.get("ContentDisposition", "") or "",
            content_encoding=resp.get("ContentEncoding", "") or "",
            content_language=resp.get("ContentLanguage", "") or "",
            expires=expires if isinstance(expires, str) else expires.isoformat(),
            metadata=dict(resp.get("Metadata", {}) or {}),
            storage_class=resp.get("StorageClass", "STANDARD") or "STANDARD",
            archive_status=resp.get("ArchiveStatus", "") or "",
            parts_count=parts,
            first_part_size=length if part_number else 0,
            checksums={name: str(resp[header]) for name, header in CHECKSUM_FIELDS.items() if resp.get(header)},
        )

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        try:
            resp = self.client.get_object_tagging(Bucket=bucket, Key=key, **self._access(bucket))
        except ClientError as err:
            raise self._translate(err, f"get tags of s3://{bucket}/{key}", bucket) from err
        return {t["Key"]: t["Value"] for t in resp.get("TagSet", ())}

    def put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        try:
            self.client.put_object_tagging(
                Bucket=bucket, Key=key, **self._access(bucket),
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})
        except ClientError as err:
            raise self._translate(err, f"put tags on s3://{bucket}/{key}", bucket) from err

    # --- copying ------------------------------------------------------------------------------------
    def copy_object(self, src_bucket: str, src_key: str, etag: str, dst_bucket: str, dst_key: str,
                    *, storage_class: str | None = None, sse: SseConfig | None = None,
                    preserve_metadata: bool = True, preserve_tags: bool = True) -> tuple[str, int]:
        """One CopyObject pinned to the planned ETag. Returns (target ETag, retries)."""
        kwargs: dict[str, Any] = {
            "Bucket": dst_bucket, "Key": dst_key,
            "CopySource": {"Bucket": src_bucket, "Key": src_key},
            "CopySourceIfMatch": _quoted(etag),
            "MetadataDirective": "COPY" if preserve_metadata else "REPLACE",
            "TaggingDirective": "COPY" if preserve_tags else "REPLACE",
            **_storage_args(storage_class, sse),
            **self._copy_access(src_bucket, dst_bucket),
            **self._acl(dst_bucket),
        }
        if not preserve_tags:
            kwargs["Tagging"] = ""
        try:
            resp = self.client.copy_object(**kwargs)
        except ClientError as err:
            raise self._translate(err, f"copy s3://{src_bucket}/{src_key} to s3://{dst_bucket}/{dst_key}",
                                  src_bucket, dst_bucket) from err
        except (ConnectionError, ReadTimeoutError, BotoCoreError) as err:
            raise translate(err, f"copy s3://{src_bucket}/{src_key}") from err
        result = resp.get("CopyObjectResult", {})
        return strip_etag(result.get("ETag", "")), _retries(resp)

    def create_multipart_upload(self, bucket: str, key: str, head: ObjectHead | None, tags: dict[str, str],
                                *, storage_class: str | None = None, sse: SseConfig | None = None) -> str:
        """Start an upload that carries the source's headers, metadata and (if they fit) tags."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **_storage_args(storage_class, sse),
                                  **self._access(bucket), **self._acl(bucket)}
        if head is not None:
            kwargs.update(_header_args(head))
        header = tagging_header(tags)
        if tags and len(header.encode()) <= limits.MAX_TAGGING_HEADER_BYTES:
            kwargs["Tagging"] = header
        try:
            resp = self.client.create_multipart_upload(**kwargs)
        except ClientError as err:
            raise self._translate(err, f"start upload of s3://{bucket}/{key}", bucket) from err
        return str(resp["UploadId"])

    def upload_part_copy(self, bucket: str, key: str, upload_id: str, part_number: int,
                         src_bucket: str, src_key: str, etag: str, first: int, last: int) -> tuple[str, int]:
        """Copy bytes first..last (zero-based, inclusive) of the source into part ``part_number``
        (1-based), pinned to the planned ETag. Returns (part ETag, retries)."""
        try:
            resp = self.client.upload_part_copy(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=part_number,
                CopySource={"Bucket": src_bucket, "Key": src_key},
                CopySourceIfMatch=_quoted(etag), CopySourceRange=f"bytes={first}-{last}",
                **self._copy_access(src_bucket, bucket))
        except ClientError as err:
            raise self._translate(err, f"copy part {part_number} of s3://{src_bucket}/{src_key}",
                                  src_bucket, bucket) from err
        except (ConnectionError, ReadTimeoutError, BotoCoreError) as err:
            raise translate(err, f"copy part {part_number} of s3://{src_bucket}/{src_key}") from err
        return strip_etag(resp["CopyPartResult"]["ETag"]), _retries(resp)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        parts: list[PartInfo] = []
        try:
            paginator = self.client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id, **self._access(bucket)):
                parts.extend(PartInfo(int(p["PartNumber"]), strip_etag(p["ETag"]), int(p["Size"]))
                             for p in page.get("Parts", ()))
        except ClientError as err:
            raise self._translate(err, f"list parts of s3://{bucket}/{key}", bucket) from err
        return sorted(parts, key=lambda p: p.number)

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: list[PartInfo]) -> str:
        try:
            resp = self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, **self._access(bucket),
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": _quoted(p.etag)}
                                           for p in sorted(parts, key=lambda p: p.number)]})
        except ClientError as err:
            raise self._translate(err, f"complete upload of s3://{bucket}/{key}", bucket) from err
        return strip_etag(resp.get("ETag", ""))

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort; an upload that is already gone counts as aborted."""
        try:
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, **self._access(bucket))
        except ClientError as err:
            if error_code(err) in {"NoSuchUpload", "404"}:
                return
            raise self._translate(err, f"abort upload of s3://{bucket}/{key}", bucket) from err

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> list[UploadInfo]:
        uploads: list[UploadInfo] = []
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **self._access(bucket)):
                uploads.extend(UploadInfo(u["Key"], u["UploadId"], str(u.get("Initiated", "")))
                               for u in page.get("Uploads", ()))
        except ClientError as err:
            raise self._translate(err, f"list uploads in s3://{bucket}/{prefix}", bucket) from err
        return uploads

    # --- the manifest location ----------------------------------------------------------------------
    def put_json(self, bucket: str, key: str, data: Any) -> None:
        self.put_bytes(bucket, key, encode_json(data), JSON_CONTENT_TYPE)

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as err:
            raise _manifest_error(err, f"write s3://{bucket}/{key}") from err

    def read_chunks(self, bucket: str, key: str, start: int = 0, chunk_size: int = limits.MiB) -> Iterator[bytes]:
        """The object's bytes from offset ``start`` on, chunk by chunk as they arrive, so memory holds one
        chunk whatever the object's size (a ranged GET: "bytes=<start>-" asks from ``start`` to the end, Amazon
        S3 API reference, GetObject, "Range", which refers to RFC 9110's byte ranges)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            body = self.client.get_object(**kwargs)["Body"]
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404"}:
                raise errors.ManifestConflictError(f"s3://{bucket}/{key} does not exist") from err
            raise _manifest_error(err, f"read s3://{bucket}/{key}") from err
        try:
            yield from body.iter_chunks(chunk_size)
        except (ConnectionError, ReadTimeoutError, BotoCoreError) as err:
            raise errors.TransientError(f"read s3://{bucket}/{key}: {type(err).__name__}: {err}") from err
        finally:
            body.close()

    def start_upload(self, bucket: str, key: str, content_type: str) -> str:
        """A multipart upload of a file this stack writes (a report too large to hold in memory). Parts go up
        with ``upload_part``; S3 makes the object only at ``complete_multipart_upload`` (Amazon S3 API reference,
        CompleteMultipartUpload: "Upon receiving this request, Amazon S3 concatenates all the parts in
        ascending order by part number to create a new object"), and until the upload is completed or
        aborted its parts are stored and billed (CreateMultipartUpload)."""
        try:
            resp = self.client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        except ClientError as err:
            raise _manifest_error(err, f"start upload of s3://{bucket}/{key}") from err
        return str(resp["UploadId"])

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> PartInfo:
        """Part ``number`` (1-based) of an upload ``start_upload`` began. Every part but the last must be at
        least 5 MiB (limits.MIN_PART_SIZE), and a part sent again under the same number replaces the
        earlier one (Amazon S3 API reference, UploadPart: "If you upload a new part using the same part
        number that was used with a previous part, the previously uploaded part is overwritten")."""
        try:
            resp = self.client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        except ClientError as err:
            raise _manifest_error(err, f"upload part {number} of s3://{bucket}/{key}") from err
        return PartInfo(number, strip_etag(resp["ETag"]), len(body))

    def get_text(self, bucket: str, key: str) -> str:
        """An object's body as UTF-8 text (a stored s3_copy_config); our error (AccessDeniedError,
        NoSuchKeyError, TransientError ...) when it cannot be read."""
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            raise translate(err, f"read s3://{bucket}/{key}") from err
        body: bytes = resp["Body"].read()
        return body.decode("utf-8", errors="replace")

    def get_json(self, bucket: str, key: str) -> Any:
        data = self.get_json_or_none(bucket, key)
        if data is None:
            raise errors.ManifestConflictError(f"s3://{bucket}/{key} does not exist")
        return data

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404"}:
                return None
            if error_code(err) in DENIED_CODES and self.absent(bucket, key):
                return None
            raise _manifest_error(err, f"read s3://{bucket}/{key}") from err
        return json.loads(resp["Body"].read())


def _manifest_error(err: ClientError, what: str) -> Exception:
    translated = translate(err, what)
    return translated if isinstance(translated, errors.TransientError) else err


def _quoted(etag: str) -> str:
    return f'"{strip_etag(etag)}"'


def _retries(resp: dict[str, Any]) -> int:
    return int(resp.get("ResponseMetadata", {}).get("RetryAttempts", 0))


def _total_size(resp: dict[str, Any]) -> int:
    """Whole-object size from a ranged/part HEAD: Content-Range is 'bytes 0-99/12345'."""
    content_range = resp.get("ContentRange", "") or ""
    if "/" in content_range:
        return int(content_range.rsplit("/", 1)[1])
    return int(resp["ContentLength"])


def _storage_args(storage_class: str | None, sse: SseConfig | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if storage_class:
        args["StorageClass"] = storage_class
    if sse is not None:
        args["ServerSideEncryption"] = sse.algorithm
        if sse.algorithm == "aws:kms" and sse.kms_key_id:
            args["SSEKMSKeyId"] = sse.kms_key_id
    return args


def _header_args(head: ObjectHead) -> dict[str, Any]:
    args: dict[str, Any] = {"Metadata": dict(head.metadata)}
    pairs = (("ContentType", head.content_type), ("CacheControl", head.cache_control),
             ("ContentDisposition", head.content_disposition), ("ContentEncoding", head.content_encoding),
             ("ContentLanguage", head.content_language), ("Expires", head.expires))
    args.update({name: value for name, value in pairs if value})
    return args


def gateway_from_settings(max_attempts: int, threads: int) -> S3Gateway:
    """The gateway a handler uses: built per invocation, never at import time."""
    return S3Gateway(make_client(max_attempts=max_attempts, max_pool_connections=max(10, threads * 2)))


def encode_json(data: Any) -> bytes:
    """A manifest file's bytes: compact JSON (named tuples become arrays). Our models hold no cycles, and
    the encoder's cycle check (an id per list and dict) costs a third of the time of a plan's payloads."""
    return json.dumps(data, separators=(",", ":"), check_circular=False).encode()
