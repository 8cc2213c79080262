"""The Step Functions history budget of a plan: a Standard execution has at most 25,000 history events,
so the planner refuses plans whose payloads (and expected continuations) would not fit."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from lambdas import limits
from lambdas.errors import PlanTooLargeError


def continuations(payload_bytes: Iterable[int]) -> int:
    """Extra worker invocations expected because a payload (of so many bytes) takes longer than one invocation."""
    per_invocation = limits.EXPECTED_BYTES_PER_INVOCATION
    return sum(max(0, math.ceil(nbytes / per_invocation) - 1) for nbytes in payload_bytes)


def history_events(workers: int, payloads: int, extra_invocations: int) -> int:
    """Step Functions history events of one execution (see the EVENTS_* limits)."""
    return (limits.EVENTS_FIXED + workers * limits.EVENTS_PER_BRANCH + payloads * limits.EVENTS_PER_PAYLOAD
            + extra_invocations * limits.EVENTS_PER_CONTINUATION)


def check_history_budget(payload_bytes: Sequence[int], workers: int, max_payload_bytes: int,
                         max_objects_per_payload: int) -> int:
    """The plan's estimated history events (``payload_bytes``: the bytes of each payload), or
    PlanTooLargeError saying what to raise."""
    payloads = len(payload_bytes)
    extra = continuations(payload_bytes)
    events = history_events(workers, payloads, extra)
    if events > limits.HISTORY_EVENT_BUDGET:
        raise PlanTooLargeError(
            f"the plan needs about {events} Step Functions history events ({payloads} payloads for "
            f"{workers} workers, {extra} continuations), more than sfncopy's budget of "
            f"{limits.HISTORY_EVENT_BUDGET} (an execution may have {limits.MAX_HISTORY_EVENTS}): raise "
            f"options.max_payload_size_mb (now {max_payload_bytes // limits.MiB}) or "
            f"options.max_objects_per_payload (now {max_objects_per_payload}) so fewer payloads are "
            "needed, or split the s3_copy_config into several runs")
    return events
