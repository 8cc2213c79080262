"""Write the report's rows to the manifest location as they stream by: parts, their manifest, report.csv.

Under the run's folder (lambdas/manifest.py)::

    report/part-00000.csv        rows 1..PART_ROWS of the report, CSV without a header (lambdas/report.py)
    report/part-00001.csv        the next rows, and so on
    report/part-00003-00000.csv  a finalize shard's parts (lambdas/finalize_shards.py): "<shard>-<part>"
    report/part-splits-00000.csv the split copies' rows, written by the merge
    report/manifest.json         the parts in order, each with its rows, bytes and MD5 (report.parts_manifest)
    report.csv                   the header and every row, for reports up to SINGLE_CSV_MAX_ROWS rows

Memory holds the part being filled, whatever the report's size. report.csv is never held whole either: a
report of one part is one PutObject; a longer one is a multipart upload whose part n is the report's part
n-1 (the first with the header before it), sent when that part is cut. Every part but the last holds at least
5 MiB (report.PartCutter cuts no smaller), as S3 requires of all parts of an upload but the last (Amazon S3
user guide, "Amazon S3 multipart upload limits": part size 5 MiB to 5 GiB, "There is no minimum size limit
on the last part of your multipart upload").

A finalization that continues in another invocation carries ``state()`` and ``pending_bytes()`` there; the
parts are cut at the same rows whatever the invocations, so a retried invocation rewrites the same files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas import limits, logs
from lambdas.errors import RETRYABLE_ERROR_NAMES, SfnCopyError
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.models import ManifestLocation
from lambdas.report import (
    PART_MAX_BYTES,
    PART_ROWS,
    SINGLE_CSV_MAX_ROWS,
    PartCutter,
    ReportPart,
    ReportRow,
    csv_header,
    part_entry,
    parts_manifest,
)

log = logs.get_logger("report")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
REPORT_CSV = "report.csv"
PARTS_MANIFEST = "report/manifest.json"


def part_key(loc: ManifestLocation, index: int, name: str = "") -> str:
    """Part ``index`` of the run's report (``name`` ""), or of one writer of it (a finalize shard, the merge)."""
    return f"{loc.prefix}report/part-{name + '-' if name else ''}{index:05d}.csv"


@dataclass(frozen=True)
class ReportLayout:
    """How the report is cut (report.py's constants; tests use small ones)."""

    part_rows: int = PART_ROWS
    part_max_bytes: int = PART_MAX_BYTES
    min_part_bytes: int = limits.MIN_PART_SIZE  # of report.csv's upload parts but the last
    single_csv_max_rows: int = SINGLE_CSV_MAX_ROWS


DEFAULT_LAYOUT = ReportLayout()


class ReportFiles:
    """The report's files, written as rows are added. ``single_csv``: also write report.csv. ``state`` and
    ``pending`` resume the writer another invocation stopped."""

    def __init__(self, s3: S3Gateway, loc: ManifestLocation, layout: ReportLayout, single_csv: bool,
                 state: Mapping[str, Any] | None = None, pending: bytes = b"", name: str = "") -> None:
        self.s3, self.loc, self.layout, self.name = s3, loc, layout, name
        saved = dict(state or {})
        self.cutter = PartCutter(layout.part_rows, layout.part_max_bytes, layout.min_part_bytes,
                                 index=int(saved.get("index", 0)), pending=pending,
                                 pending_rows=int(saved.get("pending_rows", 0)))
        self.entries: list[dict[str, Any]] = [dict(e) for e in saved.get("entries", ())]
        self.rows = int(saved.get("rows", 0))  # rows added so far, the pending ones included
        self.single_csv = bool(saved.get("single_csv", single_csv))
        self.upload_id = str(saved.get("upload_id", ""))
        self.uploaded = [PartInfo(int(n), str(etag), int(size)) for n, etag, size in saved.get("uploaded", ())]
        self.resumed_upload = self.upload_id  # the upload a retry of this invocation continues too
        self.completed = False

    @property
    def csv_uri(self) -> str:
        return self.loc.uri(REPORT_CSV) if self.single_csv else ""

    @property
    def manifest_uri(self) -> str:
        return self.loc.uri(PARTS_MANIFEST)

    def add(self, row: ReportRow) -> None:
        self.rows += 1
        part = self.cutter.add(row)
        if part is not None:
            self._write_part(part, last=False)

    def finish(self, created: str, manifest: bool = True) -> list[dict[str, Any]]:
        """Write the last part, report.csv and (unless ``manifest`` is false: a writer of one share of the
        report) the parts' manifest; return the manifest's entries."""
        last = self.cutter.finish()
        if last is not None:
            self._write_part(last, last=True)
        if self.single_csv:
            if self.upload_id:
                self.s3.complete_multipart_upload(self.loc.bucket, self._csv_key, self.upload_id, self.uploaded)
            else:  # one part at most: one request, as before parts existed
                body = csv_header() + (last.body if last is not None else b"")
                self.s3.put_bytes(self.loc.bucket, self._csv_key, body, CSV_CONTENT_TYPE)
        self.completed = True
        if manifest:
            write_parts_manifest(self.s3, self.loc, self.entries, created)
        return self.entries

    def abort(self, error: BaseException) -> None:
        """After ``error``: abort report.csv's upload unless a retry of this invocation continues it (an
        upload this invocation resumed, and an error Step Functions retries). Never raises: the error is
        what the execution must see. Cleanup aborts what a crashed invocation leaves (lambdas/cleanup.py)."""
        if self.completed or not self.upload_id:
            return
        if self.upload_id == self.resumed_upload and _retried(error):
            return
        try:
            self.s3.abort_multipart_upload(self.loc.bucket, self._csv_key, self.upload_id)
        except Exception as failure:  # logged, not raised: the caller re-raises the error that matters
            log.error("could not abort the report.csv upload",
                      extra={"upload_id": self.upload_id, "error": f"{type(failure).__name__}: {failure}"})
        else:
            log.warning("aborted the report.csv upload", extra={"upload_id": self.upload_id,
                                                                "error": type(error).__name__})

    def state(self) -> dict[str, Any]:
        """What another invocation needs to go on (the pending part's bytes aside: ``pending_bytes``)."""
        return {"index": self.cutter.index, "pending_rows": self.cutter.rows, "entries": self.entries,
                "rows": self.rows, "single_csv": self.single_csv, "upload_id": self.upload_id,
                "uploaded": [[p.number, p.etag, p.size] for p in self.uploaded]}

    def pending_bytes(self) -> bytes:
        return self.cutter.pending_bytes()

    @property
    def _csv_key(self) -> str:
        return self.loc.prefix + REPORT_CSV

    def _write_part(self, part: ReportPart, last: bool) -> None:
        key = part_key(self.loc, part.index, self.name)
        self.s3.put_bytes(self.loc.bucket, key, part.body, CSV_CONTENT_TYPE)
        self.entries.append(part_entry(self.loc.bucket, key, part))
        if not self.single_csv:
            return
        if self.rows > self.layout.single_csv_max_rows:
            self._give_up_single_csv()
            return
        if part.index == 0 and last:
            return  # the whole report is one part: finish() puts report.csv in one request
        if not self.upload_id:
            self.upload_id = self.s3.start_upload(self.loc.bucket, self._csv_key, CSV_CONTENT_TYPE)
        body = csv_header() + part.body if part.index == 0 else part.body
        self.uploaded = [p for p in self.uploaded if p.number != part.index + 1]
        self.uploaded.append(self.s3.upload_part(self.loc.bucket, self._csv_key, self.upload_id, part.index + 1,
                                                 body))

    def _give_up_single_csv(self) -> None:
        """More rows than the plan announced: report.csv would pass its limit, so the parts alone are the
        report (the upload is aborted; nothing was visible at report.csv yet)."""
        log.warning("report.csv left out: more rows than planned",
                    extra={"rows": self.rows, "max_rows": self.layout.single_csv_max_rows})
        if self.upload_id:
            self.s3.abort_multipart_upload(self.loc.bucket, self._csv_key, self.upload_id)
        self.single_csv, self.upload_id, self.uploaded = False, "", []


def write_parts_manifest(s3: S3Gateway, loc: ManifestLocation, entries: Sequence[Mapping[str, Any]],
                         created: str) -> None:
    s3.put_json(loc.bucket, loc.prefix + PARTS_MANIFEST, parts_manifest(entries, created))


def join_single_csv(s3: S3Gateway, loc: ManifestLocation, entries: Sequence[Mapping[str, Any]],
                    layout: ReportLayout, marker_key: str) -> str:
    """report.csv from parts other writers made (the finalize shards'): the header, then every part in order,
    as one PutObject when it is small, else a multipart upload whose parts but the last hold at least
    ``layout.min_part_bytes`` (S3's 5 MiB minimum; Amazon S3 user guide, "Amazon S3 multipart upload
    limits"). Memory holds one upload part. Returns the upload id used ("" for one PutObject).

    The upload's id is written to ``marker_key`` before any part, and the marker emptied once the upload is
    completed or aborted, so cleanup (lambdas/cleanup.py) can abort an upload a crashed invocation left; a
    retry aborts the one its marker names before starting again. Bounded by ``layout.single_csv_max_rows``."""
    key = loc.prefix + REPORT_CSV
    _abort_marked(s3, loc, marker_key, key)
    buffer = bytearray(csv_header())
    upload_id = ""
    uploaded: list[PartInfo] = []
    try:
        for entry in entries:
            buffer += b"".join(s3.read_chunks(str(entry["Bucket"]), str(entry["Key"])))
            if len(buffer) >= max(layout.min_part_bytes, 1):
                if not upload_id:
                    upload_id = s3.start_upload(loc.bucket, key, CSV_CONTENT_TYPE)
                    s3.put_json(loc.bucket, marker_key, {"upload_id": upload_id, "key": key})
                uploaded.append(s3.upload_part(loc.bucket, key, upload_id, len(uploaded) + 1, bytes(buffer)))
                buffer = bytearray()
        if not upload_id:
            s3.put_bytes(loc.bucket, key, bytes(buffer), CSV_CONTENT_TYPE)
            return ""
        if buffer:
            uploaded.append(s3.upload_part(loc.bucket, key, upload_id, len(uploaded) + 1, bytes(buffer)))
        s3.complete_multipart_upload(loc.bucket, key, upload_id, uploaded)
    except BaseException:
        if upload_id:
            _abort_quietly(s3, loc.bucket, key, upload_id)
            s3.put_json(loc.bucket, marker_key, {})
        raise
    s3.put_json(loc.bucket, marker_key, {})
    return upload_id


def _abort_marked(s3: S3Gateway, loc: ManifestLocation, marker_key: str, key: str) -> None:
    """Abort the report.csv upload an earlier attempt left open (its marker names it)."""
    marker = s3.get_json_or_none(loc.bucket, marker_key)
    if isinstance(marker, dict) and marker.get("upload_id"):
        _abort_quietly(s3, loc.bucket, key, str(marker["upload_id"]))
        s3.put_json(loc.bucket, marker_key, {})


def _abort_quietly(s3: S3Gateway, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(bucket, key, upload_id)
    except Exception as failure:  # logged, not raised: the caller's error is the one that matters
        log.error("could not abort the report.csv upload",
                  extra={"upload_id": upload_id, "error": f"{type(failure).__name__}: {failure}"})
    else:
        log.warning("aborted the report.csv upload", extra={"upload_id": upload_id})


def _retried(error: BaseException) -> bool:
    """Whether the state machine retries ``error`` (its Retry matches these names, lambdas/errors.py)."""
    return isinstance(error, SfnCopyError) and any(cls.__name__ in RETRYABLE_ERROR_NAMES
                                                   for cls in type(error).__mro__)
