"""The generated state machine's Finalize stage, run by moto's ASL interpreter with the real finalizer handler
(planner, worker and cleanup are fakes: the run is built in moto's S3 beforehand): StartFinalize cuts the run
into finalize shards, the FinalizeShards Distributed Map finalizes each in a child execution, Finalize merges.
Every invocation is near its deadline, so a shard answers done false with a cursor after each payload; its child
must call it again until it is done, and the merge's RunSummary becomes the execution's output."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

from generator.state_machine import FinalizeFanOut, Functions, RetryTiming, build_definition, to_json
from lambdas import handlers, manifest
from lambdas.gateway import S3Gateway
from lambdas.models import CopyOptions, RunSummary
from sfncopy.emulator.bridges import map_iteration_patches, state_error_patches
from tests.functional.run_builder import MANIFESTS, SOURCE, TARGET, RunBuilder, body_of

REGION = "us-east-1"
FAST = RetryTiming(interval_seconds=1, max_attempts=2, backoff_rate=1.0, max_delay_seconds=1)


class NearDeadline:
    """Lambda's context with its deadline always near: the finalizer stops after each piece of work."""

    def get_remaining_time_in_millis(self) -> int:
        return 0


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for owner, name, value in map_iteration_patches() + state_error_patches():  # the emulator's bridges 9, 11
        monkeypatch.setattr(owner, name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFESTS)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def test_the_state_machine_calls_the_finalizer_again_until_it_answers_the_run_summary(aws, monkeypatch):
    # GIVEN a finished run of three payloads in moto's S3, its plan pointer naming the worker's payload list
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (SOURCE, TARGET, MANIFESTS):
        s3.create_bucket(Bucket=bucket)
    run = RunBuilder(S3Gateway(s3), options=CopyOptions(max_failed_objects=0))
    for payload in range(3):
        run.whole(f"p{payload}.txt", body_of(20 + payload), payload=payload)
    pointer = replace(run.write(workers=1), worker_lists=(manifest.worker_list_key(run.loc, 0),))
    finalizer_events: list[dict[str, Any]] = []

    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        name = function.function_name
        if name == "planner":
            return json.dumps(pointer.to_dict()), False, ""
        if name == "worker":
            return json.dumps({**event, "done": True}), False, ""  # the checkpoints are written already
        if name == "finalizer":
            finalizer_events.append(event)
            try:
                return json.dumps(handlers.finalize(event, NearDeadline())), False, ""
            except Exception as err:  # reported as Lambda reports an unhandled exception
                return json.dumps({"errorType": type(err).__name__, "errorMessage": str(err)}), True, ""
        return json.dumps({"run_id": "r1", "error": event["error"]["Error"], "cause": "failed",
                           "aborted_uploads": 0, "failure_report": ""}), False, ""

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfncopy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    arns = {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"fake.{name}",
                                      Code={"ZipFile": b"fake"})["FunctionArn"]
            for name in ("planner", "worker", "finalizer", "cleanup")}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    # Finalize shards of 2 report rows: payloads 0 and 1 in shard 0, payload 2 in shard 1, the skipped file in 2.
    definition = build_definition(1, Functions(**arns), FAST, finalize=FinalizeFanOut(shard_rows=2, concurrency=2))
    machine = sfn.create_state_machine(name="loop", definition=to_json(definition), roleArn=role)["stateMachineArn"]
    # WHEN the execution runs
    execution = sfn.start_execution(stateMachineArn=machine, name="r1", input=json.dumps({"s3_copy_config": {}}))
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    # THEN it succeeded with the RunSummary, exactly as a single invocation answers it
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output == RunSummary.from_dict(output).to_dict()
    assert (output["copied"], output["failed"], output["status"]) == (3, 0, "succeeded")
    # AND the finalizer first cut the run into three finalize shards
    assert [e.get("mode") for e in finalizer_events[:1]] == ["shards"]
    assert [item["kind"] for item in json.loads(s3.get_object(
        Bucket=MANIFESTS, Key=f"{run.loc.prefix}finalizer/shards.json")["Body"].read())] == [
        "payloads", "payloads", "skipped"]
    # AND each shard's child called it again with its own answer until done: shard 0 after each of its payloads
    shard_steps = sorted((e["shard"]["shard"], e["cursor"]["step"], e["cursor"]["position"])
                         for e in finalizer_events if e.get("mode") == "shard")
    assert shard_steps == [(0, 0, 0), (0, 1, 1), (1, 0, 0), (2, 0, 0)]
    # AND the merge ran once, last, and wrote the report
    assert [e.get("mode") for e in finalizer_events[-1:]] == ["merge"]
    assert sum(1 for e in finalizer_events if e.get("mode") == "merge") == 1
    report = json.loads(s3.get_object(Bucket=MANIFESTS, Key=f"{run.loc.prefix}report.json")["Body"].read())
    assert report["timings"]["finalize_shards"] == 3 and report["parts"]["rows"] == 3
