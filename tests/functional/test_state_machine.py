"""The generated state machine, run by moto's ASL interpreter with small fake Lambdas.

The definition is created directly with the Step Functions API (the CloudFormation bridge belongs to the
emulator). Lambda execution is replaced by patching ``LambdaFunction._invoke_lambda`` (moto runs functions
only in Docker); it must return ``(payload_json, errored, logs)`` and an error payload in Lambda's
``errorType`` / ``errorMessage`` shape, which the interpreter turns into the error name Retry/Catch match.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

from generator.state_machine import Functions, RetryTiming, build_definition, to_json
from lambdas import history, limits

REGION = "us-east-1"
FAST = RetryTiming(interval_seconds=1, max_attempts=2, backoff_rate=1.0, max_delay_seconds=1)
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class LambdaError(Exception):
    """Raised by a fake handler: reported like Lambda reports an unhandled exception."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class FakeLambdas:
    """The four functions' fake handlers and what they were asked to do, in order."""

    handlers: dict[str, Handler]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        name = function.function_name
        with self.lock:
            self.calls.append((name, event))
        try:
            return json.dumps(self.handlers[name](event)), False, ""
        except LambdaError as err:
            return json.dumps({"errorType": err.error_type, "errorMessage": str(err)}), True, ""

    def events(self, name: str) -> list[dict[str, Any]]:
        return [event for function, event in self.calls if function == name]


def plan_pointer(event: dict[str, Any], workers: list[list[int]], dry_run: bool = False) -> dict[str, Any]:
    return {"run_id": event["run_id"], "manifest": {"bucket": "manifests", "prefix": f"runs/{event['run_id']}/"},
            "dry_run": dry_run, "workers": [{"worker": i, "payloads": p} for i, p in enumerate(workers)],
            "copies": 4, "bytes": 400, "skipped": 0}


class FakeWorker:
    """Copies a payload in one go, or, for payloads in ``slow``, answers done=false once first."""

    def __init__(self, slow: frozenset[int] = frozenset()) -> None:
        self.slow = slow
        self.finished: dict[int, int] = {}  # payload -> worker that finished it
        self.lock = threading.Lock()

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        invocation = task.get("invocation", 0) + 1
        done = task["payload"] not in self.slow or invocation > 1
        if done:
            with self.lock:
                assert task["payload"] not in self.finished, "a payload was finished twice"
                self.finished[task["payload"]] = task["worker"]
        return {**task, "invocation": invocation, "cursor": invocation, "done": done,
                "copied": task.get("copied", 0) + 1}


def summary(pointer: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": pointer["run_id"], "status": "dry-run" if pointer["dry_run"] else "succeeded",
            "report": f"s3://manifests/{pointer['manifest']['prefix']}report.json"}


def cleanup(event: dict[str, Any]) -> dict[str, Any]:
    error = event["error"]
    return {"run_id": event["run_id"], "error": error["Error"],
            "cause": f"{json.loads(error['Cause'])['errorMessage']} (failure report: s3://manifests/failure.json)",
            "aborted_uploads": 0, "failure_report": "s3://manifests/failure.json"}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def start(fakes: FakeLambdas, monkeypatch: pytest.MonkeyPatch, workers: int, drain: int = 0) -> tuple[Any, str]:
    """Create the four functions and the generated machine; return the client and the machine's ARN."""
    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return fakes.invoke(function, event)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfncopy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    arns = {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"fake.{name}",
                                      Code={"ZipFile": b"fake"})["FunctionArn"]
            for name in ("planner", "worker", "finalizer", "cleanup")}
    definition = build_definition(workers, Functions(**arns), FAST, drain=drain)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="sfncopy-test", definition=to_json(definition), roleArn=role)
    return sfn, machine["stateMachineArn"]


def run(sfn: Any, machine: str, name: str = "run-1", timeout: float = 20.0) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=machine, name=name,
                                    input=json.dumps({"s3_copy_config": {"source_s3_config": {}}}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"execution {name} still running after {timeout} s")


def test_happy_path_each_worker_copies_its_payloads_and_continues_until_done(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a plan for 3 workers where payload 3 needs a continuation (done: false once)
    worker = FakeWorker(slow=frozenset({3}))
    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0, 3], [1], [2]]), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=3)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it succeeds with the finalizer's summary as output
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"run_id": "run-1", "status": "succeeded",
                                            "report": "s3://manifests/runs/run-1/report.json"}
    # AND every payload was finished exactly once, by the worker it was planned for
    assert worker.finished == {0: 0, 3: 0, 1: 1, 2: 2}
    # AND the planner got the execution name as run id and the branch count; worker tasks carry pointers only
    assert fakes.events("planner") == [{"run_id": "run-1", "workers": 3,
                                        "input": {"s3_copy_config": {"source_s3_config": {}}}}]
    first = {"run_id": "run-1", "manifest": {"bucket": "manifests", "prefix": "runs/run-1/"}, "worker": 0,
             "payload": 3}
    payload3 = [e for e in fakes.events("worker") if e["payload"] == 3]
    assert payload3[0] == first
    # AND the continuation got the worker's own answer back as its input
    assert payload3[1] == {**first, "invocation": 1, "cursor": 1, "done": False, "copied": 1}
    # AND payloads of one worker ran in plan order (Map, MaxConcurrency 1)
    assert [e["payload"] for e in fakes.events("worker") if e["worker"] == 0] == [0, 3, 3]
    # AND the finalizer received the plan pointer, not the branches' output
    assert fakes.events("finalizer") == [plan_pointer({"run_id": "run-1"}, [[0, 3], [1], [2]])]
    assert fakes.events("cleanup") == []


def test_dry_run_skips_the_workers(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a plan marked dry_run
    worker = FakeWorker()
    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0], [1]], dry_run=True), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN it runs  THEN nothing is copied and the finalizer reports the dry run
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["status"] == "dry-run"
    assert worker.finished == {}


def raise_fatal(event: dict[str, Any]) -> dict[str, Any]:
    raise LambdaError("TooManyFailedObjectsError", "2 objects failed, max_failed_objects is 0")


def test_fatal_error_goes_to_cleanup_and_fails_with_its_error_and_cause(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a finalizer that fails for good
    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0], [1]]), "worker": FakeWorker(),
                         "finalizer": raise_fatal, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it fails with the original error name and the cleanup's readable cause
    assert result["status"] == "FAILED", result
    assert result["error"] == "TooManyFailedObjectsError"
    assert result["cause"] == ("2 objects failed, max_failed_objects is 0 "
                               "(failure report: s3://manifests/failure.json)")
    # AND the fatal error was not retried, and cleanup saw it with the run id
    assert len(fakes.events("finalizer")) == 1
    (cleanup_event,) = fakes.events("cleanup")
    assert cleanup_event["run_id"] == "run-1"
    assert cleanup_event["error"]["Error"] == "TooManyFailedObjectsError"


class SlowWorker:
    """Worker 0 fails for good at once; worker 1's invocation is still running then, and writes later."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last_write = 0.0

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["worker"] == 0:
            raise LambdaError("ConfigError", "worker 0 fails")
        time.sleep(self.seconds)
        self.last_write = time.monotonic()  # e.g. opens a multipart upload
        return {**task, "done": True}


def test_cleanup_waits_until_running_workers_can_no_longer_write(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two workers: one fails at once, the other's invocation keeps running (Step Functions does not
    # stop Lambda invocations of a failed Parallel's other branches) and writes 1.5 s later
    worker = SlowWorker(seconds=1.5)
    cleaned_at: list[float] = []

    def record_cleanup(event: dict[str, Any]) -> dict[str, Any]:
        cleaned_at.append(time.monotonic())
        return cleanup(event)

    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0], [1]]), "worker": worker,
                         "finalizer": lambda e: {}, "cleanup": record_cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2, drain=3)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it fails, and cleanup started only after the still-running worker's last write
    assert result["status"] == "FAILED", result
    assert result["error"] == "ConfigError"
    assert worker.last_write > 0, "the other worker's invocation ran to its end"
    (cleaned,) = cleaned_at
    assert cleaned > worker.last_write


def test_planner_config_error_fails_before_any_copy(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_config(event: dict[str, Any]) -> dict[str, Any]:
        raise LambdaError("ConfigError", "1 problem in s3_copy_config: s3_copy_config.source_s3_config.s3_bucket: "
                                         "missing")

    worker = FakeWorker()
    fakes = FakeLambdas({"planner": bad_config, "worker": worker, "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    result = run(sfn, machine)
    assert (result["status"], result["error"]) == ("FAILED", "ConfigError")
    assert "s3_copy_config.source_s3_config.s3_bucket" in result["cause"]
    assert len(fakes.events("planner")) == 1 and worker.finished == {}


class FlakyWorker(FakeWorker):
    """Fails the first ``failures`` invocations of payload 1 with ``error_type``."""

    def __init__(self, error_type: str, failures: int) -> None:
        super().__init__()
        self.error_type = error_type
        self.failures = failures

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["payload"] == 1 and self.failures > 0:
            self.failures -= 1
            raise LambdaError(self.error_type, "try again")
        return super().__call__(task)


@pytest.mark.parametrize("error_type", ["TransientError", "Sandbox.Timedout", "Lambda.TooManyRequestsException"])
def test_retryable_error_is_retried_and_the_run_succeeds(
        aws: None, monkeypatch: pytest.MonkeyPatch, error_type: str) -> None:
    # GIVEN a worker whose first invocation for payload 1 fails with a retryable error
    worker = FlakyWorker(error_type, failures=1)
    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0], [1]]), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN it runs  THEN the retry finishes the payload and the execution succeeds
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    assert worker.finished == {0: 0, 1: 1}
    assert [e["payload"] for e in fakes.events("worker")].count(1) == 2


def test_retryable_error_that_persists_ends_in_cleanup(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN payload 1 failing more often than MaxAttempts allows
    worker = FlakyWorker("TransientError", failures=FAST.max_attempts + 1)
    fakes = FakeLambdas({"planner": lambda e: plan_pointer(e, [[0], [1]]), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    result = run(sfn, machine)
    # THEN the Parallel's Catch sends it to cleanup, and the execution fails with the error
    assert (result["status"], result["error"]) == ("FAILED", "TransientError")
    assert [e["payload"] for e in fakes.events("worker")].count(1) == FAST.max_attempts + 1
    assert fakes.events("finalizer") == []


def history_length(sfn: Any, execution_arn: str) -> int:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return sum(len(page["events"]) for page in pages)


def measured_events(sfn: Any, machine: str, fakes: FakeLambdas, workers: list[list[int]],
                    slow: frozenset[int], name: str) -> int:
    fakes.handlers.update({"planner": lambda e: plan_pointer(e, workers), "worker": FakeWorker(slow=slow)})
    result = run(sfn, machine, name=name)
    assert result["status"] == "SUCCEEDED", result
    return history_length(sfn, result["executionArn"])


def test_the_history_budget_counts_what_an_execution_really_records(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN runs that differ by one payload, and by one continuation (one machine of 2 workers)
    fakes = FakeLambdas({"finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    base = measured_events(sfn, machine, fakes, [[0, 1], []], frozenset(), "base")
    one_more_payload = measured_events(sfn, machine, fakes, [[0, 1, 2], []], frozenset(), "payload")
    one_continuation = measured_events(sfn, machine, fakes, [[0, 1], []], frozenset({1}), "continuation")
    # THEN a payload costs exactly EVENTS_PER_PAYLOAD (Map iteration 2, Task 5, Choice 2, Succeed 2) and a
    # continuation EVENTS_PER_CONTINUATION (Task 5, Choice 2)
    assert one_more_payload - base == limits.EVENTS_PER_PAYLOAD == 11
    assert one_continuation - base == limits.EVENTS_PER_CONTINUATION
    # AND the planner's estimate is never below the measured history
    assert history.history_events(2, 2, 0) >= base
    assert history.history_events(2, 3, 0) >= one_more_payload
    assert history.history_events(2, 2, 1) >= one_continuation
