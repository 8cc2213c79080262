"""The generated state machine, run by moto's ASL interpreter with small fake Lambdas.

The definition is created directly with the Step Functions API (the CloudFormation bridge belongs to the
emulator). Lambda execution is replaced by patching ``LambdaFunction._invoke_lambda`` (moto runs functions
only in Docker); it must return ``(payload_json, errored, logs)`` and an error payload in Lambda's
``errorType`` / ``errorMessage`` shape, which the interpreter turns into the error name Retry/Catch match.

Each worker is a Distributed Map whose ItemReader reads the worker's payload list from S3, so the fake planner
writes the lists into moto's S3 as the real one does, and answers with a pointer naming them. moto runs the
children in the parent's process but keeps no history of them (and does not enforce ToleratedFailurePercentage:
a failed child just leaves the Map, as 100 % does on AWS).
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
from sfncopy.emulator.bridges import map_iteration_patches, state_error_patches

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

    def copies(self) -> list[dict[str, Any]]:
        """The worker's copy invocations (not its record-failure ones, whose event carries an error)."""
        return [event for event in self.events("worker") if "error" not in event]

    def recorded(self) -> list[dict[str, Any]]:
        """The worker's record-failure invocations (the child's Catch)."""
        return [event for event in self.events("worker") if "error" in event]


MANIFESTS = "manifests"
FIRST_CURSOR = {"step": 0, "phase": "payloads", "position": 0}  # lambdas/finalizer_state.py, FIRST


def list_key(run_id: str, worker: int) -> str:
    return f"runs/{run_id}/plan/workers/{worker:05d}.json"


def item_key(run_id: str, payload: int) -> str:
    """Where a payload's file is, as its worker-list item says (a segment's key, as sharded planning's)."""
    return f"runs/{run_id}/plan/sharding/shards/000000/segments/{payload:06d}.json"


def plan_pointer(event: dict[str, Any], workers: list[list[int]], dry_run: bool = False) -> dict[str, Any]:
    """The planner's answer for payloads ``workers[i]`` on worker i (consecutive ids, as the planner numbers them)."""
    run_id = event["run_id"]
    return {"run_id": run_id, "manifest": {"bucket": MANIFESTS, "prefix": f"runs/{run_id}/"}, "dry_run": dry_run,
            "workers": [{"worker": i, "first_payload": p[0] if p else 0, "payloads": len(p),
                         "items": list_key(run_id, i)} for i, p in enumerate(workers)],
            "copies": 4, "bytes": 400, "skipped": 0}


def planner(workers: list[list[int]], dry_run: bool = False, missing: frozenset[int] = frozenset()) -> Handler:
    """A fake planner: writes each worker's payload list into moto's S3 (but not those of workers in
    ``missing``) and answers with the pointer naming them."""
    def plan(event: dict[str, Any]) -> dict[str, Any]:
        s3 = boto3.client("s3", region_name=REGION)
        for worker, ids in enumerate(workers):
            if worker not in missing:
                items = [{"payload": p, "worker": worker, "key": item_key(event["run_id"], p)} for p in ids]
                s3.put_object(Bucket=MANIFESTS, Key=list_key(event["run_id"], worker), Body=json.dumps(items))
        return plan_pointer(event, workers, dry_run)

    return plan


class FakeWorker:
    """Copies a payload in one go, or, for payloads in ``slow``, answers done=false once first."""

    def __init__(self, slow: frozenset[int] = frozenset()) -> None:
        self.slow = slow
        self.finished: dict[int, int] = {}  # payload -> worker that finished it
        self.lock = threading.Lock()

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        if "error" in task:  # record-failure mode: answered as the real worker answers, nothing copied
            return {"payload": task["payload"], "failure": f"{task['error']['Error']}: recorded"}
        # The child's input carries the payload's file key from its worker-list item (ItemSelector)
        assert task["payload_key"] == item_key(task["run_id"], task["payload"]), task
        invocation = task.get("invocation", 0) + 1
        done = task["payload"] not in self.slow or invocation > 1
        if done:
            with self.lock:
                assert task["payload"] not in self.finished, "a payload was finished twice"
                self.finished[task["payload"]] = task["worker"]
        return {**task, "invocation": invocation, "cursor": invocation, "done": done,
                "copied": task.get("copied", 0) + 1}


def summary_of(pointer: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": pointer["run_id"], "status": "dry-run" if pointer["dry_run"] else "succeeded",
            "report": f"s3://manifests/{pointer['manifest']['prefix']}report.json"}


def shards_key(run_id: str) -> str:
    return f"runs/{run_id}/finalizer/shards.json"


class FakeFinalizer:
    """The finalizer's three steps as the state machine calls them (lambdas/handlers.py, finalize): "shards"
    writes the FinalizeShards Map's items into moto's S3 (payloads ``per_shard`` to a shard, then one skipped
    shard), "shard" finalizes ``per_invocation`` payloads an invocation (done false with a cursor until its
    payloads are done), "merge" answers the summary. ``shard_events``: every shard invocation's event."""

    def __init__(self, per_shard: int = 2, per_invocation: int = 1_000) -> None:
        self.per_shard, self.per_invocation = per_shard, per_invocation
        self.shard_events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        if "mode" not in event:  # the shape before the fan-out: one chain over every payload, in the run
            return self.chain(event)
        pointer = event["pointer"]
        if event["mode"] == "shards":
            payloads = sum(w["payloads"] for w in pointer["workers"])
            items = [{"shard": i, "kind": "payloads", "first": first, "count": min(self.per_shard, payloads - first)}
                     for i, first in enumerate(range(0, payloads, self.per_shard))]
            items.append({"shard": len(items), "kind": "skipped", "key": f"runs/{pointer['run_id']}/plan/skipped.json"})
            key = shards_key(pointer["run_id"])
            boto3.client("s3", region_name=REGION).put_object(Bucket=MANIFESTS, Key=key, Body=json.dumps(items))
            return {"items": key, "shards": len(items)}
        if event["mode"] == "shard":
            with self.lock:
                self.shard_events.append(event)
            shard, step = event["shard"], event["cursor"]["step"]
            done_payloads = min(shard.get("count", 0), (step + 1) * self.per_invocation)
            if done_payloads < shard.get("count", 0):
                return {**event, "done": False, "cursor": {"step": step + 1, "phase": "payloads",
                                                           "position": done_payloads}}
            return {"done": True, "shard": shard["shard"], "rows": done_payloads}
        assert event["mode"] == "merge", event
        return summary_of(pointer)

    def chain(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.shard_events.append({**event, "shard": {"kind": "payloads"}})
        payloads, step = sum(w["payloads"] for w in event["workers"]), event["cursor"]["step"]
        if (step + 1) * self.per_invocation < payloads:
            return {**event, "done": False, "cursor": {"step": step + 1, "phase": "payloads",
                                                       "position": (step + 1) * self.per_invocation}}
        return summary_of(event)


def summary(event: dict[str, Any]) -> dict[str, Any]:
    """A finalizer whose fan-out is one shard per two payloads, each done in one invocation."""
    return FakeFinalizer()(event)


def merges(fakes: FakeLambdas) -> list[dict[str, Any]]:
    """The finalizer's merge invocations (Finalize, FinalizeMore)."""
    return [e for e in fakes.events("finalizer") if e.get("mode") == "merge"]


def merge_event(pointer: dict[str, Any]) -> dict[str, Any]:
    """Finalize's event: the plan pointer and the first cursor."""
    return {"mode": "merge", "pointer": pointer, "cursor": FIRST_CURSOR}


def cleanup(event: dict[str, Any]) -> dict[str, Any]:
    error = event["error"]
    try:  # a function's error carries Lambda's JSON; a state's own (States.*) a plain message
        message = json.loads(error["Cause"])["errorMessage"]
    except (ValueError, KeyError, TypeError):
        message = error.get("Cause", "")
    return {"run_id": event["run_id"], "error": error["Error"],
            "cause": f"{message} (failure report: s3://manifests/failure.json)",
            "aborted_uploads": 0, "failure_report": "s3://manifests/failure.json"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The emulator's bridges for the interpreter's gaps that this machine meets (sfncopy/emulator/bridges.py):
    # 13, a worker's items run in turn without one stack frame each; 15, a failed Map fails its Parallel
    # (States.ItemReaderFailed) instead of crashing the execution.
    for owner, name, value in map_iteration_patches() + state_error_patches():
        monkeypatch.setattr(owner, name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def start(fakes: FakeLambdas, monkeypatch: pytest.MonkeyPatch, workers: int, drain: int = 0,
          concurrency: int = 1) -> tuple[Any, str]:
    """Create the manifest bucket, the four functions and the generated machine; return the client and the
    machine's ARN."""
    sfn, arns, role = functions(fakes, monkeypatch)
    definition = build_definition(workers, Functions(**arns), FAST, drain=drain, concurrency=concurrency)
    machine = sfn.create_state_machine(name="sfncopy-test", definition=to_json(definition), roleArn=role)
    return sfn, machine["stateMachineArn"]


def functions(fakes: FakeLambdas, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, str], str]:
    """The manifest bucket, the four fake functions and a role: (Step Functions client, ARN by name, role)."""
    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return fakes.invoke(function, event)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=MANIFESTS)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfncopy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    arns = {name: lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"fake.{name}",
                                      Code={"ZipFile": b"fake"})["FunctionArn"]
            for name in ("planner", "worker", "finalizer", "cleanup")}
    return boto3.client("stepfunctions", region_name=REGION), arns, role


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
    # GIVEN a plan for 3 workers where payload 1 needs a continuation (done: false once)
    worker = FakeWorker(slow=frozenset({1}))
    fakes = FakeLambdas({"planner": planner([[0, 1], [2], [3]]), "worker": worker, "finalizer": summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=3)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it succeeds with the finalizer's summary as output
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"run_id": "run-1", "status": "succeeded",
                                            "report": "s3://manifests/runs/run-1/report.json"}
    # AND every payload was finished exactly once, by the worker it was planned for
    assert worker.finished == {0: 0, 1: 0, 2: 1, 3: 2}
    # AND the planner got the execution name as run id and the branch count; worker tasks carry pointers only
    assert fakes.events("planner") == [{"run_id": "run-1", "workers": 3,
                                        "input": {"s3_copy_config": {"source_s3_config": {}}}}]
    first = {"run_id": "run-1", "manifest": {"bucket": "manifests", "prefix": "runs/run-1/"}, "worker": 0,
             "payload": 1, "payload_key": item_key("run-1", 1)}
    payload1 = [e for e in fakes.events("worker") if e["payload"] == 1]
    assert payload1[0] == first
    # AND the continuation (inside the payload's child execution) got the worker's own answer back as its input
    assert payload1[1] == {**first, "invocation": 1, "cursor": 1, "done": False, "copied": 1}
    # AND payloads of one worker ran in plan order (Distributed Map, MaxConcurrency 1, items from its list)
    assert [e["payload"] for e in fakes.events("worker") if e["worker"] == 0] == [0, 1, 1]
    # AND the finalizer received the plan pointer, not the branches' output: first to cut the run into finalize
    # shards, then in each shard's child execution, then to merge them with its first cursor
    pointer = plan_pointer({"run_id": "run-1"}, [[0, 1], [2], [3]])
    finalizer_events = fakes.events("finalizer")
    assert finalizer_events[0] == {"mode": "shards", "pointer": pointer, "shard_rows": 200_000}
    assert sorted(e["shard"]["shard"] for e in finalizer_events if e["mode"] == "shard") == [0, 1, 2]
    assert all(e == {"mode": "shard", "pointer": pointer, "shard": e["shard"], "cursor": FIRST_CURSOR}
               for e in finalizer_events if e["mode"] == "shard")
    assert merges(fakes) == [merge_event(pointer)] == finalizer_events[-1:]
    assert fakes.events("cleanup") == []
    # AND each worker ran one Map Run over its list: its payloads, each a child execution that succeeded; and the
    # FinalizeShards Map one over the finalize shards (two of payloads, one of skipped objects)
    counts = sorted((run_counts["total"], run_counts["succeeded"]) for run_counts in map_run_items(sfn, result))
    assert counts == [(1, 1), (1, 1), (2, 2), (3, 3)]


def map_run_items(sfn: Any, result: dict[str, Any]) -> list[dict[str, int]]:
    """DescribeMapRun's itemCounts of every Map Run of the execution."""
    runs = sfn.list_map_runs(executionArn=result["executionArn"])["mapRuns"]
    return [sfn.describe_map_run(mapRunArn=r["mapRunArn"])["itemCounts"] for r in runs]


def test_a_worker_runs_as_many_payloads_at_once_as_its_concurrency(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one worker with 6 payloads that each take 0.3 s, and worker_concurrency 3
    running: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()

    def slow_worker(task: dict[str, Any]) -> dict[str, Any]:
        with lock:
            running.append(task["payload"])
            peak[0] = max(peak[0], len(running))
        time.sleep(0.3)
        with lock:
            running.remove(task["payload"])
        return {**task, "done": True}

    fakes = FakeLambdas({"planner": planner([[0, 1, 2, 3, 4, 5]]), "worker": slow_worker, "finalizer": summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=1, concurrency=3)
    # WHEN it runs  THEN it succeeds, every payload copied once, at most 3 (and more than 1) at a time
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    assert sorted(e["payload"] for e in fakes.events("worker")) == [0, 1, 2, 3, 4, 5]
    assert 1 < peak[0] <= 3


def test_dry_run_skips_the_workers(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a plan marked dry_run
    worker = FakeWorker()
    fakes = FakeLambdas({"planner": planner([[0], [1]], dry_run=True), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN it runs  THEN nothing is copied and the finalizer reports the dry run
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["status"] == "dry-run"
    assert worker.finished == {}


def test_a_finalizer_that_needs_another_invocation_is_called_again_with_its_answer(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a finalizer whose shard needs one invocation per payload, and whose merge answers done: false with a
    # cursor once (more split copies than one invocation settles), then the summary
    fan_out = FakeFinalizer(per_shard=2, per_invocation=1)

    def finalizer(event: dict[str, Any]) -> dict[str, Any]:
        if event["mode"] == "merge" and event["cursor"]["step"] == 0:
            return {**event, "done": False, "cursor": {"step": 1, "phase": "splits", "position": 64}}
        return fan_out(event)

    fakes = FakeLambdas({"planner": planner([[0], [1]]), "worker": FakeWorker(), "finalizer": finalizer,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN it runs  THEN the shard's child called the finalizer again with its own answer, in the child
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    pointer = plan_pointer({"run_id": "run-1"}, [[0], [1]])
    payload_shard = [e for e in fan_out.shard_events if e["shard"]["kind"] == "payloads"]
    assert [e["cursor"] for e in payload_shard] == [FIRST_CURSOR, {"step": 1, "phase": "payloads", "position": 1}]
    assert payload_shard[1] == {**payload_shard[0], "done": False, "cursor": payload_shard[1]["cursor"]}
    # AND the merge was called with the pointer and the first cursor, then with its own answer, and the summary
    # is the execution's output
    assert merges(fakes) == [merge_event(pointer), {**merge_event(pointer), "done": False,
                                                    "cursor": {"step": 1, "phase": "splits", "position": 64}}]
    assert json.loads(result["output"])["status"] == "succeeded"


def raise_fatal(event: dict[str, Any]) -> dict[str, Any]:
    raise LambdaError("TooManyFailedObjectsError", "2 objects failed, max_failed_objects is 0")


def test_fatal_error_goes_to_cleanup_and_fails_with_its_error_and_cause(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a finalizer that fails for good
    fakes = FakeLambdas({"planner": planner([[0], [1]]), "worker": FakeWorker(),
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


def fail_payload(payload: int, error_type: str = "ConfigError") -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A worker that fails for good on ``payload`` and copies every other payload at once (and records a
    failure as the real worker answers)."""
    def work(task: dict[str, Any]) -> dict[str, Any]:
        if "error" in task:
            return {"payload": task["payload"], "failure": f"{task['error']['Error']}: recorded"}
        if task["payload"] == payload:
            raise LambdaError(error_type, f"payload {payload} fails for good")
        return {**task, "done": True}

    return work


def test_a_payload_that_fails_for_good_fails_alone_and_the_finalizer_decides(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a worker whose second payload fails with an error that is not retried
    fakes = FakeLambdas({"planner": planner([[0, 1, 2], [3]]), "worker": fail_payload(1), "finalizer": summary,
                         "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN the failed payload's child execution failed alone: its worker went on with its next payload
    assert [e["payload"] for e in fakes.copies()].count(1) == 1
    assert sorted(e["payload"] for e in fakes.copies()) == [0, 1, 2, 3]
    # AND the child's Catch called the worker once more, to record the error: the PayloadTask and the error
    (recorded,) = fakes.recorded()
    assert {k: v for k, v in recorded.items() if k != "error"} == {
        "run_id": "run-1", "manifest": {"bucket": "manifests", "prefix": "runs/run-1/"}, "worker": 0, "payload": 1,
        "payload_key": item_key("run-1", 1)}
    assert recorded["error"]["Error"] == "ConfigError"
    assert json.loads(recorded["error"]["Cause"])["errorMessage"] == "payload 1 fails for good"
    # AND the run went on to the finalizer with the plan pointer (it counts the payload's tasks as failed and
    # applies max_failed_objects), with no cleanup in between
    assert merges(fakes) == [merge_event(plan_pointer({"run_id": "run-1"}, [[0, 1, 2], [3]]))]
    assert fakes.events("cleanup") == []
    assert result["status"] == "SUCCEEDED", result
    # AND the worker's Map Run counts the failed child (the FinalizeShards Map's three shards all succeeded)
    assert sorted((c["succeeded"], c["failed"]) for c in map_run_items(sfn, result)) == [(1, 0), (2, 1), (3, 0)]


class SlowWorker:
    """Copies each payload in ``seconds``, then writes (e.g. opens a multipart upload)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last_write = 0.0

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        time.sleep(self.seconds)
        self.last_write = time.monotonic()
        return {**task, "done": True}


def test_cleanup_waits_until_running_workers_can_no_longer_write(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two workers: worker 0's Map cannot read its payload list (the Map Run fails, and with it the Copy
    # Parallel), while worker 1's invocation is still running (Step Functions does not stop the Lambda
    # invocations of a failed Parallel's other branches) and writes 1.5 s later
    worker = SlowWorker(seconds=1.5)
    cleaned_at: list[float] = []

    def record_cleanup(event: dict[str, Any]) -> dict[str, Any]:
        cleaned_at.append(time.monotonic())
        return cleanup(event)

    fakes = FakeLambdas({"planner": planner([[0], [1]], missing=frozenset({0})), "worker": worker,
                         "finalizer": lambda e: {}, "cleanup": record_cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2, drain=3)
    # WHEN the execution runs
    result = run(sfn, machine)
    # THEN it fails without finalizing, and cleanup started only after the still-running worker's last write
    assert result["status"] == "FAILED", result
    assert fakes.events("finalizer") == []
    assert [e["payload"] for e in fakes.events("worker")] == [1]
    assert worker.last_write > 0, "the other worker's invocation ran to its end"
    (cleaned,) = cleaned_at
    assert cleaned > worker.last_write
    # AND cleanup was told why the Copy failed: the Map's error, as AWS names it
    (cleanup_event,) = fakes.events("cleanup")
    assert cleanup_event["error"]["Error"] == result["error"] == "States.ItemReaderFailed"
    assert "NoSuchKey" in cleanup_event["error"]["Cause"]


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
        if task["payload"] == 1 and self.failures > 0 and "error" not in task:
            self.failures -= 1
            raise LambdaError(self.error_type, "try again")
        return super().__call__(task)


@pytest.mark.parametrize("error_type", ["TransientError", "Sandbox.Timedout", "Lambda.TooManyRequestsException"])
def test_retryable_error_is_retried_and_the_run_succeeds(
        aws: None, monkeypatch: pytest.MonkeyPatch, error_type: str) -> None:
    # GIVEN a worker whose first invocation for payload 1 fails with a retryable error
    worker = FlakyWorker(error_type, failures=1)
    fakes = FakeLambdas({"planner": planner([[0], [1]]), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    # WHEN it runs  THEN the retry finishes the payload and the execution succeeds
    result = run(sfn, machine)
    assert result["status"] == "SUCCEEDED", result
    assert worker.finished == {0: 0, 1: 1}
    assert [e["payload"] for e in fakes.events("worker")].count(1) == 2


def test_retryable_error_that_persists_fails_the_payload_and_the_finalizer_decides(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN payload 1 failing more often than MaxAttempts allows, and payload 2 after it on the same worker
    worker = FlakyWorker("TransientError", failures=FAST.max_attempts + 1)
    fakes = FakeLambdas({"planner": planner([[0], [1, 2]]), "worker": worker,
                         "finalizer": summary, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    result = run(sfn, machine)
    # THEN the payload was tried MaxAttempts + 1 times and its child execution failed, its worker went on with
    # payload 2, and the run reached the finalizer (which counts payload 1's tasks as failed), not cleanup
    assert [e["payload"] for e in fakes.copies()].count(1) == FAST.max_attempts + 1
    # AND the error left after the retries was recorded (the fake worker's answer to it is dropped)
    assert [(e["payload"], e["error"]["Error"]) for e in fakes.recorded()] == [(1, "TransientError")]
    assert worker.finished == {0: 0, 2: 1}
    assert len(merges(fakes)) == 1 and fakes.events("cleanup") == []
    assert result["status"] == "SUCCEEDED", result


def history_length(sfn: Any, execution_arn: str) -> int:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return sum(len(page["events"]) for page in pages)


def measured_events(sfn: Any, machine: str, fakes: FakeLambdas, workers: list[list[int]],
                    slow: frozenset[int], name: str) -> int:
    """The length of the run's (parent) history for this plan."""
    fakes.handlers.update({"planner": planner(workers), "worker": FakeWorker(slow=slow)})
    result = run(sfn, machine, name=name)
    assert result["status"] == "SUCCEEDED", result
    return history_length(sfn, result["executionArn"])


def test_the_run_history_no_longer_grows_with_payloads_and_counts_what_it_records(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN runs of one 2-worker machine that differ by one payload and by one continuation, and a 3-worker machine
    fakes = FakeLambdas({"finalizer": summary, "cleanup": cleanup})
    sfn, two = start(fakes, monkeypatch, workers=2)
    three = sfn.create_state_machine(name="sfncopy-three", roleArn="arn:aws:iam::123456789012:role/sfncopy-test",
                                     definition=to_json(build_definition(3, Functions(**{
                                         name: fn["FunctionArn"] for name, fn in lambda_functions().items()}),
                                         FAST, drain=0)))["stateMachineArn"]
    base = measured_events(sfn, two, fakes, [[0, 1], [2]], frozenset(), "base")
    one_more_payload = measured_events(sfn, two, fakes, [[0, 1, 2], [3]], frozenset(), "payload")
    one_continuation = measured_events(sfn, two, fakes, [[0, 1], [2]], frozenset({1}), "continuation")
    one_more_worker = measured_events(sfn, three, fakes, [[0, 1], [2], []], frozenset(), "worker")
    # THEN payloads and their continuations add nothing to the run's execution (their events are in the
    # children's histories), a worker adds exactly EVENTS_PER_WORKER (its Distributed Map's six events)
    assert one_more_payload == base == one_continuation
    assert one_more_worker - base == limits.EVENTS_PER_WORKER == 6
    # AND the planner's estimate of the run's execution is never below what it records
    assert history.parent_events(2) >= base and history.parent_events(3) >= one_more_worker


def lambda_functions() -> dict[str, Any]:
    lam = boto3.client("lambda", region_name=REGION)
    return {fn["FunctionName"]: fn for fn in lam.list_functions()["Functions"]}


def test_a_payloads_child_history_holds_that_payload_and_its_continuations_only(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the child of worker 0's Distributed Map, run as an execution of its own: moto discards the histories
    # of a Map's children, so this is how their shape is measured
    fakes = FakeLambdas({"worker": FakeWorker(slow=frozenset({1}))})
    sfn, arns, role = functions(fakes, monkeypatch)
    branch = build_definition(1, Functions(**arns), FAST)["States"]["Copy"]["Branches"][0]
    processor = branch["States"][branch["StartAt"]]["ItemProcessor"]
    child = {"StartAt": processor["StartAt"], "States": processor["States"]}
    machine = sfn.create_state_machine(name="sfncopy-child", definition=json.dumps(child),
                                       roleArn=role)["stateMachineArn"]

    def child_events(payload: int) -> int:
        task = {"run_id": "run-1", "manifest": {"bucket": MANIFESTS, "prefix": "runs/run-1/"}, "worker": 0,
                "payload": payload, "payload_key": item_key("run-1", payload)}
        arn = sfn.start_execution(stateMachineArn=machine, name=f"payload-{payload}",
                                  input=json.dumps(task))["executionArn"]
        deadline = time.monotonic() + 20
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        described = sfn.describe_execution(executionArn=arn)
        assert described["status"] == "SUCCEEDED", described
        assert json.loads(described["output"]) == {}  # what the Map collects per child: nothing that grows
        return history_length(sfn, arn)

    # WHEN a payload done in one invocation, and one that needs a continuation, run
    plain, continued = child_events(0), child_events(1)
    # THEN a child records EVENTS_PER_CHILD events (start, Task 5, Choice 2, Succeed 2, end) and each extra
    # invocation EVENTS_PER_CONTINUATION (Task 5, Choice 2), as lambdas/history.py budgets them
    assert plain == limits.EVENTS_PER_CHILD == 11
    assert continued - plain == limits.EVENTS_PER_CONTINUATION == 7
    assert history.child_events(0) >= plain and history.child_events(1) >= continued


def test_a_failed_payloads_child_records_the_error_and_fails_with_it_within_its_history_budget(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN worker 0's child machine run on its own, with a worker that fails payload 1 for good (ConfigError,
    # not retried) and payload 2 with a TransientError on every attempt
    def work(task: dict[str, Any]) -> dict[str, Any]:
        if "error" in task:
            return {"payload": task["payload"], "failure": "recorded"}
        if task["payload"] == 2:
            raise LambdaError("TransientError", "slow down")
        raise LambdaError("ConfigError", "bad settings")

    fakes = FakeLambdas({"worker": work})
    sfn, arns, role = functions(fakes, monkeypatch)
    branch = build_definition(1, Functions(**arns), FAST)["States"]["Copy"]["Branches"][0]
    processor = branch["States"][branch["StartAt"]]["ItemProcessor"]
    machine = sfn.create_state_machine(name="sfncopy-child", roleArn=role, definition=json.dumps(
        {"StartAt": processor["StartAt"], "States": processor["States"]}))["stateMachineArn"]

    def child(payload: int) -> tuple[dict[str, Any], int]:
        task = {"run_id": "run-1", "manifest": {"bucket": MANIFESTS, "prefix": "runs/run-1/"}, "worker": 0,
                "payload": payload, "payload_key": item_key("run-1", payload)}
        arn = sfn.start_execution(stateMachineArn=machine, name=f"payload-{payload}",
                                  input=json.dumps(task))["executionArn"]
        deadline = time.monotonic() + 20
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        return sfn.describe_execution(executionArn=arn), history_length(sfn, arn)

    # WHEN both run
    (fatal, fatal_events), (retried, retried_events) = child(1), child(2)
    # THEN each child fails with its copy's own error (the Map Run counts it failed), not the recorder's
    assert (fatal["status"], fatal["error"]) == ("FAILED", "ConfigError")
    assert json.loads(fatal["cause"])["errorMessage"] == "bad settings"
    assert (retried["status"], retried["error"]) == ("FAILED", "TransientError")
    # AND the recorder was called once per child, with the PayloadTask and the error its Catch caught
    assert [(e["payload"], e["error"]["Error"]) for e in fakes.recorded()] == [(1, "ConfigError"),
                                                                                (2, "TransientError")]
    # AND the failure path records what lambdas/history.py budgets: RecordFailure and PayloadFailed add
    # EVENTS_FAILED_CHILD_EXTRA to a copied child's events, each retry EVENTS_PER_RETRY
    assert fatal_events == limits.EVENTS_PER_CHILD + limits.EVENTS_FAILED_CHILD_EXTRA == 13
    assert retried_events - fatal_events == FAST.max_attempts * limits.EVENTS_PER_RETRY
    assert history.child_events(0) >= limits.EVENTS_PER_CHILD + history.FAILED_CHILD_TAIL >= retried_events


def test_the_run_history_does_not_grow_with_the_finalize_shards_or_their_continuations(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a finalizer that finalizes one payload per invocation, two payloads to a finalize shard: a run of 2
    # payloads needs 2 finalizer invocations, a run of 12 needs 12 in 6 shards. In a finalize loop of the run's
    # own (the shape before the fan-out) each extra invocation added 7 events to the run's history.
    fan_out = FakeFinalizer(per_shard=2, per_invocation=1)
    fakes = FakeLambdas({"finalizer": fan_out, "cleanup": cleanup})
    sfn, machine = start(fakes, monkeypatch, workers=2)
    small = measured_events(sfn, machine, fakes, [[0], [1]], frozenset(), "small")
    large = measured_events(sfn, machine, fakes, [list(range(6)), list(range(6, 12))], frozenset(), "large")
    # THEN the run's history is the same length for both: the shards' invocations are in their own children
    assert large == small
    # AND the finalizer was called once per payload in the shards' children (and each shard continued)
    payload_calls = [e for e in fan_out.shard_events if e["shard"]["kind"] == "payloads"]
    assert len(payload_calls) == 2 + 12
    assert sum(1 for e in payload_calls if e["cursor"]["step"] > 0) == 1 + 6
    # AND no larger than lambdas/history.py budgets for the run's execution
    assert history.parent_events(2) >= large


def test_a_finalize_shards_child_history_holds_its_invocations_only(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the FinalizeShards Map's child, run as an execution of its own (moto discards children's histories)
    fan_out = FakeFinalizer(per_shard=3, per_invocation=1)
    fakes = FakeLambdas({"finalizer": fan_out})
    sfn, arns, role = functions(fakes, monkeypatch)
    processor = build_definition(1, Functions(**arns), FAST)["States"]["FinalizeShards"]["ItemProcessor"]
    machine = sfn.create_state_machine(name="sfncopy-finalize-shard", roleArn=role, definition=json.dumps(
        {"StartAt": processor["StartAt"], "States": processor["States"]}))["stateMachineArn"]

    def child_events(payloads: int) -> int:
        event = {"mode": "shard", "pointer": plan_pointer({"run_id": "run-1"}, [list(range(payloads))]),
                 "shard": {"shard": 0, "kind": "payloads", "first": 0, "count": payloads}, "cursor": FIRST_CURSOR}
        arn = sfn.start_execution(stateMachineArn=machine, name=f"shard-{payloads}",
                                  input=json.dumps(event))["executionArn"]
        deadline = time.monotonic() + 20
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        described = sfn.describe_execution(executionArn=arn)
        assert described["status"] == "SUCCEEDED", described
        assert json.loads(described["output"]) == {}  # what the Map collects per child: nothing that grows
        return history_length(sfn, arn)

    # WHEN a shard done in one invocation, and one that needs two more, run
    plain, continued = child_events(1), child_events(3)
    # THEN the child records what a payload's child does: EVENTS_PER_CHILD, and EVENTS_PER_CONTINUATION for each
    # extra invocation (so a shard's continuations are budgeted as a payload's)
    assert plain == limits.EVENTS_PER_CHILD
    assert continued - plain == 2 * limits.EVENTS_PER_CONTINUATION
