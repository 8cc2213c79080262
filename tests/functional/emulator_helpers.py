"""Helpers for the emulator's tests: deployment zips, functions, state machines, waiting for executions."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

# A tiny handler module; each test picks behaviour through the event.
HANDLER_SOURCE = '''
import os
import time

INVOCATIONS = 0  # module state: survives between invocations of a warm worker


class PlannedFailure(Exception):
    pass


class FlakyError(Exception):
    pass


def _first_time(marker):
    """True once per marker file (survives process restarts, unlike module state)."""
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    print("handler called", INVOCATIONS)
    action = event.get("action", "greet")
    if action == "raise":
        raise PlannedFailure(event.get("message", "asked to fail"))
    if action == "flaky_once" and _first_time(event["marker"]):
        raise FlakyError("fails the first time only")
    if action == "sleep_once" and _first_time(event["marker"]):
        time.sleep(event["seconds"])
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "put_object":
        import boto3  # reaches the emulator through AWS_ENDPOINT_URL and the dummy credentials
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"from the handler")
    return {
        "greeting": os.environ.get("GREETING", "") + " " + str(event.get("name", "")),
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "module_file": __file__,
    }
'''


def lambda_zip(files: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in (files or {"app.py": HANDLER_SOURCE}).items():
            archive.writestr(name, text)
    return buffer.getvalue()


def role_arn(iam: Any, name: str = "emulator-test-role") -> str:
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def create_function(lam: Any, iam: Any, name: str, timeout: int = 3, env: dict[str, str] | None = None) -> str:
    answer = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role_arn(iam), Handler="app.handler",
        Code={"ZipFile": lambda_zip()}, Timeout=timeout, MemorySize=256,
        Environment={"Variables": env or {"GREETING": "hello"}})
    return str(answer["FunctionArn"])


def invoke(lam: Any, name: str, event: dict[str, Any]) -> tuple[str | None, Any]:
    """(FunctionError header or None, parsed payload)."""
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event))
    return answer.get("FunctionError"), json.loads(answer["Payload"].read())


def task_state_machine(sfn: Any, iam: Any, name: str, resource: str, retry: list[dict[str, Any]] | None = None,
                       catch: list[dict[str, Any]] | None = None, parameters: dict[str, Any] | None = None) -> str:
    """Call -> (Caught, only with a Catch), one Task with the given Retry / Catch (and Parameters, for service
    integrations)."""
    task: dict[str, Any] = {"Type": "Task", "Resource": resource, "End": True}
    if parameters:
        task["Parameters"] = parameters
    if retry:
        task["Retry"] = retry
    if catch:
        task["Catch"] = catch
    states: dict[str, Any] = {"Call": task}
    if catch:  # AWS refuses a state nothing can reach
        states["Caught"] = {"Type": "Pass", "End": True}
    definition = {"StartAt": "Call", "States": states}
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role_arn(iam))
    return str(arn["stateMachineArn"])


def run_execution(sfn: Any, machine_arn: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Start an execution and wait until it ends; the DescribeExecution answer."""
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still RUNNING after {timeout:.0f} s: {execution_arn}")
        time.sleep(0.1)


def failed_task_errors(sfn: Any, execution_arn: str) -> list[str]:
    """The error names of the execution's failed Lambda Tasks, in order."""
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    names = []
    for event in events:
        for key in ("lambdaFunctionFailedEventDetails", "taskFailedEventDetails"):
            if key in event:
                names.append(event[key]["error"])
    return names
