"""``sfncopy report ARN --html FILE``: the run's HTML report, the page the finalizer writes
(lambdas/reporting/), built here from the run's S3 files, with the plan's estimate for larger plans than the
finalizer computes it for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation
from lambdas.reporting import page


def save_html(s3: S3Gateway, location: ManifestLocation, report: Mapping[str, Any], path: Path) -> int:
    """Write the page to ``path``; its size in bytes."""
    data = page.build(s3, location, manifest.read_plan(s3, location), report,
                      max_estimated_copies=page.LOCAL_ESTIMATE_MAX_COPIES).encode()
    path.write_bytes(data)
    return len(data)
