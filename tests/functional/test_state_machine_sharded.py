"""The sharded planning states (planning=sharded), run by moto's ASL interpreter with small fake Lambdas.

As tests/functional/test_state_machine.py, whose fakes and helpers this reuses: the fake prepare and collect
write the shards' items into moto's S3 (the PlanShards Map reads them with its ItemReader), the fake assembler
writes the workers' lists and answers the PlanPointer the single planner would.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from generator.state_machine import Functions, ShardedPlanning, build_definition, to_json
from lambdas.sharding.shard import MAX_GENERATION
from tests.functional.test_state_machine import (
    FAST,
    MANIFESTS,
    REGION,
    FakeLambdas,
    FakeWorker,
    LambdaError,
    aws,  # noqa: F401  (the fixture)
    cleanup,
    merge_event,
    merges,
    plan_pointer,
    planner,
    run,
    summary,
)

NAMES = ("planner", "worker", "finalizer", "cleanup", "prepare", "shard", "collect", "assemble")
WORKERS = [[0, 1], [2]]


def items_key(run_id: str, generation: int) -> str:
    name = "shards.json" if generation == 0 else f"shards-gen{generation:02d}.json"
    return f"runs/{run_id}/plan/sharding/{name}"


def pointers(event: dict[str, Any], shards: int, generation: int) -> dict[str, Any]:
    """What prepare and collect answer (lambdas/sharding/prepare.py, Prepared, with the generation)."""
    run_id = event["run_id"]
    return {"run_id": run_id, "manifest": {"bucket": MANIFESTS, "prefix": f"runs/{run_id}/"}, "shards": shards,
            "items": items_key(run_id, generation), "ordered": True, "estimated_objects": -1, "probes": 0,
            "generation": generation}


def write_items(run_id: str, generation: int, shards: list[int]) -> None:
    items = [{"shard": s, "start": None, "end": None, "estimate": -1, "generation": generation} for s in shards]
    boto3.client("s3", region_name=REGION).put_object(Bucket=MANIFESTS, Key=items_key(run_id, generation),
                                                      Body=json.dumps(items))


class FakeSharding:
    """Prepare cuts 3 shards; shard 1 answers done:false once; shard 2 hands a range on, which collect
    numbers as shard 3 of generation 1. With ``endless`` every collect finds hand-ons."""

    def __init__(self, endless: bool = False) -> None:
        self.endless = endless
        self.done: list[int] = []
        self.lock = threading.Lock()

    def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        write_items(event["run_id"], 0, [0, 1, 2])
        return pointers(event, 3, 0)

    def shard(self, event: dict[str, Any]) -> dict[str, Any]:
        invocations = event.get("invocations", 0) + 1
        done = event["shard"]["shard"] != 1 or invocations > 1
        if done:
            with self.lock:
                self.done.append(event["shard"]["shard"])
        return {**event, "done": done, "invocations": invocations, "listed": 10, "copies": 10, "segments": 1}

    def collect(self, event: dict[str, Any]) -> dict[str, Any]:
        generation = event["generation"]
        if generation == 1 or self.endless:
            write_items(event["run_id"], generation, [2 + generation])
            return pointers(event, 1, generation)
        return pointers(event, 0, generation)

    def assemble(self, event: dict[str, Any]) -> dict[str, Any]:
        return planner(WORKERS)(event)


def start(fakes: FakeLambdas, monkeypatch: pytest.MonkeyPatch, workers: int = 2) -> tuple[Any, str]:
    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return fakes.invoke(function, event)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=MANIFESTS)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfncopy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    arns = {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"fake.{name}",
                                      Code={"ZipFile": b"fake"})["FunctionArn"] for name in NAMES}
    definition = build_definition(workers, Functions(**arns), FAST, drain=0,
                                  sharded=ShardedPlanning(shards=4, concurrency=2))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="sfncopy-test", definition=to_json(definition), roleArn=role)
    return sfn, machine["stateMachineArn"]


def fakes_for(sharding: FakeSharding, **changes: Any) -> FakeLambdas:
    handlers = {"planner": planner(WORKERS), "worker": FakeWorker(), "finalizer": summary, "cleanup": cleanup,
                "prepare": sharding.prepare, "shard": sharding.shard, "collect": sharding.collect,
                "assemble": sharding.assemble}
    return FakeLambdas({**handlers, **changes})


def test_shards_plan_with_continuations_and_a_hand_on_generation_then_the_copy_runs(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # GIVEN 3 shards, one needing a second invocation and one handing a range on (shard 3, generation 1)
    sharding = FakeSharding()
    fakes = fakes_for(sharding)
    sfn, machine = start(fakes, monkeypatch)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it succeeds with the finalizer's summary, and the single planner was never called
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["status"] == "succeeded"
    assert fakes.events("planner") == []
    # AND prepare got the run id, the branch count and the wanted shard count
    assert fakes.events("prepare") == [{"run_id": "run-1", "workers": 2, "shards": 4,
                                        "input": {"s3_copy_config": {"source_s3_config": {}}}}]
    # AND every shard, the handed-on one included, finished once; shard 1 was called again with its own answer
    assert sorted(sharding.done) == [0, 1, 2, 3]
    shard1 = [e for e in fakes.events("shard") if e["shard"]["shard"] == 1]
    assert len(shard1) == 2 and shard1[1]["done"] is False and shard1[1]["invocations"] == 1
    assert shard1[0] == {"run_id": "run-1", "manifest": {"bucket": MANIFESTS, "prefix": "runs/run-1/"},
                         "shard": {"shard": 1, "start": None, "end": None, "estimate": -1, "generation": 0}}
    # AND collect ran after each generation until none handed on; assemble once, with the pointers
    assert [e["generation"] for e in fakes.events("collect")] == [1, 2]
    assert fakes.events("assemble") == [{"run_id": "run-1", "manifest": {"bucket": MANIFESTS,
                                                                          "prefix": "runs/run-1/"}}]
    # AND the copy and finalize stages ran on the assembler's pointer exactly as on the planner's
    assert sorted(e["payload"] for e in fakes.events("worker")) == [0, 1, 2]
    assert merges(fakes) == [merge_event(plan_pointer({"run_id": "run-1"}, WORKERS))]
    assert fakes.events("cleanup") == []


def test_hand_ons_stop_after_the_last_generation(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # GIVEN a collect that always finds hand-ons (shards of the last generation never hand on: a bug)
    sharding = FakeSharding(endless=True)
    fakes = fakes_for(sharding)
    sfn, machine = start(fakes, monkeypatch)
    result = run(sfn, machine)
    # THEN the machine still assembles after MAX_GENERATION generations of hand-ons
    assert result["status"] == "SUCCEEDED", result
    assert [e["generation"] for e in fakes.events("collect")] == list(range(1, MAX_GENERATION + 2))
    assert sorted(sharding.done) == [0, 1, 2, *range(3, 3 + MAX_GENERATION)]
    assert len(fakes.events("assemble")) == 1


def test_an_assembler_that_fails_goes_to_cleanup_before_any_copy(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # GIVEN an assembler that finds a shard unfinished every time (ManifestConflictError: retried)
    def unfinished(event: dict[str, Any]) -> dict[str, Any]:
        raise LambdaError("ManifestConflictError", "shard 2 has not finished planning (its summary is missing)")

    fakes = fakes_for(FakeSharding(), assemble=unfinished)
    sfn, machine = start(fakes, monkeypatch)
    result = run(sfn, machine)
    # THEN it was retried (FAST: 2 retries), then the run failed through Cleanup with its error, copying nothing
    assert result["status"] == "FAILED", result
    assert result["error"] == "ManifestConflictError"
    assert result["cause"].startswith("shard 2 has not finished planning")
    assert len(fakes.events("assemble")) == 3
    assert fakes.events("worker") == [] and fakes.events("finalizer") == []
    (event,) = fakes.events("cleanup")
    assert event["run_id"] == "run-1" and event["error"]["Error"] == "ManifestConflictError"


def test_a_config_error_in_prepare_fails_the_run_at_once(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def bad(event: dict[str, Any]) -> dict[str, Any]:
        raise LambdaError("ConfigError", "s3_copy_config.source_s3_config.s3_bucket: missing")

    fakes = fakes_for(FakeSharding(), prepare=bad)
    sfn, machine = start(fakes, monkeypatch)
    result = run(sfn, machine)
    assert result["status"] == "FAILED" and result["error"] == "ConfigError"
    assert len(fakes.events("prepare")) == 1 and fakes.events("shard") == []
