"""The worker's append-only checkpoints on moto's S3: a payload resumed across deadlines, a crash between
a chunk and its head, and a retry ends with every result exactly once; a run in flight during an
upgrade (a single-file checkpoint) resumes."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas import errors, manifest, worker
from lambdas.deadline import Deadline
from lambdas.models import PayloadCheckpoint, PayloadTask
from lambdas.worker import copy_payload
from tests.functional.worker_helpers import (
    DST,
    MANIFEST,
    SRC,
    CountingGateway,
    data,
    make_buckets,
    settings,
    task_for,
    write_run,
)

OBJECTS = 30


@pytest.fixture
def client(s3_client: Any) -> Any:
    make_buckets(s3_client)
    return s3_client


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint every 3 results, so a small payload spans many chunks."""
    monkeypatch.setattr(worker, "CHECKPOINT_EVERY_RESULTS", 3)


class CrashingGateway(CountingGateway):
    """Once armed, fails the head put that follows the second chunk put, once, as a crash between the two
    would leave the manifest (the error stops the invocation there)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.state = {"armed": 0, "chunks": 0, "crashed": 0}

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        state = self.state
        if state["armed"] and not state["crashed"]:
            if "/result-chunks/" in key:
                state["chunks"] += 1
            elif "/results/" in key and state["chunks"] == 2:
                state["crashed"] = 1
                raise errors.TransientError(f"write s3://{bucket}/{key}: the worker crashed")
        super().put_bytes(bucket, key, body, content_type)


def chunk_keys_in_s3(client: Any, payload: PayloadTask) -> list[str]:
    prefix = f"{payload.manifest.prefix}result-chunks/"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=MANIFEST, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", ())]


def test_a_payload_resumed_across_invocations_a_crash_and_a_retry_ends_with_every_result_once(
        client, small_checkpoints):
    # GIVEN 30 small objects in one payload
    for i in range(OBJECTS):
        client.put_object(Bucket=SRC, Key=f"obj-{i:02d}", Body=data(50 + i, i))
    tasks = [task_for(client, i, f"obj-{i:02d}") for i in range(OBJECTS)]
    [payload] = write_run(CountingGateway(client), [tasks])
    gateway = CrashingGateway(client)

    # WHEN the worker runs with 3 threads: a first invocation stopped by its deadline after 8 copies, a
    # second that crashes between its second chunk and the head naming it, Step Functions' retry of that
    # invocation with its original input (stopped by its deadline), and one more to finish
    first = copy_payload(payload, settings(threads=3), gateway,
                         Deadline(remaining_ms=lambda: 0 if len(gateway.copies) >= 8 else 10**9, margin=1.0))
    gateway.state["armed"] = 1
    with pytest.raises(errors.TransientError, match="crashed"):
        copy_payload(first, settings(threads=3), gateway, Deadline.never())
    retried = copy_payload(first, settings(threads=3), gateway,
                           Deadline(remaining_ms=lambda: 0 if len(gateway.copies) >= 26 else 10**9, margin=1.0))
    last = copy_payload(retried, settings(threads=3), gateway, Deadline.never())

    # THEN the invocations went as planned and the last answer counts every object once
    assert gateway.state["crashed"] == 1
    assert not first.done and not retried.done
    assert (last.done, last.cursor, last.copied, last.failed) == (True, OBJECTS, OBJECTS, 0)
    # AND the checkpoint holds every task exactly once, in payload order, as the stream does
    checkpoint = manifest.read_checkpoint(gateway, payload.manifest, payload.payload)
    assert checkpoint is not None
    assert [r.task_id for r in checkpoint.results] == [t.task_id for t in tasks]
    head = manifest.read_head(gateway, payload.manifest, payload.payload)
    assert head is not None
    streamed = [r.task_id for r in manifest.iter_results(gateway, payload.manifest, head)]
    assert sorted(streamed) == sorted(t.task_id for t in tasks)
    # AND the chunk the crash left unnamed did not count: its tasks were copied again, as were only the
    # copies in flight at the crash (3 threads); every target is right
    named = set(manifest.chunk_keys(payload.manifest, head))
    orphans = [key for key in chunk_keys_in_s3(client, payload) if key not in named]
    assert len(orphans) == 1
    orphaned = {r["source_key"] for r in gateway.get_json(MANIFEST, orphans[0])["results"]}
    twice = {k for k in gateway.copies if gateway.copies.count(k) > 1}
    assert orphaned and orphaned <= twice
    assert len(twice - orphaned) <= 3
    assert len(gateway.copies) == OBJECTS + len(twice)
    for i in range(OBJECTS):
        assert client.get_object(Bucket=DST, Key=f"obj-{i:02d}")["Body"].read() == data(50 + i, i)
    # AND each head names chunks of the invocations that wrote it, oldest first
    assert [int(writer[:4]) for writer, _count in head.chunks] == sorted(int(w[:4]) for w, _ in head.chunks)
    assert head.invocations == 4


def test_a_run_in_flight_during_an_upgrade_resumes_its_single_file_checkpoint(client, gateway):
    # GIVEN a payload of three objects whose first was copied by an older worker, recorded in a single file
    for i in range(3):
        client.put_object(Bucket=SRC, Key=f"obj-{i}", Body=data(10 + i, i))
    tasks = [task_for(client, i, f"obj-{i}") for i in range(3)]
    [payload] = write_run(gateway, [tasks])
    copy_payload(payload, settings(), gateway, Deadline.never())
    done = manifest.read_checkpoint(gateway, payload.manifest, payload.payload)
    assert done is not None
    old = PayloadCheckpoint(payload_id=0, worker=0, results=done.results[:1], invocations=1).to_dict()
    del old["chunks"]  # exactly the file versions before result chunks wrote
    gateway.put_json(MANIFEST, manifest.results_key(payload.manifest, payload.payload), old)
    for i in (1, 2):
        client.delete_object(Bucket=DST, Key=f"obj-{i}")
    counting = CountingGateway(client)

    # WHEN the newer worker resumes the payload
    answer = copy_payload(payload, settings(), counting, Deadline.never())

    # THEN it copies only the two unfinished objects, and the checkpoint (now a head and chunks) has all three once
    assert sorted(counting.copies) == ["obj-1", "obj-2"]
    assert (answer.done, answer.copied) == (True, 3)
    checkpoint = manifest.read_checkpoint(gateway, payload.manifest, payload.payload)
    assert checkpoint is not None
    assert [r.task_id for r in checkpoint.results] == [t.task_id for t in tasks]
    assert checkpoint.chunks and checkpoint.invocations == 2
