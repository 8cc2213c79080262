"""``sfncopy status --watch``'s line per worker (sfncopy/progress.py) by value, and the multi-line redraw."""

from __future__ import annotations

import io

import boto3
from moto import mock_aws

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.models import CopyConfig, ManifestLocation, ObjectResult, PayloadCheckpoint, PlanTotals, RunPlan
from lambdas.timeline import Invocation
from sfncopy import execution, progress


def plan(worker_payloads: list[list[int]]) -> RunPlan:
    return RunPlan(run_id="r", created_at="", config=CopyConfig(sources=(), targets=()),
                   workers=len(worker_payloads), worker_payloads=tuple(tuple(p) for p in worker_payloads), splits=(),
                   totals=PlanTotals())


def result(task_id: str, nbytes: int, status: str = "copied") -> ObjectResult:
    return ObjectResult(task_id=task_id, copy_id=0, source_bucket="s", source_key=task_id, target_bucket="t",
                        target_key=task_id, bytes=nbytes, status=status, method="copy")  # type: ignore[arg-type]


def test_each_worker_shows_its_payloads_done_bytes_and_the_payload_it_is_on():
    # GIVEN worker 0 done with payload 0 and on payload 2 (after a retry); worker 1 with payload 1 failed
    checkpoints = [
        PayloadCheckpoint(payload_id=0, worker=0, results=(result("a", 2 << 20),),
                          timeline=(Invocation(number=1, start=1, end=2, outcome="done"),)),
        PayloadCheckpoint(payload_id=2, worker=0, results=(result("b", 1 << 20),), timeline=(
            Invocation(number=1, start=3, end=4, outcome="failed"),
            Invocation(number=2, start=5, outcome="running", retries=1))),
        PayloadCheckpoint(payload_id=1, worker=1, failure="Sandbox.Timedout: 900 s",
                          timeline=(Invocation(number=1, start=1, end=900, outcome="lost"),)),
    ]
    lines = progress.worker_lines(progress.worker_progress(plan([[0, 2, 4], [1]]), checkpoints))
    assert lines == ["  worker 0: 1/3 payloads, 1 retried | 3.0 MiB | on payload 2",
                     "  worker 1: 0/1 payloads, 1 failed | 0 B | finished"]


def test_many_workers_show_the_ones_with_most_left_and_sum_the_rest():
    workers = [progress.WorkerProgress(worker=w, payloads=10, done=w, bytes=1024) for w in range(5)]
    lines = progress.worker_lines(workers, limit=2)
    assert lines == ["  worker 0: 0/10 payloads | 1.0 KiB | waiting", "  worker 1: 1/10 payloads | 1.0 KiB | waiting",
                     "  3 more workers: 9/30 payloads | 3.0 KiB"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_block_of_lines_is_redrawn_in_place_on_a_terminal():
    out = Terminal()
    printer = progress.LinePrinter(out)
    printer("total 1\n  worker 0: a")
    printer("total 2\n  worker 0: b")
    assert out.getvalue() == ("\rtotal 1\x1b[K\n  worker 0: a\x1b[K\x1b[J"
                              "\x1b[1A\rtotal 2\x1b[K\n  worker 0: b\x1b[K\x1b[J")


@mock_aws
def test_run_files_give_a_line_per_worker_from_the_heads_in_s3():
    # GIVEN a plan of two workers, worker 0 on payload 0 (running) and worker 1 done with payload 1
    client = boto3.client("s3", region_name="us-east-1")
    loc = ManifestLocation("manifests", "runs/r/")
    client.create_bucket(Bucket=loc.bucket)
    s3 = S3Gateway(client)
    s3.put_json(loc.bucket, manifest.key(loc, manifest.INDEX), plan([[0], [1]]).to_dict())
    manifest.write_checkpoint(s3, loc, PayloadCheckpoint(0, 0, timeline=(Invocation(number=1, start=1),)))
    manifest.write_checkpoint(s3, loc, PayloadCheckpoint(1, 1, results=(result("a", 2048),), timeline=(
        Invocation(number=1, start=1, end=2, outcome="done"),)))
    files = execution.RunFiles(s3, loc)
    assert files.worker_lines() == []  # before the plan is read
    # WHEN the files are polled THEN each worker has its line
    files.snapshot()
    assert files.worker_lines() == ["  worker 0: 0/1 payloads | 0 B | on payload 0",
                                    "  worker 1: 1/1 payloads | 2.0 KiB | finished"]
