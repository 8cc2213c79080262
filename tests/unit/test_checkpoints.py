"""A payload's checkpoint by value (lambdas/manifest.py's layout and invariant, the worker's Checkpointer),
on an in-memory store: chunks hold only new results, the head stays small, a task counts once, and a
failed put between a chunk and its head loses nothing that counted and counts nothing twice."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from lambdas import errors, manifest, worker
from lambdas.models import ManifestLocation, ObjectResult, PayloadCheckpoint, PayloadTask, ResultsHead
from lambdas.worker import Checkpointer
from tests.unit.memory_s3 import MemoryS3

LOC = ManifestLocation("m", "runs/r/")
PAYLOAD = 7


def result(i: int, status: str = "copied", error: str = "") -> ObjectResult:
    return ObjectResult(task_id=f"c{i}", copy_id=i, source_bucket="src", source_key=f"photos/{i:08d}.jpg",
                        target_bucket="dst", target_key=f"copy/photos/{i:08d}.jpg", bytes=1000 + i,
                        status=status, method="copy", parts=1, error=error)  # type: ignore[arg-type]


def order(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def book(store: MemoryS3, n: int, previous: PayloadCheckpoint | None = None, writer: str = "",
         now: list[float] | None = None) -> Checkpointer:
    clock = now or [0.0]
    return Checkpointer(store, LOC, previous or PayloadCheckpoint(PAYLOAD, 1), order(n),  # type: ignore[arg-type]
                        clock=lambda: clock[0], writer=writer)


def read(store: MemoryS3) -> PayloadCheckpoint:
    checkpoint = manifest.read_checkpoint(store, LOC, PAYLOAD)  # type: ignore[arg-type]
    assert checkpoint is not None
    return checkpoint


def head_of(store: MemoryS3) -> dict[str, Any]:
    return dict(json.loads(store.objects[manifest.results_key(LOC, PAYLOAD)]))


def chunk_puts(store: MemoryS3) -> list[str]:
    return [key for key in store.puts if "/result-chunks/" in key]


def ids(checkpoint: PayloadCheckpoint) -> list[str]:
    return [r.task_id for r in checkpoint.results]


# --- chunking and the head ---------------------------------------------------------------------------
def test_each_write_appends_one_chunk_of_only_the_new_results_and_rewrites_the_head():
    # GIVEN a fresh payload of 450 tasks (a checkpoint is due every 200 results)
    store = MemoryS3()
    checkpointer = book(store, 450, writer="0001-aaaaaaaa")

    # WHEN 450 results arrive and the invocation ends
    for i in range(450):
        checkpointer.record(result(i))
    checkpointer.write()

    # THEN three chunks were written once each, holding 200, 200 and 50 results, each after the one before
    assert chunk_puts(store) == [f"runs/r/result-chunks/00007/0001-aaaaaaaa-{n:05d}.json" for n in range(3)]
    sizes = [len(json.loads(store.objects[key])["results"]) for key in chunk_puts(store)]
    assert sizes == [200, 200, 50]
    # AND a head after each chunk, the last naming all three; it holds no results
    assert [key.endswith("results/00007.json") for key in store.puts] == [False, True] * 3
    assert head_of(store) == {"payload_id": 7, "worker": 1, "invocations": 1, "open_uploads": [],
                              "chunks": [["0001-aaaaaaaa", 3]]}
    # AND reading it back gives every result once, in payload order
    assert ids(read(store)) == order(450)


def test_the_head_stays_the_same_size_however_many_results_there_are():
    # GIVEN two payloads' checkpoints, one with 10 results and one with 10,000
    sizes = []
    for n in (10, 10_000):
        store = MemoryS3()
        checkpointer = book(store, n, writer="0001-aaaaaaaa")
        for i in range(n):
            checkpointer.record(result(i))
        checkpointer.write()
        sizes.append(len(store.objects[manifest.results_key(LOC, PAYLOAD)]))
    # THEN the heads differ only by the digits of the chunk count
    assert sizes[1] - sizes[0] <= 2
    assert sizes[1] < 200


def test_results_finished_out_of_order_read_back_in_payload_order():
    # GIVEN results recorded in reverse order, written in several chunks
    store = MemoryS3()
    checkpointer = book(store, 10)
    for i in reversed(range(10)):
        checkpointer.record(result(i))
        if i % 3 == 0:
            checkpointer.write()
    # THEN the checkpoint lists them as the payload does
    assert ids(read(store)) == order(10)
    assert len(chunk_puts(store)) == 4


def test_a_write_with_nothing_new_writes_no_chunk_and_a_due_write_with_nothing_new_writes_nothing():
    now = [0.0]
    store = MemoryS3()
    checkpointer = book(store, 3, now=now)
    checkpointer.record(result(0))
    checkpointer.write()
    puts = len(store.puts)
    # WHEN time passes with only parts done, THEN nothing is written
    now[0] = worker.CHECKPOINT_EVERY_SECONDS * 2
    checkpointer.part_done()
    assert len(store.puts) == puts
    # WHEN an upload opens, THEN only the head is written (no empty chunk)
    checkpointer.opened("c1", "upload-1")
    assert store.puts[puts:] == [manifest.results_key(LOC, PAYLOAD)]
    assert read(store).open_uploads == (("c1", "upload-1"),)


def test_an_upload_leaves_the_head_in_the_same_write_as_its_result_enters_a_chunk():
    store = MemoryS3()
    checkpointer = book(store, 2)
    checkpointer.opened("c0", "upload-1")
    checkpointer.record(result(0))
    assert read(store).open_uploads == (("c0", "upload-1"),)  # the result is not written yet
    checkpointer.write()
    assert (ids(read(store)), read(store).open_uploads) == (["c0"], ())


# --- reading: dedup, order, streaming, concurrency ---------------------------------------------------
def _plant(store: MemoryS3, chunks: list[tuple[str, list[ObjectResult]]]) -> ResultsHead:
    """Chunks written as the worker writes them (one per writer here, positions from the task number)."""
    for writer, results in chunks:
        manifest.write_chunk(store, LOC, PAYLOAD, writer, 0,  # type: ignore[arg-type]
                             [(int(r.task_id[1:]), r) for r in results])
    head = ResultsHead(PAYLOAD, 1, invocations=len(chunks), chunks=tuple((w, 1) for w, _ in chunks))
    manifest.write_head(store, LOC, head)  # type: ignore[arg-type]
    return head


def test_a_task_in_two_chunks_counts_once_and_the_latest_chunk_wins():
    # GIVEN c1 failed in an older chunk and copied in a newer one
    store = MemoryS3()
    head = _plant(store, [("0001-aaaaaaaa", [result(0), result(1, "failed", "SlowDown: x")]),
                          ("0002-bbbbbbbb", [result(1), result(2)])])
    # THEN the whole checkpoint and the stream both count c1 once, as copied
    checkpoint = read(store)
    assert ids(checkpoint) == ["c0", "c1", "c2"]
    assert checkpoint.results[1].status == "copied"
    streamed = list(manifest.iter_results(store, LOC, head))  # type: ignore[arg-type]
    assert sorted(r.task_id for r in streamed) == ["c0", "c1", "c2"]
    assert next(r for r in streamed if r.task_id == "c1").status == "copied"


def test_a_chunk_the_head_does_not_name_does_not_count():
    store = MemoryS3()
    _plant(store, [("0001-aaaaaaaa", [result(0)])])
    manifest.write_chunk(store, LOC, PAYLOAD, "0002-bbbbbbbb", 0, [(1, result(1))])  # type: ignore[arg-type]
    assert ids(read(store)) == ["c0"]


def test_a_named_chunk_that_is_missing_is_an_error_not_a_smaller_result():
    store = MemoryS3()
    _plant(store, [("0001-aaaaaaaa", [result(0)]), ("0002-bbbbbbbb", [result(1)])])
    del store.objects[manifest.chunk_key(LOC, PAYLOAD, "0001-aaaaaaaa", 0)]
    with pytest.raises(errors.ManifestConflictError, match=r"0001-aaaaaaaa-00000\.json does not exist"):
        read(store)


def test_streaming_reads_chunk_by_chunk_newest_first_and_only_a_window_ahead():
    # GIVEN a checkpoint of 100 chunks of 3 results
    store = MemoryS3()
    checkpointer = book(store, 300, writer="0001-aaaaaaaa")
    for i in range(300):
        checkpointer.record(result(i))
        if i % 3 == 2:
            checkpointer.write()
    head = manifest.read_head(store, LOC, PAYLOAD)  # type: ignore[arg-type]
    assert head is not None and head.chunks == (("0001-aaaaaaaa", 100),)

    # WHEN a consumer takes the first result
    store.gets.clear()
    stream = manifest.iter_results(store, LOC, head)  # type: ignore[arg-type]
    first = next(stream)

    # THEN it comes from the newest chunk, and at most READ_THREADS chunks were read
    assert first.task_id in {"c297", "c298", "c299"}
    assert len(store.gets) <= manifest.READ_THREADS + 1
    # AND the whole stream is every result once, in chunk order newest first
    rest = [r.task_id for r in stream]
    assert len(rest) == 299 and len({first.task_id, *rest}) == 300
    assert rest[-1] in {"c0", "c1", "c2"}


class _SlowStore(MemoryS3):
    """Each chunk read takes a moment; notes how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = self.peak = 0
        self._count = threading.Lock()

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        with self._count:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if "/result-chunks/" in key:
                time.sleep(0.005)
            return super().get_json_or_none(bucket, key)
        finally:
            with self._count:
                self.running -= 1


def test_many_chunks_are_read_concurrently_and_a_known_chunk_is_not_read_again():
    store = _SlowStore()
    checkpointer = book(store, 64)
    for i in range(64):
        checkpointer.record(result(i))
        checkpointer.write()
    known: manifest.ChunkCache = {}

    first = manifest.read_checkpoint(store, LOC, PAYLOAD, known=known)  # type: ignore[arg-type]
    assert 1 < store.peak <= manifest.READ_THREADS
    store.gets.clear()
    again = manifest.read_checkpoint(store, LOC, PAYLOAD, known=known)  # type: ignore[arg-type]

    assert first is not None and again == first and ids(first) == order(64)
    assert store.gets == [manifest.results_key(LOC, PAYLOAD)]  # the head only


def test_only_head_keys_name_a_payload():
    assert manifest.results_payload_id(LOC, "runs/r/results/00042.json") == 42
    assert manifest.results_payload_id(LOC, "runs/r/result-chunks/00042/0001-aaaaaaaa-00000.json") is None
    assert manifest.results_payload_id(LOC, "runs/other/results/00042.json") is None
    assert manifest.results_payload_id(LOC, "runs/r/results/00042.json.tmp") is None


# --- the invariant under failures ---------------------------------------------------------------------
def test_a_crash_between_a_chunk_and_its_head_loses_nothing_counted_and_counts_nothing_twice():
    # GIVEN an invocation that checkpointed c0-c3, then wrote the chunk of c4-c5 but crashed before the head
    store = MemoryS3()
    first = book(store, 8, writer="0001-aaaaaaaa")
    for i in range(4):
        first.record(result(i))
    first.write()
    for i in (4, 5):
        first.record(result(i))
    store.fail = lambda key: key.endswith("results/00007.json")
    with pytest.raises(errors.TransientError):
        first.write()
    assert manifest.chunk_key(LOC, PAYLOAD, "0001-aaaaaaaa", 1) in store.objects  # the orphan chunk

    # THEN a reader sees the last head's view: c0-c3, nothing lost, nothing from the orphan chunk
    store.fail = lambda key: False
    seen = read(store)
    assert ids(seen) == ["c0", "c1", "c2", "c3"]

    # WHEN Step Functions retries the invocation with its original input and the retry finishes the payload
    retry = book(store, 8, previous=seen, writer="0002-bbbbbbbb")
    todo = [i for i in range(8) if not retry.finished(f"c{i}")]
    for i in todo:
        retry.record(result(i))
    retry.write()

    # THEN it redid exactly the tasks of the orphan chunk and the rest, and every task counts once
    assert todo == [4, 5, 6, 7]
    final = read(store)
    assert ids(final) == order(8)
    assert final.chunks == (("0001-aaaaaaaa", 1), ("0002-bbbbbbbb", 1))
    assert final.invocations == 2


def test_a_failed_chunk_put_keeps_its_results_for_the_next_write():
    store = MemoryS3(fail=lambda key: "/result-chunks/" in key)
    checkpointer = book(store, 3)
    checkpointer.record(result(0))
    with pytest.raises(errors.TransientError):
        checkpointer.write()
    assert store.puts == []  # no head either: a head never names an unwritten chunk
    store.fail = lambda key: False
    checkpointer.record(result(1))
    checkpointer.write()
    assert ids(read(store)) == ["c0", "c1"]
    assert len(chunk_puts(store)) == 1


def test_a_failed_head_put_is_healed_by_the_next_write_of_the_same_invocation():
    # GIVEN a head put that fails once after its chunk was written
    failures = [1]

    def fail_head_once(key: str) -> bool:
        if key.endswith("results/00007.json") and failures[0]:
            failures[0] -= 1
            return True
        return False

    store = MemoryS3(fail=fail_head_once)
    checkpointer = book(store, 3, writer="0001-aaaaaaaa")
    checkpointer.record(result(0))
    with pytest.raises(errors.TransientError):
        checkpointer.write()
    # WHEN the invocation writes again (more results, or at its end)
    checkpointer.record(result(1))
    checkpointer.write()
    # THEN the head names both chunks: the first chunk's results were not lost, nor written twice
    assert head_of(store)["chunks"] == [["0001-aaaaaaaa", 2]]
    assert ids(read(store)) == ["c0", "c1"]


def test_two_invocations_of_one_payload_never_share_a_key_and_the_last_head_is_a_consistent_view():
    # GIVEN a checkpoint with c0, and two invocations that both start from it (say a retry while a slow one ran)
    store = MemoryS3()
    setup = book(store, 4, writer="0001-aaaaaaaa")
    setup.record(result(0))
    setup.write()
    start = read(store)
    a = book(store, 4, previous=start, writer=manifest.new_writer(start.invocations + 1))
    b = book(store, 4, previous=start, writer=manifest.new_writer(start.invocations + 1))

    # WHEN both record results, A first, B last
    a.record(result(1))
    a.record(result(2))
    a.write()
    b.record(result(1))
    b.write()

    # THEN no chunk key was written twice, and the head is B's view: c0 and B's c1, each once
    assert len(chunk_puts(store)) == len(set(chunk_puts(store))) == 3
    final = read(store)
    assert ids(final) == ["c0", "c1"]
    assert final.invocations == 2


def test_writers_are_unique_per_invocation_even_with_the_same_number():
    names = {manifest.new_writer(3) for _ in range(1000)}
    assert len(names) == 1000
    assert all(name.startswith("0003-") and len(name) == 13 for name in names)


# --- single-file checkpoints of older versions --------------------------------------------------------
def _legacy(results: tuple[ObjectResult, ...], open_uploads: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The file as versions before result chunks wrote it (PayloadCheckpoint.to_dict had no "chunks")."""
    data = PayloadCheckpoint(PAYLOAD, 1, results, open_uploads, invocations=2).to_dict()
    del data["chunks"]
    return data


def test_a_single_file_checkpoint_of_an_older_version_is_read_as_it_is():
    store = MemoryS3()
    store.put_json("m", manifest.results_key(LOC, PAYLOAD), _legacy((result(0), result(2)), (("c1", "u-1"),)))
    checkpoint = read(store)
    assert ids(checkpoint) == ["c0", "c2"]
    assert (checkpoint.open_uploads, checkpoint.invocations, checkpoint.chunks) == ((("c1", "u-1"),), 2, ())
    head = manifest.read_head(store, LOC, PAYLOAD)  # type: ignore[arg-type]
    assert head is not None
    assert [r.task_id for r in manifest.iter_results(store, LOC, head)] == ["c0", "c2"]  # type: ignore[arg-type]


def test_a_worker_resuming_a_single_file_checkpoint_moves_its_results_into_its_first_chunk():
    # GIVEN a run in flight during an upgrade: an older worker's file with c0 and c2 finished
    store = MemoryS3()
    store.put_json("m", manifest.results_key(LOC, PAYLOAD), _legacy((result(0), result(2))))

    # WHEN a newer worker resumes it and finishes c1 and c3
    resumed = book(store, 4, previous=read(store), writer="0003-aaaaaaaa")
    assert [t for t in order(4) if not resumed.finished(t)] == ["c1", "c3"]
    resumed.record(result(1))
    resumed.record(result(3))
    resumed.write()

    # THEN the file became a head naming one chunk that holds all four, in payload order, once each
    assert head_of(store)["chunks"] == [["0003-aaaaaaaa", 1]]
    assert "results" not in head_of(store)
    final = read(store)
    assert ids(final) == order(4)
    assert final.invocations == 3


# --- O(n) ------------------------------------------------------------------------------------------
def test_checkpoint_bytes_written_grow_linearly_with_the_results():
    # GIVEN a payload of 20,000 tiny results, a checkpoint due every 200 of them
    n = 20_000
    store = MemoryS3()
    checkpointer = Checkpointer(store, LOC, PayloadCheckpoint(PAYLOAD, 1), order(n),  # type: ignore[arg-type]
                                clock=lambda: 0.0)

    # WHEN they are all recorded and the invocation ends
    for i in range(n):
        checkpointer.record(result(i))
    checkpointer.write()

    # THEN all the checkpoint writes together are less than 3x what the final checkpoint holds (rewriting
    # every result at every checkpoint wrote ~50x), and at least one checkpoint was due per 200 results
    assert len(store.puts) >= n // worker.CHECKPOINT_EVERY_RESULTS
    assert store.bytes_written < 3 * store.stored_bytes()


# --- a failure recorded by the child's RecordFailure state ----------------------------------------------
def task_of(payload: int = PAYLOAD) -> PayloadTask:
    return PayloadTask(run_id="r", manifest=LOC, worker=1, payload=payload)


def test_a_recorded_failure_joins_the_head_and_keeps_every_result_and_open_upload():
    # GIVEN a payload with two chunks of results and an open upload
    store = MemoryS3()
    b = book(store, 4)
    b.record(result(0))
    b.write()
    b.opened("c2", "u-2")
    b.record(result(1))
    b.write()
    before = read(store)
    # WHEN its child's Catch records a Lambda error (the Cause is Lambda's JSON)
    cause = json.dumps({"errorType": "ConfigError", "errorMessage": "bad rule", "stackTrace": []})
    text = worker.record_failure(task_of(), {"Error": "ConfigError", "Cause": cause}, store)  # type: ignore[arg-type]
    # THEN the head says why, and counts what it counted before
    assert text == "ConfigError: bad rule" == head_of(store)["failure"]
    after = read(store)
    assert (ids(after), after.open_uploads, after.chunks) == (ids(before), before.open_uploads, before.chunks)
    assert after.failure == text and before.failure == ""
    # AND a head without the field (every head written before it existed) reads as no failure
    assert "failure" not in ResultsHead(PAYLOAD, 1).to_dict()
    assert ResultsHead.from_dict({"payload_id": PAYLOAD, "worker": 1}).failure == ""


def test_a_failure_is_recorded_without_a_checkpoint_and_over_a_single_file_one():
    store = MemoryS3()
    # GIVEN no checkpoint yet  WHEN a failure is recorded  THEN a head with no results holds it
    worker.record_failure(task_of(), {"Error": "States.Timeout", "Cause": ""}, store)  # type: ignore[arg-type]
    assert (read(store).results, read(store).failure) == ((), "States.Timeout: States.Timeout")
    # GIVEN a single-file checkpoint of an older version  WHEN a failure is recorded  THEN its results still count
    store.put_json("m", manifest.results_key(LOC, PAYLOAD), _legacy((result(0), result(2)), (("c1", "u-1"),)))
    worker.record_failure(task_of(), {"Error": "TransientError", "Cause": "x" * 5000}, store)  # type: ignore[arg-type]
    after = read(store)
    assert (ids(after), after.open_uploads) == (["c0", "c2"], (("c1", "u-1"),))
    # AND a long cause is cut to MAX_FAILURE_CHARS
    assert after.failure.startswith("TransientError: xxx") and len(after.failure) == worker.MAX_FAILURE_CHARS
