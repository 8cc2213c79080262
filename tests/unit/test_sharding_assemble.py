"""Binning segments and split chunks (lambdas/sharding/assemble.py), by value: the balance guarantee."""

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas import binning, limits, planning
from lambdas.limits import GiB, MiB
from lambdas.models import SplitCopy
from lambdas.planning import PlanParams
from lambdas.sharding.assemble import GUARANTEE_ITEMS, bin_items, guarantee_needs, ideal_load, items_of, split_task
from lambdas.sharding.layout import SegmentRef

PARAMS = PlanParams(workers=8, max_payload_bytes=1 * GiB, max_objects_per_payload=100)


def segment(n: int, nbytes: int, objects: int = 100) -> SegmentRef:
    return SegmentRef(f"seg/{n}", objects, nbytes, objects, nbytes + limits.REQUEST_COST_BYTES * objects)


def split(copy_id: int, size: int, part_size: int = 64 * MiB) -> SplitCopy:
    return SplitCopy(copy_id, "src", f"big/{copy_id}", size, f"{copy_id:032x}", "tgt", f"out/big/{copy_id}",
                     part_size, math.ceil(size / part_size), "")


# The largest a segment can cost: a full payload of bytes and of objects.
LARGEST = PARAMS.max_payload_bytes + limits.REQUEST_COST_BYTES * PARAMS.max_objects_per_payload


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64), st.lists(st.integers(0, PARAMS.max_payload_bytes), min_size=1, max_size=4000),
       st.lists(st.integers(1, 100), min_size=1, max_size=4000))
def test_balance_never_exceeds_grahams_bound(workers, sizes, objects):
    # GIVEN any segments  WHEN they are binned  THEN makespan / ideal <= 1 + largest / ideal (Graham)
    segments = [segment(i, b, objects[i % len(objects)]) for i, b in enumerate(sizes)]
    params = PlanParams(workers=workers, max_payload_bytes=PARAMS.max_payload_bytes, max_objects_per_payload=100)
    binned = bin_items(items_of(segments, [], params), workers)
    assert binned.balance <= binned.bound + 1e-9
    assert sum(len(share) for share in binned.shares) == len(segments)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64), st.data())
def test_balance_within_5_percent_with_enough_segments_per_worker(workers, data):
    # GIVEN at least 20 full segments' worth of cost per worker, in segments of any size up to full
    count = data.draw(st.integers(GUARANTEE_ITEMS * workers, GUARANTEE_ITEMS * workers + 500))
    sizes = data.draw(st.lists(st.integers(0, PARAMS.max_payload_bytes), min_size=count, max_size=count))
    objects = data.draw(st.lists(st.integers(1, 100), min_size=count, max_size=count))
    segments = [segment(i, b, o) for i, (b, o) in enumerate(zip(sizes, objects, strict=True))]
    params = PlanParams(workers=workers, max_payload_bytes=PARAMS.max_payload_bytes, max_objects_per_payload=100)
    binned = bin_items(items_of(segments, [], params), workers)
    # WHEN the ideal holds at least GUARANTEE_ITEMS of the largest item
    if binned.ideal >= GUARANTEE_ITEMS * binned.largest:
        # THEN today's guarantee holds: predicted makespan <= 1.05 x ideal
        assert binned.balance <= 1.05


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 32), st.lists(st.integers(PARAMS.max_payload_bytes + 1, 40 * GiB), min_size=1, max_size=6),
       st.integers(GUARANTEE_ITEMS * 32, GUARANTEE_ITEMS * 32 + 200))
def test_split_objects_are_chunked_below_the_limit_and_the_guarantee_holds(workers, big, count):
    # GIVEN full segments and objects larger than a payload
    params = PlanParams(workers=workers, max_payload_bytes=PARAMS.max_payload_bytes, max_objects_per_payload=100)
    segments = [segment(i, PARAMS.max_payload_bytes) for i in range(count)]
    splits = [split(10_000 + i, size) for i, size in enumerate(big)]
    items = items_of(segments, splits, params)
    limit = planning.chunk_limit(ideal_load(segments, splits, params), params)
    chunks = [i.chunk for i in items if i.chunk is not None]
    # THEN each split object's chunks cover parts 1..n once, each within the chunk limit (or one part)
    for s in splits:
        mine = sorted((c.first_part, c.last_part) for c in chunks if c.copy_id == s.copy_id)
        assert mine[0][0] == 1 and mine[-1][1] == s.part_count
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(mine))
    assert all(c.nbytes <= max(limit, c.part_size) for c in chunks)
    binned = bin_items(items, workers)
    if binned.ideal >= GUARANTEE_ITEMS * binned.largest:
        assert binned.balance <= 1.05


def test_ideal_counts_split_objects_whole_as_the_single_planner_does():
    splits = [split(1, 10 * GiB)]
    segments = [segment(0, 512 * MiB, 10)]
    expected = planning.ideal_load([split_task(s) for s in splits], PARAMS) + segments[0].cost / PARAMS.workers
    assert ideal_load(segments, splits, PARAMS) == expected


def test_binning_is_lpt_on_the_items_costs():
    segments = [segment(i, (i + 1) * 10 * MiB) for i in range(10)]
    binned = bin_items(items_of(segments, [], PARAMS), 3)
    shares, loads = binning.assign([s.cost for s in segments], 3)
    assert binned.loads == tuple(loads)
    assert [[i.segment.key for i in share] for share in binned.shares] == [[segments[j].key for j in s] for s in shares]


def test_guarantee_needs_twenty_full_segments_per_worker():
    # defaults: 10 GiB payloads of 1,000 objects cost 10 GiB + 1,000 x 4 MiB each
    params = PlanParams(workers=100, max_payload_bytes=10 * GiB, max_objects_per_payload=1000)
    assert guarantee_needs(params) == 20 * (10 * GiB + 1000 * 4 * MiB)
