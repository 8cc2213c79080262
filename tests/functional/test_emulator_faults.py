"""Fault injection in the emulator: Lambda faults on the Nth invocation, S3 SlowDown on copy requests,
request counts, and the /_sfncopy/ control endpoint other processes use."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sfncopy.emulator import FaultPlanError, control
from tests.functional.emulator_helpers import (
    create_function,
    failed_task_errors,
    invoke,
    run_execution,
    task_state_machine,
)

MiB = 1024 * 1024
RETRY = {"IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}


@pytest.fixture(scope="module")
def clients(emulator_client: Any) -> dict[str, Any]:
    return {name: emulator_client(name) for name in ("s3", "lambda", "iam", "stepfunctions")}


@pytest.fixture(scope="module")
def victim(clients: dict[str, Any]) -> str:
    create_function(clients["lambda"], clients["iam"], "victim", timeout=3)
    return "victim"


@pytest.fixture(autouse=True)
def no_faults_after(emulator: Any) -> Any:
    yield
    emulator.clear_faults()


def test_the_nth_invocation_raises_a_named_function_error(emulator, clients, victim):
    # GIVEN a plan: the 2nd invocation of the victim raises TransientError
    emulator.set_faults({"lambda": [{"function": victim, "invocation": 2, "action": "error",
                                     "error": "TransientError", "message": "injected"}]})

    # WHEN it is invoked three times
    answers = [invoke(clients["lambda"], victim, {}) for _ in range(3)]

    # THEN only the second one failed, as a function error named TransientError
    assert [error is not None for error, _ in answers] == [False, True, False]
    assert answers[1][1]["errorType"] == "TransientError"
    assert answers[1][1]["errorMessage"] == "injected"
    assert [f.invocation for f in emulator.fired_faults()] == [2]


def test_the_nth_invocation_times_out(emulator, clients, victim):
    # GIVEN a plan: the 1st invocation of any function matching "vic*" times out at once
    emulator.set_faults({"lambda": [{"function": "vic*", "invocation": 1, "action": "timeout"}]})

    # WHEN invoked twice
    first, second = (invoke(clients["lambda"], victim, {}) for _ in range(2))

    # THEN the first answer is Lambda's timeout (with the function's Timeout), the second is normal
    assert first[1] == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 3.00 seconds",
                        "stackTrace": []}
    assert second[0] is None


def test_a_crash_kills_the_worker_in_the_middle_of_the_invocation(emulator, clients, victim, tmp_path):
    # GIVEN a warm worker, and a plan: kill the 2nd invocation's process 0.5 s in
    warm_pid = invoke(clients["lambda"], victim, {})[1]["pid"]
    emulator.set_faults({"lambda": [{"function": victim, "invocation": 2, "action": "crash",
                                     "after_seconds": 0.5}]})
    invoke(clients["lambda"], victim, {})  # the 1st invocation after the plan was set

    # WHEN the 2nd invocation starts a slow task (it writes a marker, then sleeps 2 s)
    started = time.monotonic()
    error, payload = invoke(clients["lambda"], victim, {"action": "sleep_once", "seconds": 2,
                                                        "marker": str(tmp_path / "started")})

    # THEN the handler had started, was killed ~0.5 s in, and the runtime-exit error came back
    assert (tmp_path / "started").exists()
    assert time.monotonic() - started < 1.8
    assert error is not None
    assert payload["errorType"] == "Runtime.ExitError"
    assert not _alive(warm_pid)
    # AND the next invocation runs in a fresh process
    fresh = invoke(clients["lambda"], victim, {})[1]
    assert fresh["pid"] != warm_pid
    assert fresh["invocations"] == 1


@pytest.mark.parametrize("form", ["function ARN", "lambda:invoke integration"])
def test_lambda_service_errors_reach_step_functions_by_name_and_are_retried(emulator, clients, victim, form):
    # GIVEN a Task with a Retry on Lambda.ServiceException (both ways a Task can name a Lambda function)
    sfn = clients["stepfunctions"]
    arn = clients["lambda"].get_function(FunctionName=victim)["Configuration"]["FunctionArn"]
    retry = [{"ErrorEquals": ["Lambda.ServiceException"], **RETRY}]
    if form == "function ARN":
        machine = task_state_machine(sfn, clients["iam"], "service-error-arn", arn, retry=retry)
    else:
        machine = task_state_machine(sfn, clients["iam"], "service-error-integration",
                                     "arn:aws:states:::lambda:invoke", retry=retry,
                                     parameters={"FunctionName": arn, "Payload.$": "$"})
    # AND the first two invocations fail as a Lambda service error
    emulator.set_faults({"lambda": [{"function": victim, "invocations": [1, 2], "action": "error",
                                     "error": "Lambda.ServiceException"}]})

    # WHEN an execution runs
    described = run_execution(sfn, machine, {"name": "after retries"})

    # THEN Step Functions saw Lambda.ServiceException twice, retried, and succeeded
    assert failed_task_errors(sfn, described["executionArn"]) == ["Lambda.ServiceException"] * 2
    assert described["status"] == "SUCCEEDED", described.get("cause")


def test_a_lambda_service_error_fails_the_invoke_call_itself(emulator, clients, victim):
    # GIVEN a plan: the 1st invocation is throttled by the Lambda service
    emulator.set_faults({"lambda": [{"function": victim, "invocation": 1, "action": "error",
                                     "error": "Lambda.TooManyRequestsException"}]})

    # WHEN invoked  THEN the Invoke call fails with that code and HTTP 429 (not a function error)
    with pytest.raises(ClientError) as caught:
        invoke(clients["lambda"], victim, {})
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def _source_object(s3: Any, bucket: str, size: int = 1024) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="source", Body=os.urandom(size))


def _copy_outcomes(s3: Any, bucket: str, count: int) -> list[str]:
    outcomes = []
    for n in range(count):
        try:
            s3.copy_object(Bucket=bucket, Key=f"copy-{n}", CopySource={"Bucket": bucket, "Key": "source"})
            outcomes.append("ok")
        except ClientError as err:
            outcomes.append(f'{err.response["ResponseMetadata"]["HTTPStatusCode"]} {err.response["Error"]["Code"]}')
    return outcomes


def test_slow_down_answers_a_seeded_fraction_of_copies(emulator, emulator_client):
    # GIVEN a source object, and a plan: SlowDown for half of the copy requests
    s3 = emulator_client("s3", attempts=1)
    _source_object(s3, "slow")
    plan = {"s3": {"slow_down_fraction": 0.5, "seed": 11}}
    emulator.set_faults(plan)

    # WHEN a client without retries copies 20 times
    first = _copy_outcomes(s3, "slow", 20)

    # THEN some copies, not all, got 503 SlowDown
    assert set(first) == {"ok", "503 SlowDown"}
    assert control.stats(emulator.endpoint)["s3_throttled"]["CopyObject"] == first.count("503 SlowDown")
    # AND the same seed gives the same answers again
    emulator.set_faults(plan)
    assert _copy_outcomes(s3, "slow", 20) == first


def test_with_standard_retries_every_copy_gets_through_slow_down(emulator, emulator_client):
    # GIVEN a plan: SlowDown for a fifth of the copy requests
    s3 = emulator_client("s3", attempts=10)
    _source_object(s3, "retried")
    emulator.set_faults({"s3": {"slow_down_fraction": 0.2, "seed": 3}})
    emulator.reset_counts()

    # WHEN a client with botocore's standard retries copies 10 times
    outcomes = _copy_outcomes(s3, "retried", 10)

    # THEN every copy succeeded, some after SlowDowns, each of which was one more request
    assert outcomes == ["ok"] * 10
    throttled = control.stats(emulator.endpoint)["s3_throttled"]["CopyObject"]
    assert throttled > 0
    assert emulator.request_counts()["CopyObject"] == 10 + throttled


def test_slow_down_applies_to_upload_part_copy(emulator, emulator_client):
    # GIVEN a 5 MiB source and a multipart upload, and a plan: SlowDown for every UploadPartCopy
    s3 = emulator_client("s3", attempts=1)
    _source_object(s3, "parts", size=5 * MiB)
    upload = s3.create_multipart_upload(Bucket="parts", Key="target")["UploadId"]
    emulator.set_faults({"s3": {"slow_down_fraction": 1.0}})

    # WHEN a part is copied  THEN S3 answers 503 SlowDown
    with pytest.raises(ClientError) as caught:
        s3.upload_part_copy(Bucket="parts", Key="target", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": "parts", "Key": "source"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    # AND plain reads are never throttled
    assert s3.head_object(Bucket="parts", Key="source")["ContentLength"] == 5 * MiB


def test_deny_answers_access_denied_to_writes_on_one_bucket_only(emulator, emulator_client):
    # GIVEN two buckets with an object each, and a plan denying writes to the second
    s3 = emulator_client("s3", attempts=1)
    _source_object(s3, "open-bucket")
    _source_object(s3, "closed-bucket")
    emulator.set_faults({"s3": {"deny": [{"bucket": "closed-*"}]}})

    # WHEN each is copied into  THEN the denied bucket answers 403 AccessDenied, the other takes the copy
    assert _copy_outcomes(s3, "open-bucket", 1) == ["ok"]
    assert _copy_outcomes(s3, "closed-bucket", 1) == ["403 AccessDenied"]
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="closed-bucket", Key="new", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    # AND reads and listings of the denied bucket still work, and the denials are counted
    assert s3.head_object(Bucket="closed-bucket", Key="source")["ContentLength"] == 1024
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="closed-bucket")["Contents"]] == ["source"]
    assert control.stats(emulator.endpoint)["s3_denied"] == {"CopyObject": 1, "PutObject": 1}


def test_a_bad_deny_rule_is_refused_naming_the_field(emulator):
    with pytest.raises(FaultPlanError) as caught:
        control.set_faults(emulator.endpoint, {"s3": {"deny": [{"operations": []}]}})
    assert "s3.deny[0].bucket" in str(caught.value) and "s3.deny[0].operations" in str(caught.value)


def test_request_counts_name_every_s3_operation(emulator, emulator_client):
    # GIVEN counters at zero  WHEN a few S3 calls are made
    s3 = emulator_client("s3", attempts=1)
    s3.create_bucket(Bucket="counted")
    emulator.reset_counts()
    s3.put_object(Bucket="counted", Key="a", Body=b"a")
    s3.put_object(Bucket="counted", Key="b c/ü", Body=b"b")
    s3.list_objects_v2(Bucket="counted")
    s3.head_object(Bucket="counted", Key="a")
    s3.copy_object(Bucket="counted", Key="c", CopySource={"Bucket": "counted", "Key": "a"})
    upload = s3.create_multipart_upload(Bucket="counted", Key="m")["UploadId"]
    s3.abort_multipart_upload(Bucket="counted", Key="m", UploadId=upload)

    # THEN each is counted under its operation name, in process and through the control endpoint
    expected = {"PutObject": 2, "ListObjectsV2": 1, "HeadObject": 1, "CopyObject": 1,
                "CreateMultipartUpload": 1, "AbortMultipartUpload": 1}
    assert emulator.request_counts() == expected
    assert control.stats(emulator.endpoint)["s3_requests"] == expected


def test_faults_are_set_and_cleared_through_the_control_endpoint(emulator, clients, victim):
    # GIVEN a plan sent over HTTP, as a test running the CLI in a subprocess would
    plan = {"lambda": [{"function": victim, "invocation": 1, "action": "error", "error": "Injected"}]}
    answer = control.set_faults(emulator.endpoint, plan)
    assert answer["lambda"][0]["invocations"] == [1]

    # WHEN the function is invoked  THEN the fault fires and shows in the stats
    assert invoke(clients["lambda"], victim, {})[1]["errorType"] == "Injected"
    fired = control.stats(emulator.endpoint)["faults_fired"]
    assert fired == [{"function": victim, "invocation": 1, "action": "error", "error": "Injected"}]
    # AND after clearing, nothing fires
    control.clear_faults(emulator.endpoint)
    assert invoke(clients["lambda"], victim, {})[0] is None


def test_a_bad_plan_is_refused_with_every_problem_named(emulator):
    with pytest.raises(FaultPlanError) as caught:
        control.set_faults(emulator.endpoint, {"lambda": [{"function": "x", "action": "explode"}],
                                               "s3": {"slow_down_fraction": 2}})
    message = str(caught.value)
    assert "lambda[0]: give exactly one of 'invocation'" in message
    assert "lambda[0].action" in message
    assert "s3.slow_down_fraction" in message
    assert control.stats(emulator.endpoint)["faults_fired"] == []


def test_an_unknown_control_route_is_a_404_that_names_the_docs(emulator):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(emulator.endpoint + "/_sfncopy/nope")
    assert caught.value.code == 404
    assert "sfncopy.emulator.middleware" in json.loads(caught.value.read())["error"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
