"""``sfncopy report ARN --html FILE``: the run's HTML report (lambdas/reporting/, the page the finalizer writes),
built here from the run's S3 files with the plan's estimate beside the run's cost."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdas import estimate, manifest
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation
from lambdas.reporting import html, picture


def save_html(s3: S3Gateway, location: ManifestLocation, report: Mapping[str, Any], path: Path,
              worker_memory_mb: int | None = None) -> int:
    """Write the page to ``path``; its size in bytes. The plan's estimate is ``sfncopy plan``'s (every payload
    read, as it does), for workers of ``worker_memory_mb`` (default: what the run's workers recorded)."""
    plan = manifest.read_plan(s3, location)
    builder = picture.gather(s3, location, plan, report, int(time.time() * 1000))
    payloads = [manifest.read_payload(s3, location, pid) for ids in plan.worker_payloads for pid in ids]
    memory = worker_memory_mb or builder.memory_mb
    planned = estimate.estimate(plan, payloads, memory).to_dict() if memory else None
    page = html.render(picture.picture(plan, report, builder, planned))
    data = page.encode()
    path.write_bytes(data)
    return len(data)
