"""report.py by value: joined rows, CSV text, summary counts, dry-run rows."""

import csv
import io

from lambdas.models import (
    CopyConfig,
    CopyOptions,
    CopyTask,
    ObjectResult,
    PlanTotals,
    RunPlan,
    SkippedObject,
    SourceConfig,
    SplitCopy,
    TargetConfig,
)
from lambdas.report import (
    COLUMNS,
    MAX_FAILED_LISTED,
    ReportRow,
    build_summary,
    csv_bytes,
    join_chunks,
    not_run_result,
    planned_row,
    planned_split_row,
    result_row,
    skipped_row,
    tally,
    to_csv,
    too_many_failed_message,
)

SPLIT = SplitCopy(7, "src", "big.bin", 25, "e", "dst", "out/big.bin", part_size=10, part_count=3, upload_id="u")


def chunk(first, last, status="copied", seconds=1.0, error="", retries=0):
    nbytes = min(last * 10, 25) - (first - 1) * 10
    return ObjectResult(f"c7.p{first}", 7, "src", "big.bin", "dst", "out/big.bin",
                        nbytes if status == "copied" else 0, status, "chunk", parts=last - first + 1,
                        attempts=last - first + 1 + retries, retries=retries, seconds=seconds, error=error)


def test_chunks_of_a_split_copy_join_into_one_row():
    # GIVEN the three parts of a split copy done by two chunks on different workers
    results = [chunk(1, 2, seconds=4.0, retries=1), chunk(3, 3, seconds=1.5)]
    # WHEN joined THEN bytes and parts add up, seconds is the slowest chunk
    assert join_chunks(SPLIT, results) == ReportRow(
        source="s3://src/big.bin", target="s3://dst/out/big.bin", bytes=25, status="copied",
        method="multipart-split", parts=3, attempts=4, retries=1, seconds=4.0, error="")


def test_a_failed_chunk_fails_the_whole_copy():
    row = join_chunks(SPLIT, [chunk(1, 2), chunk(3, 3, status="failed", error="SourceChanged: etag")])
    assert (row.status, row.bytes, row.error) == ("failed", 0, "c7.p3: SourceChanged: etag")


def test_a_completion_error_fails_a_copy_whose_chunks_all_succeeded():
    row = join_chunks(SPLIT, [chunk(1, 3)], completion_error="VerificationError: missing parts 2")
    assert (row.status, row.error) == ("failed", "VerificationError: missing parts 2")


def test_a_chunk_that_never_ran_fails_the_copy_as_not_run():
    task = CopyTask("c7.p3", 7, "src", "big.bin", 25, "e", "dst", "out/big.bin", "chunk", 10, 3, 3, "u")
    row = join_chunks(SPLIT, [chunk(1, 2), not_run_result(task, "payload 4 never ran")])
    assert row.status == "failed"
    assert row.error == "c7.p3: NotRun: payload 4 never ran"


def test_whole_copy_rows_keep_the_workers_account():
    result = ObjectResult("c1", 1, "s", "a b+c%.txt", "d", "x/a b+c%.txt", 100, "copied", "multipart",
                          parts=2, attempts=3, retries=1, seconds=0.25)
    assert result_row(result) == ReportRow("s3://s/a b+c%.txt", "s3://d/x/a b+c%.txt", 100, "copied",
                                           "multipart", 2, 3, 1, 0.25, "")


def test_dry_run_rows_are_planned_with_the_planned_bytes():
    task = CopyTask("c1", 1, "s", "k", 42, "e", "d", "t/k", "copy")
    assert planned_row(task) == ReportRow("s3://s/k", "s3://d/t/k", 42, "planned", "copy")
    assert planned_split_row(SPLIT) == ReportRow("s3://src/big.bin", "s3://dst/out/big.bin", 25, "planned",
                                                 "multipart-split", parts=3)


def test_skipped_rows_carry_the_reason():
    row = skipped_row(SkippedObject("s", "cold.bin", 5, "restore first"))
    assert row == ReportRow("s3://s/cold.bin", "", 0, "skipped", "none", error="restore first")


def test_csv_has_a_header_and_keeps_commas_quotes_newlines_and_unicode():
    # GIVEN rows whose keys need quoting
    key = 'a, "b"\nc/ü 日本.txt'
    rows = [ReportRow(f"s3://s/{key}", f"s3://d/{key}", 3, "copied", "copy", 0, 1, 0, 0.5, "",
                      "CRC64NVME:FULL_OBJECT:AAAAAAAAAAA=", "checksum"),
            ReportRow("s3://s/x", "s3://d/x", 0, "failed", "copy", 0, 2, 1, 1.0, 'AccessDenied: "no", sorry')]
    # WHEN written as CSV
    text = to_csv(rows)
    # THEN a CSV reader gets every field back intact, in the stable column order
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(parsed[0]) == COLUMNS
    assert parsed[1] == [f"s3://s/{key}", f"s3://d/{key}", "3", "copied", "copy", "0", "1", "0", "0.500", "",
                         "CRC64NVME:FULL_OBJECT:AAAAAAAAAAA=", "checksum", "", ""]
    assert parsed[2][COLUMNS.index("error")] == 'AccessDenied: "no", sorry'
    assert csv_bytes(rows) == text.encode("utf-8")


def test_tally_counts_statuses_bytes_retries_and_reason_kinds():
    rows = [ReportRow("s3://s/a", "s3://d/a", 10, "copied", "copy", retries=2, verified_by="checksum"),
            ReportRow("s3://s/b", "s3://d/b", 5, "copied", "copy", verified_by="etag: the source has no checksum"),
            ReportRow("s3://s/c", "", 0, "skipped", "none", error="identical"),
            ReportRow("s3://s/d", "", 0, "skipped", "none", error="identical"),
            ReportRow("s3://s/f", "", 0, "skipped", "none", error="too large: 6 TiB is more than 5 TiB"),
            ReportRow("s3://s/e", "s3://d/e", 0, "failed", "copy", retries=1, error="NoSuchKey: gone")]
    counts = tally(rows).as_dict()
    assert counts == {
        "counts": {"copied": 2, "skipped": 3, "failed": 1, "planned": 0},
        "bytes_copied": 15, "retries": 3, "skipped_by_reason": {"identical": 2, "too large": 1},
        "failed_objects": [{"source": "s3://s/e", "target": "s3://d/e", "error": "NoSuchKey: gone"}],
        "failed_objects_not_listed": 0,
        "verified_by": {"checksum": 1, "etag": 1, "size": 0},
    }
    # AND the counts survive a finalizer's state (another invocation reads them back)
    assert type(tally(rows)).from_dict(counts).as_dict() == counts


def test_failed_objects_are_listed_up_to_the_cap_then_counted():
    rows = [ReportRow(f"s3://s/{i}", f"s3://d/{i}", 0, "failed", "copy", error="x")
            for i in range(MAX_FAILED_LISTED + 5)]
    counts = tally(rows)
    assert len(counts.as_dict()["failed_objects"]) == MAX_FAILED_LISTED
    assert counts.as_dict()["failed_objects_not_listed"] == 5
    assert counts.failed == MAX_FAILED_LISTED + 5


def plan_with(options):
    config = CopyConfig((SourceConfig("s", ""),), (TargetConfig(0, "d", "", ("*",)),), options)
    return RunPlan("r1", "2026-01-01T00:00:00Z", config, 1, ((0,),), (),
                   PlanTotals(copies=3, unmatched=2, skipped_by_reason=(("identical", 1),)))


def test_summary_status_follows_the_failure_limit_and_dry_run():
    failed = tally([ReportRow("s3://s/e", "s3://d/e", 0, "failed", "copy")])
    kwargs = {"finished": "2026-01-01T01:00:00Z", "report_json": "s3://m/r.json", "report_csv": "s3://m/r.csv"}
    assert build_summary(plan_with(CopyOptions(max_failed_objects=0)), failed, **kwargs)["status"] == "failed"
    assert build_summary(plan_with(CopyOptions(max_failed_objects=1)), failed, **kwargs)["status"] == "succeeded"
    planned = tally([ReportRow("s3://s/a", "s3://d/a", 3, "planned", "copy")])
    summary = build_summary(plan_with(CopyOptions(dry_run=True)), planned, **kwargs)
    assert summary["status"] == "dry-run"
    assert summary["counts"]["planned"] == 1
    assert summary["started"] == "2026-01-01T00:00:00Z"
    assert summary["totals"]["skipped_by_reason"] == {"identical": 1}
    assert summary["unmatched"] == 2
    assert "unmatched_objects" not in summary


def test_summary_lists_unmatched_objects_only_when_asked():
    kwargs = {"finished": "f", "report_json": "j", "report_csv": "c", "unmatched": ["s3://s/x.doc"]}
    summary = build_summary(plan_with(CopyOptions(report_unmatched=True)), tally([]), **kwargs)
    assert summary["unmatched_objects"] == ["s3://s/x.doc"]


def test_too_many_failed_message_names_count_limit_and_report():
    assert too_many_failed_message(3, 0, "s3://m/runs/r1/report.json") == (
        "3 objects failed (max_failed_objects is 0); see s3://m/runs/r1/report.json")
