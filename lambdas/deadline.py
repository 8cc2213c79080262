"""The worker's view of its Lambda deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Deadline:
    """Stop taking new work when fewer than ``margin`` seconds remain.

    ``remaining_ms`` is Lambda's ``context.get_remaining_time_in_millis``; without a context (tests,
    local runs) ``Deadline.after(seconds)`` counts down from now.
    """

    remaining_ms: Callable[[], int]
    margin: float

    def remaining(self) -> float:
        return self.remaining_ms() / 1000.0

    def near(self) -> bool:
        return self.remaining() <= self.margin

    @classmethod
    def after(cls, seconds: float, margin: float = 0.0) -> Deadline:
        end = time.monotonic() + seconds
        return cls(remaining_ms=lambda: int((end - time.monotonic()) * 1000), margin=margin)

    @classmethod
    def never(cls) -> Deadline:
        return cls(remaining_ms=lambda: 10**12, margin=0.0)
