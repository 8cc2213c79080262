"""EventBridge Scheduler on the emulator: schedules made by CloudFormation, checked as AWS checks them, fired on
demand (bridges 15 and 16 in README.md).

40. moto 5.2.5 has the Scheduler API but no CloudFormation model for ``AWS::Scheduler::Schedule`` (its stack
    skips the resource with a warning), and its CreateSchedule accepts any expression. We add the model
    (create, update as replace, delete, ``Ref`` = the name, ``GetAtt Arn``) and refuse, with Scheduler's
    ``ValidationException``, what ``generator/schedules.py`` finds wrong in an expression or time zone (EventBridge
    Scheduler User Guide, "Schedule types on EventBridge Scheduler").
41. moto's Scheduler never fires a schedule. ``POST /_sfncopy/schedules/<group>/<name>/fire`` (``fire``) does what
    Scheduler does when a templated Step Functions target is due: assumes the schedule's execution role, which
    must trust ``scheduler.amazonaws.com`` under its conditions (``aws:SourceAccount``, ``aws:SourceArn``: User
    Guide, "Confused deputy prevention") and allow ``states:StartExecution`` on the target (User Guide, "Using
    templated targets"), then starts an execution of the target with the schedule's Input and no name, so Step
    Functions names it (a UUID; which name Scheduler passes, if any, is unverified). A role that may not do
    it is refused with the reason, as Scheduler would fail the invocation. Disabled schedules do not fire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator import schedules
from sfncopy.emulator.iam.conditions import UnsupportedCondition, block_holds
from sfncopy.emulator.iam.policy import Check, action_matches, evaluate, parse_document, statements
from sfncopy.emulator.iam.sessions import RoleSession, role_permissions

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
DEFAULT_GROUP = "default"


class ScheduleFireError(RuntimeError):
    """A schedule cannot fire: ``status`` is the HTTP status the control endpoint answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- 40: CloudFormation model and validation -------------------------------------------------------------------
def validation_problems(expression: str, timezone: str | None) -> list[str]:
    problems = schedules.expression_problems(expression)
    if timezone:
        problems += schedules.timezone_problems(timezone)
    return problems


@dataclass
class ScheduleResource:
    """What moto's stack keeps for a schedule: its physical id (the name, as ``Ref`` answers) and its ARN."""

    name: str
    group_name: str
    arn: str

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def is_created(self) -> bool:
        return True  # created synchronously

    def delete(self, account_id: str, region_name: str) -> None:
        """Stack deletion: the schedule goes with it."""
        properties = {"Properties": {"GroupName": self.group_name}}
        CloudFormationSchedule.delete_from_cloudformation_json(self.name, properties, account_id, region_name)

    def get_cfn_attribute(self, attribute: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()


class CloudFormationSchedule:
    """``AWS::Scheduler::Schedule`` for moto's CloudFormation (the interface of moto's CloudFormationModel)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attribute: str) -> bool:
        return attribute == "Arn"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Mapping[str, Any],
                                        account_id: str, region_name: str, **_: Any) -> ScheduleResource:
        from moto.scheduler.models import scheduler_backends

        props = cloudformation_json["Properties"]
        schedule = scheduler_backends[account_id][region_name].create_schedule(
            description=props.get("Description"), end_date=props.get("EndDate"),
            flexible_time_window=props["FlexibleTimeWindow"], group_name=props.get("GroupName"),
            kms_key_arn=props.get("KmsKeyArn"), name=props.get("Name") or resource_name,
            schedule_expression=props["ScheduleExpression"],
            schedule_expression_timezone=props.get("ScheduleExpressionTimezone"),
            start_date=None,  # type: ignore[arg-type]  # moto reads None as "no start date"
            state=props.get("State"), target=dict(props["Target"]), action_after_completion=None)
        return ScheduleResource(schedule.name, schedule.group_name, schedule.arn)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: ScheduleResource, new_resource_name: str,
                                        cloudformation_json: Mapping[str, Any], account_id: str,
                                        region_name: str) -> ScheduleResource:
        cls.delete_from_cloudformation_json(original_resource.name, cloudformation_json, account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Mapping[str, Any],
                                        account_id: str, region_name: str) -> None:
        from moto.scheduler.exceptions import ScheduleNotFound
        from moto.scheduler.models import scheduler_backends

        group = cloudformation_json.get("Properties", {}).get("GroupName")
        with contextlib.suppress(ScheduleNotFound):  # already gone: CloudFormation's delete is idempotent
            scheduler_backends[account_id][region_name].delete_schedule(group, resource_name)


# --- 41: firing -------------------------------------------------------------------------------------------------
def fire(group: str, name: str, account_id: str | None = None, region: str = "us-east-1") -> dict[str, str]:
    """Start the schedule's target as Scheduler would; ``{"executionArn": ..., "schedule": <arn>}``."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.scheduler.exceptions import ScheduleNotFound
    from moto.scheduler.models import scheduler_backends

    account = account_id or DEFAULT_ACCOUNT_ID
    try:
        schedule = scheduler_backends[account][region].get_schedule(group, name)
    except (ScheduleNotFound, KeyError) as err:
        raise ScheduleFireError(404, f"no schedule {group}/{name} in {account} {region}") from err
    if schedule.state != "ENABLED":
        raise ScheduleFireError(409, f"schedule {schedule.arn} is {schedule.state}: a disabled schedule does not fire")
    target = schedule.target
    role_arn, target_arn = str(target.get("RoleArn", "")), str(target.get("Arn", ""))
    refusal = role_refusal(role_arn, target_arn, account, schedule.arn)
    if refusal:
        raise ScheduleFireError(403, refusal)
    if ":states:" not in target_arn or ":stateMachine:" not in target_arn:
        raise ScheduleFireError(400, f"target {target_arn} is not a state machine (only the Step Functions "
                                     "templated target is bridged)")
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    # No name: Step Functions names the execution (bridge 5 gives it a UUID, as AWS does).
    execution = backend.start_execution(target_arn, None, target.get("Input") or "{}")  # type: ignore[arg-type]
    return {"executionArn": str(execution.exec_arn), "schedule": schedule.arn}


def role_refusal(role_arn: str, target_arn: str, account_id: str, schedule_arn: str) -> str:
    """Why Scheduler could not start ``target_arn`` with ``role_arn`` ("" when it can)."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    partition = get_partition(schedule_arn.split(":")[3])
    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except NotFoundException:
        return f"execution role {role_arn} does not exist"
    context = {"aws:SourceAccount": (account_id,), "aws:SourceArn": (schedule_arn,)}
    if not trusts_scheduler(parse_document(role.assume_role_policy_document), context):
        return (f"{SCHEDULER_PRINCIPAL} is not allowed to assume {role_arn} (its trust policy must allow it, "
                "with conditions that hold for this schedule)")
    session = RoleSession(access_key_id="", arn=role_arn, role_arn=role_arn, session_name="scheduler",
                          account_id=account_id, partition=partition, session_policy=None)
    decision = evaluate(Check("states:StartExecution", target_arn, context), role_permissions(session).policies)
    if not decision.allowed:
        return (f"{role_arn} is not authorized to perform: states:StartExecution on resource: {target_arn}"
                f"{' with an explicit deny' if decision.explicit_deny else ''}")
    return ""


def trusts_scheduler(document: Mapping[str, Any], context: Mapping[str, tuple[str, ...]]) -> bool:
    """Does the trust policy let the Scheduler service principal assume the role in this context (an explicit
    deny wins)? A condition we cannot evaluate makes an Allow not apply and a Deny apply."""
    lowered = {key.lower(): values for key, values in context.items()}
    effects: set[str] = set()
    for statement in statements(document):
        principal = statement.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        services = services if isinstance(services, list) else [services]
        actions = statement.get("Action", [])
        if SCHEDULER_PRINCIPAL not in services or not action_matches(
                actions if isinstance(actions, list) else [actions], "sts:AssumeRole"):
            continue
        try:
            holds = "Condition" not in statement or block_holds(statement["Condition"], lowered)
        except UnsupportedCondition:
            holds = statement.get("Effect") == "Deny"
        if holds:
            effects.add(str(statement.get("Effect")))
    return "Allow" in effects and "Deny" not in effects
