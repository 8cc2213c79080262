"""Schedules (schedule_<name> env lines -> AWS::Scheduler::Schedule) and notifications (notification_topic -> SNS):
settings, expressions as EventBridge Scheduler checks them, the generated resources and least-privilege policies,
the notify states, and the validators we did not write (parliament, asl-validator, cfn-lint) on all of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint

from generator import render_template, schedules
from generator.settings import EnvSettings, EnvSettingsError
from generator.state_machine import (
    FAILED,
    FINALIZED,
    NOTIFY_FAILED,
    NOTIFY_SUCCEEDED,
    SUMMARIZE_FAILED,
    SUMMARIZE_SUCCEEDED,
    Functions,
    build_definition,
    notification_summaries,
    with_notifications,
)
from lambdas import limits
from lambdas.cleanup import notified_cause
from tests.unit.generator_helpers import settings_for
from tests.unit.test_independent_checks import (
    assert_no_parliament_findings,
    assert_valid_state_machine,
    generated,
    state_machine_definition,
)

NIGHTLY = "cron(0 2 * * ? *) s3://cfg-bucket/sfncopy/nightly.json Europe/Paris"
HOURLY = "rate(1 hour) s3://cfg-bucket/sfncopy/hourly.json"
TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:copy-alerts"
FUNCTIONS = Functions(planner="p", worker="w", finalizer="f", cleanup="c")


def scheduled(tmp_path: Path, **changes: str) -> EnvSettings:
    return settings_for(tmp_path, schedule_nightly=NIGHTLY, schedule_hourly=HOURLY, **changes)


def resources(settings: EnvSettings, kind: str) -> dict[str, dict[str, Any]]:
    template = json.loads(render_template(settings))
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


# --- expressions, as EventBridge Scheduler checks them -------------------------------------------------
@pytest.mark.parametrize("expression", [
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(7 days)",
    "cron(0 2 * * ? *)", "cron(0 9 ? * MON-FRI *)", "cron(15 10 ? * 6L 2026-2030)", "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)", "cron(0 0 L * ? *)", "cron(0 12 ? * 2#1 *)", "cron(0 0 15W * ? *)",
    "cron(30 6,18 ? JAN,JUL SUN *)",
])
def test_expressions_scheduler_accepts_are_accepted(expression: str) -> None:
    assert schedules.expression_problems(expression) == []


@pytest.mark.parametrize(("expression", "problem"), [
    ("cron(0 2 * * * *)", "cannot both be given"),
    ("cron(0 2 ? * ? *)", "cannot both be given"),
    ("cron(0 2 * * ?)", "six fields"),
    ("cron(60 2 * * ? *)", "minutes"),
    ("cron(0 24 * * ? *)", "hours"),
    ("cron(0 2 32 * ? *)", "day-of-month"),
    ("cron(0 2 ? 13 MON *)", "month"),
    ("cron(0 2 ? * 8 *)", "day-of-week"),
    ("cron(0 2 * * ? 1969)", "year"),
    ("cron(0/0 2 * * ? *)", "increment"),
    ("cron(? 2 * * ? *)", "'?' is allowed in day-of-month and day-of-week only"),
    ("rate(0 minutes)", "positive"),
    ("rate(1 minutes)", "rate(1 minute)"),
    ("rate(5 minute)", "rate(5 minutes)"),
    ("rate(2 weeks)", "expected rate(value unit)"),
    ("at(2026-12-24T08:00:00)", "one-time"),
    ("every day", "expected rate(value unit) or cron"),
])
def test_expressions_scheduler_refuses_are_refused_with_the_fix(expression: str, problem: str) -> None:
    problems = schedules.expression_problems(expression)
    assert len(problems) >= 1 and problem in problems[0], problems


# --- settings -------------------------------------------------------------------------------------------
def test_schedule_lines_become_schedules_sorted_by_name(tmp_path: Path) -> None:
    settings = scheduled(tmp_path)
    assert settings.schedules == (
        schedules.Schedule("hourly", "rate(1 hour)", "s3://cfg-bucket/sfncopy/hourly.json", ""),
        schedules.Schedule("nightly", "cron(0 2 * * ? *)", "s3://cfg-bucket/sfncopy/nightly.json", "Europe/Paris"),
    )
    assert settings.schedules[1].env_value() == NIGHTLY
    assert settings.schedules[1].input_document() == {"s3_copy_config_location": "s3://cfg-bucket/sfncopy/nightly.json"}


def test_every_bad_schedule_is_reported_with_its_variable(tmp_path: Path) -> None:
    with pytest.raises(EnvSettingsError) as raised:
        settings_for(tmp_path, schedule_a="cron(0 2 * * * *) s3://cfg-bucket/a.json", schedule_b="rate(1 day)",
                     schedule_c="rate(1 day) s3://cfg-bucket/ Mars/Olympus", schedule_D="rate(1 day) s3://b1b/k")
    problems = raised.value.problems
    assert any(p.startswith("schedule_a=") and "cannot both be given" in p for p in problems)
    assert any(p.startswith("schedule_b=") and "no stored config" in p for p in problems)
    assert any(p.startswith("schedule_c=") and "s3://bucket/key" in p for p in problems)
    assert any(p.startswith("schedule_c=") and "IANA time zone" in p for p in problems)
    assert any(p.startswith("schedule_D=") and "lower-case" in p for p in problems)


def test_a_schedule_name_too_long_for_scheduler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvSettingsError, match="longer than 64 characters"):
        settings_for(tmp_path, stack_name="s" * 40, **{"schedule_" + "n" * 30: HOURLY})


@pytest.mark.parametrize(("value", "ok"), [("", True), ("create", True), (TOPIC_ARN, True),
                                           ("copy-alerts", False), (TOPIC_ARN + ".fifo", False)])
def test_notification_topic_is_create_or_a_standard_topic_arn(tmp_path: Path, value: str, ok: bool) -> None:
    if ok:
        assert settings_for(tmp_path, notification_topic=value or None).notification_topic == value
    else:
        with pytest.raises(EnvSettingsError, match="notification_topic="):
            settings_for(tmp_path, notification_topic=value)


# --- generated resources and policies ------------------------------------------------------------------
def test_each_schedule_starts_the_machine_with_its_config_location(tmp_path: Path) -> None:
    made = resources(scheduled(tmp_path), "AWS::Scheduler::Schedule")
    nightly = made["ScheduleNightly"]["Properties"]
    assert set(made) == {"ScheduleNightly", "ScheduleHourly"}
    assert nightly["Name"] == "sfncopy-test-nightly"
    assert (nightly["ScheduleExpression"], nightly["ScheduleExpressionTimezone"]) == ("cron(0 2 * * ? *)",
                                                                                     "Europe/Paris")
    assert made["ScheduleHourly"]["Properties"]["ScheduleExpressionTimezone"] == "UTC"
    assert nightly["Target"]["Arn"] == {"Ref": "StateMachine"}
    assert nightly["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert json.loads(nightly["Target"]["Input"]) == {"s3_copy_config_location": "s3://cfg-bucket/sfncopy/nightly.json"}


def test_the_scheduler_role_trusts_scheduler_for_this_account_and_may_start_this_machine_only(tmp_path: Path) -> None:
    role = resources(scheduled(tmp_path), "AWS::IAM::Role")["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [{
        "Sid": "StartScheduledRuns", "Effect": "Allow", "Action": ["states:StartExecution"],
        "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
                                 "sfncopy-test"}]}]


@pytest.mark.parametrize("planning", ["single", "sharded"])
def test_the_planner_may_read_exactly_the_stored_configs(tmp_path: Path, planning: str) -> None:
    roles = resources(scheduled(tmp_path, planning=planning), "AWS::IAM::Role")
    role = roles["PlannerRole" if planning == "single" else "PlanPrepareRole"]
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (read,) = [s for s in statements if s.get("Sid") == "ReadStoredConfigs"]
    assert read["Action"] == ["s3:GetObject"]
    assert read["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:s3:::cfg-bucket/sfncopy/hourly.json"},
                                {"Fn::Sub": "arn:${AWS::Partition}:s3:::cfg-bucket/sfncopy/nightly.json"}]
    # AND no other role reads them (a sharded stack keeps the single planner's function and role too)
    readers = {name for name, r in roles.items() if "ReadStoredConfigs" in json.dumps(r)}
    assert readers == ({"PlannerRole"} if planning == "single" else {"PlannerRole", "PlanPrepareRole"})


def test_without_schedules_or_topic_nothing_is_added(tmp_path: Path) -> None:
    text = render_template(settings_for(tmp_path))
    for absent in ("AWS::Scheduler::Schedule", "SchedulerRole", "ReadStoredConfigs", "sns:", "AWS::SNS::Topic",
                   "NotifySucceeded", "NotificationTopicArn"):
        assert absent not in text


@pytest.mark.parametrize(("topic", "arn"), [("create", {"Ref": "NotificationTopic"}), (TOPIC_ARN, TOPIC_ARN)])
def test_the_machine_may_publish_to_the_topic_only(tmp_path: Path, topic: str, arn: Any) -> None:
    settings = settings_for(tmp_path, notification_topic=topic)
    template = json.loads(render_template(settings))
    statements = template["Resources"]["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s for s in statements if "sns:Publish" in s["Action"]] == [
        {"Sid": "PublishRunSummaries", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": [arn]}]
    assert ("NotificationTopic" in template["Resources"]) == (topic == "create")
    assert template["Outputs"]["NotificationTopicArn"]["Value"] == arn


# --- the notify states ----------------------------------------------------------------------------------
def test_notifications_go_before_both_ends_of_a_run() -> None:
    plain = build_definition(2, FUNCTIONS)
    notified = with_notifications(plain, "arn:topic", "stack")
    states = notified["States"]
    # THEN the finalizer's last Choice and Cleanup go to the summaries, which end where they ended before
    assert states["FinalizeDone"]["Default"] == SUMMARIZE_SUCCEEDED
    assert states["Cleanup"]["Next"] == SUMMARIZE_FAILED
    assert states[SUMMARIZE_SUCCEEDED]["Next"] == NOTIFY_SUCCEEDED
    assert states[NOTIFY_SUCCEEDED]["Next"] == FINALIZED
    assert states[NOTIFY_FAILED]["Next"] == FAILED
    # AND a publish that fails goes on to the same end (the run's outcome is the copy's)
    assert states[NOTIFY_SUCCEEDED]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notification_error",
                                                  "Next": FINALIZED}]
    assert states[NOTIFY_FAILED]["Catch"][0]["Next"] == FAILED
    assert states[NOTIFY_SUCCEEDED]["Resource"] == "arn:aws:states:::sns:publish"
    assert states[NOTIFY_SUCCEEDED]["Parameters"]["TopicArn"] == "arn:topic"
    # AND nothing else changed, and the plain definition was not touched
    assert {k: v for k, v in states.items() if k not in plain["States"]}.keys() == {
        SUMMARIZE_SUCCEEDED, NOTIFY_SUCCEEDED, SUMMARIZE_FAILED, NOTIFY_FAILED}
    assert plain["States"]["Cleanup"]["Next"] == FAILED


def test_the_largest_failure_summary_fits_an_sns_message() -> None:
    # GIVEN a failure whose cause is as long as Step Functions allows, and the longest ids and URIs
    _, failed = notification_summaries()
    long = "x" * 1024
    cause = notified_cause("\U0001f600" * limits.MAX_ERROR_CAUSE_CHARACTERS)  # 12 bytes each, JSON-escaped
    assert len(cause) == limits.MAX_NOTIFIED_CAUSE_CHARACTERS
    values = {"$.cleanup.run_id": "r" * 80, "$.cleanup.error": "e" * 256,
              "$.cleanup.notified_cause": cause, "$.cleanup.failure_report": long,
              "$.cleanup.partial": {"counts": {k: 10**12 for k in ("copied", "skipped", "failed", "planned")},
                                    "bytes_copied": 10**15}}
    summary = {key.removesuffix(".$"): values.get(path, long) if key.endswith(".$") else path
               for key, path in failed.items()}
    # WHEN it is published as JSON (escaped or not)  THEN it is far below SNS's limit
    for text in (json.dumps(summary), json.dumps(summary, ensure_ascii=False)):
        assert len(text.encode("utf-8")) < limits.MAX_SNS_MESSAGE_BYTES // 4


# --- independent validators -----------------------------------------------------------------------------
@pytest.mark.parametrize("topic", ["create", TOPIC_ARN])
def test_validators_accept_schedules_and_notifications(tmp_path: Path, topic: str) -> None:
    template, settings = generated(scheduled(tmp_path / "envs", notification_topic=topic))
    assert_no_parliament_findings(template, settings, f"an env with schedules and notification_topic={topic}")
    assert_valid_state_machine(state_machine_definition(template, settings), "an env with notifications", tmp_path)


@pytest.mark.slow
def test_cfn_lint_accepts_schedules_and_a_created_topic(tmp_path: Path) -> None:
    text = render_template(scheduled(tmp_path, notification_topic="create"))
    assert [str(m) for m in lint(text) if m.rule.id.startswith("E")] == []
