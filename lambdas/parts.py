"""Part planning for multipart copies: pure functions of sizes.

Part numbers start at 1, byte ranges at 0 and are inclusive (``bytes=0-5242879`` is the first 5 MiB).
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas import limits


@dataclass(frozen=True, slots=True)
class PartRange:
    number: int  # 1-based
    first: int  # zero-based, inclusive
    last: int  # zero-based, inclusive

    @property
    def nbytes(self) -> int:
        return self.last - self.first + 1


def part_count(size: int, part_size: int) -> int:
    """Parts needed for ``size`` bytes (an empty object still has one, empty, part)."""
    return max(1, -(-size // part_size))


def choose_part_size(size: int, preferred: int, source_parts: int = 0, source_first_part: int = 0) -> int:
    """The part size for copying an object of ``size`` bytes.

    When the source was itself uploaded in ``source_parts`` parts of ``source_first_part`` bytes (all
    but the last the same size, as every SDK uploads), reuse that layout: the target then gets the same
    multipart ETag, so a later run can prove the two identical. Otherwise use ``preferred``, raised as
    far as needed to stay within 10,000 parts, and kept within S3's 5 MiB..5 GiB part bounds.
    """
    if size > limits.MAX_OBJECT_SIZE:
        raise ValueError(f"object of {size} bytes is larger than S3's {limits.MAX_OBJECT_SIZE}-byte limit")
    if source_parts > 1 and _uniform_layout(size, source_parts, source_first_part):
        return source_first_part
    needed = -(-size // limits.MAX_PARTS)  # the smallest part size that fits in 10,000 parts
    part_size = max(preferred, needed, limits.MIN_PART_SIZE)
    return min(part_size, limits.MAX_PART_SIZE)


def _uniform_layout(size: int, parts: int, first: int) -> bool:
    in_bounds = limits.MIN_PART_SIZE <= first <= limits.MAX_PART_SIZE and parts <= limits.MAX_PARTS
    return in_bounds and (parts - 1) * first < size <= parts * first


def part_range(number: int, part_size: int, size: int) -> PartRange:
    first = (number - 1) * part_size
    last = min(number * part_size, size) - 1
    return PartRange(number=number, first=first, last=max(last, first - 1))


def plan_parts(size: int, part_size: int) -> list[PartRange]:
    """Every part of an object, covering bytes 0..size-1 exactly once."""
    if part_size < limits.MIN_PART_SIZE or part_size > limits.MAX_PART_SIZE:
        raise ValueError(f"part size {part_size} must be between {limits.MIN_PART_SIZE} and {limits.MAX_PART_SIZE}")
    count = part_count(size, part_size)
    if count > limits.MAX_PARTS:
        raise ValueError(f"{count} parts of {part_size} bytes exceed S3's {limits.MAX_PARTS}-part limit")
    return [part_range(n, part_size, size) for n in range(1, count + 1)]
