"""Finish a run after every worker is done, in bounded memory whatever the run's size.

The state machine finalizes in a fan-out (lambdas/finalize_shards.py): ``plan_finalize`` cuts the run into
finalize shards, a Distributed Map runs ``shard_step`` on each in a child execution of its own (phase 1 on a
range of payloads, or phase 3 on one skipped-objects file), and ``merge_step`` merges their summaries, settles
the split copies (phase 2) and writes the end-of-run files (phase 4, ``_Finalization.finish_merge``: the one
place every end-of-run artefact is written). ``finalize_step`` (scope "run") does all the phases in one chain
of invocations: what an execution started before the fan-out existed still calls (an execution keeps the
definition it started with), and what ``finalize`` runs in one call.

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
3. the plan's files of skipped objects (the index names them: plan/skipped.json, or the shards' own files),
   one after another, each streamed (lambdas/json_stream.py): a row per skipped object, unmatched ones counted;
   an object the plan left to the restore stage (options.restore) gets the row of what that stage did, from
   its book (lambdas/restoring/outcomes.py), verified as a payload's rows are;
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
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lambdas import finalize_shards, logs, manifest
from lambdas.deadline import Deadline
from lambdas.errors import (
    FinalizeShardError,
    NoSuchKeyError,
    NoSuchUploadError,
    ObjectError,
    TargetChangedError,
    TargetExistsError,
    TooManyFailedObjectsError,
)
from lambdas.finalize_shards import ShardSpec, ShardSummary
from lambdas.finalizer_state import FinalizeCursor, FinalizeState, Phase, csv_upload_key
from lambdas.finalizer_state import load as load_state
from lambdas.finalizer_state import save as save_state
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.integrity import WriteSpec, whole_checksum, write_conditions
from lambdas.json_stream import iter_array
from lambdas.models import (
    ManifestLocation,
    Overwrite,
    Payload,
    PayloadCheckpoint,
    PlanPointer,
    RunPlan,
    RunSummary,
    SkippedObject,
    SplitCopy,
    TargetConfig,
    WorkItem,
)
from lambdas.planning import EXISTS, TARGET_CHANGED, TO_RESTORE
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
    verified_row,
)
from lambdas.report_files import (
    DEFAULT_LAYOUT,
    REPORT_CSV,
    ReportFiles,
    ReportLayout,
    join_single_csv,
    write_parts_manifest,
)
from lambdas.reporting import page as report_page
from lambdas.restoring.outcomes import RestoreOutcomes, with_times
from lambdas.settings import Settings
from lambdas.verification import Expected, verify_targets

log = logs.get_logger("finalizer")

# Payloads read ahead of the one being reported (each read is a GET or two of ~20 ms): memory holds this
# many payloads' tasks and results besides the one being reported.
READ_AHEAD = 4
# Split copies settled between two deadline checks (each a ListParts and a CompleteMultipartUpload).
SPLIT_BATCH = 64
# Skipped objects reported between two deadline checks (and so the rows held at once in that phase).
SKIPPED_BATCH = 10_000


ScopeKind = Literal["run", "shard", "merge"]


@dataclass(frozen=True)
class Scope:
    """The share of a finalization one chain of invocations covers: the whole run, one finalize shard, or
    the merge of the shards (the split copies, then the end-of-run files)."""

    kind: ScopeKind = "run"
    shard: ShardSpec | None = None

    @property
    def name(self) -> str:
        """Where the chain keeps its state: "" (the run's finalizer folder) or the shard's number."""
        return self.shard.name if self.shard is not None else ""

    @property
    def files_name(self) -> str:
        """What its report parts are named for (report_files.part_key)."""
        return {"run": "", "merge": "splits"}.get(self.kind, self.name)

    @property
    def phases(self) -> tuple[Phase, ...]:
        if self.kind == "merge":
            return ("splits",)
        if self.shard is not None:
            return (self.shard.kind,)
        return ("payloads", "splits", "skipped")


RUN = Scope()
MERGE = Scope("merge")


def skipped_sources(loc: ManifestLocation, plan: RunPlan) -> tuple[str, ...]:
    """The keys of the run's skipped-objects files (JSON arrays of SkippedObject), in report order: the files
    the plan's index names (plan/skipped.json, or the shards' own files). The one place the finalizer learns
    where skipped objects are listed."""
    return tuple(manifest.skipped_keys(loc, plan))


def finalize(pointer: PlanPointer, settings: Settings, s3: S3Gateway,
             layout: ReportLayout = DEFAULT_LAYOUT) -> RunSummary:
    """The whole finalization in this call, however long it takes (a caller that cannot call again, tests)."""
    cursor: FinalizeCursor | None = None
    while True:
        outcome = finalize_step(pointer, settings, s3, Deadline.never(), cursor, layout)
        if isinstance(outcome, RunSummary):
            return outcome
        cursor = outcome


def finalize_fanned_out(pointer: PlanPointer, settings: Settings, s3: S3Gateway,
                        layout: ReportLayout = DEFAULT_LAYOUT,
                        shard_rows: int = finalize_shards.DEFAULT_SHARD_ROWS) -> RunSummary:
    """The state machine's fan-out in this call, one shard after another: plan, every shard, the merge."""
    for spec in plan_finalize(pointer, s3, shard_rows):
        cursor: FinalizeCursor | None = None
        while isinstance(outcome := shard_step(pointer, spec, settings, s3, Deadline.never(), cursor, layout),
                         FinalizeCursor):
            cursor = outcome
    merge_cursor: FinalizeCursor | None = None
    while isinstance(done := merge_step(pointer, settings, s3, Deadline.never(), merge_cursor, layout),
                     FinalizeCursor):
        merge_cursor = done
    return done


def plan_finalize(pointer: PlanPointer, s3: S3Gateway,
                  shard_rows: int = finalize_shards.DEFAULT_SHARD_ROWS) -> list[ShardSpec]:
    """Cut the run into finalize shards and write them as the FinalizeShards Map's items."""
    loc = pointer.manifest
    plan = manifest.read_plan(s3, loc)
    shards = finalize_shards.plan_shards(len(payload_ids(pointer)), pointer.copies, skipped_sources(loc, plan),
                                         shard_rows)
    s3.put_json(loc.bucket, finalize_shards.shards_key(loc), [spec.to_dict() for spec in shards])
    log.info("finalize shards planned", extra={"shards": len(shards), "payloads": len(payload_ids(pointer)),
                                               "shard_rows": shard_rows})
    return shards


def finalize_step(pointer: PlanPointer, settings: Settings, s3: S3Gateway, deadline: Deadline,
                  cursor: FinalizeCursor | None = None,
                  layout: ReportLayout = DEFAULT_LAYOUT) -> RunSummary | FinalizeCursor:
    """One invocation's share of the whole run: from ``cursor`` (None or step 0: the beginning) until done
    (the RunSummary) or until ``deadline`` is near (a cursor to call again with). Raises
    TooManyFailedObjectsError past max_failed_objects, after writing the report."""
    outcome = _step(pointer, settings, s3, deadline, cursor, layout, RUN)
    assert not isinstance(outcome, ShardSummary)
    return outcome


def shard_step(pointer: PlanPointer, spec: ShardSpec, settings: Settings, s3: S3Gateway, deadline: Deadline,
               cursor: FinalizeCursor | None = None,
               layout: ReportLayout = DEFAULT_LAYOUT) -> ShardSummary | FinalizeCursor:
    """One invocation's share of finalize shard ``spec``: its summary when done, else a cursor."""
    outcome = _step(pointer, settings, s3, deadline, cursor, layout, Scope("shard", spec))
    assert not isinstance(outcome, RunSummary)
    return outcome


def merge_step(pointer: PlanPointer, settings: Settings, s3: S3Gateway, deadline: Deadline,
               cursor: FinalizeCursor | None = None,
               layout: ReportLayout = DEFAULT_LAYOUT) -> RunSummary | FinalizeCursor:
    """One invocation's share of the merge: the RunSummary when done (or TooManyFailedObjectsError after the
    report is written; FinalizeShardError when a shard left no summary), else a cursor."""
    outcome = _step(pointer, settings, s3, deadline, cursor, layout, MERGE)
    assert not isinstance(outcome, ShardSummary)
    return outcome


def _step(pointer: PlanPointer, settings: Settings, s3: S3Gateway, deadline: Deadline,
          cursor: FinalizeCursor | None, layout: ReportLayout,
          scope: Scope) -> RunSummary | ShardSummary | FinalizeCursor:
    loc = pointer.manifest
    plan = manifest.read_plan(s3, loc)
    s3 = s3.for_buckets(plan.config.bucket_access())  # each target's expected owner, on every request to it
    step = cursor.step if cursor is not None else 0
    summaries: list[ShardSummary] | None = None
    if step == 0:  # the first invocation (the state machine's first cursor is step 0: nothing saved yet)
        state, pending = FinalizeState(started=_now()), b""
        state.joins = {split.copy_id: ChunkJoin(split) for split in plan.splits}
        state.phase = scope.phases[0]
        if scope.kind == "merge":
            summaries = read_summaries(s3, loc)
            _merge_into(state, summaries)
        # report.csv is written as it goes when the plan's rows (copies and skipped objects) fit one spreadsheet;
        # the merge joins the shards' parts into it instead (finish_merge).
        single_csv = scope.kind == "run" and plan.totals.copies + plan.totals.skipped <= layout.single_csv_max_rows
    else:
        state, pending = load_state(s3, loc, step, plan.splits, scope.name)
        single_csv = False  # the saved report files say
    files = ReportFiles(s3, loc, layout, single_csv, state.files, pending, scope.files_name)
    run = _Finalization(pointer, plan, settings, s3, deadline, state, files, scope, layout, summaries)
    try:
        if not run.go_on():
            state.invocations += 1
            state.files = files.state()
            save_state(s3, loc, step + 1, state, files.pending_bytes(), scope.name)
            log.info("finalizer continues in another invocation",
                     extra={"step": step + 1, "phase": state.phase, "position": state.position,
                            "rows": files.rows, "scope": scope.kind, "shard": scope.name})
            return FinalizeCursor(step=step + 1, phase=state.phase, position=state.position)
        if scope.kind == "shard":
            return run.finish_shard()
        return run.finish_merge() if scope.kind == "merge" else run.finish()
    except BaseException as error:
        files.abort(error)
        raise


def read_summaries(s3: S3Gateway, loc: ManifestLocation) -> list[ShardSummary]:
    """Every finalize shard's summary, in shard order; FinalizeShardError naming the shards that left none."""
    specs = [ShardSpec.from_dict(item) for item in s3.get_json(loc.bucket, finalize_shards.shards_key(loc))]

    def read(spec: ShardSpec) -> ShardSummary | None:
        data = s3.get_json_or_none(loc.bucket, finalize_shards.summary_key(loc, spec.name))
        return ShardSummary.from_dict(data) if isinstance(data, dict) else None

    with ThreadPoolExecutor(max_workers=manifest.READ_THREADS) as pool:
        found = {spec.index: summary for spec, summary in zip(specs, pool.map(read, specs), strict=True)
                 if summary is not None}
    missing = finalize_shards.missing_shards(specs, found)
    if missing:
        named = "; ".join(finalize_shards.describe(spec) for spec in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FinalizeShardError(
            f"{len(missing)} of {len(specs)} finalize shards did not finish: {named}{more}. Their child "
            "executions of the FinalizeShards Map failed (their errors are in the Map Run); the report would "
            "miss their rows, so the run fails")
    return [found[spec.index] for spec in specs]


def _merge_into(state: FinalizeState, summaries: Sequence[ShardSummary]) -> None:
    """The merge's first state: the shards' counts, split joins, unmatched objects and verification."""
    state.tally = finalize_shards.merge_tallies([s.tally for s in summaries])
    for summary in summaries:
        for copy_id, saved in summary.joins.items():
            join = state.joins.get(copy_id)
            if join is None:
                raise FinalizeShardError(f"finalize shard {summary.index} reports chunks of split copy {copy_id}, "
                                         "which the plan does not have")
            finalize_shards.merge_join(join, saved)
    state.unmatched, state.unmatched_count = finalize_shards.merge_unmatched(summaries)
    state.verification = finalize_shards.merge_verification([s.verification for s in summaries])
    state.seconds = finalize_shards.merge_seconds(summaries)
    state.started = min((s.started for s in summaries if s.started), default=state.started)


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
    scope: Scope = RUN
    layout: ReportLayout = DEFAULT_LAYOUT
    summaries: list[ShardSummary] | None = field(default=None)  # the merge's, once read
    _restores: RestoreOutcomes | None = None

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
                self.state.phase, self.state.position = _next_phase(phase, self.scope.phases), 0
                if self.state.phase != "done" and self.deadline.near():
                    return False
        return True

    # --- phase 1: payloads ---------------------------------------------------------------------------
    def _payload_ids(self) -> list[int]:
        ids = payload_ids(self.pointer)
        shard = self.scope.shard
        return ids[shard.first:shard.first + shard.count] if shard is not None else ids

    def _payloads(self, pool: ThreadPoolExecutor) -> bool:
        ids = self._payload_ids()
        todo = ids[self.state.position:]
        files = manifest.payload_files(self.s3, self.loc, self.plan, todo)  # where each payload's file is
        items = [files.get(pid) or WorkItem(pid, -1, manifest.payload_key(self.loc, pid)) for pid in todo]
        with _PayloadReader(self.s3, self.loc, items, not self.dry_run) as reads:
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
            targets.append(Expected(task.target_bucket, task.target_key, task.size, result.target_etag,
                                    result.checksum_check))
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
                rows = list(pool.map(lambda split: settle_split(self.s3, self.state.joins[split.copy_id],
                                                                self.plan.config.options.overwrite), batch))
                targets = [Expected(split.target_bucket, split.target_key, split.size, row.target_etag,
                                    row.checksum_check) for split, row in zip(batch, rows, strict=True)]
                self._report(self._verified(rows, targets, pool))
            self.state.position += len(batch)
            if self.state.position < len(splits) and self.deadline.near():
                return False
        return True

    # --- phase 3: the skipped objects -----------------------------------------------------------------
    def _skipped_files(self) -> tuple[str, ...]:
        shard = self.scope.shard
        return (shard.key,) if shard is not None else skipped_sources(self.loc, self.plan)

    def _skipped(self, pool: ThreadPoolExecutor) -> bool:
        """Each of the scope's skipped files, in order (``state.item``), from a byte offset (``position``)."""
        files = self._skipped_files()
        while self.state.item < len(files):
            if not self._skipped_file(files[self.state.item], pool):
                return False
            self.state.item, self.state.position = self.state.item + 1, 0
            if self.state.item < len(files) and self.deadline.near():
                return False
        return True

    def _skipped_file(self, key: str, pool: ThreadPoolExecutor) -> bool:
        start = self.state.position
        chunks = self.s3.read_chunks(self.loc.bucket, key, start)
        rows: list[ReportRow] = []
        for seen, (data, end) in enumerate(iter_array(chunks, start), start=1):
            skipped = SkippedObject.from_dict(data)
            if skipped.reason == TO_RESTORE and not self.dry_run:
                rows.extend(self._restored_rows([skipped], pool))  # the restore stage copied it (or not)
            elif is_unmatched(skipped):
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

    def _restored_rows(self, entries: list[SkippedObject], pool: ThreadPoolExecutor) -> list[ReportRow]:
        """The rows of objects the restore stage handled (options.restore), verified, with their restore times."""
        found = self.restores().rows(entries)
        rows = self._verified([row for row, _, _, _ in found],
                              [expected or Expected("", "", 0) for _, expected, _, _ in found], pool)
        return [with_times(row, requested, completed) for row, (_, _, requested, completed) in zip(rows, found,
                                                                                                  strict=True)]

    def restores(self) -> RestoreOutcomes:
        """The restore stage's book, read once per invocation (its open uploads aborted when first read)."""
        if self._restores is None:
            self._restores = RestoreOutcomes.load(self.s3, self.loc)
            self._restores.abort_open_uploads(self.s3)
        return self._restores

    # --- every phase ---------------------------------------------------------------------------------
    def _verified(self, rows: list[ReportRow], targets: Sequence[Expected],
                  pool: ThreadPoolExecutor) -> list[ReportRow]:
        """``rows`` with each copied row whose target is missing or not the planned size failed, and every other
        copied row saying how it was proven (verified_by)."""
        copied = [i for i, row in enumerate(rows) if row.status == "copied"]
        if not copied:
            return rows
        verdicts = verify_targets(self.s3, [targets[i] for i in copied], pool.map, self.state.verification,
                                  self.roots)
        for index, (problem, proven) in zip(copied, verdicts, strict=True):
            rows[index] = failed_row(rows[index], problem) if problem else verified_row(rows[index], proven)
        return rows

    def _report(self, rows: Iterable[ReportRow]) -> None:
        tally, files = self.state.tally, self.files
        for row in rows:
            tally.add(row)
            files.add(row)

    def finish(self) -> RunSummary:
        """The whole run's last files (its report parts, report.csv, the manifest) and report.json."""
        finished = _now()
        entries = self.files.finish(created=finished)
        return self._conclude(finished, entries, self.files.rows, self.files.csv_uri,
                              {"invocations": self.state.invocations + 1})

    def finish_shard(self) -> ShardSummary:
        """A finalize shard's last part and its summary for the merge (no end-of-run file)."""
        assert self.scope.shard is not None
        state, spec = self.state, self.scope.shard
        entries = self.files.finish(created=_now(), manifest=False)
        summary = ShardSummary(index=spec.index, kind=spec.kind, rows=self.files.rows, entries=entries,
                               tally=state.tally,
                               joins={i: join.to_state() for i, join in state.joins.items() if join.chunks},
                               unmatched=state.unmatched, unmatched_count=state.unmatched_count,
                               verification=state.verification, started=state.started,
                               invocations=state.invocations + 1, seconds=state.seconds)
        self.s3.put_json(self.loc.bucket, finalize_shards.summary_key(self.loc, spec.name), summary.to_dict())
        log.info("finalize shard done", extra={"shard": spec.index, "kind": spec.kind, "rows": summary.rows,
                                               "failed": state.tally.failed, "parts": len(entries)})
        return summary

    def finish_merge(self) -> RunSummary:
        """The end of the run: every end-of-run file is written here, once the shards' summaries and the split
        copies' rows are in. The report's parts in row order (payload shards, split copies, skipped
        objects), report.csv when the rows fit ``single_csv_max_rows``, report/manifest.json, report.json."""
        summaries = self.summaries if self.summaries is not None else read_summaries(self.s3, self.loc)
        own = self.files.finish(created=_now(), manifest=False)
        entries = [*(e for s in summaries if s.kind == "payloads" for e in s.entries), *own,
                   *(e for s in summaries if s.kind == "skipped" for e in s.entries)]
        rows = sum(s.rows for s in summaries) + self.files.rows
        report_csv = ""
        if rows <= self.layout.single_csv_max_rows:
            join_single_csv(self.s3, self.loc, entries, self.layout, csv_upload_key(self.loc))
            report_csv = self.loc.uri(REPORT_CSV)
        finished = _now()
        write_parts_manifest(self.s3, self.loc, entries, finished)
        timings = {"invocations": self.state.invocations + 1 + sum(s.invocations for s in summaries),
                   "finalize_shards": len(summaries), "merge_invocations": self.state.invocations + 1}
        return self._conclude(finished, entries, rows, report_csv, timings)

    def _conclude(self, finished: str, entries: Sequence[dict[str, Any]], rows: int, report_csv: str,
                  timings: dict[str, Any]) -> RunSummary:
        """report.json with the totals; the run's summary (or TooManyFailedObjectsError)."""
        plan, state, loc = self.plan, self.state, self.loc
        report_json = loc.uri(manifest.REPORT_JSON)
        counts = state.tally
        extra = {
            "parts": {"manifest": self.files.manifest_uri, "count": len(entries), "rows": rows},
            "timings": {"finalizer_started": state.started, **timings, "phase_seconds": state.seconds},
            "verification": state.verification.as_dict(),
        }
        if plan.config.options.restore is not None and not self.dry_run:
            extra["restores"] = self.restores().summary()
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


def _next_phase(phase: Phase, phases: tuple[Phase, ...]) -> Phase:
    """The phase after ``phase`` in a scope's ``phases`` ("done" after the last)."""
    order = (*phases, "done")
    return order[order.index(phase) + 1]


class _PayloadReader:
    """Each payload with its checkpoint (None without one, or when not asked), in order, with up to
    READ_AHEAD reads in flight. A context manager: leaving it stops reading (the reads in flight finish)."""

    def __init__(self, s3: S3Gateway, loc: ManifestLocation, items: Sequence[WorkItem],
                 with_checkpoints: bool) -> None:
        self._items = iter(items)
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

    def _read(self, item: WorkItem) -> tuple[Payload, PayloadCheckpoint | None]:
        payload = manifest.read_payload_file(self._s3, self._loc, item)
        payload_id = item.payload
        # A checkpoint's result chunks share the reads in flight with the payloads read ahead (READ_THREADS in all,
        # what the client's connection pool is sized for).
        checkpoint = (manifest.read_checkpoint(self._s3, self._loc, payload_id,
                                               threads=max(1, manifest.READ_THREADS // READ_AHEAD))
                      if self._with_checkpoints else None)
        return payload, checkpoint

    def _submit(self) -> None:
        item = next(self._items, None)
        if item is not None:
            self._ahead.append(self._pool.submit(self._read, item))


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
def settle_split(s3: S3Gateway, join: ChunkJoin, overwrite: Overwrite = "if-different") -> ReportRow:
    """Complete the split copy when every chunk succeeded and every part is in place, with the whole-object
    checksum S3 validates (the source's, or the parts' combined: lambdas/integrity.py) and the write conditions
    of ``overwrite`` (integrity.write_conditions); otherwise abort it. A refused condition aborts the upload and
    reports the copy skipped, as the worker does for a whole object (lambdas/copying.py)."""
    split = join.split
    if not join.all_copied:
        _abort(s3, split, "a chunk did not succeed")
        return join.row()
    try:
        parts = s3.list_parts(split.target_bucket, split.target_key, split.upload_id)
    except NoSuchUploadError:
        # A retried finalizer finds the upload it completed last time; anything else is a failure.
        return _completed_before(s3, join)
    problems = part_problems(split, parts)
    if problems:
        _abort(s3, split, problems)
        return join.row(f"VerificationError: upload of {_target(split)} {problems}")
    spec = WriteSpec(split.checksum_algorithm, split.checksum_type, split.checksum_expected)
    checksum = whole_checksum(spec, [(p.checksum, p.size) for p in parts])
    if_none_match, if_match = write_conditions(overwrite, split.target_etag)
    try:
        written = s3.complete_multipart_upload(split.target_bucket, split.target_key, split.upload_id, parts,
                                               checksum=checksum, if_none_match=if_none_match, if_match=if_match)
    except (TargetExistsError, TargetChangedError) as err:
        _abort(s3, split, str(err))
        reason = EXISTS if isinstance(err, TargetExistsError) else f"{TARGET_CHANGED}: {err}"
        return replace(join.row(), status="skipped", bytes=0, error=reason)
    except ObjectError as err:
        _abort(s3, split, str(err))
        return join.row(f"{err.code}: {err}")
    log.info("split copy completed", extra={"key": split.target_key, "bytes": split.size,
                                            "parts": split.part_count, "method": "multipart-split",
                                            "checksum": checksum.text() if checksum else ""})
    text = written.checksum.text() if written.checksum is not None else ""
    return join.row(_apply_tags(s3, split), checksum=text, target_etag=written.etag,
                    checksum_check=spec.checked if checksum is not None and text else "")


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


def _completed_before(s3: S3Gateway, join: ChunkJoin) -> ReportRow:
    """The row of a split whose upload is gone: completed by an earlier invocation when the object is there with
    its size. Its checksum is read back (a HEAD with checksum mode): one of the upload's algorithm and type can only
    have come from a completion S3 validated (a completion with a checksum succeeds only when it matches)."""
    split = join.split
    try:
        head = s3.head_object(split.target_bucket, split.target_key, checksums=True)
    except NoSuchKeyError:
        return join.row(f"VerificationError: upload {split.upload_id} of {_target(split)} is gone and the object "
                        "is missing")
    if head.size != split.size:
        return join.row(f"VerificationError: upload {split.upload_id} of {_target(split)} is gone and the object "
                        f"has {head.size} bytes, expected {split.size}")
    found = head.checksum
    spec = WriteSpec(split.checksum_algorithm, split.checksum_type, split.checksum_expected)
    ours = found is not None and (found.algorithm, found.type) == (spec.algorithm, spec.type) and (
        not spec.expected or found.value == spec.expected)
    return join.row(_apply_tags(s3, split), checksum=found.text() if found is not None else "",
                    target_etag=head.etag, checksum_check=spec.checked if ours else "")


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

