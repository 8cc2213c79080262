"""The run's report, as data: one row per copy, a summary, the CSV text and its parts. Pure: no S3 here.

A copy is one (source object, target) pair. A whole-object copy has one task and so one result; a split
copy has one chunk task per byte range (possibly on different workers) and their results are joined
into one row. The finalizer (lambdas/finalizer.py) and cleanup (lambdas/cleanup.py) feed these
functions and write what they return (lambdas/report_files.py writes the parts).

The rows are cut into parts of at most PART_ROWS rows as they stream by (``PartCutter``), so no report
needs all its rows in memory; a manifest names the parts (``parts_manifest``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, TextIO

from lambdas import integrity, limits
from lambdas.models import CopyTask, ObjectResult, RunPlan, RunSummary, SkippedObject, SplitCopy
from lambdas.planning import UNMATCHED, reason_kind

RowStatus = Literal["copied", "skipped", "failed", "planned"]

# Column order of report.csv; readers (spreadsheets, scripts) rely on it, so only ever append.
COLUMNS: tuple[str, ...] = (
    "source", "target", "bytes", "status", "method", "parts", "attempts", "retries", "seconds", "error",
    "checksum", "verified_by", "restore_requested", "restore_completed",
)
SPLIT_METHOD = "multipart-split"
# report.json lists failed objects up to this many, then only counts the rest: a run with a million
# failures must still produce a readable (and writable) summary.
MAX_FAILED_LISTED = 1_000
# With options.report_unmatched, report.json lists unmatched objects up to this many and counts the rest
# (plan/skipped.json lists them all): the finalizer's memory must not grow with a bucket's unmatched keys.
MAX_UNMATCHED_LISTED = 10_000
# A split copy's row quotes the errors of its first failed chunks and counts the others.
CHUNK_ERRORS_QUOTED = 3
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
    checksum: str = ""  # the target's whole-object checksum as written, "ALGORITHM:TYPE:VALUE" (lambdas/integrity.py)
    # How the finalizer proved the copied target: "checksum", or "etag: <why>" / "size: <why>"
    # (integrity.verified_by); "" for rows that are not copies.
    verified_by: str = ""
    # Not in the CSV: what the write answered and what S3 checked its checksum against, for verification.
    target_etag: str = ""
    checksum_check: str = ""
    # options.restore (lambdas/restoring/): when this run asked S3 to restore the source (or first saw a
    # restore in progress) and when the restored copy was first seen readable; "" otherwise.
    restore_requested: str = ""
    restore_completed: str = ""

    def values(self) -> tuple[object, ...]:
        """The CSV columns' values, in COLUMNS order."""
        return (self.source, self.target, self.bytes, self.status, self.method, self.parts, self.attempts,
                self.retries, f"{self.seconds:.3f}", self.error, self.checksum, self.verified_by,
                self.restore_requested, self.restore_completed)


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
        checksum=result.checksum if result.status == "copied" else "",
        target_etag=result.target_etag,
        checksum_check=result.checksum_check,
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
    errors: list[str] = field(default_factory=list)  # of the first CHUNK_ERRORS_QUOTED failed chunks
    failed_chunks: int = 0

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
            self.failed_chunks += 1
            if len(self.errors) < CHUNK_ERRORS_QUOTED:
                self.errors.append(f"{result.task_id}: {result.error}")

    @property
    def all_copied(self) -> bool:
        """Every chunk reported success (a chunk with no result was added as failed NotRun)."""
        return self.chunks > 0 and self.statuses["copied"] == self.chunks

    @property
    def all_skipped(self) -> bool:
        return self.chunks > 0 and self.statuses["skipped"] == self.chunks

    def row(self, completion_error: str = "", checksum: str = "", target_etag: str = "",
            checksum_check: str = "") -> ReportRow:
        """The copy's row. ``completion_error`` is what went wrong after the chunks (ListParts checks,
        CompleteMultipartUpload, tagging): any error, from a chunk or after, fails the copy. ``checksum``,
        ``target_etag``, ``checksum_check``: what the completion answered (ReportRow)."""
        split = self.split
        more = self.failed_chunks - CHUNK_ERRORS_QUOTED
        errors = [*self.errors[:CHUNK_ERRORS_QUOTED], *([f"... {more} more"] if more > 0 else [])]
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
            checksum=checksum if status == "copied" else "",
            target_etag=target_etag,
            checksum_check=checksum_check,
        )

    def to_state(self) -> dict[str, Any]:
        """What a finalizer continuing in another invocation needs (the split itself is in the plan)."""
        return {"bytes": self.bytes, "parts": self.parts, "attempts": self.attempts, "retries": self.retries,
                "seconds": self.seconds, "chunks": self.chunks, "statuses": dict(self.statuses),
                "errors": list(self.errors), "failed_chunks": self.failed_chunks}

    @classmethod
    def from_state(cls, split: SplitCopy, data: Mapping[str, Any]) -> ChunkJoin:
        return cls(split, bytes=data["bytes"], parts=data["parts"], attempts=data["attempts"],
                   retries=data["retries"], seconds=data["seconds"], chunks=data["chunks"],
                   statuses=Counter(data["statuses"]), errors=list(data["errors"]),
                   failed_chunks=data["failed_chunks"])


def join_chunks(split: SplitCopy, results: Iterable[ObjectResult], completion_error: str = "") -> ReportRow:
    """One row for a split copy from its chunk results."""
    join = ChunkJoin(split)
    for result in results:
        join.add(result)
    return join.row(completion_error)


def failed_row(row: ReportRow, error: str) -> ReportRow:
    """The same row, failed (verification found the target wrong)."""
    return replace(row, bytes=0, status="failed", error=error, checksum="", verified_by="")


def verified_row(row: ReportRow, verified_by: str) -> ReportRow:
    """The same row, with how verification proved it."""
    return replace(row, verified_by=verified_by)


# --- CSV ---------------------------------------------------------------------------------------------
def write_csv(rows: Iterable[ReportRow], stream: TextIO) -> None:
    """Write the header and one line per row. The csv module quotes commas, quotes and newlines in keys."""
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.values())


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
    verified_by: Counter[str] = field(default_factory=Counter)  # copied rows by how they were proven

    def add(self, row: ReportRow) -> None:
        self.counts[row.status] += 1
        self.retries += row.retries
        if row.status == "copied":
            self.bytes_copied += row.bytes
            if row.verified_by:
                self.verified_by[integrity.verified_kind(row.verified_by)] += 1
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
            "verified_by": {kind: self.verified_by[kind] for kind in integrity.VERIFIED_KINDS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        """Read back what ``as_dict`` wrote (a finalizer continuing in another invocation)."""
        return cls(counts=Counter({k: v for k, v in data["counts"].items() if v}),
                   bytes_copied=data["bytes_copied"], retries=data["retries"],
                   skipped_by_reason=Counter(data["skipped_by_reason"]),
                   failed_objects=[dict(f) for f in data["failed_objects"]],
                   verified_by=Counter({k: v for k, v in data.get("verified_by", {}).items() if v}))


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
                  unmatched: list[str] | None = None, unmatched_not_listed: int = 0,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of report.json. ``unmatched`` (source URIs, at most MAX_UNMATCHED_LISTED; the rest
    counted in ``unmatched_not_listed``) is listed only with options.report_unmatched; ``extra`` adds
    sections (the report's parts, timings)."""
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
        summary["unmatched_objects_not_listed"] = unmatched_not_listed
    summary.update(extra or {})
    return summary


def too_many_failed_message(failed: int, max_failed: int, report_json: str) -> str:
    noun = "object" if failed == 1 else "objects"
    return f"{failed} {noun} failed (max_failed_objects is {max_failed}); see {report_json}"


# --- parts: the rows cut into bounded CSV files, named by a manifest ---------------------------------
# The layout follows S3 Batch Operations' completion reports (Amazon S3 user guide, "Examples: S3 Batch
# Operations completion reports"): CSV result files without a header row, and a top-level manifest.json
# whose "Results" list each file's Bucket, Key and MD5Checksum, with the columns in "ReportSchema". Ours
# adds each file's row and byte counts; its files are not split by task status (they keep the report's
# row order, payload by payload), so "TaskExecutionStatus" is left out.
PARTS_FORMAT = "sfncopy_Report_CSV_v1"
# Rows per part. A row is at least 40 bytes (a 3-character bucket, S3's shortest bucket name: Amazon S3 user
# guide, "General purpose bucket naming rules"; a 1-character key; the other columns), so a full part is at
# least 6 MB: above S3's 5 MiB minimum for every part of a multipart upload but the last (limits.MIN_PART_SIZE),
# and a full part can go up as one part of report.csv. About 25 MB at the usual ~170 bytes a row.
PART_ROWS = 150_000
# A part is also cut at this size (long keys and error messages), so one part's bytes are bounded too.
PART_MAX_BYTES = 32 * limits.MiB
# report.csv (every row in one file) is written for reports up to this many rows: the most a spreadsheet
# opens (Microsoft, "Excel specifications and limits": 1,048,576 rows per worksheet, one of them the header).
# Past it the parts are the report.
SINGLE_CSV_MAX_ROWS = 1_048_575


def csv_header() -> bytes:
    """The header line of report.csv (the parts have none; their manifest names the columns)."""
    return ",".join(COLUMNS).encode() + b"\r\n"  # csv.writer ends lines with \r\n


class _LastLine:
    """A stream that keeps the one line csv.writer wrote last (the writer writes a row in one call)."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, text: str) -> int:
        self.line = text
        return len(text)


class CsvLines:
    """Rows to CSV lines, one at a time, exactly as ``write_csv`` writes them."""

    def __init__(self) -> None:
        self._sink = _LastLine()
        self._writer = csv.writer(self._sink)

    def line(self, row: ReportRow) -> bytes:
        self._writer.writerow(row.values())
        return self._sink.line.encode()


@dataclass(frozen=True, slots=True)
class ReportPart:
    """One part of the report: part number ``index`` (from 0), the CSV lines of ``rows`` rows, no header."""

    index: int
    rows: int
    body: bytes


class PartCutter:
    """Cuts the stream of rows into parts: a part ends after ``part_rows`` rows once it holds at least
    ``min_bytes`` (so it can be a middle part of a multipart upload), or as soon as it holds ``max_bytes``.
    Memory holds the part being filled. ``index``, ``pending`` and ``pending_rows`` resume a cutter that
    another invocation stopped (``state`` and ``pending_bytes`` give them)."""

    def __init__(self, part_rows: int = PART_ROWS, max_bytes: int = PART_MAX_BYTES,
                 min_bytes: int = limits.MIN_PART_SIZE, index: int = 0, pending: bytes = b"",
                 pending_rows: int = 0) -> None:
        if part_rows < 1 or max_bytes < 1:
            raise ValueError(f"part_rows={part_rows} and max_bytes={max_bytes} must be at least 1")
        self.part_rows, self.max_bytes, self.min_bytes = part_rows, max_bytes, min_bytes
        self.index = index
        self.rows = pending_rows
        self._buffer = bytearray(pending)
        self._lines = CsvLines()

    def add(self, row: ReportRow) -> ReportPart | None:
        """Add one row; the part it completed, if it completed one."""
        self._buffer += self._lines.line(row)
        self.rows += 1
        size = len(self._buffer)
        if (self.rows >= self.part_rows and size >= self.min_bytes) or size >= self.max_bytes:
            return self._cut()
        return None

    def finish(self) -> ReportPart | None:
        """The last part (any size), or None when every row is in a part already."""
        return self._cut() if self.rows else None

    def pending_bytes(self) -> bytes:
        """The lines of the part being filled (to resume in another invocation)."""
        return bytes(self._buffer)

    def _cut(self) -> ReportPart:
        part = ReportPart(self.index, self.rows, bytes(self._buffer))
        self.index += 1
        self.rows = 0
        self._buffer = bytearray()
        return part


def md5_hex(data: bytes) -> str:
    """The MD5Checksum of a part, as S3 Batch Operations' manifests give it (hex); an integrity check for
    readers, not a security measure."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def part_entry(bucket: str, key: str, part: ReportPart) -> dict[str, Any]:
    """The manifest's entry for one part."""
    return {"Bucket": bucket, "Key": key, "MD5Checksum": md5_hex(part.body), "Rows": part.rows,
            "Bytes": len(part.body)}


def parts_manifest(entries: Sequence[Mapping[str, Any]], created: str) -> dict[str, Any]:
    """report/manifest.json: the parts in row order, the columns, and the totals a reader checks against."""
    return {
        "Format": PARTS_FORMAT,
        "ReportCreationDate": created,
        "ReportSchema": ", ".join(COLUMNS),
        "Header": csv_header().decode(),
        "Rows": sum(int(e["Rows"]) for e in entries),
        "Bytes": sum(int(e["Bytes"]) for e in entries),
        "Results": [dict(e) for e in entries],
    }
