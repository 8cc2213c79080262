"""The HTML report by value: a 100,000-payload run stays a bounded page, user strings are escaped, and a small
run's lanes show each invocation, retry, cut-off and failure in its worker's lane at its time."""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser

from lambdas import manifest
from lambdas.models import (
    CopyConfig,
    CopyOptions,
    ManifestLocation,
    PlanTotals,
    ResultsHead,
    RunPlan,
    SourceConfig,
    TargetConfig,
)
from lambdas.report import MAX_FAILED_LISTED
from lambdas.reporting import picture as pic
from lambdas.reporting.html import render
from lambdas.timeline import Invocation
from tests.unit.memory_s3 import MemoryS3

T0 = 1_700_000_000_000
MB = 1 << 20


def plan_of(worker_payloads: list[list[int]], run_id: str = "run-1", bucket: str = "dst") -> RunPlan:
    config = CopyConfig(sources=(SourceConfig("src", ""),), targets=(TargetConfig(0, bucket, "copies/", ("*",)),),
                        options=CopyOptions())
    payloads = sum(len(ids) for ids in worker_payloads)
    return RunPlan(run_id=run_id, created_at="2023-11-14T22:13:20Z", config=config, workers=len(worker_payloads),
                   worker_payloads=tuple(tuple(ids) for ids in worker_payloads), splits=(),
                   totals=PlanTotals(copies=payloads * 1_000, bytes=payloads * 1_000 * MB, payloads=payloads))


class Elements(HTMLParser):
    """Start tags with their attributes and the lane (data-worker of the enclosing g.lane) they are in."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str], int | None]] = []
        self._lanes: list[int | None] = []
        self._depth: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        lane = next((w for w in reversed(self._lanes) if w is not None), None)
        if tag == "g":
            self._lanes.append(int(found["data-worker"]) if "lane" in found.get("class", "").split() else None)
            lane = self._lanes[-1] if self._lanes[-1] is not None else lane
        self.tags.append((tag, found, lane))

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self._lanes.pop()

    def having(self, cls: str) -> list[tuple[str, dict[str, str], int | None]]:
        return [t for t in self.tags if cls in t[1].get("class", "").split()]


def parse(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


def test_a_100000_payload_run_on_300_workers_is_a_page_of_a_few_mb_with_one_lane_per_worker():
    # GIVEN a 100M-object run: 100,000 payloads on 300 workers, each payload invoked 1-3 times over 10 hours,
    # with retries, cut-off invocations and failed payloads sprinkled through
    rng = random.Random(7)
    workers = [list(range(w, 100_000, 300)) for w in range(300)]
    plan = plan_of(workers)
    builder = pic.LaneBuilder(plan.worker_payloads, T0, T0 + 10 * 3600 * 1000)
    outcomes = ("continued", "continued", "failed", "lost")
    for w, ids in enumerate(workers):
        clock = T0 + rng.randrange(60_000)
        for pid in ids:
            records = []
            for n in range(1, 2 + pid % 3):
                end = clock + 20_000 + (pid * 7919 + n * 104_729) % 100_000
                records.append(Invocation(number=n, start=clock, end=end, outcome=outcomes[(pid + n) % 4],
                                          bytes=pid % MB, objects=300, requests=320,
                                          retries=int(n > 1 and pid % 3 == 1), memory_mb=1024))
                clock = end + 50
            failed = pid % 97 == 0
            if not failed:
                last = records[-1]
                records[-1] = Invocation(number=last.number, start=last.start, end=last.end, outcome="done")
            builder.add(ResultsHead(payload_id=pid, worker=w, invocations=len(records), timeline=tuple(records),
                                    failure="States.Timeout: timed out" if failed else "",
                                    failed_at=clock if failed else 0))
    report = {"status": "failed", "counts": {"copied": 99_000_000, "failed": 5_000, "skipped": 10},
              "failed_objects": [{"source": f"s3://src/k{i}", "target": f"s3://dst/k{i}", "error": "NotRun: x"}
                                 for i in range(MAX_FAILED_LISTED)],
              "failed_objects_not_listed": 4_000, "skipped_by_reason": {"already copied": 10}}

    # WHEN the page is rendered
    page = render(pic.picture(plan, report, builder))

    # THEN it is a few MB, not hundreds, and summarises: binned lanes, capped markers and lists
    assert len(page.encode()) < 4 * MB, len(page.encode())
    elements = parse(page)
    assert len(elements.having("lane")) == 300
    assert not builder.detailed and not elements.having("seg") and elements.having("bin")
    assert len(elements.having("marker")) == pic.MAX_MARKERS
    drawable = sum(lane.lost + lane.retries + lane.failed for lane in builder.lanes)
    assert builder.markers_not_shown == drawable - pic.MAX_MARKERS > 0
    assert f"{drawable - pic.MAX_MARKERS:,} more markers not drawn" in page
    assert len(elements.having("failure")) == MAX_FAILED_LISTED and "and 4,000 more failed objects" in page
    assert len(elements.having("failed-payload")) == pic.MAX_FAILED_PAYLOADS
    # AND the cost counts every invocation the heads recorded
    assert builder.cost.invocations == sum(lane.invocations for lane in builder.lanes) > 100_000


def test_strings_from_the_run_are_escaped_everywhere():
    evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"
    plan = plan_of([[0]], run_id="run-<b>1</b>")
    builder = pic.LaneBuilder(plan.worker_payloads, T0, T0 + 60_000)
    builder.add(ResultsHead(payload_id=0, worker=0, timeline=(Invocation(number=1, start=T0, end=T0 + 10,
                                                                         outcome="failed"),),
                            failure=f"AccessDenied: {evil}", failed_at=T0 + 20))
    report = {"status": "failed", "finished": evil,
              "failed_objects": [{"source": f"s3://src/{evil}", "target": f"s3://dst/{evil}", "error": evil}],
              "skipped_by_reason": {evil: 1}}
    page = render(pic.picture(plan, report, builder))
    assert "<script" not in page and "<img" not in page and "<b>1</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&gt;&lt;img" in page
    assert [tag for tag, _, _ in parse(page).tags].count("script") == 0


def test_a_small_run_draws_each_invocation_and_its_retry_cut_off_and_failure_in_its_lane_at_its_time():
    # GIVEN two workers: worker 0's payload 0 continued, was cut off, retried and done; worker 1's payload 1
    # failed for good at T0 + 50 s
    plan = plan_of([[0], [1]])
    builder = pic.LaneBuilder(plan.worker_payloads, T0, T0 + 60_000)
    builder.add(ResultsHead(payload_id=0, worker=0, timeline=(
        Invocation(number=1, start=T0 + 1_000, end=T0 + 10_000, outcome="continued", bytes=5 * MB, objects=5),
        Invocation(number=2, start=T0 + 10_100, end=T0 + 20_000, outcome="lost"),
        Invocation(number=3, start=T0 + 30_000, end=T0 + 40_000, outcome="done", bytes=MB, objects=1, retries=1))))
    builder.add(ResultsHead(payload_id=1, worker=1, timeline=(
        Invocation(number=1, start=T0 + 2_000, end=T0 + 45_000, outcome="failed"),),
        failure="TransientError: SlowDown", failed_at=T0 + 50_000))
    page = render(pic.picture(plan, {"status": "failed", "counts": {"copied": 6, "failed": 1}}, builder))

    # THEN each lane holds its own invocations and markers, placed by time (600 px for 60 s)
    elements = parse(page)
    segs = [(lane, attrs["data-payload"], float(attrs["x"])) for _, attrs, lane in elements.having("seg")]
    assert segs == [(0, "0", 10.0), (0, "0", 101.0), (0, "0", 300.0), (1, "1", 20.0)]
    markers = {attrs["class"].split()[1]: (lane, attrs["transform"]) for _, attrs, lane in elements.having("marker")}
    assert markers == {"marker-lost": (0, "translate(200.0,0)"), "marker-retry": (0, "translate(300.0,0)"),
                       "marker-failed": (1, "translate(500.0,0)")}
    # AND the bytes over time sum to what the invocations copied
    assert abs(sum(builder.bytes_per_column) - 6 * MB) <= pic.COLUMNS
    assert re.search(r"<tr class=\"failed-payload\"><td>1</td><td>1</td><td>22:14:10</td>", page)


def test_the_cost_counts_what_the_invocations_recorded_at_list_prices():
    # GIVEN one worker whose payload took two invocations of 10 s each at 2,048 MB, the second a retry, with
    # 100 copy requests in all; and a finalizer that ran in one invocation
    plan = plan_of([[0]])
    builder = pic.LaneBuilder(plan.worker_payloads, T0, T0 + 60_000)
    builder.add(ResultsHead(payload_id=0, worker=0, timeline=(
        Invocation(number=1, start=T0, end=T0 + 10_000, outcome="failed", requests=40, memory_mb=2048),
        Invocation(number=2, start=T0 + 11_000, end=T0 + 21_000, outcome="done", requests=60, retries=1,
                   memory_mb=2048))))
    cost = pic.picture(plan, {"status": "succeeded", "timings": {"invocations": 1, "finalize_shards": 2}},
                       builder).cost
    # THEN: 40 GB-seconds; planner + 2 workers + finalizer; the plan's 22 transitions (9 fixed, 1 branch, 4 for the
    # payload, 4 for each of the 2 finalize shards' children) and one for the retry, which Step Functions charges
    # as a transition
    assert (cost.gb_seconds, cost.lambda_invocations, cost.state_transitions) == (40.0, 4, 23)
    # (the copy requests, and each invocation's two checkpoint writes)
    assert cost.requests == 100 + 2 * 2
    assert round(cost.s3_dollars, 8) == round((100 + 2 * 2) * 0.005 / 1000, 8)
    assert round(cost.step_functions_dollars, 8) == round(23 * 0.025 / 1000, 8)
    assert round(cost.lambda_dollars, 10) == round(40 * 0.0000166667 + 4 * 0.2 / 1e6, 10)


def test_heads_left_unread_when_time_runs_out_are_counted_on_the_page():
    # GIVEN 1,500 payloads' heads in S3 and a finalizer whose deadline comes after the first batch of reads
    s3 = MemoryS3()
    loc = ManifestLocation("m", "runs/r/")
    plan = plan_of([list(range(1_500))])
    for pid in range(1_500):
        manifest.write_head(s3, loc, ResultsHead(payload_id=pid, worker=0, timeline=(
            Invocation(number=1, start=T0 + pid, end=T0 + pid + 1, outcome="done"),)))
    looks = iter([False, True])
    # WHEN the page's lanes are gathered
    builder = pic.gather(s3, loc, plan, {"finished": "2023-11-14T22:14:20Z"}, T0, stop=lambda: next(looks))
    # THEN one batch was read, the rest counted, and the page says so
    assert (builder.payloads_seen, builder.unread) == (pic.HEADS_BETWEEN_CHECKS, 1_500 - pic.HEADS_BETWEEN_CHECKS)
    page = render(pic.picture(plan, {"status": "succeeded"}, builder))
    assert f"{1_500 - pic.HEADS_BETWEEN_CHECKS:,} payloads are not drawn" in page
