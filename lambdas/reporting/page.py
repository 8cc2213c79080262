"""Write the run's HTML report next to report.json (the finalizer, at the end of a run); ``sfncopy report
--html`` builds the same page locally (sfncopy/report_html.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lambdas import estimate, manifest
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, RunPlan
from lambdas.reporting import html, picture

REPORT_HTML = "report.html"
# The S3 console opens an object in the browser with the Content-Type it was stored with.
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# The finalizer puts the plan's estimate beside the run's cost when the plan has at most this many copies:
# the estimate reads every payload and holds their tasks (a few MB here); past it, ``sfncopy report --html``
# shows it.
ESTIMATE_MAX_COPIES = 20_000


def plan_estimate(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, worker_memory_mb: int) -> dict[str, Any]:
    """``sfncopy plan``'s estimate of the run (lambdas/estimate.py), from every payload of the plan."""
    payloads = [manifest.read_payload(s3, loc, pid) for ids in plan.worker_payloads for pid in ids]
    return estimate.estimate(plan, payloads, worker_memory_mb).to_dict()


def build(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any],
          max_estimated_copies: int | None = ESTIMATE_MAX_COPIES, now_ms: int | None = None) -> str:
    """The page of the run at ``loc`` whose report.json is ``report``: its heads read from S3 (streamed), and
    the plan's estimate when the plan has at most ``max_estimated_copies`` copies (None: whatever its size)
    and the workers recorded their memory."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    builder = picture.gather(s3, loc, plan, report, now)
    wanted = max_estimated_copies is None or plan.totals.copies <= max_estimated_copies
    planned = plan_estimate(s3, loc, plan, builder.memory_mb) if wanted and builder.memory_mb else None
    return html.render(picture.picture(plan, report, builder, planned))


def write(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any]) -> str:
    """Write report.html in the run's folder; its s3:// URI."""
    page = build(s3, loc, plan, report)
    s3.put_bytes(loc.bucket, manifest.key(loc, REPORT_HTML), page.encode(), HTML_CONTENT_TYPE)
    return loc.uri(REPORT_HTML)
