"""Which whole-object checksum a target is written with, and what a finished copy proves. Pure: no S3 here.

Every target sfncopy writes ends with a whole-object checksum that S3 checked at write time:

- a multipart copy (the worker's own, or a split copy the finalizer completes) creates its upload with a CRC
  algorithm and type and passes a whole-object checksum to CompleteMultipartUpload, which S3 validates against
  the parts it stored ("If the two values don't match, Amazon S3 fails the request with a BadDigest error":
  Amazon S3 User Guide, "Uploading and copying objects using multipart upload"). The value passed is the
  *source's* when the source keeps a CRC: its FULL_OBJECT value, or its COMPOSITE value when the copy mirrors the
  source's part layout (a composite checksum is calculated from the part checksums, so it depends on the part
  boundaries: Amazon S3 User Guide, "Checking object integrity for data uploads in Amazon S3", "Checksum types";
  API reference, Checksum: "a calculation based on the checksum values of each individual part"). A source without
  a usable CRC gets CRC64NVME, FULL_OBJECT, and the value passed is the combination of the part CRCs UploadPartCopy
  answered (lambdas/checksums.py): S3 then checks the object against its own part checksums, not against the
  source, and the report says so.
- a CopyObject keeps the source's checksum ("When you copy an object, if the source object has a checksum,
  that checksum value will be copied to the new object by default": Amazon S3 API reference, CopyObject,
  x-amz-checksum-algorithm; whether S3 checks the copied bytes against it is not documented, unverified), or, for
  a source without one, is asked for CRC64NVME, which S3 computes over the bytes it writes (same parameter).

A checksum travels as ``ALGORITHM:TYPE:VALUE`` (``CRC64NVME:FULL_OBJECT:AAAAAAAAAAA=``, a composite value keeps
its ``-<parts>``): base64 has no colon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lambdas import checksums

FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
# S3's default checksum (Amazon S3 API reference, CopyObjectResult, ChecksumCRC64NVME: "or if the object was uploaded
# without a checksum (and Amazon S3 added the default checksum, CRC64NVME, to the uploaded object)").
DEFAULT_ALGORITHM = "CRC64NVME"
# What a recorded checksum was checked against at write time (ObjectResult.checksum_check):
CHECKED_SOURCE = "source"  # S3 validated the target against the source's own checksum
# The source had none: S3 computed the target's (a CopyObject over the bytes it wrote; a multipart copy's checked
# against the part checksums S3 computed).
CHECKED_PARTS = "parts"
CHECKED_COPY = "copy"  # CopyObject: S3 carried the source's checksum over
CheckedAgainst = Literal["source", "parts", "copy", ""]

# Report's verified_by kinds, strongest first.
BY_CHECKSUM = "checksum"
BY_ETAG = "etag"
BY_SIZE = "size"
VERIFIED_KINDS = (BY_CHECKSUM, BY_ETAG, BY_SIZE)


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str  # CRC32, CRC32C, CRC64NVME, SHA1, SHA256
    type: str  # FULL_OBJECT or COMPOSITE
    value: str  # base64, as S3 shows it (a composite one ends in -<parts>)

    def text(self) -> str:
        return f"{self.algorithm}:{self.type}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Checksum | None:
        if not text:
            return None
        algorithm, type_, value = text.split(":", 2)
        return cls(algorithm, type_, value)


def object_checksum(values: Mapping[str, str], checksum_type: str) -> Checksum | None:
    """The object's checksum from a HEAD with checksum mode (algorithm -> value; S3 keeps at most one) and its
    ChecksumType; a value without a type is a composite one when it ends in ``-<parts>``."""
    for algorithm, value in sorted(values.items()):
        if value:
            kind = checksum_type or (COMPOSITE if _composite_parts(value) else FULL_OBJECT)
            return Checksum(algorithm, kind, value)
    return None


def _composite_parts(value: str) -> int:
    _, dash, count = value.rpartition("-")
    return int(count) if dash and count.isdigit() else 0


@dataclass(frozen=True, slots=True)
class WriteSpec:
    """How a multipart copy is written: the upload's CRC algorithm and type, and the source's checksum value S3
    must validate the completed object against ("" when the source has none usable: then the parts' combined
    CRCs are sent, and ``why`` says why the source's could not be)."""

    algorithm: str
    type: str
    expected: str = ""
    why: str = ""

    @property
    def checked(self) -> CheckedAgainst:
        return "source" if self.expected else "parts"


def multipart_spec(source: Checksum | None, part_size: int, part_count: int,
                   source_parts: int, source_first_part: int) -> WriteSpec:
    """The WriteSpec of a multipart copy of an object with checksum ``source`` (None: it has none), copied in
    ``part_count`` parts of ``part_size``, its own layout being ``source_parts`` parts of ``source_first_part``
    (0: unknown or single-part)."""
    if source is None:
        return WriteSpec(DEFAULT_ALGORITHM, FULL_OBJECT, why="the source has no checksum")
    if source.algorithm not in checksums.ALGORITHMS:
        return WriteSpec(DEFAULT_ALGORITHM, FULL_OBJECT,
                         why=f"the source's {source.algorithm} cannot be combined from parts")
    if source.type == FULL_OBJECT:
        return WriteSpec(source.algorithm, FULL_OBJECT, expected=source.value)
    # One part is one part whatever its size; more must have the source's boundaries (its count and first part size:
    # every part but the last is that size, as parts.choose_part_size mirrors it).
    mirrored = part_count == _composite_parts(source.value) and (
        part_count == 1 or (source_parts == part_count and source_first_part == part_size))
    if mirrored:
        return WriteSpec(source.algorithm, COMPOSITE, expected=source.value)
    # A composite checksum is the CRC of the part CRCs: another part layout gives another value, and S3 keeps
    # no full-object CRC for a composite object to check against.
    return WriteSpec(source.algorithm, FULL_OBJECT,
                     why=f"the source's composite {source.algorithm} needs its part layout, which could not be kept")


def completion_value(spec: WriteSpec, parts: Sequence[tuple[str, int]]) -> str:
    """The whole-object checksum to pass to CompleteMultipartUpload: the source's value, or (the source had none)
    the FULL_OBJECT CRC combined from the parts' (base64 CRC, length), in part order."""
    if spec.expected:
        return spec.expected
    return checksums.full_object(spec.algorithm, parts)


def whole_checksum(spec: WriteSpec, parts: Sequence[tuple[str, int]]) -> Checksum | None:
    """The whole-object checksum a completion asks S3 to validate, from the parts' (base64 CRC, length); None when
    a part has no checksum (an upload started without one by an older version, resumed): it completes as it was
    started, and its row says no checksum was validated."""
    if not spec.algorithm or any(not value for value, _ in parts):
        return None
    return Checksum(spec.algorithm, spec.type, completion_value(spec, parts))


def copy_checksum_algorithm(listed_algorithm: str) -> str:
    """The ChecksumAlgorithm to send with a CopyObject: none when the source keeps a checksum (S3 carries it
    over), else S3's default CRC64NVME."""
    return "" if listed_algorithm else DEFAULT_ALGORITHM


def copy_checked(listed_algorithm: str) -> CheckedAgainst:
    return "copy" if listed_algorithm else "parts"


# --- what verification proves --------------------------------------------------------------------------
def verified_by(checked: str, recorded_etag: str, found_etag: str) -> str:
    """The report's verified_by of a copied target found with its planned size and ``found_etag``: "checksum"
    when S3 validated the whole-object checksum at write time and the target is still the object written (its
    ETag is the one the write answered), else "etag: <why>" or "size: <why>".

    An ETag identifies the object's bytes as written: "The entity tag is a hash of the object. The ETag reflects
    changes only to the contents of an object, not its metadata" (Amazon S3 API reference, Object, ETag): an
    object written again with other contents gets another ETag. So a listing's ETag equal to the one the write
    returned shows the target still holds the bytes S3 validated, and no HEAD (no checksum read) is needed."""
    if not recorded_etag:
        return f"{BY_SIZE}: no ETag was recorded for the write"
    if found_etag != recorded_etag:
        return f"{BY_SIZE}: the ETag is no longer the one written (the object was written again since)"
    if checked in (CHECKED_SOURCE, CHECKED_COPY):
        return BY_CHECKSUM
    if checked == CHECKED_PARTS:
        return f"{BY_ETAG}: the source has no checksum; S3 computed the target's at write time"
    return f"{BY_ETAG}: no checksum was validated at write time"


def verified_kind(verified: str) -> str:
    """"etag: why" -> "etag"."""
    return verified.split(":", 1)[0]


# --- conditional writes --------------------------------------------------------------------------------
def write_conditions(overwrite: str, target_etag: str) -> tuple[bool, str]:
    """(If-None-Match: *, If-Match ETag) of a write under ``overwrite`` (Amazon S3 User Guide, "How to prevent
    object overwrites with conditional writes"): ``never`` writes only where no object exists, so one written
    by someone else after planning is never overwritten; ``if-different`` replaces a target that existed at
    planning only while it still has the ETag it had then (``target_etag``); ``always`` writes unconditionally,
    and so does ``if-different`` where no target existed (a key written since by someone else is overwritten,
    as before: If-None-Match there would refuse a concurrent sfncopy run writing the same bytes)."""
    if overwrite == "never":
        return True, ""
    if overwrite == "if-different" and target_etag:
        return False, target_etag
    return False, ""
