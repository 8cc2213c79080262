"""The generated state machine with notifications (env notification_topic), run by moto's ASL interpreter:
Step Functions' optimized SNS integration publishes the run's summary, and an SQS queue subscribed to the topic
receives it, as a user's subscription would (moto delivers SNS to SQS in process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from generator.state_machine import Functions, build_definition, to_json, with_notifications
from sfncopy.emulator.bridges import context_start_time_patches
from tests.functional.test_state_machine import (
    FAST,
    REGION,
    FakeFinalizer,
    FakeLambdas,
    FakeWorker,
    LambdaError,
    functions,
    planner,
    run,
)
from tests.functional.test_state_machine import cleanup as fake_cleanup

STACK = "sfncopy-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Bridge 17: $$.Execution.StartTime is text, as on AWS (moto's datetime breaks DescribeExecution's output).
    for owner, name, value in context_start_time_patches():
        monkeypatch.setattr(owner, name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def run_summary(event: dict[str, Any]) -> dict[str, Any]:
    """The finalizer: its fan-out's steps (FakeFinalizer), then the merge's RunSummary (lambdas/models.py)."""
    if event.get("mode") != "merge":
        return FakeFinalizer()(event)
    run_id = event["pointer"]["run_id"]
    return {"run_id": run_id, "status": "succeeded", "copied": 3, "skipped": 1, "failed": 0, "bytes": 300,
            "retries": 0, "report_json": f"s3://manifests/runs/{run_id}/report.json",
            "report_csv": f"s3://manifests/runs/{run_id}/report.csv"}


def cleanup(event: dict[str, Any]) -> dict[str, Any]:
    """The cleanup's answer (lambdas/cleanup.py), with what the run had done before it failed."""
    answer = fake_cleanup(event)
    return {**answer, "notified_cause": answer["cause"], "partial": None}


def failing_planner(event: dict[str, Any]) -> dict[str, Any]:
    raise LambdaError("ConfigError", "1 problem in s3_copy_config: s3_copy_config.target_s3_config: required")


def subscribed_queue() -> tuple[str, str]:
    """A topic and an SQS queue subscribed to it: (topic ARN, queue URL)."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=f"{STACK}-runs")["TopicArn"]
    queue = sqs.create_queue(QueueName="run-summaries")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def received(queue: str) -> list[dict[str, Any]]:
    """The SNS notifications in the queue: SNS's envelope, with its Message parsed."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    envelopes = [json.loads(m["Body"]) for m in messages]
    return [{**e, "Message": json.loads(e["Message"])} for e in envelopes]


def start(fakes: FakeLambdas, monkeypatch: pytest.MonkeyPatch, topic: str) -> tuple[Any, str]:
    sfn, arns, role = functions(fakes, monkeypatch)
    definition = with_notifications(build_definition(2, Functions(**arns), FAST, drain=0), topic, STACK)
    machine = sfn.create_state_machine(name=STACK, definition=to_json(definition), roleArn=role)
    return sfn, machine["stateMachineArn"]


def test_a_successful_run_publishes_its_summary(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the machine with notifications to a topic an SQS queue is subscribed to
    topic, queue = subscribed_queue()
    fakes = FakeLambdas({"planner": planner([[0], [1]]), "worker": FakeWorker(), "finalizer": run_summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, topic)
    # WHEN a run succeeds
    result = run(sfn, machine, name="nightly-1")
    assert result["status"] == "SUCCEEDED", result
    # THEN one notification arrived, with the status as subject and the summary as message
    (notification,) = received(queue)
    assert notification["Subject"] == f"sfncopy {STACK}: run succeeded"
    message = notification["Message"]
    assert {k: message[k] for k in ("status", "run_id", "copied", "skipped", "failed", "bytes", "report")} == {
        "status": "succeeded", "run_id": "nightly-1", "copied": 3, "skipped": 1, "failed": 0, "bytes": 300,
        "report": "s3://manifests/runs/nightly-1/report.json"}
    assert message["execution"] == result["executionArn"]
    assert message["started"].endswith("Z")  # ISO 8601 UTC text, as the context object has it on AWS
    assert datetime.fromisoformat(message["started"]) <= datetime.fromisoformat(message["ended"])
    # AND the execution's output is still the RunSummary (with the summary it published beside it)
    output = json.loads(result["output"])
    merged = run_summary({"mode": "merge", "pointer": {"run_id": "nightly-1"}})
    assert {k: output[k] for k in merged} == merged
    assert "notification_error" not in output


def test_a_failed_run_publishes_the_cause_and_still_fails_with_it(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a planner that refuses the config
    topic, queue = subscribed_queue()
    fakes = FakeLambdas({"planner": failing_planner, "worker": FakeWorker(), "finalizer": run_summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, topic)
    # WHEN the run fails
    result = run(sfn, machine, name="nightly-2")
    # THEN the execution fails with the planner's error, as without notifications
    assert result["status"] == "FAILED", result
    assert result["error"] == "ConfigError"
    # AND the notification names the error, the cause and the failure report
    (notification,) = received(queue)
    assert notification["Subject"] == f"sfncopy {STACK}: run failed"
    message = notification["Message"]
    assert message["status"] == "failed"
    assert message["error"] == "ConfigError"
    assert "s3_copy_config.target_s3_config: required" in message["cause"]
    assert message["failure_report"] == "s3://manifests/failure.json"
    assert message["run_id"] == "nightly-2"
    assert message["partial"] is None  # it failed before it had a plan


def test_a_notification_that_cannot_be_published_does_not_fail_a_good_copy(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN notifications to a topic that does not exist
    missing = f"arn:aws:sns:{REGION}:123456789012:no-such-topic"
    fakes = FakeLambdas({"planner": planner([[0], [1]]), "worker": FakeWorker(), "finalizer": run_summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, missing)
    # WHEN a run copies everything
    result = run(sfn, machine, name="nightly-3")
    # THEN it succeeds, and its output records why the summary was not published
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["status"] == "succeeded"
    assert output["notification_error"]["Error"].startswith("SNS."), output["notification_error"]
