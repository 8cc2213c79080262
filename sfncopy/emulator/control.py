"""Talk to a running emulator from another process (tests that run ``sfncopy emulator`` as a subprocess).

    control.set_faults("http://127.0.0.1:4566", {"lambda": [{"function": "*-worker", "invocation": 1,
                                                            "action": "crash", "after_seconds": 0.5}]})
    control.stats("http://127.0.0.1:4566")["s3_requests"]["UploadPartCopy"]

The routes are described in ``sfncopy.emulator.middleware``; the fault format in ``sfncopy.emulator.faults``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from sfncopy.emulator.faults import FaultPlan, FaultPlanError
from sfncopy.emulator.middleware import CONTROL_PREFIX


def _call(endpoint: str, method: str, route: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(endpoint.rstrip("/") + CONTROL_PREFIX + route, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        detail = json.loads(err.read() or b"{}").get("error", err.reason)
        if err.code == 400:
            raise FaultPlanError(str(detail)) from err
        raise


def set_faults(endpoint: str, plan: FaultPlan | dict[str, Any]) -> dict[str, Any]:
    """Replace the emulator's fault plan; returns the plan as the emulator understood it."""
    document = plan.to_dict() if isinstance(plan, FaultPlan) else plan
    answer: dict[str, Any] = _call(endpoint, "POST", "faults", document)
    return answer


def clear_faults(endpoint: str) -> None:
    _call(endpoint, "DELETE", "faults")


def stats(endpoint: str) -> dict[str, Any]:
    """S3 requests and SlowDowns by operation, Lambda invocations by function, faults fired."""
    answer: dict[str, Any] = _call(endpoint, "GET", "stats")
    return answer


def reset_stats(endpoint: str) -> None:
    _call(endpoint, "DELETE", "stats")


class ScheduleNotFired(RuntimeError):
    """The emulator did not fire the schedule: ``status`` 403 (its role may not), 404 (none), 409 (disabled)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fire_schedule(endpoint: str, name: str, group: str = "default", region: str = "us-east-1") -> dict[str, Any]:
    """Fire an EventBridge Scheduler schedule now (bridge 16): ``{"executionArn": ..., "schedule": <arn>}``;
    ScheduleNotFired with the emulator's reason when it does not."""
    url = f"{endpoint.rstrip('/')}{CONTROL_PREFIX}schedules/{group}/{name}/fire?region={region}"
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10.0) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as err:
        detail = json.loads(err.read() or b"{}").get("error", str(err.reason))
        raise ScheduleNotFired(err.code, str(detail)) from err


def wait_until_ready(endpoint: str, timeout: float = 15.0) -> None:
    """Block until the emulator answers (e.g. after starting ``sfncopy emulator`` in a subprocess)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _call(endpoint, "GET", "health", timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no emulator answered on {endpoint} within {timeout:.0f} s") from exc
            time.sleep(0.1)


def restores(endpoint: str) -> dict[str, Any]:
    """The emulator's restores of archived objects: ongoing and completed (sfncopy.emulator.restores)."""
    answer: dict[str, Any] = _call(endpoint, "GET", "restores")
    return answer


def control_restores(endpoint: str, document: dict[str, Any]) -> dict[str, Any]:
    """Complete restores or set when they complete: ``{"complete": "all"}``, ``{"mode": {"after_seconds": 5}}``,
    ``{"never": [{"bucket": "b", "key": "k"}]}`` (format: sfncopy.emulator.restores)."""
    answer: dict[str, Any] = _call(endpoint, "POST", "restores", document)
    return answer
