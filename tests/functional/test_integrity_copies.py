"""Every copy ends with a whole-object checksum S3 validated (lambdas/integrity.py), and writes are conditional
(``overwrite``), shown on the emulator, whose S3 keeps and checks checksums and conditions as S3 does (bridges 9
and 10): the worker's copy_task for each kind of source, the finalizer's completion of a split copy, and a
corrupted part."""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from lambdas import checksums
from lambdas.copying import CopyContext, copy_task
from lambdas.finalizer import settle_split
from lambdas.gateway import S3Gateway
from lambdas.integrity import Checksum
from lambdas.limits import MiB
from lambdas.models import CopyOptions, CopyTask, Overwrite, SplitCopy
from lambdas.planner import create_uploads
from lambdas.report import ChunkJoin
from tests.functional.test_copying import Book

SRC, DST = "int-src", "int-dst"
PART = 5 * MiB
BODY = os.urandom(2 * PART + 4096)  # three parts of 5 MiB, the last short


def crc64(data: bytes) -> str:
    crc = checksums.CRC64NVME
    return checksums.encode(crc, checksums.compute(crc, data))


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def without_checksum(s3: Any) -> Any:
    """A client that sends no checksum unless an operation needs one, as SDKs before 2025 did (boto3 now sends a
    CRC32 with every PutObject by default: botocore's request_checksum_calculation, "when_supported")."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(request_checksum_calculation="when_required"))


@pytest.fixture(scope="module")
def client(emulator_client: Any) -> Any:
    s3 = emulator_client("s3", attempts=1)
    for bucket in (SRC, DST):
        s3.create_bucket(Bucket=bucket)
    without_checksum(s3).put_object(Bucket=SRC, Key="plain.bin", Body=BODY)
    s3.put_object(Bucket=SRC, Key="crc32.bin", Body=BODY, ChecksumAlgorithm="CRC32")
    # Uploaded in parts with CRC32 (a COMPOSITE checksum, an SDK's default for CRC32)
    upload = s3.create_multipart_upload(Bucket=SRC, Key="composite.bin", ChecksumAlgorithm="CRC32",
                                        ChecksumType="COMPOSITE")["UploadId"]
    parts = []
    for number, first in enumerate(range(0, len(BODY), PART), start=1):
        answer = s3.upload_part(Bucket=SRC, Key="composite.bin", UploadId=upload, PartNumber=number,
                                Body=BODY[first:first + PART], ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=SRC, Key="composite.bin", UploadId=upload, ChecksumType="COMPOSITE",
                                 MultipartUpload={"Parts": parts})
    return s3


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as running:
        yield running


def source_task(client: Any, key: str, target_key: str, method: str, **extra: Any) -> CopyTask:
    """The task the planner makes: the listing's ETag and checksum algorithm."""
    listed = client.list_objects_v2(Bucket=SRC, Prefix=key)["Contents"][0]
    return CopyTask(task_id="c1", copy_id=1, source_bucket=SRC, source_key=key, size=int(listed["Size"]),
                    etag=listed["ETag"].strip('"'), target_bucket=DST, target_key=target_key,
                    method=method,  # type: ignore[arg-type]
                    source_checksum=(listed.get("ChecksumAlgorithm") or [""])[0], **extra)


def run(client: Any, pool: ThreadPoolExecutor, task: CopyTask, overwrite: Overwrite = "if-different") -> Any:
    ctx = CopyContext(s3=S3Gateway(client), options=CopyOptions(overwrite=overwrite), part_size=PART,
                      part_pool=pool, part_window=2, should_stop=lambda: False, uploads=Book(), resumed=False)
    return copy_task(task, ctx)


def target_checksum(client: Any, key: str) -> Checksum | None:
    head = client.head_object(Bucket=DST, Key=key, ChecksumMode="ENABLED")
    for name in ("CRC32", "CRC32C", "CRC64NVME"):
        if head.get(f"Checksum{name}"):
            return Checksum(name, head.get("ChecksumType", ""), head[f"Checksum{name}"])
    return None


def open_uploads(client: Any) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=DST).get("Uploads", [])]


@pytest.mark.parametrize(("key", "method", "algorithm", "checked"), [
    ("plain.bin", "copy", "CRC64NVME", "parts"),
    ("plain.bin", "multipart", "CRC64NVME", "parts"),
    ("crc32.bin", "copy", "CRC32", "copy"),
    ("crc32.bin", "multipart", "CRC32", "source"),
])
def test_a_copy_records_the_whole_object_checksum_s3_keeps(client: Any, pool: ThreadPoolExecutor, key: str,
                                                           method: str, algorithm: str, checked: str) -> None:
    # GIVEN a source with or without a checksum  WHEN the worker copies it whole or in parts
    target = f"{method}/{key}"
    result = run(client, pool, source_task(client, key, target, method))
    # THEN the target has a FULL_OBJECT checksum of the source's algorithm (CRC64NVME when it had none), with
    # the value of the bytes, and the result records it with the ETag the write answered
    assert result.status == "copied", result.error
    expected = crc64(BODY) if algorithm == "CRC64NVME" else crc32(BODY)
    assert target_checksum(client, target) == Checksum(algorithm, "FULL_OBJECT", expected)
    assert Checksum.parse(result.checksum) == Checksum(algorithm, "FULL_OBJECT", expected)
    assert result.checksum_check == checked
    assert result.target_etag == client.head_object(Bucket=DST, Key=target)["ETag"].strip('"')
    assert client.get_object(Bucket=DST, Key=target)["Body"].read() == BODY


def test_a_composite_source_keeps_its_part_layout_etag_and_composite_checksum(client: Any,
                                                                             pool: ThreadPoolExecutor) -> None:
    # GIVEN a source uploaded in 5 MiB parts with a COMPOSITE CRC32
    source = client.head_object(Bucket=SRC, Key="composite.bin", ChecksumMode="ENABLED")
    # WHEN the worker copies it (multipart, as the planner routes a composite source however small)
    result = run(client, pool, source_task(client, "composite.bin", "composite/composite.bin", "multipart"))
    # THEN the copy has the source's ETag and its composite checksum, validated against the source's
    assert result.status == "copied", result.error
    assert result.target_etag == source["ETag"].strip('"')
    assert target_checksum(client, "composite/composite.bin") == Checksum("CRC32", "COMPOSITE",
                                                                          source["ChecksumCRC32"])
    assert result.checksum_check == "source"


def test_a_corrupted_part_fails_the_object_with_a_checksum_error_and_writes_nothing(
        client: Any, pool: ThreadPoolExecutor, emulator: Any) -> None:
    # GIVEN every copy of part 2 into corrupt/ stored corrupted
    emulator.set_faults({"s3": {"corrupt_parts": [{"bucket": DST, "key_pattern": "corrupt/*", "part_number": 2}]}})
    try:
        # WHEN the worker copies a source with a checksum
        result = run(client, pool, source_task(client, "crc32.bin", "corrupt/crc32.bin", "multipart"))
        corrupted = emulator.faults.corrupted_parts()
    finally:
        emulator.clear_faults()
    # THEN it tried twice (one retry), the object failed with ChecksumMismatch, no upload is open, nothing written
    assert result.status == "failed"
    assert result.error.startswith("ChecksumMismatch: ")
    assert corrupted == 2  # the first copy and its one retry
    assert "corrupt/crc32.bin" not in open_uploads(client)
    assert client.list_objects_v2(Bucket=DST, Prefix="corrupt/").get("KeyCount", 0) == 0


def test_never_keeps_an_object_written_after_planning(client: Any, pool: ThreadPoolExecutor) -> None:
    # GIVEN a target key written by someone else after planning (the plan saw no target)
    client.put_object(Bucket=DST, Key="never/copy.bin", Body=b"theirs")
    client.put_object(Bucket=DST, Key="never/multipart.bin", Body=b"theirs too")
    # WHEN the worker copies with overwrite "never"
    copied = run(client, pool, source_task(client, "crc32.bin", "never/copy.bin", "copy"), "never")
    in_parts = run(client, pool, source_task(client, "crc32.bin", "never/multipart.bin", "multipart"), "never")
    # THEN both are skipped as "exists", their objects stay, and no upload is left open
    assert (copied.status, copied.error) == ("skipped", "exists")
    assert (in_parts.status, in_parts.error) == ("skipped", "exists")
    assert client.get_object(Bucket=DST, Key="never/copy.bin")["Body"].read() == b"theirs"
    assert client.get_object(Bucket=DST, Key="never/multipart.bin")["Body"].read() == b"theirs too"
    assert "never/multipart.bin" not in open_uploads(client)


def test_never_says_identical_when_the_key_already_holds_the_sources_bytes(client: Any,
                                                                          pool: ThreadPoolExecutor) -> None:
    # GIVEN a key written after planning with the source's bytes (an earlier attempt's copy it did not record)
    client.put_object(Bucket=DST, Key="never/ours.bin", Body=BODY, ChecksumAlgorithm="CRC32")
    # WHEN the worker copies with overwrite "never"
    result = run(client, pool, source_task(client, "crc32.bin", "never/ours.bin", "multipart"), "never")
    # THEN nothing is written over it, and the row says the two are identical (two HEADs proved it)
    assert (result.status, result.error) == ("skipped", "identical: equal CRC32 checksums")
    assert "never/ours.bin" not in open_uploads(client)


def test_if_different_replaces_only_the_target_it_planned_against(client: Any, pool: ThreadPoolExecutor) -> None:
    # GIVEN targets that existed at planning (their ETags in the tasks), one changed since
    planned = client.put_object(Bucket=DST, Key="replace/same.bin", Body=b"old")["ETag"].strip('"')
    stale = client.put_object(Bucket=DST, Key="replace/changed.bin", Body=b"old")["ETag"].strip('"')
    client.put_object(Bucket=DST, Key="replace/changed.bin", Body=b"changed by someone")
    # WHEN the worker copies with if-different
    same = run(client, pool, source_task(client, "plain.bin", "replace/same.bin", "copy", target_etag=planned))
    changed = run(client, pool, source_task(client, "plain.bin", "replace/changed.bin", "multipart",
                                            target_etag=stale))
    # THEN the unchanged one is replaced; the changed one is kept and reported
    assert same.status == "copied", same.error
    assert client.get_object(Bucket=DST, Key="replace/same.bin")["Body"].read() == BODY
    assert changed.status == "skipped"
    assert changed.error.startswith("target changed during the run: ")
    assert client.get_object(Bucket=DST, Key="replace/changed.bin")["Body"].read() == b"changed by someone"
    assert "replace/changed.bin" not in open_uploads(client)


def test_a_source_that_changed_is_still_source_changed_under_a_write_condition(client: Any,
                                                                               pool: ThreadPoolExecutor) -> None:
    # GIVEN a task pinned to an ETag the source no longer has, with overwrite never
    task = source_task(client, "plain.bin", "never/changed-source.bin", "copy")._replace(etag="0" * 32)
    # WHEN copied  THEN the 412 is the source's, not the target's
    result = run(client, pool, task, "never")
    assert result.status == "failed" and result.error.startswith("SourceChanged: ")


@pytest.mark.parametrize(("key", "layout_known"), [
    ("plain.bin", True), ("crc32.bin", True), ("composite.bin", True),
    ("composite.bin", False),  # the sharded assembler knows no layout: the planner asks for part 1 itself
])
def test_a_split_copy_is_completed_with_the_checksum_s3_validates(client: Any, pool: ThreadPoolExecutor,
                                                                   key: str, layout_known: bool) -> None:
    # GIVEN a split copy started as the planner starts it (the part-1 HEAD tells the source's layout)
    task = source_task(client, key, f"split{int(layout_known)}/{key}", "multipart")
    heads = {1: S3Gateway(client).head_object(SRC, key, part_number=1)} if layout_known else {}
    split = SplitCopy(copy_id=1, source_bucket=SRC, source_key=key, size=task.size, etag=task.etag,
                      target_bucket=DST, target_key=task.target_key, part_size=PART, part_count=3, upload_id="")
    upload = create_uploads([split], heads, CopyOptions(), S3Gateway(client), 2)[1]
    split = replace(split, upload_id=upload.upload_id, checksum_algorithm=upload.checksum_algorithm,
                    checksum_type=upload.checksum_type, checksum_expected=upload.checksum_expected)
    # AND its chunks copied by workers
    join = ChunkJoin(split)
    for number in (1, 2, 3):
        chunk = task._replace(task_id=f"c1.p{number}", method="chunk", part_size=PART, first_part=number,
                              last_part=number, upload_id=upload.upload_id)
        join.add(run(client, pool, chunk))
    # WHEN the finalizer completes it
    row = settle_split(S3Gateway(client), join)
    # THEN the target's checksum is the source's (or CRC64NVME of the bytes), and the row records it
    assert row.status == "copied", row.error
    source = client.head_object(Bucket=SRC, Key=key, ChecksumMode="ENABLED")
    expected = {"plain.bin": Checksum("CRC64NVME", "FULL_OBJECT", crc64(BODY)),
                "crc32.bin": Checksum("CRC32", "FULL_OBJECT", crc32(BODY)),
                "composite.bin": Checksum("CRC32", "COMPOSITE", source.get("ChecksumCRC32", ""))}[key]
    assert target_checksum(client, split.target_key) == expected
    assert Checksum.parse(row.checksum) == expected
    assert row.checksum_check == ("parts" if key == "plain.bin" else "source")
    assert client.get_object(Bucket=DST, Key=split.target_key)["Body"].read() == BODY


def test_the_worker_records_each_writes_etag_and_checksum_in_its_checkpoint_rows(client: Any) -> None:
    # GIVEN a payload of a whole copy and a multipart copy, written as the planner writes it
    from lambdas import manifest
    from lambdas.deadline import Deadline
    from lambdas.worker import copy_payload
    from tests.functional import worker_helpers as helpers

    for bucket in (helpers.SRC, helpers.DST, helpers.MANIFEST):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=helpers.SRC, Key="a.bin", Body=BODY[:1000], ChecksumAlgorithm="CRC32")
    client.put_object(Bucket=helpers.SRC, Key="b.bin", Body=BODY, ChecksumAlgorithm="CRC32")
    gateway = S3Gateway(client)
    tasks = [helpers.task_for(client, 0, "a.bin")._replace(source_checksum="CRC32"),
             helpers.task_for(client, 1, "b.bin")._replace(source_checksum="CRC32")]
    [payload] = helpers.write_run(gateway, [tasks])
    # WHEN the worker copies it
    copy_payload(payload, helpers.settings(), gateway, Deadline.never())
    # THEN its checkpoint rows hold, per object, the ETag and the checksum each write answered
    checkpoint = manifest.read_checkpoint(gateway, payload.manifest, 0)
    assert checkpoint is not None
    for result in checkpoint.results:
        head = client.head_object(Bucket=helpers.DST, Key=result.target_key, ChecksumMode="ENABLED")
        assert result.target_etag == head["ETag"].strip('"')
        assert result.checksum == f"CRC32:FULL_OBJECT:{head['ChecksumCRC32']}"
    assert [r.checksum_check for r in checkpoint.results] == ["copy", "source"]


def test_a_split_copy_with_a_corrupted_part_fails_with_a_checksum_error_and_is_aborted(
        client: Any, pool: ThreadPoolExecutor, emulator: Any) -> None:
    # GIVEN a split copy whose part 2 S3 stores corrupted
    task = source_task(client, "crc32.bin", "split-corrupt/crc32.bin", "multipart")
    split = SplitCopy(copy_id=1, source_bucket=SRC, source_key="crc32.bin", size=task.size, etag=task.etag,
                      target_bucket=DST, target_key=task.target_key, part_size=PART, part_count=3, upload_id="")
    upload = create_uploads([split], {}, CopyOptions(), S3Gateway(client), 2)[1]
    split = replace(split, upload_id=upload.upload_id, checksum_algorithm=upload.checksum_algorithm,
                    checksum_type=upload.checksum_type, checksum_expected=upload.checksum_expected)
    join = ChunkJoin(split)
    emulator.set_faults({"s3": {"corrupt_parts": [{"bucket": DST, "key_pattern": "split-corrupt/*",
                                                   "part_number": 2}]}})
    try:
        for number in (1, 2, 3):
            join.add(run(client, pool, task._replace(task_id=f"c1.p{number}", method="chunk", part_size=PART,
                                                     first_part=number, last_part=number,
                                                     upload_id=upload.upload_id)))
    finally:
        emulator.clear_faults()
    # WHEN the finalizer completes it  THEN S3 refuses it: failed with ChecksumMismatch, aborted, nothing written
    row = settle_split(S3Gateway(client), join)
    assert row.status == "failed" and row.error.startswith("ChecksumMismatch: "), row
    assert "split-corrupt/crc32.bin" not in open_uploads(client)
    assert client.list_objects_v2(Bucket=DST, Prefix="split-corrupt/").get("KeyCount", 0) == 0
