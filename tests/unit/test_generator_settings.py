"""Env files: parsed without a shell, validated once, every problem naming the variable and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.settings import BucketScope, EnvSettingsError, available_envs, load_env
from lambdas.errors import SettingsError
from tests.unit.generator_helpers import settings_for, write_env

ROOT = Path(__file__).resolve().parents[2]


def test_committed_envs_all_load() -> None:
    # GIVEN the repository's env files  WHEN each is loaded from the file alone  THEN all are valid
    names = available_envs(ROOT / "envs")
    assert names == ["dev", "local", "prod", "uat"]
    for name in names:
        settings = load_env(name, ROOT / "envs", environ={})
        assert settings.env == name
        assert settings.overrides == ()


def test_local_env_points_clients_at_the_emulator() -> None:
    settings = load_env("local", ROOT / "envs", environ={})
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert dict(settings.client_environment)["AWS_ACCESS_KEY_ID"] == "testing"
    assert load_env("dev", ROOT / "envs", environ={}).endpoint_url is None


def test_values_are_typed(tmp_path: Path) -> None:
    # GIVEN an env file with prefixed scopes and optional values
    settings = settings_for(tmp_path, source_buckets="src-a/data/ src-b", target_buckets="tgt-b tgt-a tgt-a",
                            copy_cutoff_mb="16", part_size_mb="8", manifest_prefix="/runs-here")
    # THEN lists are parsed, deduplicated and sorted, prefixes normalised
    assert settings.source_buckets == (BucketScope("src-a", "data/"), BucketScope("src-b", ""))
    assert settings.target_buckets == (BucketScope("tgt-a"), BucketScope("tgt-b"))
    assert settings.manifest_bucket is None  # "create"
    assert settings.manifest_prefix == "runs-here/"
    assert (settings.copy_cutoff_mb, settings.part_size_mb) == (16, 8)
    assert settings.workers == 2
    assert settings.worker.timeout_seconds == 900
    assert settings.worker_concurrency == 1  # optional: one payload at a time per worker
    assert settings_for(tmp_path, worker_concurrency="25").worker_concurrency == 25


@pytest.mark.parametrize(("timeout", "margin"), [(900, 60), (300, 60), (60, 12), (3, 1)])
def test_deadline_margin_follows_the_worker_timeout(tmp_path: Path, timeout: int, margin: int) -> None:
    assert settings_for(tmp_path, worker_timeout_seconds=str(timeout)).deadline_margin_seconds == margin


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("num_copy_lambda_workers", "0", "must be from 1 to 500"),
    ("num_copy_lambda_workers", "two", "expected a whole number"),
    ("max_payload_size_per_lambda_execution_in_mb", "4", "at least one 5 MiB part"),
    ("target_buckets", "Bad_Bucket", "not a valid S3 bucket name"),
    ("source_buckets", "ok-bucket/no-slash", "a prefix must end in '/'"),
    ("package_bucket", "ab", "not a valid S3 bucket name"),
    ("manifest_bucket", "192.168.1.1", "not a valid S3 bucket name"),
    ("worker_timeout_seconds", "901", "must be from 1 to 900"),
    ("worker_memory_mb", "64", "must be from 128 to 10240"),
    ("kms_key_arns", "alias/mine", "is not a KMS key ARN"),
    ("log_retention_days", "2", "CloudWatch Logs accepts only"),
    ("stack_name", "1-bad", "must start with a letter"),
    ("region", "mars", "expected an AWS region"),
    ("worker_concurrency", "0", "must be from 1 to 10000 payloads at once (a Distributed Map runs at most 10,000"),
    ("worker_concurrency", "10001", "must be from 1 to 10000"),
    ("worker_concurrency", "many", "expected a whole number"),
])
def test_bad_settings_name_the_variable_and_the_file(tmp_path: Path, name: str, value: str, expected: str) -> None:
    # GIVEN an env file with one bad value  WHEN it is loaded  THEN the error names variable, value and file
    path = write_env(tmp_path, **{name: value})
    with pytest.raises(SettingsError) as caught:
        load_env("test", tmp_path, environ={})
    message = str(caught.value)
    assert f"{name}=" in message
    assert str(path) in message
    assert expected in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write_env(tmp_path, num_copy_lambda_workers="0", worker_timeout_seconds="1000", target_buckets=None)
    with pytest.raises(EnvSettingsError) as caught:
        load_env("test", tmp_path, environ={})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("target_buckets is not set" in p and "test-env.sh" in p for p in problems)


def test_process_environment_beats_the_file(tmp_path: Path) -> None:
    # GIVEN a file with 2 workers  WHEN the process environment says 5  THEN 5 wins and is marked as override
    write_env(tmp_path)
    settings = load_env("test", tmp_path, environ={"num_copy_lambda_workers": "5", "AWS_ENDPOINT_URL": "http://x:1"})
    assert settings.workers == 5
    assert settings.overrides == ("num_copy_lambda_workers",)
    assert settings.endpoint_url == "http://x:1"


def test_a_bad_override_names_the_process_environment(tmp_path: Path) -> None:
    write_env(tmp_path)
    with pytest.raises(SettingsError, match=r"num_copy_lambda_workers='0' \(from the process environment"):
        load_env("test", tmp_path, environ={"num_copy_lambda_workers": "0"})


@pytest.mark.parametrize(("line", "expected"), [
    ("stack_name=x", "expected 'export name=value'"),
    ("if true; then export a=b; fi", "expected 'export name=value'"),
    ("export stack_name=$HOME", "no '$'"),
    ('export source_buckets="a $b"', "no '$'"),
    ("export stack_name=a b", "quote values with spaces"),
    ("export stack_name=x # comment", "quote values with spaces"),
    ("export stack_nmae=x", "unknown variable 'stack_nmae'"),
])
def test_env_files_hold_no_logic(tmp_path: Path, line: str, expected: str) -> None:
    path = write_env(tmp_path)
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(SettingsError) as caught:
        load_env("test", tmp_path, environ={})
    assert expected in str(caught.value)
    assert f"{path}:" in str(caught.value)  # file and line number


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    write_env(tmp_path, "dev")
    with pytest.raises(SettingsError, match=r"unknown environment 'qa'.*known: dev"):
        load_env("qa", tmp_path, environ={})


def test_with_workers_validates(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert settings.with_workers(7).workers == 7
    with pytest.raises(SettingsError, match=r"num_copy_lambda_workers=0 .*--workers"):
        settings.with_workers(0)
