"""A run's picture: what the HTML report (lambdas/reporting/html.py) draws, gathered in bounded memory.

``LaneBuilder`` takes the payloads' checkpoint heads one at a time (each head holds its payload's invocation
records, lambdas/timeline.py) and keeps, per worker: counts, up to MAX_SEGMENTS invocation segments for the
whole run (a small run is drawn invocation by invocation), and COLUMNS time bins (a large run is drawn per
pixel column); the run's bytes per bin; at most MAX_MARKERS retry, cut-off and failure markers (the rest
counted). Memory is O(workers x COLUMNS + MAX_SEGMENTS + MAX_MARKERS), whatever the run's objects or
payloads: a 100M-object run (about 100,000 payloads) is summarised, never listed.

``gather`` feeds it the run's heads from S3, READ_THREADS at a time; ``picture`` adds report.json's figures
and the plan's. ``RunPicture`` is plain data (``to_dict`` for tests and tools).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any, Literal

from lambdas import estimate, manifest
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, ResultsHead, RunPlan
from lambdas.reporting.fixes import fix_for
from lambdas.timeline import Invocation

# Pixel columns of the time axis: lanes of a large run and the bytes series are binned into these.
COLUMNS = 600
# Invocation segments drawn one by one (with a tooltip each) before the lanes switch to bins.
MAX_SEGMENTS = 4_000
# Markers (retries, cut-off invocations, failed payloads) drawn; the rest are counted.
MAX_MARKERS = 1_000
# Failed payloads listed with their failure; the rest are counted.
MAX_FAILED_PAYLOADS = 200
# Heads read between two looks at the clock (``gather``'s ``stop``): about a second of reads.
HEADS_BETWEEN_CHECKS = 1_024

MarkerKind = Literal["retry", "lost", "failed"]
# How a bin is coloured: the worst outcome in it.
SEVERITY = {"done": 1, "continued": 1, "running": 1, "retry": 2, "failed": 3, "lost": 3}


@dataclass(frozen=True)
class Segment:
    """One invocation record drawn as a bar."""

    payload: int
    number: int
    start: int
    end: int
    outcome: str
    retries: int
    bytes: int
    objects: int
    count: int = 1


@dataclass(frozen=True)
class Marker:
    worker: int
    at: int  # epoch ms
    kind: MarkerKind
    payload: int
    text: str


@dataclass
class Lane:
    """One worker's lane."""

    worker: int
    payloads: int = 0  # planned
    done: int = 0
    failed: int = 0
    invocations: int = 0
    retries: int = 0
    lost: int = 0
    bytes: int = 0
    segments: list[Segment] = field(default_factory=list)
    busy: list[float] = field(default_factory=lambda: [0.0] * COLUMNS)  # share of each column's time busy
    worst: list[int] = field(default_factory=lambda: [0] * COLUMNS)  # SEVERITY of the worst outcome there


@dataclass
class Cost:
    """What the run used, from the invocation records (``estimate``: the plan's figures, when known)."""

    invocations: int = 0  # the workers'
    lambda_invocations: int = 0  # the planner's, the workers' and the finalizer's
    gb_seconds: float = 0.0  # the workers'
    requests: int = 0  # S3 requests: the copies' (retries included) and the checkpoint writes
    state_transitions: int = 0
    s3_dollars: float = 0.0
    step_functions_dollars: float = 0.0
    lambda_dollars: float = 0.0
    estimate: dict[str, Any] | None = None
    estimate_note: str = ""  # why ``estimate`` is missing

    @property
    def dollars(self) -> float:
        return self.s3_dollars + self.step_functions_dollars + self.lambda_dollars


@dataclass
class RunPicture:
    run_id: str
    status: str
    verdict: str
    started: str
    finished: str
    t0: int  # epoch ms: the time axis
    t1: int
    totals: dict[str, int]
    targets: list[dict[str, Any]]
    lanes: list[Lane]
    detailed: bool  # lanes hold segments (else only bins)
    markers: list[Marker]
    markers_not_shown: int
    bytes_per_column: list[int]
    skipped_by_reason: dict[str, int]
    failures: list[dict[str, str]]  # source, target, error, fix
    failures_not_listed: int
    failed_payloads: list[dict[str, Any]]  # payload, worker, at, failure, fix
    failed_payloads_not_listed: int
    cost: Cost
    unread: int = 0  # payloads whose heads were not read (the finalizer ran out of time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LaneBuilder:
    """Accumulates heads into lanes, bins, markers and cost in bounded memory (see the module doc)."""

    def __init__(self, worker_payloads: Sequence[Sequence[int]], t0: int, t1: int) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1)
        self.lanes = [Lane(worker=w, payloads=len(ids)) for w, ids in enumerate(worker_payloads)]
        self.segments = 0
        self.detailed = True
        self.markers: list[Marker] = []
        self.markers_not_shown = 0
        self.bytes_per_column = [0] * COLUMNS
        self.failed_payloads: list[dict[str, Any]] = []
        self.failed_payloads_not_listed = 0
        self.payloads_seen = 0
        self.unread = 0  # payloads whose heads were not read (time ran out: see ``gather``)
        self.memory_mb = 0  # the workers' memory, as their invocations recorded it
        self.cost = Cost()
        self._ms_per_column = (self.t1 - self.t0) / COLUMNS

    def add(self, head: ResultsHead) -> None:
        if not 0 <= head.worker < len(self.lanes):
            return
        lane = self.lanes[head.worker]
        self.payloads_seen += 1
        records = head.timeline
        for record in records:
            self._add_record(lane, head.payload_id, record)
        if head.failure:
            lane.failed += 1
            at = head.failed_at or (records[-1].end if records else 0) or self.t1
            self._mark(Marker(head.worker, at, "failed", head.payload_id, head.failure))
            if len(self.failed_payloads) < MAX_FAILED_PAYLOADS:
                self.failed_payloads.append({"payload": head.payload_id, "worker": head.worker, "at": at,
                                             "failure": head.failure, "fix": fix_for(head.failure)})
            else:
                self.failed_payloads_not_listed += 1
            self._paint(lane, at, at + 1, "failed")
        elif records and records[-1].outcome == "done":
            lane.done += 1

    def _add_record(self, lane: Lane, payload: int, record: Invocation) -> None:
        end = record.end or max(record.start, min(record.deadline or self.t1, self.t1))
        lane.invocations += record.count
        lane.retries += record.retries
        lane.bytes += record.bytes
        self.cost.invocations += record.count
        self.cost.requests += record.requests
        self.cost.gb_seconds += max(0, end - record.start) / 1000 * record.memory_mb / 1024
        self.memory_mb = max(self.memory_mb, record.memory_mb)
        if record.outcome == "lost":
            lane.lost += 1
            if self._room():
                self._mark(Marker(lane.worker, end, "lost", payload,
                                  f"payload {payload} invocation {record.number}: no end recorded (timed out or "
                                  "stopped); drawn to its deadline, or to when the next call found it"))
        if record.retries and self._room():
            self._mark(Marker(lane.worker, record.start, "retry", payload,
                              f"payload {payload} invocation {record.number}: a retry"))
        columns = self._columns(record.start, end)
        self._paint(lane, record.start, end, "retry" if record.retries else record.outcome, columns)
        self._spread_bytes(columns, record.bytes)
        if self.detailed:
            lane.segments.append(Segment(payload, record.number, record.start, end, record.outcome, record.retries,
                                         record.bytes, record.objects, record.count))
            self.segments += 1
            if self.segments > MAX_SEGMENTS:
                self.detailed = False
                for each in self.lanes:
                    each.segments = []

    def _room(self) -> bool:
        """Whether another marker is drawn (else it is only counted)."""
        if len(self.markers) < MAX_MARKERS:
            return True
        self.markers_not_shown += 1
        return False

    def _mark(self, marker: Marker) -> None:
        if len(self.markers) < MAX_MARKERS:
            self.markers.append(marker)
        else:
            self.markers_not_shown += 1

    def _columns(self, start: int, end: int) -> list[tuple[int, float]]:
        """The columns [start, end) covers, with the share of each column it covers (0 for an instant)."""
        width = self._ms_per_column
        first = self._column(start)
        last = self._column(max(start, end - 1))
        if first == last:
            return [(first, min(1.0, max(0, end - start) / width))]
        out = []
        for column in range(first, last + 1):
            lo = self.t0 + column * width
            covered = (lo + width if end > lo + width else end) - (start if start > lo else lo)
            out.append((column, covered / width if covered > 0 else 0.0))
        return out

    def _column(self, at: int) -> int:
        column = int((at - self.t0) / self._ms_per_column)
        return 0 if column < 0 else COLUMNS - 1 if column >= COLUMNS else column

    def _paint(self, lane: Lane, start: int, end: int, outcome: str,
               columns: list[tuple[int, float]] | None = None) -> None:
        severity = SEVERITY.get(outcome, 1)
        busy, worst = lane.busy, lane.worst
        for column, share in columns if columns is not None else self._columns(start, end):
            busy[column] = min(1.0, busy[column] + share)
            if worst[column] < severity:
                worst[column] = severity

    def _spread_bytes(self, columns: list[tuple[int, float]], nbytes: int) -> None:
        if nbytes <= 0:
            return
        total = sum(share for _, share in columns)
        for column, share in columns:
            self.bytes_per_column[column] += round(nbytes * share / total) if total else nbytes // len(columns)


def transitions_used(workers: int, payloads: int, invocations: int, retries: int, failed_payloads: int,
                     finalize_shards: int = 2) -> int:
    """State transitions of the run as recorded: the plan's model (lambdas/estimate.py) with the invocations
    beyond one per payload as continuations, plus a transition for each retry (https://aws.amazon.com/
    step-functions/pricing/: "each retry will be charged as an additional state transition") and the
    failure path's two states (RecordFailure, PayloadFailed) per failed payload. ``finalize_shards``: the
    children the FinalizeShards Map started (report.json's timings; a small run's two)."""
    continuations = max(0, invocations - payloads - retries)
    return (estimate.state_transitions(workers, payloads, continuations, finalize_shards) + retries
            + 2 * failed_payloads)


def picture(plan: RunPlan, report: Mapping[str, Any], builder: LaneBuilder,
            plan_estimate: Mapping[str, Any] | None = None) -> RunPicture:
    """The picture of a finished run from its plan, its report.json and the heads ``builder`` took."""
    counts = report.get("counts") or {}
    totals = {"copied": int(counts.get("copied", report.get("copied", 0)) or 0),
              "skipped": int(counts.get("skipped", report.get("skipped", 0)) or 0),
              "failed": int(counts.get("failed", report.get("failed", 0)) or 0),
              "planned": int(counts.get("planned", 0) or 0),
              "bytes": int(report.get("bytes_copied", report.get("bytes", 0)) or 0),
              "retries": int(report.get("retries", 0) or 0),
              "planned_copies": plan.totals.copies, "planned_bytes": plan.totals.bytes,
              "workers": plan.workers, "payloads": sum(len(ids) for ids in plan.worker_payloads)}
    cost = builder.cost
    timings = report.get("timings") if isinstance(report.get("timings"), dict) else {}
    cost.lambda_invocations = 1 + cost.invocations + int((timings or {}).get("invocations", 1))
    failed_payloads = sum(lane.failed for lane in builder.lanes)
    cost.state_transitions = transitions_used(plan.workers, totals["payloads"], cost.invocations,
                                              sum(lane.retries for lane in builder.lanes), failed_payloads,
                                              int((timings or {}).get("finalize_shards", 2)))
    cost.requests += 2 * cost.invocations  # each invocation's head at its start and checkpoint at its end
    writes = cost.requests
    cost.s3_dollars = writes * estimate.S3_WRITE_OR_LIST_PER_1000 / 1000
    cost.step_functions_dollars = cost.state_transitions * estimate.SFN_PER_1000_TRANSITIONS / 1000
    cost.lambda_dollars = (cost.gb_seconds * estimate.LAMBDA_PER_GB_SECOND
                           + cost.lambda_invocations * estimate.LAMBDA_PER_REQUEST)
    cost.estimate = dict(plan_estimate) if plan_estimate is not None else None
    failures = [{"source": str(f.get("source", "")), "target": str(f.get("target", "")),
                 "error": str(f.get("error", "")), "fix": fix_for(str(f.get("error", "")))}
                for f in report.get("failed_objects") or ()]
    per_target = {int(t["index"]): t for t in (plan_estimate or {}).get("per_target", ())}
    targets = [{"index": t.index, "target": f"s3://{t.bucket}/{t.prefix}",
                "rule": "every file" if t.file_types == ("*",) else "*." + ", *.".join(t.file_types),
                "planned_objects": per_target.get(t.index, {}).get("objects"),
                "planned_bytes": per_target.get(t.index, {}).get("bytes")}
               for t in plan.config.targets]
    return RunPicture(
        run_id=plan.run_id, status=str(report.get("status", "")), verdict=verdict(report, totals),
        started=plan.created_at, finished=str(report.get("finished", "")), t0=builder.t0, t1=builder.t1,
        totals=totals, targets=targets, lanes=builder.lanes, detailed=builder.detailed, markers=builder.markers,
        markers_not_shown=builder.markers_not_shown, bytes_per_column=builder.bytes_per_column,
        skipped_by_reason={str(k): int(v) for k, v in (report.get("skipped_by_reason") or {}).items()},
        failures=failures, failures_not_listed=int(report.get("failed_objects_not_listed", 0) or 0),
        failed_payloads=builder.failed_payloads, failed_payloads_not_listed=builder.failed_payloads_not_listed,
        cost=cost, unread=builder.unread)


def verdict(report: Mapping[str, Any], totals: Mapping[str, int]) -> str:
    """One sentence: did the run do what was asked."""
    status = str(report.get("status", ""))
    if status == "dry-run":
        return f"Dry run: {_objects(totals['planned'])} planned, nothing copied."
    limit = report.get("max_failed_objects")
    if status == "succeeded":
        tail = f" ({totals['failed']:,} failed, within max_failed_objects {limit})" if totals["failed"] else ""
        return f"Succeeded: {_objects(totals['copied'])} copied, {totals['skipped']:,} skipped{tail}."
    return f"Failed: {_objects(totals['failed'])} failed (max_failed_objects is {limit}); {totals['copied']:,} copied."


def _objects(count: int) -> str:
    return f"{count:,} object" + ("" if count == 1 else "s")


# --- from S3 ------------------------------------------------------------------------------------------
def epoch_ms(iso: str) -> int:
    """'2024-01-01T00:00:00Z' (the planner's and finalizer's timestamps) as epoch ms; 0 when unreadable."""
    try:
        return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    except (TypeError, ValueError):
        return 0


def read_heads(s3: S3Gateway, loc: ManifestLocation, payload_ids: Iterable[int],
               window: int = manifest.READ_THREADS) -> Iterator[ResultsHead]:
    """The payloads' heads (those that have one), ``window`` reads in flight: memory holds ``window`` heads."""
    ids = iter(payload_ids)
    with ThreadPoolExecutor(max_workers=window) as pool:
        while batch := list(islice(ids, window * 4)):
            for head in pool.map(lambda pid: manifest.read_head(s3, loc, pid), batch):
                if head is not None:
                    yield head


def gather(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any],
           now_ms: int, stop: Callable[[], bool] = lambda: False) -> LaneBuilder:
    """The run's heads in S3 (one GET per payload, streamed) taken by a LaneBuilder whose time axis runs
    from the plan's creation to report.json's finish (or ``now_ms`` before there is one). When ``stop``
    says so (the finalizer's deadline), the heads not read yet are only counted (``unread``)."""
    t0 = epoch_ms(plan.created_at) or now_ms
    t1 = max(epoch_ms(str(report.get("finished", ""))) + 999, now_ms if not report.get("finished") else 0, t0 + 1)
    builder = LaneBuilder(plan.worker_payloads, t0, t1)
    ids = [pid for ids in plan.worker_payloads for pid in ids]
    read = 0
    for batch in (ids[i:i + HEADS_BETWEEN_CHECKS] for i in range(0, len(ids), HEADS_BETWEEN_CHECKS)):
        if stop():
            break
        for head in read_heads(s3, loc, batch):
            builder.add(head)
        read += len(batch)
    builder.unread = len(ids) - read
    return builder
