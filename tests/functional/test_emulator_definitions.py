"""The emulator refuses the state machine definitions AWS refuses (bridge 6), through the Step Functions API and
through CloudFormation, and a CloudFormation stack whose resource fails ends failed and rolled back as on AWS
(bridge 7) instead of hanging in CREATE_IN_PROGRESS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from generator.state_machine import Functions, build_definition, to_json
from tests.functional.emulator_helpers import role_arn

DUPLICATE = "DUPLICATE_STATE_NAME: Duplicate State name: CopyPayload at /States/Copy/Branches[1]/States/Worker1/" \
            "ItemProcessor/States/CopyPayload"


@pytest.fixture(scope="module")
def clients(emulator_client: Any) -> dict[str, Any]:
    return {name: emulator_client(name) for name in ("stepfunctions", "cloudformation", "iam")}


def copy_machine(unique_names: bool) -> dict[str, Any]:
    """Two Parallel branches, each a Map over CopyPayload -> done? loop: the generator's shape before its states
    were numbered per worker (``unique_names=False``) and after."""

    def worker(i: int) -> dict[str, Any]:
        suffix = str(i) if unique_names else ""
        copy, done, copied = f"CopyPayload{suffix}", f"PayloadDone{suffix}", f"PayloadCopied{suffix}"
        processor = {"StartAt": copy, "States": {
            copy: {"Type": "Pass", "Next": done},
            done: {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": copied}],
                   "Default": copy},
            copied: {"Type": "Succeed"},
        }}
        return {"StartAt": f"Worker{i}", "States": {f"Worker{i}": {
            "Type": "Map", "ItemsPath": "$.items", "ItemProcessor": processor, "End": True}}}

    return {"StartAt": "Copy", "States": {"Copy": {"Type": "Parallel", "Branches": [worker(0), worker(1)],
                                                   "End": True}}}


def error_of(err: ClientError) -> tuple[str, str, int]:
    return err.response["Error"]["Code"], err.response["Error"]["Message"], \
        err.response["ResponseMetadata"]["HTTPStatusCode"]


def machine_names(sfn: Any) -> list[str]:
    return [m["name"] for m in sfn.list_state_machines()["stateMachines"]]


# --- the Step Functions API -------------------------------------------------------------------------------------
def test_create_state_machine_refuses_a_state_name_repeated_across_branches(clients):
    sfn = clients["stepfunctions"]

    # WHEN a definition repeats CopyPayload, PayloadDone and PayloadCopied in its second branch
    with pytest.raises(ClientError) as raised:
        sfn.create_state_machine(name="duplicates", definition=json.dumps(copy_machine(unique_names=False)),
                                 roleArn=role_arn(clients["iam"]))

    # THEN the call fails as on AWS, naming each duplicate where it stands, and no machine exists
    code, message, status = error_of(raised.value)
    assert (code, status) == ("InvalidDefinition", 400)
    assert message.startswith(f"Invalid State Machine Definition: '{DUPLICATE}, ")
    assert "Duplicate State name: PayloadDone at /States/Copy/Branches[1]/" in message
    assert "duplicates" not in machine_names(sfn)


def test_update_state_machine_refuses_it_and_keeps_the_definition(clients):
    # GIVEN a state machine with unique names
    sfn = clients["stepfunctions"]
    valid = json.dumps(copy_machine(unique_names=True))
    arn = sfn.create_state_machine(name="to-update", definition=valid, roleArn=role_arn(clients["iam"]))[
        "stateMachineArn"]

    # WHEN an update repeats names
    with pytest.raises(ClientError) as raised:
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(copy_machine(unique_names=False)))

    # THEN it fails with InvalidDefinition and the machine is unchanged
    code, message, _ = error_of(raised.value)
    assert code == "InvalidDefinition"
    assert DUPLICATE in message
    assert sfn.describe_state_machine(stateMachineArn=arn)["definition"] == valid


def test_a_definition_moto_itself_cannot_parse_is_also_answered_with_invalid_definition(clients):
    # moto's own parser refuses an unknown Type, but its error carries no code; ours catches it first.
    with pytest.raises(ClientError) as raised:
        clients["stepfunctions"].create_state_machine(
            name="bogus-type", definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": True}}}),
            roleArn=role_arn(clients["iam"]))
    assert error_of(raised.value)[0] == "InvalidDefinition"


def test_a_valid_definition_is_accepted(clients):
    # GIVEN the generator's state machine for 3 workers, with function ARNs in place of the template's Fn::Sub
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    functions = Functions(planner=arn + "planner", worker=arn + "worker", finalizer=arn + "finalizer",
                          cleanup=arn + "cleanup")
    definition = to_json(build_definition(3, functions))

    # WHEN it is created  THEN Step Functions takes it as given
    sfn = clients["stepfunctions"]
    machine = sfn.create_state_machine(name="generated", definition=definition, roleArn=role_arn(clients["iam"]))
    assert sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["definition"] == definition


# --- CloudFormation ----------------------------------------------------------------------------------------------
def stack_template(machine_name: str, definition: dict[str, Any]) -> str:
    return json.dumps({
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": f"{machine_name}-role",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "states.amazonaws.com"}}]},
            }},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "StateMachineName": machine_name, "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "DefinitionString": {"Fn::Sub": json.dumps(definition)}}},
        },
        "Outputs": {"MachineArn": {"Value": {"Ref": "Machine"}}},
    })


def stack_of(cfn: Any, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return stack


def failed_events(cfn: Any, name: str) -> list[tuple[str, str, str]]:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", "")) for e in events
            if e["ResourceStatus"].endswith("_FAILED")]


def test_a_stack_whose_state_machine_aws_would_refuse_fails_and_rolls_back(clients):
    cfn, iam = clients["cloudformation"], clients["iam"]

    # WHEN a stack's state machine repeats state names
    cfn.create_stack(StackName="dup-stack", TemplateBody=stack_template("dup-machine", copy_machine(False)),
                     Capabilities=["CAPABILITY_NAMED_IAM"])

    # THEN CreateStack answers (AWS fails the stack, not the call), the machine's event names the problem,
    # and the stack rolled back: its role is gone and it has no outputs
    stack = stack_of(cfn, "dup-stack")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert stack["StackStatusReason"] == ("The following resource(s) failed to create: [Machine]. "
                                          "Rollback requested by user.")
    assert "Outputs" not in stack
    [(logical_id, status, reason)] = failed_events(cfn, "dup-stack")
    assert (logical_id, status) == ("Machine", "CREATE_FAILED")
    assert reason.startswith('Resource handler returned message: "Invalid State Machine Definition: '
                             f"'{DUPLICATE}")
    assert "dup-machine" not in machine_names(clients["stepfunctions"])
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="dup-machine-role")
    assert cfn.describe_stack_resources(StackName="dup-stack")["StackResources"] == []


def test_with_rollback_disabled_the_stack_stays_create_failed_with_what_it_made(clients):
    cfn = clients["cloudformation"]

    cfn.create_stack(StackName="dup-kept", TemplateBody=stack_template("dup-kept-machine", copy_machine(False)),
                     Capabilities=["CAPABILITY_NAMED_IAM"], DisableRollback=True)

    stack = stack_of(cfn, "dup-kept")
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert stack["StackStatusReason"] == "The following resource(s) failed to create: [Machine]. "
    assert [r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName="dup-kept")["StackResources"]] \
        == ["Role"]
    assert clients["iam"].get_role(RoleName="dup-kept-machine-role")["Role"]["RoleName"] == "dup-kept-machine-role"


def test_an_update_to_a_refused_definition_fails_and_rolls_back_to_the_running_machine(clients):
    # GIVEN a stack made with unique names
    cfn, sfn = clients["cloudformation"], clients["stepfunctions"]
    cfn.create_stack(StackName="to-update", TemplateBody=stack_template("updated-machine", copy_machine(True)),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    assert stack_of(cfn, "to-update")["StackStatus"] == "CREATE_COMPLETE"
    machine_arn = stack_of(cfn, "to-update")["Outputs"][0]["OutputValue"]
    before = sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"]

    # WHEN it is updated to repeat names
    cfn.update_stack(StackName="to-update", TemplateBody=stack_template("updated-machine", copy_machine(False)),
                     Capabilities=["CAPABILITY_NAMED_IAM"])

    # THEN the update failed on the machine and rolled back: same definition, previous template
    stack = stack_of(cfn, "to-update")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert stack["StackStatusReason"] == "The following resource(s) failed to update: [Machine]. "
    [(logical_id, status, reason)] = failed_events(cfn, "to-update")
    assert (logical_id, status) == ("Machine", "UPDATE_FAILED")
    assert DUPLICATE in reason
    assert sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"] == before
    assert cfn.get_template(StackName="to-update")["TemplateBody"] == json.loads(
        stack_template("updated-machine", copy_machine(True)))
