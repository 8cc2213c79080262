"""``sfncopy report --csv`` on moto S3: the whole CSV from either form of report (report.csv, or the header and
the parts its manifest lists), streamed to the file; a part that changed since the run is refused, and no
half-written file is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas import manifest
from lambdas.finalizer import finalize
from lambdas.models import CopyOptions
from lambdas.report_files import PARTS_MANIFEST, ReportLayout
from sfncopy.execution import ExecutionError
from sfncopy.report_csv import save_csv
from tests.functional.run_builder import MANIFESTS, SETTINGS, RunBuilder, moto_gateway

PARTS_ONLY = ReportLayout(part_rows=2, part_max_bytes=1 << 20, min_part_bytes=1, single_csv_max_rows=3)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    yield from moto_gateway(monkeypatch)


def finished_run(s3, layout: ReportLayout | None = None):
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=1))
    for n in range(4):
        run.whole(f'dir/{n}, "quoted" ü.txt', b"x" * (n + 1), payload=n % 2)
    run.whole("bad.txt", b"bad", outcome="failed", error="SourceChanged: etag differs")
    run.skip("cold.bin", "restore first")
    pointer = run.write()
    summary = finalize(pointer, SETTINGS, s3, layout or ReportLayout())
    report = s3.get_json(MANIFESTS, manifest.key(run.loc, manifest.REPORT_JSON))
    return run, summary, report


def test_report_csv_is_saved_as_it_is(s3, tmp_path: Path):
    # GIVEN a run with report.csv
    run, summary, report = finished_run(s3)
    # WHEN saved THEN the file is report.csv, byte for byte
    out = tmp_path / "r.csv"
    assert save_csv(s3, report, summary.report_csv, out) == summary.report_csv
    assert out.read_bytes() == s3.client.get_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, "report.csv"))[
        "Body"].read()


def test_a_report_of_parts_only_is_saved_as_the_header_and_every_part(s3, tmp_path: Path):
    # GIVEN a run with more rows than report.csv may hold: parts only
    run, summary, report = finished_run(s3, PARTS_ONLY)
    assert summary.report_csv == ""
    # WHEN saved (report_uris gives report.csv's usual place when the output names none)
    out = tmp_path / "r.csv"
    source = save_csv(s3, report, run.loc.uri("report.csv"), out)
    # THEN the file is what report.csv would have been: the same run finalized with one file gives it
    assert source == f"{report['parts']['manifest']} (3 parts, 6 rows)"
    finalize(run.write(), SETTINGS, s3)
    assert out.read_bytes() == s3.client.get_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, "report.csv"))[
        "Body"].read()
    assert not (tmp_path / "r.csv.partial").exists()


def test_parts_are_saved_under_the_header_their_manifest_names(s3, tmp_path: Path):
    # GIVEN a report of parts whose manifest names the columns of an older version (no checksum, verified_by)
    run, _, report = finished_run(s3, PARTS_ONLY)
    key = manifest.key(run.loc, PARTS_MANIFEST)
    parts = s3.get_json(MANIFESTS, key)
    old = "source,target,bytes,status,method,parts,attempts,retries,seconds,error\r\n"
    s3.put_json(MANIFESTS, key, {**parts, "Header": old})
    # WHEN saved  THEN the file starts with that header, the one its rows were written under
    out = tmp_path / "r.csv"
    save_csv(s3, report, "", out)
    assert out.read_bytes().startswith(old.encode())


def test_a_report_written_before_parts_is_read_from_report_csv(s3, tmp_path: Path):
    # GIVEN report.json as versions before the parts wrote it (no "parts"), with report.csv
    _, summary, report = finished_run(s3)
    old = {k: v for k, v in report.items() if k not in ("parts", "timings", "verification")}
    out = tmp_path / "r.csv"
    save_csv(s3, old, summary.report_csv, out)
    assert out.read_bytes().startswith(b"source,target,bytes,status")


def test_a_part_that_changed_since_the_run_is_refused_and_no_file_is_left(s3, tmp_path: Path):
    # GIVEN a parts-only report whose second part was changed afterwards
    run, _, report = finished_run(s3, PARTS_ONLY)
    parts = s3.get_json(MANIFESTS, run.loc.prefix + PARTS_MANIFEST)
    key = parts["Results"][1]["Key"]
    s3.client.put_object(Bucket=MANIFESTS, Key=key, Body=b"tampered\r\n")
    # WHEN saved THEN it fails naming the part, and neither the file nor its partial copy exists
    out = tmp_path / "r.csv"
    with pytest.raises(ExecutionError, match=f"s3://{MANIFESTS}/{key} does not match the MD5"):
        save_csv(s3, report, "", out)
    assert not out.exists() and not (tmp_path / "r.csv.partial").exists()


def test_a_run_without_any_report_says_so(s3, tmp_path: Path):
    with pytest.raises(ExecutionError, match=r"has no report\.csv"):
        save_csv(s3, {"status": "failed"}, "", tmp_path / "r.csv")
    with pytest.raises(ExecutionError, match="does not exist"):
        save_csv(s3, {"status": "failed"}, f"s3://{MANIFESTS}/runs/none/report.csv", tmp_path / "r.csv")


def test_the_summary_names_the_parts(s3):
    from sfncopy.summary import report_lines

    _, _, report = finished_run(s3, PARTS_ONLY)
    assert report_lines(report)[-1] == f"report (parts): {report['parts']['manifest']} (3 parts, 6 rows)"
    assert json.dumps(report)  # report.json stays plain JSON
