"""Finish a run after every worker is done, in bounded memory whatever the run's size.

The run is reported in phases, each streamed in bounded pieces:

1. payloads, one at a time (a few read ahead): join each payload's results with its tasks into report rows
   (chunk results go to their split copy's join; a task without a result failed, with the error
   its payload's child execution failed with when the checkpoint head records one, else "NotRun"),
   abort the whole-object uploads a worker left open, verify the payload's copied targets
   (lambdas/verification.py: a listing of just their key range, or a HEAD each), count the rows and
   write them to the report (lambdas/report_files.py);
2. split copies, a batch at a time: complete each one whose chunks all succeeded, after checking with
   ListParts that every part is there with the planned size; abort it otherwise (no upload of the run is
   left open); verify the completed targets; report them;
3. plan/skipped.json, streamed (lambdas/json_stream.py): a row per skipped object, unmatched ones counted;
4. the report's last part, report.csv (up to report.SINGLE_CSV_MAX_ROWS rows), report/manifest.json and
   report.json with the totals; then fail the execution when more objects failed than
   ``options.max_failed_objects`` allows.

Memory holds one payload's rows, the part of the report being filled and per-split state, never every row
or a whole target listing. Near its deadline the finalizer saves its state (lambdas/finalizer_state.py)
and answers with a cursor instead of the summary; called again with it, it goes on where it stopped. A
finalization that fits one invocation is one invocation, as before.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from lambdas import logs, manifest
from lambdas.deadline import Deadline
from lambdas.errors import NoSuchKeyError, NoSuchUploadError, ObjectError, TooManyFailedObjectsError
from lambdas.finalizer_state import FinalizeCursor, FinalizeState, Phase
from lambdas.finalizer_state import load as load_state
from lambdas.finalizer_state import save as save_state
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.json_stream import iter_array
from lambdas.models import (
    ManifestLocation,
    Payload,
    PayloadCheckpoint,
    PlanPointer,
    RunPlan,
    RunSummary,
    SkippedObject,
    SplitCopy,
    TargetConfig,
)
from lambdas.report import (
    MAX_UNMATCHED_LISTED,
    ChunkJoin,
    ReportRow,
    build_summary,
    failed_row,
    is_unmatched,
    not_run_result,
    planned_row,
    planned_split_row,
    result_row,
    run_summary,
    s3_uri,
    skipped_row,
    too_many_failed_message,
)
from lambdas.report_files import DEFAULT_LAYOUT, ReportFiles, ReportLayout
from lambdas.reporting import page as report_page
from lambdas.settings import Settings
from lambdas.verification import Expected, verify

log = logs.get_logger("finalizer")

# Payloads read ahead of the one being reported (each read is a GET or two of ~20 ms): memory holds this
# many payloads' tasks and results besides the one being reported.
READ_AHEAD = 4
# Split copies settled between two deadline checks (each a ListParts and a CompleteMultipartUpload).
SPLIT_BATCH = 64
# Skipped objects reported between two deadline checks (and so the rows held at once in that phase).
SKIPPED_BATCH = 10_000


def finalize(pointer: PlanPointer, settings: Settings, s3: S3Gateway,
             layout: ReportLayout = DEFAULT_LAYOUT) -> RunSummary:
    """The whole finalization in this call, however long it takes (a caller that cannot call again, tests)."""
    cursor: FinalizeCursor | None = None
    while True:
        outcome = finalize_step(pointer, settings, s3, Deadline.never(), cursor, layout)
        if isinstance(outcome, RunSummary):
            return outcome
        cursor = outcome


def finalize_step(pointer: PlanPointer, settings: Settings, s3: S3Gateway, deadline: Deadline,
                  cursor: FinalizeCursor | None = None,
                  layout: ReportLayout = DEFAULT_LAYOUT) -> RunSummary | FinalizeCursor:
    """One invocation's share: from ``cursor`` (None or step 0: the beginning) until done (the RunSummary)
    or until ``deadline`` is near (a cursor to call again with). Raises TooManyFailedObjectsError past
    max_failed_objects, after writing the report."""
    loc = pointer.manifest
    plan = manifest.read_plan(s3, loc)
    s3 = s3.for_buckets(plan.config.bucket_access())  # each target's expected owner, on every request to it
    step = cursor.step if cursor is not None else 0
    if step == 0:  # the first invocation (the state machine's first cursor is step 0: nothing saved yet)
        state, pending = FinalizeState(started=_now()), b""
        state.joins = {split.copy_id: ChunkJoin(split) for split in plan.splits}
        # report.csv is written when the plan's rows (copies and skipped objects) fit one spreadsheet.
        single_csv = plan.totals.copies + plan.totals.skipped <= layout.single_csv_max_rows
    else:
        state, pending = load_state(s3, loc, step, plan.splits)
        single_csv = False  # the saved report files say
    files = ReportFiles(s3, loc, layout, single_csv, state.files, pending)
    run = _Finalization(pointer, plan, settings, s3, deadline, state, files)
    try:
        if not run.go_on():
            state.invocations += 1
            state.files = files.state()
            save_state(s3, loc, step + 1, state, files.pending_bytes())
            log.info("finalizer continues in another invocation",
                     extra={"step": step + 1, "phase": state.phase, "position": state.position,
                            "rows": files.rows})
            return FinalizeCursor(step=step + 1, phase=state.phase, position=state.position)
        return run.finish()
    except BaseException as error:
        files.abort(error)
        raise


def payload_ids(pointer: PlanPointer) -> list[int]:
    """Every payload of the run, in order (the report lists rows payload by payload)."""
    return sorted({pid for worker in pointer.workers for pid in worker})


@dataclass
class _Finalization:
    """One invocation's work on a finalization: the phases, from where ``state`` says."""

    pointer: PlanPointer
    plan: RunPlan
    settings: Settings
    s3: S3Gateway
    deadline: Deadline
    state: FinalizeState
    files: ReportFiles

    @property
    def roots(self) -> dict[str, list[str]]:
        """Each target bucket's listing roots: verification lists under one of them at a time."""
        roots: dict[str, list[str]] = {}
        for bucket, prefix in listing_roots(self.plan.config.targets):
            roots.setdefault(bucket, []).append(prefix)
        return roots

    @property
    def dry_run(self) -> bool:
        return self.plan.config.options.dry_run or self.pointer.dry_run

    @property
    def loc(self) -> ManifestLocation:
        return self.pointer.manifest

    def go_on(self) -> bool:
        """Work through the phases; False when the deadline stopped it first (``state`` says where)."""
        phases: dict[Phase, Callable[[ThreadPoolExecutor], bool]] = {
            "payloads": self._payloads, "splits": self._splits, "skipped": self._skipped}
        with ThreadPoolExecutor(max_workers=max(1, self.settings.worker_threads)) as pool:
            while self.state.phase != "done":
                phase = self.state.phase
                began = time.monotonic()
                finished = phases[phase](pool)
                self.state.seconds[phase] = round(self.state.seconds.get(phase, 0.0) + time.monotonic() - began, 3)
                if not finished:
                    return False
                self.state.phase, self.state.position = _next_phase(phase), 0
                if self.state.phase != "done" and self.deadline.near():
                    return False
        return True

    # --- phase 1: payloads ---------------------------------------------------------------------------
    def _payloads(self, pool: ThreadPoolExecutor) -> bool:
        ids = payload_ids(self.pointer)
        with _PayloadReader(self.s3, self.loc, ids[self.state.position:], not self.dry_run) as reads:
            for payload, checkpoint in reads:
                if self.dry_run:
                    self._report(planned_row(task) for task in payload.tasks if task.method != "chunk")
                else:
                    self._report(self._payload_rows(payload, checkpoint, pool))
                self.state.position += 1
                if self.state.position < len(ids) and self.deadline.near():
                    return False
        return True

    def _payload_rows(self, payload: Payload, checkpoint: PayloadCheckpoint | None,
                      pool: ThreadPoolExecutor) -> list[ReportRow]:
        """The payload's rows (whole copies), verified; its chunk results go to their splits' joins."""
        results = {r.task_id: r for r in checkpoint.results} if checkpoint is not None else {}
        why = (f"payload {payload.payload_id} never ran (no checkpoint)" if checkpoint is None
               else f"payload {payload.payload_id} did not finish this task")
        # A payload whose child execution failed for good says why in its head: its unfinished tasks carry it.
        failure = checkpoint.failure if checkpoint is not None else ""
        rows: list[ReportRow] = []
        targets: list[Expected] = []
        for task in payload.tasks:
            result = results.get(task.task_id) or (
                replace(not_run_result(task, why), error=failure) if failure else not_run_result(task, why))
            join = self.state.joins.get(task.copy_id) if task.method == "chunk" else None
            if join is not None:
                join.add(result)
                continue
            rows.append(result_row(result))
            targets.append(Expected(task.target_bucket, task.target_key, task.size))
        if checkpoint is not None:
            _abort_open_uploads(self.s3, payload, checkpoint)
        return self._verified(rows, targets, pool)

    # --- phase 2: split copies -----------------------------------------------------------------------
    def _splits(self, pool: ThreadPoolExecutor) -> bool:
        splits = self.plan.splits
        while self.state.position < len(splits):
            batch = splits[self.state.position:self.state.position + SPLIT_BATCH]
            if self.dry_run:
                for split in batch:
                    _abort_dry_run_upload(self.s3, split)
                self._report(planned_split_row(split) for split in batch)
            else:
                # Each completion is a ListParts + CompleteMultipartUpload that S3 may take a while to assemble.
                rows = list(pool.map(lambda split: settle_split(self.s3, self.state.joins[split.copy_id]), batch))
                targets = [Expected(split.target_bucket, split.target_key, split.size) for split in batch]
                self._report(self._verified(rows, targets, pool))
            self.state.position += len(batch)
            if self.state.position < len(splits) and self.deadline.near():
                return False
        return True

    # --- phase 3: plan/skipped.json ------------------------------------------------------------------
    def _skipped(self, pool: ThreadPoolExecutor) -> bool:
        start = self.state.position
        chunks = self.s3.read_chunks(self.loc.bucket, manifest.key(self.loc, manifest.SKIPPED), start)
        rows: list[ReportRow] = []
        for seen, (data, end) in enumerate(iter_array(chunks, start), start=1):
            skipped = SkippedObject.from_dict(data)
            if is_unmatched(skipped):
                self.state.unmatched_count += 1
                if len(self.state.unmatched) < MAX_UNMATCHED_LISTED:
                    self.state.unmatched.append(s3_uri(skipped.source_bucket, skipped.source_key))
            else:
                rows.append(skipped_row(skipped))
            if seen % SKIPPED_BATCH == 0:
                self._report(rows)
                rows = []
                self.state.position = end
                if self.deadline.near():
                    return False
        self._report(rows)
        return True

    # --- every phase ---------------------------------------------------------------------------------
    def _verified(self, rows: list[ReportRow], targets: Sequence[Expected],
                  pool: ThreadPoolExecutor) -> list[ReportRow]:
        """``rows`` with each copied row whose target is missing or not the planned size failed."""
        copied = [i for i, row in enumerate(rows) if row.status == "copied"]
        if not copied:
            return rows
        problems = verify(self.s3, [targets[i] for i in copied], pool.map, self.state.verification, self.roots)
        for index, problem in zip(copied, problems, strict=True):
            if problem:
                rows[index] = failed_row(rows[index], problem)
        return rows

    def _report(self, rows: Iterable[ReportRow]) -> None:
        tally, files = self.state.tally, self.files
        for row in rows:
            tally.add(row)
            files.add(row)

    def finish(self) -> RunSummary:
        """Write the report's last files and report.json; the run's summary (or TooManyFailedObjectsError)."""
        plan, state, loc = self.plan, self.state, self.loc
        finished = _now()
        entries = self.files.finish(created=finished)
        report_json, report_csv = loc.uri(manifest.REPORT_JSON), self.files.csv_uri
        counts = state.tally
        extra = {
            "parts": {"manifest": self.files.manifest_uri, "count": len(entries), "rows": self.files.rows},
            "timings": {"finalizer_started": state.started, "invocations": state.invocations + 1,
                        "phase_seconds": state.seconds},
            "verification": state.verification.as_dict(),
        }
        summary = build_summary(plan, counts, finished=finished, report_json=report_json, report_csv=report_csv,
                                unmatched=state.unmatched,
                                unmatched_not_listed=state.unmatched_count - len(state.unmatched), extra=extra)
        # The HTML report (lambdas/reporting/): its lanes come from the payloads' heads, read again, streamed.
        summary["report_html"] = report_page.write(self.s3, loc, plan, summary, self.deadline)
        self.s3.put_json(loc.bucket, manifest.key(loc, manifest.REPORT_JSON), summary)
        head = run_summary(plan, counts, report_json, report_csv)
        log.info("run finalized", extra={"status": head.status, "copied": head.copied, "failed": head.failed,
                                         "skipped": head.skipped, "bytes": head.bytes, "report": report_json,
                                         "parts": len(entries), **state.verification.as_dict()})
        max_failed = plan.config.options.max_failed_objects
        if not self.dry_run and counts.failed > max_failed:
            raise TooManyFailedObjectsError(too_many_failed_message(counts.failed, max_failed, report_json))
        return head


def _next_phase(phase: Phase) -> Phase:
    order: tuple[Phase, ...] = ("payloads", "splits", "skipped", "done")
    return order[order.index(phase) + 1]


class _PayloadReader:
    """Each payload with its checkpoint (None without one, or when not asked), in order, with up to
    READ_AHEAD reads in flight. A context manager: leaving it stops reading (the reads in flight finish)."""

    def __init__(self, s3: S3Gateway, loc: ManifestLocation, ids: Sequence[int], with_checkpoints: bool) -> None:
        self._ids = iter(ids)
        self._s3, self._loc, self._with_checkpoints = s3, loc, with_checkpoints
        self._pool = ThreadPoolExecutor(max_workers=READ_AHEAD)
        self._ahead: deque[Future[tuple[Payload, PayloadCheckpoint | None]]] = deque()

    def __enter__(self) -> _PayloadReader:
        for _ in range(READ_AHEAD):
            self._submit()
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._ahead:
            future.cancel()
        self._ahead.clear()
        self._pool.shutdown(wait=True)

    def __iter__(self) -> Iterator[tuple[Payload, PayloadCheckpoint | None]]:
        while self._ahead:
            read = self._ahead.popleft().result()
            self._submit()
            yield read

    def _read(self, payload_id: int) -> tuple[Payload, PayloadCheckpoint | None]:
        payload = manifest.read_payload(self._s3, self._loc, payload_id)
        # A checkpoint's result chunks share the reads in flight with the payloads read ahead (READ_THREADS in all,
        # what the client's connection pool is sized for).
        checkpoint = (manifest.read_checkpoint(self._s3, self._loc, payload_id,
                                               threads=max(1, manifest.READ_THREADS // READ_AHEAD))
                      if self._with_checkpoints else None)
        return payload, checkpoint

    def _submit(self) -> None:
        payload_id = next(self._ids, None)
        if payload_id is not None:
            self._ahead.append(self._pool.submit(self._read, payload_id))


# --- the uploads workers left open --------------------------------------------------------------------
def _abort_open_uploads(s3: S3Gateway, payload: Payload, checkpoint: PayloadCheckpoint) -> None:
    """A worker aborts the whole-object uploads it cannot finish; one still listed here is a leak."""
    if not checkpoint.open_uploads:
        return
    tasks = {task.task_id: task for task in payload.tasks}
    for task_id, upload_id in checkpoint.open_uploads:
        task = tasks.get(task_id)
        if task is None:
            log.error("open upload of an unknown task", extra={"task_id": task_id, "upload_id": upload_id})
            continue
        log.warning("aborting a whole-object upload a worker left open",
                    extra={"task_id": task_id, "key": task.target_key, "upload_id": upload_id})
        s3.abort_multipart_upload(task.target_bucket, task.target_key, upload_id)


# --- split copies ------------------------------------------------------------------------------------
def settle_split(s3: S3Gateway, join: ChunkJoin) -> ReportRow:
    """Complete the split copy when every chunk succeeded and every part is in place; otherwise abort it."""
    split = join.split
    if not join.all_copied:
        _abort(s3, split, "a chunk did not succeed")
        return join.row()
    try:
        parts = s3.list_parts(split.target_bucket, split.target_key, split.upload_id)
    except NoSuchUploadError:
        # A retried finalizer finds the upload it completed last time; anything else is a failure.
        return join.row(_completed_before(s3, split))
    problems = part_problems(split, parts)
    if problems:
        _abort(s3, split, problems)
        return join.row(f"VerificationError: upload of {_target(split)} {problems}")
    try:
        s3.complete_multipart_upload(split.target_bucket, split.target_key, split.upload_id, parts)
    except ObjectError as err:
        _abort(s3, split, str(err))
        return join.row(f"{err.code}: {err}")
    log.info("split copy completed", extra={"key": split.target_key, "bytes": split.size,
                                            "parts": split.part_count, "method": "multipart-split"})
    return join.row(_apply_tags(s3, split))


def part_problems(split: SplitCopy, parts: Iterable[PartInfo]) -> str:
    """What is wrong with the uploaded parts ("" when parts 1..part_count are there with planned sizes)."""
    sizes = {part.number: part.size for part in parts}
    missing = [n for n in range(1, split.part_count + 1) if n not in sizes]
    wrong = [f"part {n} has {sizes[n]} bytes, expected {expected}"
             for n in range(1, split.part_count + 1)
             if n in sizes and sizes[n] != (expected := expected_part_size(split, n))]
    extra = sorted(n for n in sizes if not 1 <= n <= split.part_count)
    problems = []
    if missing:
        problems.append(f"is missing parts {number_ranges(missing)} of {split.part_count}")
    problems.extend(wrong[:5])
    if extra:
        problems.append(f"has unplanned parts {number_ranges(extra)}")
    return "; ".join(problems)


def expected_part_size(split: SplitCopy, number: int) -> int:
    """Every part is ``part_size`` bytes except the last, which holds the remainder."""
    if number < split.part_count:
        return split.part_size
    return split.size - (split.part_count - 1) * split.part_size


def number_ranges(numbers: Iterable[int]) -> str:
    """[1, 2, 3, 5, 7, 8] -> "1-3, 5, 7-8"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _completed_before(s3: S3Gateway, split: SplitCopy) -> str:
    try:
        head = s3.head_object(split.target_bucket, split.target_key)
    except NoSuchKeyError:
        return f"VerificationError: upload {split.upload_id} of {_target(split)} is gone and the object is missing"
    if head.size != split.size:
        return (f"VerificationError: upload {split.upload_id} of {_target(split)} is gone and the object has "
                f"{head.size} bytes, expected {split.size}")
    return _apply_tags(s3, split)


def _apply_tags(s3: S3Gateway, split: SplitCopy) -> str:
    """Tags too large for the upload's header go on after completion. Returns an error, or ""."""
    if not split.tags:
        return ""
    try:
        s3.put_tags(split.target_bucket, split.target_key, dict(split.tags))
    except ObjectError as err:
        return f"{err.code}: {err}"
    return ""


def _abort(s3: S3Gateway, split: SplitCopy, why: str) -> None:
    log.warning("aborting split copy", extra={"key": split.target_key, "upload_id": split.upload_id,
                                              "error": why})
    s3.abort_multipart_upload(split.target_bucket, split.target_key, split.upload_id)


def _abort_dry_run_upload(s3: S3Gateway, split: SplitCopy) -> None:
    """A dry run plans uploads without starting them; one that was started anyway must not be left open."""
    if split.upload_id:
        _abort(s3, split, "dry run")


def _target(split: SplitCopy) -> str:
    return s3_uri(split.target_bucket, split.target_key)


# --- listing roots (cleanup lists each target's uploads once) ------------------------------------
def listing_roots(targets: Iterable[TargetConfig]) -> list[tuple[str, str]]:
    """The (bucket, prefix) pairs to list so every target is covered once: a prefix inside another
    target's prefix in the same bucket is already listed with it."""
    pairs = sorted({(t.bucket, t.prefix) for t in targets}, key=lambda p: (p[0], len(p[1]), p[1]))
    roots: list[tuple[str, str]] = []
    for bucket, prefix in pairs:
        if not any(b == bucket and prefix.startswith(p) for b, p in roots):
            roots.append((bucket, prefix))
    return sorted(roots)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

