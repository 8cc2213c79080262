"""What a plan will cost: lambdas/estimate.py, tested by value on plans built by lambdas/planning.py."""

import json

import pytest

from lambdas import estimate as est
from lambdas import planning
from lambdas.limits import GiB, MiB
from lambdas.models import CopyConfig, CopyOptions, RunPlan, SourceConfig, SourceObject, TargetConfig
from lambdas.parts import choose_part_size
from lambdas.planning import Candidate, PlanParams

TARGETS = (TargetConfig(0, "dst", "images/", ("jpg",)), TargetConfig(1, "dst", "video/", ("mp4",)),
           TargetConfig(2, "other", "", ("*",)))


def make_plan(candidates, params: PlanParams, options: CopyOptions | None = None, listed: int = 0):
    result = planning.plan(candidates, params, lambda t: choose_part_size(t.size, params.part_size))
    work = result.work
    config = CopyConfig(sources=(SourceConfig("src", ""),), targets=TARGETS, options=options or CopyOptions())
    totals = planning.totals(result.decisions.copies, result.decisions.skipped, work,
                             listed or len(candidates), 0)
    plan = RunPlan("run", "2024-01-01T00:00:00Z", config, params.workers, work.worker_payloads, work.splits,
                   totals, work.worker_loads)
    return plan, list(work.payloads)


def cand(key: str, size: int, target: str = "dst", prefix: str = "images/", storage_class: str = "STANDARD"):
    return Candidate(SourceObject("src", key, size, "e" * 32, storage_class), target, prefix + key)


def test_requests_transitions_and_dollars_of_a_small_plan():
    # GIVEN two small copies, one 6 GiB object (multipart, 96 parts of 64 MiB) and an archived object,
    # on one worker with a 10 GiB cap (nothing split: one worker gains nothing from it)
    params = PlanParams(workers=1, max_payload_bytes=10 * GiB, max_objects_per_payload=1000)
    plan, payloads = make_plan([cand("a.jpg", MiB), cand("b.jpg", 2 * MiB), cand("c.mp4", 6 * GiB, prefix="video/"),
                                cand("d.jpg", 5, storage_class="GLACIER")], params)
    # WHEN estimating for 1,024 MB workers at 250 MB/s
    figures = est.estimate(plan, payloads, worker_memory_mb=1024, throughput_mb_s=250.0)
    # THEN the requests are counted by kind
    r = figures.requests
    assert (r.copy_object, r.upload_part_copy, r.create_multipart_upload, r.complete_multipart_upload) == (2, 96, 1, 1)
    assert (r.head, r.get_tagging) == (1, 1)
    assert r.list_pages == (1 + 1) + (1 + 3) * 2  # source page + one per source; targets before and after
    # planner: payload, worker list, skipped, index; worker: a head at its start and a checkpoint at its end;
    # finalizer: three reports; reads: the worker's payload and checkpoint, the Map's worker list, the finalizer's
    # index, skipped and checkpoint, and the checkpoint's head again for the HTML report
    assert (r.manifest_writes, r.manifest_reads) == (1 + 1 + 2 + 2 + 3, 2 * 1 + 1 + 2 + 1 + 1)
    # AND transitions, invocations and dollars follow from them: the payload's child execution costs its start,
    # the worker task, the Choice and the Succeed; each of the two finalize shards (the payload's, the skipped
    # objects') likewise
    assert figures.payloads == 1 and figures.payloads_per_worker == (1,) and figures.split_objects == 0
    assert figures.state_transitions == 9 + 1 * 1 + 1 * 4 + 2 * 4
    # AND the run's execution records its fixed events and one Map, the child one payload's, budgeted as if its
    # one invocation failed for good after its retries (RecordFailure, PayloadFailed: lambdas/history.py)
    assert (figures.history_events, figures.child_history_events) == (48 + 1 * 6, 11 + 2 + 6 * 3)
    assert figures.lambda_invocations == 1 + 1 + 1 + 2 + 1  # planner, worker, StartFinalize, 2 shards, merge
    s3 = (r.writes_and_lists * 0.005 + r.reads * 0.0004) / 1000
    assert figures.s3_dollars == pytest.approx(s3)
    assert figures.step_functions_dollars == pytest.approx(22 * 0.025 / 1000)
    assert figures.lambda_dollars == pytest.approx(figures.lambda_gb_seconds * 0.0000166667 + 6 * 0.2e-6)
    assert figures.dollars == pytest.approx(figures.s3_dollars + figures.step_functions_dollars
                                            + figures.lambda_dollars)
    # AND the worker copies the 6 GiB object in 25+ s at 250 MB/s
    assert figures.predicted_seconds == pytest.approx(max(plan.worker_loads) / 250e6)
    assert figures.predicted_seconds > 6 * GiB / 250e6
    assert figures.skipped_by_reason == (("restore first", 1),)


def test_per_target_counts_split_objects_once():
    # GIVEN a 3 GiB object split into chunks on 4 workers (cap 1 GiB), and copies to each target
    params = PlanParams(workers=4, max_payload_bytes=GiB, max_objects_per_payload=1000)
    plan, payloads = make_plan([cand("big.mp4", 3 * GiB, prefix="video/"), cand("a.jpg", 10),
                                cand("x.bin", 7, target="other", prefix="")], params)
    assert len(plan.splits) == 1
    figures = est.estimate(plan, payloads, worker_memory_mb=512)
    # THEN each target's objects and bytes, the split object once
    assert [(t.index, t.target, t.objects, t.bytes) for t in figures.per_target] == [
        (0, "s3://dst/images/", 1, 10), (1, "s3://dst/video/", 1, 3 * GiB), (2, "s3://other/", 1, 7)]
    # AND its 48 parts are UploadPartCopy requests; the planner's upload is created and completed once
    assert figures.requests.upload_part_copy == 48
    assert figures.requests.create_multipart_upload == figures.requests.complete_multipart_upload == 1
    assert figures.split_objects == 1 and figures.balance <= 1.05


def test_to_dict_is_json_with_rounded_figures():
    params = PlanParams(workers=3, max_payload_bytes=GiB, max_objects_per_payload=10)
    plan, payloads = make_plan([cand(f"k{i}.jpg", 1000 * i) for i in range(25)], params,
                               CopyOptions(preserve_tags=False))
    data = json.loads(json.dumps(est.estimate(plan, payloads, 256).to_dict()))
    assert data["copies"] == 25 and data["payloads_per_worker"] == [1, 1, 1]
    assert data["requests"]["copy_object"] == 25 and data["requests"]["get_tagging"] == 0
    assert data["requests"]["total"] == sum(v for k, v in data["requests"].items() if k != "total")
    parts = data["s3_dollars"] + data["step_functions_dollars"] + data["lambda_dollars"]
    assert data["dollars"] == pytest.approx(parts, abs=2e-6) and data["dollars"] > 0
    assert data["per_target"][0] == {"index": 0, "target": "s3://dst/images/", "objects": 25,
                                     "bytes": sum(1000 * i for i in range(25))}
    assert data["skipped_by_reason"] == {}


def test_concurrency_shortens_the_busiest_worker_but_not_below_its_largest_payload():
    # GIVEN 8 equal payloads on one worker (cap 1 object each)
    params = PlanParams(workers=1, max_payload_bytes=10 * GiB, max_objects_per_payload=1)
    plan, payloads = make_plan([cand(f"{i}.jpg", GiB) for i in range(8)], params)
    one = est.estimate(plan, payloads, worker_memory_mb=1024).predicted_seconds
    # WHEN the worker copies 4, then 16 payloads at once
    four = est.estimate(plan, payloads, worker_memory_mb=1024, worker_concurrency=4)
    sixteen = est.estimate(plan, payloads, worker_memory_mb=1024, worker_concurrency=16)
    # THEN the copy takes a quarter of the time, and never less than one payload's
    assert four.predicted_seconds == pytest.approx(one / 4)
    assert sixteen.predicted_seconds == pytest.approx(GiB / 250e6)
    assert (four.worker_concurrency, four.to_dict()["worker_concurrency"]) == (4, 4)
