"""Fault injection on a boto3 client under moto: answer chosen requests with an S3 error response.

A ``before-send`` handler registered *first* on the client's event system answers before moto's own
stubber does, so the client's real retry configuration sees the error (and retries it when retryable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def error_response(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(body.encode()))


class Fault:
    """Answer ``status``/``code`` to requests of ``operation`` that ``match`` (all by default), at most
    ``times`` times (None: always) while ``active``. ``hits`` counts the injected errors."""

    def __init__(self, client: Any, operation: str, status: int, code: str, *, times: int | None = None,
                 match: Callable[[AWSPreparedRequest], bool] = lambda _: True) -> None:
        self.status, self.code, self.times, self.match = status, code, times, match
        self.hits = 0
        self.active = True
        self._lock = threading.Lock()
        client.meta.events.register_first(f"before-send.s3.{operation}", self._handle)

    def _handle(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not self.active or not self.match(request):
            return None
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return None
            self.hits += 1
        return error_response(request, self.status, self.code, f"injected {self.code}")
