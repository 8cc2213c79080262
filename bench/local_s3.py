"""The one local S3 every contender of a run shares, on loopback, with S3 requests counted by operation.

Preferred: sfncopy's embedded emulator (``sfncopy.emulator.Emulator``), which also runs the deployed
stack's Step Functions and Lambdas, so sfncopy can run end to end. When that module is not there, a bare
moto server (``FallbackS3``) serves S3 for the other contenders and counts requests itself; the sfncopy
contender is then reported as unavailable.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bench.requests import operation_of

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LocalAws(Protocol):
    @property
    def endpoint(self) -> str: ...

    def request_counts(self) -> dict[str, int]: ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_s3_request(environ: dict[str, Any]) -> bool:
    """True for S3 requests (SigV4 credential scope ``.../s3/aws4_request``), whatever else the port serves."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth:
        return "/s3/aws4_request" in auth
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    return "/s3/aws4_request" in "".join(query.get("X-Amz-Credential", []))


class CountingApp:
    """WSGI middleware: counts S3 requests by operation, then hands them on untouched."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if is_s3_request(environ):
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
            operation = operation_of(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"),
                                     {k: v[0] for k, v in query.items()}, headers)
            with self.lock:
                self.counts[operation] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


class FallbackS3(AbstractContextManager["FallbackS3"]):
    """A moto server on 127.0.0.1 in a thread of this process, counting S3 requests."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.counter: CountingApp | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request_counts(self) -> dict[str, int]:
        return self.counter.snapshot() if self.counter is not None else {}

    def __enter__(self) -> FallbackS3:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request drowns the table
                return None

        self.counter = CountingApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, self.counter, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)


def emulator_available() -> bool:
    try:
        from sfncopy.emulator import Emulator  # noqa: F401
    except ImportError:
        return False
    return True


def open_local_aws(port: int = 0, fallback: bool = False) -> tuple[str, AbstractContextManager[Any]]:
    """("sfncopy-emulator" | "moto-fallback", a context manager giving an object with .endpoint and
    .request_counts())."""
    if not fallback and emulator_available():
        from sfncopy.emulator import Emulator

        return "sfncopy-emulator", Emulator(port=port or free_port())
    return "moto-fallback", FallbackS3(port)
