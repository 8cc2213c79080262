"""Which checksum a target is written with, what verification proves, and the write conditions (lambdas/integrity.py),
by value."""

from __future__ import annotations

import pytest

from lambdas import checksums, planning
from lambdas.integrity import (
    Checksum,
    WriteSpec,
    copy_checksum_algorithm,
    multipart_spec,
    object_checksum,
    verified_by,
    whole_checksum,
    write_conditions,
)
from lambdas.limits import MiB
from lambdas.models import ExistingTarget, ObjectResult, SourceObject

PART = 8 * MiB
CRC32_FULL = Checksum("CRC32", "FULL_OBJECT", "AAAAAA==")
CRC32_COMPOSITE = Checksum("CRC32", "COMPOSITE", "AAAAAA==-3")


@pytest.mark.parametrize(("source", "part_size", "parts", "layout", "expected"), [
    # no checksum: S3's default, the parts' combination sent (checked against the parts)
    (None, PART, 3, (0, 0), WriteSpec("CRC64NVME", "FULL_OBJECT", "", "the source has no checksum")),
    # a full-object CRC: kept, whatever the part layout, and validated against the source's value
    (CRC32_FULL, PART, 3, (0, 0), WriteSpec("CRC32", "FULL_OBJECT", "AAAAAA==")),
    # a composite CRC with its layout mirrored: kept composite, validated against the source's value
    (CRC32_COMPOSITE, PART, 3, (3, PART), WriteSpec("CRC32", "COMPOSITE", "AAAAAA==-3")),
    # one part (an upload of one part: its ETag ends in -1, so no part HEAD told its layout): kept composite
    (Checksum("CRC32", "COMPOSITE", "AAAAAA==-1"), PART, 1, (0, 0), WriteSpec("CRC32", "COMPOSITE", "AAAAAA==-1")),
    # a composite CRC whose layout cannot be kept: a full-object CRC of the same algorithm, computed
    (CRC32_COMPOSITE, 16 * MiB, 2, (3, PART), WriteSpec(
        "CRC32", "FULL_OBJECT", "", "the source's composite CRC32 needs its part layout, which could not be kept")),
    # a SHA cannot be combined from parts
    (Checksum("SHA256", "FULL_OBJECT", "x"), PART, 3, (0, 0), WriteSpec(
        "CRC64NVME", "FULL_OBJECT", "", "the source's SHA256 cannot be combined from parts")),
])
def test_the_multipart_checksum_follows_the_source(source, part_size, parts, layout, expected):
    assert multipart_spec(source, part_size, parts, *layout) == expected


def test_the_completion_sends_the_sources_value_or_the_parts_combined():
    crc = checksums.CRC64NVME
    data = [b"a" * 10, b"b" * 7]
    parts = [(checksums.encode(crc, checksums.compute(crc, d)), len(d)) for d in data]
    combined = checksums.encode(crc, checksums.compute(crc, b"".join(data)))
    assert whole_checksum(WriteSpec("CRC64NVME", "FULL_OBJECT"), parts) == Checksum("CRC64NVME", "FULL_OBJECT",
                                                                                    combined)
    assert whole_checksum(WriteSpec("CRC32", "COMPOSITE", "AAAAAA==-2"), [("x", 1), ("y", 1)]) == Checksum(
        "CRC32", "COMPOSITE", "AAAAAA==-2")
    # a part without a checksum (an upload started without one): complete as it was started
    assert whole_checksum(WriteSpec("CRC64NVME", "FULL_OBJECT"), [("", 1)]) is None


def test_a_copy_object_keeps_a_sources_checksum_and_asks_crc64nvme_otherwise():
    assert copy_checksum_algorithm("CRC32C") == ""
    assert copy_checksum_algorithm("") == "CRC64NVME"


def test_a_heads_checksum_keeps_its_type_or_reads_it_from_the_value():
    assert object_checksum({"CRC32": "AAAAAA==-3"}, "") == CRC32_COMPOSITE
    assert object_checksum({"CRC32": "AAAAAA=="}, "FULL_OBJECT") == CRC32_FULL
    assert object_checksum({}, "") is None
    assert Checksum.parse(CRC32_COMPOSITE.text()) == CRC32_COMPOSITE and Checksum.parse("") is None


@pytest.mark.parametrize(("checked", "recorded", "found", "expected"), [
    ("source", "e1", "e1", "checksum"),
    ("copy", "e1", "e1", "checksum"),
    ("parts", "e1", "e1", "etag: the source has no checksum; S3 computed the target's at write time"),
    ("", "e1", "e1", "etag: no checksum was validated at write time"),
    ("source", "e1", "e2", "size: the ETag is no longer the one written (the object was written again since)"),
    ("source", "", "e2", "size: no ETag was recorded for the write"),
])
def test_verified_by_needs_the_written_etag_to_still_be_there(checked, recorded, found, expected):
    assert verified_by(checked, recorded, found) == expected


@pytest.mark.parametrize(("overwrite", "target_etag", "expected"), [
    ("never", "", (True, "")),
    ("if-different", "abc", (False, "abc")),
    ("if-different", "", (False, "")),
    ("always", "abc", (False, "")),
])
def test_write_conditions_follow_overwrite(overwrite, target_etag, expected):
    assert write_conditions(overwrite, target_etag) == expected


def test_a_composite_source_is_copied_in_parts_however_small_and_a_replaced_target_pinned():
    # GIVEN small sources: plain, full-object CRC64NVME in parts, composite CRC32 in parts; one target existing
    params = planning.PlanParams(workers=1, max_payload_bytes=100 * MiB, max_objects_per_payload=100,
                                 copy_cutoff=64 * MiB)
    objs = [SourceObject("s", "plain", MiB, "e0"),
            SourceObject("s", "full", MiB, "e1-2", checksum_algorithm="CRC64NVME"),
            SourceObject("s", "comp", MiB, "e2-2", checksum_algorithm="CRC32")]
    rows = [(objs[0], "t", "plain", ExistingTarget(5, "old")), (objs[1], "t", "full", None),
            (objs[2], "t", "comp", None)]
    # WHEN decided
    copies = planning.decide(rows, params).copies
    # THEN only the composite one goes multipart; the existing target's ETag is pinned; the algorithm travels
    assert [t.method for t in copies] == ["copy", "copy", "multipart"]
    assert [t.target_etag for t in copies] == ["old", "", ""]
    assert [t.source_checksum for t in copies] == ["", "CRC64NVME", "CRC32"]


def test_a_checkpoint_row_leaves_out_an_empty_checksum():
    row = ObjectResult("c1", 1, "s", "k", "t", "k", 5, "skipped", "none")
    assert "checksum" not in row.to_dict()
    copied = ObjectResult("c1", 1, "s", "k", "t", "k", 5, "copied", "copy", checksum="CRC32:FULL_OBJECT:AAAAAA==",
                          checksum_check="copy")
    assert ObjectResult.from_dict(copied.to_dict()) == copied
