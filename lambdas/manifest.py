"""Where a run's files live in the manifest location, and reading/writing them.

Layout under ``<SFNCOPY_MANIFEST_PREFIX>runs/<run_id>/``::

    plan/index.json              RunPlan: config, totals, worker -> payload ids, split objects
    plan/payloads/00042.json     Payload: the tasks of payload 42
    plan/skipped.json            [SkippedObject]: what the plan does not copy, and why
    results/00042.json           PayloadCheckpoint: the worker's results for payload 42 (rewritten as it goes)
    report.json, report.csv      written by the finalizer
    failure.json                 written by cleanup when the execution fails
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdas.gateway import S3Gateway
from lambdas.models import ManifestLocation, Payload, PayloadCheckpoint, RunPlan, SkippedObject

INDEX = "plan/index.json"
SKIPPED = "plan/skipped.json"
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
FAILURE = "failure.json"

# Manifest files read or written at once (the planner's payloads; the finalizer's and cleanup's reads):
# each is a small request (~20 ms), so a run of 1,000 payloads takes about a second instead of forty.
READ_THREADS = 16

# Execution names are 1-80 characters of letters, digits, "-" and "_"; the run id is the execution
# name, so it is safe in an S3 key. Anything else is refused rather than escaped.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


def run_location(bucket: str, base_prefix: str, run_id: str) -> ManifestLocation:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must be 1-80 letters, digits, '-', '_' or '.'")
    return ManifestLocation(bucket=bucket, prefix=f"{base_prefix}runs/{run_id}/")


def payload_key(loc: ManifestLocation, payload_id: int) -> str:
    return f"{loc.prefix}plan/payloads/{payload_id:05d}.json"


def results_key(loc: ManifestLocation, payload_id: int) -> str:
    return f"{loc.prefix}results/{payload_id:05d}.json"


def key(loc: ManifestLocation, name: str) -> str:
    return f"{loc.prefix}{name}"


# --- reading and writing ----------------------------------------------------------------------------
def write_plan(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, payloads: list[Payload],
               skipped: list[SkippedObject]) -> None:
    """Write payloads (concurrently) and skipped first, the index last: an index always points at
    complete files."""
    def write(payload: Payload) -> None:
        s3.put_json(loc.bucket, payload_key(loc, payload.payload_id), payload.to_dict())

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for _ in pool.map(write, payloads):  # consume, so the first failure is raised here
            pass
    s3.put_json(loc.bucket, key(loc, SKIPPED), [s.to_dict() for s in skipped])
    s3.put_json(loc.bucket, key(loc, INDEX), plan.to_dict())


def read_plan(s3: S3Gateway, loc: ManifestLocation) -> RunPlan:
    return RunPlan.from_dict(s3.get_json(loc.bucket, key(loc, INDEX)))


def read_payload(s3: S3Gateway, loc: ManifestLocation, payload_id: int) -> Payload:
    return Payload.from_dict(s3.get_json(loc.bucket, payload_key(loc, payload_id)))


def read_skipped(s3: S3Gateway, loc: ManifestLocation) -> list[SkippedObject]:
    return [SkippedObject.from_dict(s) for s in s3.get_json(loc.bucket, key(loc, SKIPPED))]


def read_checkpoint(s3: S3Gateway, loc: ManifestLocation, payload_id: int) -> PayloadCheckpoint | None:
    data: Any = s3.get_json_or_none(loc.bucket, results_key(loc, payload_id))
    return None if data is None else PayloadCheckpoint.from_dict(data)


def write_checkpoint(s3: S3Gateway, loc: ManifestLocation, checkpoint: PayloadCheckpoint) -> None:
    s3.put_json(loc.bucket, results_key(loc, checkpoint.payload_id), checkpoint.to_dict())


def read_payloads(s3: S3Gateway, loc: ManifestLocation, payload_ids: Iterable[int],
                  with_checkpoints: bool = True) -> Iterator[tuple[Payload, PayloadCheckpoint | None]]:
    """Each payload with its checkpoint (None without one, or when not asked), in the given order, read
    concurrently."""
    def read(payload_id: int) -> tuple[Payload, PayloadCheckpoint | None]:
        payload = read_payload(s3, loc, payload_id)
        return payload, read_checkpoint(s3, loc, payload_id) if with_checkpoints else None

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        yield from pool.map(read, payload_ids)
