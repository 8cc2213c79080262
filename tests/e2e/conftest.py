"""Session fixtures of the end-to-end suite: one embedded emulator per test process, stacks deployed once.

The emulator runs as ``sfncopy emulator`` in a subprocess (on a free loopback port), not in the test
process: moto's backends are process-wide, and the functional tests that share this process under
pytest-xdist start their own ``mock_aws`` / in-process emulators, which would reset ours. Each xdist
worker gets its own emulator, port and stacks; faults and counters go through its control endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sfncopy.emulator import control
from sfncopy.emulator.server import free_port
from tests.e2e import support
from tests.e2e.support import BucketPool, Clients, Obj, Stack, StackSpec

START_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[bytes]
    endpoint: str
    data_dir: Path

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def set_faults(self, plan: dict[str, Any]) -> dict[str, Any]:
        return control.set_faults(self.endpoint, plan)

    def clear_faults(self) -> None:
        control.clear_faults(self.endpoint)

    def stats(self) -> dict[str, Any]:
        return control.stats(self.endpoint)

    def reset_stats(self) -> None:
        control.reset_stats(self.endpoint)

    def lambda_pids(self, function_name: str) -> list[int]:
        """Live Lambda worker processes of ``function_name`` (children of the emulator process)."""
        return support.function_pids(_children(self.process.pid), function_name)


def _children(parent: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _start_emulator(data_dir: Path) -> EmulatorProcess:
    environ = {k: v for k, v in os.environ.items() if k not in (*support.FOREIGN_VARIABLES, "AWS_ENDPOINT_URL")}
    # A bucket of another account is off limits, as on AWS (see support.FOREIGN_ACCOUNT).
    environ["MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS"] = "false"
    last_error: Exception | None = None
    for _ in range(3):  # another process may take the free port before the emulator binds it
        port = free_port()
        log = (data_dir / "emulator.out").open("ab")
        process = subprocess.Popen(
            [*support.CLI, "emulator", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=support.ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            control.wait_until_ready(endpoint, timeout=START_TIMEOUT_SECONDS)
            return EmulatorProcess(process, endpoint, data_dir)
        except TimeoutError as exc:
            last_error = exc
            _stop(process)
    raise AssertionError(f"the emulator did not start: {last_error}; see {data_dir / 'emulator.out'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    running = _start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield running
    finally:
        _stop(running.process)


@pytest.fixture(scope="session")
def aws(emulator: EmulatorProcess) -> Clients:
    return support.clients(emulator.endpoint)


class Stacks:
    """Deploys each distinct stack once per session (per emulator), on first use."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._stacks: dict[StackSpec, Stack] = {}

    def get(self, spec: StackSpec) -> Stack:
        with self._lock:
            if spec not in self._stacks:
                self._stacks[spec] = support.deploy(self.endpoint, spec)
            return self._stacks[spec]


@pytest.fixture(scope="session")
def stacks(emulator: EmulatorProcess) -> Stacks:
    return Stacks(emulator.endpoint)


@pytest.fixture(scope="session")
def main_stack(stacks: Stacks) -> Stack:
    return stacks.get(support.MAIN)


@pytest.fixture(scope="session")
def solo_stack(stacks: Stacks) -> Stack:
    return stacks.get(support.SOLO)


@pytest.fixture(scope="session")
def bucket_pool(emulator: EmulatorProcess) -> BucketPool:
    return BucketPool()


@dataclass
class World:
    """What a test needs: the emulator, clients, fresh buckets, a scratch directory."""

    emulator: EmulatorProcess
    aws: Clients
    pool: BucketPool
    work_dir: Path

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint

    @property
    def s3(self) -> Any:
        return self.aws.s3

    @property
    def sfn(self) -> Any:
        return self.aws.sfn

    def source(self, *objects: Obj) -> str:
        """A new source bucket holding ``objects``."""
        bucket = support.create_bucket(self.s3, self.pool.take("source"))
        support.put_objects(self.s3, bucket, objects)
        return bucket

    def target(self) -> str:
        return support.create_bucket(self.s3, self.pool.take("target"))

    def foreign_target(self) -> str:
        """A target bucket the stack may name but whose owner (another account) granted it nothing."""
        return support.create_bucket(self.aws.foreign_s3, self.pool.take("target"))

    def unused_source(self) -> str:
        """A source bucket name the stack allows but nobody created."""
        return self.pool.take("source")

    def run(self, stack: Stack, document: dict[str, Any], label: str) -> tuple[support.CliRun, str]:
        name = support.execution_name(label)
        return support.run_cli(self.endpoint, stack, document, name, self.work_dir), name


@pytest.fixture
def world(emulator: EmulatorProcess, aws: Clients, bucket_pool: BucketPool, tmp_path: Path) -> Iterator[World]:
    """Per test: no faults and fresh counters before and after (tests of one process run one at a time)."""
    emulator.clear_faults()
    emulator.reset_stats()
    try:
        yield World(emulator, aws, bucket_pool, tmp_path)
    finally:
        emulator.clear_faults()



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the slow end-to-end tests first (longest first): under ``pytest -n 2`` the 20,000-object run
    then overlaps everything else instead of starting last. Stable and deterministic, so every xdist
    worker collects the same order; nothing else moves."""
    items.sort(key=lambda item: not (item.nodeid.startswith("tests/e2e/") and item.get_closest_marker("slow")))
