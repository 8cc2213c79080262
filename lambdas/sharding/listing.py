"""The ListObjectsV2 requests of sharded planning: probe pages for the partition, and key-range listings.

These are the only S3 calls sharding adds besides lambdas/gateway.py's; they use the gateway's client and
its per-bucket conditions (ExpectedBucketOwner, RequestPayer: see ``S3Gateway``) and translate errors with
its functions. When sharding is wired in, they belong in gateway.py (one module owns every AWS call).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lambdas import errors, limits
from lambdas.gateway import S3Gateway, error_code, listed_checksum, strip_etag, translate
from lambdas.models import SourceConfig, SourceObject
from lambdas.sharding.keyspace import KeyRange
from lambdas.sharding.partition import ProbeBatch, ProbePage, ProbeRequest


class RequestCount:
    """S3 requests sent, counted across threads (for the shard's summary and the benchmark's costs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


def access_args(s3: S3Gateway, bucket: str) -> dict[str, str]:
    """ExpectedBucketOwner and RequestPayer for a request to ``bucket`` (as ``S3Gateway`` sends them)."""
    return s3.bucket_args(bucket)


def list_page(s3: S3Gateway, bucket: str, prefix: str, start_after: str = "", token: str = "",
              max_keys: int = limits.LIST_PAGE_SIZE) -> dict[str, Any]:
    """One ListObjectsV2 page: keys under ``prefix`` after ``start_after`` (or from ``token``, which S3 gave
    with the previous page of the same listing). ListObjectsV2 returns at most 1,000 keys a page, ascending
    (Amazon S3 API reference, ListObjectsV2)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys, **access_args(s3, bucket)}
    if token:
        kwargs["ContinuationToken"] = token
    elif start_after:
        kwargs["StartAfter"] = start_after
    try:
        response: dict[str, Any] = s3.client.list_objects_v2(**kwargs)
    except ClientError as err:
        if error_code(err) in {"NoSuchBucket", "AccessDenied", "403", "404"}:
            raise errors.SourceNotFoundError(
                f"cannot list s3://{bucket}/{prefix}: {error_code(err)} (check the bucket name and that this "
                "stack may read it)") from err
        raise translate(err, f"list s3://{bucket}/{prefix}") from err
    return response


def to_object(bucket: str, item: dict[str, Any]) -> SourceObject:
    """A listing entry as a SourceObject (as ``S3Gateway.list_objects`` makes them)."""
    modified = item.get("LastModified")
    return SourceObject(bucket=bucket, key=item["Key"], size=int(item["Size"]), etag=strip_etag(item.get("ETag", "")),
                        storage_class=item.get("StorageClass", "STANDARD") or "STANDARD",
                        last_modified=modified.isoformat() if modified is not None else "",
                        checksum_algorithm=listed_checksum(item))


def probe_batch(s3: S3Gateway, sources: Sequence[SourceConfig], threads: int,
                count: RequestCount | None = None) -> ProbeBatch:
    """The partition's ``probe``: each request is one page, all of a batch sent at once on ``threads``."""
    def one(request: ProbeRequest) -> ProbePage:
        source = sources[request.source]
        start = source.prefix + request.start_after if request.start_after is not None else ""
        page = list_page(s3, source.bucket, source.prefix + request.under, start_after=start,
                         max_keys=request.max_keys)
        if count is not None:
            count.add()
        cut = len(source.prefix)
        return ProbePage(keys=tuple(item["Key"][cut:] for item in page.get("Contents", ())),
                         truncated=bool(page.get("IsTruncated")))

    def batch(requests: Sequence[ProbeRequest]) -> Sequence[ProbePage]:
        if len(requests) <= 1 or threads <= 1:
            return [one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(threads, len(requests))) as pool:
            return list(pool.map(one, requests))

    return batch


class RangeListing:
    """The objects of ``bucket`` under ``prefix`` whose relative key is in ``keys``, ascending, page by page.

    Starts with ``StartAfter = prefix + keys.start_after`` and stops at the first key past the range's end,
    without asking for the page after it. With a ``pool``, the next page is asked for while the current one
    is read (listing is the shard's wait; its CPU work overlaps it)."""

    def __init__(self, s3: S3Gateway, bucket: str, prefix: str, keys: KeyRange,
                 pool: ThreadPoolExecutor | None = None, count: RequestCount | None = None) -> None:
        self.s3, self.bucket, self.prefix, self.keys = s3, bucket, prefix, keys
        self.pool = pool
        self.count = count

    def _fetch(self, token: str) -> dict[str, Any]:
        start = self.prefix + self.keys.start_after if self.keys.start_after is not None and not token else ""
        page = list_page(self.s3, self.bucket, self.prefix, start_after=start, token=token)
        if self.count is not None:
            self.count.add()
        return page

    def _more(self, page: dict[str, Any]) -> str:
        """The token of the next page, or "" when this page ended the listing or the range."""
        contents = page.get("Contents") or ()
        if not page.get("IsTruncated") or not contents:
            return ""
        if self.keys.past_end(contents[-1]["Key"][len(self.prefix):]):
            return ""
        return str(page.get("NextContinuationToken") or "")

    def __iter__(self) -> Iterator[SourceObject]:
        cut = len(self.prefix)
        page = self._fetch("")
        while True:
            token = self._more(page)
            ahead: Future[dict[str, Any]] | None = None
            if token and self.pool is not None:
                ahead = self.pool.submit(self._fetch, token)
            for item in page.get("Contents", ()):
                if self.keys.past_end(item["Key"][cut:]):
                    return
                yield to_object(self.bucket, item)
            if not token:
                return
            page = ahead.result() if ahead is not None else self._fetch(token)
