"""Runs Lambda invocations in local worker processes, the way Lambda runs them in sandboxes.

moto can run a function only in Docker; ``bridges.py`` hands every invocation to ``LambdaRunner.invoke``
instead. Per function (and per version of its code and configuration) the runner keeps a small pool of
worker processes:

- the deployed zip is extracted once into ``<work_dir>/functions/<name>/<code sha256>/`` (``/var/task``);
- a worker is a fresh isolated interpreter (``lambda_worker.py``) started with exactly the function's
  environment (its variables, Lambda's reserved ones, ``AWS_ENDPOINT_URL`` = the emulator and temporary
  credentials of the function's execution role, from moto's STS AssumeRole, so the emulator judges its S3
  requests by the role's policies, see ``iam/``); it imports the handler once (Lambda's init phase, up to
  10 s) and stays warm, keeping module state between invocations;
- up to ``max_concurrency`` workers run at once per function, so Parallel branches that invoke the same
  function run concurrently; further invocations wait for a free worker;
- an invocation longer than the function's Timeout is killed and answered with Lambda's timeout error
  (``Sandbox.Timedout``); a process that dies is answered ``Runtime.ExitError``; either way the next
  invocation gets a fresh process;
- what the invocation writes to stdout/stderr comes back as its log, framed by Lambda's START / END /
  REPORT lines.

Workers are started with ``subprocess`` (fork+exec of a new interpreter, like the "spawn" start method):
the server has threads, so a bare fork would be unsafe; unlike ``multiprocessing`` spawn, nothing of the
parent (its ``__main__``, its ``sys.path``) is imported into the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import BytesIO
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from sfncopy.emulator import lambda_worker
from sfncopy.emulator.faults import LAMBDA_SERVICE_ERROR_PREFIX, FaultState, LambdaFault
from sfncopy.emulator.iam.sessions import ExecutionRoleError, assume_execution_role
from sfncopy.emulator.stats import Stats

# Lambda gives a function's init phase (importing the handler) 10 s, apart from its Timeout.
INIT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_CONCURRENCY = 10
# How long a worker gets to exit after being asked before it is killed.
STOP_GRACE_SECONDS = 2.0
# Inherited variables a worker keeps (the interpreter needs them); everything else comes from the function.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "SYSTEMROOT")
INHERITED_PREFIXES = ("LC_", "COVERAGE_")
# Lambda's reserved variables: a function's configuration cannot override them.
RESERVED_VARIABLES = frozenset({
    "_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT",
})
# Lambda sets these from the execution role ("Using Lambda environment variables", defined runtime environment
# variables: "The access keys obtained from the function's execution role",
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Lambda.TooManyRequestsException is a throttle (429); the other service errors are 500s.
SERVICE_ERROR_STATUS = {"TooManyRequestsException": 429}


class DeployedFunction(Protocol):
    """What the runner reads from moto's ``LambdaFunction``."""

    function_name: str
    function_arn: str
    handler: str | None
    environment_vars: dict[str, str]
    timeout: int
    memory_size: int
    region: str
    code_bytes: bytes
    run_time: str | None  # "python3.12": what the template asked for (the handlers run on this Python)
    role: str  # the execution role's ARN
    account_id: str


# function -> {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ..., "AWS_SESSION_TOKEN": ...}
CredentialSource = Callable[[DeployedFunction], Mapping[str, str]]


class LambdaServiceError(Exception):
    """The Invoke call fails (not the function); Step Functions names it ``Lambda.<code>``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = SERVICE_ERROR_STATUS.get(code, 500)


@dataclass(frozen=True)
class InvocationResult:
    payload_json: str  # the function's result, or Lambda's {"errorType", "errorMessage", ...}
    errored: bool  # a function error: Step Functions matches Retry/Catch on errorType
    logs: str


@dataclass(frozen=True)
class _Outcome:
    payload_json: str
    errored: bool
    output: str  # what the invocation wrote to stdout/stderr
    note: str = ""  # Lambda's own log line about the invocation (timeout, runtime exit)


def error_payload(error_type: str, message: str) -> str:
    return lambda_worker.error_payload(error_type, message)


def timeout_payload(timeout_seconds: float) -> str:
    """Lambda's answer for an invocation that ran past its Timeout."""
    return error_payload("Sandbox.Timedout", f"Task timed out after {timeout_seconds:.2f} seconds")


def exit_payload(request_id: str) -> str:
    """Lambda's answer when the runtime process dies (killed, crashed, out of memory)."""
    return error_payload("Runtime.ExitError",
                         f"RequestId: {request_id} Error: Runtime exited with error: signal: killed")


def lambda_environment(function: DeployedFunction, code_dir: Path, endpoint: str, inherited: dict[str, str],
                       credentials: Mapping[str, str]) -> dict[str, str]:
    """The complete environment of a worker process: the function's variables on top of Lambda's, and the
    execution role's ``credentials``."""
    env = {k: v for k, v in inherited.items() if k in INHERITED_VARIABLES or k.startswith(INHERITED_PREFIXES)}
    env["AWS_ENDPOINT_URL"] = endpoint
    env.update({k: str(v) for k, v in (function.environment_vars or {}).items() if k not in RESERVED_VARIABLES})
    env.update({name: credentials[name] for name in CREDENTIAL_VARIABLES})
    env.update({
        "_HANDLER": function.handler or "",
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time or 'python3.12'}",
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"emulator/{function.function_name}",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "SFNCOPY_EMULATOR_FUNCTION_ARN": function.function_arn,
    })
    return env


def extract_code(code_bytes: bytes, functions_dir: Path, function_name: str, digest: str) -> Path:
    """Extract a deployment zip once per code version; concurrent first invocations are safe."""
    target = functions_dir / function_name / digest
    if target.is_dir():
        return target
    if not code_bytes:
        raise LambdaServiceError("ServiceException", f"function {function_name} has no zip code to run "
                                 "(the emulator runs PackageType Zip functions only)")
    staging = functions_dir / function_name / f".{digest}.{uuid.uuid4().hex}"
    try:
        with zipfile.ZipFile(BytesIO(code_bytes)) as archive:
            archive.extractall(staging)  # extractall drops absolute paths and '..' components
    except zipfile.BadZipFile as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise LambdaServiceError("InvalidZipFileException", f"function {function_name}: {exc}") from exc
    try:
        staging.rename(target)
    except OSError:  # another invocation extracted it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


# Runs lambda_worker.py in an isolated interpreter (-I: no PYTHONPATH, no user site) with the code
# directory (cwd) first on sys.path, unbuffered (-u) so a killed invocation's output still reaches its log.
_BOOTSTRAP = ("import os, runpy, sys; sys.argv = sys.argv[1:]; sys.path.insert(0, os.getcwd()); "
              "runpy.run_path(sys.argv[0], run_name='__main__')")


def worker_command(socket_fd: int, init_log: Path) -> list[str]:
    return [sys.executable, "-I", "-u", "-c", _BOOTSTRAP, lambda_worker.__file__, str(socket_fd), str(init_log)]


class _WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and the connection to it; used by one invocation at a time."""

    def __init__(self, process: subprocess.Popen[bytes], connection: Connection, init_log: str) -> None:
        self.process = process
        self.connection = connection
        self.init_log = init_log  # output of the init phase, shown with the first invocation's log

    @classmethod
    def start(cls, code_dir: Path, environment: dict[str, str], log_dir: Path) -> _Worker:
        parent_end, child_end = socket.socketpair()
        init_log = log_dir / f"init-{uuid.uuid4().hex}.log"
        try:
            process = subprocess.Popen(
                worker_command(child_end.fileno(), init_log), cwd=code_dir, env=environment,
                pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            child_end.close()
        worker = cls(process, Connection(parent_end.detach()), "")
        try:
            if not worker.connection.poll(INIT_TIMEOUT_SECONDS):
                raise _WorkerDied(f"init phase took longer than {INIT_TIMEOUT_SECONDS:.0f} s")
            worker.connection.recv()  # {"ready": true}
        except (EOFError, OSError) as exc:
            worker.kill()
            raise _WorkerDied("the worker process exited during its init phase") from exc
        except _WorkerDied:
            worker.kill()
            raise
        finally:
            worker.init_log = _read_and_remove(init_log)
        return worker

    def call(self, request: dict[str, Any], wait_seconds: float) -> dict[str, Any] | None:
        """Send one invocation; its answer, or None when none came within ``wait_seconds``."""
        try:
            self.connection.send(request)
            if not self.connection.poll(max(wait_seconds, 0.0)):
                return None
            answer: dict[str, Any] = self.connection.recv()
            return answer
        except (EOFError, OSError) as exc:
            raise _WorkerDied(str(exc)) from exc

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.connection.close()

    def stop(self) -> None:
        try:
            self.connection.send(None)
            self.process.wait(STOP_GRACE_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass  # kill() below ends it either way
        self.kill()


class _Pool:
    """The workers of one version of one function: warm ones are reused, at most ``limit`` at once."""

    def __init__(self, key: str, code_dir: Path, environment: dict[str, str], log_dir: Path, limit: int) -> None:
        self.key = key
        self.code_dir = code_dir
        self.environment = environment
        self.log_dir = log_dir
        self.limit = limit
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        self._condition = threading.Condition()

    def acquire(self) -> _Worker:
        with self._condition:
            while not self._idle and len(self._busy) + self._starting >= self.limit:
                self._condition.wait()
            if self._idle:
                worker = self._idle.pop()  # the most recently used one: the warmest
                self._busy.add(worker)
                return worker
            self._starting += 1
        started: _Worker | None = None
        try:  # a cold start, outside the lock: other invocations may go on meanwhile
            started = _Worker.start(self.code_dir, self.environment, self.log_dir)
            return started
        finally:
            with self._condition:
                self._starting -= 1
                if started is not None:
                    self._busy.add(started)
                self._condition.notify()

    def release(self, worker: _Worker, reusable: bool) -> None:
        with self._condition:
            self._busy.discard(worker)
            keep = reusable and not self._closed
            if keep:
                self._idle.append(worker)
            self._condition.notify()
        if keep:
            return
        if reusable:
            worker.stop()  # healthy, but its pool was retired: let it exit
        else:
            worker.kill()

    def close(self) -> None:
        """Stop the idle workers now; busy ones are stopped when their invocation ends."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def kill_all(self) -> None:
        with self._condition:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle = []
        for worker in workers:
            worker.kill()

    def pids(self) -> list[int]:
        with self._condition:
            return [w.process.pid for w in (*self._idle, *self._busy)]


class LambdaRunner:
    """Runs invocations of deployed functions in local worker processes (see the module docstring)."""

    def __init__(self, work_dir: Path, endpoint: str, faults: FaultState, stats: Stats,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY, log_dir: Path | None = None,
                 credentials: CredentialSource = assume_execution_role) -> None:
        self.functions_dir = work_dir / "functions"
        self.scratch_dir = work_dir / "invocations"
        self.functions_dir.mkdir(parents=True, exist_ok=True)
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint = endpoint
        self.faults = faults
        self.stats = stats
        self.max_concurrency = max_concurrency
        self.log_dir = log_dir
        self.credentials = credentials  # the execution role's keys for a new pool of workers
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def invoke(self, function: DeployedFunction, event: Any) -> InvocationResult:
        """Run one invocation; raises LambdaServiceError when the Invoke call itself is to fail."""
        self.stats.count_invocation(function.function_name)
        request_id = str(uuid.uuid4())
        fault = self.faults.next_lambda_fault(function.function_name)
        if fault is not None and fault.action == "error":
            return self._injected_error(fault, request_id)
        started = time.monotonic()
        if fault is not None and fault.after_seconds <= 0:  # killed before the handler started
            outcome = self._killed(fault.action, function, request_id, "")
        else:
            outcome = self._run(function, event, request_id, fault)
        logs = _frame_logs(request_id, outcome, time.monotonic() - started, function.memory_size)
        self._keep_logs(function.function_name, logs)
        return InvocationResult(outcome.payload_json, outcome.errored, logs)

    def _injected_error(self, fault: LambdaFault, request_id: str) -> InvocationResult:
        message = fault.message or f"injected fault (sfncopy emulator), RequestId: {request_id}"
        if fault.is_service_error:
            raise LambdaServiceError(fault.error[len(LAMBDA_SERVICE_ERROR_PREFIX):], message)
        return InvocationResult(error_payload(fault.error, message), True, "")

    def _run(self, function: DeployedFunction, event: Any, request_id: str, fault: LambdaFault | None) -> _Outcome:
        pool = self._pool_for(function)
        log_path = self.scratch_dir / f"{request_id}.log"
        wait = float(function.timeout) if fault is None else min(fault.after_seconds, float(function.timeout))
        try:
            worker = pool.acquire()
        except _WorkerDied as exc:
            message = f"RequestId: {request_id} Error: Runtime exited during init: {exc}"
            return _Outcome(error_payload("Runtime.ExitError", message), True, "")
        answer: dict[str, Any] | None = None
        died = False
        try:
            answer = worker.call({"request_id": request_id, "event_json": json.dumps(event),
                                  "log_path": str(log_path)}, wait)
        except _WorkerDied:
            died = True
        finally:
            # A worker that answered in time stays warm; one that did not (or was hit by a fault) is killed.
            pool.release(worker, reusable=answer is not None and fault is None)
            init_output, worker.init_log = worker.init_log, ""
        output = init_output + _read_and_remove(log_path)
        if fault is not None:
            return self._killed(fault.action, function, request_id, output)
        if died:
            return self._killed("crash", function, request_id, output)
        if answer is None:
            return self._killed("timeout", function, request_id, output)
        return _Outcome(str(answer["payload_json"]), bool(answer["errored"]), output)

    @staticmethod
    def _killed(action: str, function: DeployedFunction, request_id: str, output: str) -> _Outcome:
        if action == "timeout":
            return _Outcome(timeout_payload(function.timeout), True, output,
                            f"{request_id} Task timed out after {function.timeout:.2f} seconds")
        return _Outcome(exit_payload(request_id), True, output,
                        f"RequestId: {request_id} Error: Runtime exited with error: signal: killed")

    def _pool_for(self, function: DeployedFunction) -> _Pool:
        digest = getattr(function, "code_digest", "") or _sha256(function.code_bytes)
        # The role is part of the key: a function whose role changed gets new workers with the new role's keys.
        key = json.dumps([digest, function.handler, function.environment_vars, function.timeout,
                          function.memory_size, function.role], sort_keys=True, default=str)
        with self._lock:
            pool = self._pools.get(function.function_arn)
            if pool is not None and pool.key == key:
                return pool
        code_dir = extract_code(function.code_bytes, self.functions_dir, function.function_name, digest)
        try:
            credentials = self.credentials(function)
        except ExecutionRoleError as err:
            raise LambdaServiceError("ServiceException", str(err)) from err
        environment = lambda_environment(function, code_dir, self.endpoint, dict(os.environ), credentials)
        new_pool = _Pool(key, code_dir, environment, self.scratch_dir, self.max_concurrency)
        with self._lock:
            pool = self._pools.get(function.function_arn)
            if pool is not None and pool.key == key:  # another thread made it meanwhile
                return pool
            self._pools[function.function_arn] = new_pool
        if pool is not None:  # the function's code or configuration changed: retire the old workers
            pool.close()
        return new_pool

    def _keep_logs(self, function_name: str, logs: str) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / f"{function_name}.log").open("a", encoding="utf-8") as out:
                out.write(logs)

    def worker_pids(self) -> list[int]:
        with self._lock:
            pools = list(self._pools.values())
        return [pid for pool in pools for pid in pool.pids()]

    def close(self) -> None:
        """Kill every worker process (busy ones too: the server is going away)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.kill_all()


def _frame_logs(request_id: str, outcome: _Outcome, seconds: float, memory_mb: int) -> str:
    """The invocation's output between Lambda's START and END / REPORT lines."""
    lines = [f"START RequestId: {request_id} Version: $LATEST"]
    if outcome.output:
        lines.append(outcome.output.rstrip("\n"))
    if outcome.note:
        lines.append(outcome.note)
    duration_ms = seconds * 1000
    lines.append(f"END RequestId: {request_id}")
    lines.append(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                 f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory_mb} MB")
    return "\n".join(lines) + "\n"


def _read_and_remove(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    path.unlink(missing_ok=True)
    return text


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
