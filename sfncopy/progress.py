"""Progress of a run: what is done out of what was planned, the rate, the ETA, and one line to show them.

Pure functions over the plan and the workers' checkpoints, and over the workers' Map Runs (each payload is a
child execution of its worker's Distributed Map; no I/O here): ``execution.py`` reads the files and asks Step
Functions, this module does the arithmetic; ``LinePrinter`` shows the line on a stream.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from lambdas.models import PayloadCheckpoint, RunPlan
from lambdas.units import format_bytes

# The rate is measured over the last few seconds so the ETA follows changes in speed without jumping
# at every poll.
RATE_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class Snapshot:
    """How far a run is. Objects are (source object, target) copies, as the plan counts them."""

    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int
    failed: int = 0
    retries: int = 0

    @property
    def fraction(self) -> float:
        """Share done, by bytes when there are any, else by objects; 1.0 for an empty run."""
        if self.bytes_total > 0:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.objects_total > 0:
            return min(1.0, self.objects_done / self.objects_total)
        return 1.0


@dataclass(frozen=True)
class PayloadCounts:
    """Payloads by the state of their child executions, summed over the workers' Map Runs (DescribeMapRun's
    itemCounts: each item is one payload). A failed payload no longer fails the run at once (the finalizer
    decides), so this is where a user watching sees it."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0  # failed, timed out or aborted
    running: int = 0

    def __add__(self, other: PayloadCounts) -> PayloadCounts:
        return PayloadCounts(self.total + other.total, self.succeeded + other.succeeded,
                             self.failed + other.failed, self.running + other.running)


def payload_counts(item_counts: dict[str, int]) -> PayloadCounts:
    """One Map Run's DescribeMapRun ``itemCounts`` as PayloadCounts."""
    return PayloadCounts(total=int(item_counts.get("total", 0)), succeeded=int(item_counts.get("succeeded", 0)),
                         failed=sum(int(item_counts.get(k, 0)) for k in ("failed", "timedOut", "aborted")),
                         running=int(item_counts.get("running", 0)))


# The workers' Distributed Maps are labelled Worker<i> (generator/state_machine.py, worker_map_name); the
# label is in the Map Run's ARN, "...:mapRun:<machine>/<label>:<id>" (Step Functions developer guide, "Examining
# Map Run"). Other Map Runs of the execution (PlanShards, FinalizeShards) hold no payloads.
WORKER_MAP_LABEL = "Worker"


def is_worker_map_run(map_run_arn: str) -> bool:
    """Whether a Map Run is a worker's (its items are payloads), from the label in its ARN."""
    label = map_run_arn.rsplit("/", 1)[-1].split(":", 1)[0]
    return label.startswith(WORKER_MAP_LABEL) and label[len(WORKER_MAP_LABEL):].isdigit()


@dataclass(frozen=True)
class Sample:
    """A snapshot seen at a moment (seconds on a monotonic clock)."""

    seconds: float
    bytes_done: int
    objects_done: int


@dataclass(frozen=True)
class Rate:
    bytes_per_second: float
    objects_per_second: float


def snapshot(plan: RunPlan, checkpoints: Iterable[PayloadCheckpoint]) -> Snapshot:
    """Count finished work from the workers' results.

    A whole-object task finishes one copy. The chunks of a split object may be spread over workers;
    that copy counts as done once results cover all of its parts (the finalizer completes it later).
    Failed and skipped tasks count as done: they need no more work.
    """
    split_parts = {s.copy_id: s.part_count for s in plan.splits}
    parts_done: dict[int, int] = {}
    seen: set[str] = set()
    objects = nbytes = failed = retries = 0
    for checkpoint in checkpoints:
        for result in checkpoint.results:
            if result.status == "planned" or result.task_id in seen:
                continue
            seen.add(result.task_id)
            nbytes += result.bytes
            retries += result.retries
            failed += result.status == "failed"
            if result.method == "chunk" and result.copy_id in split_parts:
                parts_done[result.copy_id] = parts_done.get(result.copy_id, 0) + result.parts
            else:
                objects += 1
    objects += sum(1 for copy_id, done in parts_done.items() if done >= split_parts[copy_id])
    totals = plan.totals
    return Snapshot(objects_done=min(objects, totals.copies), objects_total=totals.copies,
                    bytes_done=min(nbytes, totals.bytes), bytes_total=totals.bytes, failed=failed, retries=retries)


def rate(samples: Sequence[Sample], window: float = RATE_WINDOW_SECONDS) -> Rate | None:
    """Average speed between the latest sample and the oldest one inside the window; None until
    two samples are at least a moment apart."""
    if len(samples) < 2:
        return None
    last = samples[-1]
    inside = [s for s in samples if last.seconds - s.seconds <= window]
    first = inside[0] if len(inside) >= 2 else samples[-2]
    elapsed = last.seconds - first.seconds
    if elapsed <= 0:
        return None
    return Rate(bytes_per_second=max(0.0, (last.bytes_done - first.bytes_done) / elapsed),
                objects_per_second=max(0.0, (last.objects_done - first.objects_done) / elapsed))


def eta_seconds(snap: Snapshot, speed: Rate | None) -> float | None:
    """Seconds left at the current speed: by bytes when the run has bytes, else by objects.
    0 when done; None when unknown (no speed yet, or nothing moving)."""
    if snap.fraction >= 1.0:
        return 0.0
    if speed is None:
        return None
    if snap.bytes_total > 0:
        left, per_second = snap.bytes_total - snap.bytes_done, speed.bytes_per_second
    else:
        left, per_second = snap.objects_total - snap.objects_done, speed.objects_per_second
    return left / per_second if per_second > 0 else None


@dataclass(frozen=True)
class WorkerProgress:
    """One worker's share: its payloads done (and failed) of those planned, the bytes it copied, and the payload
    it is on (the one whose last invocation record is still running; -1 when none is)."""

    worker: int
    payloads: int
    done: int = 0
    failed: int = 0
    bytes: int = 0
    current: int = -1
    invocations: int = 0
    retries: int = 0


def worker_progress(plan: RunPlan, checkpoints: Iterable[PayloadCheckpoint]) -> list[WorkerProgress]:
    """Each worker's progress from its payloads' checkpoints (their heads' invocation records and results)."""
    workers = [dict(payloads=len(ids), done=0, failed=0, bytes=0, current=-1, invocations=0, retries=0)
               for ids in plan.worker_payloads]
    for checkpoint in checkpoints:
        if not 0 <= checkpoint.worker < len(workers):
            continue
        w = workers[checkpoint.worker]
        w["bytes"] += sum(r.bytes for r in checkpoint.results if r.status == "copied")
        records = checkpoint.timeline
        w["invocations"] += sum(r.count for r in records)
        w["retries"] += sum(r.retries for r in records)
        if checkpoint.failure:
            w["failed"] += 1
        elif records and records[-1].outcome == "done":
            w["done"] += 1
        elif records and records[-1].outcome == "running":
            w["current"] = max(w["current"], checkpoint.payload_id)
    return [WorkerProgress(worker=i, **w) for i, w in enumerate(workers)]


# Workers shown one line each under the total; the rest are summed on one line.
MAX_WORKER_LINES = 16


def worker_lines(workers: Sequence[WorkerProgress], limit: int = MAX_WORKER_LINES) -> list[str]:
    """A line per worker ('worker 3: 5/8 payloads, 1 failed | 120.0 MiB | on payload 17'), the ones with the
    most payloads left first when there are more than ``limit`` (the rest summed on one line)."""
    shown = sorted(workers, key=lambda w: (-(w.payloads - w.done - w.failed), w.worker))[:limit] \
        if len(workers) > limit else list(workers)
    lines = []
    for w in sorted(shown, key=lambda w: w.worker):
        state = (f"on payload {w.current}" if w.current >= 0 else
                 "finished" if w.done + w.failed >= w.payloads else "waiting")
        extra = (f", {w.failed:,} failed" if w.failed else "") + (f", {w.retries:,} retried" if w.retries else "")
        lines.append(f"  worker {w.worker}: {w.done:,}/{w.payloads:,} payloads{extra} | {format_bytes(w.bytes)} | "
                     f"{state}")
    rest = [w for w in workers if w not in shown]
    if rest:
        lines.append(f"  {len(rest):,} more workers: {sum(w.done for w in rest):,}/{sum(w.payloads for w in rest):,}"
                     f" payloads | {format_bytes(sum(w.bytes for w in rest))}")
    return lines


# --- formatting --------------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """'--' when unknown; 45s, 3m07s, 2h05m."""
    if seconds is None:
        return "--"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def render(snap: Snapshot, speed: Rate | None, eta: float | None, payloads: PayloadCounts | None = None) -> str:
    """One progress line, e.g. '120/250 objects | 12.0 MiB/30.0 MiB (40%) | 4.0 MiB/s | ETA 5s', and the
    payloads' child executions when known ('| payloads 3/8, 1 failed')."""
    parts = [
        f"{snap.objects_done:,}/{snap.objects_total:,} objects",
        f"{format_bytes(snap.bytes_done)}/{format_bytes(snap.bytes_total)} ({snap.fraction:.0%})",
        f"{format_bytes(speed.bytes_per_second)}/s" if speed is not None else "-- /s",
        f"ETA {format_duration(eta)}",
    ]
    if snap.failed:
        parts.append(f"{snap.failed:,} failed")
    if payloads is not None and payloads.total:
        parts.append(f"payloads {payloads.succeeded:,}/{payloads.total:,}"
                     + (f", {payloads.failed:,} failed" if payloads.failed else ""))
    return " | ".join(parts)


class Tracker:
    """Keeps the recent samples of one run and renders the line for the newest snapshot."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: list[Sample] = []

    def line(self, snap: Snapshot, now: float, payloads: PayloadCounts | None = None) -> str:
        self.samples.append(Sample(now, snap.bytes_done, snap.objects_done))
        # Keep one sample older than the window so the rate always spans the whole window.
        while len(self.samples) > 2 and now - self.samples[1].seconds > self.window:
            self.samples.pop(0)
        speed = rate(self.samples, self.window)
        return render(snap, speed, eta_seconds(snap, speed), payloads)


class LinePrinter:
    """Shows progress (a line, or several joined by newlines): redrawn in place on a terminal, else printed
    again on each change."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.last = ""

    def __call__(self, line: str) -> None:
        if line == self.last:
            return
        # On a terminal: back to the first line drawn last time (ANSI "cursor up"), then each line cleared to
        # its end as it is rewritten, and whatever was below cleared.
        up = self.last.count("\n")
        self.last = line
        if self.tty:
            lines = "\n".join(part + "\x1b[K" for part in line.split("\n"))
            below = "\x1b[J" if up or "\n" in line else ""  # a single line stays a single line's redraw
            self.out.write((f"\x1b[{up}A" if up else "") + "\r" + lines + below)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def end(self) -> None:
        """Finish the line in place (a terminal) so what follows starts on a new line."""
        if self.tty and self.last:
            self.out.write("\n")
            self.out.flush()
        self.last = ""
