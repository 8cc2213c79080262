import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas import limits
from lambdas.limits import GiB, MiB, TiB
from lambdas.parts import PartRange, choose_part_size, part_count, plan_parts


def test_first_part_of_a_12_mib_object():
    assert plan_parts(size=12 * MiB, part_size=5 * MiB)[0] == PartRange(number=1, first=0, last=5 * MiB - 1)
    assert plan_parts(size=12 * MiB, part_size=5 * MiB)[-1] == PartRange(3, 10 * MiB, 12 * MiB - 1)


def test_exactly_one_part_and_one_byte_over():
    assert len(plan_parts(5 * MiB, 5 * MiB)) == 1
    over = plan_parts(5 * MiB + 1, 5 * MiB)
    assert [p.nbytes for p in over] == [5 * MiB, 1]


def test_part_size_grows_to_stay_within_10000_parts():
    size = 5 * TiB
    part_size = choose_part_size(size, preferred=64 * MiB)
    assert part_count(size, part_size) <= limits.MAX_PARTS
    assert limits.MIN_PART_SIZE <= part_size <= limits.MAX_PART_SIZE


def test_source_layout_is_reused_when_uniform():
    assert choose_part_size(20 * MiB, 64 * MiB, source_parts=3, source_first_part=8 * MiB) == 8 * MiB
    # not uniform (three 8 MiB parts cannot hold 30 MiB): fall back to the preferred size
    assert choose_part_size(30 * MiB, 64 * MiB, source_parts=3, source_first_part=8 * MiB) == 64 * MiB


def test_bad_part_sizes_are_refused():
    with pytest.raises(ValueError, match="between"):
        plan_parts(10 * MiB, 1 * MiB)
    with pytest.raises(ValueError, match="10000-part"):
        plan_parts(100 * GiB, 5 * MiB)


@given(size=st.integers(min_value=0, max_value=6 * TiB // 1000), preferred=st.integers(5 * MiB, 6 * GiB))
def test_parts_cover_every_byte_once(size, preferred):
    parts = plan_parts(size, choose_part_size(size, preferred))
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].first == 0 and parts[-1].last == size - 1
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(parts))
    assert all(p.nbytes <= limits.MAX_PART_SIZE for p in parts)
