"""``sfncopy schedule list|add|remove``: the env file's schedule_<name> lines are the schedules
(sfncopy/schedule_file.py says why); add/remove edit exactly one line, only when the whole env still validates,
and say how to apply it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from generator.settings import load_env
from sfncopy.cli import cli
from sfncopy.schedule_file import with_schedule, without_schedule
from tests.unit.generator_helpers import write_env

NIGHTLY = ("nightly", "cron(0 2 * * ? *)", "s3://cfg-bucket/sfncopy/nightly.json")


def run(envs: Path, *args: str) -> Result:
    # No process-environment overrides: the file is what is checked.
    return CliRunner().invoke(cli, ["--envs-dir", str(envs), "schedule", *args], env={"schedule_nightly": None})


def test_add_writes_one_validated_line_and_says_how_to_deploy(tmp_path: Path) -> None:
    # GIVEN an env without schedules
    path = write_env(tmp_path)
    before = path.read_text()
    # WHEN a schedule is added
    result = run(tmp_path, "add", *NIGHTLY, "--timezone", "Europe/Paris", "--env", "test")
    # THEN the file gained exactly its line, the env reads it back, and the user is told to deploy
    assert result.exit_code == 0, result.output
    assert path.read_text() == before + 'export schedule_nightly="cron(0 2 * * ? *) ' \
                                        's3://cfg-bucket/sfncopy/nightly.json Europe/Paris"\n'
    (schedule,) = load_env("test", tmp_path, environ={}).schedules
    assert (schedule.name, schedule.expression, schedule.timezone) == ("nightly", "cron(0 2 * * ? *)", "Europe/Paris")
    assert "./scripts/deploy.sh test" in result.output
    # AND list shows it
    listed = run(tmp_path, "list", "--env", "test")
    assert listed.exit_code == 0
    assert listed.output.strip() == "nightly  cron(0 2 * * ? *)  Europe/Paris  s3://cfg-bucket/sfncopy/nightly.json"


def test_a_bad_expression_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    path = write_env(tmp_path)
    before = path.read_text()
    result = run(tmp_path, "add", "nightly", "cron(0 2 * * * *)", NIGHTLY[2], "--env", "test")
    assert result.exit_code == 2
    assert "day-of-month and day-of-week cannot both be given" in result.output
    assert path.read_text() == before


def test_an_edit_that_breaks_the_env_is_refused(tmp_path: Path) -> None:
    # GIVEN a stack name so long that the schedule's Scheduler name would not fit 64 characters
    path = write_env(tmp_path, stack_name="s" * 50)
    before = path.read_text()
    result = run(tmp_path, "add", "nightly_copy_of_everything", *NIGHTLY[1:], "--env", "test")
    assert result.exit_code == 2
    assert "longer than 64 characters" in result.output
    assert path.read_text() == before


def test_a_name_taken_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    write_env(tmp_path, schedule_nightly=" ".join(NIGHTLY[1:]))
    taken = run(tmp_path, "add", *NIGHTLY, "--env", "test")
    assert taken.exit_code == 2 and "exists already" in taken.output
    missing = run(tmp_path, "remove", "hourly", "--env", "test")
    assert missing.exit_code == 2 and "no schedule 'hourly'" in missing.output


def test_remove_deletes_exactly_its_line(tmp_path: Path) -> None:
    path = write_env(tmp_path, schedule_nightly=" ".join(NIGHTLY[1:]), schedule_hourly="rate(1 hour) s3://c-b/h.json")
    result = run(tmp_path, "remove", "nightly", "--env", "test")
    assert result.exit_code == 0, result.output
    assert [s.name for s in load_env("test", tmp_path, environ={}).schedules] == ["hourly"]
    assert "schedule_nightly" not in path.read_text()
    assert run(tmp_path, "list", "--env", "test").output.startswith("hourly  rate(1 hour)  UTC")


def test_a_new_line_goes_after_the_last_schedule_and_removal_restores_the_text() -> None:
    from generator.schedules import Schedule

    text = "export a=1\nexport schedule_x=\"rate(1 day) s3://b-b/k\"\n# end\n"
    added = with_schedule(text, Schedule("y", "rate(2 days)", "s3://b-b/y"))
    assert added.splitlines()[2] == 'export schedule_y="rate(2 days) s3://b-b/y"'
    assert without_schedule(added, "y") == text


def test_listing_with_scheduler_shows_each_state_and_drift(tmp_path: Path, monkeypatch) -> None:
    import boto3
    from moto import mock_aws

    from sfncopy.schedule_file import ListedSchedule, listing

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    write_env(tmp_path, schedule_nightly=" ".join(NIGHTLY[1:]), schedule_hourly="rate(1 hour) s3://c-b/h.json")
    settings = load_env("test", tmp_path, environ={})
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        target = {"Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:sfncopy-test",
                  "RoleArn": "arn:aws:iam::123456789012:role/r"}
        # GIVEN Scheduler holds the nightly schedule (disabled) and one the env file no longer names
        for name, state in (("sfncopy-test-nightly", "DISABLED"), ("sfncopy-test-weekly", "ENABLED")):
            scheduler.create_schedule(Name=name, ScheduleExpression="rate(7 days)", State=state, Target=target,
                                      FlexibleTimeWindow={"Mode": "OFF"})
        rows = listing(settings, scheduler)
    # THEN each env schedule has its state, a missing one says so, and the stray one is listed as drift
    assert [(r.name, r.deployed) for r in rows] == [("hourly", "not deployed"), ("nightly", "DISABLED"),
                                                    ("sfncopy-test-weekly", "not in the env file")]
    assert rows[2] == ListedSchedule("sfncopy-test-weekly", "rate(7 days)", "UTC", "", "not in the env file")
