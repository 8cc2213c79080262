"""Gap 11 of moto 5.2.5: S3's additional checksums (CRC32, CRC32C, CRC64NVME) on multipart uploads and copies.

What S3 does (the pages each rule comes from), and what moto 5.2.5 did instead:

- CreateMultipartUpload with ``x-amz-checksum-algorithm`` and ``x-amz-checksum-type`` (``COMPOSITE`` or
  ``FULL_OBJECT``; without a type: FULL_OBJECT for CRC64NVME, COMPOSITE for the others) makes every part carry that
  checksum: UploadPartCopy answers it in ``CopyPartResult`` ("present if the multipart upload request was created
  with the CRC64NVME checksum algorithm": API reference, CopyPartResult), UploadPart in the ``x-amz-checksum-*``
  header, ListParts per part (API reference, Part: ChecksumCRC64NVME ...). moto kept the two headers as upload
  metadata but gave no part a checksum: UploadPartCopy and ListParts answered none, and UploadPart only echoed a
  checksum the client had sent.
- UploadPart checks a checksum it is sent against the bytes (``BadDigest``) and refuses one of another algorithm
  than the upload's (``InvalidRequest``, "Checksum Type mismatch occurred, expected checksum Type: crc64nvme, actual
  checksum Type: crc32", S3's answer as quoted in apache/arrow-rs#6793). moto checked neither.
- CompleteMultipartUpload checks what it is sent against the parts S3 stored (API reference,
  CompleteMultipartUpload; user guide, "Uploading and copying objects using multipart upload": "If the two values
  don't match, Amazon S3 fails the request with a BadDigest error"):
    a part's checksum in the parts list that is not the stored part's: ``InvalidPart`` (S3's error for a list
      that does not match the stored parts);
    a COMPOSITE upload's part listed without its checksum: ``InvalidRequest`` ("The upload was created using a
      crc32 checksum. The complete request must include the checksum for each part. It was missing for part 1 in
      the request.", S3's message as quoted in boto/boto3#3288 and aws/aws-sdk-php#2648);
    ``x-amz-checksum-type`` other than the upload's: ``BadDigest`` (API reference, CompleteMultipartUpload,
      x-amz-checksum-type);
    a whole-object checksum (``x-amz-checksum-crc64nvme`` ...) that is not the object's: ``BadDigest``, "The
      crc64nvme you specified did not match the calculated checksum." (S3's wording as quoted in
      apache/arrow-rs-object-store#709). For FULL_OBJECT it is the CRC of the object's bytes (computed here from the
      part CRCs and lengths, as S3 does: ``lambdas.checksums.full_object``); for COMPOSITE, ``<b64>-<parts>``.
  A refused completion leaves the upload open (the client may complete again or abort), as S3 does. moto ignored
  all of it; it computed a checksum of its own (wrong for CRC32C and CRC64NVME without the optional crc32c and
  awscrt packages, which it silently replaces by CRC32) and answered it nowhere but GetObject.
- The completed object keeps the checksum and its type: HeadObject and GetObject with ``ChecksumMode: ENABLED``
  answer ``x-amz-checksum-crc64nvme`` and ``x-amz-checksum-type`` (a composite one as ``<b64>-<parts>``), and so do
  CompleteMultipartUpload's result and GetObjectAttributes (moto's own). moto's HeadObject answered no type and a
  composite value without its ``-<parts>``.
- CopyObject with ``x-amz-checksum-algorithm`` gives the copy that checksum of its bytes, a FULL_OBJECT one;
  without it the copy keeps the source's checksum (API reference, CopyObject, x-amz-checksum-algorithm: "if the
  source object has a checksum, that checksum value will be copied to the new object by default"). moto computed
  the requested one (wrongly for CRC32C and CRC64NVME, see above) but gave it no type, and kept a source's
  algorithm and value but not its type and part count.

Not bridged: SHA1/SHA256 uploads keep moto's behaviour; S3's default CRC64NVME checksum on objects written without
one (PutObject and uploads without an algorithm) is not added; GetObjectAttributes keeps moto's answer (a composite
value without ``-<parts>``, no ``ObjectParts``).

A part copy can be corrupted on purpose (faults.py, ``s3.corrupt_parts``): the middleware marks the request with
``corrupting_part_copy()`` and the part then stores its copied bytes with the first one inverted; its ETag and
checksum are those of the bytes stored, as S3's would be.

``crc`` computes the CRCs in pure Python at tens of MB/s (``lambdas.checksums.compute`` reads a byte at a time,
~7 MB/s, too slow for the emulator's parts): CRC32 is zlib's; CRC32C and CRC64NVME fold the message as one big
integer (see ``_linear_crc``).
"""

from __future__ import annotations

import base64
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from xml.etree import ElementTree

from lambdas import checksums

FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
CRCS = tuple(checksums.ALGORITHMS)  # "CRC32", "CRC32C", "CRC64NVME"
# Every algorithm S3 can name in an x-amz-checksum-* header (the CRCs are the ones bridged here).
HEADER_ALGORITHMS = (*CRCS, "SHA1", "SHA256")
# Big inputs are folded in chunks of this size and combined, so memory stays a small multiple of a chunk.
FOLD_CHUNK_BYTES = 8 * 1024 * 1024
# The upload's settings, kept by moto as upload metadata (request headers).
ALGORITHM_HEADER = "x-amz-checksum-algorithm"
TYPE_HEADER = "x-amz-checksum-type"

Patch = tuple[Any, str, Any]  # (owner, attribute, replacement), installed and undone by Bridges


# --- computing: fast enough for the emulator's parts --------------------------------------------------------------
_REVERSED_BITS = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def crc(name: str, data: bytes) -> int:
    """The CRC ``name`` (CRC32, CRC32C, CRC64NVME) of ``data``, as ``lambdas.checksums.compute`` defines it."""
    algorithm = checksums.algorithm(name)
    if algorithm == checksums.CRC32:
        return zlib.crc32(data)
    view = memoryview(data)
    total = 0
    for start in range(0, len(view), FOLD_CHUNK_BYTES):
        chunk = bytes(view[start:start + FOLD_CHUNK_BYTES])
        total = checksums.combine(algorithm, total, _folded_crc(algorithm, chunk), len(chunk))
    return total


def checksum(name: str, data: bytes) -> str:
    """S3's form of ``crc(name, data)``: base64 of the big-endian bytes."""
    return checksums.encode(checksums.algorithm(name), crc(name, data))


def _folded_crc(algorithm: checksums.Crc, data: bytes) -> int:
    width = algorithm.width
    if len(data) < width // 8:
        return checksums.compute(algorithm, data)
    # The all-ones initial value is the same as inverting the first ``width`` bits of the message.
    message = int.from_bytes(data.translate(_REVERSED_BITS), "big") ^ (algorithm.mask << (8 * len(data) - width))
    return _reflect(_linear_crc(message, 8 * len(data), _normal_polynomial(algorithm)), width) ^ algorithm.mask


def _linear_crc(message: int, bits: int, polynomial: int) -> int:
    """``message(x) * x^w mod P(x)`` over GF(2) (bit ``bits - 1`` of ``message`` is the first one sent). The top
    half H of M = H x^k + L is folded onto the bottom as ``H (x^k mod P) + L``: a product by a w-bit constant is
    ~w/2 shifts and XORs of big integers, which CPython does at memory speed, so the work is ~w passes over the
    message instead of one Python step per byte."""
    width = polynomial.bit_length() - 1
    message <<= width
    bits += width
    while bits > 8 * width:
        k = bits // 2
        message = _carryless_product(message >> k, _x_power_mod(k, polynomial)) ^ (message & ((1 << k) - 1))
        bits = max(k, bits - k + width)
    return _mod(message, polynomial)


def _carryless_product(big: int, small: int) -> int:
    product = 0
    shift = 0
    while small:
        if small & 1:
            product ^= big << shift
        small >>= 1
        shift += 1
    return product


def _mod(value: int, polynomial: int) -> int:
    width = polynomial.bit_length() - 1
    degree = value.bit_length() - 1
    while degree >= width:
        value ^= polynomial << (degree - width)
        degree = value.bit_length() - 1
    return value


@lru_cache(maxsize=512)
def _x_power_mod(exponent: int, polynomial: int) -> int:
    result, base = 1, _mod(2, polynomial)
    while exponent:
        if exponent & 1:
            result = _mod(_carryless_product(result, base), polynomial)
        base = _mod(_carryless_product(base, base), polynomial)
        exponent >>= 1
    return result


def _normal_polynomial(algorithm: checksums.Crc) -> int:
    return (1 << algorithm.width) | _reflect(algorithm.poly, algorithm.width)


def _reflect(value: int, width: int) -> int:
    return int(f"{value:0{width}b}"[::-1], 2)


# --- what S3 checks ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadChecksum:
    """The checksum an upload was created with."""

    algorithm: str  # CRC32, CRC32C or CRC64NVME
    type: str  # FULL_OBJECT or COMPOSITE


def upload_checksum(metadata: Mapping[str, Any]) -> UploadChecksum | None:
    """The upload's CRC settings from its metadata (moto keeps the CreateMultipartUpload headers); None when it was
    created without one of the CRCs."""
    name = str(metadata.get(ALGORITHM_HEADER) or "").upper()
    if name not in CRCS:
        return None
    kind = str(metadata.get(TYPE_HEADER) or "").upper() or (FULL_OBJECT if name == "CRC64NVME" else COMPOSITE)
    return UploadChecksum(name, kind)


@dataclass(frozen=True)
class StoredPart:
    number: int
    checksum: str  # base64, the upload's algorithm
    size: int


@dataclass(frozen=True)
class S3Refusal:
    """An S3 error to answer: its code and message."""

    code: str
    message: str


def object_checksum(upload: UploadChecksum, parts: Sequence[StoredPart]) -> tuple[str, int]:
    """The completed object's checksum, as (base64 value, parts): the CRC of its bytes for FULL_OBJECT (parts = 1),
    the CRC of the concatenated part CRCs for COMPOSITE (S3 shows it as ``<value>-<parts>``)."""
    if upload.type == FULL_OBJECT:
        return checksums.full_object(upload.algorithm, [(p.checksum, p.size) for p in parts]), 1
    value, _, count = checksums.composite(upload.algorithm, [p.checksum for p in parts]).partition("-")
    return value, int(count)


def qualified(value: str, kind: str | None, parts: int | None) -> str:
    """The value as S3 shows it: a composite checksum ends in ``-<parts>``."""
    return f"{value}-{parts}" if kind == COMPOSITE and parts else value


def completion_refusal(upload: UploadChecksum, parts: Sequence[StoredPart], listed: Mapping[int, Mapping[str, str]],
                       sent: Mapping[str, str], sent_type: str | None) -> S3Refusal | None:
    """What CompleteMultipartUpload answers instead of completing (None: it completes). ``parts`` are the stored
    parts the request lists, in its order; ``listed`` the checksums the request gives per part number
    ({"CRC32": value}); ``sent`` the whole-object checksums in its headers; ``sent_type`` its x-amz-checksum-type."""
    name = upload.algorithm.lower()
    if sent_type and sent_type.upper() != upload.type:
        return S3Refusal("BadDigest", f"The upload was created using the {upload.type} checksum mode. The complete "
                                      "request must use the same checksum mode.")
    for part in parts:
        given = listed.get(part.number, {})
        if upload.algorithm not in given:
            if upload.type == COMPOSITE:
                return S3Refusal("InvalidRequest", f"The upload was created using a {name} checksum. The complete "
                                                   "request must include the checksum for each part. It was missing "
                                                   f"for part {part.number} in the request.")
        elif given[upload.algorithm] != part.checksum:
            return S3Refusal("InvalidPart", "One or more of the specified parts could not be found. The part may not "
                                            "have been uploaded, or the specified entity tag may not match the part's "
                                            "entity tag.")
    other = sorted(set(sent) - {upload.algorithm})
    if other:
        return _type_mismatch(upload.algorithm, other[0])
    if upload.algorithm in sent:
        value, count = object_checksum(upload, parts)
        expected = {value, qualified(value, upload.type, count)}
        if sent[upload.algorithm] not in expected:
            return S3Refusal("BadDigest", f"The {name} you specified did not match the calculated checksum.")
    return None


def part_refusal(upload: UploadChecksum, sent: Mapping[str, str | None], body: bytes) -> S3Refusal | None:
    """What UploadPart answers instead of storing the part (None: it stores it). ``sent``: the part checksums the
    request carries, by algorithm (None when the value is in a trailer this bridge cannot read)."""
    other = sorted(set(sent) - {upload.algorithm})
    if other:
        return _type_mismatch(upload.algorithm, other[0])
    value = sent.get(upload.algorithm)
    if value is not None and value != checksum(upload.algorithm, body):
        return S3Refusal("BadDigest", f"The {upload.algorithm.lower()} you specified did not match the calculated "
                                      "checksum.")
    return None


def _type_mismatch(expected: str, actual: str) -> S3Refusal:
    return S3Refusal("InvalidRequest", f"Checksum Type mismatch occurred, expected checksum Type: {expected.lower()}, "
                                       f"actual checksum Type: {actual.lower()}")


def listed_checksums(body: bytes) -> dict[int, dict[str, str]]:
    """CompleteMultipartUpload's parts list: the checksums it gives per part number ({"CRC32": value})."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}  # moto answers MalformedXML itself
    found: dict[int, dict[str, str]] = {}
    for part in root.iter():
        if _local(part.tag) != "Part":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in part}
        try:
            number = int(fields.get("PartNumber", ""))
        except ValueError:
            continue
        found[number] = {name: fields[f"Checksum{name}"] for name in HEADER_ALGORITHMS if f"Checksum{name}" in fields}
    return found


def sent_checksums(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-checksum-<algorithm>`` headers of a request, by algorithm."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[f"x-amz-checksum-{name.lower()}"] for name in HEADER_ALGORITHMS
            if f"x-amz-checksum-{name.lower()}" in lowered}


def corrupted(value: bytes) -> bytes:
    """The bytes a corrupted part copy stores: the first one inverted."""
    return bytes([value[0] ^ 0xFF]) + value[1:] if value else value


# --- the request being served -------------------------------------------------------------------------------------
_request = threading.local()


@contextmanager
def corrupting_part_copy() -> Iterator[None]:
    """While the middleware hands this UploadPartCopy to moto: store the copied part corrupted (faults.py)."""
    _request.corrupt = True
    try:
        yield
    finally:
        _request.corrupt = False


# --- the patches ----------------------------------------------------------------------------------------------------
def checksum_patches() -> list[Patch]:
    """The moto attributes this bridge replaces, with their replacements (``Bridges`` installs and undoes them)."""
    import moto.s3.models as models
    import moto.s3.responses as responses
    from moto.s3.models import FakeMultipart, S3Backend
    from moto.s3.responses import S3Response

    return [
        (models, "compute_checksum", _correct_crcs(models.__dict__["compute_checksum"])),
        (responses, "compute_checksum", _correct_crcs(responses.__dict__["compute_checksum"])),
        (models, "MultipartChecksumBuilder", _builder_for_other_algorithms(models.MultipartChecksumBuilder)),
        (FakeMultipart, "set_part", _set_part_with_checksum(FakeMultipart.set_part)),
        (S3Backend, "upload_part_copy", _upload_part_copy_maybe_corrupted(S3Backend.upload_part_copy)),
        (S3Backend, "complete_multipart_upload", _complete_keeping_checksum(S3Backend.complete_multipart_upload)),
        (S3Backend, "copy_object", _copy_keeping_checksum_type(S3Backend.copy_object)),
        (S3Response, "upload_part", _upload_part_checked(S3Response.upload_part)),
        (S3Response, "_complete_multipart_body", _completion_checked(S3Response._complete_multipart_body)),
        (S3Response, "serialized", _results_with_checksums(S3Response.serialized)),
        (S3Response, "head_object", _head_with_checksum(S3Response.head_object)),
        (S3Response, "get_object", _get_with_checksum(S3Response.get_object)),
    ]


def _s3_error(refusal: S3Refusal) -> Exception:
    from moto.s3.exceptions import S3ClientError

    return S3ClientError(refusal.code, refusal.message)


def _correct_crcs(original: Callable[..., bytes]) -> Callable[..., bytes]:
    """moto's compute_checksum, with CRC32C and CRC64NVME computed (moto falls back to CRC32 without its optional
    packages)."""

    def compute_checksum(body: bytes, algorithm: str, encode_base64: bool = True) -> bytes:
        name = algorithm.upper()
        if name not in ("CRC32C", "CRC64NVME"):
            return original(body, algorithm, encode_base64)
        raw = crc(name, body).to_bytes(checksums.algorithm(name).width // 8, "big")
        return base64.b64encode(raw) if encode_base64 else raw

    return compute_checksum


def _builder_for_other_algorithms(original: type[Any]) -> Callable[[str | None, str | None], Any]:
    """moto's MultipartChecksumBuilder computes, at completion, a checksum of the whole object from its bytes; for the
    CRC uploads this bridge computes it from the part checksums instead (and for uploads without an algorithm moto's
    default value was never shown), so moto's is skipped for them."""

    class Skipped:
        def addPart(self, part: bytes) -> None:  # moto's name
            pass

        def build(self) -> None:
            return None

    def builder(checksum_algorithm: str | None, checksum_type: str | None) -> Any:
        if not checksum_algorithm or checksum_algorithm.upper() in CRCS:
            return Skipped()
        return original(checksum_algorithm, checksum_type)

    return builder


def _set_part_with_checksum(original: Callable[..., Any]) -> Callable[..., Any]:
    """Every part stored in an upload made with a CRC gets that checksum of its bytes (UploadPart, UploadPartCopy)."""

    def set_part(multipart: Any, part_id: int, value: bytes) -> Any:
        part = original(multipart, part_id, value)
        upload = upload_checksum(multipart.metadata)
        if upload is not None:
            part.checksum_algorithm = upload.algorithm
            part.checksum_value = checksum(upload.algorithm, value)
        return part

    return set_part


def _upload_part_copy_maybe_corrupted(original: Callable[..., Any]) -> Callable[..., Any]:
    def upload_part_copy(backend: Any, dest_bucket_name: str, multipart_id: str, part_id: int, *args: Any,
                         **kwargs: Any) -> Any:
        part = original(backend, dest_bucket_name, multipart_id, part_id, *args, **kwargs)
        if getattr(_request, "corrupt", False):
            multipart = backend.get_bucket(dest_bucket_name).multiparts[multipart_id]
            part = multipart.set_part(part_id, corrupted(part.value))
        return part

    return upload_part_copy


def _complete_keeping_checksum(original: Callable[..., Any]) -> Callable[..., Any]:
    def complete_multipart_upload(backend: Any, bucket_name: str, multipart_id: str, body: Any) -> Any:
        multipart = backend.get_bucket(bucket_name).multiparts.get(multipart_id)
        upload = upload_checksum(multipart.metadata) if multipart is not None else None
        if upload is None:
            return original(backend, bucket_name, multipart_id, body)
        used: list[int] = []

        def recording() -> Iterator[tuple[int, str]]:
            for number, etag in body:
                used.append(number)
                yield number, etag

        key = original(backend, bucket_name, multipart_id, recording())
        if key is not None:
            parts = [_stored(number, multipart.parts[number]) for number in used]
            key.checksum_value, key.checksum_parts = object_checksum(upload, parts)
            key.checksum_algorithm, key.checksum_type = upload.algorithm, upload.type
            for name in (ALGORITHM_HEADER, TYPE_HEADER):  # moto copies them into the object's metadata (headers)
                key._metadata.pop(name, None)
        return key

    return complete_multipart_upload


def _stored(number: int, part: Any) -> StoredPart:
    return StoredPart(number, str(part.checksum_value or ""), int(part.size))


def _copy_keeping_checksum_type(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto keeps a source's checksum algorithm and value on the copy, but not its type and part count."""

    def copy_object(backend: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any,
                    **kwargs: Any) -> Any:
        result = original(backend, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
        if src_key.checksum_value:
            new_key = backend.get_object(dest_bucket_name, dest_key_name)
            new_key.checksum_type = src_key.checksum_type or FULL_OBJECT
            new_key.checksum_parts = src_key.checksum_parts
        return result

    return copy_object


def _multipart_of(response: Any) -> Any:
    from moto.s3.exceptions import MissingBucket

    try:
        bucket = response.backend.get_bucket(response.bucket_name)
    except MissingBucket:
        return None
    return bucket.multiparts.get(response._get_param("uploadId"))


def _request_headers(response: Any) -> dict[str, str]:
    return {str(name): str(value) for name, value in response.headers.items()}


def _upload_part_checked(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def upload_part(response: Any) -> Any:
        multipart = _multipart_of(response)
        upload = upload_checksum(multipart.metadata) if multipart is not None else None
        if upload is None:
            return original(response)
        sent: dict[str, str | None] = dict(sent_checksums(_request_headers(response)))
        trailer = str(response.headers.get("x-amz-trailer", "")).lower()
        for name in HEADER_ALGORITHMS:
            if trailer == f"x-amz-checksum-{name.lower()}":
                found = re.search(rb"x-amz-checksum-\w+:(\S+)", response.raw_body or b"")
                sent[name] = found.group(1).decode("ascii") if found else None
        refusal = part_refusal(upload, sent, response.body or b"")
        if refusal is not None:
            raise _s3_error(refusal)
        status, headers, body = original(response)
        part = multipart.parts.get(response._get_int_param("partNumber"))
        if part is not None and part.checksum_value:
            headers[f"x-amz-checksum-{upload.algorithm.lower()}"] = part.checksum_value
        return status, headers, body

    return upload_part


def _completion_checked(original: Callable[[Any, bytes], Iterator[tuple[int, str]]]) -> Callable[..., Any]:
    """moto reads the parts list here, just before it completes (and after it checked If-None-Match): the checks
    S3 makes on the checksums come first, so a refused completion leaves the upload as it was."""

    def _complete_multipart_body(response: Any, body: bytes) -> Iterator[tuple[int, str]]:
        listed = list(original(response, body))
        multipart = _multipart_of(response)
        upload = upload_checksum(multipart.metadata) if multipart is not None else None
        if upload is None or not _parts_match(multipart, listed):
            return iter(listed)  # moto answers InvalidPart itself for a part it does not have
        parts = [_stored(number, multipart.parts[number]) for number, _ in listed]
        refusal = completion_refusal(upload, parts, listed_checksums(body), sent_checksums(_request_headers(response)),
                                     response.headers.get(TYPE_HEADER))
        if refusal is not None:
            raise _s3_error(refusal)
        return iter(listed)

    return _complete_multipart_body


def _parts_match(multipart: Any, listed: Sequence[tuple[int, str]]) -> bool:
    for number, etag in listed:
        part = multipart.parts.get(number)
        if part is None or part.etag.strip('"') != etag.strip('"'):
            return False
    return True


def _results_with_checksums(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """moto serialises each result dict by its botocore output shape, which has the checksum fields moto leaves out:
    they are filled in here, from the parts and objects as this bridge keeps them."""

    def serialized(response: Any, action_result: Any) -> Any:
        result = action_result.result
        action = response.data.get("Action") if isinstance(response.data, dict) else None
        if isinstance(result, dict) and action in _RESULT_FILLERS:
            _RESULT_FILLERS[action](response, result)
        return original(response, action_result)

    return serialized


def _fill_part_copy(response: Any, result: dict[str, Any]) -> None:
    multipart = _multipart_of(response)
    part = multipart.parts.get(response._get_int_param("partNumber")) if multipart is not None else None
    if part is not None and part.checksum_algorithm in CRCS and part.checksum_value:
        result["CopyPartResult"][f"Checksum{part.checksum_algorithm}"] = part.checksum_value


def _fill_parts(response: Any, result: dict[str, Any]) -> None:
    multipart = _multipart_of(response)
    upload = upload_checksum(multipart.metadata) if multipart is not None else None
    if upload is None:
        return
    result["ChecksumAlgorithm"], result["ChecksumType"] = upload.algorithm, upload.type
    for listed in result.get("Parts", []):
        part = multipart.parts.get(int(listed["PartNumber"]))
        if part is not None and part.checksum_value:
            listed[f"Checksum{upload.algorithm}"] = part.checksum_value


def _fill_completion(response: Any, result: dict[str, Any]) -> None:
    key = response.backend.get_object(response.bucket_name, result.get("Key", ""))
    if key is not None and key.checksum_algorithm in CRCS and key.checksum_value:
        result[f"Checksum{key.checksum_algorithm}"] = qualified(key.checksum_value, key.checksum_type,
                                                                key.checksum_parts)
        result["ChecksumType"] = key.checksum_type


def _fill_copy(response: Any, result: dict[str, Any]) -> None:
    """moto has just given the copy the requested algorithm's checksum of its bytes, if the request named one."""
    key = response.backend.get_object(response.bucket_name, response.parse_key_name())
    if key is None or not key.checksum_value:
        return
    if response.headers.get(ALGORITHM_HEADER):
        key.checksum_algorithm = str(key.checksum_algorithm).upper()  # moto keeps the header as sent
        key.checksum_type, key.checksum_parts = FULL_OBJECT, None
    copied = result["CopyObjectResult"]
    copied[f"Checksum{key.checksum_algorithm}"] = qualified(key.checksum_value, key.checksum_type, key.checksum_parts)
    copied["ChecksumType"] = key.checksum_type or FULL_OBJECT


_RESULT_FILLERS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "UploadPartCopy": _fill_part_copy, "ListParts": _fill_parts, "CompleteMultipartUpload": _fill_completion,
    "CopyObject": _fill_copy,
}


def checksum_headers(key: Any) -> dict[str, str]:
    """HeadObject's and GetObject's checksum headers with ChecksumMode ENABLED (a single-part object's checksum is
    FULL_OBJECT: API reference, PutObject, x-amz-checksum-type)."""
    if not key.checksum_algorithm or not key.checksum_value:
        return {}
    kind = key.checksum_type or FULL_OBJECT
    return {f"x-amz-checksum-{key.checksum_algorithm.lower()}": qualified(key.checksum_value, kind,
                                                                           key.checksum_parts),
            "x-amz-checksum-type": kind}


def _checksum_mode(headers: Any) -> bool:
    return str(headers.get("x-amz-checksum-mode", "")).upper() == "ENABLED"


def _head_with_checksum(original: Callable[..., Any]) -> Callable[..., Any]:
    def head_object(response: Any, bucket_name: str, query: dict[str, Any], key_name: str,
                    headers: dict[str, Any]) -> Any:
        status, response_headers, body = original(response, bucket_name, query, key_name, headers)
        if status == 200 and _checksum_mode(headers) and not query.get("partNumber"):
            version_id = query.get("versionId", [None])[0]
            key = response.backend.head_object(bucket_name, key_name, version_id=version_id)
            if key is not None:
                response_headers.update(checksum_headers(key))
        return status, response_headers, body

    return head_object


def _get_with_checksum(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def get_object(response: Any) -> Any:
        status, response_headers, body = original(response)
        if status == 200 and _checksum_mode(response.headers):
            key = response.backend.get_object(response.bucket_name, response.parse_key_name(),
                                              version_id=response._get_param("versionId"))
            if key is not None:
                response_headers.update(checksum_headers(key))
        return status, response_headers, body

    return get_object


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
