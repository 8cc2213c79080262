"""The restore stage on the emulator (bridge 14 holds restores until completed): request, wait, copy a restored
object in parts, and the finalizer's rows and counts (lambdas/restoring/)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from lambdas import finalizer
from lambdas.deadline import Deadline
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.planner import plan_run
from lambdas.restoring.stage import RestoreProgress, read_book, record_failure, restore_step
from lambdas.settings import Settings
from sfncopy.emulator import control

NOW = "2026-12-02T06:00:00Z"


def test_a_restored_object_is_copied_in_parts_once_its_restore_completes(emulator, emulator_client) -> None:
    # GIVEN a 12 MiB GLACIER object (above the 5 MiB copy cutoff: a multipart copy) and a plan with options.restore
    s3 = emulator_client("s3")
    for bucket in ("rs-src", "rs-dst", "rs-plans"):
        s3.create_bucket(Bucket=bucket)
    body = bytes(range(256)) * (12 * MiB // 256)
    s3.put_object(Bucket="rs-src", Key="in/big.bin", Body=body, ContentType="video/mp4", StorageClass="GLACIER",
                  Metadata={"origin": "cold"})
    gateway = S3Gateway(s3)
    settings = Settings(manifest_bucket="rs-plans", workers=1, restore_enabled=True, copy_cutoff=5 * MiB,
                        part_size=5 * MiB, restore_first_wait_seconds=7, restore_bound_seconds=3600)
    document = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "rs-src", "s3_path": "in/"},
                                   "target_s3_config": [{"file_types": ["bin"], "s3_bucket": "rs-dst",
                                                         "s3_path": "out/"}],
                                   "options": {"restore": {"tier": "Standard", "days": 2}}}}
    pointer = plan_run(document, "rs1", settings, gateway, NOW)
    progress = RestoreProgress("rs1", pointer.manifest)

    # WHEN the stage requests the restore
    first = restore_step(progress, settings, gateway, Deadline.never())

    # THEN the object is pending, S3 holds an ongoing restore for 2 days, and the first wait is the schedule's
    assert (first.done, first.pending, first.wait_seconds, first.polls) == (False, 1, 7, 0)
    assert s3.head_object(Bucket="rs-src", Key="in/big.bin")["Restore"] == 'ongoing-request="true"'
    assert [(r["key"], r["days"]) for r in control.restores(emulator.endpoint)["restores"]] == [("in/big.bin", 2)]

    # WHEN it looks again before the restore completed THEN nothing is copied and the wait has shrunk to the step
    second = restore_step(first, settings, gateway, Deadline.never())
    assert (second.done, second.pending, second.polls, second.wait_seconds) == (False, 1, 1, 3600 // 16)
    assert s3.list_objects_v2(Bucket="rs-dst").get("KeyCount") == 0

    # WHEN the restore completes and the stage looks again
    control.control_restores(emulator.endpoint, {"complete": "all"})
    third = restore_step(second, settings, gateway, Deadline.never())

    # THEN the object is copied in parts, byte for byte, with its headers, and the stage is done
    assert (third.done, third.pending, third.settled) == (True, 0, 1)
    copied = s3.get_object(Bucket="rs-dst", Key="out/big.bin")
    assert copied["Body"].read() == body
    assert copied["ContentType"] == "video/mp4" and copied["Metadata"] == {"origin": "cold"}
    [item] = read_book(gateway, pointer.manifest) or []
    assert item.how == "requested" and item.requested_at and item.completed_at and not item.uploads
    assert item.results[0]["method"] == "multipart" and item.results[0]["parts"] == 3
    assert not s3.list_multipart_uploads(Bucket="rs-dst").get("Uploads")

    # AND the finalizer reports the copy with its restore times and counts the restore
    summary = finalizer.finalize(pointer, settings, gateway)
    assert summary.copied == 1 and summary.failed == 0 and summary.skipped == 0
    rows = list(csv.DictReader(io.StringIO(_read(s3, summary.report_csv).decode())))
    assert [(r["target"], r["status"], r["restore_requested"], r["restore_completed"]) for r in rows] == [
        ("s3://rs-dst/out/big.bin", "copied", item.requested_at, item.completed_at)]
    report = json.loads(_read(s3, summary.report_json))
    assert report["restores"] == {"objects": 1, "requested": 1, "restored": 1, "copied": 1, "failed": 0,
                                  "how": {"requested": 1}}


def _read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_nothing_to_restore_is_done_at_once(emulator_client: Any) -> None:
    s3 = emulator_client("s3")
    for bucket in ("rs-src2", "rs-dst2", "rs-plans2"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="rs-src2", Key="a.txt", Body=b"a")
    gateway = S3Gateway(s3)
    settings = Settings(manifest_bucket="rs-plans2", workers=1, restore_enabled=True)
    document = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "rs-src2"},
                                   "target_s3_config": [{"file_types": ["*"], "s3_bucket": "rs-dst2"}],
                                   "options": {"restore": {"tier": "Bulk", "days": 1}}}}
    pointer = plan_run(document, "rs2", settings, gateway, NOW)
    answer = restore_step(RestoreProgress("rs2", pointer.manifest), settings, gateway, Deadline.never())
    assert (answer.done, answer.pending, answer.wait_seconds) == (True, 0, 0)


def test_a_restore_done_before_the_run_is_copied_at_once_and_a_failed_stage_fails_what_is_left(
        emulator, emulator_client) -> None:
    # GIVEN two GLACIER objects: one restored before the run, one whose restore the stage will request
    s3 = emulator_client("s3")
    for bucket in ("rs-src3", "rs-dst3", "rs-plans3"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="rs-src3", Key="warm.txt", Body=b"warm", StorageClass="GLACIER")
    s3.put_object(Bucket="rs-src3", Key="cold.txt", Body=b"cold", StorageClass="GLACIER")
    s3.restore_object(Bucket="rs-src3", Key="warm.txt", RestoreRequest={"Days": 1})
    control.control_restores(emulator.endpoint, {"complete": [{"bucket": "rs-src3", "key": "warm.txt"}]})
    gateway = S3Gateway(s3)
    settings = Settings(manifest_bucket="rs-plans3", workers=1, restore_enabled=True)
    document = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "rs-src3"},
                                   "target_s3_config": [{"file_types": ["txt"], "s3_bucket": "rs-dst3"}],
                                   "options": {"restore": {"tier": "Bulk", "days": 1}, "max_failed_objects": 5}}}
    pointer = plan_run(document, "rs3", settings, gateway, NOW)

    # WHEN the stage runs once
    first = restore_step(RestoreProgress("rs3", pointer.manifest), settings, gateway, Deadline.never())

    # THEN the restored object is copied at once, recognised from its Restore header, and the other waits
    assert (first.done, first.pending, first.settled) == (False, 1, 1)
    assert s3.get_object(Bucket="rs-dst3", Key="warm.txt")["Body"].read() == b"warm"
    book = {item.key: item for item in read_book(gateway, pointer.manifest) or []}
    assert (book["warm.txt"].how, book["warm.txt"].requested_at) == ("restored before the run", "")
    assert book["cold.txt"].how == "requested"

    # WHEN the branch then fails for good (its Catch calls the function in record-failure mode)
    failed = record_failure(first, {"Error": "Lambda.Unknown", "Cause": "the service is down"}, gateway)

    # THEN the unsettled object fails with that error in the report, and the copied one stays copied
    assert failed == 1
    summary = finalizer.finalize(pointer, settings, gateway)
    rows = {r["target"]: r for r in csv.DictReader(io.StringIO(_read(s3, summary.report_csv).decode()))}
    assert rows["s3://rs-dst3/warm.txt"]["status"] == "copied"
    assert rows["s3://rs-dst3/cold.txt"]["status"] == "failed"
    assert rows["s3://rs-dst3/cold.txt"]["error"] == "Lambda.Unknown: the service is down"
    assert rows["s3://rs-dst3/cold.txt"]["restore_requested"] != ""
