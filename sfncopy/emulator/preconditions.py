"""Preconditions moto 5.2.5 does not enforce, enforced by the middleware before it hands a request to moto.

Gap 4: ``x-amz-copy-source-if-match`` is ignored on CopyObject and UploadPartCopy. AWS answers
``412 PreconditionFailed`` when the copy source's ETag differs from the one a copy pins; sfncopy relies on that to
fail an object as "source changed" instead of writing a mix of two versions. The middleware asks
``copy_source_changed`` before handing a copy request to moto and answers 412 itself.

Gap 12: conditional writes (S3 user guide, "How to prevent object overwrites with conditional writes"; API
reference, PutObject / CopyObject / CompleteMultipartUpload, ``If-None-Match`` and ``If-Match``). A write with
``If-None-Match: *`` answers ``412 PreconditionFailed`` when the key exists; with ``If-Match: <etag>`` it answers 412
when the current object's ETag differs (quotes do not matter) and ``404 NoSuchKey`` when there is no current object
(user guide, same page, "Conditional write behavior": "the operation fails with a 404 Not Found error"). S3 checks the
condition during the write: of two conditional writes racing for one key, one wins and the other fails (412, or 409
ConditionalRequestConflict when they overlap). moto 5.2.5 checks both on PutObject and ``If-None-Match`` on
CompleteMultipartUpload, but ignores both on CopyObject and ``If-Match`` on CompleteMultipartUpload, and checks
outside any lock. The middleware checks all three operations with ``write_refusal`` under ``key_lock`` and holds the
lock while moto writes (every write of the key, conditional or not, takes it), so the check and the write are one
step; a racing conditional write therefore gets 412, never a 409. A multipart upload is checked when it completes
(CreateMultipartUpload and the part requests take no conditional headers), and a refused completion leaves the upload
open for the client to abort (unverified: the pages do not say). Not bridged: ``If-None-Match`` with a value other
than ``*``, and both headers at once, pass as moto answers them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

# The operations that write a key and whose conditional headers S3 evaluates.
CONDITIONAL_WRITES = ("PutObject", "CopyObject", "CompleteMultipartUpload")
# The operations that change which object a key holds: all of them take the key's lock.
KEY_WRITES = (*CONDITIONAL_WRITES, "DeleteObject")
# Locks shared by keys (a fixed number, so none is ever created or forgotten while requests run).
KEY_LOCK_STRIPES = 64
_KEY_LOCKS = tuple(threading.Lock() for _ in range(KEY_LOCK_STRIPES))


def parse_copy_source(header: str) -> tuple[str, str]:
    """``/bucket/some%20key?versionId=x`` -> ("bucket", "some key")."""
    source = header.split("?", 1)[0].lstrip("/")
    bucket, _, key = source.partition("/")
    return bucket, unquote(key)


def copy_source_changed(environ: Mapping[str, Any]) -> bool:
    """True when the request pins an ETag that the copy source no longer has."""
    wanted = str(environ.get("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH", "")).strip('"')
    header = str(environ.get("HTTP_X_AMZ_COPY_SOURCE", ""))
    if not wanted or not header:
        return False
    bucket, key = parse_copy_source(header)
    current = _current_object(bucket, key)
    return current is not None and current.etag.strip('"') != wanted


def bucket_and_key(path: str) -> tuple[str, str]:
    """A path-style WSGI path (``/bucket/key``) -> (bucket, key); WSGI hands the path over as latin-1 text of its
    UTF-8 bytes (PEP 3333)."""
    with contextlib.suppress(UnicodeError):
        path = path.encode("latin-1").decode("utf-8")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def key_lock(bucket: str, key: str) -> threading.Lock:
    """The lock a write of ``bucket/key`` holds while it is checked and made."""
    return _KEY_LOCKS[hash((bucket, key)) % KEY_LOCK_STRIPES]


def write_refusal(environ: Mapping[str, Any], operation: str, bucket: str, key: str) -> str | None:
    """The S3 error code a conditional write gets instead of writing (``PreconditionFailed``, ``NoSuchKey``), or
    None when it may write. Call it holding ``key_lock(bucket, key)``."""
    if operation not in CONDITIONAL_WRITES:
        return None
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if_match = environ.get("HTTP_IF_MATCH")
    if if_none_match is None and if_match is None:
        return None
    current = _current_object(bucket, key)
    if operation == "CompleteMultipartUpload" and current is not None and _made_by_upload(current, environ):
        return None  # a retried completion of this very upload: moto answers it again, unchanged
    return refusal(current.etag if current is not None else None,
                   None if if_none_match is None else str(if_none_match),
                   None if if_match is None else str(if_match))


def refusal(current_etag: str | None, if_none_match: str | None, if_match: str | None) -> str | None:
    """The conditional-write rules on the key's current ETag (None: no current object)."""
    if if_none_match is not None and if_none_match.strip() == "*" and current_etag is not None:
        return "PreconditionFailed"
    if if_match is not None:
        if current_etag is None:
            return "NoSuchKey"
        if _unquoted(if_match) != _unquoted(current_etag):
            return "PreconditionFailed"
    return None


def _unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def _made_by_upload(current: Any, environ: Mapping[str, Any]) -> bool:
    upload_id = parse_qs(str(environ.get("QUERY_STRING", ""))).get("uploadId", [""])[0]
    multipart = getattr(current, "multipart", None)
    return bool(upload_id) and multipart is not None and multipart.id == upload_id


def _current_object(bucket: str, key: str) -> Any:
    """The key's current object in moto (None: none, or a delete marker); None too for a missing bucket, which
    moto reports itself."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    try:
        return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
    except MissingBucket:
        return None
