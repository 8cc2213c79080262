"""The shell glue a user runs: ``scripts/package.sh``, ``scripts/start-execution.sh`` and the error path of
``scripts/deploy.sh`` (its success path deploys every stack of this suite, see support.deploy)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import ROOT, Stack, rich

pytestmark = pytest.mark.e2e
SCRIPT_TIMEOUT_SECONDS = 300


def script(name: str, *args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_SECONDS, check=False)


def test_package_then_start_execution_from_another_directory(world: World, main_stack: Stack) -> None:
    # GIVEN the local environment as the main stack overrides it, and a config file in a scratch directory
    env = support.process_environment(world.endpoint, main_stack.spec)
    objects = [rich(f"in/s/{i}.csv", 1000 + i, "text/csv") for i in range(3)]
    source, target = world.source(*objects), world.target()
    (world.work_dir / "copy.json").write_text(json.dumps(support.config_document(
        {"s3_bucket": source, "s3_path": "in/s/"},
        [{"file_types": ["csv"], "s3_bucket": target, "s3_path": "out/t/"}])))

    # WHEN package.sh runs  THEN it prints where the code zip is, and the zip is there
    packaged = script("package.sh", "local", env=env)
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    bucket, key = packaged.stdout.strip().removeprefix("s3://").split("/", 1)
    assert world.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0

    # WHEN start-execution.sh runs with a path relative to the caller's directory
    started = script("start-execution.sh", "local", "copy.json", env=env, cwd=world.work_dir)

    # THEN it waits for the run, exits 0, and every object is in its target
    assert started.returncode == 0, started.stdout + started.stderr
    support.assert_targets(world.s3, {(target, f"out/t/{o.key[len('in/s/'):]}"): o for o in objects}, [target])


def test_scripts_refuse_a_missing_argument_with_their_usage() -> None:
    for name, args in (("deploy.sh", ()), ("package.sh", ()), ("start-execution.sh", ("local",))):
        done = script(name, *args, env=support.process_environment("http://127.0.0.1:1"))
        assert (done.returncode, done.stderr.startswith("usage: ")) == (2, True), (name, done.stderr)


def test_deploy_to_an_unreachable_endpoint_fails_in_one_line_without_a_traceback() -> None:
    # GIVEN an endpoint nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = support.process_environment(f"http://127.0.0.1:{port}", support.MAIN)

    # WHEN deploy.sh runs  THEN it exits 1 with one line that says what to check
    done = script("deploy.sh", "local", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: Could not connect to the endpoint URL")
    assert "is the endpoint reachable?" in done.stderr


def test_the_aws_cli_starts_an_execution_with_the_config_as_input(world: World, main_stack: Stack) -> None:
    # GIVEN a config file, and the AWS CLI (a dev dependency) pointed at the emulator as a user's would be
    objects = [rich(f"in/c/{i}.txt", 500 + i, "text/plain") for i in range(4)]
    source, target = world.source(*objects), world.target()
    config = world.work_dir / "config.json"
    config.write_text(json.dumps(support.config_document(
        {"s3_bucket": source, "s3_path": "in/c/"},
        [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"}])))
    aws = Path(sys.executable).with_name("aws")
    name = support.execution_name("aws-cli")

    # WHEN `aws stepfunctions start-execution --input file://...` starts it
    started = subprocess.run([str(aws), "stepfunctions", "start-execution", "--state-machine-arn",
                              main_stack.state_machine_arn, "--name", name, "--input", f"file://{config}"],
                             env=support.process_environment(world.endpoint), capture_output=True, text=True,
                             timeout=SCRIPT_TIMEOUT_SECONDS, check=False)

    # THEN the execution it names succeeds and every object is in the target
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["executionArn"]
    assert support.wait_for(world.sfn, arn)["status"] == "SUCCEEDED"
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/c/"):]): o for o in objects}, [target])
