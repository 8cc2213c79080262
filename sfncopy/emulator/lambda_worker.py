"""The inside of one local Lambda worker process: load the handler once, then answer invocations.

This file runs in a fresh, isolated interpreter (``python -I``, see ``lambda_runner.worker_command``)
whose working directory is the function's extracted code, and ``sys.path[0]`` is that directory, as
``/var/task`` is on Lambda: nothing of the sfncopy checkout leaks into the function, so a module missing
from the deployment zip fails here as it would on AWS. It uses only the standard library.

Protocol (``multiprocessing.connection`` framing over the socket whose descriptor is ``argv[1]``):
first ``{"ready": true}`` once the handler is imported (Lambda's init phase); then per invocation,
request ``{"request_id", "event_json", "log_path"}`` -> answer ``{"payload_json", "errored"}``; ``None``
asks the worker to exit. Everything the invocation writes to file descriptors 1 and 2 (print, logging,
C extensions) goes to ``log_path``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The parts of Lambda's Python context object handlers use."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("SFNCOPY_EMULATOR_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error_payload(error_type: str, message: str, stack: list[str] | None = None) -> str:
    """Lambda's shape for a function error; Step Functions matches Retry/Catch on ``errorType``."""
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack or []})


class _HandlerLoadError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(handler: str) -> Handler:
    """``package.module.function`` -> the function, with Lambda's error names when that fails."""
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise _HandlerLoadError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # Lambda reports any import failure as this one error name
        raise _HandlerLoadError("Runtime.ImportModuleError",
                                f"Unable to import module '{module_name}': {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise _HandlerLoadError("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'")
    return function  # type: ignore[no-any-return]


def _redirect_output(log_path: str) -> None:
    """Point fds 1 and 2 at this invocation's log file (so logging handlers bound to sys.stdout follow)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def invoke(handler: Handler, request: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    context = LambdaContext(request["request_id"], time.monotonic() + timeout_seconds)
    try:
        result = handler(json.loads(request["event_json"]), context)
    except Exception as exc:
        handler_frames = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # not ours
        stack = traceback.format_tb(handler_frames)
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(type(exc), exc, handler_frames)
        return {"payload_json": error_payload(type(exc).__name__, str(exc), stack), "errored": True}
    try:
        return {"payload_json": json.dumps(result), "errored": False}
    except (TypeError, ValueError) as exc:
        return {"payload_json": error_payload("Runtime.MarshalError", f"Unable to marshal response: {exc}"),
                "errored": True}


def serve(connection: Connection, init_log: str) -> None:
    """Init phase (import the handler, output to ``init_log``), say ready, then answer until told to stop."""
    timeout_seconds = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    _redirect_output(init_log)
    handler: Handler | None = None
    init_error: _HandlerLoadError | None = None
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except _HandlerLoadError as exc:  # Lambda reports it on every invocation
        print(f"[ERROR] {exc.error_type}: {exc}", file=sys.stderr)
        init_error = exc
    sys.stdout.flush()
    sys.stderr.flush()
    connection.send({"ready": True})
    while True:
        try:
            request = connection.recv()
        except EOFError:  # the emulator went away
            return
        if request is None:
            return
        _redirect_output(request["log_path"])
        if handler is None:
            assert init_error is not None
            answer = {"payload_json": error_payload(init_error.error_type, str(init_error)), "errored": True}
        else:
            answer = invoke(handler, request, timeout_seconds)
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send(answer)


def main(argv: list[str]) -> None:
    """``argv``: [this file, the socket's file descriptor, the init phase's log file]."""
    serve(Connection(int(argv[1])), argv[2])


if __name__ == "__main__":
    main(sys.argv)
