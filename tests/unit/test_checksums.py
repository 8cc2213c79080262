"""S3's CRCs in pure Python: the catalogue's check values, zlib agreement, and combination from parts."""

from __future__ import annotations

import base64
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas import checksums
from lambdas.checksums import CRC32, CRC32C, CRC64NVME, ChecksumError

ALL = (CRC32, CRC32C, CRC64NVME)


@pytest.mark.parametrize("crc", ALL, ids=lambda c: c.name)
def test_each_crc_has_the_catalogues_check_value(crc: checksums.Crc) -> None:
    assert checksums.compute(crc, b"123456789") == crc.check


@given(st.binary(max_size=300))
def test_crc32_agrees_with_zlib(data: bytes) -> None:
    assert checksums.compute(CRC32, data) == zlib.crc32(data)


@pytest.mark.parametrize("crc", ALL, ids=lambda c: c.name)
@settings(max_examples=60)
@given(parts=st.lists(st.binary(max_size=200), max_size=6))
def test_the_crc_of_a_whole_is_combined_from_its_parts_crcs_and_lengths(crc: checksums.Crc,
                                                                      parts: list[bytes]) -> None:
    # GIVEN the parts' CRCs and lengths only  THEN their combination is the CRC of the concatenated bytes
    combined = checksums.combine_all(crc, [(checksums.compute(crc, p), len(p)) for p in parts])
    assert combined == checksums.compute(crc, b"".join(parts))


def test_combining_covers_parts_of_gigabytes() -> None:
    # GIVEN "abc" followed by a part of 1 GiB + 1 byte of zeros, whose CRC32 zlib computes in pieces
    length = 1024**3 + 1
    chunk = bytes(64 * 1024 * 1024)
    value = 0
    for _ in range(16):
        value = zlib.crc32(chunk, value)
    part = zlib.crc32(b"\0", value)
    # THEN the combination equals zlib's CRC of the whole, without reading the part again
    whole = zlib.crc32(b"\0", _zeros_after(b"abc", 16, chunk))
    assert checksums.combine(CRC32, zlib.crc32(b"abc"), part, length) == whole


def _zeros_after(prefix: bytes, times: int, chunk: bytes) -> int:
    value = zlib.crc32(prefix)
    for _ in range(times):
        value = zlib.crc32(chunk, value)
    return value


def test_s3s_encoding_is_base64_of_the_big_endian_bytes() -> None:
    value = checksums.compute(CRC32, b"hello")
    assert checksums.encode(CRC32, value) == base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    assert checksums.decode(CRC32, checksums.encode(CRC32, value)) == value
    assert len(base64.b64decode(checksums.encode(CRC64NVME, 1))) == 8


def test_full_object_and_composite_checksums_of_a_multipart_object() -> None:
    parts = [b"a" * 100, b"b" * 50, b"c"]
    encoded = [(checksums.encode(CRC32C, checksums.compute(CRC32C, p)), len(p)) for p in parts]
    whole = checksums.compute(CRC32C, b"".join(parts))
    assert checksums.full_object("crc32c", encoded) == checksums.encode(CRC32C, whole)
    joined = b"".join(checksums.compute(CRC32C, p).to_bytes(4, "big") for p in parts)
    assert checksums.composite("CRC32C", [value for value, _ in encoded]) == (
        checksums.encode(CRC32C, checksums.compute(CRC32C, joined)) + "-3")


def test_what_cannot_be_combined_is_refused_with_the_reason() -> None:
    with pytest.raises(ChecksumError, match="not a CRC S3 can combine"):
        checksums.algorithm("SHA256")
    with pytest.raises(ChecksumError, match="composite"):
        checksums.decode(CRC32, "AAAAAA==-3")
    with pytest.raises(ChecksumError, match="has 8 bytes; a CRC32 has 4"):
        checksums.decode(CRC32, checksums.encode(CRC64NVME, 5))
    with pytest.raises(ChecksumError, match="not base64"):
        checksums.decode(CRC32, "***")
