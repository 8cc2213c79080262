"""Finish a run after every worker is done.

1. Join the workers' results (one checkpoint per payload) into one report row per copy.
2. Complete each split copy whose chunks all succeeded, after checking with ListParts that every part
   is there with the planned size; abort it otherwise. No upload of the run is left open.
3. Verify sizes: list each target prefix once (1 request per 1,000 keys, not one HEAD per object) and
   fail any copied row whose target is missing or has another size.
4. Write report.csv and report.json next to the plan, and fail the execution when more objects failed
   than ``options.max_failed_objects`` allows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from lambdas import logs, manifest
from lambdas.errors import NoSuchKeyError, NoSuchUploadError, ObjectError, TooManyFailedObjectsError
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.models import (
    Payload,
    PayloadCheckpoint,
    PlanPointer,
    RunSummary,
    SplitCopy,
    TargetConfig,
)
from lambdas.report import (
    ChunkJoin,
    ReportRow,
    build_summary,
    csv_bytes,
    failed_row,
    is_unmatched,
    not_run_result,
    planned_row,
    planned_split_row,
    result_row,
    run_summary,
    s3_uri,
    skipped_row,
    tally,
    too_many_failed_message,
)
from lambdas.settings import Settings

log = logs.get_logger("finalizer")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def finalize(pointer: PlanPointer, settings: Settings, s3: S3Gateway) -> RunSummary:
    loc = pointer.manifest
    plan = manifest.read_plan(s3, loc)
    s3 = s3.for_buckets(plan.config.bucket_access())  # each target's expected owner, on every request to it
    options = plan.config.options
    dry_run = options.dry_run or pointer.dry_run
    rows: list[ReportRow] = []
    # Copied rows still to verify: target URI -> (index in rows, planned size).
    expected: dict[str, tuple[int, int]] = {}
    joins = {split.copy_id: ChunkJoin(split) for split in plan.splits}

    for payload, checkpoint in manifest.read_payloads(s3, loc, payload_ids(pointer), with_checkpoints=not dry_run):
        if dry_run:
            rows.extend(planned_row(task) for task in payload.tasks if task.method != "chunk")
            continue
        _collect(payload, checkpoint, joins, rows, expected)
        if checkpoint is not None:
            _abort_open_uploads(s3, payload, checkpoint)

    if dry_run:
        for split in plan.splits:
            _abort_dry_run_upload(s3, split)
            rows.append(planned_split_row(split))
    else:
        # Each completion is a ListParts + CompleteMultipartUpload that S3 may take a while to assemble.
        with ThreadPoolExecutor(max_workers=manifest.READ_THREADS) as pool:
            settled = pool.map(lambda split: settle_split(s3, joins[split.copy_id]), plan.splits)
            for split, row in zip(plan.splits, settled, strict=True):
                _append(rows, expected, row, split.size)

    if not dry_run:
        verify_sizes(s3, plan.config.targets, rows, expected)

    unmatched: list[str] = []
    for skipped in manifest.read_skipped(s3, loc):
        if is_unmatched(skipped):
            unmatched.append(s3_uri(skipped.source_bucket, skipped.source_key))
        else:
            rows.append(skipped_row(skipped))

    counts = tally(rows)
    report_json, report_csv = loc.uri(manifest.REPORT_JSON), loc.uri(manifest.REPORT_CSV)
    s3.put_bytes(loc.bucket, manifest.key(loc, manifest.REPORT_CSV), csv_bytes(rows), CSV_CONTENT_TYPE)
    del rows  # the largest structure of the run; the summary needs only the tally
    summary = build_summary(plan, counts, finished=_now(), report_json=report_json, report_csv=report_csv,
                            unmatched=unmatched)
    s3.put_json(loc.bucket, manifest.key(loc, manifest.REPORT_JSON), summary)
    head = run_summary(plan, counts, report_json, report_csv)
    log.info("run finalized", extra={"status": head.status, "copied": head.copied, "failed": head.failed,
                                     "skipped": head.skipped, "bytes": head.bytes, "report": report_json})
    if not dry_run and counts.failed > options.max_failed_objects:
        raise TooManyFailedObjectsError(too_many_failed_message(counts.failed, options.max_failed_objects,
                                                                report_json))
    return head


def payload_ids(pointer: PlanPointer) -> list[int]:
    """Every payload of the run, in order (the report lists rows payload by payload)."""
    return sorted({pid for worker in pointer.workers for pid in worker})


# --- joining results ---------------------------------------------------------------------------------
def _collect(payload: Payload, checkpoint: PayloadCheckpoint | None, joins: dict[int, ChunkJoin],
             rows: list[ReportRow], expected: dict[str, tuple[int, int]]) -> None:
    """Add the payload's rows (whole copies) and chunk results (split copies)."""
    results = {r.task_id: r for r in checkpoint.results} if checkpoint is not None else {}
    why = (f"payload {payload.payload_id} never ran (no checkpoint)" if checkpoint is None
           else f"payload {payload.payload_id} did not finish this task")
    for task in payload.tasks:
        result = results.get(task.task_id) or not_run_result(task, why)
        join = joins.get(task.copy_id) if task.method == "chunk" else None
        if join is not None:
            join.add(result)
        else:
            _append(rows, expected, result_row(result), task.size)


def _append(rows: list[ReportRow], expected: dict[str, tuple[int, int]], row: ReportRow, size: int) -> None:
    if row.status == "copied":
        expected[row.target] = (len(rows), size)
    rows.append(row)


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


# --- verification ------------------------------------------------------------------------------------
def verify_sizes(s3: S3Gateway, targets: Iterable[TargetConfig], rows: list[ReportRow],
                 expected: dict[str, tuple[int, int]]) -> None:
    """Fail every copied row whose target is missing or not the planned size. Empties ``expected``.

    A bucket no copied row points into is not listed: it would verify nothing, and every copy into it may
    have failed because it cannot be listed (a bucket that is not its expected_bucket_owner's answers 403)."""
    buckets = {uri[5:uri.index("/", 5)] for uri in expected}  # "s3://bucket/key" (~0.2 s a million)
    for bucket, prefix in listing_roots(targets):
        if bucket not in buckets:
            continue
        for obj in s3.list_objects(bucket, prefix):
            entry = expected.pop(s3_uri(bucket, obj.key), None)
            if entry is not None and obj.size != entry[1]:
                index, size = entry
                rows[index] = failed_row(rows[index], f"VerificationError: {rows[index].target} has {obj.size} "
                                                      f"bytes, expected {size}")
    for target, (index, _size) in expected.items():
        rows[index] = failed_row(rows[index], f"VerificationError: {target} does not exist after the copy")
    expected.clear()


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

