"""The finalizer on moto S3: split copies completed or aborted, sizes verified, reports written."""

import csv
import io
import json

import pytest

from lambdas import manifest
from lambdas.errors import TooManyFailedObjectsError
from lambdas.finalizer import finalize
from lambdas.models import CopyOptions, PayloadTask
from lambdas.report import COLUMNS
from lambdas.worker import record_failure
from tests.functional.run_builder import (
    MANIFESTS,
    PART,
    SETTINGS,
    SOURCE,
    TARGET,
    RunBuilder,
    body_of,
    moto_gateway,
    uploads,
)


@pytest.fixture
def s3(monkeypatch):
    yield from moto_gateway(monkeypatch)


@pytest.fixture
def settings():
    return SETTINGS


def report_json(s3, run):
    return s3.get_json(MANIFESTS, manifest.key(run.loc, manifest.REPORT_JSON))


def report_rows(s3, run):
    obj = s3.client.get_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, manifest.REPORT_CSV))
    assert obj["ContentType"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(obj["Body"].read().decode("utf-8"), newline="")))


def by_source(rows):
    return {row["source"]: row for row in rows}


def test_split_copy_with_every_chunk_done_is_completed_byte_identical_and_tagged(s3, settings):
    # GIVEN an 11 MiB object split into 3 parts, chunks copied by two workers, with tags to apply after
    run = RunBuilder(s3)
    body = body_of(2 * PART + 1234)
    run.split("big/movie.mp4", body, [(0, 1, 2), (1, 3, 3)], tags=(("team", "video"), ("tier", "gold")))
    run.whole("small.txt", b"hello")
    pointer = run.write()
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN the target is the source, byte for byte, with the tags; no upload is left open
    target = s3.client.get_object(Bucket=TARGET, Key="out/big/movie.mp4")
    assert target["Body"].read() == body
    assert s3.get_tags(TARGET, "out/big/movie.mp4") == {"team": "video", "tier": "gold"}
    assert uploads(s3) == []
    # AND the report has one joined row for the split copy
    assert summary.status == "succeeded"
    assert (summary.copied, summary.failed, summary.bytes) == (2, 0, len(body) + 5)
    row = by_source(report_rows(s3, run))[f"s3://{SOURCE}/big/movie.mp4"]
    assert row["status"] == "copied"
    assert row["method"] == "multipart-split"
    assert (row["bytes"], row["parts"], row["seconds"]) == (str(len(body)), "3", "3.000")


def test_a_failed_chunk_aborts_the_upload_and_fails_the_copy(s3, settings):
    # GIVEN a split copy whose second chunk failed (source changed)
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=1))
    run.split("big.bin", body_of(2 * PART + 10), [(0, 1, 2), (1, 3, 3)], failed_chunk=1)
    pointer = run.write()
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN nothing is written to the target, no upload is left, and the row says why
    assert s3.client.list_objects_v2(Bucket=TARGET).get("KeyCount") == 0
    assert uploads(s3) == []
    assert summary.failed == 1
    row = report_rows(s3, run)[0]
    assert row["status"] == "failed"
    assert row["bytes"] == "0"
    assert "SourceChanged" in row["error"]


def test_missing_parts_abort_the_upload_with_a_verification_error_naming_them(s3, settings):
    # GIVEN a split copy whose chunk results all say copied, but part 2 never reached S3
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=1))
    run.split("big.bin", body_of(2 * PART + 10), [(0, 1, 3)], unsent_parts=(2,))
    pointer = run.write()
    # WHEN the finalizer runs
    finalize(pointer, settings, s3)
    # THEN the upload is aborted and the row names the missing part
    assert uploads(s3) == []
    row = report_rows(s3, run)[0]
    assert row["status"] == "failed"
    assert row["error"].startswith(f"VerificationError: upload of s3://{TARGET}/out/big.bin is missing parts 2 of 3")


def test_size_mismatch_and_missing_target_fail_verification(s3, settings):
    # GIVEN two copies reported done: one target was replaced by other bytes, one was deleted since
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=5))
    run.whole("a.txt", b"12345")
    run.whole("b.txt", b"abc")
    run.whole("c.txt", b"fine")
    s3.client.put_object(Bucket=TARGET, Key="out/a.txt", Body=b"1234")
    s3.client.delete_object(Bucket=TARGET, Key="out/b.txt")
    pointer = run.write()
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN both rows fail verification and the good one stays copied
    rows = by_source(report_rows(s3, run))
    assert rows[f"s3://{SOURCE}/a.txt"]["error"] == (
        f"VerificationError: s3://{TARGET}/out/a.txt has 4 bytes, expected 5")
    assert rows[f"s3://{SOURCE}/b.txt"]["error"] == (
        f"VerificationError: s3://{TARGET}/out/b.txt does not exist after the copy")
    assert rows[f"s3://{SOURCE}/c.txt"]["status"] == "copied"
    assert (summary.copied, summary.failed, summary.bytes) == (1, 2, 4)


def test_more_failures_than_allowed_fail_the_run_naming_count_and_report(s3, settings):
    # GIVEN a run with one failed object and max_failed_objects 0
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=0))
    run.whole("ok.txt", b"ok")
    run.whole("bad.txt", b"bad", outcome="failed", error="SourceChanged: etag differs")
    pointer = run.write()
    # WHEN the finalizer runs THEN it raises with the count, the limit and the report location
    with pytest.raises(TooManyFailedObjectsError) as caught:
        finalize(pointer, settings, s3)
    assert str(caught.value) == (
        f"1 object failed (max_failed_objects is 0); see s3://{MANIFESTS}/runs/r1/report.json")
    # AND the report was written first, saying the run failed
    summary = report_json(s3, run)
    assert summary["status"] == "failed"
    assert summary["failed_objects"] == [{"source": f"s3://{SOURCE}/bad.txt", "target": f"s3://{TARGET}/out/bad.txt",
                                          "error": "SourceChanged: etag differs"}]


def test_failures_within_the_limit_succeed_and_are_reported(s3, settings):
    # GIVEN the same run with max_failed_objects 1
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=1))
    run.whole("ok.txt", b"ok")
    run.whole("bad.txt", b"bad", outcome="failed", error="SourceChanged: etag differs")
    pointer = run.write()
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN the run succeeds and the failure is in the report
    assert (summary.status, summary.copied, summary.failed) == ("succeeded", 1, 1)
    assert summary.report_json == f"s3://{MANIFESTS}/runs/r1/report.json"
    assert report_json(s3, run)["counts"]["failed"] == 1


def test_a_payload_that_never_ran_fails_its_tasks_as_not_run(s3, settings):
    # GIVEN two payloads, and no checkpoint for payload 1; payload 0 stopped before its second task
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=10))
    run.whole("done.txt", b"x", payload=0)
    run.whole("unfinished.txt", b"y", payload=0, outcome="none")
    run.whole("never.txt", b"z", payload=1, outcome="none")
    pointer = run.write(ran={0})
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN both unfinished tasks are failed NotRun, with the reason
    rows = by_source(report_rows(s3, run))
    assert rows[f"s3://{SOURCE}/never.txt"]["error"] == "NotRun: payload 1 never ran (no checkpoint)"
    assert rows[f"s3://{SOURCE}/unfinished.txt"]["error"] == "NotRun: payload 0 did not finish this task"
    assert rows[f"s3://{SOURCE}/never.txt"]["attempts"] == "0"
    assert (summary.copied, summary.failed) == (1, 2)


def test_report_files_hold_every_row_and_the_summary(s3, settings):
    # GIVEN copies with awkward keys, a retried copy, a worker-skipped copy, plan-skipped and unmatched objects
    run = RunBuilder(s3, options=CopyOptions(report_unmatched=True))
    run.whole('dir/a, "quoted" ü.txt', b"awkward", retries=2)
    run.whole("same.txt", b"same", outcome="skipped", error="identical")
    run.skip("cold.bin", "restore first")
    run.skip("notes.doc", "unmatched")
    pointer = run.write()
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN report.csv has the columns in order and one row per copy or skipped object
    rows = report_rows(s3, run)
    assert tuple(rows[0].keys()) == COLUMNS
    assert [r["source"] for r in rows] == [f's3://{SOURCE}/dir/a, "quoted" ü.txt', f"s3://{SOURCE}/same.txt",
                                           f"s3://{SOURCE}/cold.bin"]
    assert rows[0]["target"] == f's3://{TARGET}/out/dir/a, "quoted" ü.txt'
    assert (rows[0]["retries"], rows[0]["attempts"]) == ("2", "3")
    assert (rows[2]["status"], rows[2]["error"]) == ("skipped", "restore first")
    # AND report.json summarises the run
    data = report_json(s3, run)
    assert data["run_id"] == "r1"
    assert data["status"] == "succeeded"
    assert data["started"] == run.created_at
    assert data["finished"] >= run.created_at
    assert data["counts"] == {"copied": 1, "skipped": 2, "failed": 0, "planned": 0}
    assert data["bytes_copied"] == len(b"awkward")
    assert data["retries"] == 2
    assert data["skipped_by_reason"] == {"identical": 1, "restore first": 1}
    assert data["unmatched"] == 1
    assert data["unmatched_objects"] == [f"s3://{SOURCE}/notes.doc"]
    assert data["totals"]["copies"] == 2
    assert data["report"] == {"json": summary.report_json, "csv": summary.report_csv}
    assert summary.report_csv == f"s3://{MANIFESTS}/runs/r1/report.csv"


def test_dry_run_reports_planned_rows_and_touches_nothing(s3, settings):
    # GIVEN a dry-run plan with one whole copy and one split copy (planned without an upload)
    run = RunBuilder(s3, options=CopyOptions(dry_run=True))
    run.whole("a.txt", b"abc", outcome="none")
    run.split("big.bin", body_of(PART + 1), [(0, 1, 1), (1, 2, 2)], planned_only=True)
    pointer = run.write(ran=set())
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN the report lists what would be copied, and nothing was copied
    assert summary.status == "dry-run"
    rows = report_rows(s3, run)
    assert [(r["status"], r["method"], r["bytes"], r["parts"]) for r in rows] == [
        ("planned", "copy", "3", "0"), ("planned", "multipart-split", str(PART + 1), "2")]
    assert report_json(s3, run)["counts"]["planned"] == 2
    assert s3.client.list_objects_v2(Bucket=TARGET).get("KeyCount") == 0


def test_a_whole_object_upload_left_open_by_a_worker_is_aborted(s3, settings):
    # GIVEN a checkpoint that still lists an open whole-object multipart upload
    run = RunBuilder(s3)
    task = run.whole("a.txt", b"abc")
    upload_id = s3.create_multipart_upload(TARGET, task.target_key, None, {})
    run.open_uploads[0].append((task.task_id, upload_id))
    pointer = run.write()
    # WHEN the finalizer runs THEN the upload is gone
    finalize(pointer, settings, s3)
    assert uploads(s3) == []


def test_a_retried_finalizer_finds_its_completed_upload_and_succeeds_again(s3, settings):
    # GIVEN a run whose finalizer already completed the split copy
    run = RunBuilder(s3)
    body = body_of(PART + 7)
    run.split("big.bin", body, [(0, 1, 2)], tags=(("k", "v"),))
    pointer = run.write()
    finalize(pointer, settings, s3)
    # WHEN Step Functions retries the finalizer
    summary = finalize(pointer, settings, s3)
    # THEN the copy is still reported copied and intact
    assert (summary.status, summary.copied, summary.failed) == ("succeeded", 1, 0)
    assert s3.client.get_object(Bucket=TARGET, Key="out/big.bin")["Body"].read() == body
    assert report_json(s3, run)["counts"]["copied"] == 1


def test_a_payload_whose_child_failed_reports_its_unfinished_tasks_with_the_recorded_error(s3, settings):
    # GIVEN payload 0 that finished one task and then failed for good (its worker raised a SettingsError), and
    # payload 1 that failed before any checkpoint (retries exhausted on a timeout), each recorded by the
    # child's RecordFailure state: the worker in record-failure mode, with the Step Functions error object
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=10))
    run.whole("done.txt", b"x", payload=0)
    run.whole("unfinished.txt", b"y", payload=0, outcome="none")
    run.whole("never.txt", b"z", payload=1, outcome="none")
    pointer = run.write(ran={0})
    lambda_cause = json.dumps({"errorType": "SettingsError", "errorMessage": "SFNCOPY_PART_SIZE is not a number",
                               "stackTrace": ["..."]})
    answers = [record_failure(PayloadTask(run_id="r1", manifest=run.loc, worker=w, payload=p), error, s3)
               for w, p, error in ((0, 0, {"Error": "SettingsError", "Cause": lambda_cause}),
                                   (1, 1, {"Error": "Sandbox.Timedout", "Cause": "Task timed out after 900 s"}))]
    assert answers == ["SettingsError: SFNCOPY_PART_SIZE is not a number",
                       "Sandbox.Timedout: Task timed out after 900 s"]
    # WHEN the finalizer runs
    summary = finalize(pointer, settings, s3)
    # THEN each unfinished task is failed with its payload's error, and the finished one still counts
    rows = by_source(report_rows(s3, run))
    assert rows[f"s3://{SOURCE}/unfinished.txt"]["error"] == "SettingsError: SFNCOPY_PART_SIZE is not a number"
    assert rows[f"s3://{SOURCE}/never.txt"]["error"] == "Sandbox.Timedout: Task timed out after 900 s"
    assert (rows[f"s3://{SOURCE}/never.txt"]["status"], rows[f"s3://{SOURCE}/never.txt"]["attempts"]) == ("failed", "0")
    assert rows[f"s3://{SOURCE}/done.txt"]["status"] == "copied"
    assert (summary.copied, summary.failed) == (1, 2)
