"""Write the run's HTML report next to report.json (the finalizer, at the end of a run; ``sfncopy report
--html`` uses the same functions to write it locally)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, RunPlan
from lambdas.reporting import html, picture

REPORT_HTML = "report.html"
# The S3 console opens an object in the browser with the Content-Type it was stored with.
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


def build(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any],
          plan_estimate: Mapping[str, Any] | None = None, now_ms: int | None = None) -> str:
    """The page of the run at ``loc`` whose report.json is ``report`` (its heads read from S3, streamed)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return html.render(picture.picture(plan, report, picture.gather(s3, loc, plan, report, now), plan_estimate))


def write(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, report: Mapping[str, Any]) -> str:
    """Write report.html in the run's folder; its s3:// URI."""
    page = build(s3, loc, plan, report)
    s3.put_bytes(loc.bucket, manifest.key(loc, REPORT_HTML), page.encode(), HTML_CONTENT_TYPE)
    return loc.uri(REPORT_HTML)
