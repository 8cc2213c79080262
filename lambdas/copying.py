"""Copy one task of a payload: a whole object (CopyObject), a whole object in parts (the worker's own
multipart upload), or a chunk of parts of an upload the planner created (the finalizer completes it).

Every copy request pins the planned source with CopySourceIfMatch, so a source that changes mid-copy
fails as SourceChanged instead of mixing two versions. ``copy_task`` returns the task's result, or None
when it stopped early (deadline near, or the worker is stopping): an unfinished multipart upload stays
open and is resumed by the next invocation, its finished parts found with ListParts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Protocol, TypeVar

from lambdas import errors, limits, logs
from lambdas.gateway import ObjectHead, PartInfo, S3Gateway, Written, tagging_header
from lambdas.integrity import (
    copy_checked,
    copy_checksum_algorithm,
    multipart_spec,
    whole_checksum,
    write_conditions,
)
from lambdas.models import CopyMethod, CopyOptions, CopyTask, ObjectResult, ResultStatus
from lambdas.parts import PartRange, choose_part_size, part_range, plan_parts
from lambdas.planning import EXISTS, TARGET_CHANGED, prove_by_checksums

log = logs.get_logger("copying")

T = TypeVar("T")
R = TypeVar("R")

class UploadBook(Protocol):
    """Where the worker keeps its open whole-object multipart uploads (the payload's checkpoint)."""

    def open_upload(self, task_id: str) -> str:
        """The upload a previous invocation left open for this task, or ""."""

    def opened(self, task_id: str, upload_id: str) -> None:
        """A new upload exists: record it at once, so a crash can resume it or cleanup can abort it."""

    def part_done(self) -> None:
        """A part was copied: a chance to write a checkpoint that is due."""


@dataclass(frozen=True)
class CopyContext:
    s3: S3Gateway
    options: CopyOptions
    part_size: int  # preferred part size when the source's own layout is unknown
    part_pool: Executor  # parts only: a task never waits on the pool it runs on
    part_window: int  # parts of one task in flight at most
    should_stop: Callable[[], bool]  # asked before each part: deadline near, or the worker stopping
    uploads: UploadBook
    resumed: bool  # a previous invocation worked on this payload: chunk tasks list their parts first


class _Tally:
    """Requests sent and SDK retries made for one task (its parts run on several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def add(self, retries: int = 0) -> None:
        with self._lock:
            self.requests += 1 + retries
            self.retries += retries


@dataclass(frozen=True)
class _Copied:
    parts: int
    target_etag: str
    checksum: str = ""  # the target's whole-object checksum the write answered ("ALGORITHM:TYPE:VALUE")
    checksum_check: str = ""  # what S3 checked it against (lambdas/integrity.py)

    @classmethod
    def of(cls, parts: int, written: Written, checked: str) -> _Copied:
        checksum = written.checksum.text() if written.checksum is not None else ""
        return cls(parts, written.etag, checksum, checked if checksum else "")


# --- pure helpers ------------------------------------------------------------------------------------
def run_windowed(items: Iterable[T], fn: Callable[[T], R], pool: Executor, window: int,
                 may_start: Callable[[], bool]) -> Iterator[tuple[T, Future[R]]]:
    """Run ``fn`` on each item in ``pool``, at most ``window`` at a time, asking ``may_start()`` before
    each submission; yield ``(item, future)`` as each finishes. Once ``may_start()`` says no, nothing
    more is submitted, but everything in flight is still waited for and yielded."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    pending = iter(items)
    in_flight: dict[Future[R], T] = {}
    exhausted = False
    while True:
        while not exhausted and len(in_flight) < window and may_start():
            try:
                item = next(pending)
            except StopIteration:
                exhausted = True
                break
            in_flight[pool.submit(fn, item)] = item
        if not in_flight:
            return
        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in finished:
            yield in_flight.pop(future), future


def reusable_parts(existing: Iterable[PartInfo], planned: Iterable[PartRange]) -> list[PartInfo]:
    """Parts already in the upload that match the plan (same number and size): they need no copy."""
    sizes = {p.number: p.nbytes for p in planned}
    return [p for p in existing if sizes.get(p.number) == p.size]


def multipart_parts_in_etag(etag: str) -> int:
    """The part count a multipart ETag ("<md5>-<parts>") ends with; 0 for a single-part ETag."""
    _, dash, count = etag.strip('"').rpartition("-")
    return int(count) if dash and count.isdigit() else 0


def worst_error(failures: list[BaseException]) -> BaseException:
    """The error to raise when several parts failed: a bug beats a per-object error, which beats a
    transient one (a permanently failed object must be aborted, not retried)."""
    def rank(err: BaseException) -> int:
        if isinstance(err, errors.TransientError):
            return 2
        return 1 if isinstance(err, errors.ObjectError) else 0
    return min(failures, key=rank)


# --- one task ----------------------------------------------------------------------------------------
def copy_task(task: CopyTask, ctx: CopyContext) -> ObjectResult | None:
    """Copy one task. Returns its result ("copied" or "failed"), or None when it stopped early.

    Per-object errors become a "failed" result; TransientError (and any bug) is raised after the
    task's in-flight parts have finished."""
    started = time.monotonic()
    tally = _Tally()
    try:
        if task.compare_checksum and task.method != "chunk":
            reason = prove_by_checksums(task, lambda bucket, key, if_match: _call(
                tally, lambda: ctx.s3.head_object(bucket, key, if_match=if_match, checksums=True)))
            if reason:
                return _result(task, tally, started, status="skipped", parts=0, error=reason, method="none")
        if task.method == "copy":
            outcome: _Copied | None = _copy_whole(task, ctx, tally)
        elif task.method == "multipart":
            outcome = _copy_multipart_checked(task, ctx, tally)
        elif task.method == "chunk":
            outcome = _copy_chunk(task, ctx, tally)
        else:
            raise ValueError(f"task {task.task_id}: method {task.method!r} is not copy, multipart or chunk")
    except errors.TargetExistsError:
        # overwrite "never": the key was written after planning; it stays (nothing of ours was written). It may be
        # our own copy, written by an earlier attempt that did not live to record it (a retried invocation, a
        # CopyObject that failed after its 200): equal checksums say so, and the row says "identical" then.
        return _result(task, tally, started, status="skipped", parts=0, error=_exists_reason(task, ctx, tally))
    except errors.TargetChangedError as err:
        # overwrite "if-different": the target is no longer the one planned against. Skipped, not failed: the
        # object there now was written after planning by someone else, so it is newer than anything this run
        # decided on; overwriting it would lose their write, and failing would fail the run (max_failed_objects)
        # for a race sfncopy handled safely. The row says so, and a re-run decides afresh.
        return _result(task, tally, started, status="skipped", parts=0, error=f"{TARGET_CHANGED}: {err}")
    except errors.ObjectError as err:
        return _result(task, tally, started, status="failed", parts=_planned_parts(task),
                       error=f"{err.code}: {err}")
    if outcome is None:
        return None
    return _result(task, tally, started, status="copied", parts=outcome.parts, target_etag=outcome.target_etag,
                   checksum=outcome.checksum, checksum_check=outcome.checksum_check)


def _result(task: CopyTask, tally: _Tally, started: float, *, status: ResultStatus, parts: int, error: str = "",
            target_etag: str = "", method: CopyMethod | None = None, checksum: str = "",
            checksum_check: str = "") -> ObjectResult:
    return ObjectResult(
        task_id=task.task_id, copy_id=task.copy_id,
        source_bucket=task.source_bucket, source_key=task.source_key,
        target_bucket=task.target_bucket, target_key=task.target_key,
        bytes=task.nbytes, status=status, method=method or task.method,
        parts=parts, attempts=tally.requests, retries=tally.retries,
        seconds=round(time.monotonic() - started, 3), error=error, target_etag=target_etag,
        checksum=checksum, checksum_check=checksum_check,
    )


def _exists_reason(task: CopyTask, ctx: CopyContext, tally: _Tally) -> str:
    """"exists", or the "identical: ..." reason when the object at the key has the source's checksum."""
    if not task.source_checksum or task.method == "chunk":
        return EXISTS
    try:
        proof = prove_by_checksums(task._replace(compare_checksum=task.source_checksum), lambda bucket, key, if_match:
                                   _call(tally, lambda: ctx.s3.head_object(bucket, key, if_match=if_match,
                                                                           checksums=True)))
    except errors.ObjectError:
        return EXISTS
    return proof or EXISTS


def _planned_parts(task: CopyTask) -> int:
    if task.method == "chunk":
        return task.last_part - task.first_part + 1
    return 1 if task.method == "copy" else 0


def _copy_whole(task: CopyTask, ctx: CopyContext, tally: _Tally) -> _Copied:
    """One CopyObject: the target keeps the source's checksum, or gets CRC64NVME (lambdas/integrity.py)."""
    opts = ctx.options
    if_none_match, if_match = write_conditions(opts.overwrite, task.target_etag)
    written = _call_with_retries(tally, lambda: ctx.s3.copy_object(
        task.source_bucket, task.source_key, task.etag, task.target_bucket, task.target_key,
        storage_class=opts.storage_class, sse=opts.sse,
        preserve_metadata=opts.preserve_metadata, preserve_tags=opts.preserve_tags,
        checksum_algorithm=copy_checksum_algorithm(task.source_checksum),
        if_none_match=if_none_match, if_match=if_match))
    return _Copied.of(1, written, copy_checked(task.source_checksum))


def _copy_multipart_checked(task: CopyTask, ctx: CopyContext, tally: _Tally) -> _Copied | None:
    """A multipart copy S3 refused as corrupted (BadDigest: its upload is aborted, nothing was written) is copied
    once more from scratch: a corruption on the way is most likely transient. A second refusal fails the object
    with ChecksumMismatch (it is not raised as a TransientError: the state machine would retry the whole payload
    without end on a source that reads back wrong every time)."""
    try:
        return _copy_multipart(task, ctx, tally)
    except errors.ChecksumMismatchError as err:
        log.warning("checksum mismatch, copying the object once more",
                    extra={"task_id": task.task_id, "key": task.source_key, "error": str(err)})
        return _copy_multipart(task, ctx, tally)


def _copy_multipart(task: CopyTask, ctx: CopyContext, tally: _Tally) -> _Copied | None:
    """Create (or resume), copy the parts, complete with the whole-object checksum S3 validates. A permanent
    failure aborts the upload."""
    upload_id = ctx.uploads.open_upload(task.task_id)
    try:
        head, layout = _read_source(task, ctx, tally)
        tags = _call(tally, lambda: ctx.s3.get_tags(task.source_bucket, task.source_key)) \
            if ctx.options.preserve_tags else {}
        part_size = choose_part_size(task.size, ctx.part_size, *layout)
        planned = plan_parts(task.size, part_size)
        spec = multipart_spec(head.checksum, part_size, len(planned), *layout)
        done: list[PartInfo] = []
        if upload_id:
            try:
                existing = _call(tally, lambda: ctx.s3.list_parts(task.target_bucket, task.target_key, upload_id))
                done = reusable_parts(existing, planned)
            except errors.NoSuchUploadError:
                upload_id = ""  # gone (aborted, or expired by a lifecycle rule): start again
        if not upload_id:
            upload_id = _call(tally, lambda: ctx.s3.create_multipart_upload(
                task.target_bucket, task.target_key, head if ctx.options.preserve_metadata else None, tags,
                storage_class=ctx.options.storage_class, sse=ctx.options.sse, checksum=(spec.algorithm, spec.type)))
            try:
                ctx.uploads.opened(task.task_id, upload_id)
            except Exception:
                # Not recorded, so nothing could resume or clean it up later: abort it now, then fail.
                ctx.s3.abort_multipart_upload(task.target_bucket, task.target_key, upload_id)
                raise
        parts = _copy_parts(task, ctx, tally, upload_id, planned, done)
        if parts is None:
            return None  # stopped early: the upload stays open (it is in the checkpoint)
        checksum = whole_checksum(spec, [(p.checksum, p.size) for p in parts])
        if_none_match, if_match = write_conditions(ctx.options.overwrite, task.target_etag)
        written = _call(tally, lambda: ctx.s3.complete_multipart_upload(
            task.target_bucket, task.target_key, upload_id, parts, checksum=checksum,
            if_none_match=if_none_match, if_match=if_match))
        if tags and len(tagging_header(tags).encode()) > limits.MAX_TAGGING_HEADER_BYTES:
            # Too big for the x-amz-tagging header of CreateMultipartUpload: set them now.
            _call(tally, lambda: ctx.s3.put_tags(task.target_bucket, task.target_key, tags))
        return _Copied.of(len(planned), written, spec.checked if checksum is not None else "")
    except errors.ObjectError:
        if upload_id:
            # A failed copy never leaves an orphaned upload behind.
            _call(tally, lambda: ctx.s3.abort_multipart_upload(task.target_bucket, task.target_key, upload_id))
        raise


def _read_source(task: CopyTask, ctx: CopyContext, tally: _Tally) -> tuple[ObjectHead, tuple[int, int]]:
    """The source's headers and checksum (pinned to the planned ETag) and its part layout (parts, first part size).

    The layout needs a HEAD with PartNumber=1, asked only when the ETag says the source has parts. It is
    a second HEAD because the emulator (moto) answers a part HEAD with the part's own ETag and without
    the object's headers; on S3 the two agree, so this costs one request per multipart source."""
    head = _call(tally, lambda: ctx.s3.head_object(task.source_bucket, task.source_key, if_match=task.etag,
                                                   checksums=True))
    if multipart_parts_in_etag(task.etag) < 2:
        return head, (0, 0)
    part = _call(tally, lambda: ctx.s3.head_object(task.source_bucket, task.source_key, part_number=1))
    return head, (part.parts_count, part.first_part_size)


def _copy_chunk(task: CopyTask, ctx: CopyContext, tally: _Tally) -> _Copied | None:
    """Copy parts first_part..last_part of the planner's upload. Never completes or aborts it: other
    workers own the other chunks, and the finalizer completes (or cleanup aborts) the upload."""
    planned = [part_range(n, task.part_size, task.size) for n in range(task.first_part, task.last_part + 1)]
    done: list[PartInfo] = []
    if ctx.resumed:
        existing = _call(tally, lambda: ctx.s3.list_parts(task.target_bucket, task.target_key, task.upload_id))
        done = reusable_parts(existing, planned)
    parts = _copy_parts(task, ctx, tally, task.upload_id, planned, done)
    return None if parts is None else _Copied(parts=len(planned), target_etag="")


def _copy_parts(task: CopyTask, ctx: CopyContext, tally: _Tally, upload_id: str, planned: list[PartRange],
                done: list[PartInfo]) -> list[PartInfo] | None:
    """Copy the planned parts that are not done yet, concurrently on the part pool. Returns every part
    (done + copied) sorted by number, or None when stopped before all were copied. When a part fails,
    no new part starts, the ones in flight finish, and the worst error is raised."""
    have = {p.number for p in done}
    todo = [p for p in planned if p.number not in have]
    failures: list[BaseException] = []

    def copy_part(part: PartRange) -> PartInfo | None:
        if failures or ctx.should_stop():
            return None  # queued (behind other tasks' parts) when the stop or a failure came: do not start
        return _call_with_retries(tally, lambda: ctx.s3.upload_part_copy(
            task.target_bucket, task.target_key, upload_id, part.number,
            task.source_bucket, task.source_key, task.etag, part.first, part.last))

    copied: list[PartInfo] = []
    for _, future in run_windowed(todo, copy_part, ctx.part_pool, ctx.part_window,
                                  lambda: not failures and not ctx.should_stop()):
        failure = future.exception()
        if failure is not None:
            failures.append(failure)
            continue
        part = future.result()
        if part is not None:
            copied.append(part)
            ctx.uploads.part_done()
    if failures:
        raise worst_error(failures)
    if len(copied) < len(todo):
        return None
    return sorted([*done, *copied], key=lambda p: p.number)


def _call(tally: _Tally, request: Callable[[], R]) -> R:
    """Send one request, counting it (also when it fails)."""
    try:
        return request()
    finally:
        tally.add()


def _call_with_retries(tally: _Tally, request: Callable[[], tuple[R, int]]) -> R:
    """Send one copy request that reports its SDK retries, counting both."""
    try:
        value, retries = request()
    except errors.SfnCopyError:
        tally.add()
        raise
    tally.add(retries)
    return value
