"""The streamed finalizer on moto S3: the report in parts with a manifest, report.csv as a multipart upload,
verification shard by shard, continuation from a cursor (direct and through the handler), and no upload left
open by a failing finalizer. Parts and S3's part minimum are made tiny so a handful of objects cuts several."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import replace
from typing import Any

import pytest

from lambdas import finalizer, handlers, manifest, verification
from lambdas.cleanup import clean_up
from lambdas.deadline import Deadline
from lambdas.errors import TooManyFailedObjectsError, TransientError
from lambdas.finalizer import finalize, finalize_step
from lambdas.finalizer_state import FIRST, FinalizeCursor, state_key
from lambdas.gateway import S3Gateway
from lambdas.models import CopyOptions, PlanPointer, RunSummary, WorkItem
from lambdas.report import csv_header
from lambdas.report_files import PARTS_MANIFEST, ReportLayout, part_key
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

# 3 rows a part; report.csv's upload parts may be any size (moto's minimum is patched to match).
SMALL = ReportLayout(part_rows=3, part_max_bytes=1 << 20, min_part_bytes=1, single_csv_max_rows=1000)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    yield from moto_gateway(monkeypatch)


def a_run(s3: S3Gateway, options: CopyOptions | None = None, run_id: str = "r1") -> tuple[RunBuilder, PlanPointer]:
    """Four payloads of whole copies (one failed), a split copy across two of them, skipped and unmatched."""
    run = RunBuilder(s3, run_id=run_id, options=options or CopyOptions(max_failed_objects=5, report_unmatched=True))
    for payload in range(4):
        for n in range(3):
            run.whole(f"p{payload}/f{n}.txt", body_of(10 + n, seed=payload), payload=payload)
    run.whole("p3/bad.txt", b"bad", payload=3, outcome="failed", error="SourceChanged: etag differs")
    run.split("big/movie.mp4", body_of(PART + 99), [(1, 1, 1), (2, 2, 2)])
    for n in range(4):
        run.skip(f"cold/{n}.bin", "restore first")
    run.skip("notes.doc", "unmatched")
    return run, run.write(workers=1)  # one worker: its payload ids are consecutive, as a pointer's must be


def read(s3: S3Gateway, key: str) -> bytes:
    return bytes(s3.client.get_object(Bucket=MANIFESTS, Key=key)["Body"].read())


def manifest_uploads(s3: S3Gateway) -> list[tuple[str, str]]:
    return uploads(s3, MANIFESTS)


def outputs(s3: S3Gateway, run: RunBuilder) -> dict[str, Any]:
    """The report's files, without what depends on when they were written."""
    parts = json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))
    summary = json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))
    for moment in ("finished", "timings", "verification"):
        summary.pop(moment)
    return {
        "csv": read(s3, manifest.key(run.loc, manifest.REPORT_CSV)),
        "parts": {e["Key"]: read(s3, e["Key"]) for e in parts["Results"]},
        "manifest": {k: v for k, v in parts.items() if k != "ReportCreationDate"},
        "summary": summary,
    }


def test_a_run_of_several_payloads_is_reported_in_parts_with_a_manifest_totals_and_report_csv(s3):
    # GIVEN four payloads of copies, a split copy, skipped and unmatched objects (14 copies + 4 skipped rows)
    run, pointer = a_run(s3)
    # WHEN the finalizer runs with parts of 3 rows
    summary = finalize(pointer, SETTINGS, s3, SMALL)
    # THEN the parts hold every row, 3 at a time, and the manifest names each with its rows, bytes and MD5
    parts = json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))
    assert [e["Key"] for e in parts["Results"]] == [part_key(run.loc, i) for i in range(6)]
    assert [e["Rows"] for e in parts["Results"]] == [3, 3, 3, 3, 3, 3]
    assert parts["Rows"] == 18
    for entry in parts["Results"]:
        body = read(s3, entry["Key"])
        assert (entry["Bucket"], entry["Bytes"], entry["MD5Checksum"]) == (
            MANIFESTS, len(body), hashlib.md5(body).hexdigest())
    # AND report.csv is the header and the parts, byte for byte, sent as a multipart upload now completed
    report_csv = read(s3, manifest.key(run.loc, manifest.REPORT_CSV))
    assert report_csv == csv_header() + b"".join(read(s3, e["Key"]) for e in parts["Results"])
    head = s3.client.head_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, manifest.REPORT_CSV))
    assert head["ETag"].endswith('-6"') and head["ContentType"] == "text/csv; charset=utf-8"
    assert manifest_uploads(s3) == [] and uploads(s3) == []
    # AND the rows come payload by payload, then the split copy, then the skipped objects
    rows = list(csv.DictReader(io.StringIO(report_csv.decode(), newline="")))
    assert [r["source"].rsplit("/", 2)[-2] for r in rows[:13]] == ["p0"] * 3 + ["p1"] * 3 + ["p2"] * 3 + ["p3"] * 4
    assert rows[13]["method"] == "multipart-split" and rows[13]["status"] == "copied"
    assert [r["status"] for r in rows[14:]] == ["skipped"] * 4
    # AND report.json has the totals, where the parts are, and how verification went
    data = json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))
    assert data["counts"] == {"copied": 13, "skipped": 4, "failed": 1, "planned": 0}
    assert data["bytes_copied"] == summary.bytes == sum(10 + n for n in range(3)) * 4 + PART + 99
    assert data["skipped_by_reason"] == {"restore first": 4}
    assert data["failed_objects"] == [{"source": f"s3://{SOURCE}/p3/bad.txt", "target": f"s3://{TARGET}/out/p3/bad.txt",
                                       "error": "SourceChanged: etag differs"}]
    assert data["unmatched_objects"] == [f"s3://{SOURCE}/notes.doc"]
    assert data["parts"] == {"manifest": f"s3://{MANIFESTS}/runs/r1/report/manifest.json", "count": 6, "rows": 18}
    assert data["report"] == {"json": summary.report_json, "csv": f"s3://{MANIFESTS}/runs/r1/report.csv"}
    assert data["timings"]["invocations"] == 1
    assert data["verification"]["heads"] == 13  # few keys a payload: a HEAD each
    assert (summary.copied, summary.failed, summary.skipped) == (13, 1, 4)


def test_past_its_row_limit_report_csv_is_left_out_and_the_parts_are_the_report(s3):
    # GIVEN a run with more rows than report.csv may hold
    run, pointer = a_run(s3)
    layout = ReportLayout(part_rows=3, part_max_bytes=1 << 20, min_part_bytes=1, single_csv_max_rows=10)
    # WHEN the finalizer runs
    summary = finalize(pointer, SETTINGS, s3, layout)
    # THEN no report.csv, and the summary says so; the parts and their manifest hold every row
    assert summary.report_csv == ""
    assert "Contents" not in s3.client.list_objects_v2(Bucket=MANIFESTS, Prefix=manifest.key(run.loc, "report.csv"))
    assert json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Rows"] == 18
    assert manifest_uploads(s3) == []


def test_more_rows_than_planned_give_up_report_csv_midway_and_abort_its_upload(s3):
    # GIVEN a limit the plan's count (14 copies + 4 skipped = 18) meets, and a 19th row the plan did not count
    run, pointer = a_run(s3)
    layout = ReportLayout(part_rows=3, part_max_bytes=1 << 20, min_part_bytes=1, single_csv_max_rows=18)
    skipped_key = manifest.key(run.loc, manifest.SKIPPED)
    extra = {"source_bucket": SOURCE, "source_key": "late.bin", "size": 1, "reason": "restore first"}
    s3.put_json(MANIFESTS, skipped_key, [*s3.get_json(MANIFESTS, skipped_key), extra])
    # WHEN the finalizer runs THEN report.csv is left out, its upload aborted; the parts hold the 19 rows
    summary = finalize(pointer, SETTINGS, s3, layout)
    assert summary.report_csv == "" and manifest_uploads(s3) == []
    assert "Contents" not in s3.client.list_objects_v2(Bucket=MANIFESTS, Prefix=manifest.key(run.loc, "report.csv"))
    assert json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Rows"] == 19


def test_a_size_mismatch_is_caught_by_a_listing_of_just_its_payloads_keys(s3, monkeypatch):
    # GIVEN listing pays from 2 keys (so a handful of objects is a dense shard), and two payloads in two folders
    monkeypatch.setattr(verification, "LIST_MIN_ANSWERED", 2)
    monkeypatch.setattr(verification, "HEAD_ONLY_BELOW", 2)
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=5))
    for n in range(3):
        run.whole(f"a/{n}.txt", b"aaaa", payload=0)
        run.whole(f"b/{n}.txt", b"bbbb", payload=1)
    s3.client.put_object(Bucket=TARGET, Key="out/b/1.txt", Body=b"changed since")
    s3.client.delete_object(Bucket=TARGET, Key="out/a/2.txt")
    pointer = run.write()
    listed: list[dict[str, Any]] = []
    s3.client.meta.events.register("provide-client-params.s3.ListObjectsV2",
                                  lambda params, **_: listed.append(dict(params)))
    # WHEN the finalizer runs
    summary = finalize(pointer, SETTINGS, s3, SMALL)
    # THEN each payload's rows were checked against a listing of its own folder, starting at its first key
    assert [(p["Bucket"], p["Prefix"], p.get("StartAfter")) for p in listed if p["Bucket"] == TARGET] == [
        (TARGET, "out/a/", "out/a/0.tx"), (TARGET, "out/b/", "out/b/0.tx")]
    # AND the wrong and the missing targets failed, in their own payloads
    rows = {r["source"]: r for r in csv.DictReader(io.StringIO(
        read(s3, manifest.key(run.loc, manifest.REPORT_CSV)).decode(), newline=""))}
    assert rows[f"s3://{SOURCE}/b/1.txt"]["error"] == (
        f"VerificationError: s3://{TARGET}/out/b/1.txt has 13 bytes, expected 4")
    assert rows[f"s3://{SOURCE}/a/2.txt"]["error"] == (
        f"VerificationError: s3://{TARGET}/out/a/2.txt does not exist after the copy")
    assert (summary.copied, summary.failed) == (4, 2)


def test_a_size_mismatch_in_a_scattered_payload_is_caught_by_a_head(s3):
    # GIVEN a payload whose few keys go straight to HEADs, one target resized
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=5))
    run.whole("x.txt", b"12345", payload=0)
    run.whole("y.txt", b"12345", payload=1)
    s3.client.put_object(Bucket=TARGET, Key="out/y.txt", Body=b"1")
    pointer = run.write()
    # WHEN the finalizer runs THEN the resized one fails, the other is copied
    summary = finalize(pointer, SETTINGS, s3)
    data = json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))
    assert data["failed_objects"][0]["error"] == f"VerificationError: s3://{TARGET}/out/y.txt has 1 bytes, expected 5"
    assert (summary.copied, summary.failed) == (1, 1)


def test_the_continuation_resumes_from_its_cursor_and_writes_the_same_report(s3, monkeypatch):
    # GIVEN a run finalized in one invocation
    run, pointer = a_run(s3)
    finalize(pointer, SETTINGS, s3, SMALL)
    whole = outputs(s3, run)
    # WHEN it is finalized again with a deadline always near, a split and a skipped object per invocation
    monkeypatch.setattr(finalizer, "SPLIT_BATCH", 1)
    monkeypatch.setattr(finalizer, "SKIPPED_BATCH", 1)
    cursor, cursors = None, []
    while True:
        outcome = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), cursor, SMALL)
        if isinstance(outcome, RunSummary):
            break
        cursor = outcome
        cursors.append((cursor.step, cursor.phase, cursor.position))
    # THEN it went payload by payload, then to the split, then through skipped.json by byte offsets
    assert cursors[:5] == [(1, "payloads", 1), (2, "payloads", 2), (3, "payloads", 3), (4, "splits", 0),
                           (5, "skipped", 0)]
    offsets = [position for _, phase, position in cursors[5:]]
    assert len(offsets) == 5 and offsets == sorted(offsets) and offsets[0] > 0  # 4 skipped, 1 unmatched
    assert {phase for _, phase, _ in cursors[5:]} == {"skipped"}
    # AND the report is the one the single invocation wrote, file for file
    again = outputs(s3, run)
    assert again == whole
    summary = json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))
    assert summary["timings"]["invocations"] == len(cursors) + 1
    # AND no upload is left open, and each step's state is in the manifest location
    assert manifest_uploads(s3) == []
    assert s3.get_json_or_none(MANIFESTS, state_key(run.loc, len(cursors))) is not None


class Context:
    """Lambda's context, always near its deadline."""

    def get_remaining_time_in_millis(self) -> int:
        return 0


def test_the_handler_answers_done_false_with_a_cursor_until_the_summary(s3, monkeypatch):
    # GIVEN the finalizer's Lambda environment and a run, and the first event of the state machine's loop
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    _, pointer = a_run(s3)
    event: dict[str, Any] = {**pointer.to_dict(), "cursor": FIRST.to_dict()}
    # WHEN the state machine's loop calls the handler with its own answer until it has no cursor
    answers = []
    while True:
        answer = handlers.finalize(event, Context())
        answers.append(answer)
        if "cursor" not in answer:
            break
        event = answer
    # THEN every answer but the last is the planner's pointer with done false and a cursor
    assert len(answers) > 2
    for answer in answers[:-1]:
        assert answer["done"] is False
        assert FinalizeCursor.from_event(answer) is not None
        assert {k: v for k, v in answer.items() if k not in ("done", "cursor")} == pointer.to_dict()
        assert answer["cursor"]["step"] > 0
    # AND the last is the RunSummary, as a run that fits one invocation answers
    assert RunSummary.from_dict(answers[-1]).to_dict() == answers[-1]
    assert answers[-1]["copied"] == 13 and "done" not in answers[-1]


def test_a_run_that_fits_one_invocation_is_one_invocation_with_the_same_summary(s3, monkeypatch):
    # GIVEN the state machine's first event, and time enough
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    _, pointer = a_run(s3)

    class Plenty:
        def get_remaining_time_in_millis(self) -> int:
            return 900_000

    # WHEN the handler runs THEN it answers the RunSummary at once, nothing else
    answer = handlers.finalize({**pointer.to_dict(), "cursor": FIRST.to_dict()}, Plenty())
    assert set(answer) == set(RunSummary.__dataclass_fields__)
    assert answer["report_csv"] == f"s3://{MANIFESTS}/runs/r1/report.csv"


def test_an_event_without_a_cursor_is_finalized_in_one_invocation_whatever_the_deadline(s3, monkeypatch):
    # GIVEN a state machine without the Finalize loop (its event has no cursor), and a deadline always near
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    _, pointer = a_run(s3)
    # WHEN the handler runs THEN it finishes the run in this invocation: that caller could not call again
    answer = handlers.finalize(pointer.to_dict(), Context())
    assert set(answer) == set(RunSummary.__dataclass_fields__) and answer["copied"] == 13


class FailingGateway(S3Gateway):
    """moto's S3, but reading payload ``fail_payload``'s file raises ``error``."""

    def __init__(self, client: Any, fail_key: str, error: Exception) -> None:
        super().__init__(client)
        self.fail_key, self.error = fail_key, error

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        if key == self.fail_key:
            raise self.error
        return super().get_json_or_none(bucket, key)


def test_a_failing_finalizer_leaves_no_multipart_upload(s3):
    # GIVEN a run whose third payload cannot be read, after report.csv's upload has begun
    run, pointer = a_run(s3)
    failing = FailingGateway(s3.client, manifest.payload_key(run.loc, 3), RuntimeError("injected"))
    # WHEN the finalizer runs THEN it fails with that error
    with pytest.raises(RuntimeError, match="injected"):
        finalize(pointer, SETTINGS, failing, SMALL)
    # AND report.csv's upload was aborted (it had begun: the first two parts were cut)
    assert s3.client.list_objects_v2(Bucket=MANIFESTS, Prefix=part_key(run.loc, 1))["KeyCount"] == 1
    assert manifest_uploads(s3) == []


def test_a_retried_error_keeps_the_upload_a_resumed_invocation_continues_and_the_retry_finishes_it(s3):
    # GIVEN a finalization that stopped after two payloads (report.csv's upload begun and saved in its state)
    run, pointer = a_run(s3)
    cursor = None
    for _ in range(2):
        outcome = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), cursor, SMALL)
        assert isinstance(outcome, FinalizeCursor)
        cursor = outcome
    (upload,) = manifest_uploads(s3)
    # WHEN the next invocation fails with an error Step Functions retries
    failing = FailingGateway(s3.client, manifest.payload_key(run.loc, 3), TransientError("SlowDown after retries"))
    with pytest.raises(TransientError):
        finalize_step(pointer, SETTINGS, failing, Deadline.never(), cursor, SMALL)
    # THEN the upload is still open for the retry, which finishes the same report as one invocation would
    assert manifest_uploads(s3) == [upload]
    assert isinstance(finalize_step(pointer, SETTINGS, s3, Deadline.never(), cursor, SMALL), RunSummary)
    assert manifest_uploads(s3) == []
    resumed = outputs(s3, run)
    finalize(pointer, SETTINGS, s3, SMALL)
    assert outputs(s3, run) == resumed


def test_a_fatal_error_in_a_resumed_invocation_aborts_the_upload(s3):
    run, pointer = a_run(s3)
    outcome = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), None, SMALL)
    outcome = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), outcome, SMALL)  # type: ignore[arg-type]
    assert isinstance(outcome, FinalizeCursor) and len(manifest_uploads(s3)) == 1
    failing = FailingGateway(s3.client, manifest.payload_key(run.loc, 3), RuntimeError("injected"))
    with pytest.raises(RuntimeError):
        finalize_step(pointer, SETTINGS, failing, Deadline.never(), outcome, SMALL)
    assert manifest_uploads(s3) == []


def test_cleanup_aborts_the_upload_a_stopped_finalizer_left_open(s3):
    # GIVEN a finalization that stopped between invocations (its upload open) and then the execution failed
    run, pointer = a_run(s3)
    cursor = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), None, SMALL)
    cursor = finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), cursor, SMALL)  # type: ignore[arg-type]
    (upload,) = manifest_uploads(s3)
    # WHEN cleanup runs THEN the upload is aborted and failure.json lists it
    answer = clean_up("r1", {"Error": "States.Timeout", "Cause": "the finalizer timed out"}, SETTINGS, s3)
    assert manifest_uploads(s3) == []
    failure = s3.get_json(MANIFESTS, manifest.key(run.loc, manifest.FAILURE))
    assert {"bucket": MANIFESTS, "key": manifest.key(run.loc, "report.csv"), "upload_id": upload[1]} in \
        failure["aborted_uploads"]
    assert answer["aborted_uploads"] == len(failure["aborted_uploads"])


def test_too_many_failures_fail_the_run_after_the_whole_report_is_written(s3):
    # GIVEN a run with one failed object and max_failed_objects 0
    run, pointer = a_run(s3, CopyOptions(max_failed_objects=0))
    # WHEN the finalizer runs THEN it raises, with every file written and no upload open
    with pytest.raises(TooManyFailedObjectsError):
        finalize(pointer, SETTINGS, s3, SMALL)
    assert json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Rows"] == 18
    assert read(s3, manifest.key(run.loc, manifest.REPORT_CSV)).startswith(csv_header())
    assert manifest_uploads(s3) == []


def test_split_copies_are_settled_across_invocations_one_batch_at_a_time(s3, monkeypatch):
    # GIVEN two split copies (one with a failed chunk), settled one per invocation
    monkeypatch.setattr(finalizer, "SPLIT_BATCH", 1)
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=1))
    good = body_of(PART + 5)
    run.split("a.bin", good, [(0, 1, 1), (1, 2, 2)])
    run.split("b.bin", body_of(PART + 6), [(0, 1, 1), (1, 2, 2)], failed_chunk=1)
    pointer = run.write(workers=1)
    cursor, phases = None, []
    while not isinstance(cursor := finalize_step(pointer, SETTINGS, s3, Deadline(lambda: 0, 1.0), cursor, SMALL),
                         RunSummary):
        phases.append((cursor.phase, cursor.position))
    # THEN the first split was settled in one invocation and the second in the next
    assert ("splits", 1) in phases
    assert (cursor.copied, cursor.failed) == (1, 1)
    # AND the good one is complete and intact, the failed one aborted; no upload is left anywhere
    assert s3.client.get_object(Bucket=TARGET, Key="out/a.bin")["Body"].read() == good
    assert uploads(s3) == [] and manifest_uploads(s3) == []


def as_sharded_layout(s3: S3Gateway, run: RunBuilder) -> None:
    """Lay the run's plan out as sharded planning publishes it: each payload file where a shard wrote it (a
    segment, carrying the shard's numbers, not the run's), the workers' lists naming those keys, and the skipped
    objects in several shard files the index names (no plan/payloads/, no plan/skipped.json)."""
    loc = run.loc
    plan = manifest.read_plan(s3, loc)
    lists = []
    for worker, ids in enumerate(plan.worker_payloads):
        items = []
        for pid in ids:
            payload = manifest.read_payload(s3, loc, pid)
            key = f"{loc.prefix}plan/sharding/shards/{pid:06d}/segments/000000.json"
            s3.put_bytes(MANIFESTS, key, manifest.encode_payload(replace(payload, payload_id=0, worker=-1)), "x")
            s3.client.delete_object(Bucket=MANIFESTS, Key=manifest.payload_key(loc, pid))
            items.append(WorkItem(pid, worker, key))
        lists.append(items)
    manifest.write_worker_lists(s3, loc, lists)
    rows = s3.get_json(MANIFESTS, manifest.key(loc, manifest.SKIPPED))
    s3.client.delete_object(Bucket=MANIFESTS, Key=manifest.key(loc, manifest.SKIPPED))
    names = []
    for shard, first in enumerate(range(0, len(rows), 2)):
        names.append(f"plan/sharding/shards/{shard:06d}/skipped/000000.json")
        s3.put_json(MANIFESTS, loc.prefix + names[-1], rows[first:first + 2])
    manifest.write_index(s3, loc, replace(plan, skipped_files=tuple(names)))


@pytest.mark.parametrize("near", [False, True], ids=["one invocation", "continuations"])
def test_a_sharded_layout_is_reported_as_the_single_one_reading_its_files_where_the_shards_wrote_them(
        s3, monkeypatch, near):
    # GIVEN a run finalized from the single planner's layout
    run, pointer = a_run(s3)
    finalize(pointer, SETTINGS, s3, SMALL)
    whole = outputs(s3, run)
    # AND the same run laid out as sharded planning publishes it (segments, three skipped files)
    as_sharded_layout(s3, run)
    assert len(manifest.read_plan(s3, run.loc).skipped_files) == 3
    # WHEN it is finalized again, in one invocation or with a deadline always near (one skipped row each)
    monkeypatch.setattr(finalizer, "SKIPPED_BATCH", 1)
    cursor, phases = None, []
    while True:
        deadline = Deadline(lambda: 0, 1.0) if near else Deadline.never()
        outcome = finalize_step(pointer, SETTINGS, s3, deadline, cursor, SMALL)
        if isinstance(outcome, RunSummary):
            break
        cursor = outcome
        phases.append(cursor.phase)
    # THEN the report is the same, file for file: every payload read at its segment under its run-wide id,
    # every skipped row once, from the three files in order (across invocations when they stop between)
    assert outputs(s3, run) == whole
    assert (phases.count("skipped") >= 5) if near else phases == []
