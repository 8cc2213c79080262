"""Cleanup on moto S3: this run's uploads aborted (and no other run's), failure.json written, causes readable."""

import json

import pytest
from botocore.exceptions import ClientError

from lambdas import limits, manifest
from lambdas.cleanup import clean_up
from lambdas.models import CopyOptions
from lambdas.settings import Settings
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

CONFIG_ERROR = ("1 problem in s3_copy_config: s3_copy_config.target_s3_config[0].s3_bucket: missing; "
                "add the target bucket name")


def lambda_error(error_type: str, message: str) -> dict:
    """The error object Step Functions passes to a Catch after a Lambda raised."""
    cause = json.dumps({"errorMessage": message, "errorType": error_type,
                        "stackTrace": ['  File "/var/task/lambdas/handlers.py", line 1, in plan\n']})
    return {"Error": error_type, "Cause": cause}


def failure_json(s3, run_id="r1"):
    return s3.get_json(MANIFESTS, f"runs/{run_id}/{manifest.FAILURE}")


def test_cleanup_aborts_this_runs_uploads_and_not_another_runs(s3, settings):
    # GIVEN run r1 failed with a split upload half done and a whole-object upload a worker left open
    run = RunBuilder(s3, run_id="r1")
    split = run.split("big.bin", body_of(2 * PART + 5), [(0, 1, 2), (1, 3, 3)], failed_chunk=1)
    task = run.whole("a.txt", b"abc", payload=1)
    open_id = s3.create_multipart_upload(TARGET, task.target_key, None, {})
    run.open_uploads[1].append((task.task_id, open_id))
    run.write()
    # AND another run on the same stack has uploads in the same bucket: one on a key of its own, one on
    # r1's key that started before r1 was planned (moto dates every upload 2010-11-10)
    other_key = s3.create_multipart_upload(TARGET, "out/other-run.bin", None, {})
    other_same_key = s3.create_multipart_upload(TARGET, "out/big.bin", None, {})
    # WHEN cleanup runs for r1
    answer = clean_up("r1", lambda_error("VerificationError", "upload broken"), settings, s3)
    # THEN r1's two uploads are aborted and the other run's are untouched
    assert sorted(uploads(s3)) == sorted([("out/other-run.bin", other_key), ("out/big.bin", other_same_key)])
    assert answer["aborted_uploads"] == 2
    aborted = {a["upload_id"] for a in failure_json(s3)["aborted_uploads"]}
    assert aborted == {split.upload_id, open_id}
    # AND the answer names the error and the failure report
    assert answer == {
        "run_id": "r1", "error": "VerificationError", "aborted_uploads": 2,
        "cause": f"upload broken (failure report: s3://{MANIFESTS}/runs/r1/failure.json)",
        "failure_report": f"s3://{MANIFESTS}/runs/r1/failure.json",
        # AND, for the run's notification, the cause again (short enough) and the counts and bytes so far
        "notified_cause": f"upload broken (failure report: s3://{MANIFESTS}/runs/r1/failure.json)",
        "partial": {"counts": {"copied": 1, "failed": 1, "planned": 0, "skipped": 0}, "bytes_copied": 3},
    }


def test_a_long_cause_is_cut_for_the_notification_only(s3, settings):
    # GIVEN a failure before any plan, whose cause is longer than a notification carries
    long = "x" * (2 * limits.MAX_NOTIFIED_CAUSE_CHARACTERS)
    # WHEN cleanup runs
    answer = clean_up("r9", {"Error": "ConfigError", "Cause": long}, settings, s3)
    # THEN the Fail state's cause is whole, the notification's cut and marked, and there is nothing done yet
    assert answer["cause"].startswith(long)
    assert len(answer["notified_cause"]) == limits.MAX_NOTIFIED_CAUSE_CHARACTERS
    assert answer["notified_cause"].endswith(" [...]") and long.startswith(answer["notified_cause"][:-6])
    assert answer["partial"] is None


def test_safety_net_aborts_an_unrecorded_upload_on_this_runs_key_started_after_the_plan(s3, settings):
    # GIVEN a run planned before the upload dates moto gives, with an upload on one of its keys that no
    # checkpoint recorded (the worker died between CreateMultipartUpload and its checkpoint)
    run = RunBuilder(s3, run_id="r2", created_at="2001-01-01T00:00:00Z")
    task = run.whole("a.txt", b"abc", outcome="none")
    run.write()
    lost = s3.create_multipart_upload(TARGET, task.target_key, None, {})
    elsewhere = s3.create_multipart_upload(TARGET, "out/not-planned.bin", None, {})
    # WHEN cleanup runs
    answer = clean_up("r2", {"Error": "States.Timeout", "Cause": "worker timed out"}, settings, s3)
    # THEN the upload on the run's key is aborted, the one on a key it did not plan is left alone
    assert uploads(s3) == [("out/not-planned.bin", elsewhere)]
    assert failure_json(s3, "r2")["aborted_uploads"] == [
        {"bucket": TARGET, "key": "out/a.txt", "upload_id": lost}]
    assert answer["cause"].startswith("worker timed out (failure report: ")


def test_cleanup_without_a_plan_keeps_the_config_error_that_names_the_field(s3, settings):
    # GIVEN the planner failed on a bad config before writing a plan
    error = lambda_error("ConfigError", CONFIG_ERROR)
    # WHEN cleanup runs
    answer = clean_up("r3", error, settings, s3)
    # THEN the cause is the planner's message, intact, and failure.json is written
    assert answer["error"] == "ConfigError"
    assert answer["cause"] == f"{CONFIG_ERROR} (failure report: s3://{MANIFESTS}/runs/r3/failure.json)"
    assert answer["aborted_uploads"] == 0
    failure = failure_json(s3, "r3")
    assert failure["cause"] == CONFIG_ERROR
    assert failure["error"] == "ConfigError"
    assert failure["plan"] is None
    assert failure["partial_report"] is None
    assert json.loads(failure["raw_cause"])["errorType"] == "ConfigError"


def test_cleanup_writes_a_partial_report_of_what_finished(s3, settings):
    # GIVEN a run that copied one object and failed another before the finalizer ran
    run = RunBuilder(s3, run_id="r4", options=CopyOptions(max_failed_objects=0))
    run.whole("ok.txt", b"ok")
    run.whole("bad.txt", b"bad", outcome="failed", error="AccessDenied: no")
    run.whole("later.txt", b"later", payload=1, outcome="none")
    run.write(ran={0})
    # WHEN cleanup runs after the finalizer failed
    clean_up("r4", lambda_error("TooManyFailedObjectsError", "1 object failed"), settings, s3)
    # THEN failure.json holds the counts of whatever finished, and the failed object
    partial = failure_json(s3, "r4")["partial_report"]
    assert partial["counts"] == {"copied": 1, "skipped": 0, "failed": 1, "planned": 0}
    assert partial["bytes_copied"] == 2
    assert partial["failed_objects"] == [
        {"source": f"s3://{SOURCE}/bad.txt", "target": f"s3://{TARGET}/out/bad.txt", "error": "AccessDenied: no"}]


def test_cleanup_raises_when_the_manifest_bucket_cannot_be_written(s3):
    # GIVEN settings that point at a manifest bucket that does not exist
    settings = Settings(manifest_bucket="no-such-manifest-bucket")
    # WHEN cleanup runs THEN the S3 failure reaches Step Functions
    with pytest.raises(ClientError):
        clean_up("r5", {"Error": "States.Runtime", "Cause": "boom"}, settings, s3)
