"""Gap 4 of moto 5.2.5: ``x-amz-copy-source-if-match`` is ignored on CopyObject and UploadPartCopy.

AWS answers ``412 PreconditionFailed`` when the copy source's ETag differs from the one a copy pins; sfncopy
relies on that to fail an object as "source changed" instead of writing a mix of two versions. The
middleware asks ``copy_source_changed`` before handing a copy request to moto and answers 412 itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote


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
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    bucket, key = parse_copy_source(header)
    try:
        current = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
    except MissingBucket:  # moto reports NoSuchBucket itself
        return False
    return current is not None and current.etag.strip('"') != wanted
