"""S3's additional checksums (CRC32, CRC32C, CRC64NVME): compute, combine and encode them in pure Python.

A whole-object CRC of a copy made of parts is the combination of the parts' CRCs and lengths: no byte of the
object is read. That is what lets sfncopy ask S3 to validate a full-object checksum of a multipart copy
(CompleteMultipartUpload with ``ChecksumType: FULL_OBJECT``) from the part checksums UploadPartCopy returns,
and compare a target with its source by checksum alone. The Lambda runtime does not promise awscrt, so this
module needs nothing but the standard library.

S3 sends checksums base64-encoded, big-endian (Amazon S3 user guide, "Checking object integrity in Amazon
S3": "the base64-encoded ... checksum"). A multipart object's *composite* checksum is the checksum of the
concatenated binary part checksums, followed by ``-<number of parts>``; a *full-object* checksum is the CRC
of the whole object's bytes (same page, "Using part-level checksums for multipart uploads" and "Full object
checksums"). The three CRCs are reflected, with all-ones initial value and final XOR (the CRC catalogue's
CRC-32/ISO-HDLC, CRC-32/ISCSI and CRC-64/NVME), which is what makes zlib's ``crc32_combine`` method apply.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Crc:
    """A reflected CRC with all-ones initial value and final XOR, by width and reflected polynomial."""

    name: str
    width: int
    poly: int  # reflected
    check: int  # the CRC of b"123456789" (the CRC catalogue's check value)

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


CRC32 = Crc("CRC32", 32, 0xEDB88320, 0xCBF43926)
CRC32C = Crc("CRC32C", 32, 0x82F63B78, 0xE3069283)
CRC64NVME = Crc("CRC64NVME", 64, 0x9A6C9329AC4BC9B5, 0xAE8B14860A799888)
ALGORITHMS = {crc.name: crc for crc in (CRC32, CRC32C, CRC64NVME)}


class ChecksumError(ValueError):
    """A checksum that cannot be read or combined (unknown algorithm, bad base64, wrong length)."""


def algorithm(name: str) -> Crc:
    try:
        return ALGORITHMS[name.upper()]
    except KeyError:
        raise ChecksumError(f"{name!r} is not a CRC S3 can combine (one of {', '.join(ALGORITHMS)})") from None


# --- computing (tests, small data) ----------------------------------------------------------------------
@cache
def _table(crc: Crc) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ crc.poly if value & 1 else value >> 1
        table.append(value)
    return tuple(table)


def compute(crc: Crc, data: bytes, previous: int = 0) -> int:
    """The CRC of ``data`` (continuing ``previous``, the CRC of what came before it)."""
    table = _table(crc)
    value = previous ^ crc.mask
    for byte in data:
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ crc.mask


# --- combining (zlib's crc32_combine, for any width) ----------------------------------------------------
def _multiply(crc: Crc, a: int, b: int) -> int:
    """a(x) * b(x) modulo the polynomial, both in the reflected representation (x^0 is the top bit)."""
    top = 1 << (crc.width - 1)
    product = 0
    m = top
    while m and a:
        if a & m:
            product ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ crc.poly if b & 1 else b >> 1
    return product


@cache
def _powers(crc: Crc) -> tuple[int, ...]:
    """x^(2^k) modulo the polynomial for k = 0..63: the squares that x^n is built from."""
    powers = [1 << (crc.width - 2)]  # x^1
    for _ in range(63):
        powers.append(_multiply(crc, powers[-1], powers[-1]))
    return tuple(powers)


def _x_to_8n(crc: Crc, nbytes: int) -> int:
    """x^(8 * nbytes) modulo the polynomial: the operator that appends ``nbytes`` zero bytes."""
    result = 1 << (crc.width - 1)  # x^0
    powers = _powers(crc)
    k = 3  # 8 = 2^3
    while nbytes:
        if nbytes & 1:
            result = _multiply(crc, powers[k], result)
        nbytes >>= 1
        k += 1
    return result


def combine(crc: Crc, first: int, second: int, second_length: int) -> int:
    """The CRC of A + B from the CRC of A, the CRC of B and the length of B."""
    if second_length < 0:
        raise ChecksumError(f"a part cannot have {second_length} bytes")
    return _multiply(crc, _x_to_8n(crc, second_length), first) ^ second


def combine_all(crc: Crc, parts: Iterable[tuple[int, int]]) -> int:
    """The CRC of the concatenation of parts given as (crc, length), in order. No parts: the empty CRC."""
    total = 0
    for value, length in parts:
        total = combine(crc, total, value, length)
    return total


# --- S3's encodings ---------------------------------------------------------------------------------------
def encode(crc: Crc, value: int) -> str:
    """S3's form: base64 of the big-endian bytes."""
    return base64.b64encode(value.to_bytes(crc.width // 8, "big")).decode("ascii")


def decode(crc: Crc, text: str) -> int:
    """A checksum as S3 sends it; a composite one's ``-<parts>`` suffix is refused (it is not a CRC of bytes)."""
    if "-" in text:
        raise ChecksumError(f"{text!r} is a composite (per-part) checksum, not a CRC of the object's bytes")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as err:
        raise ChecksumError(f"{text!r} is not base64") from err
    if len(raw) != crc.width // 8:
        raise ChecksumError(f"{text!r} has {len(raw)} bytes; a {crc.name} has {crc.width // 8}")
    return int.from_bytes(raw, "big")


def full_object(name: str, parts: Sequence[tuple[str, int]]) -> str:
    """The full-object checksum S3 keeps for an object made of ``parts`` (base64 part CRC, part length)."""
    crc = algorithm(name)
    return encode(crc, combine_all(crc, ((decode(crc, value), length) for value, length in parts)))


def composite(name: str, part_checksums: Sequence[str]) -> str:
    """S3's composite checksum of a multipart upload: the CRC of the concatenated binary part checksums,
    then ``-<parts>``."""
    crc = algorithm(name)
    joined = b"".join(decode(crc, value).to_bytes(crc.width // 8, "big") for value in part_checksums)
    return f"{encode(crc, compute(crc, joined))}-{len(part_checksums)}"
