"""Write the run's HTML report next to report.json (the finalizer, at the end of a run); ``sfncopy report
--html`` builds the same page locally (sfncopy/report_html.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdas import estimate, manifest
from lambdas.deadline import Deadline
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, RunPlan
from lambdas.reporting import html, picture

REPORT_HTML = "report.html"
# The S3 console opens an object in the browser with the Content-Type it was stored with.
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# The plan's estimate reads every payload and holds all their tasks (a few hundred bytes each), so it is put
# beside the run's cost only for plans up to these many copies: in the finalizer (a few MB), and on the user's
# machine with ``sfncopy report --html`` (about 0.5 GB).
ESTIMATE_MAX_COPIES = 20_000
LOCAL_ESTIMATE_MAX_COPIES = 1_000_000


def plan_estimate(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, worker_memory_mb: int) -> dict[str, Any]:
    """``sfncopy plan``'s estimate of the run (lambdas/estimate.py), from every payload of the plan."""
    files = manifest.payload_files(s3, loc, plan)  # where each payload's file is (both planners' layouts)
    with ThreadPoolExecutor(max_workers=manifest.READ_THREADS) as pool:
        payloads = list(pool.map(lambda pid: manifest.read_payload_file(s3, loc, files[pid]),
                                 [pid for ids in plan.worker_payloads for pid in ids]))
    return estimate.estimate(plan, payloads, worker_memory_mb).to_dict()


def build(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any],
          max_estimated_copies: int = ESTIMATE_MAX_COPIES, now_ms: int | None = None,
          deadline: Deadline | None = None) -> str:
    """The page of the run at ``loc`` whose report.json is ``report``: its heads read from S3 (streamed, until
    ``deadline`` is near: the rest are counted on the page), and the plan's estimate when the plan has at most
    ``max_estimated_copies`` copies and the workers recorded their memory (else the page says why it is
    missing)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    builder = picture.gather(s3, loc, plan, report, now, stop=deadline.near if deadline is not None else lambda: False)
    planned = None
    if not builder.memory_mb:
        note = "No invocation recorded its memory, so the plan's estimate is not shown."
    elif builder.unread:
        note = "The finalizer ran out of time before the plan's estimate; sfncopy report ARN --html FILE shows it."
    elif plan.totals.copies > max_estimated_copies:
        note = (f"The plan's estimate is not recomputed here for {plan.totals.copies:,} copies (it holds every "
                + ("task; sfncopy report ARN --html FILE shows it)." if max_estimated_copies < LOCAL_ESTIMATE_MAX_COPIES
                   else "task); sfncopy plan showed it before the run."))
    else:
        note, planned = "", plan_estimate(s3, loc, plan, builder.memory_mb)
    page = picture.picture(plan, report, builder, planned)
    page.cost.estimate_note = note
    return html.render(page)


def write(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any],
          deadline: Deadline | None = None) -> str:
    """Write report.html in the run's folder (its lanes as far as the heads read before ``deadline`` is near);
    its s3:// URI."""
    page = build(s3, loc, plan, report, deadline=deadline)
    s3.put_bytes(loc.bucket, manifest.key(loc, REPORT_HTML), page.encode(), HTML_CONTENT_TYPE)
    return loc.uri(REPORT_HTML)
