"""What the restore stage did, as the finalizer reports it: a report row per (archived object, target) and the
counts in report.json's ``restores``. Reads the restore book (lambdas/restoring/stage.py); no other S3 here
but the aborts of uploads a stopped stage left open."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from lambdas import logs
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, SkippedObject
from lambdas.report import ReportRow, result_row, s3_uri
from lambdas.restoring.stage import NOT_FINISHED, RestoreItem, read_book, result_of
from lambdas.verification import Expected

log = logs.get_logger("finalizer")

Pair = tuple[str, str, str, str]  # source bucket, source key, target bucket, target key


@dataclass
class RestoreOutcomes:
    """The book's items by (source, target) pair."""

    items: list[RestoreItem] = field(default_factory=list)
    _by_pair: dict[Pair, tuple[RestoreItem, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, s3: S3Gateway, loc: ManifestLocation) -> RestoreOutcomes:
        outcomes = cls(read_book(s3, loc) or [])
        for item in outcomes.items:
            for number, (bucket, key) in enumerate(item.targets):
                outcomes._by_pair[item.bucket, item.key, bucket, key] = (item, number)
        return outcomes

    def abort_open_uploads(self, s3: S3Gateway) -> None:
        """Uploads a stopped stage left open (the book names them): aborted, so none outlives the run."""
        for item in self.items:
            for task_id, upload_id in item.uploads.items():
                number = int(task_id.rsplit(".", 1)[1])
                bucket, key = item.targets[number]
                s3.abort_multipart_upload(bucket, key, upload_id)  # one already gone counts as aborted
                log.warning("restore upload aborted", extra={"key": key, "upload_id": upload_id})

    def rows(self, entries: Iterable[SkippedObject]) -> list[tuple[ReportRow, Expected | None, str, str]]:
        """For each plan entry: its row, the target to verify (copied rows only), and the restore times."""
        out: list[tuple[ReportRow, Expected | None, str, str]] = []
        for entry in entries:
            source = s3_uri(entry.source_bucket, entry.source_key)
            target = s3_uri(entry.target_bucket, entry.target_key)
            found = self._by_pair.get((entry.source_bucket, entry.source_key, entry.target_bucket, entry.target_key))
            if found is None:
                out.append((ReportRow(source, target, 0, "failed", "none", error=NOT_FINISHED), None, "", ""))
                continue
            item, number = found
            results = {r["task_id"].rsplit(".", 1)[1]: r for r in item.results}
            result = results.get(str(number))
            if result is not None:
                row = result_row(result_of(result))
                expected = Expected(entry.target_bucket, entry.target_key, entry.size) if row.status == "copied" \
                    else None
            else:
                row = ReportRow(source, target, 0, "failed", "none", error=item.error or NOT_FINISHED)
                expected = None
            out.append((row, expected, item.requested_at, item.completed_at))
        return out

    def summary(self) -> dict[str, Any]:
        """report.json's ``restores``: source objects by what happened to them."""
        how = Counter(item.how or "not looked at" for item in self.items)
        copied = sum(1 for item in self.items if item.results and all(r["status"] == "copied" for r in item.results)
                     and len(item.results) == len(item.targets))
        return {
            "objects": len(self.items),
            "requested": sum(1 for item in self.items if item.requested_at),
            "restored": sum(1 for item in self.items if item.completed_at),
            "copied": copied,
            "failed": len(self.items) - copied,
            "how": dict(sorted(how.items())),
        }


def with_times(row: ReportRow, requested: str, completed: str) -> ReportRow:
    return replace(row, restore_requested=requested, restore_completed=completed)
