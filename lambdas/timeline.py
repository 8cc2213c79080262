"""A payload's invocations, as its checkpoint head records them: when each began and ended, how it ended,
what it copied. The HTML report draws them as a timeline per worker (lambdas/report_html.py).

An invocation writes its record twice: at its start (``begin``: start time, no end, outcome "running") and
at its end (``finish``). A record still "running" when the next invocation of the payload begins (or when
the payload's failure is recorded) was cut off: the Lambda timed out, its runtime died, or an error escaped
before the invocation could write its end. Such a record becomes "lost", ended at its deadline (or at the
moment it was found, when that is earlier), and the invocation after it, like one after an invocation that
ended "failed" (an error the state machine's Retry re-invoked the worker for), is marked as a retry. So is one
after an invocation that ended "done": the child execution stops calling once a payload is done, so a call
after that repeats one whose answer was lost (its process was killed after it wrote its end).

Pure: lists of records in, lists out. A head holds at most MAX_RECORDS: past that the oldest two records
merge into one (``count`` says how many invocations a record stands for), so the head of a payload that
continued thousands of times stays a few KB while its latest invocations stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Outcome = Literal["running", "done", "continued", "failed", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("running", "done", "continued", "failed", "lost")
_OUTCOME_OF: dict[str, Outcome] = {o: o for o in OUTCOMES}

# Records kept per payload head (about 150 bytes each as JSON).
MAX_RECORDS = 24


@dataclass(frozen=True)
class Invocation:
    """One worker invocation on a payload (or, ``count`` > 1, several merged). Times are epoch ms."""

    number: int  # the payload's invocation number (the last one, for a merged record)
    start: int
    end: int = 0  # 0: not recorded (still running, or cut off)
    outcome: Outcome = "running"
    bytes: int = 0  # bytes of the objects this invocation copied
    objects: int = 0  # tasks it finished (copied, skipped or failed)
    requests: int = 0  # S3 requests those tasks sent, retries included
    retries: int = 0  # 1: it follows an invocation that failed or was cut off (a merged record: how many did)
    deadline: int = 0  # epoch ms at which Lambda stops it (start + the time it had)
    memory_mb: int = 0  # the worker Lambda's memory, for GB-seconds
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v or k in ("number", "start", "outcome")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invocation:
        outcome = _OUTCOME_OF.get(str(data.get("outcome", "running")), "lost")
        return cls(number=int(data["number"]), start=int(data["start"]), end=int(data.get("end", 0)),
                   outcome=outcome,
                   bytes=int(data.get("bytes", 0)), objects=int(data.get("objects", 0)),
                   requests=int(data.get("requests", 0)), retries=int(data.get("retries", 0)),
                   deadline=int(data.get("deadline", 0)), memory_mb=int(data.get("memory_mb", 0)),
                   count=int(data.get("count", 1)))


def close_cut_off(records: Sequence[Invocation], now_ms: int) -> tuple[Invocation, ...]:
    """Each record still "running" becomes "lost", ended at its deadline or ``now_ms``, whichever is first."""
    return tuple(replace(r, outcome="lost", end=min(r.deadline, now_ms) if r.deadline else now_ms)
                 if r.outcome == "running" else r for r in records)


def begin(records: Sequence[Invocation], number: int, now_ms: int, deadline_ms: int,
          memory_mb: int = 0) -> tuple[Invocation, ...]:
    """The records once invocation ``number`` starts: earlier ones closed, this one "running" (a retry when
    the one before it failed, was cut off, or had finished the payload)."""
    closed = close_cut_off(records, now_ms)
    retry = bool(closed) and closed[-1].outcome in ("failed", "lost", "done")
    return compact((*closed, Invocation(number=number, start=now_ms, retries=int(retry), deadline=deadline_ms,
                                        memory_mb=memory_mb)))


def finish(records: Sequence[Invocation], now_ms: int, outcome: Outcome, nbytes: int, objects: int,
           requests: int) -> tuple[Invocation, ...]:
    """The records with the last one (this invocation's) ended."""
    if not records:
        return ()
    last = replace(records[-1], end=now_ms, outcome=outcome, bytes=nbytes, objects=objects, requests=requests,
                   deadline=0)
    return (*records[:-1], last)


def compact(records: Sequence[Invocation], limit: int = MAX_RECORDS) -> tuple[Invocation, ...]:
    """At most ``limit`` records: the oldest merged into the first while there are more."""
    kept = list(records)
    while len(kept) > max(2, limit):
        first, second = kept[0], kept[1]
        kept[:2] = [merge(first, second)]
    return tuple(kept)


def merge(first: Invocation, second: Invocation) -> Invocation:
    """One record for two consecutive ones: from the first's start to the second's end, their work summed;
    it ended as the second did; their retries summed."""
    return Invocation(number=second.number, start=first.start, end=second.end, outcome=second.outcome,
                      bytes=first.bytes + second.bytes, objects=first.objects + second.objects,
                      requests=first.requests + second.requests, retries=first.retries + second.retries,
                      deadline=second.deadline, memory_mb=second.memory_mb or first.memory_mb,
                      count=first.count + second.count)
