"""The invocation records a payload's checkpoint head keeps (lambdas/timeline.py), written by the worker on
moto's S3: a continuation, an error Step Functions retries, an invocation cut off before its end, and the
failure the record-failure mode writes, each where it happened."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from lambdas import errors, manifest, worker
from lambdas.deadline import Deadline
from lambdas.worker import Checkpointer, copy_payload, record_failure
from tests.functional.worker_helpers import SRC, CountingGateway, data, make_buckets, settings, task_for, write_run

OBJECTS = 6


@pytest.fixture
def client(s3_client: Any) -> Any:
    make_buckets(s3_client)
    for i in range(OBJECTS):
        s3_client.put_object(Bucket=SRC, Key=f"obj-{i}", Body=data(100 + i, i))
    return s3_client


class FailingCopies(CountingGateway):
    """Raises a TransientError on the copy of ``obj-3`` while ``fail`` is set (as a throttled S3 would)."""

    fail = False

    def copy_object(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail and "obj-3" in str(kwargs) + str(args):
            raise errors.TransientError("SlowDown: reduce your request rate")
        return super().copy_object(*args, **kwargs)


def test_each_invocation_records_its_start_end_outcome_and_work(client, monkeypatch):
    gateway = FailingCopies(client)
    [payload] = write_run(gateway, [[task_for(client, i, f"obj-{i}") for i in range(OBJECTS)]])
    loc = payload.manifest

    # GIVEN a first invocation stopped by its deadline after 2 copies (one thread: in order)
    first = copy_payload(payload, settings(threads=1), gateway,
                         Deadline(remaining_ms=lambda: 0 if len(gateway.copies) >= 2 else 10**9, margin=1.0),
                         memory_mb=1024)
    # AND a second that meets a throttling error on obj-3 (Step Functions retries it)
    gateway.fail = True
    with pytest.raises(errors.TransientError):
        copy_payload(first, settings(threads=1), gateway, Deadline.never(), memory_mb=1024)
    gateway.fail = False
    # AND a third, the retry, cut off before it could record its end (its runtime died)
    monkeypatch.setattr(Checkpointer, "end", lambda self, outcome: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        copy_payload(first, settings(threads=1), gateway,
                     Deadline(remaining_ms=lambda: 0 if len(gateway.copies) >= 4 else 10**9, margin=1.0))
    monkeypatch.undo()

    # WHEN a fourth invocation finishes the payload
    last = copy_payload(first, settings(threads=1), gateway, Deadline.never(), memory_mb=1024)

    # THEN the head records four invocations in order, with how each ended and what it copied
    head = manifest.read_head(gateway, loc, payload.payload)
    assert head is not None and last.done
    records = head.timeline
    assert [(r.number, r.outcome, r.retries) for r in records] == [
        (1, "continued", 0), (2, "failed", 0), (3, "lost", 1), (4, "done", 1)]
    # (the lost one's copy of obj-3 never reached the checkpoint: the fourth copied it again)
    assert [r.objects for r in records] == [2, 1, 0, 3]
    assert records[0].bytes == 100 + 101 and records[1].bytes == 102
    assert records[0].memory_mb == 1024 and records[0].requests == 2
    # AND each starts after the one before ended; the lost one ends no later than the next start
    for before, after in pairwise(records):
        assert 0 < before.start <= before.end <= after.start
    assert head.failed_at == 0


def test_record_failure_closes_a_cut_off_invocation_and_records_when_the_payload_failed(client):
    gateway = CountingGateway(client)
    [payload] = write_run(gateway, [[task_for(client, i, f"obj-{i}") for i in range(2)]])
    previous = manifest.read_checkpoint(gateway, payload.manifest, payload.payload)
    assert previous is None
    # GIVEN an invocation that recorded its start (with 5 s before its deadline) and then timed out
    book = Checkpointer(gateway, payload.manifest, worker.PayloadCheckpoint(payload_id=0, worker=0), [],
                        wall=lambda: 1_000.0)
    book.begin(5.0)

    # WHEN the child execution's Catch records the failure 60 s later
    text = record_failure(payload, {"Error": "States.Timeout", "Cause": "Task timed out after 5.00 seconds"},
                          gateway, wall=lambda: 1_060.0)

    # THEN the head has the failure, its time, and the cut-off invocation ended at its deadline
    head = manifest.read_head(gateway, payload.manifest, payload.payload)
    assert head is not None and text.startswith("States.Timeout")
    assert head.failed_at == 1_060_000
    [record] = head.timeline
    assert (record.outcome, record.start, record.end) == ("lost", 1_000_000, 1_005_000)
