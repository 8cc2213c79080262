"""Bridges 15 and 16 (sfncopy/emulator/scheduler_bridge.py): CloudFormation makes EventBridge Scheduler schedules,
CreateSchedule refuses what Scheduler refuses, and a schedule fires on demand with its role and input as Scheduler
would start a Step Functions target."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from generator.policies import SCHEDULER_SERVICE, assume_role_policy
from sfncopy.emulator import control

ACCOUNT = "123456789012"
PASS_MACHINE = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


@pytest.fixture(scope="module")
def clients(emulator_client: Any) -> dict[str, Any]:
    return {name: emulator_client(name) for name in ("iam", "stepfunctions", "cloudformation", "scheduler")}


def _role(name: str, trust: dict[str, Any], policy: dict[str, Any] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": trust}
    if policy is not None:
        properties["Policies"] = [{"PolicyName": "start", "PolicyDocument": policy}]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def _start_policy(machine: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "states:StartExecution",
                                                    "Resource": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:"
                                                                f"{machine}"}]}


def _template(stack: str, trust: dict[str, Any], policy: dict[str, Any] | None) -> str:
    """A state machine that echoes its input, a scheduler role, and a schedule starting the machine."""
    machine_role = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "states.amazonaws.com"}}]}
    return json.dumps({"Resources": {
        "MachineRole": _role(f"{stack}-machine", machine_role, None),
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": stack, "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
            "DefinitionString": json.dumps(PASS_MACHINE)}},
        "SchedulerRole": _role(f"{stack}-scheduler", trust, policy),
        "Nightly": {"Type": "AWS::Scheduler::Schedule", "Properties": {
            "Name": f"{stack}-nightly", "ScheduleExpression": "cron(0 2 * * ? *)",
            "ScheduleExpressionTimezone": "Europe/Paris", "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": {"Ref": "Machine"}, "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                       "Input": json.dumps({"s3_copy_config_location": "s3://configs/nightly.json"})}}},
    }, "Outputs": {"Schedule": {"Value": {"Ref": "Nightly"}}, "ScheduleArn": {"Value": {"Fn::GetAtt": [
        "Nightly", "Arn"]}}}})


def _deploy(clients: dict[str, Any], stack: str, trust: dict[str, Any],
            policy: dict[str, Any] | None) -> dict[str, str]:
    cfn = clients["cloudformation"]
    cfn.create_stack(StackName=stack, TemplateBody=_template(stack, trust, policy), Capabilities=["CAPABILITY_IAM"])
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def _wait(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


def test_a_stack_makes_its_schedule_and_firing_it_starts_the_machine_with_its_input(
        emulator: Any, clients: dict[str, Any]) -> None:
    # GIVEN a stack with a schedule whose role trusts Scheduler for this account and may start the machine
    outputs = _deploy(clients, "sched-ok", assume_role_policy(SCHEDULER_SERVICE) | {
        "Statement": [{**assume_role_policy(SCHEDULER_SERVICE)["Statement"][0],
                       "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}, _start_policy("sched-ok"))
    # THEN Scheduler holds the schedule as the template describes it (bridge 15)
    schedule = clients["scheduler"].get_schedule(Name="sched-ok-nightly")
    assert outputs["Schedule"] == "sched-ok-nightly"
    assert outputs["ScheduleArn"] == schedule["Arn"]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("cron(0 2 * * ? *)",
                                                                                         "Europe/Paris")
    # WHEN it fires (bridge 16)
    fired = control.fire_schedule(emulator.endpoint, "sched-ok-nightly")
    # THEN an execution of the machine ran with the schedule's input, named by Step Functions
    sfn = clients["stepfunctions"]
    result = _wait(sfn, fired["executionArn"])
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"s3_copy_config_location": "s3://configs/nightly.json"}
    assert result["stateMachineArn"].endswith(":stateMachine:sched-ok")
    assert len(result["name"]) == 36  # a UUID


def test_a_schedule_whose_role_may_not_start_the_machine_does_not_fire(emulator: Any, clients: dict[str, Any]) -> None:
    # GIVEN a schedule whose role may start another machine only
    _deploy(clients, "sched-denied", assume_role_policy(SCHEDULER_SERVICE), _start_policy("another-machine"))
    sfn = clients["stepfunctions"]
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == "sched-denied")
    # WHEN it fires  THEN it is refused with the reason, and no execution started
    with pytest.raises(control.ScheduleNotFired) as refused:
        control.fire_schedule(emulator.endpoint, "sched-denied-nightly")
    assert refused.value.status == 403
    assert "not authorized to perform: states:StartExecution" in str(refused.value)
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []


def test_a_role_trusting_scheduler_for_another_account_only_does_not_fire(emulator: Any, clients: dict[str, Any]):
    # GIVEN a schedule whose role trusts Scheduler only on behalf of another account's schedules
    trust = assume_role_policy(SCHEDULER_SERVICE) | {"Statement": [{
        **assume_role_policy(SCHEDULER_SERVICE)["Statement"][0],
        "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}}]}
    _deploy(clients, "sched-foreign", trust, _start_policy("sched-foreign"))
    # WHEN it fires  THEN Scheduler may not assume the role
    with pytest.raises(control.ScheduleNotFired) as refused:
        control.fire_schedule(emulator.endpoint, "sched-foreign-nightly")
    assert refused.value.status == 403
    assert "is not allowed to assume" in str(refused.value)


@pytest.mark.parametrize("expression", ["cron(0 2 * * * *)", "cron(0 2 * *)", "rate(0 minutes)", "rate(5 weeks)",
                                        "cron(61 2 * * ? *)"])
def test_create_schedule_refuses_an_expression_scheduler_refuses(clients: dict[str, Any], expression: str) -> None:
    # GIVEN an expression EventBridge Scheduler refuses  WHEN a schedule is created with it  THEN ValidationException
    with pytest.raises(ClientError) as refused:
        clients["scheduler"].create_schedule(
            Name="bad", ScheduleExpression=expression, FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:x",
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/x"})
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_disabled_or_missing_schedule_does_not_fire(emulator: Any, clients: dict[str, Any]) -> None:
    # GIVEN a schedule that may start its machine, then disabled
    _deploy(clients, "sched-off", assume_role_policy(SCHEDULER_SERVICE), _start_policy("sched-off"))
    scheduler = clients["scheduler"]
    current = scheduler.get_schedule(Name="sched-off-nightly")
    scheduler.update_schedule(Name="sched-off-nightly", ScheduleExpression=current["ScheduleExpression"],
                              FlexibleTimeWindow={"Mode": "OFF"}, Target=current["Target"], State="DISABLED")
    # WHEN it is fired  THEN it does not fire (409), and a schedule that does not exist is 404
    with pytest.raises(control.ScheduleNotFired) as disabled:
        control.fire_schedule(emulator.endpoint, "sched-off-nightly")
    assert disabled.value.status == 409
    with pytest.raises(control.ScheduleNotFired) as missing:
        control.fire_schedule(emulator.endpoint, "no-such-schedule")
    assert missing.value.status == 404


def test_deleting_the_stack_deletes_its_schedule(clients: dict[str, Any]) -> None:
    _deploy(clients, "sched-gone", assume_role_policy(SCHEDULER_SERVICE), _start_policy("sched-gone"))
    clients["cloudformation"].delete_stack(StackName="sched-gone")
    with pytest.raises(ClientError) as gone:
        clients["scheduler"].get_schedule(Name="sched-gone-nightly")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
