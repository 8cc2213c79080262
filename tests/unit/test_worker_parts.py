"""The worker's pure parts, by value: windowed submission, part reuse, error ranking, checkpoint cadence."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lambdas import errors, manifest
from lambdas.copying import multipart_parts_in_etag, reusable_parts, run_windowed, worst_error
from lambdas.gateway import PartInfo
from lambdas.limits import MiB
from lambdas.models import ManifestLocation, ObjectResult, PayloadCheckpoint
from lambdas.parts import plan_parts
from lambdas.worker import CHECKPOINT_EVERY_RESULTS, CHECKPOINT_EVERY_SECONDS, Checkpointer, checkpoint_due
from tests.unit.memory_s3 import MemoryS3


# --- run_windowed ------------------------------------------------------------------------------------
def test_every_item_runs_once_and_never_more_than_the_window_at_a_time():
    # GIVEN 20 items, a pool of 8 threads and a window of 3
    lock = threading.Lock()
    running, peak = [0], [0]

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.002)
        with lock:
            running[0] -= 1
        return n * n

    # WHEN they run windowed
    with ThreadPoolExecutor(8) as pool:
        done = {item: future.result() for item, future in run_windowed(range(20), work, pool, 3, lambda: True)}

    # THEN each ran once, with at most 3 in flight
    assert done == {n: n * n for n in range(20)}
    assert peak[0] <= 3


def test_nothing_new_starts_once_may_start_says_no_but_in_flight_work_is_yielded():
    # GIVEN a window of 2 and a stop after the first result
    yielded: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        # WHEN may_start turns false after one item finished
        for item, future in run_windowed(range(10), lambda n: n, pool, 2, lambda: not yielded):
            future.result()
            yielded.append(item)

    # THEN only the two submitted before the stop ran, and both were yielded
    assert sorted(yielded) == [0, 1]


def test_failures_are_yielded_as_futures():
    def work(n: int) -> int:
        if n == 1:
            raise errors.TransientError("boom")
        return n

    with ThreadPoolExecutor(1) as pool:
        outcomes = {item: future.exception() for item, future in run_windowed([0, 1, 2], work, pool, 1, lambda: True)}
    assert isinstance(outcomes[1], errors.TransientError)
    assert outcomes[0] is None and outcomes[2] is None


def test_a_window_below_one_is_refused():
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="window"):
        list(run_windowed([1], lambda n: n, pool, 0, lambda: True))


# --- parts -------------------------------------------------------------------------------------------
def test_only_parts_with_the_planned_number_and_size_are_reused():
    planned = plan_parts(12 * MiB, 5 * MiB)  # 5, 5, 2 MiB
    existing = [PartInfo(1, "a", 5 * MiB), PartInfo(2, "b", 4 * MiB), PartInfo(3, "c", 2 * MiB),
                PartInfo(4, "d", 1 * MiB)]
    assert reusable_parts(existing, planned) == [PartInfo(1, "a", 5 * MiB), PartInfo(3, "c", 2 * MiB)]


@pytest.mark.parametrize(("etag", "parts"), [
    ("d41d8cd98f00b204e9800998ecf8427e", 0),
    ('"d41d8cd98f00b204e9800998ecf8427e-12"', 12),
    ("abc-1", 1),
    ("abc-x", 0),
    ("", 0),
])
def test_part_count_from_a_multipart_etag(etag, parts):
    assert multipart_parts_in_etag(etag) == parts


def test_a_bug_beats_a_per_object_error_which_beats_a_transient_one():
    transient, changed, bug = errors.TransientError("t"), errors.SourceChangedError("s"), KeyError("k")
    assert worst_error([transient, changed, bug]) is bug
    assert worst_error([transient, changed]) is changed
    assert worst_error([transient]) is transient


# --- checkpoint cadence ------------------------------------------------------------------------------
def test_a_checkpoint_is_due_after_enough_results_or_enough_time():
    assert not checkpoint_due(CHECKPOINT_EVERY_RESULTS - 1, CHECKPOINT_EVERY_SECONDS - 0.1)
    assert checkpoint_due(CHECKPOINT_EVERY_RESULTS, 0.0)
    assert checkpoint_due(0, CHECKPOINT_EVERY_SECONDS)


LOC = ManifestLocation("m", "runs/r/")


def _heads_written(store: MemoryS3) -> list[str]:
    return [key for key in store.puts if manifest.results_payload_id(LOC, key) is not None]


def _result(task_id: str) -> ObjectResult:
    return ObjectResult(task_id=task_id, copy_id=0, source_bucket="s", source_key=task_id, target_bucket="t",
                        target_key=task_id, bytes=1, status="copied", method="copy")


def _checkpointer(previous: PayloadCheckpoint, order: list[str], now: list[float]) -> tuple[Checkpointer, MemoryS3]:
    store = MemoryS3()
    book = Checkpointer(store, LOC, previous, order,  # type: ignore[arg-type]
                        clock=lambda: now[0])
    return book, store


def test_results_are_written_when_due_in_payload_order_one_per_task():
    # GIVEN a previous checkpoint with task "b" finished and an open upload for "c"
    previous = PayloadCheckpoint(payload_id=3, worker=1, results=(_result("b"),), open_uploads=(("c", "u1"),),
                                 invocations=2)
    now = [0.0]
    book, store = _checkpointer(previous, ["a", "b", "c"], now)

    # WHEN results arrive before and after the time cadence
    book.record(_result("c"))
    assert store.puts == []  # not due yet
    now[0] = CHECKPOINT_EVERY_SECONDS
    book.record(_result("a"))

    # THEN one checkpoint was written: payload order, the finished upload no longer open, invocations counted
    assert len(_heads_written(store)) == 1
    restored = manifest.read_checkpoint(store, LOC, 3)  # type: ignore[arg-type]
    assert restored is not None
    assert [r.task_id for r in restored.results] == ["a", "b", "c"]
    assert (restored.open_uploads, restored.invocations, restored.payload_id) == ((), 3, 3)


def test_a_new_upload_is_written_at_once():
    now = [0.0]
    book, store = _checkpointer(PayloadCheckpoint(payload_id=0, worker=0), ["a"], now)
    book.opened("a", "upload-1")
    assert len(_heads_written(store)) == 1
    restored = manifest.read_checkpoint(store, LOC, 0)  # type: ignore[arg-type]
    assert restored is not None and restored.open_uploads == (("a", "upload-1"),)
    assert book.open_upload("a") == "upload-1"
    assert book.open_upload("other") == ""
