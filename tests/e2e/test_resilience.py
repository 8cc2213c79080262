"""Cases 1-4 of the failure suite: the run survives what Lambda and S3 do on a bad day.

1. a worker invocation times out in the middle of a payload;
2. the worker process dies in the middle of a multipart copy;
3. Lambda service errors on the first invocations;
4. S3 answers SlowDown to a fifth of the copy requests.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import MiB, Stack, rich, uri

pytestmark = pytest.mark.e2e


def _run_ok(world: World, stack: Stack, document: dict[str, Any], label: str) -> tuple[support.CliRun, str]:
    run, name = world.run(stack, document, label)
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"
    return run, name


def test_worker_timeout_mid_payload_still_copies_every_object_exactly_once(world: World, solo_stack: Stack) -> None:
    # GIVEN one worker (5 s timeout, one thread) with one payload of 200 objects
    objects = [rich(f"in/t/{i:03d}.bin", 2_000 + i) for i in range(200)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/t/"},
                                       [{"file_types": ["bin"], "s3_bucket": target, "s3_path": "out/copy/"}])
    name = support.execution_name("timeout")
    started = time.monotonic()
    process = support.start_cli(world.endpoint, solo_stack, document, name, world.work_dir)

    # WHEN, 20 objects into the payload, S3 stalls every CopyObject (SlowDown, retried with growing
    # backoff inside the invocation) until the invocation has run into its Lambda timeout
    def copies() -> int:
        return int(world.emulator.stats()["s3_requests"].get("CopyObject", 0))

    support.wait_until(lambda: copies() >= 20, timeout=60, what="20 copies")
    world.emulator.set_faults({"s3": {"slow_down_fraction": 1.0, "operations": ["CopyObject"]}})
    # (the worker's failed invocations are in its payload's child execution, whose history moto does not keep:
    # the emulator's log of the function shows the timeout, as CloudWatch Logs does on AWS)
    def timed_out() -> bool:
        return any("Task timed out" in block and name in block
                   for block in support.invocation_logs(world.emulator.log_dir, solo_stack.worker_function))

    support.wait_until(timed_out, timeout=60, interval=0.1, what="the worker's timeout")
    world.emulator.clear_faults()
    run = support.finish_cli(process, solo_stack, name, started)

    # THEN the execution succeeds (Step Functions retried the timed-out invocation, which resumed)
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"
    # AND the timeout hit in the middle of the payload: the killed invocation had finished some tasks, not all
    logs = [b for b in support.invocation_logs(world.emulator.log_dir, solo_stack.worker_function) if name in b]
    timed_out = [b for b in logs if "Task timed out" in b]
    assert len(timed_out) == 1, f"expected one timed-out invocation of run {name}, found {len(timed_out)}"
    finished = [r for r in support.log_records(timed_out[0]) if r.get("message") == "task finished"]
    assert 0 < len(finished) < len(objects), f"the timeout did not land mid-payload ({len(finished)} tasks done)"
    # AND every object arrived exactly once, byte for byte, and the report lists each once as copied
    copied = {o.key: f"out/copy/{o.key[len('in/t/'):]}" for o in objects}
    support.assert_targets(world.s3, {(target, copied[o.key]): o for o in objects}, [target])
    report = support.read_report(world.s3, solo_stack, name)
    assert report.statuses() == {uri(target, copied[o.key]): "copied" for o in objects}
    assert report.summary["counts"]["copied"] == len(objects)
    support.assert_no_incomplete_uploads(world.s3, solo_stack, target)


def test_worker_killed_mid_multipart_resumes_and_reuses_finished_parts(world: World, solo_stack: Stack) -> None:
    # GIVEN one worker copying a 60 MiB object in twelve 5 MiB parts, two at a time, in its own upload
    parts = 12
    big = rich("in/m/big.bin", parts * support.PART_SIZE)
    source, target = world.source(big), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/m/"},
                                       [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}])
    name = support.execution_name("killed")
    started = time.monotonic()
    process = support.start_cli(world.endpoint, solo_stack, document, name, world.work_dir)

    # WHEN the worker process is killed (SIGKILL) once at least two parts are in the upload
    def upload_with_parts() -> tuple[str, int] | None:
        uploads = world.s3.list_multipart_uploads(Bucket=target).get("Uploads", [])
        if not uploads:
            return None
        listed = world.s3.list_parts(Bucket=target, Key="out/big.bin", UploadId=uploads[0]["UploadId"])
        done = len(listed.get("Parts", []))
        return (uploads[0]["UploadId"], done) if done >= 2 else None

    upload_id, _ = support.wait_until(upload_with_parts, timeout=60, interval=0.005, what="two copied parts")
    pids = world.emulator.lambda_pids(solo_stack.worker_function)
    assert len(pids) == 1, f"expected one busy worker process, found {pids}"
    os.kill(pids[0], signal.SIGKILL)
    reused = len(world.s3.list_parts(Bucket=target, Key="out/big.bin", UploadId=upload_id).get("Parts", []))
    assert reused < parts, "the multipart copy finished before the kill: make the object larger"
    run = support.finish_cli(process, solo_stack, name, started)

    # THEN the execution succeeds after Step Functions retried the dead invocation
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"
    # (the Runtime.ExitError is in the payload's child execution, whose history moto does not keep: the function's
    # log shows the killed invocation, as CloudWatch Logs does on AWS, and the retry of this run right after it;
    # the killed process's own output died with it)
    logs = support.invocation_logs(world.emulator.log_dir, solo_stack.worker_function)
    killed = [i for i, block in enumerate(logs) if "Runtime exited with error: signal: killed" in block]
    assert any(name in block for i in killed for block in logs[i + 1:i + 2]), "no killed invocation retried"
    # AND the object is whole and correct
    support.assert_targets(world.s3, {(target, "out/big.bin"): big}, [target])
    assert world.s3.head_object(Bucket=target, Key="out/big.bin")["ETag"].strip('"').endswith(f"-{parts}")
    support.assert_no_incomplete_uploads(world.s3, solo_stack, target)
    # AND the finished parts were reused, not copied again: the resumed invocation sent HEAD, GetObjectTagging,
    # ListParts, the missing parts and CompleteMultipartUpload (a fresh copy needs all 12 parts and a create)
    row = support.read_report(world.s3, solo_stack, name).by_source()[uri(source, "in/m/big.bin")][0]
    assert row["status"] == "copied" and int(row["parts"]) == parts
    assert int(row["attempts"]) <= 4 + parts - reused, row
    copies = world.emulator.stats()["s3_requests"].get("UploadPartCopy", 0)
    assert parts <= copies < 2 * parts, f"{copies} UploadPartCopy requests for {parts} parts"


def test_lambda_service_errors_on_the_first_invocations_are_retried(world: World, main_stack: Stack) -> None:
    # GIVEN Lambda's service failing the first two invocations of the planner and of the worker
    objects = [rich(f"in/s/{i}.dat", 100 + i) for i in range(12)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/s/"},
                                       [{"file_types": ["dat"], "s3_bucket": target, "s3_path": "out/"}])
    world.emulator.set_faults({"lambda": [
        {"function": main_stack.function("planner"), "invocations": [1, 2], "action": "error",
         "error": "Lambda.ServiceException"},
        {"function": main_stack.worker_function, "invocations": [1, 2], "action": "error",
         "error": "Lambda.TooManyRequestsException"},
    ]})

    # WHEN
    run, name = _run_ok(world, main_stack, document, "service-errors")

    # THEN the failed invocations were retried, by the deployed machine's Retry with exponential backoff
    # and full jitter (moto's interpreter sleeps those waits), and the run completed
    definition = json.loads(world.sfn.describe_state_machine(stateMachineArn=main_stack.state_machine_arn)[
        "definition"])
    retriers = list(_retriers(definition, "Task"))
    # Plan, StartFinalize, FinalizeShard (in the FinalizeShards Map's children), Finalize, FinalizeMore, Cleanup,
    # and each worker's task (in its Distributed Map's children)
    assert len(retriers) == 6 + main_stack.spec.workers, retriers
    for retry in retriers:
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= set(retry["ErrorEquals"])
        assert (retry["IntervalSeconds"] >= 1, retry["BackoffRate"] > 1, retry["MaxAttempts"] >= 3,
                retry["JitterStrategy"]) == (True, True, True, "FULL"), retry
    # The planner's two failures are in the run's history; the worker's in its first payload's child execution,
    # whose history moto does not keep: the emulator counts the faults it fired and the invocations instead
    errors = support.failed_task_errors(support.history(world.sfn, run.arn))
    assert errors.count("Lambda.ServiceException") == 2, errors
    stats = world.emulator.stats()
    fired = [f["error"] for f in stats["faults_fired"] if f["function"] == main_stack.worker_function]
    assert fired == ["Lambda.TooManyRequestsException"] * 2, stats["faults_fired"]
    invocations = stats["lambda_invocations"]
    assert invocations[main_stack.function("planner")] == 3
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/s/"):]): o for o in objects}, [target])
    assert support.read_report(world.s3, main_stack, name).summary["counts"]["copied"] == len(objects)
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)


def _retriers(node: Any, state_type: str) -> Iterator[dict[str, Any]]:
    """Every Retry entry of the states of ``state_type`` anywhere in a state machine definition."""
    if isinstance(node, dict):
        if node.get("Type") == state_type:
            yield from node.get("Retry", [])
        for value in node.values():
            yield from _retriers(value, state_type)
    elif isinstance(node, list):
        for value in node:
            yield from _retriers(value, state_type)


def test_s3_slowdown_on_a_fifth_of_copy_requests_completes_and_reports_retries(
        world: World, main_stack: Stack) -> None:
    # GIVEN S3 answering 503 SlowDown to a fifth of CopyObject and UploadPartCopy requests
    objects = [rich(f"in/w/{i:02d}.dat", 1_000 + i) for i in range(40)]
    objects.append(rich("in/w/large.dat", 21 * MiB, in_parts=7 * MiB))
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/w/"},
                                       [{"file_types": ["dat"], "s3_bucket": target, "s3_path": "out/"}])
    world.emulator.set_faults({"s3": {"slow_down_fraction": 0.2, "seed": 5}})

    # WHEN
    _, name = _run_ok(world, main_stack, document, "slowdown")

    # THEN every object arrived intact
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/w/"):]): o for o in objects}, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    # AND the report shows the retries S3's SlowDowns caused, per object and in total
    throttled = sum(world.emulator.stats()["s3_throttled"].values())
    assert throttled > 0
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["counts"]["copied"] == len(objects)
    row_retries = sum(int(r["retries"]) for r in report.rows)
    assert report.summary["retries"] == row_retries == throttled
