"""Terminal summaries and the dry-run figures by value."""

from __future__ import annotations

import pytest

from lambdas.errors import SfnCopyError
from lambdas.gateway import S3Gateway
from lambdas.models import CopyConfig, CopyTask, Payload, PlanTotals, RunPlan, SourceConfig, SplitCopy, TargetConfig
from sfncopy import dry_run, summary

TARGETS = (
    TargetConfig(index=0, bucket="t", prefix="images/", file_types=("jpg",)),
    TargetConfig(index=1, bucket="t", prefix="images/raw/", file_types=("jpg",)),
    TargetConfig(index=2, bucket="u", prefix="", file_types=("*",)),
)
CONFIG = CopyConfig(sources=(SourceConfig("s", "in/"),), targets=TARGETS)


def _task(copy_id: int, bucket: str, key: str, size: int, method: str = "copy") -> CopyTask:
    return CopyTask(task_id=f"c{copy_id}", copy_id=copy_id, source_bucket="s", source_key=key, size=size,
                    etag="e", target_bucket=bucket, target_key=key, method=method)  # type: ignore[arg-type]


def test_summarise_counts_split_objects_once_and_shows_the_estimate():
    # GIVEN two workers: worker 0 has a small copy and one chunk, worker 1 the other chunk of a split object
    split = SplitCopy(copy_id=1, source_bucket="s", source_key="big", size=100, etag="e", target_bucket="u",
                      target_key="big", part_size=50, part_count=2, upload_id="x")
    chunk = {"method": "chunk", "part_size": 50, "upload_id": "x"}
    big = _task(1, "u", "big", 100).to_dict()
    payloads = [
        Payload(0, 0, (_task(0, "t", "images/a.jpg", 10),
                       CopyTask(**{**big, **chunk, "first_part": 1, "last_part": 1}))),
        Payload(1, 1, (CopyTask(**{**big, **chunk, "first_part": 2, "last_part": 2}),)),
    ]
    plan = RunPlan("r", "", CONFIG, 2, ((0,), (1,)), (split,),
                   PlanTotals(objects_listed=5, copies=2, bytes=110, skipped=1, unmatched=2, payloads=2,
                              split_objects=1, skipped_by_reason=(("restore first", 1),)),
                   worker_loads=(90, 60))
    # WHEN summarised
    report = dry_run.summarise("dev", plan, payloads, worker_memory_mb=1024, part_size=50)
    # THEN the split object counts once for its target; bytes per worker; balance = 90 / 75
    data = report.to_dict()
    targets = {t["target"]: (t["objects"], t["bytes"]) for t in data["per_target"]}
    assert targets == {"s3://t/images/": (1, 10), "s3://t/images/raw/": (0, 0), "s3://u/": (1, 100)}
    assert data["bytes_per_worker"] == [60, 50] and data["payloads_per_worker"] == [1, 1]
    assert data["balance"] == pytest.approx(1.2)
    assert data["skipped_by_reason"] == {"restore first": 1} and data["unmatched"] == 2
    assert data["dollars"] > 0 and data["state_transitions"] > 0 and data["requests"]["total"] > 0
    text = "\n".join(report.lines())
    assert text.startswith("plan for env dev: 5 objects listed, 2 copies, 110 B")
    for shown in ("balance 1.20", "S3 requests:", "state transitions:", "GB-seconds", "cost: $",
                  "restore first: 1", "matched no target: 2"):
        assert shown in text, shown


def test_the_dry_run_gateway_keeps_plan_files_in_memory_and_refuses_writes():
    memory = dry_run.MemoryGateway(S3Gateway(client=None))
    memory.put_json("m", "plan/index.json", {"a": 1})
    assert memory.get_json("m", "plan/index.json") == {"a": 1}
    assert memory.get_json_or_none("m", "other") is None
    upload = memory.create_multipart_upload("t", "k", None, {})
    memory.abort_multipart_upload("t", "k", upload)
    for write in (lambda: memory.copy_object("s", "k", "e", "t", "k"),
                  lambda: memory.upload_part_copy("t", "k", "u", 1, "s", "k", "e", 0, 1),
                  lambda: memory.complete_multipart_upload("t", "k", upload, []),
                  lambda: memory.put_tags("t", "k", {"a": "b"}),
                  lambda: memory.abort_multipart_upload("t", "k", "a-real-upload")):
        with pytest.raises(SfnCopyError, match="dry run: refused"):
            write()


def test_config_lines():
    lines = summary.config_lines(CONFIG)
    assert lines[:3] == ["1 source(s), 3 target(s)", "source: s3://s/in/", "target 0: s3://t/images/ <- *.jpg"]
    assert lines[-1].startswith("options: overwrite=if-different, preserve_metadata=true")


def test_config_lines_show_incremental_selection():
    config = CopyConfig(
        sources=(SourceConfig("s", "in/", modified_after="2026-12-01T00:00:00+00:00"),),
        targets=(TargetConfig(0, "t", "ia/", ("*",), storage_classes=("STANDARD_IA",),
                              modified_before="2026-12-02T00:00:00+00:00"),))
    lines = summary.config_lines(config)
    assert lines[1] == "source: s3://s/in/; modified since 2026-12-01T00:00:00+00:00"
    assert lines[2] == "target 0: s3://t/ia/ <- every file; modified before 2026-12-02T00:00:00+00:00; in STANDARD_IA"


def test_report_lines_of_a_finished_run():
    report = {
        "run_id": "r1", "status": "failed", "copied": 8, "skipped": 1, "failed": 2, "bytes": 2048, "retries": 3,
        "counts": {"copied": 8, "skipped": 1, "failed": 2, "planned": 0}, "bytes_copied": 2048,
        "skipped_by_reason": {"identical": 1}, "unmatched": 4,
        "failed_objects": [{"source": "s3://s/a", "target": "s3://t/a", "error": "SourceChanged: etag"}],
        "failed_objects_not_listed": 1, "verified_by": {"checksum": 6, "etag": 1, "size": 1},
        "report": {"json": "s3://m/report.json", "csv": "s3://m/report.csv"},
    }
    assert summary.report_lines(report) == [
        "run r1: failed (8 copied, 1 skipped, 2 failed)",
        "bytes copied: 2.0 KiB (2,048 B)",
        "S3 retries: 3",
        "verified: 6 by checksum, 1 by etag, 1 by size",
        "skipped (identical): 1",
        "matched no target: 4",
        "failed: s3://s/a -> s3://t/a: SourceChanged: etag",
        "... and 1 more failed (see the report)",
        "report: s3://m/report.json",
        "report (csv): s3://m/report.csv",
    ]


def test_report_lines_of_a_failure_report():
    lines = summary.report_lines({"error": "VerificationError", "cause": "2 parts missing"})
    assert lines == ["error: VerificationError", "cause: 2 parts missing"]
