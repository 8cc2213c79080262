"""Progress maths by value: counting finished work, rate, ETA and the rendered line."""

from __future__ import annotations

import io

import pytest

from lambdas import units
from lambdas.models import CopyConfig, ObjectResult, PayloadCheckpoint, PlanTotals, RunPlan, SplitCopy
from sfncopy import progress
from sfncopy.progress import Rate, Sample, Snapshot

MiB = 1024 * 1024


def _plan(copies: int, nbytes: int, splits: tuple[SplitCopy, ...] = ()) -> RunPlan:
    return RunPlan(run_id="r", created_at="", config=CopyConfig(sources=(), targets=()), workers=2,
                   worker_payloads=((0,), (1,)), splits=splits, totals=PlanTotals(copies=copies, bytes=nbytes))


def _result(task_id: str, copy_id: int, nbytes: int, status: str = "copied", method: str = "copy",
            parts: int = 0, retries: int = 0) -> ObjectResult:
    return ObjectResult(task_id=task_id, copy_id=copy_id, source_bucket="s", source_key=f"k{copy_id}",
                        target_bucket="t", target_key=f"k{copy_id}", bytes=nbytes, status=status,  # type: ignore[arg-type]
                        method=method, parts=parts, retries=retries)  # type: ignore[arg-type]


def _split(copy_id: int, size: int, part_count: int) -> SplitCopy:
    return SplitCopy(copy_id=copy_id, source_bucket="s", source_key="big", size=size, etag="e",
                     target_bucket="t", target_key="big", part_size=size // part_count, part_count=part_count,
                     upload_id="u")


def test_snapshot_counts_whole_objects_failed_and_retries():
    # GIVEN a plan of 4 copies / 100 bytes and results for three tasks, one failed, with retries
    plan = _plan(copies=4, nbytes=100)
    checkpoints = [
        PayloadCheckpoint(payload_id=0, worker=0, results=(_result("c0", 0, 10), _result("c1", 1, 20, retries=2))),
        PayloadCheckpoint(payload_id=1, worker=1, results=(_result("c2", 2, 30, status="failed", retries=1),)),
    ]
    # WHEN the snapshot is taken
    snap = progress.snapshot(plan, checkpoints)
    # THEN three of four copies and 60 of 100 bytes are done, one failed, three retries
    assert snap == Snapshot(objects_done=3, objects_total=4, bytes_done=60, bytes_total=100, failed=1, retries=3)
    assert snap.fraction == pytest.approx(0.6)


def test_split_object_counts_once_when_all_its_chunks_are_done():
    # GIVEN a split object of 4 parts whose chunks live in two payloads, only the first one finished
    split = _split(copy_id=7, size=40 * MiB, part_count=4)
    plan = _plan(copies=1, nbytes=40 * MiB, splits=(split,))
    first = PayloadCheckpoint(0, 0, results=(_result("c7.p1", 7, 20 * MiB, method="chunk", parts=2),))
    # WHEN only one chunk is done THEN the bytes count but the object does not
    half = progress.snapshot(plan, [first])
    assert (half.objects_done, half.bytes_done) == (0, 20 * MiB)
    # WHEN the second chunk is done too THEN the object counts once
    second = PayloadCheckpoint(1, 1, results=(_result("c7.p3", 7, 20 * MiB, method="chunk", parts=2),))
    full = progress.snapshot(plan, [first, second])
    assert (full.objects_done, full.bytes_done, full.fraction) == (1, 40 * MiB, 1.0)


def test_planned_results_and_duplicates_are_not_counted_and_totals_cap_the_counts():
    # GIVEN a planned (unfinished) result and the same task reported twice
    plan = _plan(copies=1, nbytes=10)
    checkpoints = [PayloadCheckpoint(0, 0, results=(_result("c0", 0, 10), _result("c0", 0, 10),
                                                    _result("c1", 1, 5, status="planned")))]
    # WHEN the snapshot is taken THEN each finished task counts once
    snap = progress.snapshot(plan, checkpoints)
    assert (snap.objects_done, snap.bytes_done) == (1, 10)


def test_rate_over_the_window():
    # GIVEN samples 2 s apart, the oldest outside a 5 s window
    samples = [Sample(0.0, 0, 0), Sample(2.0, 10 * MiB, 10), Sample(4.0, 30 * MiB, 20), Sample(6.0, 50 * MiB, 40)]
    # WHEN the rate is measured over the last 5 s THEN it spans 2.0 -> 6.0
    speed = progress.rate(samples, window=5.0)
    assert speed == Rate(bytes_per_second=10 * MiB, objects_per_second=7.5)


def test_rate_unknown_with_one_sample_or_no_elapsed_time():
    assert progress.rate([Sample(1.0, 5, 1)]) is None
    assert progress.rate([Sample(1.0, 5, 1), Sample(1.0, 9, 2)]) is None


def test_rate_uses_the_previous_sample_when_polls_are_further_apart_than_the_window():
    speed = progress.rate([Sample(0.0, 0, 0), Sample(30.0, 300, 3)], window=10.0)
    assert speed == Rate(bytes_per_second=10.0, objects_per_second=0.1)


def test_eta_by_bytes_objects_done_and_unknown():
    snap = Snapshot(objects_done=5, objects_total=10, bytes_done=40 * MiB, bytes_total=100 * MiB)
    assert progress.eta_seconds(snap, Rate(bytes_per_second=2 * MiB, objects_per_second=1)) == 30.0
    # by objects when the run has no bytes (only empty objects)
    empty = Snapshot(objects_done=4, objects_total=10, bytes_done=0, bytes_total=0)
    assert progress.eta_seconds(empty, Rate(0.0, objects_per_second=2.0)) == 3.0
    # done: 0; no speed or stalled: unknown
    assert progress.eta_seconds(Snapshot(10, 10, 5, 5), None) == 0.0
    assert progress.eta_seconds(snap, None) is None
    assert progress.eta_seconds(snap, Rate(0.0, 0.0)) is None


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (12 * MiB, "12.0 MiB"),
                                         (3 * 1024**4, "3.0 TiB")])
def test_format_bytes(n, text):
    assert units.format_bytes(n) == text


@pytest.mark.parametrize(("seconds", "text"), [(None, "--"), (0, "0s"), (44.6, "45s"), (187, "3m07s"),
                                               (7500, "2h05m")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_render_line():
    snap = Snapshot(objects_done=120, objects_total=1250, bytes_done=12 * MiB, bytes_total=30 * MiB, failed=2)
    line = progress.render(snap, Rate(bytes_per_second=4 * MiB, objects_per_second=40), eta=4.5)
    assert line == "120/1,250 objects | 12.0 MiB/30.0 MiB (40%) | 4.0 MiB/s | ETA 4s | 2 failed"
    assert progress.render(snap, None, None).endswith("-- /s | ETA -- | 2 failed")


def test_render_line_with_the_payloads_child_executions():
    # GIVEN 8 payloads (child executions of the workers' Maps), 3 copied and 1 failed
    snap = Snapshot(objects_done=1, objects_total=2, bytes_done=0, bytes_total=0)
    payloads = progress.payload_counts({"total": 5, "succeeded": 2, "failed": 1, "running": 1}) + \
        progress.payload_counts({"total": 3, "succeeded": 1, "timedOut": 0, "aborted": 0})
    assert payloads == progress.PayloadCounts(total=8, succeeded=3, failed=1, running=1)
    # THEN the line says so; a failed payload shows before the run's end (the finalizer decides the run)
    assert progress.render(snap, None, None, payloads).endswith("| payloads 3/8, 1 failed")
    assert progress.render(snap, None, None, progress.PayloadCounts(total=2, succeeded=2)).endswith(
        "| payloads 2/2")
    assert "payloads" not in progress.render(snap, None, None, progress.PayloadCounts())


def test_tracker_measures_speed_between_polls():
    # GIVEN a tracker polled twice, 2 s apart, with 8 MiB copied in between
    tracker = progress.Tracker(window=10.0)
    tracker.line(Snapshot(0, 10, 0, 16 * MiB), now=100.0)
    # WHEN the second poll renders THEN the speed is 4 MiB/s and 8 MiB are left: 2 s
    line = tracker.line(Snapshot(5, 10, 8 * MiB, 16 * MiB), now=102.0)
    assert line == "5/10 objects | 8.0 MiB/16.0 MiB (50%) | 4.0 MiB/s | ETA 2s"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_line_printer_prints_each_change_once_off_a_terminal():
    out = _Stream(tty=False)
    printer = progress.LinePrinter(out)
    for line in ("a", "a", "b"):
        printer(line)
    printer.end()
    assert out.getvalue() == "a\nb\n"


def test_line_printer_redraws_in_place_on_a_terminal():
    out = _Stream(tty=True)
    printer = progress.LinePrinter(out)
    printer("a")
    printer("b")
    printer.end()
    assert out.getvalue() == "\ra\x1b[K\rb\x1b[K\n"
