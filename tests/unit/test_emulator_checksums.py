"""The checksum bridge's pure parts: the fast CRCs, an upload's settings, what CompleteMultipartUpload and
UploadPart refuse, the parts list's checksums."""

from __future__ import annotations

import os
import zlib

import pytest

from lambdas import checksums
from sfncopy.emulator import checksums_bridge as bridge
from sfncopy.emulator.checksums_bridge import S3Refusal, StoredPart, UploadChecksum

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME")
DATA = os.urandom(70_000)


def _slow(name: str, data: bytes) -> int:
    return checksums.compute(checksums.algorithm(name), data)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_the_fast_crc_is_the_catalogue_crc(name):
    assert bridge.crc(name, b"123456789") == checksums.algorithm(name).check
    for length in [*range(0, 20), 63, 64, 65, 1000, len(DATA)]:
        assert bridge.crc(name, DATA[:length]) == _slow(name, DATA[:length]), length


@pytest.mark.parametrize("name", ALGORITHMS)
def test_inputs_larger_than_a_fold_chunk_are_combined(name, monkeypatch):
    monkeypatch.setattr(bridge, "FOLD_CHUNK_BYTES", 4099)
    assert bridge.crc(name, DATA) == _slow(name, DATA)


def test_crc32_agrees_with_zlib_on_megabytes():
    data = os.urandom(3 * 1024 * 1024 + 7)
    assert bridge.checksum("CRC32", data) == checksums.encode(checksums.CRC32, zlib.crc32(data))


def test_an_uploads_checksum_comes_from_its_creation_headers():
    assert bridge.upload_checksum({"x-amz-checksum-algorithm": "crc64nvme"}) == UploadChecksum("CRC64NVME",
                                                                                              "FULL_OBJECT")
    assert bridge.upload_checksum({"x-amz-checksum-algorithm": "CRC32"}) == UploadChecksum("CRC32", "COMPOSITE")
    assert bridge.upload_checksum({"x-amz-checksum-algorithm": "CRC32C", "x-amz-checksum-type": "FULL_OBJECT"}) == (
        UploadChecksum("CRC32C", "FULL_OBJECT"))
    assert bridge.upload_checksum({"x-amz-checksum-algorithm": "SHA256"}) is None
    assert bridge.upload_checksum({}) is None


def _parts(name: str, *pieces: bytes) -> list[StoredPart]:
    return [StoredPart(n, bridge.checksum(name, piece), len(piece)) for n, piece in enumerate(pieces, start=1)]


def test_the_objects_checksum_is_the_whole_crc_or_the_composite():
    a, b = DATA[:40_000], DATA[40_000:]
    full = bridge.object_checksum(UploadChecksum("CRC64NVME", "FULL_OBJECT"), _parts("CRC64NVME", a, b))
    assert full == (bridge.checksum("CRC64NVME", DATA), 1)
    value, parts = bridge.object_checksum(UploadChecksum("CRC32", "COMPOSITE"), _parts("CRC32", a, b))
    assert f"{value}-{parts}" == checksums.composite("CRC32", [p.checksum for p in _parts("CRC32", a, b)])
    assert bridge.qualified(value, "COMPOSITE", parts) == f"{value}-2"
    assert bridge.qualified(value, "FULL_OBJECT", 1) == value


FULL = UploadChecksum("CRC32", "FULL_OBJECT")
COMPOSITE = UploadChecksum("CRC32", "COMPOSITE")
A, B = DATA[:30_000], DATA[30_000:]


def _listed(parts: list[StoredPart]) -> dict[int, dict[str, str]]:
    return {p.number: {"CRC32": p.checksum} for p in parts}


def test_a_matching_completion_is_not_refused():
    parts = _parts("CRC32", A, B)
    whole = bridge.checksum("CRC32", DATA)
    assert bridge.completion_refusal(FULL, parts, {}, {"CRC32": whole}, "FULL_OBJECT") is None
    composite, count = bridge.object_checksum(COMPOSITE, parts)
    for sent in ({}, {"CRC32": composite}, {"CRC32": f"{composite}-{count}"}):
        assert bridge.completion_refusal(COMPOSITE, parts, _listed(parts), sent, None) is None


def test_completions_are_refused_as_s3_refuses_them():
    parts = _parts("CRC32", A, B)
    wrong_part = {1: {"CRC32": parts[0].checksum}, 2: {"CRC32": parts[0].checksum}}
    assert bridge.completion_refusal(FULL, parts, wrong_part, {}, None).code == "InvalidPart"  # type: ignore[union-attr]
    missing = bridge.completion_refusal(COMPOSITE, parts, {1: {"CRC32": parts[0].checksum}}, {}, None)
    assert missing == S3Refusal("InvalidRequest", "The upload was created using a crc32 checksum. The complete request "
                                                  "must include the checksum for each part. It was missing for part 2 "
                                                  "in the request.")
    assert bridge.completion_refusal(FULL, parts, {}, {}, "COMPOSITE").code == "BadDigest"  # type: ignore[union-attr]
    bad = bridge.completion_refusal(FULL, parts, {}, {"CRC32": bridge.checksum("CRC32", A)}, None)
    assert bad == S3Refusal("BadDigest", "The crc32 you specified did not match the calculated checksum.")
    other = bridge.completion_refusal(FULL, parts, {}, {"CRC64NVME": "AAAAAAAAAAA="}, None)
    assert other is not None and other.code == "InvalidRequest" and "expected checksum Type: crc32" in other.message


def test_a_full_object_upload_needs_no_part_checksums_in_the_list():
    assert bridge.completion_refusal(FULL, _parts("CRC32", A, B), {}, {}, None) is None


def test_an_uploaded_part_is_refused_for_a_wrong_value_or_another_algorithm():
    good = bridge.checksum("CRC32", A)
    assert bridge.part_refusal(COMPOSITE, {"CRC32": good}, A) is None
    assert bridge.part_refusal(COMPOSITE, {}, A) is None  # S3 computes it
    assert bridge.part_refusal(COMPOSITE, {"CRC32": good}, B).code == "BadDigest"  # type: ignore[union-attr]
    assert bridge.part_refusal(COMPOSITE, {"SHA256": None}, A).code == "InvalidRequest"  # type: ignore[union-attr]


def test_the_parts_list_gives_each_parts_checksums():
    body = (b'<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload '
            b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"e1"</ETag><PartNumber>1</PartNumber>'
            b"<ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME></Part><Part><PartNumber>2</PartNumber>"
            b"<ETag>e2</ETag></Part></CompleteMultipartUpload>")
    assert bridge.listed_checksums(body) == {1: {"CRC64NVME": "AAAAAAAAAAA="}, 2: {}}
    assert bridge.listed_checksums(b"not xml") == {}


def test_request_checksum_headers_by_algorithm():
    headers = {"X-Amz-Checksum-CRC32": "abc=", "x-amz-checksum-type": "FULL_OBJECT", "Content-Type": "x"}
    assert bridge.sent_checksums(headers) == {"CRC32": "abc="}


def test_a_corrupted_part_has_its_first_byte_inverted():
    assert bridge.corrupted(b"\x00abc") == b"\xffabc"
    assert bridge.corrupted(b"") == b""
