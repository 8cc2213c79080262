"""The worker: copy one payload's tasks, checkpointing as it goes, until done or the deadline is near.

One invocation: read the plan index (options), the payload and its checkpoint (the S3 checkpoint is the
truth: a Step Functions Retry re-sends the original input, so the event's cursor is only for progress);
copy the unfinished tasks on a thread pool (their parts on a second pool), appending results to the
checkpoint as they finish (a chunk of new results and a small head per write: lambdas/manifest.py);
answer ``done: false`` when time ran out, so the state machine calls again. Per-object errors become failed
results; a TransientError stops new work, lets in-flight work finish, writes the checkpoint and is
raised for Step Functions to retry with backoff.

When an invocation fails for good (a fatal error, or retries exhausted), the child execution's Catch calls
the worker once more in its record-failure mode (``record_failure``): it writes the Step Functions error
into the payload's checkpoint head, where the finalizer reads it for the payload's unfinished tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from operator import itemgetter
from typing import Any

from lambdas import logs, manifest, timeline
from lambdas.cleanup import readable_cause
from lambdas.copying import CopyContext, copy_task, run_windowed, worst_error
from lambdas.deadline import Deadline
from lambdas.errors import SettingsError
from lambdas.gateway import S3Gateway
from lambdas.models import (
    CopyTask,
    ManifestLocation,
    ObjectResult,
    PayloadCheckpoint,
    PayloadTask,
    ResultsHead,
    WorkItem,
)
from lambdas.settings import Settings

# The checkpoint is written at least this often while work finishes (and after every new upload, and at
# the end): a crash then repeats at most this much work. Each write costs the new results' bytes and a
# small head, so the cadence no longer trades against the payload's size.
CHECKPOINT_EVERY_SECONDS = 20.0
CHECKPOINT_EVERY_RESULTS = 200
# A recorded failure is cut to this many characters: it is repeated on every unfinished task's report row, and a
# Step Functions Cause may be up to 32,768 characters (API reference, HistoryEvent "cause").
MAX_FAILURE_CHARS = 1_000

log = logs.get_logger("worker")


def checkpoint_due(results_since: int, seconds_since: float) -> bool:
    return results_since >= CHECKPOINT_EVERY_RESULTS or seconds_since >= CHECKPOINT_EVERY_SECONDS


class Checkpointer:
    """The payload's progress: results keyed by task id (a task has exactly one) and the open
    whole-object uploads. A write appends the results recorded since the previous write as one chunk,
    then rewrites the head naming it (lambdas/manifest.py: layout and invariant). Thread-safe; writes
    are serialised so a newer head is never overwritten by an older one."""

    def __init__(self, s3: S3Gateway, loc: ManifestLocation, previous: PayloadCheckpoint,
                 order: Iterable[str], clock: Callable[[], float] = time.monotonic, writer: str = "",
                 wall: Callable[[], float] = time.time) -> None:
        self._s3 = s3
        self._loc = loc
        self._payload_id = previous.payload_id
        self._worker = previous.worker
        self._invocations = previous.invocations + 1
        self._order = {task_id: i for i, task_id in enumerate(order)}
        self._results: dict[str, ObjectResult] = {r.task_id: r for r in previous.results}
        self._open: dict[str, str] = dict(previous.open_uploads)
        # Chunks: those of earlier invocations (they hold previous.results), then this invocation's.
        self._earlier = previous.chunks
        self._writer = writer or manifest.new_writer(self._invocations)
        self._chunks_written = 0
        # Results no chunk holds yet. Those of a single-file checkpoint (no chunks) go into the first one.
        self._pending: dict[str, ObjectResult] = {} if previous.chunks else dict(self._results)
        self._changed = bool(self._pending)  # since the last write: a write that is due has something to say
        self._clock = clock
        self._state = threading.Lock()
        self._writing = threading.Lock()
        self._since = 0
        self._written_at = clock()
        # This invocation's record among the payload's (lambdas/timeline.py), and what it finished.
        self._wall = wall
        self._timeline = previous.timeline
        self._mine = [0, 0, 0]  # bytes copied, tasks finished, S3 requests sent

    # --- UploadBook (lambdas.copying) ------------------------------------------------------------------
    def open_upload(self, task_id: str) -> str:
        with self._state:
            return self._open.get(task_id, "")

    def opened(self, task_id: str, upload_id: str) -> None:
        with self._state:
            self._open[task_id] = upload_id
            self._changed = True
        self.write()

    def part_done(self) -> None:
        self.write_if_due()

    # --- results -------------------------------------------------------------------------------------
    def finished(self, task_id: str) -> bool:
        with self._state:
            return task_id in self._results

    def record(self, result: ObjectResult) -> None:
        """The task's one result; its upload (completed or aborted) is no longer open."""
        with self._state:
            self._results[result.task_id] = result
            self._pending[result.task_id] = result
            self._open.pop(result.task_id, None)
            self._mine[0] += result.bytes if result.status == "copied" else 0
            self._mine[1] += 1
            self._mine[2] += result.attempts
            self._since += 1
            self._changed = True
        self.write_if_due()

    def results(self) -> list[ObjectResult]:
        with self._state:
            return sorted(self._results.values(), key=lambda r: self._order.get(r.task_id, len(self._order)))

    def begin(self, seconds_left: float, memory_mb: int = 0) -> None:
        """Record this invocation's start (and that it has ``seconds_left`` before Lambda stops it) in the
        head at once: an invocation cut off later is then seen by the next one (lambdas/timeline.py)."""
        now = self._now_ms()
        with self._state:
            self._timeline = timeline.begin(self._timeline, self._invocations, now, now + int(seconds_left * 1000),
                                            memory_mb)
            self._changed = True
        self.write()

    def end(self, outcome: timeline.Outcome) -> None:
        """Record this invocation's end and what it did, then write the checkpoint."""
        with self._state:
            self._timeline = timeline.finish(self._timeline, self._now_ms(), outcome, *self._mine)
            self._changed = True
        self.write()

    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    def write_if_due(self) -> None:
        with self._state:
            due = self._changed and checkpoint_due(self._since, self._clock() - self._written_at)
        if due:
            self.write()

    def write(self) -> None:
        """Put the results recorded since the last write in a new chunk (if there are any), then the head.

        The chunk and the head's open uploads come from one moment of the state, so the head never shows
        an upload as open whose result it counts, nor counts a result whose upload it dropped. A failed
        write loses nothing: unwritten results stay pending, and the next head names a written chunk."""
        with self._writing:
            with self._state:
                batch, self._pending = self._pending, {}
                open_uploads = tuple(sorted(self._open.items()))
                records = self._timeline
                self._since, self._changed, self._written_at = 0, False, self._clock()
            try:
                if batch:
                    rows = sorted(((self._order.get(t, len(self._order)), r) for t, r in batch.items()),
                                  key=itemgetter(0))
                    manifest.write_chunk(self._s3, self._loc, self._payload_id, self._writer,
                                         self._chunks_written, rows)
                    self._chunks_written += 1
                    batch = {}
                mine = ((self._writer, self._chunks_written),) if self._chunks_written else ()
                manifest.write_head(self._s3, self._loc, ResultsHead(
                    payload_id=self._payload_id, worker=self._worker, invocations=self._invocations,
                    open_uploads=open_uploads, chunks=(*self._earlier, *mine), timeline=records))
            except BaseException:
                with self._state:
                    self._pending = {**batch, **self._pending}
                    self._changed = True
                raise


def copy_payload(task: PayloadTask, settings: Settings, s3: S3Gateway, deadline: Deadline,
                 memory_mb: int = 0) -> PayloadTask:
    """Copy the payload's unfinished tasks until done or the deadline is near; see the module doc.
    ``memory_mb``: the worker Lambda's memory, recorded with the invocation (the report's GB-seconds)."""
    started = time.monotonic()
    if deadline.near():
        # At the start the whole Lambda timeout remains: inside the margin, no invocation could ever work.
        raise SettingsError(
            f"the worker starts with {deadline.remaining():.0f} s left, inside its {deadline.margin:.0f} s deadline "
            "margin: raise the worker Lambda's timeout or lower SFNCOPY_DEADLINE_MARGIN_SECONDS")
    loc = task.manifest
    plan = manifest.read_plan(s3, loc)
    # Every request to a source or target carries the config's expected owner and payer; every copy its ACL.
    s3 = s3.for_buckets(plan.config.bucket_access())
    # The payload file is where its WorkItem says (a shard's segment carries the shard's numbers, not the run's):
    # the checkpoint is kept under the run-wide id the item gives.
    payload = manifest.read_payload_file(s3, loc, payload_item(task))
    previous = manifest.read_checkpoint(s3, loc, task.payload) or PayloadCheckpoint(
        payload_id=task.payload, worker=task.worker)
    book = Checkpointer(s3, loc, previous, (t.task_id for t in payload.tasks))
    book.begin(deadline.remaining(), memory_mb)
    todo = [t for t in payload.tasks if not book.finished(t.task_id)]
    halted: list[BaseException] = []
    stopping = threading.Event()
    threads = settings.worker_threads

    def may_start() -> bool:
        if halted or stopping.is_set():
            return False
        if deadline.near():
            stopping.set()
            return False
        return True

    with ThreadPoolExecutor(threads, thread_name_prefix="sfncopy-object") as objects, \
            ThreadPoolExecutor(threads, thread_name_prefix="sfncopy-part") as parts:
        ctx = CopyContext(
            s3=s3, options=plan.config.options, part_size=settings.part_size, part_pool=parts,
            part_window=threads, should_stop=lambda: stopping.is_set() or deadline.near(), uploads=book,
            resumed=previous.invocations > 0)
        for item, future in run_windowed(todo, lambda t: copy_task(t, ctx), objects, threads, may_start):
            _collect(item, future, book, halted, stopping)
    answer = _answer(task, book.results(), len(payload.tasks))
    book.end("failed" if halted else "done" if answer.done else "continued")
    log.info("payload invocation finished", extra={
        "invocation": previous.invocations + 1, "done": answer.done, "cursor": answer.cursor,
        "tasks": len(payload.tasks), "copied": answer.copied, "failed": answer.failed, "bytes": answer.bytes,
        "seconds": round(time.monotonic() - started, 3), "remaining_seconds": round(deadline.remaining(), 1),
        "halted": type(halted[0]).__name__ if halted else ""})
    if halted:
        raise worst_error(halted)
    return answer


def payload_item(task: PayloadTask) -> WorkItem:
    """Where the task's payload file is: the key its worker-list item gave, else (an item of a list written
    before keys were) the single planner's plan/payloads/ key."""
    return WorkItem(task.payload, task.worker, task.payload_key or manifest.payload_key(task.manifest, task.payload))


def _collect(item: CopyTask, future: Future[ObjectResult | None], book: Checkpointer,
             halted: list[BaseException], stopping: threading.Event) -> None:
    failure = future.exception()
    if failure is not None:
        # TransientError (or a bug): take no more work; in-flight tasks finish; raised after the write.
        log.warning("task stopped", extra={"task_id": item.task_id, "key": item.source_key,
                                           "error": f"{type(failure).__name__}: {failure}"})
        halted.append(failure)
        stopping.set()
        return
    result = future.result()
    if result is None:
        log.info("task paused", extra={"task_id": item.task_id, "key": item.source_key, "method": item.method})
        return
    book.record(result)
    log.info("task finished", extra={
        "task_id": result.task_id, "key": result.source_key, "target_key": result.target_key,
        "bytes": result.bytes, "method": result.method, "parts": result.parts, "seconds": result.seconds,
        "status": result.status, "retries": result.retries, "error": result.error})


def _answer(task: PayloadTask, results: list[ObjectResult], tasks: int) -> PayloadTask:
    copied = [r for r in results if r.status == "copied"]
    return PayloadTask(
        run_id=task.run_id, manifest=task.manifest, worker=task.worker, payload=task.payload,
        payload_key=task.payload_key, cursor=len(results), invocation=task.invocation + 1, done=len(results) >= tasks,
        copied=len(copied), failed=sum(r.status == "failed" for r in results),
        skipped=sum(r.status == "skipped" for r in results), bytes=sum(r.bytes for r in copied))


def failure_text(error: Mapping[str, Any]) -> str:
    """``"<ErrorName>: <readable cause>"`` of a Step Functions error object ``{"Error", "Cause"}`` (a Lambda
    error's Cause is JSON: its errorMessage), cut to MAX_FAILURE_CHARS."""
    name = str(error.get("Error") or "UnknownError")
    text = f"{name}: {readable_cause(error.get('Cause'), name)}"
    return text if len(text) <= MAX_FAILURE_CHARS else text[:MAX_FAILURE_CHARS - 3] + "..."


def record_failure(task: PayloadTask, error: Mapping[str, Any], s3: S3Gateway,
                   wall: Callable[[], float] = time.time) -> str:
    """Write why the payload's child execution fails (``error``: the Step Functions error its Catch caught) into
    the payload's checkpoint head, keeping what it counts; answer the text recorded. A payload with no
    checkpoint yet gets a head with no results; a single-file checkpoint of an older version is rewritten
    as a chunk and a head (manifest.write_checkpoint) so its results still count.

    The failure's time (``failed_at``) is this call's clock: RecordFailure invokes the worker as soon as the
    Catch fires, so it is the failure's time to within an invocation's start-up (the state's EnteredTime from
    the context object would be exact, but a Parameters block on RecordFailure<i> is repeated per worker in
    a definition limited to 1 MB). An invocation still "running" in the head was cut off: it is closed as
    "lost" (lambdas/timeline.py)."""
    loc = task.manifest
    failure = failure_text(error)
    now = int(wall() * 1000)
    head = manifest.read_head(s3, loc, task.payload)
    if head is None:
        manifest.write_head(s3, loc, ResultsHead(payload_id=task.payload, worker=task.worker, failure=failure,
                                                 failed_at=now))
    elif head.inline:
        manifest.write_checkpoint(s3, loc, PayloadCheckpoint(
            payload_id=head.payload_id, worker=head.worker, results=head.inline, open_uploads=head.open_uploads,
            invocations=head.invocations, failure=failure, timeline=timeline.close_cut_off(head.timeline, now),
            failed_at=now))
    else:
        manifest.write_head(s3, loc, replace(head, failure=failure, failed_at=now,
                                             timeline=timeline.close_cut_off(head.timeline, now)))
    log.warning("payload failed", extra={"payload": task.payload, "worker": task.worker, "error": failure})
    return failure
