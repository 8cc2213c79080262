"""Verify copied targets shard by shard: each target exists with its planned size, and how it is proven.

What is compared needs no object data and no HEAD where a listing answers: the size and the ETag a listing (or a
HEAD) shows against the planned size and the ETag the write answered, which the worker recorded. S3 validated
each target's whole-object checksum when it was written (lambdas/integrity.py), and an object written again with
other contents gets another ETag, so an unchanged ETag shows the checksum-verified bytes are still there:
``verified_by`` is "checksum" without reading the checksum back (integrity.verified_by says when it is only "etag"
or "size").

The finalizer hands over one shard at a time (one payload's copied rows, or a batch of split copies), so
memory holds that shard and one listing page, never a whole target listing. Within a shard, each bucket's
keys are sorted and checked in key order by whichever costs less:

- a listing page (ListObjectsV2, up to 1,000 keys after StartAfter, under the keys' common prefix) answers
  for every shard key up to the page's last key, whether it is there or not; the next page starts at the
  next unanswered key (StartAfter jumps the gap), not at the page's continuation token;
- a HeadObject answers for one key.

Which costs less depends on how dense the shard's keys are among the target's keys, which only listing
shows. So the first page is a probe: while a page answers for at least LIST_MIN_ANSWERED shard keys, listing
goes on; after a page that answers for fewer, the rest of the bucket's keys get a HEAD each (concurrently).
A payload whose keys are contiguous (a folder copied by one payload) costs about one page per 1,000 keys;
a payload whose keys are spread over the whole target (the planner bins by size, so this is the usual case
in a large run) costs one probe page and a HEAD per key.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

from lambdas import limits
from lambdas.errors import NoSuchKeyError, ObjectError
from lambdas.gateway import S3Gateway
from lambdas.integrity import verified_by

# A listing page must answer for at least this many shard keys to be worth another page rather than HEADs.
# A page of 1,000 keys is one request, but S3 bills LIST with PUT, COPY and POST at about 12.5 times the
# price of a GET or HEAD (Amazon S3 pricing page, "Requests & data retrievals": PUT, COPY, POST, LIST requests
# vs GET, SELECT and all other requests; the ratio at the us-east-1 S3 Standard rates, unverified: the stored
# page does not render its figures), and botocore spends about 80 ms of CPU parsing a 1,000-key page against
# about 1.4 ms for a HEAD (measured on this machine against a local moto server; NOTES.md measured 35-40 ms a
# page on another): a page pays for itself in money from ~13 keys answered and in the finalizer's CPU (its
# bottleneck at scale) from ~57. Fewest requests alone would list whenever a page answers for 2 keys, and a
# shard spread thinly over a large target would then cost a 1,000-key page per key.
LIST_MIN_ANSWERED = 50
# Shard keys in one bucket below this go straight to HEADs: a probe page could not pay for itself.
HEAD_ONLY_BELOW = LIST_MIN_ANSWERED

T = TypeVar("T")
R = TypeVar("R")
# Runs a function over items (a thread pool's map): HEADs of one shard go out concurrently.
Mapper = Callable[[Callable[[T], R], Iterable[T]], Iterator[R]]


@dataclass(frozen=True, slots=True)
class Expected:
    """A copied target that must exist with ``size`` bytes; ``etag`` is what its write answered and ``checked``
    what S3 validated its checksum against (ObjectResult.checksum_check), "" when unknown."""

    bucket: str
    key: str
    size: int
    etag: str = ""
    checked: str = ""


# What a listing or a HEAD found of a target: (size, ETag), None when it is missing.
Found = tuple[int, str] | None
# A target's verdict: (the VerificationError text or "", verified_by or "").
Verdict = tuple[str, str]


@dataclass(slots=True)
class VerifyStats:
    """Requests verification sent, for the report and the logs."""

    list_pages: int = 0
    keys_listed: int = 0
    heads: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def size_problem(target: Expected, found: int | None) -> str:
    """The VerificationError text for a target found with ``found`` bytes (None: missing); "" when right."""
    if found is None:
        return f"VerificationError: {uri(target.bucket, target.key)} does not exist after the copy"
    if found != target.size:
        return f"VerificationError: {uri(target.bucket, target.key)} has {found} bytes, expected {target.size}"
    return ""


def verdict(target: Expected, found: Found) -> Verdict:
    """The problem ("" when the size is right) and, when right, how the target is proven (integrity.verified_by)."""
    problem = size_problem(target, None if found is None else found[0])
    if problem or found is None:
        return problem, ""
    return "", verified_by(target.checked, target.etag, found[1])


def common_prefix(first: str, last: str) -> str:
    """The characters ``first`` and ``last`` begin with (of sorted keys: what every key between begins with)."""
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]


def start_after(key: str) -> str:
    """A StartAfter that lists ``key`` itself: StartAfter is exclusive, and the key without its last
    character sorts before it (other keys between the two are listed too, and ignored)."""
    return key[:-1]


def verify(s3: S3Gateway, targets: Sequence[Expected], mapper: Mapper[int, Verdict] = map,
           stats: VerifyStats | None = None, roots: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """For each target, "" when it exists with its size, else the VerificationError text (``verify_targets``)."""
    return [problem for problem, _ in verify_targets(s3, targets, mapper, stats, roots)]


def verify_targets(s3: S3Gateway, targets: Sequence[Expected], mapper: Mapper[int, Verdict] = map,
                   stats: VerifyStats | None = None, roots: Mapping[str, Sequence[str]] | None = None) -> list[Verdict]:
    """For each target, its Verdict: ("", verified_by) when it exists with its size, else the VerificationError
    text. ``mapper`` runs
    the HEADs (a thread pool's ``map`` sends them concurrently). ``roots``: each bucket's target prefixes
    (finalizer.listing_roots); keys under different roots are listed apart, so every listing's Prefix
    begins with a target prefix: a role whose s3:ListBucket is conditioned on its target prefixes (a bucket
    narrowed to prefixes in the env file) may send it, where a common prefix of two targets' keys ("") is
    refused (the s3:prefix condition key is the ListObjectsV2 request's Prefix: Service Authorization
    Reference, "Actions, resources, and condition keys for Amazon S3", s3:prefix; generator/policies.py writes
    such conditions)."""
    stats = stats if stats is not None else VerifyStats()
    problems: list[Verdict] = [("", "")] * len(targets)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, target in enumerate(targets):
        root = next((p for p in (roots or {}).get(target.bucket, ()) if target.key.startswith(p)), "")
        groups.setdefault((target.bucket, root), []).append(index)
    to_head: list[int] = []
    for (bucket, _root), indexes in groups.items():
        indexes.sort(key=lambda i: targets[i].key)
        to_head += _by_listing(s3, bucket, indexes, targets, problems, stats)

    def head(index: int) -> Verdict:
        target = targets[index]
        try:
            head = s3.head_object(target.bucket, target.key)
            found: Found = (head.size, head.etag)
        except NoSuchKeyError:
            found = None
        except ObjectError as err:  # not missing, but not readable either: the copy cannot be trusted
            return f"VerificationError: cannot check {uri(target.bucket, target.key)}: {err}", ""
        return verdict(target, found)

    stats.heads += len(to_head)
    for index, problem in zip(to_head, mapper(head, to_head), strict=True):
        problems[index] = problem
    return problems


def _by_listing(s3: S3Gateway, bucket: str, indexes: list[int], targets: Sequence[Expected],
                problems: list[Verdict], stats: VerifyStats) -> list[int]:
    """Check ``indexes`` (sorted by key) with listing pages while they pay; return those left for HEADs."""
    if len(indexes) < HEAD_ONLY_BELOW:
        return indexes
    keys = [targets[i].key for i in indexes]
    done = 0
    while done < len(keys):
        prefix = common_prefix(keys[done], keys[-1])  # of every key left, as they are sorted
        page, truncated = s3.list_page(bucket, prefix, start_after(keys[done]), limits.LIST_PAGE_SIZE)
        stats.list_pages += 1
        stats.keys_listed += len(page)
        found = {obj.key: (obj.size, obj.etag) for obj in page}
        # A complete listing answers for every remaining key; a truncated one up to its last key.
        answered = len(keys) if not truncated else bisect_right(keys, page[-1].key, lo=done) if page else done
        for position in range(done, answered):
            index = indexes[position]
            problems[index] = verdict(targets[index], found.get(keys[position]))
        count, done = answered - done, answered
        if truncated and count < LIST_MIN_ANSWERED:
            break
    return indexes[done:]
