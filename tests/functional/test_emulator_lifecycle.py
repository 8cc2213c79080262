"""The emulator's life: starts in under 5 s, --data-dir contents, clean stop (Ctrl-C / SIGTERM for the
command; stop() in process) with no Lambda worker left and moto restored as it was."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from sfncopy.emulator import Emulator, EmulatorError, control, free_port
from tests.functional.emulator_helpers import create_function, invoke

REPO = Path(__file__).resolve().parents[2]
STARTUP_BUDGET_SECONDS = 5.0
# Wall time on a machine shared with the rest of the suite (pytest -n 2) says more about the neighbours than
# about the emulator; the budget is checked on the CPU time the start-up itself took, wall time only loosely.
STARTUP_WALL_LIMIT_SECONDS = 20.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _clients(endpoint: str) -> tuple[Any, Any]:
    options = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    return boto3.client("lambda", **options), boto3.client("iam", **options)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_emulator_command_starts_fast_keeps_its_data_dir_and_stops_cleanly(tmp_path, stop_signal):
    # GIVEN the emulator started the way `sfncopy emulator --port P --data-dir DIR` starts it
    port, data_dir = free_port(), tmp_path / "data"
    endpoint = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", f"from sfncopy.emulator import run_forever; run_forever({port}, {str(data_dir)!r})"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
    try:
        # WHEN it is ready
        control.wait_until_ready(endpoint, timeout=STARTUP_WALL_LIMIT_SECONDS)
        startup, cpu = time.monotonic() - started, _cpu_seconds(process.pid)

        # THEN it started within the budget, interpreter start and imports included
        assert cpu < STARTUP_BUDGET_SECONDS, f"start-up took {cpu:.1f} s of CPU ({startup:.1f} s wall)"
        assert startup < STARTUP_WALL_LIMIT_SECONDS

        # WHEN a function runs in it (so a worker process exists) and the command gets the signal
        lam, iam = _clients(endpoint)
        create_function(lam, iam, "lifecycle")
        assert invoke(lam, "lifecycle", {})[0] is None
        workers = _children(process.pid)
        assert workers, "a Lambda worker process should be running"
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # THEN it exited 0, announced itself, left no worker behind and freed the port
    assert process.returncode == 0, stderr
    assert f"sfncopy emulator on {endpoint}" in stderr
    assert "Traceback" not in stderr
    assert not [pid for pid in workers if _alive(pid)]
    assert _port_free(port)
    # AND the data dir holds the extracted code, the invocation's log and the request log
    assert list(data_dir.glob("lambda/functions/lifecycle/*/app.py"))
    assert "handler called" in (data_dir / "logs" / "lifecycle.log").read_text()
    assert "/2015-03-31/functions/lifecycle/invocations" in (data_dir / "requests.log").read_text()


def test_stop_kills_the_workers_and_restores_moto_and_the_environment():
    # GIVEN moto as imported, and an emulator with a warm worker and a bucket
    import moto.stepfunctions.models as plain
    from moto.awslambda.models import LambdaFunction
    from moto.core.config import default_user_config

    original_invoke, original_backends = LambdaFunction._invoke_lambda, plain.stepfunctions_backends
    port_before = os.environ.get("MOTO_PORT")
    emulator = Emulator(port=free_port()).start()
    try:
        lam, iam = _clients(emulator.endpoint)
        create_function(lam, iam, "stopper")
        invoke(lam, "stopper", {})
        boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t").create_bucket(Bucket="forgotten")
        workers = emulator.lambda_worker_pids()
        assert workers
        assert os.environ["MOTO_PORT"] == str(emulator.port)
    finally:
        # WHEN it stops
        emulator.stop()

    # THEN no worker is left, and moto, MOTO_PORT and the AWS state are as before
    assert not [pid for pid in workers if _alive(pid)]
    assert emulator.lambda_worker_pids() == []
    assert LambdaFunction._invoke_lambda is original_invoke
    assert plain.stepfunctions_backends is original_backends
    assert default_user_config["stepfunctions"]["execute_state_machine"] is False
    assert os.environ.get("MOTO_PORT") == port_before
    with Emulator(port=free_port()) as again:
        s3 = boto3.client("s3", endpoint_url=again.endpoint, region_name="us-east-1", aws_access_key_id="t",
                          aws_secret_access_key="t")
        assert s3.list_buckets()["Buckets"] == []


def test_a_taken_port_is_a_clear_error_and_leaves_nothing_installed():
    from moto.awslambda.models import LambdaFunction

    original_invoke = LambdaFunction._invoke_lambda
    # GIVEN a port somebody listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN an emulator is started on it  THEN the error names the port and the fix
        with pytest.raises(EmulatorError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            Emulator(port=port).start()
    assert LambdaFunction._invoke_lambda is original_invoke


def test_only_one_emulator_runs_per_process():
    with Emulator(port=free_port()) as first, pytest.raises(EmulatorError, match=first.endpoint):
        Emulator(port=free_port()).start()


def test_bad_arguments_are_refused_with_the_fix():
    with pytest.raises(EmulatorError, match="free_port"):
        Emulator(port=0)
    with pytest.raises(EmulatorError, match="lambda_concurrency=0"):
        Emulator(port=4566, lambda_concurrency=0)


def test_step_functions_local_is_chosen_by_sfncopy_sfn_endpoint_only_when_set():
    from sfncopy.emulator import SFN_ENDPOINT_VARIABLE, stepfunctions_endpoint

    emulator_endpoint = "http://127.0.0.1:4566"
    assert stepfunctions_endpoint(emulator_endpoint, {}) == emulator_endpoint
    assert stepfunctions_endpoint(emulator_endpoint, {SFN_ENDPOINT_VARIABLE: " "}) == emulator_endpoint
    local = {SFN_ENDPOINT_VARIABLE: "http://localhost:8083"}
    assert stepfunctions_endpoint(emulator_endpoint, local) == "http://localhost:8083"
