"""The report streamed in parts, by value: rows to CSV lines, parts cut and resumed, the parts' manifest,
totals carried between invocations, split joins with bounded errors."""

from __future__ import annotations

import hashlib

import pytest

from lambdas.models import ObjectResult, SplitCopy
from lambdas.report import (
    CHUNK_ERRORS_QUOTED,
    COLUMNS,
    MAX_UNMATCHED_LISTED,
    PART_ROWS,
    ChunkJoin,
    CsvLines,
    PartCutter,
    ReportPart,
    ReportRow,
    Tally,
    build_summary,
    csv_bytes,
    csv_header,
    join_chunks,
    part_entry,
    parts_manifest,
    tally,
)
from tests.unit.test_report import plan_with

AWKWARD = 'a, "b"\nc/ü 日本.txt'


def rows_of(count: int, key: str = "k") -> list[ReportRow]:
    return [ReportRow(f"s3://src/{key}{i}", f"s3://dst/out/{key}{i}", i, "copied", "copy", 0, 1, i % 3, 0.25 * i, "")
            for i in range(count)]


def cut(rows: list[ReportRow], cutter: PartCutter) -> list[ReportPart]:
    parts = [part for part in map(cutter.add, rows) if part is not None]
    last = cutter.finish()
    return parts + ([last] if last is not None else [])


def test_csv_lines_are_the_lines_of_report_csv_without_its_header():
    # GIVEN rows with keys that need quoting  WHEN encoded a line at a time
    rows = [*rows_of(3), ReportRow(f"s3://s/{AWKWARD}", f"s3://d/{AWKWARD}", 3, "failed", "copy", 0, 2, 1, 1.0,
                                   'AccessDenied: "no", sorry')]
    lines = CsvLines()
    # THEN header + lines is byte for byte what csv_bytes writes
    assert csv_header() + b"".join(lines.line(row) for row in rows) == csv_bytes(rows)
    assert csv_header().decode().rstrip("\r\n").split(",") == list(COLUMNS)


def test_parts_are_cut_every_part_rows_rows_and_hold_every_row_in_order():
    # GIVEN 10 rows cut every 4 rows (no byte minimum)
    rows = rows_of(10)
    parts = cut(rows, PartCutter(part_rows=4, max_bytes=1 << 20, min_bytes=0))
    # THEN parts of 4, 4 and 2 rows, numbered from 0, whose lines are the rows in order
    assert [(p.index, p.rows) for p in parts] == [(0, 4), (1, 4), (2, 2)]
    assert csv_header() + b"".join(p.body for p in parts) == csv_bytes(rows)


def test_a_part_is_not_cut_below_the_minimum_bytes_but_always_at_the_maximum():
    rows = rows_of(12)
    line = len(CsvLines().line(rows[5]))
    # GIVEN a minimum of about 5 lines: a 2-row part waits until it holds that much
    parts = cut(rows, PartCutter(part_rows=2, max_bytes=1 << 20, min_bytes=5 * line))
    assert [p.rows for p in parts][:2] == [5, 5]
    assert all(len(p.body) >= 5 * line for p in parts[:-1])
    # AND a part reaching the maximum bytes is cut whatever its rows
    parts = cut(rows, PartCutter(part_rows=1000, max_bytes=3 * line, min_bytes=0))
    assert all(p.rows <= 4 for p in parts)
    assert sum(p.rows for p in parts) == 12


def test_full_parts_of_the_shortest_rows_still_meet_s3s_part_minimum():
    # GIVEN the shortest row there is (3-character buckets, 1-character keys, empty error)
    shortest = ReportRow("s3://abc/k", "", 0, "copied", "copy")
    # THEN PART_ROWS of them are more than 5 MiB, so a full part is a valid middle part of report.csv
    assert PART_ROWS * len(CsvLines().line(shortest)) >= 5 * 1024 * 1024


def test_a_cutter_resumed_from_its_state_cuts_the_same_parts():
    # GIVEN 11 rows, cut in one go
    rows = rows_of(11)
    whole = cut(rows, PartCutter(part_rows=3, max_bytes=1 << 20, min_bytes=0))
    # WHEN a cutter stops after 7 rows and a new one resumes from its index, pending rows and bytes
    first = PartCutter(part_rows=3, max_bytes=1 << 20, min_bytes=0)
    before = [part for part in map(first.add, rows[:7]) if part is not None]
    second = PartCutter(part_rows=3, max_bytes=1 << 20, min_bytes=0, index=first.index,
                        pending=first.pending_bytes(), pending_rows=first.rows)
    after = cut(rows[7:], second)
    # THEN the parts are the same, bytes and numbers
    assert before + after == whole


def test_no_rows_make_no_parts():
    assert PartCutter().finish() is None


def test_the_parts_manifest_lists_each_part_with_rows_bytes_and_md5():
    # GIVEN two parts
    parts = [ReportPart(0, 2, b"a,b\r\nc,d\r\n"), ReportPart(1, 1, b"e,f\r\n")]
    entries = [part_entry("m", f"runs/r1/report/part-{p.index:05d}.csv", p) for p in parts]
    md5 = [hashlib.md5(p.body).hexdigest() for p in parts]
    # WHEN the manifest is built
    manifest = parts_manifest(entries, "2026-01-01T00:00:00Z")
    # THEN it follows S3 Batch Operations' layout (Format, ReportCreationDate, ReportSchema, Results) with totals
    assert manifest == {
        "Format": "sfncopy_Report_CSV_v1",
        "ReportCreationDate": "2026-01-01T00:00:00Z",
        "ReportSchema": ", ".join(COLUMNS),
        "Header": csv_header().decode(),
        "Rows": 3,
        "Bytes": 15,
        "Results": [
            {"Bucket": "m", "Key": "runs/r1/report/part-00000.csv", "MD5Checksum": md5[0],
             "Rows": 2, "Bytes": 10},
            {"Bucket": "m", "Key": "runs/r1/report/part-00001.csv", "MD5Checksum": md5[1],
             "Rows": 1, "Bytes": 5},
        ],
    }


def test_totals_survive_a_trip_through_the_saved_state():
    # GIVEN a tally of every kind of row
    rows = [*rows_of(3), ReportRow("s3://s/c", "", 0, "skipped", "none", error="too large: 6 TiB"),
            ReportRow("s3://s/e", "s3://d/e", 0, "failed", "copy", retries=1, error="NoSuchKey: gone"),
            ReportRow("s3://s/p", "s3://d/p", 4, "planned", "copy")]
    counts = tally(rows)
    # WHEN written as report.json writes it and read back THEN it is the same, and goes on counting alike
    again = Tally.from_dict(counts.as_dict())
    assert again == counts
    again.add(rows[0])
    counts.add(rows[0])
    assert again.as_dict() == counts.as_dict()


SPLIT = SplitCopy(7, "src", "big.bin", 100, "e", "dst", "out/big.bin", part_size=10, part_count=10, upload_id="u")


def chunk(part: int, status: str = "copied") -> ObjectResult:
    return ObjectResult(f"c7.p{part}", 7, "src", "big.bin", "dst", "out/big.bin", 10 if status == "copied" else 0,
                        status, "chunk", parts=1, attempts=1, seconds=float(part),
                        error="SourceChanged: etag" if status == "failed" else "")


def test_a_split_copy_quotes_its_first_failed_chunks_and_counts_the_rest():
    # GIVEN five failed chunks  WHEN joined THEN three are quoted and two counted, as before joins were bounded
    join = ChunkJoin(SPLIT)
    for part in range(1, 6):
        join.add(chunk(part, "failed"))
    assert len(join.errors) == CHUNK_ERRORS_QUOTED
    assert join.row().error == ("c7.p1: SourceChanged: etag; c7.p2: SourceChanged: etag; c7.p3: SourceChanged: etag; "
                                "... 2 more")
    assert join_chunks(SPLIT, [chunk(p, "failed") for p in range(1, 6)]) == join.row()


def test_a_split_join_survives_a_trip_through_the_saved_state():
    join = ChunkJoin(SPLIT)
    for part in (1, 2, 3):
        join.add(chunk(part))
    join.add(chunk(4, "failed"))
    again = ChunkJoin.from_state(SPLIT, join.to_state())
    assert again == join
    for j in (join, again):
        j.add(chunk(5))
    assert again.row() == join.row()


def test_the_summary_counts_unmatched_objects_past_the_listed_ones_and_adds_sections():
    from lambdas.models import CopyOptions

    kwargs = {"finished": "f", "report_json": "j", "report_csv": "", "unmatched": ["s3://s/x.doc"],
              "unmatched_not_listed": 4, "extra": {"parts": {"manifest": "s3://m/report/manifest.json"}}}
    summary = build_summary(plan_with(CopyOptions(report_unmatched=True)), tally([]), **kwargs)
    assert summary["unmatched_objects"] == ["s3://s/x.doc"]
    assert summary["unmatched_objects_not_listed"] == 4
    assert summary["parts"] == {"manifest": "s3://m/report/manifest.json"}
    assert summary["report"] == {"json": "j", "csv": ""}
    assert MAX_UNMATCHED_LISTED >= 1_000


@pytest.mark.parametrize("part_rows, max_bytes", [(0, 10), (10, 0)])
def test_a_cutter_refuses_empty_parts(part_rows, max_bytes):
    with pytest.raises(ValueError, match="must be at least 1"):
        PartCutter(part_rows=part_rows, max_bytes=max_bytes)
