"""The emulator's two moto bridges: CloudFormation-made state machines execute (1), and Lambda functions
run in local worker processes with Lambda's behaviour (2): environment, context, warm reuse, timeout,
errors by class name for Retry/Catch."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from tests.functional.emulator_helpers import (
    create_function,
    failed_task_errors,
    invoke,
    lambda_zip,
    role_arn,
    run_execution,
    task_state_machine,
)

RETRY_ONCE = {"IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0}


@pytest.fixture(scope="module")
def clients(emulator_client: Any) -> dict[str, Any]:
    return {name: emulator_client(name) for name in ("s3", "lambda", "iam", "stepfunctions", "cloudformation",
                                                     "logs")}


@pytest.fixture(scope="module")
def greeter(clients: dict[str, Any]) -> str:
    """A function deployed through the Lambda API (3 s timeout), used by several tests."""
    create_function(clients["lambda"], clients["iam"], "greeter", timeout=3, env={"GREETING": "hello"})
    return "greeter"


def _stack_template(bucket: str) -> dict[str, Any]:
    definition = {"StartAt": "Greet", "States": {"Greet": {"Type": "Task", "Resource": "${Greeter.Arn}",
                                                           "End": True}}}
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Principal": {"Service": "lambda.amazonaws.com"}}]}}},
            "Greeter": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": "stack-greeter", "Runtime": "python3.11", "Handler": "app.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"S3Bucket": bucket, "S3Key": "code.zip"},
                "Timeout": 5, "Environment": {"Variables": {"GREETING": "hello from the stack"}}}},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "StateMachineName": "stack-machine", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "DefinitionString": {"Fn::Sub": json.dumps(definition)}}},
        },
        "Outputs": {"MachineArn": {"Value": {"Ref": "Machine"}}},
    }


def test_a_state_machine_made_by_cloudformation_executes_and_runs_its_lambda_locally(clients: dict[str, Any]):
    # GIVEN a stack with a role, a function whose zip (in S3) holds a tiny handler module, and a state machine
    clients["s3"].create_bucket(Bucket="code")
    clients["s3"].put_object(Bucket="code", Key="code.zip", Body=lambda_zip())
    cfn = clients["cloudformation"]
    cfn.create_stack(StackName="bridge-one", TemplateBody=json.dumps(_stack_template("code")),
                     Capabilities=["CAPABILITY_IAM"])
    outputs = cfn.describe_stacks(StackName="bridge-one")["Stacks"][0]["Outputs"]
    machine_arn = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "MachineArn")

    # WHEN an execution starts through the Step Functions API
    described = run_execution(clients["stepfunctions"], machine_arn, {"name": "world"})

    # THEN it succeeds with the handler's answer, computed in another process with the function's
    # environment and a Lambda-like context, from the extracted zip (not from this checkout)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["greeting"] == "hello from the stack world"
    assert output["pid"] != os.getpid()
    assert output["function_name"] == "stack-greeter"
    assert output["memory_limit_in_mb"] == 128
    assert 0 < output["remaining_ms"] <= 5000
    assert "/functions/stack-greeter/" in output["module_file"]


def test_the_handler_reaches_the_emulator_with_the_endpoint_and_its_role_credentials(clients, greeter):
    # GIVEN a bucket the function's role may write to (IAM is enforced on the role's credentials)
    clients["s3"].create_bucket(Bucket="written-by-lambda")
    clients["iam"].put_role_policy(RoleName="emulator-test-role", PolicyName="write-proof", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                               "Resource": "arn:aws:s3:::written-by-lambda/*"}]}))
    # WHEN the handler writes to it with a plain boto3.client("s3")
    error, _ = invoke(clients["lambda"], greeter, {"action": "put_object", "bucket": "written-by-lambda",
                                                   "key": "proof.txt"})

    # THEN the object is in the emulator's S3
    assert error is None
    body = clients["s3"].get_object(Bucket="written-by-lambda", Key="proof.txt")["Body"].read()
    assert body == b"from the handler"


def test_a_warm_worker_keeps_its_module_state_between_invocations(clients, greeter):
    # GIVEN a function  WHEN it is invoked three times in a row
    answers = [invoke(clients["lambda"], greeter, {"name": str(n)})[1] for n in range(3)]

    # THEN one process served them all and its module-level counter grew by one each time
    assert len({a["pid"] for a in answers}) == 1
    counts = [a["invocations"] for a in answers]
    assert counts == list(range(counts[0], counts[0] + 3))


def test_parallel_branches_invoke_one_function_concurrently_in_separate_workers(clients, greeter):
    # GIVEN a Parallel state with three branches that each run the function for 1.5 s
    lam_arn = clients["lambda"].get_function(FunctionName=greeter)["Configuration"]["FunctionArn"]
    # (state names are unique in the whole machine, as AWS requires)
    branches = [{"StartAt": f"Sleep{i}", "States": {f"Sleep{i}": {"Type": "Task", "Resource": lam_arn, "End": True}}}
                for i in range(3)]
    definition = {"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "End": True, "Branches": branches}}}
    machine = clients["stepfunctions"].create_state_machine(
        name="fan-out", definition=json.dumps(definition), roleArn=role_arn(clients["iam"]))["stateMachineArn"]

    # WHEN it runs
    started = time.monotonic()
    described = run_execution(clients["stepfunctions"], machine, {"action": "sleep", "seconds": 1.5})
    elapsed = time.monotonic() - started

    # THEN three worker processes ran at once (one after another would take 4.5 s)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert len({branch["pid"] for branch in json.loads(described["output"])}) == 3
    assert elapsed < 4.0


def test_a_timeout_is_lambdas_sandbox_timedout_and_a_retry_on_it_works(clients, tmp_path):
    # GIVEN a function with a 1 s timeout whose first invocation sleeps 5 s, behind a Retry on Sandbox.Timedout
    lam, sfn = clients["lambda"], clients["stepfunctions"]
    arn = create_function(lam, clients["iam"], "sleepy", timeout=1)
    machine = task_state_machine(sfn, clients["iam"], "retry-timeout", arn,
                                 retry=[{"ErrorEquals": ["Sandbox.Timedout"], **RETRY_ONCE}])

    # WHEN an execution runs it
    described = run_execution(sfn, machine, {"action": "sleep_once", "marker": str(tmp_path / "slept"),
                                             "seconds": 5})

    # THEN the first attempt timed out with Lambda's error name, the retry succeeded
    assert failed_task_errors(sfn, described["executionArn"]) == ["Sandbox.Timedout"]
    assert described["status"] == "SUCCEEDED", described.get("cause")


def test_a_timed_out_worker_is_killed_and_the_next_invocation_gets_a_fresh_one(clients):
    # GIVEN a warm worker of a function with a 1 s timeout
    lam = clients["lambda"]
    create_function(lam, clients["iam"], "killable", timeout=1)
    first_pid = invoke(lam, "killable", {})[1]["pid"]

    # WHEN an invocation runs past the timeout
    started = time.monotonic()
    error, payload = invoke(lam, "killable", {"action": "sleep", "seconds": 5})

    # THEN it ends after ~1 s with Lambda's timeout answer, the process is gone, the next one is new
    assert time.monotonic() - started < 3
    assert error is not None
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"] == "Task timed out after 1.00 seconds"
    assert not _alive(first_pid)
    answer = invoke(lam, "killable", {})[1]
    assert answer["pid"] != first_pid
    assert answer["invocations"] == 1


def test_an_exceptions_class_name_is_the_error_name_for_catch(clients, greeter):
    # GIVEN a Task with a Catch on the handler's own exception class name
    lam_arn = clients["lambda"].get_function(FunctionName=greeter)["Configuration"]["FunctionArn"]
    machine = task_state_machine(clients["stepfunctions"], clients["iam"], "catch-by-name", lam_arn,
                                 catch=[{"ErrorEquals": ["PlannedFailure"], "ResultPath": "$.error",
                                         "Next": "Caught"}])

    # WHEN the handler raises PlannedFailure
    described = run_execution(clients["stepfunctions"], machine, {"action": "raise", "message": "no luck"})

    # THEN the Catch took it, with Lambda's errorType / errorMessage / stackTrace as the Cause
    assert described["status"] == "SUCCEEDED", described.get("cause")
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "PlannedFailure"
    cause = json.loads(error["Cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("PlannedFailure", "no luck")
    assert any("app.py" in frame for frame in cause["stackTrace"])


def test_a_retry_on_a_custom_error_name_works(clients, greeter, tmp_path):
    # GIVEN a Task with a Retry on FlakyError, and a handler that raises it the first time only
    lam_arn = clients["lambda"].get_function(FunctionName=greeter)["Configuration"]["FunctionArn"]
    machine = task_state_machine(clients["stepfunctions"], clients["iam"], "retry-by-name", lam_arn,
                                 retry=[{"ErrorEquals": ["FlakyError"], **RETRY_ONCE}])

    # WHEN it runs
    described = run_execution(clients["stepfunctions"], machine,
                              {"action": "flaky_once", "marker": str(tmp_path / "flaked"), "name": "again"})

    # THEN the first attempt failed with FlakyError and the retry succeeded
    assert failed_task_errors(clients["stepfunctions"], described["executionArn"]) == ["FlakyError"]
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"])["greeting"] == "hello again"


def test_an_invocations_output_reaches_the_functions_log_group(clients, greeter):
    # GIVEN an invocation that prints  WHEN the function's log group is read
    invoke(clients["lambda"], greeter, {"name": "logged"})
    events = clients["logs"].filter_log_events(logGroupName=f"/aws/lambda/{greeter}")["events"]
    messages = [e["message"] for e in events]

    # THEN the handler's print is there, framed by Lambda's START / REPORT lines
    assert any(m.startswith("handler called") for m in messages)
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


@pytest.mark.parametrize(("handler", "error_type", "message"), [
    ("missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing': No module named 'missing'"),
    ("app.nothing", "Runtime.HandlerNotFound", "Handler 'nothing' missing on module 'app'"),
])
def test_a_handler_that_cannot_be_loaded_fails_with_lambdas_error(clients, handler, error_type, message):
    # GIVEN a function whose handler string names a missing module or function
    name = f"broken-{error_type.split('.')[1].lower()}"
    clients["lambda"].create_function(FunctionName=name, Runtime="python3.11", Role=role_arn(clients["iam"]),
                                      Handler=handler, Code={"ZipFile": lambda_zip()})

    # WHEN it is invoked  THEN Lambda's error for it comes back, naming what is missing
    error, payload = invoke(clients["lambda"], name, {})
    assert error is not None
    assert (payload["errorType"], payload["errorMessage"]) == (error_type, message)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_executions_started_without_a_name_get_unique_names(emulator_client):
    # GIVEN a state machine (bridge 5: moto would name every unnamed execution "None")
    sfn = emulator_client("stepfunctions")
    definition = '{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}'
    arn = sfn.create_state_machine(name="unnamed", definition=definition,
                                   roleArn="arn:aws:iam::123456789012:role/unnamed")["stateMachineArn"]

    # WHEN two executions start with the same input and no name
    first = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]

    # THEN they are two executions, each named with a UUID as on AWS
    assert first != second
    assert all(len(a.rsplit(":", 1)[1]) == 36 and a.rsplit(":", 1)[1] != "None" for a in (first, second))


def test_a_cloudformation_roles_inline_policy_reads_back_as_json(clients: dict[str, Any]):
    # GIVEN a role with an inline policy, made by CloudFormation
    document = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}]}
    template = {"Resources": {"Reader": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "read", "PolicyDocument": document}]}}}}
    clients["cloudformation"].create_stack(StackName="role-policy", TemplateBody=json.dumps(template))
    resources = clients["cloudformation"].list_stack_resources(StackName="role-policy")["StackResourceSummaries"]
    (role,) = [r["PhysicalResourceId"] for r in resources if r.get("LogicalResourceId") == "Reader"]
    # WHEN IAM is asked for it  THEN it is the document, as JSON (botocore hands it over as a dict), not a repr
    assert clients["iam"].get_role_policy(RoleName=role, PolicyName="read")["PolicyDocument"] == document


def _distributed_map(bucket: str, key: str, concurrency: int) -> dict[str, Any]:
    """A Distributed Map over the JSON array at s3://bucket/key, each child a Pass state, inside a Parallel whose
    Catch goes to a Fail state naming the error (the shape of sfncopy's Copy and its error path)."""
    worker = {"Type": "Map", "MaxConcurrency": concurrency, "ToleratedFailurePercentage": 100.0,
              "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                             "Parameters": {"Bucket": bucket, "Key": key}},
              "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                "StartAt": "Child", "States": {"Child": {"Type": "Pass", "End": True}}},
              "ResultPath": None, "End": True}
    return {"StartAt": "Copy", "States": {
        "Copy": {"Type": "Parallel", "Branches": [{"StartAt": "Worker", "States": {"Worker": worker}}],
                 "ResultPath": None, "End": True,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}]},
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}}}


def test_a_map_runs_thousands_of_items_one_at_a_time(clients: dict[str, Any]):
    # GIVEN a Distributed Map over 3,000 items run one at a time (bridge 11: moto recursed once per item and
    # failed after ~970)
    clients["s3"].create_bucket(Bucket="map-items")
    clients["s3"].put_object(Bucket="map-items", Key="items.json", Body=json.dumps(list(range(3000))))
    machine = clients["stepfunctions"].create_state_machine(
        name="thousands", definition=json.dumps(_distributed_map("map-items", "items.json", concurrency=1)),
        roleArn=role_arn(clients["iam"]))["stateMachineArn"]
    # WHEN it runs  THEN it succeeds, every item processed by a child
    described = run_execution(clients["stepfunctions"], machine, {}, timeout=120)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    (run,) = clients["stepfunctions"].list_map_runs(executionArn=described["executionArn"])["mapRuns"]
    counts = clients["stepfunctions"].describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
    assert (counts["total"], counts["succeeded"]) == (3000, 3000)


def test_a_map_that_cannot_read_its_items_fails_its_parallel_as_on_aws(clients: dict[str, Any]):
    # GIVEN the same machine over an item list that does not exist (bridge 13: moto crashed the execution)
    clients["s3"].create_bucket(Bucket="map-missing")
    machine = clients["stepfunctions"].create_state_machine(
        name="missing-items", definition=json.dumps(_distributed_map("map-missing", "nothing.json", concurrency=1)),
        roleArn=role_arn(clients["iam"]))["stateMachineArn"]
    # WHEN it runs  THEN the Map fails with States.ItemReaderFailed, the Parallel's Catch takes it, and the
    # Fail state ends the execution with that error and the read's cause
    described = run_execution(clients["stepfunctions"], machine, {})
    assert (described["status"], described.get("error")) == ("FAILED", "States.ItemReaderFailed"), described
    assert "NoSuchKey" in described["cause"]


def test_lambda_account_settings_answer_as_a_new_account_does(clients: dict[str, Any]):
    # GIVEN the emulator's functions (bridge 12: moto answered 404 "Not yet implemented")
    # WHEN Lambda is asked for the account's settings  THEN it answers AWS's default concurrency quota, less
    # what functions reserve
    limit = clients["lambda"].get_account_settings()["AccountLimit"]
    assert limit["ConcurrentExecutions"] == 1000
    reserved = sum(clients["lambda"].get_function_concurrency(FunctionName=f["FunctionName"]).get(
        "ReservedConcurrentExecutions", 0) for f in clients["lambda"].list_functions()["Functions"])
    assert limit["UnreservedConcurrentExecutions"] == 1000 - reserved
