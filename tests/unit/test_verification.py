"""lambdas/verification.py by value, on an in-memory bucket that answers ListObjectsV2 pages and HEADs as S3
does (key order, StartAfter exclusive, Prefix, MaxKeys, IsTruncated) and counts them."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from lambdas.errors import AccessDeniedError, NoSuchKeyError
from lambdas.gateway import ObjectHead, S3Gateway
from lambdas.models import SourceObject
from lambdas.verification import (
    HEAD_ONLY_BELOW,
    LIST_MIN_ANSWERED,
    Expected,
    VerifyStats,
    common_prefix,
    start_after,
    verify,
    verify_targets,
)


class Bucket(S3Gateway):
    """One bucket's keys and sizes; list_page and head_object as S3 answers them."""

    def __init__(self, objects: dict[str, int], denied: frozenset[str] = frozenset()) -> None:
        super().__init__(client=None)
        self.keys = sorted(objects)
        self.sizes = objects
        self.denied = denied
        self.pages: list[tuple[str, str]] = []
        self.heads: list[str] = []

    def list_page(self, bucket: str, prefix: str, start_after: str = "",
                  max_keys: int = 1000) -> tuple[list[SourceObject], bool]:
        self.pages.append((prefix, start_after))
        first = bisect_right(self.keys, start_after)
        keys = [k for k in self.keys[first:] if k.startswith(prefix)]
        page = keys[:max_keys]
        return [SourceObject(bucket, k, self.sizes[k], "e") for k in page], len(keys) > max_keys

    def head_object(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> ObjectHead:
        self.heads.append(key)
        if key in self.denied:
            raise AccessDeniedError(f"head s3://{bucket}/{key}: AccessDenied: Access Denied")
        if key not in self.sizes:
            raise NoSuchKeyError(f"head s3://{bucket}/{key}: NoSuchKey")
        return ObjectHead(size=self.sizes[key], etag="e")


def keys(count: int, folder: str = "out/") -> list[str]:
    return [f"{folder}{i:05d}.jpg" for i in range(count)]


def test_start_after_lists_the_key_itself_and_common_prefix_is_shared_characters():
    assert start_after("out/00042.jpg") == "out/00042.jp"
    assert "out/00042.jp" < "out/00042.jpg"
    assert common_prefix("out/a/1.jpg", "out/ab/9.jpg") == "out/a"
    assert common_prefix("x", "y") == ""


def test_a_dense_shard_is_checked_by_one_listing_page_per_thousand_keys():
    # GIVEN a target of 3,000 objects and a shard of 2,000 consecutive keys, one of them missing, one resized
    objects = dict.fromkeys(keys(3000), 7)
    shard = keys(3000)[500:2500]
    del objects[shard[10]]
    objects[shard[20]] = 8
    bucket = Bucket(objects)
    stats = VerifyStats()
    # WHEN verified
    problems = verify(bucket, [Expected("t", k, 7) for k in shard], stats=stats)
    # THEN two listing pages and no HEAD answered for all of them, naming the two problems
    assert (stats.list_pages, stats.heads) == (2, 0)
    assert bucket.heads == []
    assert {i: p for i, p in enumerate(problems) if p} == {
        10: f"VerificationError: s3://t/{shard[10]} does not exist after the copy",
        20: f"VerificationError: s3://t/{shard[20]} has 8 bytes, expected 7"}
    # AND each page started at the first key it had to answer for, under the shard's common prefix
    assert bucket.pages[0] == ("out/0", start_after(shard[0]))


def test_a_sparse_shard_is_probed_by_one_page_then_checked_by_heads():
    # GIVEN a shard of 100 keys spread over 100,000 (one in a thousand: a page answers for one of them)
    everything = keys(100_000)
    objects = dict.fromkeys(everything, 3)
    shard = everything[::1000]
    objects[shard[50]] = 4
    bucket = Bucket(objects)
    stats = VerifyStats()
    # WHEN verified
    problems = verify(bucket, [Expected("t", k, 3) for k in shard], stats=stats)
    # THEN one probe page, then a HEAD for each key the page did not answer for
    assert stats.list_pages == 1
    assert stats.heads == len(shard) - 1
    assert [i for i, p in enumerate(problems) if p] == [50]


def test_few_keys_go_straight_to_heads_and_a_key_that_cannot_be_read_fails():
    # GIVEN fewer keys than a probe page could pay for, one of them not readable
    shard = keys(HEAD_ONLY_BELOW - 1)
    bucket = Bucket(dict.fromkeys(shard, 1), denied=frozenset({shard[3]}))
    # WHEN verified THEN only HEADs are sent, and the unreadable one fails saying why
    problems = verify(bucket, [Expected("t", k, 1) for k in shard])
    assert bucket.pages == [] and len(bucket.heads) == len(shard)
    target = f"s3://t/{shard[3]}"
    assert problems[3] == f"VerificationError: cannot check {target}: head {target}: AccessDenied: Access Denied"
    assert [p for i, p in enumerate(problems) if i != 3] == [""] * (len(shard) - 1)


def test_listing_stops_paying_midway_and_heads_take_the_rest():
    # GIVEN a shard whose first 1,000 keys are dense and whose last 100 are spread thinly
    dense = keys(1000, "out/a/")
    spread = keys(100_000, "out/b/")
    objects = dict.fromkeys(dense + spread, 5)
    shard = dense + spread[::1000]
    bucket = Bucket(objects)
    stats = VerifyStats()
    # WHEN verified THEN listing answers the dense keys, a page answering fewer than LIST_MIN_ANSWERED stops it
    assert verify(bucket, [Expected("t", k, 5) for k in shard], stats=stats) == [""] * len(shard)
    assert stats.list_pages == 2
    assert stats.heads == 100 - 1
    assert LIST_MIN_ANSWERED > 1


def test_each_bucket_of_a_shard_is_checked_on_its_own():
    bucket = Bucket({"k1": 1, "k2": 2})
    problems = verify(bucket, [Expected("b1", "k1", 1), Expected("b2", "k2", 2), Expected("b2", "k9", 2)])
    assert problems == ["", "", "VerificationError: s3://b2/k9 does not exist after the copy"]


def test_keys_under_two_target_prefixes_of_one_bucket_are_listed_apart_under_each_prefix():
    # GIVEN one bucket with two targets' prefixes (a role may list each, not the whole bucket), dense keys in both
    objects = dict.fromkeys(keys(100, "media/") + keys(100, "docs/"), 2)
    bucket = Bucket(objects)
    shard = [Expected("t", k, 2) for k in keys(100, "media/") + keys(100, "docs/")]
    # WHEN verified with the bucket's roots
    problems = verify(bucket, shard, roots={"t": ["docs/", "media/"]})
    # THEN every listing's prefix lies under one of them (never "", their common prefix)
    assert problems == [""] * 200
    assert sorted(prefix for prefix, _ in bucket.pages) == ["docs/000", "media/000"]  # keys 00000-00099


def test_verified_by_compares_the_listed_or_headed_etag_with_the_one_written():
    # GIVEN targets the bucket lists with ETag "e": one written with "e" and validated against its source, one
    # whose source had no checksum, one written again since (its recorded ETag is another), one with none recorded
    def shard(count: int) -> list[Expected]:
        names = keys(count)
        recorded = [("e", "source"), ("e", "parts"), ("old", "source"), ("", "")]
        return [Expected("t", k, 7, *recorded[i % 4]) for i, k in enumerate(names)]

    wanted = ["checksum", "etag: the source has no checksum; S3 computed the target's at write time",
              "size: the ETag is no longer the one written (the object was written again since)",
              "size: no ETag was recorded for the write"]
    # WHEN verified by a listing (a dense shard) and by HEADs (a few keys)
    for count in (LIST_MIN_ANSWERED * 2, 4):
        bucket = Bucket(dict.fromkeys(keys(count), 7))
        verdicts = verify_targets(bucket, shard(count))
        # THEN each says how it is proven, the same either way, and none is a failure
        assert [v for v in verdicts[:4]] == [("", w) for w in wanted]
        assert bool(bucket.pages) == (count > 4) and bool(bucket.heads) == (count == 4)
