"""The Step Functions history budget of a plan. A Standard execution has at most 25,000 history events, and
each payload now runs as a child execution of its worker's Distributed Map, with a history of its own: the
parent's events depend on the worker count only, a child's on its payload's continuations only. The planner
refuses plans where either would not fit, and workers with more payloads than their Map's result can hold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lambdas import limits
from lambdas.errors import PlanTooLargeError


@dataclass(frozen=True)
class HistoryEstimate:
    """Expected history events: the parent execution's, and the busiest child's (one payload)."""

    parent: int
    largest_child: int

    @property
    def busiest(self) -> int:
        return max(self.parent, self.largest_child)


def continuations_of(nbytes: int) -> int:
    """Extra worker invocations expected because a payload of ``nbytes`` takes longer than one invocation."""
    return max(0, math.ceil(nbytes / limits.EXPECTED_BYTES_PER_INVOCATION) - 1)


def continuations(payload_bytes: Iterable[int]) -> int:
    """Extra worker invocations of the whole run (the payloads' continuations together)."""
    return sum(continuations_of(nbytes) for nbytes in payload_bytes)


def parent_events(workers: int) -> int:
    """History events of the parent execution: its fixed states and one Distributed Map per worker."""
    return limits.EVENTS_PARENT_FIXED + workers * limits.EVENTS_PER_WORKER


# What a child whose last invocation fails for good adds to one that succeeds: the failed attempt's retries
# and the failure path (RecordFailure, PayloadFailed). Budgeted for every child: any payload may fail so.
FAILED_CHILD_TAIL = limits.EVENTS_FAILED_CHILD_EXTRA + limits.TASK_RETRY_ATTEMPTS * limits.EVENTS_PER_RETRY


def child_events(extra_invocations: int) -> int:
    """History events of one payload's child execution invoking the worker 1 + ``extra_invocations`` times,
    its last invocation possibly failing for good after its retries (FAILED_CHILD_TAIL)."""
    return limits.EVENTS_PER_CHILD + extra_invocations * limits.EVENTS_PER_CONTINUATION + FAILED_CHILD_TAIL


def estimate(payload_bytes: Sequence[int], workers: int) -> HistoryEstimate:
    """The parent's events and the largest child's, for payloads of these sizes on ``workers`` workers."""
    most = max((continuations_of(nbytes) for nbytes in payload_bytes), default=0)
    return HistoryEstimate(parent=parent_events(workers), largest_child=child_events(most) if payload_bytes else 0)


def check_history_budget(payload_bytes: Sequence[int], workers: int, max_payload_bytes: int,
                         max_objects_per_payload: int, payloads_per_worker: Sequence[int] = ()) -> int:
    """The busiest execution's estimated history events (``payload_bytes``: the bytes of each payload), or
    PlanTooLargeError saying what to change. ``payloads_per_worker``: how many payloads each worker's Map
    runs (checked against MAX_PAYLOADS_PER_WORKER when given)."""
    events = estimate(payload_bytes, workers)
    budget = (f"sfncopy's budget of {limits.HISTORY_EVENT_BUDGET} (an execution may have "
              f"{limits.MAX_HISTORY_EVENTS})")
    if events.parent > limits.HISTORY_EVENT_BUDGET:
        raise PlanTooLargeError(
            f"the run's execution needs about {events.parent} Step Functions history events for {workers} "
            f"workers, more than {budget}: lower num_copy_lambda_workers in the env file")
    if events.largest_child > limits.HISTORY_EVENT_BUDGET:
        largest = max(payload_bytes)
        raise PlanTooLargeError(
            f"a payload of {largest // limits.GiB} GiB needs about {events.largest_child} Step Functions history "
            f"events in its child execution ({continuations_of(largest)} continuations), more than {budget}: "
            f"lower options.max_payload_size_mb (now {max_payload_bytes // limits.MiB})")
    crowded = [(worker, count) for worker, count in enumerate(payloads_per_worker)
               if count > limits.MAX_PAYLOADS_PER_WORKER]
    if crowded:
        worker, count = max(crowded, key=lambda item: item[1])
        raise PlanTooLargeError(
            f"worker {worker} has {count} payloads, more than the {limits.MAX_PAYLOADS_PER_WORKER} one worker's "
            f"Distributed Map may run (its results must fit Step Functions' 256 KiB state output): raise "
            f"options.max_payload_size_mb (now {max_payload_bytes // limits.MiB}) or "
            f"options.max_objects_per_payload (now {max_objects_per_payload}) so fewer payloads are needed, add "
            "workers (num_copy_lambda_workers), or split the s3_copy_config into several runs")
    return events.busiest
