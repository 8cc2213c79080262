"""Schedules and notifications end to end on the strict emulator (IAM enforced on S3): a schedule of the stack
fires (bridge 16), starts a run that reads its stored config (the planner may read exactly that object) and
copies; the stack's SNS topic delivers each run's summary to a subscribed SQS queue, with the counts on success
and the cause on failure."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from sfncopy.emulator import control
from tests.e2e import support
from tests.e2e.conftest import Stacks, World
from tests.e2e.support import SOURCE_SCOPE, TARGET_SCOPE, Stack, StackSpec, rich, uri

pytestmark = pytest.mark.e2e

CONFIGS = "sfncopy-e2e-configs"
CONFIG_KEY = "schedules/nightly.json"
NOTIFY = StackSpec("sfncopy-e2e-notify", workers=2, source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE,
                   extra=(("notification_topic", "create"),
                          ("schedule_nightly", f"rate(1 day) s3://{CONFIGS}/{CONFIG_KEY}")))


@dataclass
class Notified:
    stack: Stack
    queue: str
    sqs: Any

    def next_summary(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next notification's summary (the SNS envelope's Message, parsed) and its subject."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1,
                                                WaitTimeSeconds=1).get("Messages", [])
            if messages:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=messages[0]["ReceiptHandle"])
                envelope = json.loads(messages[0]["Body"])
                return {**json.loads(envelope["Message"]), "subject": envelope["Subject"]}
        raise AssertionError(f"no notification within {timeout:.0f} s")


@pytest.fixture(scope="module")
def notified(stacks: Stacks, world_endpoint: str) -> Iterator[Notified]:
    """The stack with a schedule and a topic, and an SQS queue subscribed to the topic, as a user would."""
    stack = stacks.get(NOTIFY)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=support.REGION)
    cfn = session.client("cloudformation", endpoint_url=world_endpoint)
    described = cfn.describe_stacks(StackName=NOTIFY.name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    sns, sqs = (session.client(s, endpoint_url=world_endpoint) for s in ("sns", "sqs"))
    queue = sqs.create_queue(QueueName="sfncopy-e2e-run-summaries")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=queue_arn)
    support.create_bucket(support.clients(world_endpoint).s3, CONFIGS)
    yield Notified(stack, queue, sqs)


@pytest.fixture(scope="module")
def world_endpoint(emulator: Any) -> str:
    return str(emulator.endpoint)


def test_a_schedule_starts_a_run_of_its_stored_config_and_the_summary_arrives(world: World, notified: Notified):
    # GIVEN objects to copy and the config the schedule names, stored where the schedule says
    objects = [rich(f"in/sched/file-{i}.txt", 200 + i, "text/plain") for i in range(4)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/sched/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/sched/"}])
    world.s3.put_object(Bucket=CONFIGS, Key=CONFIG_KEY, Body=json.dumps(document).encode())
    # AND the schedule is deployed, as `sfncopy schedule list --deployed` shows
    listed = subprocess.run([*support.CLI, "schedule", "list", "--env", support.ENV, "--deployed"],
                            cwd=support.ROOT, env=support.process_environment(world.endpoint, NOTIFY),
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == f"nightly  rate(1 day)  UTC  s3://{CONFIGS}/{CONFIG_KEY}  [ENABLED]"

    # WHEN EventBridge Scheduler fires it (the emulator's bridge, as Scheduler would with its role and input)
    fired = control.fire_schedule(world.endpoint, f"{NOTIFY.name}-nightly")

    # THEN the run succeeds and copied every object, byte for byte
    result = support.wait_for(world.sfn, fired["executionArn"])
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["input"]) == {"s3_copy_config_location": f"s3://{CONFIGS}/{CONFIG_KEY}"}
    support.assert_targets(world.s3, {(target, "out/sched/" + o.key[len("in/sched/"):]): o for o in objects},
                           [target])
    # AND its summary arrived: status, counts, bytes, report, times
    run_id = result["name"]
    summary = notified.next_summary()
    assert summary["subject"] == f"sfncopy {NOTIFY.name}: run succeeded"
    report_json = uri(notified.stack.manifest_bucket, f"{notified.stack.run_prefix(run_id)}report.json")
    assert {k: summary[k] for k in ("status", "run_id", "copied", "failed", "bytes", "report")} == {
        "status": "succeeded", "run_id": run_id, "copied": 4, "failed": 0, "bytes": sum(200 + i for i in range(4)),
        "report": report_json}
    assert summary["execution"] == result["executionArn"]
    assert dt.datetime.fromisoformat(summary["started"]) <= dt.datetime.fromisoformat(summary["ended"])


def test_a_failed_run_notifies_its_cause(world: World, notified: Notified) -> None:
    # GIVEN a config naming a target bucket the stack may not write
    source = world.source(rich("in/fail/a.txt", 10, "text/plain"))
    document = support.config_document({"s3_bucket": source, "s3_path": "in/fail/"},
                                       [{"file_types": ["*"], "s3_bucket": "not-a-stack-bucket", "s3_path": "out/"}])
    # WHEN it runs
    name = support.execution_name("notify-fail")
    result = support.wait_for(world.sfn, support.start_execution(world.sfn, notified.stack, document, name))
    # THEN the run fails with the planner's error, and the notification says why
    assert result["status"] == "FAILED"
    assert result["error"] == "ConfigError"
    summary = notified.next_summary()
    assert summary["subject"] == f"sfncopy {NOTIFY.name}: run failed"
    assert (summary["status"], summary["run_id"], summary["error"]) == ("failed", name, "ConfigError")
    assert "not-a-stack-bucket" in summary["cause"]
    assert summary["failure_report"] == uri(notified.stack.manifest_bucket,
                                            f"{notified.stack.run_prefix(name)}failure.json")
    assert summary["partial"] is None  # it failed before it had a plan


def test_the_planner_may_read_no_stored_config_but_the_schedules(world: World, notified: Notified) -> None:
    # GIVEN a valid config stored beside the schedule's, which no schedule names
    source, target = world.source(rich("in/other/a.txt", 10, "text/plain")), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/other/"},
                                       [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/other/"}])
    world.s3.put_object(Bucket=CONFIGS, Key="schedules/other.json", Body=json.dumps(document).encode())
    # WHEN a run names it
    name = support.execution_name("notify-denied")
    location = {"s3_copy_config_location": f"s3://{CONFIGS}/schedules/other.json"}
    result = support.wait_for(world.sfn, support.start_execution(world.sfn, notified.stack, location, name))
    # THEN IAM denies the planner the read, and the run fails saying so, before copying anything
    assert result["status"] == "FAILED"
    assert result["error"] == "ConfigError"
    assert "cannot read" in result["cause"] and "AccessDenied" in result["cause"]
    assert support.list_keys(world.s3, target) == []
    assert notified.next_summary()["error"] == "ConfigError"
