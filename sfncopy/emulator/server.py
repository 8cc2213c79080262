"""The embedded AWS: one moto server on a loopback port, with executions and Lambda bridged.

    with Emulator(port=free_port()) as emulator:
        boto3.client("s3", endpoint_url=emulator.endpoint, ...)

Serves S3, CloudFormation, IAM, Lambda, Step Functions and CloudWatch Logs (and whatever else moto
serves) on one port. State machines run (Parallel, Map, Retry, Catch ...), Lambda functions run in local
worker processes (lambda_runner.py) with their execution role's credentials, faults can be injected
(faults.py, middleware.py).

IAM is enforced on S3 by default (``iam/``): a request signed with an STS AssumeRole session's keys (every
Lambda function's, or anyone's who assumes a role on the emulator) is allowed only if the role's policies
allow it, as on AWS; the emulator's admin keys (``testing``) are not restricted. ``enforce_iam=False`` (or
``sfncopy emulator --no-iam``, or ``SFNCOPY_EMULATOR_IAM=off`` for that command) turns it off.

One emulator at a time per process: moto's backends and our patches to them are process-wide. Its AWS
state (buckets, stacks, functions, executions) lives in memory for the emulator's life and is reset
when it stops.

``data_dir`` (optional) keeps on disk what is cheap to keep and useful to read afterwards:
  ``DIR/lambda/functions/<name>/<code sha256>/``  each deployed function's extracted code (reused by digest)
  ``DIR/logs/<function>.log``                     every invocation's log, START ... REPORT
  ``DIR/requests.log``                            one line per request: time, method, path, S3 operation, status
Without it, the code and scratch files go to a temporary directory removed on stop. The AWS state itself
is never persisted (moto keeps it in memory only).

Where Docker is available, the state machine can run on AWS Step Functions Local instead: set
``SFNCOPY_SFN_ENDPOINT`` (``SFN_ENDPOINT_VARIABLE``) and use ``stepfunctions_endpoint()`` to choose the
Step Functions endpoint; Lambda and S3 stay on this emulator.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from sfncopy.emulator.bridges import Bridges
from sfncopy.emulator.faults import FaultPlan, FaultState, FiredFault
from sfncopy.emulator.iam.enforcement import S3Authorizer
from sfncopy.emulator.lambda_runner import DEFAULT_MAX_CONCURRENCY, LambdaRunner
from sfncopy.emulator.middleware import EmulatorMiddleware
from sfncopy.emulator.stats import Stats

DEFAULT_PORT = 4566
DEFAULT_HOST = "127.0.0.1"
# Set it to run state machines on AWS Step Functions Local (Docker) while S3 and Lambda stay here.
SFN_ENDPOINT_VARIABLE = "SFNCOPY_SFN_ENDPOINT"
# moto's Step Functions interpreter invokes Lambda through http://localhost:$MOTO_PORT.
MOTO_PORT_VARIABLE = "MOTO_PORT"
# "off" turns IAM enforcement off for ``sfncopy emulator`` ("on", the default, keeps it).
IAM_VARIABLE = "SFNCOPY_EMULATOR_IAM"
IAM_SETTINGS = {"on": True, "off": False}

log = logging.getLogger("sfncopy.emulator")
_active_lock = threading.Lock()
_active: Emulator | None = None


class EmulatorError(RuntimeError):
    """The emulator cannot start (port taken, another emulator running in this process)."""


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nobody listens on right now (for tests; another process may take it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def iam_enforced(no_iam_flag: bool, environ: Mapping[str, str] | None = None) -> bool:
    """``--no-iam`` beats ``SFNCOPY_EMULATOR_IAM`` (``on`` or ``off``), which beats the default: enforced."""
    if no_iam_flag:
        return False
    env = os.environ if environ is None else environ
    value = env.get(IAM_VARIABLE, "").strip().lower()
    if value and value not in IAM_SETTINGS:
        raise EmulatorError(f"{IAM_VARIABLE}={env[IAM_VARIABLE]!r}: expected one of {sorted(IAM_SETTINGS)}")
    return IAM_SETTINGS.get(value, True)


def stepfunctions_endpoint(emulator_endpoint: str, environ: Mapping[str, str] | None = None) -> str:
    """The Step Functions endpoint to use: ``SFNCOPY_SFN_ENDPOINT`` when set, else the emulator's."""
    env = os.environ if environ is None else environ
    return env.get(SFN_ENDPOINT_VARIABLE, "").strip() or emulator_endpoint


class Emulator:
    """A started-on-demand moto server with the sfncopy bridges; see the module docstring."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, faults: FaultPlan | None = None,
                 data_dir: str | Path | None = None, lambda_concurrency: int = DEFAULT_MAX_CONCURRENCY,
                 enforce_iam: bool = True) -> None:
        if not 0 < port < 65536:
            raise EmulatorError(f"port {port} is not a TCP port (1-65535); use free_port() for a free one")
        if lambda_concurrency < 1:
            raise EmulatorError(f"lambda_concurrency={lambda_concurrency} must be at least 1")
        self.port = port
        self.host = host
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.lambda_concurrency = lambda_concurrency
        self.enforce_iam = enforce_iam
        self.stats = Stats()
        self.faults = FaultState(faults)
        self._server: _MotoServer | None = None
        self._runner: LambdaRunner | None = None
        self._bridges: Bridges | None = None
        self._temp_dir: Path | None = None
        self._saved_port: str | None = None
        self._saved_moto_level = logging.NOTSET

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Emulator:
        global _active
        with _active_lock:
            if _active is not None:
                raise EmulatorError(f"an emulator already runs in this process ({_active.endpoint}); stop it first")
            _active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # moto logs every resource type its CloudFormation skips (the manifest bucket's policy) and every
        # failed state (which our failure cases provoke on purpose) as warnings and errors: noise to a user.
        # What matters reaches the user through the execution's status, cause and report instead.
        self._saved_moto_level = logging.getLogger("moto").level
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*", category=UserWarning)
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            work_dir = self.data_dir / "lambda"
        else:
            self._temp_dir = work_dir = Path(tempfile.mkdtemp(prefix="sfncopy-emulator-"))
        self._saved_port = os.environ.get(MOTO_PORT_VARIABLE)
        os.environ[MOTO_PORT_VARIABLE] = str(self.port)
        self._runner = LambdaRunner(work_dir, self.endpoint, self.faults, self.stats, self.lambda_concurrency,
                                    log_dir=self.data_dir / "logs" if self.data_dir else None)
        self._bridges = Bridges(self._runner.invoke)
        self._bridges.install()
        access_log = self.data_dir / "requests.log" if self.data_dir else None
        authorize = S3Authorizer() if self.enforce_iam else None

        def wrap(app: Any) -> Any:
            return EmulatorMiddleware(app, self.faults, self.stats, access_log, authorize)

        self._server = _MotoServer(self.host, self.port, wrap)
        self._server.start()

    def stop(self) -> None:
        """Stop serving, kill every Lambda worker, undo the patches, forget the AWS state. Idempotent."""
        global _active
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        if self._bridges is not None:
            self._bridges.uninstall()
            self._bridges = None
            _reset_moto()
        logging.getLogger("moto").setLevel(self._saved_moto_level)
        if self._saved_port is None:
            os.environ.pop(MOTO_PORT_VARIABLE, None)
        else:
            os.environ[MOTO_PORT_VARIABLE] = self._saved_port
            self._saved_port = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        with _active_lock:
            if _active is self:
                _active = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- faults and counters -----------------------------------------------------------------------
    def set_faults(self, plan: FaultPlan | dict[str, Any]) -> None:
        """Replace the fault plan (a FaultPlan or its JSON form, see faults.py); counting starts again."""
        self.faults.set_plan(plan if isinstance(plan, FaultPlan) else FaultPlan.from_dict(plan))

    def clear_faults(self) -> None:
        self.faults.clear()

    def fired_faults(self) -> list[FiredFault]:
        return self.faults.fired()

    def request_counts(self) -> dict[str, int]:
        """S3 requests by operation (``CopyObject``, ``UploadPartCopy``, ``ListObjectsV2`` ...) since start/reset."""
        return self.stats.s3_requests()

    def reset_counts(self) -> None:
        self.stats.reset()

    def lambda_worker_pids(self) -> list[int]:
        """Process ids of the Lambda worker processes alive now (warm or busy)."""
        return self._runner.worker_pids() if self._runner is not None else []


def _remember_backends(dispatcher: Any) -> Any:
    """moto's dispatcher, remembering which backend serves a host. moto answers that anew for every
    request, under the one lock all requests share: a directory listing of its own package (~250 stat
    calls) and a few hundred URL patterns, ~1 ms each time, which made the lock the emulator's bottleneck
    under many concurrent copies."""
    lookup = dispatcher.get_backend_for_host
    known: dict[str, Any] = {}

    def remembered(host: str | None) -> Any:
        if host is None:
            return None
        if host not in known:
            known[host] = lookup(host)
        return known[host]

    dispatcher.get_backend_for_host = remembered
    return dispatcher


class _MotoServer:
    """moto's ``ThreadedMotoServer``, with our middleware around its app and a clear error for a taken port."""

    def __init__(self, host: str, port: int, wrap: Callable[[Any], Any]) -> None:
        from moto.server import ThreadedMotoServer

        wrap_app = wrap

        class Server(ThreadedMotoServer):
            # Same as ThreadedMotoServer._server_entry, plus the middleware and start-up errors reported.
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                app = wrap_app(_remember_backends(DomainDispatcherApplication(create_backend_app)))
                try:
                    self._server = make_server(self._ip_address, self._port, app, True,
                                               request_handler=_quiet(MotoRequestHandler))
                except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
                    self.startup_error: BaseException | None = exc
                    self._server_ready_event.set()
                    return
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = Server(ip_address=host, port=port, verbose=False)
        self._server.startup_error = None
        self._host, self._port = host, port

    def start(self) -> None:
        self._server.start()
        if self._server.startup_error is not None:
            self._server.stop()
            raise EmulatorError(f"cannot listen on {self._host}:{self._port}: {self._server.startup_error}; "
                                "choose another --port") from self._server.startup_error

    def stop(self) -> None:
        self._server.stop()


def _quiet(handler: type[Any]) -> type[Any]:
    """werkzeug prints a line per request to stderr; the emulator logs requests to DIR/requests.log instead."""

    class QuietRequestHandler(handler):  # type: ignore[misc]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietRequestHandler


def _reset_moto() -> None:
    """Forget every bucket, stack, function and execution (as if the emulator process had exited)."""
    from moto.core.base_backend import BackendDict
    from moto.core.model_instances import reset_model_data

    BackendDict.reset()
    reset_model_data()


def run_forever(port: int = DEFAULT_PORT, data_dir: str | Path | None = None, host: str = DEFAULT_HOST,
                announce: Callable[[str], None] | None = None, enforce_iam: bool = True) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then stop cleanly: the ``sfncopy emulator`` command."""
    stopping = threading.Event()
    previous = _on_sigterm(lambda *_: stopping.set())
    try:
        started = time.monotonic()
        with Emulator(port=port, host=host, data_dir=data_dir, enforce_iam=enforce_iam) as emulator:
            message = (f"sfncopy emulator on {emulator.endpoint} (started in {time.monotonic() - started:.1f} s"
                       f"{', data in ' + str(data_dir) if data_dir else ''}"
                       f"{'' if enforce_iam else ', IAM not enforced'}); Ctrl-C stops it")
            (announce or _stderr)(message)
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        _restore_sigterm(previous)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def _on_sigterm(handler: Callable[..., Any]) -> SignalHandler:
    if threading.current_thread() is not threading.main_thread():
        return None  # signals can be handled in the main thread only
    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: SignalHandler) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)

