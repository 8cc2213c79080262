"""S3 requests per object copied: naming requests, sorting them into categories, and the minimum.

The minimum for copying an object server-side is one CopyObject up to 5 GiB; above that a multipart
upload: CreateMultipartUpload + one UploadPartCopy per 5 GiB part + CompleteMultipartUpload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from lambdas import limits

# Requests that move or finish copying bytes.
COPY_OPERATIONS = frozenset({
    "CopyObject", "UploadPartCopy", "CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload",
    "PutObjectTagging",
})
# Requests that look at one object or upload before/after copying it.
INSPECT_OPERATIONS = frozenset({"HeadObject", "GetObjectTagging", "ListParts", "GetObjectAcl"})
LISTING_OPERATIONS = frozenset({
    "ListObjectsV2", "ListObjects", "ListMultipartUploads", "HeadBucket", "GetBucketLocation", "ListBuckets",
    "ListObjectVersions",
})
# Whole-object reads and writes: sfncopy's manifest (plan, checkpoints, report). A server-side copy
# tool that shows these is moving bytes through itself.
MANIFEST_OPERATIONS = frozenset({"PutObject", "GetObject", "UploadPart"})
CATEGORIES = ("copy", "inspect", "listing", "manifest", "other")


def category(operation: str) -> str:
    if operation in COPY_OPERATIONS:
        return "copy"
    if operation in INSPECT_OPERATIONS:
        return "inspect"
    if operation in LISTING_OPERATIONS:
        return "listing"
    if operation in MANIFEST_OPERATIONS:
        return "manifest"
    return "other"


def operation_of(method: str, path: str, query: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The S3 operation of a path-style request (``/bucket`` or ``/bucket/key``)."""
    method = method.upper()
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    has_key = len(parts) == 2 and parts[1] != ""
    copy_source = any(h.lower() == "x-amz-copy-source" for h in headers)
    if not bucket:
        return "ListBuckets"
    if not has_key:
        return _bucket_operation(method, query)
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        if "tagging" in query:
            return "GetObjectTagging"
        return "GetObjectAcl" if "acl" in query else "GetObject"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy_source else "UploadPart"
        if "tagging" in query:
            return "PutObjectTagging"
        return "CopyObject" if copy_source else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in query else "PostObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObjectTagging" if "tagging" in query else "DeleteObject"
    return f"{method}Object"


def _bucket_operation(method: str, query: Mapping[str, Any]) -> str:
    if method == "GET":
        if query.get("list-type") == "2":
            return "ListObjectsV2"
        for name, operation in (("uploads", "ListMultipartUploads"), ("versions", "ListObjectVersions"),
                                ("location", "GetBucketLocation")):
            if name in query:
                return operation
        return "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, f"{method}Bucket")


def diff(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Requests made between two snapshots of the counters."""
    return {op: after[op] - before.get(op, 0) for op in sorted(after) if after[op] - before.get(op, 0) > 0}


def minimum_requests(sizes: Iterable[int]) -> int:
    """The fewest S3 requests that copy objects of these sizes server-side."""
    total = 0
    for size in sizes:
        if size <= limits.MAX_COPY_OBJECT_SIZE:
            total += 1
        else:
            total += 2 + -(-size // limits.MAX_PART_SIZE)
    return total


def breakdown(counts: Mapping[str, int], copies: int, minimum: int) -> dict[str, Any]:
    """Counts by category, per object copied, and the ratios to the minimum (all requests, copy only)."""
    by_category: Counter[str] = Counter()
    for operation, count in counts.items():
        by_category[category(operation)] += count
    total = sum(by_category.values())
    return {
        "operations": dict(sorted(counts.items())),
        "by_category": {c: by_category.get(c, 0) for c in CATEGORIES},
        "total": total,
        "copies": copies,
        "minimum": minimum,
        "per_object": round(total / copies, 3) if copies else None,
        "ratio_total": round(total / minimum, 3) if minimum else None,
        "ratio_copy": round(by_category.get("copy", 0) / minimum, 3) if minimum else None,
        "ratio_excl_manifest": round((total - by_category.get("manifest", 0)) / minimum, 3) if minimum else None,
    }
