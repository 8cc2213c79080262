"""The worker on moto's S3: what arrives in the target bucket, what the checkpoint says, and how it
survives deadlines, crashes and faults."""

from __future__ import annotations

import datetime
import io
import json
import logging
import types
from typing import Any

import botocore.endpoint
import pytest

from lambdas import errors, manifest
from lambdas.deadline import Deadline
from lambdas.gateway import S3Gateway, make_client
from lambdas.limits import MiB
from lambdas.logs import JsonFormatter
from lambdas.models import CopyOptions, Payload, PayloadCheckpoint, PayloadTask, SseConfig
from lambdas.worker import copy_payload
from tests.functional.faults import Fault
from tests.functional.worker_helpers import (
    DST,
    SRC,
    CountingGateway,
    data,
    make_buckets,
    put_multipart,
    settings,
    split_for,
    task_for,
    write_run,
)

EXPIRES = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
HEADERS = {"ContentType": "video/mp4", "CacheControl": "max-age=600",
           "ContentDisposition": 'attachment; filename="a.mp4"', "ContentLanguage": "de-CH",
           "Metadata": {"owner": "team-a", "scene": "42"}}
TAGS = {"project": "sfncopy", "tier": "gold"}


@pytest.fixture
def client(s3_client: Any) -> Any:
    make_buckets(s3_client)
    return s3_client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff, recorded instead of slept (the real retry config still decides)."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


def body_of(client: Any, bucket: str, key: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def results_of(gateway: S3Gateway, task: PayloadTask) -> PayloadCheckpoint:
    checkpoint = manifest.read_checkpoint(gateway, task.manifest, task.payload)
    assert checkpoint is not None
    return checkpoint


def uploads_in(client: Any, bucket: str) -> list[dict[str, Any]]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def deadline_when(condition: Any) -> Deadline:
    """A deadline that is far away until ``condition()`` holds, then already near."""
    return Deadline(remaining_ms=lambda: 0 if condition() else 10**9, margin=1.0)


# --- what arrives ------------------------------------------------------------------------------------
def test_awkward_keys_and_boundary_sizes_arrive_byte_for_byte(client, gateway):
    # GIVEN keys with spaces, "+", "%" and unicode, an empty object, one of exactly one part size and one
    # a byte over (which the plan copies in parts)
    sizes = {"with space.txt": 1000, "plus+sign.jpg": 2000, "100%.png": 3000, "ünïcødé/日本 語.mp4": 4000,
             "empty": 0, "exact": 5 * MiB, "over": 5 * MiB + 1}
    for seed, (key, size) in enumerate(sizes.items()):
        client.put_object(Bucket=SRC, Key=key, Body=data(size, seed))
    tasks = [task_for(client, i, key, target_key=f"copy/{key}") for i, key in enumerate(sizes)]
    [payload] = write_run(gateway, [tasks])

    # WHEN the worker copies the payload
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN every object arrives byte for byte, the answer and the results file say so, no upload is left
    for seed, (key, size) in enumerate(sizes.items()):
        assert body_of(client, DST, f"copy/{key}") == data(size, seed)
    assert (answer.done, answer.copied, answer.failed, answer.cursor) == (True, 7, 0, 7)
    assert answer.bytes == sum(sizes.values())
    assert answer.invocation == 1
    results = {r.source_key: r for r in results_of(gateway, payload).results}
    assert [r.task_id for r in results_of(gateway, payload).results] == [t.task_id for t in tasks]
    assert (results["exact"].method, results["exact"].parts) == ("copy", 1)
    assert (results["over"].method, results["over"].parts) == ("multipart", 2)
    assert all(r.status == "copied" and r.target_etag for r in results.values())
    assert uploads_in(client, DST) == []


@pytest.mark.parametrize("size", [1 * MiB, 7 * MiB], ids=["copy", "multipart"])
def test_headers_metadata_and_tags_are_preserved(client, gateway, size):
    # GIVEN a source with content headers, an expiry, user metadata and tags
    client.put_object(Bucket=SRC, Key="clip.mp4", Body=data(size), Expires=EXPIRES, **HEADERS,
                      Tagging="project=sfncopy&tier=gold")
    [payload] = write_run(gateway, [[task_for(client, 0, "clip.mp4", target_key="out/clip.mp4")]])

    # WHEN the worker copies it (CopyObject below the cutoff, parts above)
    copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the target's HEAD and tags match the source's
    source = client.head_object(Bucket=SRC, Key="clip.mp4")
    target = client.head_object(Bucket=DST, Key="out/clip.mp4")
    for name in [*HEADERS, "Expires", "ContentLength"]:
        assert target[name] == source[name], name
    assert {name: target[name] for name in HEADERS} == HEADERS
    assert target["Expires"] == EXPIRES
    tags = client.get_object_tagging(Bucket=DST, Key="out/clip.mp4")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == TAGS
    assert body_of(client, DST, "out/clip.mp4") == data(size)


def test_tags_too_big_for_the_header_are_set_after_a_multipart_copy(client, gateway):
    # GIVEN a large object whose ten tags exceed the tagging header budget
    big_tags = {f"tag-{i}-" + "k" * 100: "v" * 250 for i in range(10)}
    client.put_object(Bucket=SRC, Key="tagged.bin", Body=data(6 * MiB))
    client.put_object_tagging(Bucket=SRC, Key="tagged.bin",
                              Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in big_tags.items()]})
    [payload] = write_run(gateway, [[task_for(client, 0, "tagged.bin")]])

    # WHEN the worker copies it in parts
    copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN every tag arrives
    tags = client.get_object_tagging(Bucket=DST, Key="tagged.bin")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == big_tags


def test_preserve_flags_off_copies_neither_metadata_nor_tags(client, gateway):
    # GIVEN sources with metadata and tags, and options that do not preserve them
    for key, size in (("small", 1000), ("large", 6 * MiB)):
        client.put_object(Bucket=SRC, Key=key, Body=data(size), Tagging="a=b", **HEADERS)
    tasks = [task_for(client, 0, "small"), task_for(client, 1, "large")]
    [payload] = write_run(gateway, [tasks], CopyOptions(preserve_metadata=False, preserve_tags=False))

    # WHEN the worker copies them
    copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the targets have the bytes but no user metadata and no tags
    for key, size in (("small", 1000), ("large", 6 * MiB)):
        assert body_of(client, DST, key) == data(size)
        assert client.head_object(Bucket=DST, Key=key)["Metadata"] == {}
        assert client.get_object_tagging(Bucket=DST, Key=key)["TagSet"] == []


def test_source_uploaded_in_parts_gets_the_same_etag(client, gateway):
    # GIVEN a 12 MiB source uploaded in 5 MiB parts, and a worker whose own part size is 8 MiB
    body = data(12 * MiB)
    put_multipart(client, "parts.bin", body, 5 * MiB)
    [payload] = write_run(gateway, [[task_for(client, 0, "parts.bin")]])

    # WHEN the worker copies it
    copy_payload(payload, settings(part_size=8 * MiB), gateway, Deadline.never())

    # THEN the target mirrors the source's layout, so its multipart ETag is identical
    source_etag = client.head_object(Bucket=SRC, Key="parts.bin")["ETag"]
    assert client.head_object(Bucket=DST, Key="parts.bin")["ETag"] == source_etag
    [result] = results_of(gateway, payload).results
    assert (result.parts, f'"{result.target_etag}"') == (3, source_etag)
    assert body_of(client, DST, "parts.bin") == body


@pytest.mark.parametrize("size", [1000, 6 * MiB], ids=["copy", "multipart"])
def test_storage_class_and_encryption_follow_the_options(client, gateway, size):
    # GIVEN options asking for STANDARD_IA and SSE-S3
    client.put_object(Bucket=SRC, Key="k", Body=data(size))
    options = CopyOptions(storage_class="STANDARD_IA", sse=SseConfig(algorithm="AES256"))
    [payload] = write_run(gateway, [[task_for(client, 0, "k")]], options)

    # WHEN the worker copies it
    copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the target has both
    head = client.head_object(Bucket=DST, Key="k")
    assert (head["StorageClass"], head["ServerSideEncryption"]) == ("STANDARD_IA", "AES256")


def test_the_worker_copies_what_the_plan_says_even_over_an_existing_target(client, gateway):
    # GIVEN a target that exists with other bytes (the planner decided to overwrite it)
    client.put_object(Bucket=SRC, Key="k", Body=b"new")
    client.put_object(Bucket=DST, Key="k", Body=b"old bytes")
    [payload] = write_run(gateway, [[task_for(client, 0, "k")]])

    # WHEN the worker runs
    copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the target is replaced
    assert body_of(client, DST, "k") == b"new"


# --- if-different: proof by checksums ----------------------------------------------------------------
def compare_task(client: Any, key: str, copy_id: int = 0) -> Any:
    """What the planner makes for a source uploaded in parts, at most the cutoff, whose target exists with
    the same size: one CopyObject, its checksums compared first."""
    return task_for(client, copy_id, key, method="copy")._replace(compare_checksum="CRC32")


def test_a_target_proven_identical_by_checksum_is_not_copied_again(client, gateway):
    # GIVEN a 10 MiB source uploaded in 5 MiB parts with CRC32, already copied once in one request: the
    # target's ETag is an MD5, the source's a multipart ETag, so only the checksums can prove them equal
    body = data(10 * MiB)
    put_multipart(client, "clip.mp4", body, 5 * MiB, ChecksumAlgorithm="CRC32")
    client.copy_object(Bucket=DST, Key="clip.mp4", CopySource={"Bucket": SRC, "Key": "clip.mp4"})
    before = client.head_object(Bucket=DST, Key="clip.mp4", ChecksumMode="ENABLED")
    assert before["ETag"] != client.head_object(Bucket=SRC, Key="clip.mp4")["ETag"]
    [payload] = write_run(gateway, [[compare_task(client, "clip.mp4")]])
    counting = CountingGateway(client)

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), counting, Deadline.never())

    # THEN nothing is copied: the task is skipped as identical, and the target is untouched
    assert counting.copies == [] and counting.parts == []
    assert (answer.done, answer.copied, answer.skipped, answer.failed) == (True, 0, 1, 0)
    [result] = results_of(gateway, payload).results
    assert (result.status, result.method, result.error) == ("skipped", "none", "identical: equal CRC32 checksums")
    after = client.head_object(Bucket=DST, Key="clip.mp4", ChecksumMode="ENABLED")
    assert (after["LastModified"], after["ETag"]) == (before["LastModified"], before["ETag"])


def test_same_size_other_bytes_are_copied_after_the_comparison(client, gateway):
    # GIVEN a target of the same size with other bytes (and so another CRC32)
    body = data(6 * MiB)
    client.put_object(Bucket=SRC, Key="clip.mp4", Body=body, ChecksumAlgorithm="CRC32")
    client.put_object(Bucket=DST, Key="clip.mp4", Body=data(6 * MiB, seed=2), ChecksumAlgorithm="CRC32")
    [payload] = write_run(gateway, [[compare_task(client, "clip.mp4")]])

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the target is replaced by the source
    assert (answer.copied, answer.skipped) == (1, 0)
    assert body_of(client, DST, "clip.mp4") == body


def test_a_target_gone_since_the_plan_is_copied(client, gateway):
    client.put_object(Bucket=SRC, Key="clip.mp4", Body=data(6 * MiB), ChecksumAlgorithm="CRC32")
    [payload] = write_run(gateway, [[compare_task(client, "clip.mp4")]])
    answer = copy_payload(payload, settings(), gateway, Deadline.never())
    assert (answer.copied, answer.skipped, answer.failed) == (1, 0, 0)
    assert body_of(client, DST, "clip.mp4") == data(6 * MiB)


def test_a_source_changed_since_the_plan_fails_the_comparison_as_source_changed(client, gateway):
    # GIVEN a planned comparison, then the source is overwritten (new ETag) with the target's bytes
    put_multipart(client, "clip.mp4", data(6 * MiB), 5 * MiB, ChecksumAlgorithm="CRC32")
    client.copy_object(Bucket=DST, Key="clip.mp4", CopySource={"Bucket": SRC, "Key": "clip.mp4"})
    [payload] = write_run(gateway, [[compare_task(client, "clip.mp4")]])
    client.put_object(Bucket=SRC, Key="clip.mp4", Body=data(6 * MiB), ChecksumAlgorithm="CRC32")

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the object fails as SourceChanged (the plan no longer describes it), not skipped on stale proof
    [result] = results_of(gateway, payload).results
    assert (answer.failed, result.status, result.error.split(":")[0]) == (1, "failed", "SourceChanged")


# --- deadlines, retries and crashes ------------------------------------------------------------------
def test_deadline_continuation_copies_every_object_exactly_once(client, gateway):
    # GIVEN six objects and a deadline that comes near after two copies
    for i in range(6):
        client.put_object(Bucket=SRC, Key=f"obj-{i}", Body=data(100 + i, i))
    tasks = [task_for(client, i, f"obj-{i}") for i in range(6)]
    [payload] = write_run(gateway, [tasks])
    counting = CountingGateway(client)

    # WHEN the worker runs with that deadline, then again with its own answer
    first = copy_payload(payload, settings(threads=1), counting, deadline_when(lambda: len(counting.copies) >= 2))
    second = copy_payload(first, settings(threads=1), counting, Deadline.never())

    # THEN the first call stops early, the second finishes, and each object was copied exactly once
    assert (first.done, first.cursor, first.copied, first.invocation) == (False, 2, 2, 1)
    assert (second.done, second.cursor, second.copied, second.invocation) == (True, 6, 6, 2)
    assert sorted(counting.copies) == [f"obj-{i}" for i in range(6)]
    checkpoint = results_of(gateway, payload)
    assert [r.task_id for r in checkpoint.results] == [t.task_id for t in tasks]
    assert checkpoint.invocations == 2
    for i in range(6):
        assert body_of(client, DST, f"obj-{i}") == data(100 + i, i)


def test_deadline_in_the_middle_of_a_multipart_copy_resumes_it(client, gateway):
    # GIVEN a 12 MiB object (3 parts) and a deadline that comes near after its first part
    body = data(12 * MiB)
    client.put_object(Bucket=SRC, Key="big", Body=body)
    [payload] = write_run(gateway, [[task_for(client, 0, "big")]])
    counting = CountingGateway(client)

    # WHEN the worker runs with that deadline
    first = copy_payload(payload, settings(threads=1), counting, deadline_when(lambda: len(counting.parts) >= 1))

    # THEN it answers not done and leaves the upload open, recorded in the checkpoint
    assert (first.done, first.cursor) == (False, 0)
    [(task_id, upload_id)] = results_of(gateway, payload).open_uploads
    assert task_id == "c0"
    assert [u["UploadId"] for u in uploads_in(client, DST)] == [upload_id]

    # WHEN it is called again with its answer
    second = copy_payload(first, settings(threads=1), counting, Deadline.never())

    # THEN part 1 is reused, the object is complete and byte-identical, and nothing is left open
    assert second.done
    assert counting.parts == [("big", 1), ("big", 2), ("big", 3)]
    assert body_of(client, DST, "big") == body
    assert results_of(gateway, payload).open_uploads == ()
    assert uploads_in(client, DST) == []


def test_a_crashed_multipart_copy_reuses_its_finished_parts(client, gateway):
    # GIVEN an invocation that died after creating the upload, copying part 1 and writing its checkpoint
    body = data(12 * MiB)
    client.put_object(Bucket=SRC, Key="big", Body=body)
    task = task_for(client, 0, "big")
    [payload] = write_run(gateway, [[task]])
    upload_id = gateway.create_multipart_upload(DST, "big", None, {})
    gateway.upload_part_copy(DST, "big", upload_id, 1, SRC, "big", task.etag, 0, 5 * MiB - 1)
    manifest.write_checkpoint(gateway, payload.manifest, PayloadCheckpoint(
        payload_id=0, worker=0, open_uploads=(("c0", upload_id),), invocations=1))
    counting = CountingGateway(client)

    # WHEN Step Functions retries with the original input
    answer = copy_payload(payload, settings(), counting, Deadline.never())

    # THEN part 1 is not copied again and the target is byte-identical
    assert answer.done
    assert sorted(counting.parts) == [("big", 2), ("big", 3)]
    assert body_of(client, DST, "big") == body
    assert uploads_in(client, DST) == []


def test_an_upload_that_is_gone_is_started_again(client, gateway):
    # GIVEN a checkpoint naming an upload that was aborted meanwhile
    client.put_object(Bucket=SRC, Key="big", Body=data(6 * MiB))
    [payload] = write_run(gateway, [[task_for(client, 0, "big")]])
    upload_id = gateway.create_multipart_upload(DST, "big", None, {})
    gateway.abort_multipart_upload(DST, "big", upload_id)
    manifest.write_checkpoint(gateway, payload.manifest, PayloadCheckpoint(
        payload_id=0, worker=0, open_uploads=(("c0", upload_id),), invocations=1))

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN it copies the object with a new upload
    assert (answer.done, answer.copied) == (True, 1)
    assert body_of(client, DST, "big") == data(6 * MiB)


def test_a_retried_finished_payload_copies_nothing(client, gateway):
    # GIVEN a payload that was finished, but whose answer was lost (Step Functions retries the original input)
    client.put_object(Bucket=SRC, Key="a", Body=b"a")
    [payload] = write_run(gateway, [[task_for(client, 0, "a")]])
    copy_payload(payload, settings(), gateway, Deadline.never())
    counting = CountingGateway(client)

    # WHEN it runs again
    answer = copy_payload(payload, settings(), counting, Deadline.never())

    # THEN nothing is copied and the answer still counts the object once
    assert counting.copies == []
    assert (answer.done, answer.copied, answer.cursor) == (True, 1, 1)
    assert len(results_of(gateway, payload).results) == 1


def test_a_deadline_margin_longer_than_the_timeout_is_a_clear_settings_error(client, gateway):
    # GIVEN a worker whose margin exceeds the time it is given
    client.put_object(Bucket=SRC, Key="a", Body=b"a")
    [payload] = write_run(gateway, [[task_for(client, 0, "a")]])

    # WHEN it starts THEN it refuses at once (it would answer done=false forever), naming what to change
    with pytest.raises(errors.SettingsError, match="SFNCOPY_DEADLINE_MARGIN_SECONDS"):
        copy_payload(payload, settings(), gateway, Deadline(remaining_ms=lambda: 30_000, margin=60.0))
    assert "Contents" not in client.list_objects_v2(Bucket=DST)


# --- chunks of split objects -------------------------------------------------------------------------
def test_chunk_tasks_copy_exactly_their_parts_and_leave_the_upload_open(client, gateway):
    # GIVEN a 12 MiB object split in three 5 MiB-part chunks: parts 1-2 for worker 0, part 3 for worker 1
    body = data(12 * MiB)
    client.put_object(Bucket=SRC, Key="huge", Body=body)
    split, chunks = split_for(client, 0, "huge", 5 * MiB)
    first, second = write_run(gateway, [chunks[:2], chunks[2:]], splits=[split])
    counting = CountingGateway(client)

    # WHEN worker 0 copies its payload (a first invocation)
    answer = copy_payload(first, settings(), counting, Deadline.never())

    # THEN exactly parts 1 and 2 are in the still-open upload, without a ListParts first
    assert (answer.done, answer.copied) == (True, 2)
    parts = client.list_parts(Bucket=DST, Key="huge", UploadId=split.upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 5 * MiB)]
    assert [u["UploadId"] for u in uploads_in(client, DST)] == [split.upload_id]
    assert "Contents" not in client.list_objects_v2(Bucket=DST)
    assert counting.list_parts_calls == 0
    assert [r.method for r in results_of(gateway, first).results] == ["chunk", "chunk"]

    # WHEN worker 1 copies its chunk and the upload is completed (the finalizer's job)
    copy_payload(second, settings(), gateway, Deadline.never())
    listed = gateway.list_parts(DST, "huge", split.upload_id)
    gateway.complete_multipart_upload(DST, "huge", split.upload_id, listed)

    # THEN the object is whole
    assert body_of(client, DST, "huge") == body


def test_a_resumed_chunk_task_skips_the_parts_already_there(client, gateway):
    # GIVEN a chunk of parts 1-3 whose part 1 a previous invocation copied
    body = data(12 * MiB)
    client.put_object(Bucket=SRC, Key="huge", Body=body)
    split, chunks = split_for(client, 0, "huge", 5 * MiB)
    chunk = chunks[0].__class__(**{**chunks[0].to_dict(), "task_id": "c0.p1", "last_part": 3})
    [payload] = write_run(gateway, [[chunk]], splits=[split])
    gateway.upload_part_copy(DST, "huge", split.upload_id, 1, SRC, "huge", split.etag, 0, 5 * MiB - 1)
    manifest.write_checkpoint(gateway, payload.manifest, PayloadCheckpoint(payload_id=0, worker=0, invocations=1))
    counting = CountingGateway(client)

    # WHEN the worker resumes
    copy_payload(payload, settings(), counting, Deadline.never())

    # THEN it listed the parts and copied only 2 and 3
    assert counting.list_parts_calls == 1
    assert sorted(counting.parts) == [("huge", 2), ("huge", 3)]
    gateway.complete_multipart_upload(DST, "huge", split.upload_id, gateway.list_parts(DST, "huge", split.upload_id))
    assert body_of(client, DST, "huge") == body


# --- faults ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "operation"), [(1000, "CopyObject"), (12 * MiB, "UploadPartCopy")])
def test_slowdown_is_retried_with_backoff_and_counted(client, gateway, sleeps, size, operation):
    # GIVEN S3 answering SlowDown to the first two copy requests
    client.put_object(Bucket=SRC, Key="k", Body=data(size))
    [payload] = write_run(gateway, [[task_for(client, 0, "k")]])
    fault = Fault(client, operation, 503, "SlowDown", times=2)

    # WHEN the worker copies the object
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the SDK backed off and retried, the copy succeeded, and the result counts the retries
    assert fault.hits == 2
    assert len(sleeps) == 2
    assert (answer.done, answer.copied) == (True, 1)
    [result] = results_of(gateway, payload).results
    assert result.retries == 2
    assert body_of(client, DST, "k") == data(size)


def test_source_changed_on_part_2_fails_the_object_and_aborts_its_upload(client, gateway):
    # GIVEN a 12 MiB object whose part 2 copy fails its If-Match (the source changed), and a second object
    client.put_object(Bucket=SRC, Key="big", Body=data(12 * MiB))
    client.put_object(Bucket=SRC, Key="small", Body=b"fine")
    [payload] = write_run(gateway, [[task_for(client, 0, "big"), task_for(client, 1, "small")]])
    Fault(client, "UploadPartCopy", 412, "PreconditionFailed", match=lambda r: "partNumber=2" in r.url)

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN that object failed as SourceChanged, nothing of it was written, no upload is left, the other copied
    assert (answer.done, answer.copied, answer.failed) == (True, 1, 1)
    big = next(r for r in results_of(gateway, payload).results if r.source_key == "big")
    assert big.status == "failed"
    assert big.error.startswith("SourceChanged: ")
    assert uploads_in(client, DST) == []
    assert [o["Key"] for o in client.list_objects_v2(Bucket=DST)["Contents"]] == ["small"]


def test_access_denied_on_one_object_fails_it_and_the_others_copy(client, gateway):
    # GIVEN three objects, the copy of one of them denied
    for key in ("a", "denied", "c"):
        client.put_object(Bucket=SRC, Key=key, Body=key.encode())
    [payload] = write_run(gateway, [[task_for(client, i, k) for i, k in enumerate(("a", "denied", "c"))]])
    Fault(client, "CopyObject", 403, "AccessDenied", match=lambda r: "/denied" in r.url)

    # WHEN the worker runs
    answer = copy_payload(payload, settings(), gateway, Deadline.never())

    # THEN the denied object is failed with its code, and the others arrive
    assert (answer.done, answer.copied, answer.failed) == (True, 2, 1)
    denied = next(r for r in results_of(gateway, payload).results if r.source_key == "denied")
    assert (denied.status, denied.error.split(":")[0]) == ("failed", "AccessDenied")
    assert body_of(client, DST, "a") == b"a"
    assert body_of(client, DST, "c") == b"c"


def test_a_transient_error_saves_progress_and_is_raised_for_step_functions(s3_client, sleeps):
    # GIVEN a client that sends each request at most 3 times, and S3 failing every attempt to copy the second of four
    make_buckets(s3_client)
    client = make_client(max_attempts=3)
    gateway = S3Gateway(client)
    for i in range(4):
        client.put_object(Bucket=SRC, Key=f"obj-{i}", Body=data(10, i))
    tasks = [task_for(client, i, f"obj-{i}") for i in range(4)]
    [payload] = write_run(gateway, [tasks])
    fault = Fault(client, "CopyObject", 503, "ServiceUnavailable", match=lambda r: "/obj-1" in r.url)
    counting = CountingGateway(client)

    # WHEN the worker runs
    with pytest.raises(errors.TransientError):
        copy_payload(payload, settings(threads=1), counting, Deadline.never())

    # THEN it stopped taking work after 3 attempts, but what it finished is in the checkpoint
    assert fault.hits == 3
    assert [r.source_key for r in results_of(gateway, payload).results] == ["obj-0"]
    fault.active = False

    # WHEN Step Functions retries with the original input (S3 has recovered)
    answer = copy_payload(payload, settings(threads=1), counting, Deadline.never())

    # THEN everything is copied, each finished object exactly once
    assert (answer.done, answer.copied) == (True, 4)
    assert counting.copies == ["obj-0", "obj-1", "obj-1", "obj-2", "obj-3"]
    assert [r.task_id for r in results_of(gateway, payload).results] == [t.task_id for t in tasks]


# --- logs --------------------------------------------------------------------------------------------
def test_one_log_line_per_task_and_one_per_invocation(client, gateway):
    # GIVEN two objects and a log capture with our JSON formatter
    for key in ("a", "b"):
        client.put_object(Bucket=SRC, Key=key, Body=b"12345")
    [payload] = write_run(gateway, [[task_for(client, 0, "a"), task_for(client, 1, "b")]])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sfncopy.worker")
    logger.addHandler(handler)
    try:
        # WHEN the worker runs
        copy_payload(payload, settings(), gateway, Deadline.never())
    finally:
        logger.removeHandler(handler)

    # THEN each finished task logs its key, bytes, method, parts, seconds and status, and the invocation one line
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    tasks = [line for line in lines if line["message"] == "task finished"]
    assert sorted(line["key"] for line in tasks) == ["a", "b"]
    for line in tasks:
        assert (line["bytes"], line["method"], line["parts"], line["status"]) == (5, "copy", 1, "copied")
        assert line["seconds"] >= 0
    [summary] = [line for line in lines if line["message"] == "payload invocation finished"]
    assert (summary["done"], summary["copied"]) == (True, 2)


def test_the_worker_reads_its_payload_where_its_item_says_and_keeps_its_checkpoint_under_the_run_wide_id(
        client: Any, gateway: S3Gateway) -> None:
    # GIVEN a payload file where a shard wrote it (a segment), carrying the shard's numbers (its place in the
    # shard, worker -1), and no file at the single planner's plan/payloads/ key; the run numbers it 7 on worker 2
    client.put_object(Bucket=SRC, Key="a.txt", Body=b"alpha")
    client.put_object(Bucket=SRC, Key="b.txt", Body=b"bravo!")
    (first,) = write_run(gateway, [[]])
    loc = first.manifest
    segment = f"{loc.prefix}plan/sharding/shards/000003/segments/000000.json"
    tasks = (task_for(client, 0, "a.txt"), task_for(client, 1, "b.txt"))
    gateway.put_bytes(loc.bucket, segment, manifest.encode_payload(Payload(payload_id=0, worker=-1, tasks=tasks)),
                      "application/json")
    task = PayloadTask(run_id="run-1", manifest=loc, worker=2, payload=7, payload_key=segment)
    # WHEN the worker runs the task its worker-list item made
    answer = copy_payload(task, settings(), gateway, Deadline.never())
    # THEN both objects arrive, and the answer carries the key on (the next invocation's input)
    assert answer.done and answer.copied == 2 and answer.payload_key == segment
    assert body_of(client, DST, "a.txt") == b"alpha" and body_of(client, DST, "b.txt") == b"bravo!"
    # AND the checkpoint is payload 7's, of worker 2: not the shard's payload 0 (another shard's segment 0)
    checkpoint = manifest.read_checkpoint(gateway, loc, 7)
    assert checkpoint is not None and (checkpoint.payload_id, checkpoint.worker) == (7, 2)
    assert {r.source_key for r in checkpoint.results} == {"a.txt", "b.txt"}
    assert gateway.get_json_or_none(loc.bucket, manifest.results_key(loc, 0)) is None
