"""The HTML report of an emulator run, opened in headless chromium: a run on two workers whose worker times
out (S3 stalls its copies past the Lambda timeout), is retried by Step Functions and resumes, with one object
denied by its target bucket. The page (the finalizer's report.html) has one lane per worker, the timeout and
the retry in the lane and at the time of the invocations that had them (as their checkpoint heads recorded
them), one row for the failed object, and no console message; ``sfncopy report --html`` writes the same lanes
with the plan's estimate beside the run's cost."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest

from lambdas.timeline import Invocation
from tests.e2e import support
from tests.e2e.browser import chromium, open_page
from tests.e2e.conftest import Stacks, World
from tests.e2e.support import SOURCE_SCOPE, TARGET_SCOPE, Stack, StackSpec, rich
from tests.unit.test_report_html import parse

pytestmark = pytest.mark.e2e

# Two workers with a short timeout and one thread each, so a stalled invocation runs into its timeout soon.
HTML = StackSpec("sfncopy-e2e-html", workers=2, worker_timeout_seconds=5, worker_threads=1,
                 source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE)


@pytest.fixture
def html_stack(stacks: Stacks) -> Stack:
    return stacks.get(HTML)


def heads(world: World, stack: Stack, name: str) -> list[dict[str, Any]]:
    prefix = stack.run_prefix(name) + "results/"
    keys = [o["Key"] for o in world.s3.list_objects_v2(Bucket=stack.manifest_bucket, Prefix=prefix).get("Contents", [])]
    return [json.loads(world.s3.get_object(Bucket=stack.manifest_bucket, Key=k)["Body"].read()) for k in keys]


def test_the_report_page_shows_each_worker_its_timeout_retry_and_failed_object_in_a_browser(
        world: World, html_stack: Stack, tmp_path) -> None:
    chromium()  # skips, saying why, before the run when there is no browser
    # GIVEN 120 small objects copied to one target, and one more to a second target that denies writes
    objects = [rich(f"in/h/{i:03d}.txt", 1_500 + i, "text/plain") for i in range(120)]
    denied = rich("in/h/denied.bad", 300)
    source, target, refusing = world.source(*objects, denied), world.target(), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/h/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"},
                                        {"file_types": ["bad"], "s3_bucket": refusing, "s3_path": "out/"}],
                                       max_failed_objects=1)
    deny = {"deny": [{"bucket": refusing, "operations": ["CopyObject"]}]}
    world.emulator.set_faults({"s3": deny})
    name = support.execution_name("html")
    started = time.monotonic()
    process = support.start_cli(world.endpoint, html_stack, document, name, world.work_dir)

    # WHEN, 20 copies in, S3 stalls every copy (SlowDown) until a worker invocation runs into its timeout
    support.wait_until(lambda: int(world.emulator.stats()["s3_requests"].get("CopyObject", 0)) >= 20, timeout=60,
                       what="20 copies")
    world.emulator.set_faults({"s3": {**deny, "slow_down_fraction": 1.0, "operations": ["CopyObject"]}})
    support.wait_until(lambda: any("Task timed out" in b and name in b for b in support.invocation_logs(
        world.emulator.log_dir, html_stack.worker_function)), timeout=60, interval=0.1, what="a worker timeout")
    world.emulator.set_faults({"s3": deny})
    run = support.finish_cli(process, html_stack, name, started)
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"

    # THEN the heads recorded the cut-off invocation and the retry after it
    cut_off: dict[int, list[Invocation]] = {}
    retried: dict[int, list[Invocation]] = {}
    for head in heads(world, html_stack, name):
        for record in (Invocation.from_dict(r) for r in head.get("timeline", ())):
            if record.outcome == "lost":
                cut_off.setdefault(head["worker"], []).append(record)
            if record.retries:
                retried.setdefault(head["worker"], []).append(record)
    assert cut_off and set(retried) >= set(cut_off), (cut_off, retried)
    # AND the finalizer's report.html, opened in chromium, shows them in their lanes
    report = support.read_json(world.s3, f"s3://{html_stack.manifest_bucket}/{html_stack.run_prefix(name)}report.json")
    page = tmp_path / "report.html"
    page.write_text(support.read_text(world.s3, report["report_html"]), encoding="utf-8")
    loaded = open_page(page, tmp_path / "report.png")
    assert loaded.console == [], loaded.console
    assert (tmp_path / "report.png").stat().st_size > 10_000
    dom = parse(loaded.dom)
    assert sorted(attrs["data-worker"] for _, attrs, _ in dom.having("lane")) == ["0", "1"]
    lost_marks = sorted(lane for _, _, lane in dom.having("marker-lost"))
    assert lost_marks == sorted(w for w, records in cut_off.items() for _ in records)
    retry_marks = sorted(lane for _, _, lane in dom.having("marker-retry"))
    assert retry_marks == sorted(w for w, records in retried.items() for _ in records)
    # (at the time they happened: a marker's x is its time on the 600 px axis from the plan to the report)
    t0, t1 = report_axis(report)
    for _, attrs, lane in dom.having("marker-lost"):
        x = float(attrs["transform"].removeprefix("translate(").split(",")[0])
        assert any(abs(x - (r.end - t0) * 600 / (t1 - t0)) < 1 for r in cut_off[lane or 0]), attrs
    # AND one row for the failed object, with its error and a fix
    failures = dom.having("failure")
    assert len(failures) == 1
    assert f"s3://{source}/in/h/denied.bad" in loaded.dom and "AccessDenied" in loaded.dom

    # WHEN the user writes the page with the CLI
    local = tmp_path / "cli.html"
    done = subprocess.run([*support.CLI, "report", run.arn, "--html", str(local), "--env", support.ENV],
                          cwd=support.ROOT, env=support.process_environment(world.endpoint, html_stack.spec),
                          capture_output=True, text=True, timeout=120, check=False)
    # THEN it has the same lanes and markers, and the plan's estimate beside the run's cost
    assert done.returncode == 0, done.stderr
    cli_dom = parse(local.read_text(encoding="utf-8"))
    assert len(cli_dom.having("lane")) == 2 and len(cli_dom.having("marker-lost")) == len(lost_marks)
    for text in (local.read_text(encoding="utf-8"), loaded.dom):
        assert re.search(r'<th>state transitions</th><td class="n">[\d,]+</td><td class="n">[\d,]+</td>', text)
        assert 'id="estimate-note"' not in text


def report_axis(report: dict[str, Any]) -> tuple[int, int]:
    """The page's time axis: from the plan's creation to report.json's finish (lambdas/reporting/picture.py)."""
    from lambdas.reporting.picture import epoch_ms

    return epoch_ms(report["started"]), epoch_ms(report["finished"]) + 999
