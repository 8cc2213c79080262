"""The CLI's edges: validate's outcomes and exit codes, one-line errors, unknown environments, --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sfncopy.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# The original project's README example, as published: note the trailing comma after the last target.
ORIGINAL_README_EXAMPLE = """{
  "s3_copy_config": {
    "source_s3_config": {
      "s3_bucket": "my-source",
      "s3_path": "source/"
    },
    "target_s3_config": [
      {"file_types": ["mp4"], "s3_bucket": "my-target", "s3_path": "mp4/"},
      {"file_types": ["jpg", "png"], "s3_bucket": "my-target", "s3_path": "images/"},
    ]
  }
}
"""


def run(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_validate_ok_prints_a_summary_and_exits_0():
    # GIVEN the example that shows every option  WHEN it is validated
    result = run("validate", str(EXAMPLES / "all-options.json"))
    # THEN exit 0 with sources, targets and options summarised
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "1 source(s), 3 target(s)" in result.output
    assert "source: s3://my-source/media/" in result.output
    assert "target 2: s3://my-archive/flat/ <- every file; exclude *.tmp; flattened" in result.output
    assert "overwrite=if-different" in result.output and "storage_class=STANDARD_IA" in result.output


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_example_is_valid(name):
    result = run("validate", str(EXAMPLES / name))
    assert result.exit_code == 0, result.output


def test_validate_missing_file_is_one_line_exit_2(tmp_path):
    # GIVEN a path that does not exist  WHEN validated
    result = run("validate", str(tmp_path / "nope.json"))
    # THEN exit 2 with one clear line and no traceback
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope.json'}: no such file"
    assert "Traceback" not in result.output


def test_validate_trailing_comma_names_line_column_and_fix(tmp_path):
    # GIVEN the original README's own example (a trailing comma after the last target)
    path = write(tmp_path, "readme.json", ORIGINAL_README_EXAMPLE)
    # WHEN validated
    result = run("validate", path)
    # THEN exit 2; the message names the file, line 9 (the comma) and the fix
    assert result.exit_code == 2
    assert f"{path}:9:" in result.output
    assert "remove the trailing comma" in result.output
    assert "Traceback" not in result.output


def test_validate_lists_every_problem_one_per_line(tmp_path):
    # GIVEN a config with three independent mistakes
    document = {"s3_copy_config": {
        "source_s3_config": {"s3_bucket": "My_Source"},
        "target_s3_config": [{"file_types": "jpg", "s3_bucket": "t"}],
        "options": {"overwrit": "always"},
    }}
    path = write(tmp_path, "bad.json", json.dumps(document))
    # WHEN validated
    result = run("validate", path)
    # THEN exit 2, a head line with the count, then each problem on its own line with its JSON path
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    problems = [line for line in lines if line.startswith("  - ")]
    assert lines[0] == f"error: {path}: {len(problems)} problems"
    assert len(problems) >= 4
    for field in ("source_s3_config.s3_bucket", "target_s3_config[0].file_types", "target_s3_config[0].s3_bucket",
                  "options"):
        assert any(field in p for p in problems), (field, problems)
    assert any("overwrit" in p for p in problems)


def test_validate_refuses_a_config_without_the_wrapper(tmp_path):
    path = write(tmp_path, "bare.json", json.dumps({"source_s3_config": {"s3_bucket": "src"},
                                                    "target_s3_config": [{"file_types": ["*"], "s3_bucket": "t1"}]}))
    result = run("validate", path)
    assert result.exit_code == 2
    assert 'put it under "s3_copy_config"' in result.output


def test_start_execution_validates_locally_before_anything_else(tmp_path):
    # GIVEN an invalid config and an environment that does not even exist
    path = write(tmp_path, "bad.json", '{"s3_copy_config": {}}')
    # WHEN an execution is started THEN the config problems come first (exit 2), nothing is contacted
    result = run("--envs-dir", str(tmp_path), "start-execution", path, "--env", "nowhere")
    assert result.exit_code == 2
    assert "source_s3_config" in result.output and "target_s3_config" in result.output


def test_start_execution_refuses_buckets_the_stack_may_not_touch_before_starting(tmp_path):
    # GIVEN the local environment (which may write only sfncopy-demo-target) and an endpoint nobody serves
    config = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "sfncopy-demo-source"},
                                 "target_s3_config": [{"file_types": ["*"], "s3_bucket": "someone-elses"}]}}
    path = write(tmp_path, "other.json", json.dumps(config))
    # WHEN an execution is started
    result = run("--envs-dir", str(ROOT / "envs"), "start-execution", path, "--env", "local",
                 env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    # THEN exit 2 naming the field, the allowed buckets and the fix; nothing was contacted (that would be exit 1)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[0] == "error: 1 problem in the s3_copy_config"
    assert 'target_s3_config[0].s3_bucket: this stack may not write bucket "someone-elses"' in result.output
    assert "target_buckets" in result.output


def test_unknown_environment_is_one_line_naming_the_env_file(tmp_path):
    # GIVEN an envs folder with one environment
    (tmp_path / "dev-env.sh").write_text("export stack_name=x\n", encoding="utf-8")
    # WHEN a command names an environment that has no file
    result = run("--envs-dir", str(tmp_path), "plan", str(EXAMPLES / "original-format.json"), "--env", "prod")
    # THEN exit 2 with one line naming envs/prod-env.sh and the known environments
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert str(tmp_path / "prod-env.sh") in lines[0]
    assert "unknown environment 'prod'" in lines[0] and "known: dev" in lines[0]


def test_bad_env_file_lists_each_problem(tmp_path):
    # GIVEN an env file with a line of logic in it
    (tmp_path / "dev-env.sh").write_text("if true; then echo; fi\n", encoding="utf-8")
    result = run("--envs-dir", str(tmp_path), "plan", str(EXAMPLES / "original-format.json"), "--env", "dev")
    # THEN exit 2 with the file named and the problem listed
    assert result.exit_code == 2
    assert "dev-env.sh" in result.output and "  - " in result.output


def test_envs_dir_comes_from_the_process_environment_unless_given(tmp_path):
    (tmp_path / "a").mkdir()
    env = {"SFNCOPY_ENVS_DIR": str(tmp_path / "a")}
    result = run("plan", str(EXAMPLES / "original-format.json"), "--env", "zz", env=env)
    assert str(tmp_path / "a" / "zz-env.sh") in result.output
    result = run("--envs-dir", str(tmp_path), "plan", str(EXAMPLES / "original-format.json"), "--env", "zz", env=env)
    assert str(tmp_path / "zz-env.sh") in result.output


def test_bad_execution_name_is_refused_before_contacting_aws(tmp_path):
    result = run("--envs-dir", str(tmp_path), "start-execution", str(EXAMPLES / "original-format.json"),
                 "--env", "local", "--name", "has spaces")
    assert result.exit_code == 1
    assert "--name" in result.output and "Traceback" not in result.output


def test_status_of_something_that_is_not_an_execution_arn():
    result = run("status", "arn:aws:s3:::bucket")
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: 'arn:aws:s3:::bucket' is not an execution ARN")


def _sfncopy(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from sfncopy.cli import main; sys.argv[0] = 'sfncopy'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


def test_debug_shows_the_traceback_and_the_default_does_not(tmp_path):
    # GIVEN an unknown environment (an error raised deep inside the env loader)
    args = ["plan", str(EXAMPLES / "original-format.json"), "--env", "nope"]
    # WHEN run normally THEN one line, no traceback
    plain = _sfncopy("--envs-dir", str(tmp_path), *args)
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().count("\n") == 0 and "nope-env.sh" in plain.stderr
    # WHEN run with --debug THEN the traceback shows where it came from
    debug = _sfncopy("--debug", "--envs-dir", str(tmp_path), *args)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "SettingsError" in debug.stderr


def test_generate_writes_the_template_then_reports_it_unchanged_and_follows_workers(tmp_path):
    from tests.unit.generator_helpers import write_env

    write_env(tmp_path / "envs", "test")
    out = tmp_path / "test.json"
    args = ("--envs-dir", str(tmp_path / "envs"), "generate", "--env", "test", "--out", str(out))
    first, again = run(*args), run(*args)
    assert (first.exit_code, first.output) == (0, f"{out}: written (2 workers)\n")
    assert again.output == f"{out}: unchanged (2 workers)\n"
    five = run(*args, "--workers", "5")
    assert five.output == f"{out}: written (5 workers)\n"
    definition = json.loads(json.loads(out.read_text())["Resources"]["StateMachine"]["Properties"][
        "DefinitionString"]["Fn::Sub"])
    assert len(definition["States"]["Copy"]["Branches"]) == 5
    assert definition["States"]["Plan"]["Parameters"]["workers"] == 5
