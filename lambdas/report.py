"""The run's report, as data: one row per copy, a summary, and the CSV text. Pure: no S3 here.

A copy is one (source object, target) pair. A whole-object copy has one task and so one result; a split
copy has one chunk task per byte range (possibly on different workers) and their results are joined
into one row. The finalizer (lambdas/finalizer.py) and cleanup (lambdas/cleanup.py) feed these
functions and write what they return.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TextIO

from lambdas.models import CopyTask, ObjectResult, RunPlan, RunSummary, SkippedObject, SplitCopy
from lambdas.planning import UNMATCHED, reason_kind

RowStatus = Literal["copied", "skipped", "failed", "planned"]

# Column order of report.csv; readers (spreadsheets, scripts) rely on it, so only ever append.
COLUMNS: tuple[str, ...] = (
    "source", "target", "bytes", "status", "method", "parts", "attempts", "retries", "seconds", "error",
)
SPLIT_METHOD = "multipart-split"
# report.json lists failed objects up to this many, then only counts the rest: a run with a million
# failures must still produce a readable (and writable) summary.
MAX_FAILED_LISTED = 1_000
# The error code of a task that has no result because its payload never ran (or never finished).
NOT_RUN = "NotRun"
# With options.report_unmatched the planner lists objects no target rule matched in plan/skipped.json
# with this reason; they are not copies, so they get no row: they are counted and listed instead.
UNMATCHED_REASON = UNMATCHED


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One line of report.csv. ``bytes`` are bytes copied (planned bytes in a dry run)."""

    source: str  # s3://bucket/key
    target: str
    bytes: int
    status: RowStatus
    method: str  # "copy", "multipart", "multipart-split", "none"
    parts: int = 0
    attempts: int = 0
    retries: int = 0
    seconds: float = 0.0
    error: str = ""  # "<code>: <message>" when failed, the reason when skipped


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# --- rows --------------------------------------------------------------------------------------------
def result_row(result: ObjectResult) -> ReportRow:
    """The row of a whole-object copy (``copy`` or ``multipart``), from the worker's result."""
    return ReportRow(
        source=s3_uri(result.source_bucket, result.source_key),
        target=s3_uri(result.target_bucket, result.target_key),
        bytes=result.bytes if result.status == "copied" else 0,
        status=result.status,
        method=result.method,
        parts=result.parts,
        attempts=result.attempts,
        retries=result.retries,
        seconds=result.seconds,
        error=result.error,
    )


def not_run_result(task: CopyTask, why: str) -> ObjectResult:
    """The result of a task the workers never finished: failed, with nothing copied."""
    return ObjectResult(
        task_id=task.task_id, copy_id=task.copy_id, source_bucket=task.source_bucket,
        source_key=task.source_key, target_bucket=task.target_bucket, target_key=task.target_key,
        bytes=0, status="failed", method=task.method, attempts=0, error=f"{NOT_RUN}: {why}",
    )


def planned_row(task: CopyTask) -> ReportRow:
    """A dry run's row for a whole-object copy."""
    return ReportRow(
        source=s3_uri(task.source_bucket, task.source_key),
        target=s3_uri(task.target_bucket, task.target_key),
        bytes=task.size, status="planned", method=task.method,
    )


def planned_split_row(split: SplitCopy) -> ReportRow:
    """A dry run's row for a copy the plan splits into chunks."""
    return ReportRow(
        source=s3_uri(split.source_bucket, split.source_key),
        target=s3_uri(split.target_bucket, split.target_key),
        bytes=split.size, status="planned", method=SPLIT_METHOD, parts=split.part_count,
    )


def skipped_row(skipped: SkippedObject) -> ReportRow:
    target = s3_uri(skipped.target_bucket, skipped.target_key) if skipped.target_bucket else ""
    return ReportRow(
        source=s3_uri(skipped.source_bucket, skipped.source_key), target=target,
        bytes=0, status="skipped", method="none", error=skipped.reason,
    )


def is_unmatched(skipped: SkippedObject) -> bool:
    return skipped.reason == UNMATCHED_REASON


@dataclass(slots=True)
class ChunkJoin:
    """The chunk results of one split copy, gathered as they are read (from any number of payloads)."""

    split: SplitCopy
    bytes: int = 0
    parts: int = 0
    attempts: int = 0
    retries: int = 0
    seconds: float = 0.0
    chunks: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, result: ObjectResult) -> None:
        self.chunks += 1
        self.statuses[result.status] += 1
        self.attempts += result.attempts
        self.retries += result.retries
        # Chunks of one copy run side by side on different workers: the copy took as long as the slowest.
        self.seconds = max(self.seconds, result.seconds)
        if result.status == "copied":
            self.bytes += result.bytes
            self.parts += result.parts
        elif result.status == "failed":
            self.errors.append(f"{result.task_id}: {result.error}")

    @property
    def all_copied(self) -> bool:
        """Every chunk reported success (a chunk with no result was added as failed NotRun)."""
        return self.chunks > 0 and self.statuses["copied"] == self.chunks

    @property
    def all_skipped(self) -> bool:
        return self.chunks > 0 and self.statuses["skipped"] == self.chunks

    def row(self, completion_error: str = "") -> ReportRow:
        """The copy's row. ``completion_error`` is what went wrong after the chunks (ListParts checks,
        CompleteMultipartUpload, tagging): any error, from a chunk or after, fails the copy."""
        split = self.split
        errors = [*self.errors[:3], *([f"... {len(self.errors) - 3} more"] if len(self.errors) > 3 else [])]
        if completion_error:
            errors.insert(0, completion_error)
        status: RowStatus
        if errors:
            status = "failed"
        elif self.all_skipped:
            status = "skipped"
        elif self.all_copied:
            status = "copied"
        else:
            status = "failed"
            errors.append("Incomplete: some chunks were copied and others skipped")
        return ReportRow(
            source=s3_uri(split.source_bucket, split.source_key),
            target=s3_uri(split.target_bucket, split.target_key),
            bytes=self.bytes if status == "copied" else 0,
            status=status,
            method=SPLIT_METHOD,
            parts=self.parts,
            attempts=self.attempts,
            retries=self.retries,
            seconds=self.seconds,
            error="; ".join(errors),
        )


def join_chunks(split: SplitCopy, results: Iterable[ObjectResult], completion_error: str = "") -> ReportRow:
    """One row for a split copy from its chunk results."""
    join = ChunkJoin(split)
    for result in results:
        join.add(result)
    return join.row(completion_error)


def failed_row(row: ReportRow, error: str) -> ReportRow:
    """The same row, failed (verification found the target wrong)."""
    return ReportRow(row.source, row.target, 0, "failed", row.method, row.parts, row.attempts, row.retries,
                     row.seconds, error)


# --- CSV ---------------------------------------------------------------------------------------------
def write_csv(rows: Iterable[ReportRow], stream: TextIO) -> None:
    """Write the header and one line per row. The csv module quotes commas, quotes and newlines in keys."""
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow((row.source, row.target, row.bytes, row.status, row.method, row.parts, row.attempts,
                         row.retries, f"{row.seconds:.3f}", row.error))


def to_csv(rows: Iterable[ReportRow]) -> str:
    out = io.StringIO(newline="")
    write_csv(rows, out)
    return out.getvalue()


def csv_bytes(rows: Iterable[ReportRow]) -> bytes:
    """UTF-8 CSV, written straight into bytes (one copy of the text, however many rows)."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    write_csv(rows, text)
    text.flush()
    data = buffer.getvalue()
    text.detach()
    return data


# --- summary -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Tally:
    """Counts over the rows, gathered in one pass."""

    counts: Counter[str] = field(default_factory=Counter)
    bytes_copied: int = 0
    retries: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    failed_objects: list[dict[str, str]] = field(default_factory=list)

    def add(self, row: ReportRow) -> None:
        self.counts[row.status] += 1
        self.retries += row.retries
        if row.status == "copied":
            self.bytes_copied += row.bytes
        elif row.status == "skipped":
            # Counted by kind, as the plan's totals are ("too large: 6 TiB ..." -> "too large").
            self.skipped_by_reason[reason_kind(row.error)] += 1
        elif row.status == "failed" and len(self.failed_objects) < MAX_FAILED_LISTED:
            self.failed_objects.append({"source": row.source, "target": row.target, "error": row.error})

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {status: self.counts[status] for status in ("copied", "skipped", "failed", "planned")},
            "bytes_copied": self.bytes_copied,
            "retries": self.retries,
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "failed_objects": self.failed_objects,
            "failed_objects_not_listed": max(0, self.failed - len(self.failed_objects)),
        }


def tally(rows: Iterable[ReportRow]) -> Tally:
    result = Tally()
    for row in rows:
        result.add(row)
    return result


def run_status(dry_run: bool, failed: int, max_failed: int) -> Literal["succeeded", "failed", "dry-run"]:
    if dry_run:
        return "dry-run"
    return "failed" if failed > max_failed else "succeeded"


def run_summary(plan: RunPlan, counts: Tally, report_json: str, report_csv: str) -> RunSummary:
    """The small summary returned to Step Functions (and the head of report.json)."""
    options = plan.config.options
    return RunSummary(
        run_id=plan.run_id,
        status=run_status(options.dry_run, counts.failed, options.max_failed_objects),
        copied=counts.counts["copied"],
        skipped=counts.counts["skipped"],
        failed=counts.failed,
        bytes=counts.bytes_copied,
        retries=counts.retries,
        report_json=report_json,
        report_csv=report_csv,
    )


def build_summary(plan: RunPlan, counts: Tally, *, finished: str, report_json: str, report_csv: str,
                  unmatched: list[str] | None = None) -> dict[str, Any]:
    """The content of report.json. ``unmatched`` (source URIs) is listed only with options.report_unmatched."""
    head = run_summary(plan, counts, report_json, report_csv)
    summary: dict[str, Any] = {
        **head.to_dict(),
        "started": plan.created_at,
        "finished": finished,
        **counts.as_dict(),
        "max_failed_objects": plan.config.options.max_failed_objects,
        "unmatched": plan.totals.unmatched,
        "totals": asdict(plan.totals) | {"skipped_by_reason": dict(plan.totals.skipped_by_reason)},
        "report": {"json": report_json, "csv": report_csv},
    }
    if plan.config.options.report_unmatched:
        summary["unmatched_objects"] = list(unmatched or [])
    return summary


def too_many_failed_message(failed: int, max_failed: int, report_json: str) -> str:
    noun = "object" if failed == 1 else "objects"
    return f"{failed} {noun} failed (max_failed_objects is {max_failed}); see {report_json}"
