"""The finalizer's fan-out on moto S3 (lambdas/finalize_shards.py): the run cut into finalize shards, each shard
finalized on its own (continuing across invocations when it must), and the merge that settles the split copies
and writes the end-of-run files. The fan-out must report exactly what one chain reports; a shard that left no
summary fails the run by name; report.csv joined from the shards' parts leaves no upload open."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from lambdas import finalize_shards, finalizer, handlers, manifest
from lambdas.cleanup import clean_up
from lambdas.deadline import Deadline
from lambdas.errors import FinalizeShardError, TooManyFailedObjectsError
from lambdas.finalize_shards import ShardSpec
from lambdas.finalizer import finalize, finalize_fanned_out, merge_step, plan_finalize, shard_step
from lambdas.finalizer_state import FIRST, csv_upload_key
from lambdas.gateway import S3Gateway
from lambdas.models import CopyOptions, RunSummary
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
from tests.functional.test_finalizer_streaming import SMALL, a_run, as_sharded_layout, outputs, read

ONE_PAYLOAD = 1  # shard_rows: every payload is a shard of its own (the run's payloads hold a few rows each)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    yield from moto_gateway(monkeypatch)


def csv_rows(s3: S3Gateway, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read(s3, key).decode(), newline="")))


def without_part_cuts(files: dict[str, Any]) -> dict[str, Any]:
    """The report's files, but not where its parts are cut (each shard cuts its own)."""
    return {"csv": files["csv"], "part_bodies": b"".join(files["parts"].values()),
            "manifest": {k: v for k, v in files["manifest"].items() if k != "Results"},
            "summary": {k: v for k, v in files["summary"].items() if k != "parts"}}


def test_the_shards_cover_the_payloads_in_order_then_each_skipped_file():
    # GIVEN 10 payloads of about 1,000 rows and one skipped file
    # WHEN shards aim at 3,000 rows THEN payloads go 3 to a shard, in order, and the skipped file gets its own
    shards = finalize_shards.plan_shards(10, 10_000, ["runs/r1/plan/skipped.json"], shard_rows=3_000)
    assert [(s.kind, s.first, s.count) for s in shards[:-1]] == [
        ("payloads", 0, 3), ("payloads", 3, 3), ("payloads", 6, 3), ("payloads", 9, 1)]
    assert shards[-1] == ShardSpec(4, "skipped", key="runs/r1/plan/skipped.json")
    # AND never more shards than the merge reads: past MAX_SHARDS the shards grow instead
    many = finalize_shards.plan_shards(1_000_000, 1_000_000_000, ["s"], shard_rows=1, max_shards=1_000)
    assert len(many) <= 1_000 and len({s.count for s in many[:-2]}) == 1
    assert many[-2].first + many[-2].count == 1_000_000
    # AND a run without payloads (an empty source) has its skipped objects' shard only
    assert finalize_shards.plan_shards(0, 0, ["s"]) == [ShardSpec(0, "skipped", key="s")]
    # AND a Map item reads back as it was written
    assert [ShardSpec.from_dict(s.to_dict()) for s in shards] == shards


def test_the_fan_out_reports_exactly_what_one_chain_reports(s3):
    # GIVEN four payloads (one failed copy), a split copy whose chunks are in two payloads, skipped and unmatched
    run, pointer = a_run(s3)
    # WHEN the run is finalized by one chain, then again in a fan-out of one shard per payload
    chain = finalize(pointer, SETTINGS, s3, SMALL)
    one_chain = outputs(s3, run)
    fanned = finalize_fanned_out(pointer, SETTINGS, s3, SMALL, shard_rows=ONE_PAYLOAD)
    fanned_out = outputs(s3, run)
    # THEN report.csv, the parts' rows, report.json's totals and the summary are the same
    assert fanned == chain
    assert without_part_cuts(fanned_out) == without_part_cuts(one_chain)
    # AND the parts are the shards': four payload shards, the merge's split copies, then the skipped file's
    parts = json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Results"]
    assert [e["Key"] for e in parts] == [
        part_key(run.loc, 0, "00000"), part_key(run.loc, 0, "00001"), part_key(run.loc, 0, "00002"),
        part_key(run.loc, 0, "00003"), part_key(run.loc, 1, "00003"), part_key(run.loc, 0, "splits"),
        part_key(run.loc, 0, "00004"), part_key(run.loc, 1, "00004")]
    # AND the split copy was completed from chunks two shards saw
    rows = csv_rows(s3, manifest.key(run.loc, manifest.REPORT_CSV))
    (split,) = [r for r in rows if r["method"] == "multipart-split"]
    assert (split["status"], split["bytes"]) == ("copied", str(PART + 99))
    # AND report.json says how the finalization ran, and no upload is left open
    timings = json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))["timings"]
    assert (timings["finalize_shards"], timings["merge_invocations"], timings["invocations"]) == (5, 1, 6)
    assert uploads(s3, MANIFESTS) == [] and uploads(s3) == []



def test_the_fan_out_reads_a_sharded_layout_where_the_shards_wrote_it(s3):
    # GIVEN a run finalized by one chain from the single planner's layout
    run, pointer = a_run(s3)
    chain = finalize(pointer, SETTINGS, s3, SMALL)
    one_chain = outputs(s3, run)
    # AND the same run laid out as sharded planning publishes it (payloads at their segments, three skipped files)
    as_sharded_layout(s3, run)
    # WHEN it is finalized in a fan-out of one shard per payload
    fanned = finalize_fanned_out(pointer, SETTINGS, s3, SMALL, shard_rows=ONE_PAYLOAD)
    # THEN each skipped file is a finalize shard of its own, and the report is the one chain's
    specs = [ShardSpec.from_dict(item) for item in s3.get_json(MANIFESTS, finalize_shards.shards_key(run.loc))]
    assert [spec.key for spec in specs if spec.kind == "skipped"] == manifest.skipped_keys(
        run.loc, manifest.read_plan(s3, run.loc))
    assert len([spec for spec in specs if spec.kind == "skipped"]) == 3
    assert fanned == chain
    assert without_part_cuts(outputs(s3, run))["csv"] == without_part_cuts(one_chain)["csv"]

def test_a_shard_continues_across_invocations_and_the_report_is_the_same(s3, monkeypatch):
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    # GIVEN a fan-out of one shard holding every payload, and its deadline always near
    run, pointer = a_run(s3)
    finalize_fanned_out(pointer, SETTINGS, s3)  # the handler's layout: parts of 150,000 rows
    whole = outputs(s3, run)
    (payloads, skipped) = plan_finalize(pointer, s3)
    # WHEN the shard runs one payload per invocation, through the handler as the child execution calls it
    event: dict[str, Any] = {"mode": "shard", "pointer": pointer.to_dict(), "shard": payloads.to_dict(),
                             "cursor": FIRST.to_dict()}
    answers = []
    while not (answer := handlers.finalize(event, NearDeadline())).get("done"):
        answers.append(answer)
        event = answer
    # THEN it answered done false with a cursor after each payload, then a small answer
    assert [a["cursor"]["position"] for a in answers] == [1, 2, 3]
    assert answer == {"done": True, "shard": 0, "rows": 13}
    # AND with the skipped shard and the merge, the report is the one a single invocation writes
    assert shard_step(pointer, skipped, SETTINGS, s3, Deadline.never()).rows == 4  # type: ignore[union-attr]
    assert isinstance(merge_step(pointer, SETTINGS, s3, Deadline.never(), FIRST), RunSummary)
    assert outputs(s3, run) == whole


def test_a_shard_that_left_no_summary_fails_the_merge_naming_it(s3):
    # GIVEN a fan-out whose second shard never finished (its child execution failed)
    run, pointer = a_run(s3)
    shards = plan_finalize(pointer, s3, ONE_PAYLOAD)
    for spec in shards:
        if spec.index != 1:
            shard_step(pointer, spec, SETTINGS, s3, Deadline.never(), None, SMALL)
    # WHEN the merge runs THEN it fails, naming the shard and its payloads, and writes no report
    with pytest.raises(FinalizeShardError, match=r"1 of 5 finalize shards did not finish: finalize shard 1 "
                                                 r"\(payloads 1-1 in run order\)"):
        merge_step(pointer, SETTINGS, s3, Deadline.never(), FIRST, SMALL)
    assert s3.get_json_or_none(MANIFESTS, manifest.key(run.loc, manifest.REPORT_JSON)) is None
    # AND cleanup still aborts the split copy's upload: nothing of the run is left open
    clean_up("r1", {"Error": "FinalizeShardError", "Cause": "a shard failed"}, SETTINGS, s3)
    assert uploads(s3) == [] and uploads(s3, MANIFESTS) == []


def test_the_merge_decides_the_run_by_max_failed_objects(s3):
    # GIVEN one failed object in the third payload's shard, and max_failed_objects 0
    run, pointer = a_run(s3, CopyOptions(max_failed_objects=0))
    # WHEN the fan-out runs THEN the merge fails the run after writing the whole report
    with pytest.raises(TooManyFailedObjectsError):
        finalize_fanned_out(pointer, SETTINGS, s3, SMALL, shard_rows=ONE_PAYLOAD)
    assert json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Rows"] == 18
    assert json.loads(read(s3, manifest.key(run.loc, manifest.REPORT_JSON)))["failed_objects"][0]["source"] == \
        f"s3://{SOURCE}/p3/bad.txt"


def test_report_csv_is_one_file_up_to_the_size_chosen_and_the_parts_alone_past_it(s3):
    # GIVEN a run of 18 report rows
    run, pointer = a_run(s3)
    # WHEN the fan-out runs with report.csv allowed 18 rows THEN it is the header and every part, in order
    finalize_fanned_out(pointer, SETTINGS, s3, SMALL, shard_rows=ONE_PAYLOAD)
    parts = json.loads(read(s3, run.loc.prefix + PARTS_MANIFEST))["Results"]
    report_csv = read(s3, manifest.key(run.loc, manifest.REPORT_CSV))
    assert report_csv == csv_header() + b"".join(read(s3, e["Key"]) for e in parts)
    # AND report.csv was sent in upload parts (the layout's minimum is 1 byte), now completed
    head = s3.client.head_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, manifest.REPORT_CSV))
    assert head["ETag"].endswith(f'-{len(parts)}"')
    assert s3.get_json(MANIFESTS, csv_upload_key(run.loc)) == {} and uploads(s3, MANIFESTS) == []
    # WHEN another run's report has more rows than report.csv may hold THEN only the parts are written
    other, other_pointer = a_run(s3, run_id="r2")
    summary = finalize_fanned_out(other_pointer, SETTINGS, s3, ReportLayout(3, 1 << 20, 1, single_csv_max_rows=17),
                                  shard_rows=ONE_PAYLOAD)
    assert summary.report_csv == ""
    assert s3.get_json_or_none(MANIFESTS, manifest.key(other.loc, manifest.REPORT_CSV)) is None
    assert json.loads(read(s3, other.loc.prefix + PARTS_MANIFEST))["Rows"] == 18


def test_a_merge_that_fails_while_joining_report_csv_leaves_no_upload_and_cleanup_finds_a_crashed_one(s3):
    # GIVEN every shard finished, and reading the fourth part fails while report.csv's upload is open
    run, pointer = a_run(s3)
    for spec in plan_finalize(pointer, s3, ONE_PAYLOAD):
        shard_step(pointer, spec, SETTINGS, s3, Deadline.never(), None, SMALL)
    fourth = part_key(run.loc, 0, "00002")
    failing = FailingReads(s3.client, fourth)
    # WHEN the merge runs THEN it fails with that error and aborts the upload it had begun
    with pytest.raises(RuntimeError, match="injected"):
        merge_step(pointer, SETTINGS, failing, Deadline.never(), FIRST, SMALL)
    assert uploads(s3, MANIFESTS) == []
    # WHEN an invocation crashed instead (the upload open, its marker written)
    upload_id = s3.start_upload(MANIFESTS, manifest.key(run.loc, manifest.REPORT_CSV), "text/csv")
    s3.put_json(MANIFESTS, csv_upload_key(run.loc), {"upload_id": upload_id})
    # THEN cleanup aborts it
    clean_up("r1", {"Error": "Sandbox.Timedout", "Cause": "the merge timed out"}, SETTINGS, s3)
    assert uploads(s3, MANIFESTS) == []


class NearDeadline:
    """Lambda's context with its deadline always near."""

    def get_remaining_time_in_millis(self) -> int:
        return 0


class FailingReads(S3Gateway):
    """moto's S3, but streaming ``fail_key`` raises."""

    def __init__(self, client: Any, fail_key: str) -> None:
        super().__init__(client)
        self.fail_key = fail_key

    def read_chunks(self, bucket: str, key: str, start: int = 0, chunk_size: int = 1 << 20) -> Any:
        if key == self.fail_key:
            raise RuntimeError("injected")
        return super().read_chunks(bucket, key, start, chunk_size)


def test_the_handler_plans_the_shards_as_the_state_machine_asks(s3, monkeypatch):
    # GIVEN StartFinalize's event
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    run, pointer = a_run(s3)
    answer = handlers.finalize({"mode": "shards", "pointer": pointer.to_dict(), "shard_rows": 3}, NearDeadline())
    # THEN it names the Map's items, written where the state machine's role may read them
    assert answer == {"items": finalize_shards.shards_key(run.loc), "shards": 5}
    assert answer["items"] == f"{run.loc.prefix}finalizer/shards.json"
    items = s3.get_json(MANIFESTS, answer["items"])
    assert [i["kind"] for i in items] == ["payloads"] * 4 + ["skipped"]
    plan = manifest.read_plan(s3, run.loc)
    assert finalizer.skipped_sources(run.loc, plan) == (manifest.key(run.loc, manifest.SKIPPED),)


def test_a_dry_run_in_the_fan_out_reports_planned_rows_and_touches_nothing(s3):
    # GIVEN a dry-run plan with one whole copy and one split copy (planned without an upload), in two payloads
    run = RunBuilder(s3, options=CopyOptions(dry_run=True))
    run.whole("a.txt", b"abc", outcome="none")
    run.split("big.bin", body_of(PART + 1), [(0, 1, 1), (1, 2, 2)], planned_only=True)
    pointer = run.write(ran=set())
    # WHEN the fan-out finalizes it, a shard per payload
    summary = finalize_fanned_out(pointer, SETTINGS, s3, SMALL, shard_rows=ONE_PAYLOAD)
    # THEN the report lists what would be copied, nothing was copied, and no upload is open
    assert summary.status == "dry-run"
    rows = csv_rows(s3, manifest.key(run.loc, manifest.REPORT_CSV))
    assert [(r["status"], r["method"], r["bytes"], r["parts"]) for r in rows] == [
        ("planned", "copy", "3", "0"), ("planned", "multipart-split", str(PART + 1), "2")]
    assert s3.client.list_objects_v2(Bucket=TARGET).get("KeyCount") == 0
    assert uploads(s3) == [] and uploads(s3, MANIFESTS) == []
