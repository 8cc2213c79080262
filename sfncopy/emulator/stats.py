"""Counters the emulator keeps for tests and benchmarks: S3 requests by operation, Lambda invocations."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Thread-safe counters; ``snapshot()`` is what ``GET /_sfncopy/stats`` answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._s3_requests: Counter[str] = Counter()
        self._s3_throttled: Counter[str] = Counter()
        self._s3_denied: Counter[str] = Counter()
        self._lambda_invocations: Counter[str] = Counter()

    def count_s3_request(self, operation: str) -> None:
        with self._lock:
            self._s3_requests[operation] += 1

    def count_s3_throttled(self, operation: str) -> None:
        with self._lock:
            self._s3_throttled[operation] += 1

    def count_s3_denied(self, operation: str) -> None:
        with self._lock:
            self._s3_denied[operation] += 1

    def count_invocation(self, function_name: str) -> None:
        with self._lock:
            self._lambda_invocations[function_name] += 1

    def s3_requests(self) -> dict[str, int]:
        """Every S3 request by operation name, including those answered SlowDown."""
        with self._lock:
            return dict(self._s3_requests)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"s3_requests": dict(self._s3_requests), "s3_throttled": dict(self._s3_throttled),
                    "s3_denied": dict(self._s3_denied),
                    "lambda_invocations": dict(self._lambda_invocations)}

    def reset(self) -> None:
        with self._lock:
            self._s3_requests.clear()
            self._s3_throttled.clear()
            self._s3_denied.clear()
            self._lambda_invocations.clear()
