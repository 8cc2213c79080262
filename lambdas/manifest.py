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
from json.encoder import encode_basestring_ascii as json_string
from typing import Any

from lambdas.gateway import JSON_CONTENT_TYPE, S3Gateway, encode_json
from lambdas.models import CopyTask, ManifestLocation, Payload, PayloadCheckpoint, RunPlan, SkippedObject

INDEX = "plan/index.json"
SKIPPED = "plan/skipped.json"
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
FAILURE = "failure.json"

# Manifest files read or written at once (the planner's payloads; the finalizer's and cleanup's reads):
# each is a small request (~20 ms), so a run of 1,000 payloads takes about a second instead of forty.
READ_THREADS = 16

# The run id is the execution name. Step Functions accepts 1-80 characters except white space, brackets
# < > { } [ ], wildcards ? *, the characters " # % \ ^ | ~ ` $ & , ; : /, control characters (U+0000-001F,
# U+007F-009F) and surrogates (Step Functions API reference, StartExecution, "name"). Every name it accepts
# is a valid S3 key segment (Amazon S3 user guide, "Naming Amazon S3 objects": any UTF-8 characters), so the
# run's folder is the name itself; only "." and ".." are refused, as path segments that tools resolve.
MAX_RUN_ID_LENGTH = 80
_FORBIDDEN_IN_NAMES = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ud800-\udfff]')


def run_id_problem(run_id: str) -> str:
    """Why ``run_id`` cannot be a run id ("" when it can): exactly the execution names AWS refuses."""
    if not 1 <= len(run_id) <= MAX_RUN_ID_LENGTH:
        return f"run id {run_id!r} must be 1-{MAX_RUN_ID_LENGTH} characters (Step Functions' execution name limit)"
    bad = _FORBIDDEN_IN_NAMES.search(run_id)
    if bad:
        return (f"run id {run_id!r} contains {bad.group()!r}, which Step Functions refuses in execution names "
                "(white space, brackets, ? * \" # % \\ ^ | ~ ` $ & , ; : / and control characters)")
    if run_id in (".", ".."):
        return f"run id {run_id!r} cannot name a folder of run files; choose another execution name"
    return ""


def run_location(bucket: str, base_prefix: str, run_id: str) -> ManifestLocation:
    problem = run_id_problem(run_id)
    if problem:
        raise ValueError(problem)
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
        s3.put_bytes(loc.bucket, payload_key(loc, payload.payload_id), encode_payload(payload), JSON_CONTENT_TYPE)

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for _ in pool.map(write, payloads):  # consume, so the first failure is raised here
            pass
    s3.put_json(loc.bucket, key(loc, SKIPPED), [s.to_dict() for s in skipped])
    s3.put_json(loc.bucket, key(loc, INDEX), plan.to_dict())


_COLUMNS = encode_json(CopyTask._fields).decode()


def encode_payload(payload: Payload) -> bytes:
    """A payload file's bytes: exactly ``encode_json(payload.to_dict())``, with the common row (a whole
    copy with nothing to compare) written out here. The json module would first cut each such row from
    its task and then make a string per value and per separator: twice the time, at a million rows.
    Strings go through the json module's own escaping, and ints print as it prints them, so the bytes are
    its bytes (tests/unit/test_models.py checks tricky keys)."""
    rows: list[str] = []
    for task in payload.tasks:
        (task_id, copy_id, source_bucket, source_key, size, etag, target_bucket, target_key, method,
         _part_size, _first_part, _last_part, _upload_id, compare_checksum) = task
        if method == "chunk" or compare_checksum:  # every column, as Payload.to_dict writes it
            rows.append(encode_json(task).decode())
        else:
            rows.append(f"[{json_string(task_id)},{copy_id:d},{json_string(source_bucket)},{json_string(source_key)},"
                        f"{size:d},{json_string(etag)},{json_string(target_bucket)},{json_string(target_key)},"
                        f"{json_string(method)}]")
    return (f'{{"payload_id":{payload.payload_id:d},"worker":{payload.worker:d},"columns":{_COLUMNS},'
            f'"tasks":[{",".join(rows)}]}}').encode()


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
