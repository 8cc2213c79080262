"""The partition of the key space (lambdas/sharding/partition.py, keyspace.py), on synthetic listings: no S3.

A synthetic listing answers probes as ListObjectsV2 would (keys after StartAfter, in order, 1,000 a page).
"""

import bisect
import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.models import CopyConfig, SourceConfig, TargetConfig
from lambdas.sharding import keyspace
from lambdas.sharding.keyspace import Alphabet, KeyRange, gallop, ladder, ranges_between, span_ratio, split_points
from lambdas.sharding.partition import (
    Partition,
    PartitionParams,
    ProbePage,
    ProbeRequest,
    order_problems,
    partition,
    split_range,
)


class Listing:
    """Sorted keys per source, answering probe batches; records every batch (for the bounds on requests)."""

    def __init__(self, *sources: Sequence[str]) -> None:
        self.keys = [sorted(set(keys)) for keys in sources]
        self.batches: list[int] = []

    def __call__(self, requests: Sequence[ProbeRequest]) -> list[ProbePage]:
        self.batches.append(len(requests))
        pages = []
        for r in requests:
            keys = self.keys[r.source]
            if r.under:
                at = bisect.bisect_left(keys, r.under)
                found = [k for k in keys[at:at + r.max_keys + 1] if k.startswith(r.under)]
            else:
                at = 0 if r.start_after is None else bisect.bisect_right(keys, r.start_after)
                found = keys[at:at + r.max_keys + 1]
            pages.append(ProbePage(tuple(found[:r.max_keys]), len(found) > r.max_keys))
        return pages

    def count(self, source: int, keys: KeyRange) -> int:
        listing = self.keys[source]
        low = 0 if keys.start_after is None else bisect.bisect_right(listing, keys.start_after)
        high = len(listing) if keys.end is None else bisect.bisect_right(listing, keys.end)
        return max(0, high - low)


def config(sources: int = 1, prefix: str = "data/", targets: tuple[TargetConfig, ...] = ()) -> CopyConfig:
    return CopyConfig(sources=tuple(SourceConfig(f"src{i}", prefix) for i in range(sources)),
                      targets=targets or (TargetConfig(0, "tgt", "out/", ("*",)),))


def assert_partition_of(cut: Partition, listing: Listing) -> None:
    """Ranges chain without gap or overlap from the start to the end, and every key is in exactly one."""
    ranges = [s.range for s in cut.shards]
    assert ranges[0].start_after is None and ranges[-1].end is None
    for before, after in itertools.pairwise(ranges):
        assert before.end is not None and before.end == after.start_after
    assert [s.index for s in cut.shards] == list(range(len(cut.shards)))
    for keys in listing.keys:
        for key in keys:
            assert sum(r.contains(key) for r in ranges) == 1, key


# --- keyspace ----------------------------------------------------------------------------------------
keys_strategy = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12)


@given(st.lists(keys_strategy, unique=True, max_size=30), st.lists(keys_strategy, max_size=200))
def test_ranges_between_hold_every_key_exactly_once(boundaries, keys):
    # GIVEN any sorted distinct boundaries  WHEN they cut the key space  THEN each key lies in one range
    ranges = ranges_between(sorted(boundaries))
    for key in keys:
        assert sum(r.contains(key) for r in ranges) == 1


def test_ranges_between_refuses_unsorted_boundaries():
    with pytest.raises(ValueError, match="increasing"):
        ranges_between(["b", "a"])


def test_python_order_is_utf8_binary_order():
    # S3 lists in UTF-8 binary order; comparing str code point by code point is the same order.
    words = ["a", "é", "\uffff", "\U0001f600", "z", "Z", "~", "\x7f", "a/b", "a-b"]
    assert sorted(words) == sorted(words, key=lambda w: w.encode())


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(keys_strategy, keys_strategy, st.integers(2, 40), st.lists(keys_strategy, max_size=20))
def test_split_points_lie_strictly_between_and_increase(a, b, pieces, seen):
    low, high = sorted((a, b))
    points = split_points(low or None, high, pieces, Alphabet(seen))
    assert all(low < p < high for p in points)
    assert points == sorted(set(points))
    assert len(points) <= pieces - 1


def test_split_points_follow_the_characters_seen():
    # GIVEN counter keys  WHEN the range between two of them is cut in 10  THEN the points are counters too
    alphabet = Alphabet([f"obj-{i:07d}.jpg" for i in range(0, 1000, 7)])
    points = split_points("obj-0000000.jpg", "obj-1000000.jpg", 10, alphabet)
    assert [p[:6] for p in points] == [f"obj-0{d}" for d in range(1, 10)]


@given(keys_strategy.filter(bool), st.one_of(st.none(), keys_strategy), st.integers(1, 30))
def test_ladder_points_follow_the_key_and_stay_below_the_end(key, hi, limit):
    points = ladder(key, hi, limit)
    assert all(p > key for p in points)
    assert all(hi is None or p < hi for p in points)
    assert points == sorted(set(points)) and len(points) <= limit


def test_ladder_marks_the_end_of_each_block():
    assert ladder("obj-0999", None, 20) == ["obj-099:", "obj-09:", "obj-0:", "obj-1", "obj.", "obk", "oc", "p"]


def test_gallop_doubles_past_the_top():
    assert gallop("a", 21)[:3] == ["a", "b", "d"]
    assert all(len(p) == 1 for p in gallop("z"))


def test_span_ratio_reads_counters_as_numbers():
    # GIVEN a page of 1,000 counter keys  THEN the rest up to 10,000 is 9 times as wide
    alphabet = Alphabet([f"{i:05d}" for i in range(1000)])
    assert span_ratio("00000", "00999", "09999", alphabet) == pytest.approx(9.0, rel=0.01)


def test_fits_keeps_boundaries_within_the_key_length_limit():
    assert keyspace.fits("a" * 1000, 24)
    assert not keyspace.fits("a" * 1000, 25)


# --- partition: properties ---------------------------------------------------------------------------
structured = st.builds(lambda parts: "/".join(parts), st.lists(
    st.sampled_from(["a", "b", "logs", "2024", "x1", "x10", "x2", "é", "Z", "-", "part-0001", "~"]),
    min_size=1, max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(structured, keys_strategy), max_size=3000), st.integers(1, 40), st.integers(2, 70))
def test_partition_covers_every_key_exactly_once(keys, shards, probes):
    # GIVEN any listing (small pages so the probes cannot list it all)  WHEN it is cut
    listing = Listing(keys)
    cut = partition(config(), PartitionParams(shards=shards, max_probes=probes, concurrency=16), _small_pages(listing))
    # THEN the ranges are disjoint, cover the space and hold every key once; probes stay within the budget
    assert cut.ordered
    assert_partition_of(cut, listing)
    assert cut.probes <= max(probes, 1)
    assert all(batch <= 16 for batch in listing.batches[1:])
    assert len(cut.shards) <= shards


def _small_pages(listing: Listing, size: int = 20):
    def probe(requests):
        return listing([ProbeRequest(r.source, r.start_after, r.under, min(r.max_keys, size)) for r in requests])
    return probe


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(structured, max_size=500), min_size=2, max_size=3), st.integers(1, 12))
def test_partition_of_several_sources_shares_one_set_of_ranges(sources, shards):
    listing = Listing(*sources)
    cut = partition(config(len(sources)), PartitionParams(shards=shards, max_probes=80), _small_pages(listing))
    assert_partition_of(cut, listing)


# --- partition: skewed key spaces ----------------------------------------------------------------------
def _balance(listing: Listing, cut: Partition) -> float:
    counts = [listing.count(0, s.range) for s in cut.shards]
    return max(counts) / (sum(counts) / len(counts))


SKEWED = {
    # name: (keys, shards wanted)
    "counters": (lambda: [f"obj-{i:07d}.jpg" for i in range(400_000)], 40),
    "long common prefix": (lambda: [f"logs/2024/01/01/server-0001/part-{i:08d}.gz" for i in range(300_000)], 30),
    "one dense folder": (lambda: [f"f{j:03d}/x{i:04d}" for j in range(300) for i in range(50)]
                         + [f"f150/dense/{i:07d}" for i in range(300_000)], 30),
    "hexadecimal names": (lambda: [f"{random.Random(i).getrandbits(128):032x}" for i in range(200_000)], 20),
}


@pytest.mark.parametrize("name", sorted(SKEWED))
def test_partition_balances_skewed_key_spaces(name):
    # GIVEN a key space with a long common prefix, a dense folder, counters or hashes
    make, shards = SKEWED[name]
    listing = Listing(make())
    budget = 16 * shards
    # WHEN it is cut with 16 probes per shard, 64 at a time
    cut = partition(config(), PartitionParams(shards=shards, max_probes=budget, concurrency=64), listing)
    # THEN every shard holds at most twice its share, with the probes within budget and concurrency
    assert_partition_of(cut, listing)
    assert len(cut.shards) == shards
    assert _balance(listing, cut) <= 2.0
    assert cut.probes <= budget and max(listing.batches) <= 64
    assert abs(cut.estimated_objects - len(listing.keys[0])) <= 0.5 * len(listing.keys[0])


def test_partition_count_follows_the_estimate():
    listing = Listing([f"k{i:06d}" for i in range(250_000)])
    cut = partition(config(), PartitionParams(objects_per_shard=50_000), listing)
    assert 4 <= len(cut.shards) <= 6
    assert_partition_of(cut, listing)


def test_small_listing_is_counted_exactly():
    listing = Listing([f"a{i}" for i in range(300)])
    cut = partition(config(), PartitionParams(objects_per_shard=1000), listing)
    assert cut.exact and cut.estimated_objects == 300 and len(cut.shards) == 1
    assert cut.probes <= 32


# --- configurations that plan in one shard --------------------------------------------------------------
def test_flatten_targets_plan_in_one_shard_without_probing():
    flat = TargetConfig(2, "tgt", "flat/", ("jpg",), flatten=True)
    listing = Listing(["a/x.jpg"])
    cut = partition(config(targets=(TargetConfig(0, "tgt", "out/", ("*",)), flat)), PartitionParams(shards=8), listing)
    assert not cut.ordered and len(cut.shards) == 1 and cut.shards[0].range == KeyRange()
    assert cut.probes == 0
    assert cut.reasons == ("s3_copy_config.target_s3_config[2].flatten: flattened keys do not follow the source's "
                           "order, so the copy plans in one shard",)


def test_nested_target_prefixes_in_one_bucket_plan_in_one_shard():
    targets = (TargetConfig(0, "tgt", "t/", ("*",)), TargetConfig(1, "tgt", "t/a/", ("jpg",)),
               TargetConfig(2, "other", "t/a/", ("png",)))
    problems = order_problems(config(targets=targets))
    assert len(problems) == 1 and "s3://tgt/t/a/ lies inside the target s3://tgt/t/" in problems[0]


@pytest.mark.parametrize(("keys", "why"), [
    (["logs/2024-01/a", "logs/2024-/x"], 'lose that "/"'),
    (["logs/2024-", "logs/2024-01/a"], "is itself an object"),
])
def test_a_prefix_without_slash_plans_in_one_shard_when_keys_break_the_order(keys, why):
    # GIVEN s3_path "logs/2024-" and a key continuing it with "/" (or equal to it)
    listing = Listing([k[len("logs/2024-"):] for k in keys])
    cut = partition(config(prefix="logs/2024-"), PartitionParams(shards=4), listing)
    # THEN the copy plans in one shard, and the reason names the field
    assert not cut.ordered and len(cut.shards) == 1
    assert why in cut.reasons[0] and cut.reasons[0].startswith("s3_copy_config.source_s3_config.s3_path")


def test_a_prefix_without_slash_is_cut_when_keys_keep_the_order():
    listing = Listing([f"{m:02d}/{i:05d}" for m in range(1, 13) for i in range(3000)])
    cut = partition(config(prefix="logs/2024-"), PartitionParams(shards=6, max_probes=60), listing)
    assert cut.ordered and len(cut.shards) == 6
    assert_partition_of(cut, listing)


# --- a shard's remaining range, cut at run time (hand-on) ---------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(structured, keys_strategy), min_size=1, max_size=1500), st.data())
def test_split_range_cuts_exactly_the_range_it_is_given(keys, data):
    # GIVEN a listing and a range (start_after, end] inside its key space
    listing = Listing(keys)
    ordered = listing.keys[0]
    start = data.draw(st.one_of(st.none(), st.sampled_from(ordered)))
    end = data.draw(st.one_of(st.none(), st.sampled_from(ordered)))
    if start is not None and end is not None and start >= end:
        start, end = None, end
    outer = KeyRange(start, end)
    # WHEN it is cut in up to 6 pieces with 40 probes of 20 keys
    pieces = split_range(config(), outer, 6, _small_pages(listing), 40)
    # THEN the pieces chain from its start to its end, and each key of the range is in exactly one
    assert pieces[0].start_after == start and pieces[-1].end == end and 1 <= len(pieces) <= 6
    for before, after in itertools.pairwise(pieces):
        assert before.end is not None and before.end == after.start_after
    for key in ordered:
        assert sum(p.contains(key) for p in pieces) == (1 if outer.contains(key) else 0)


def test_split_range_of_a_dense_remainder_gives_even_pieces():
    listing = Listing([f"big/{i:07d}" for i in range(200_000)])
    pieces = split_range(config(), KeyRange("big/0050000", None), 8, listing, 200)
    counts = [listing.count(0, p) for p in pieces]
    assert len(pieces) == 8 and sum(counts) == 149_999
    assert max(counts) <= 2 * 149_999 / 8
