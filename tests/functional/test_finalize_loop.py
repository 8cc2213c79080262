"""The generated state machine's Finalize loop, run by moto's ASL interpreter with the real finalizer handler
(planner, worker and cleanup are fakes: the run is built in moto's S3 beforehand). Every invocation is near its
deadline, so the finalizer answers done false with a cursor after each payload; the loop must call it again
until it answers the RunSummary, which becomes the execution's output."""

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

from generator.state_machine import Functions, RetryTiming, build_definition, to_json
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
    machine = sfn.create_state_machine(name="loop", definition=to_json(build_definition(1, Functions(**arns), FAST)),
                                       roleArn=role)["stateMachineArn"]
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
    # AND the finalizer was called again and again: first with the state machine's first cursor, then with its
    # own (one invocation per payload, one to settle the split copies, one for the skipped list)
    steps = [event["cursor"]["step"] for event in finalizer_events]
    assert steps == [0, 1, 2, 3, 4]
    assert [event["cursor"]["phase"] for event in finalizer_events] == [
        "payloads", "payloads", "payloads", "splits", "skipped"]
    assert all(event["run_id"] == "r1" and "manifest" in event for event in finalizer_events)
