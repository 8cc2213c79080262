"""Gap 11: the emulator keeps S3's additional checksums on multipart uploads and copies (checksums_bridge.py), and
a fault can corrupt a part copy (faults.py, ``corrupt_parts``)."""

from __future__ import annotations

import hashlib
import os
import zlib
from functools import cache
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas import checksums

MiB = 1024 * 1024
PART = 5 * MiB  # S3's (and moto's) smallest part but the last
SOURCE = os.urandom(PART) + os.urandom(3000)
RANGES = ((0, PART - 1), (PART, len(SOURCE) - 1))


@cache
def expected(name: str, first: int = 0, last: int = len(SOURCE) - 1) -> str:
    """The checksum of SOURCE[first:last + 1], computed independently of the bridge."""
    data = SOURCE[first:last + 1]
    crc = checksums.algorithm(name)
    value = zlib.crc32(data) if crc == checksums.CRC32 else checksums.compute(crc, data)
    return checksums.encode(crc, value)


@pytest.fixture(scope="module")
def s3(emulator_client: Any) -> Any:
    client = emulator_client("s3")
    for bucket in ("sum-src", "sum-dst"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="sum-src", Key="big.bin", Body=SOURCE)
    return client


def _upload_by_copy(s3: Any, key: str, algorithm: str, kind: str) -> tuple[str, list[dict[str, str]]]:
    upload = s3.create_multipart_upload(Bucket="sum-dst", Key=key, ChecksumAlgorithm=algorithm, ChecksumType=kind)
    parts = []
    for number, (first, last) in enumerate(RANGES, start=1):
        copied = s3.upload_part_copy(Bucket="sum-dst", Key=key, UploadId=upload["UploadId"], PartNumber=number,
                                     CopySource={"Bucket": "sum-src", "Key": "big.bin"},
                                     CopySourceRange=f"bytes={first}-{last}")["CopyPartResult"]
        parts.append({"PartNumber": number, "ETag": copied["ETag"],
                      f"Checksum{algorithm}": copied.get(f"Checksum{algorithm}", "")})
    return upload["UploadId"], parts


def _open_uploads(s3: Any, key: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="sum-dst").get("Uploads", []) if u["Key"] == key]


def _checksum_fields(answer: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in answer.items() if name.startswith("Checksum") and name != "ChecksumMode"}


def test_a_part_copy_answers_its_checksum_and_list_parts_keeps_it(s3):
    # GIVEN an upload created with CRC64NVME (FULL_OBJECT)
    upload = s3.create_multipart_upload(Bucket="sum-dst", Key="parts.bin", ChecksumAlgorithm="CRC64NVME",
                                        ChecksumType="FULL_OBJECT")

    # WHEN a byte range of the source is copied into part 2
    copied = s3.upload_part_copy(Bucket="sum-dst", Key="parts.bin", UploadId=upload["UploadId"], PartNumber=2,
                                 CopySource={"Bucket": "sum-src", "Key": "big.bin"},
                                 CopySourceRange=f"bytes={RANGES[1][0]}-{RANGES[1][1]}")

    # THEN CopyPartResult carries the CRC64NVME of exactly that range, and ListParts gives it for the part
    assert copied["CopyPartResult"]["ChecksumCRC64NVME"] == expected("CRC64NVME", *RANGES[1])
    listed = s3.list_parts(Bucket="sum-dst", Key="parts.bin", UploadId=upload["UploadId"])
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("CRC64NVME", "FULL_OBJECT")
    assert [(p["PartNumber"], p["ChecksumCRC64NVME"]) for p in listed["Parts"]] == [
        (2, expected("CRC64NVME", *RANGES[1]))]
    s3.abort_multipart_upload(Bucket="sum-dst", Key="parts.bin", UploadId=upload["UploadId"])


def test_an_uploaded_part_gets_the_uploads_checksum_and_a_wrong_one_is_refused(s3):
    # GIVEN an upload created with CRC32 (COMPOSITE)
    upload = s3.create_multipart_upload(Bucket="sum-dst", Key="put-parts.bin", ChecksumAlgorithm="CRC32")
    body = SOURCE[:1000]

    # WHEN a part is uploaded (boto3 sends its CRC32) THEN S3 answers the part's CRC32 and keeps it for ListParts
    answer = s3.upload_part(Bucket="sum-dst", Key="put-parts.bin", UploadId=upload["UploadId"], PartNumber=1,
                            Body=body)
    assert answer["ChecksumCRC32"] == expected("CRC32", 0, 999)
    listed = s3.list_parts(Bucket="sum-dst", Key="put-parts.bin", UploadId=upload["UploadId"])["Parts"]
    assert [p.get("ChecksumCRC32") for p in listed] == [expected("CRC32", 0, 999)]

    # WHEN a part comes with a CRC32 that is not its bytes' THEN it is refused with BadDigest and not stored
    with pytest.raises(ClientError) as caught:
        s3.upload_part(Bucket="sum-dst", Key="put-parts.bin", UploadId=upload["UploadId"], PartNumber=2,
                       Body=body, ChecksumCRC32="AAAAAA==")
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert len(s3.list_parts(Bucket="sum-dst", Key="put-parts.bin", UploadId=upload["UploadId"])["Parts"]) == 1
    s3.abort_multipart_upload(Bucket="sum-dst", Key="put-parts.bin", UploadId=upload["UploadId"])


def test_a_full_object_checksum_is_validated_at_completion_and_kept_by_the_object(s3):
    # GIVEN a CRC64NVME FULL_OBJECT upload whose two parts were copied from the source
    upload_id, parts = _upload_by_copy(s3, "full.bin", "CRC64NVME", "FULL_OBJECT")

    # WHEN it is completed with a whole-object checksum that is not the object's
    wrong = expected("CRC64NVME", *RANGES[0])
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(Bucket="sum-dst", Key="full.bin", UploadId=upload_id,
                                     MultipartUpload={"Parts": parts}, ChecksumCRC64NVME=wrong,
                                     ChecksumType="FULL_OBJECT")

    # THEN S3's BadDigest, nothing written, the upload still open
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.list_objects_v2(Bucket="sum-dst", Prefix="full.bin").get("KeyCount") == 0
    assert _open_uploads(s3, "full.bin") == [upload_id]

    # WHEN it is completed with the source's checksum THEN the object keeps it, with its type
    done = s3.complete_multipart_upload(Bucket="sum-dst", Key="full.bin", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts}, ChecksumCRC64NVME=expected("CRC64NVME"),
                                        ChecksumType="FULL_OBJECT")
    whole = {"ChecksumCRC64NVME": expected("CRC64NVME"), "ChecksumType": "FULL_OBJECT"}
    assert _checksum_fields(done) == whole
    assert _checksum_fields(s3.head_object(Bucket="sum-dst", Key="full.bin", ChecksumMode="ENABLED")) == whole
    got = s3.get_object(Bucket="sum-dst", Key="full.bin", ChecksumMode="ENABLED")
    assert _checksum_fields(got) == whole
    assert got["Body"].read() == SOURCE
    attributes = s3.get_object_attributes(Bucket="sum-dst", Key="full.bin", ObjectAttributes=["Checksum"])
    assert attributes["Checksum"] == whole
    # AND without ChecksumMode no checksum header is answered
    plain = s3.head_object(Bucket="sum-dst", Key="full.bin")["ResponseMetadata"]["HTTPHeaders"]
    assert not [name for name in plain if name.startswith("x-amz-checksum-")]


@pytest.mark.parametrize(("case", "change", "code"), [
    ("a part's checksum is another part's", {"part_checksum": "other"}, "InvalidPart"),
    ("a composite upload's part comes without its checksum", {"part_checksum": None}, "InvalidRequest"),
    ("the checksum type is not the upload's", {"ChecksumType": "FULL_OBJECT"}, "BadDigest"),
    ("the whole-object checksum is not the composite one", {"ChecksumCRC32": "AAAAAA==-2"}, "BadDigest"),
    ("the whole-object checksum is of another algorithm", {"ChecksumCRC32C": "AAAAAA=="}, "InvalidRequest"),
])
def test_a_completion_that_does_not_match_the_parts_is_refused_and_the_upload_stays_open(s3, case, change, code):
    # GIVEN a CRC32 COMPOSITE upload of two copied parts
    key = f"refused-{abs(hash(case))}.bin"
    upload_id, parts = _upload_by_copy(s3, key, "CRC32", "COMPOSITE")
    extra = {name: value for name, value in change.items() if name != "part_checksum"}
    if "part_checksum" in change:
        if change["part_checksum"] is None:
            del parts[1]["ChecksumCRC32"]
        else:
            parts[1]["ChecksumCRC32"] = parts[0]["ChecksumCRC32"]

    # WHEN it is completed with the mismatch  THEN S3's error, and the upload is still there to complete or abort
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(Bucket="sum-dst", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
                                     **extra)
    assert caught.value.response["Error"]["Code"] == code, case
    assert _open_uploads(s3, key) == [upload_id]
    s3.abort_multipart_upload(Bucket="sum-dst", Key=key, UploadId=upload_id)


def test_a_composite_upload_keeps_the_checksum_of_its_part_checksums(s3):
    # GIVEN a CRC32 COMPOSITE upload of two copied parts  WHEN it completes with the part checksums
    upload_id, parts = _upload_by_copy(s3, "composite.bin", "CRC32", "COMPOSITE")
    done = s3.complete_multipart_upload(Bucket="sum-dst", Key="composite.bin", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})

    # THEN the object's checksum is the CRC32 of the concatenated part CRC32s, "-2", typed COMPOSITE
    value = checksums.composite("CRC32", [expected("CRC32", *RANGES[0]), expected("CRC32", *RANGES[1])])
    assert value.endswith("-2")
    assert _checksum_fields(done) == {"ChecksumCRC32": value, "ChecksumType": "COMPOSITE"}
    head = s3.head_object(Bucket="sum-dst", Key="composite.bin", ChecksumMode="ENABLED")
    assert _checksum_fields(head) == {"ChecksumCRC32": value, "ChecksumType": "COMPOSITE"}


def test_copy_object_computes_the_requested_checksum_or_keeps_the_sources(s3):
    # GIVEN a multipart object with a COMPOSITE CRC32
    upload_id, parts = _upload_by_copy(s3, "copy-src.bin", "CRC32", "COMPOSITE")
    s3.complete_multipart_upload(Bucket="sum-dst", Key="copy-src.bin", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    composite = _checksum_fields(s3.head_object(Bucket="sum-dst", Key="copy-src.bin", ChecksumMode="ENABLED"))
    source = {"Bucket": "sum-dst", "Key": "copy-src.bin"}

    # WHEN it is copied asking for CRC64NVME  THEN the copy has the CRC64NVME of its bytes, FULL_OBJECT
    copied = s3.copy_object(Bucket="sum-dst", Key="copy-crc64.bin", CopySource=source, ChecksumAlgorithm="CRC64NVME")
    full = {"ChecksumCRC64NVME": expected("CRC64NVME"), "ChecksumType": "FULL_OBJECT"}
    assert _checksum_fields(copied["CopyObjectResult"]) == full
    assert _checksum_fields(s3.head_object(Bucket="sum-dst", Key="copy-crc64.bin", ChecksumMode="ENABLED")) == full

    # (an algorithm named in lower case is the same algorithm)
    lower = s3.copy_object(Bucket="sum-dst", Key="copy-crc32c.bin", CopySource=source, ChecksumAlgorithm="crc32c")
    assert _checksum_fields(lower["CopyObjectResult"]) == {"ChecksumCRC32C": expected("CRC32C"),
                                                          "ChecksumType": "FULL_OBJECT"}

    # WHEN it is copied without an algorithm  THEN the copy keeps the source's checksum, type included
    kept = s3.copy_object(Bucket="sum-dst", Key="copy-kept.bin", CopySource=source)
    assert _checksum_fields(kept["CopyObjectResult"]) == composite
    assert _checksum_fields(s3.head_object(Bucket="sum-dst", Key="copy-kept.bin", ChecksumMode="ENABLED")) == composite


def test_a_corrupted_part_copy_fails_the_completion_with_a_checksum_error_and_nothing_is_written(s3, emulator):
    # GIVEN a fault plan corrupting part 2 of uploads to *.bin in the target bucket
    emulator.set_faults({"s3": {"corrupt_parts": [{"bucket": "sum-dst", "key_pattern": "*.bin", "part_number": 2}]}})
    try:
        # WHEN the object is copied in two parts, asking for the source's whole-object CRC64NVME at completion
        upload_id, parts = _upload_by_copy(s3, "corrupt.bin", "CRC64NVME", "FULL_OBJECT")

        # THEN part 1 is as copied; part 2's ETag and checksum are those of the bytes S3 stored (its first byte
        # inverted), so the part copy itself looks fine to the client
        stored = bytes([SOURCE[PART] ^ 0xFF]) + SOURCE[PART + 1:]
        assert parts[0]["ChecksumCRC64NVME"] == expected("CRC64NVME", *RANGES[0])
        assert parts[1]["ETag"].strip('"') == hashlib.md5(stored).hexdigest()
        bad = checksums.encode(checksums.CRC64NVME, checksums.compute(checksums.CRC64NVME, stored))
        assert parts[1]["ChecksumCRC64NVME"] == bad != expected("CRC64NVME", *RANGES[1])
        # AND the whole-object checksum derived from the source does not match: BadDigest, the upload left open
        with pytest.raises(ClientError) as caught:
            s3.complete_multipart_upload(Bucket="sum-dst", Key="corrupt.bin", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts}, ChecksumCRC64NVME=expected("CRC64NVME"),
                                         ChecksumType="FULL_OBJECT")
        assert caught.value.response["Error"]["Code"] == "BadDigest"
        assert emulator.faults.corrupted_parts() == 1
        # AND once the client aborts, nothing is written
        s3.abort_multipart_upload(Bucket="sum-dst", Key="corrupt.bin", UploadId=upload_id)
        assert s3.list_objects_v2(Bucket="sum-dst", Prefix="corrupt.bin").get("KeyCount") == 0
        assert _open_uploads(s3, "corrupt.bin") == []
    finally:
        emulator.clear_faults()


@pytest.mark.parametrize(("first", "last"), [(0, 0), (0, PART - 1), (PART, len(SOURCE) - 1),
                                             (len(SOURCE) - 1, len(SOURCE) - 1), (123, 4567), (None, None)],
                         ids=["first byte", "first part", "the rest", "last byte", "inside", "no range"])
def test_a_part_copy_stores_exactly_its_range_of_the_source(s3, first, last):
    # GIVEN an upload  WHEN a part is copied with a range (the emulator reads only that range: bridges.py,
    # ranged_upload_part_copy), or without one (the whole source)
    upload = s3.create_multipart_upload(Bucket="sum-dst", Key="ranged.bin")["UploadId"]
    source = {"Bucket": "sum-src", "Key": "big.bin"}
    extra = {"CopySourceRange": f"bytes={first}-{last}"} if first is not None else {}
    copied = s3.upload_part_copy(Bucket="sum-dst", Key="ranged.bin", UploadId=upload, PartNumber=1,
                                 CopySource=source, **extra)["CopyPartResult"]
    s3.complete_multipart_upload(Bucket="sum-dst", Key="ranged.bin", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": copied["ETag"]}]})
    # THEN the object is those bytes of the source, and the part's ETag is their MD5
    expected = SOURCE if first is None else SOURCE[first:last + 1]
    assert s3.get_object(Bucket="sum-dst", Key="ranged.bin")["Body"].read() == expected
    assert copied["ETag"].strip('"') == hashlib.md5(expected).hexdigest()
