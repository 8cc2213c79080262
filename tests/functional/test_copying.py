"""Copying one task, with botocore Stubber where moto cannot show the behaviour: moto ignores
CopySourceIfMatch on UploadPartCopy, so these tests prove every copy request carries the planned ETag
(the Stubber refuses any request whose parameters differ from the expected ones)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas import checksums
from lambdas.copying import CopyContext, copy_task
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.models import CopyOptions, CopyTask

ETAG = "0123456789abcdef0123456789abcdef-3"
PINNED = f'"{ETAG}"'
SIZE = 12 * MiB
SOURCE = {"Bucket": "src", "Key": "dir/big file.bin"}


class Book:
    """The worker's upload book, in memory."""

    def __init__(self) -> None:
        self.uploads: dict[str, str] = {}
        self.parts_done = 0

    def open_upload(self, task_id: str) -> str:
        return self.uploads.get(task_id, "")

    def opened(self, task_id: str, upload_id: str) -> None:
        self.uploads[task_id] = upload_id

    def part_done(self) -> None:
        self.parts_done += 1


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, S3Gateway]]:
    client = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id="testing",
                                            aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield stub, S3Gateway(client)
        stub.assert_no_pending_responses()


def context(gateway: S3Gateway, pool: ThreadPoolExecutor, book: Book | None = None,
            resumed: bool = False) -> CopyContext:
    # One part at a time, so the Stubber's queue of answers is consumed in order.
    return CopyContext(s3=gateway, options=CopyOptions(), part_size=5 * MiB, part_pool=pool, part_window=1,
                       should_stop=lambda: False, uploads=book or Book(), resumed=resumed)


def task(method: Any, **extra: Any) -> CopyTask:
    fields = {"task_id": "c7", "copy_id": 7, "source_bucket": "src", "source_key": "dir/big file.bin", "size": SIZE,
              "etag": ETAG, "target_bucket": "dst", "target_key": "out/big file.bin", "method": method}
    return CopyTask(**{**fields, **extra})


def part_crc(number: int) -> str:
    """A part's CRC64NVME as UploadPartCopy answers it (base64 of 8 bytes)."""
    return checksums.encode(checksums.CRC64NVME, number * 0x0101010101010101)


def expect_part_copy(stub: Stubber, number: int, first: int, last: int, upload_id: str = "up-1") -> None:
    stub.add_response("upload_part_copy", {"CopyPartResult": {"ETag": f'"part{number}"',
                                                              "ChecksumCRC64NVME": part_crc(number)}}, {
        "Bucket": "dst", "Key": "out/big file.bin", "UploadId": upload_id, "PartNumber": number,
        "CopySource": SOURCE, "CopySourceIfMatch": PINNED, "CopySourceRange": f"bytes={first}-{last}"})


def expect_multipart_start(stub: Stubber) -> None:
    stub.add_response("head_object", {"ContentLength": SIZE, "ETag": PINNED, "ContentType": "video/mp4",
                                      "Metadata": {"a": "b"}},
                      {"Bucket": "src", "Key": "dir/big file.bin", "IfMatch": PINNED, "ChecksumMode": "ENABLED"})
    stub.add_response("head_object", {"ContentLength": 5 * MiB, "ETag": PINNED, "PartsCount": 3},
                      {"Bucket": "src", "Key": "dir/big file.bin", "PartNumber": 1})
    stub.add_response("get_object_tagging", {"TagSet": [{"Key": "t", "Value": "v"}]},
                      {"Bucket": "src", "Key": "dir/big file.bin"})
    stub.add_response("create_multipart_upload", {"UploadId": "up-1"}, {
        "Bucket": "dst", "Key": "out/big file.bin", "ContentType": "video/mp4", "Metadata": {"a": "b"},
        "Tagging": "t=v", "ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"})


def test_copy_object_pins_the_planned_etag(stubbed):
    # GIVEN a CopyObject task
    stub, gateway = stubbed
    stub.add_response("copy_object", {"CopyObjectResult": {"ETag": '"new"'}}, {
        "Bucket": "dst", "Key": "out/big file.bin", "CopySource": SOURCE, "CopySourceIfMatch": PINNED,
        "MetadataDirective": "COPY", "TaggingDirective": "COPY", "ChecksumAlgorithm": "CRC64NVME"})

    # WHEN it is copied
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task("copy", size=1000), context(gateway, pool))

    # THEN the one request carried CopySourceIfMatch (the Stubber checked it) and the result says so
    assert result is not None
    assert (result.status, result.target_etag, result.attempts) == ("copied", "new", 1)


def test_every_part_of_a_multipart_copy_pins_the_planned_etag(stubbed):
    # GIVEN a 12 MiB task whose source was uploaded in 5 MiB parts
    stub, gateway = stubbed
    expect_multipart_start(stub)
    expect_part_copy(stub, 1, 0, 5 * MiB - 1)
    expect_part_copy(stub, 2, 5 * MiB, 10 * MiB - 1)
    expect_part_copy(stub, 3, 10 * MiB, SIZE - 1)
    # the whole object's CRC64NVME combined from the parts' (the source has none), for S3 to validate
    whole = checksums.full_object("CRC64NVME", [(part_crc(1), 5 * MiB), (part_crc(2), 5 * MiB),
                                                (part_crc(3), SIZE - 10 * MiB)])
    stub.add_response("complete_multipart_upload", {"ETag": PINNED, "ChecksumCRC64NVME": whole,
                                                    "ChecksumType": "FULL_OBJECT"}, {
        "Bucket": "dst", "Key": "out/big file.bin", "UploadId": "up-1",
        "ChecksumCRC64NVME": whole, "ChecksumType": "FULL_OBJECT",
        "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": f'"part{n}"', "ChecksumCRC64NVME": part_crc(n)}
                                      for n in (1, 2, 3)]}})
    book = Book()

    # WHEN it is copied
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task("multipart"), context(gateway, pool, book))

    # THEN every UploadPartCopy carried CopySourceIfMatch, and the upload was recorded when created
    assert result is not None
    assert (result.status, result.parts, result.target_etag) == ("copied", 3, ETAG)
    assert (result.checksum, result.checksum_check) == (f"CRC64NVME:FULL_OBJECT:{whole}", "parts")
    assert result.attempts == 8  # 2 HEADs, tags, create, 3 parts, complete
    assert book.uploads == {"c7": "up-1"}


def test_every_part_of_a_chunk_pins_the_planned_etag(stubbed):
    # GIVEN a chunk of parts 2-3 of the planner's upload, on a first invocation
    stub, gateway = stubbed
    expect_part_copy(stub, 2, 5 * MiB, 10 * MiB - 1, upload_id="planned")
    expect_part_copy(stub, 3, 10 * MiB, SIZE - 1, upload_id="planned")

    # WHEN it is copied
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task("chunk", part_size=5 * MiB, first_part=2, last_part=3, upload_id="planned"),
                           context(gateway, pool))

    # THEN only its two part copies were sent (no ListParts, no complete), each pinned
    assert result is not None
    assert (result.status, result.method, result.parts, result.bytes) == ("copied", "chunk", 2, 7 * MiB)


def test_a_source_that_changes_mid_copy_aborts_the_upload(stubbed):
    # GIVEN a multipart copy whose second part fails its If-Match
    stub, gateway = stubbed
    expect_multipart_start(stub)
    expect_part_copy(stub, 1, 0, 5 * MiB - 1)
    stub.add_client_error("upload_part_copy", "PreconditionFailed", "At least one precondition failed",
                          http_status_code=412)
    stub.add_response("abort_multipart_upload", {},
                      {"Bucket": "dst", "Key": "out/big file.bin", "UploadId": "up-1"})

    # WHEN it is copied
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task("multipart"), context(gateway, pool))

    # THEN no further part was sent, the upload was aborted, and the object failed as SourceChanged
    assert result is not None
    assert result.status == "failed"
    assert result.error.startswith("SourceChanged: ")


def test_a_failing_chunk_is_recorded_but_its_upload_left_for_the_finalizer(stubbed):
    # GIVEN a chunk whose part copy is denied
    stub, gateway = stubbed
    stub.add_client_error("upload_part_copy", "AccessDenied", "Access Denied", http_status_code=403,
                          expected_params={"Bucket": "dst", "Key": "out/big file.bin", "UploadId": "planned",
                                           "PartNumber": 1, "CopySource": SOURCE, "CopySourceIfMatch": PINNED,
                                           "CopySourceRange": ANY})

    # WHEN it is copied
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task("chunk", part_size=5 * MiB, first_part=1, last_part=1, upload_id="planned"),
                           context(gateway, pool))

    # THEN it failed with the code and no abort was sent (the Stubber has no abort queued)
    assert result is not None
    assert (result.status, result.error.split(":")[0]) == ("failed", "AccessDenied")


def test_a_stop_request_leaves_the_upload_open_and_returns_no_result(stubbed):
    # GIVEN a multipart copy asked to stop after its first part
    stub, gateway = stubbed
    expect_multipart_start(stub)
    expect_part_copy(stub, 1, 0, 5 * MiB - 1)
    book = Book()
    with ThreadPoolExecutor(1) as pool:
        ctx = replace(context(gateway, pool, book), should_stop=lambda: book.parts_done >= 1)

        # WHEN it runs
        result = copy_task(task("multipart"), ctx)

    # THEN it has no result yet, and the upload stays recorded for the next invocation
    assert result is None
    assert book.uploads == {"c7": "up-1"}
