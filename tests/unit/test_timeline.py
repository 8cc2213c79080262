"""lambdas/timeline.py by value: begin, finish, cut-off invocations and the bounded record list."""

from __future__ import annotations

import json

from lambdas import timeline
from lambdas.timeline import Invocation


def test_a_running_record_found_by_the_next_invocation_is_lost_and_the_next_is_a_retry():
    records = timeline.begin((), 1, now_ms=1_000, deadline_ms=901_000)
    records = timeline.begin(records, 2, now_ms=950_000, deadline_ms=1_850_000)
    assert [(r.number, r.outcome, r.end, r.retries) for r in records] == [(1, "lost", 901_000, 0),
                                                                          (2, "running", 0, 1)]


def test_an_invocation_after_a_done_one_repeats_a_lost_answer_so_it_is_a_retry():
    records = timeline.finish(timeline.begin((), 1, 0, 10), 5, "done", 0, 0, 0)
    assert timeline.begin(records, 2, 8, 18)[-1].retries == 1


def test_an_invocation_after_a_failed_one_is_a_retry_and_after_a_continued_one_is_not():
    records = timeline.finish(timeline.begin((), 1, 0, 10), 5, "failed", 0, 0, 1)
    records = timeline.finish(timeline.begin(records, 2, 6, 16), 9, "continued", 10, 1, 1)
    records = timeline.begin(records, 3, 10, 20)
    assert [r.retries for r in records] == [0, 1, 0]
    assert records[1] == Invocation(number=2, start=6, end=9, outcome="continued", bytes=10, objects=1,
                                    requests=1, retries=1)


def test_a_payload_that_continues_thousands_of_times_keeps_a_bounded_head_with_its_latest_records_exact():
    records: tuple[Invocation, ...] = ()
    for n in range(1, 5_001):
        records = timeline.begin(records, n, n * 1_000, n * 1_000 + 900)
        records = timeline.finish(records, n * 1_000 + 800, "continued" if n < 5_000 else "done", 7, 1, 2)
    assert len(records) == timeline.MAX_RECORDS
    first = records[0]
    assert (first.count, first.start, first.objects, first.bytes) == (5_000 - timeline.MAX_RECORDS + 1, 1_000,
                                                                       5_000 - timeline.MAX_RECORDS + 1,
                                                                       7 * (5_000 - timeline.MAX_RECORDS + 1))
    assert [r.number for r in records[1:]] == list(range(5_000 - timeline.MAX_RECORDS + 2, 5_001))
    assert sum(r.count for r in records) == 5_000 and records[-1].outcome == "done"
    assert len(json.dumps([r.to_dict() for r in records])) < 5_000


def test_records_read_back_as_written_and_an_unknown_outcome_reads_as_lost():
    record = Invocation(number=3, start=1, end=2, outcome="done", bytes=5, objects=1, requests=1, retries=1,
                        memory_mb=512)
    assert Invocation.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert Invocation.from_dict({"number": 1, "start": 1, "outcome": "exploded"}).outcome == "lost"
