"""After a failed execution: abort every multipart upload the run started, write failure.json, and give
the state machine's Fail state a readable error and cause.

The state machine's Catch passes the Step Functions error object ``{"Error": name, "Cause": text}``. For
a Lambda error the Cause is itself JSON (``errorMessage``, ``errorType``, ``stackTrace``); the readable
cause is its ``errorMessage``.

Only this run's uploads are aborted (two runs may share a stack and its target buckets): the upload ids
the plan and the workers' checkpoints recorded, and, as a safety net, uploads listed on a target whose
key is one of this run's target keys and that started at or after the plan was made. A finalizer that
stopped between two invocations also leaves report.csv's upload open in the manifest location: its saved
state names it (lambdas/finalizer_state.py).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from lambdas import finalizer_state, limits, logs, manifest
from lambdas.errors import ObjectError, SourceNotFoundError
from lambdas.finalizer import listing_roots
from lambdas.gateway import S3Gateway, UploadInfo
from lambdas.models import ManifestLocation, ObjectResult, RunPlan
from lambdas.report import ChunkJoin, Tally, result_row
from lambdas.report_files import REPORT_CSV
from lambdas.settings import Settings

log = logs.get_logger("cleanup")

ABORTED = "Aborted: the run failed before this upload was completed"


def clean_up(run_id: str, error: dict[str, Any], settings: Settings, s3: S3Gateway) -> dict[str, Any]:
    name = str(error.get("Error") or "UnknownError")
    raw_cause = error.get("Cause")
    cause = readable_cause(raw_cause, name)
    loc = manifest.run_location(settings.manifest_bucket, settings.manifest_prefix, run_id)
    failure_uri = loc.uri(manifest.FAILURE)

    index = s3.get_json_or_none(loc.bucket, manifest.key(loc, manifest.INDEX))
    aborted: list[dict[str, str]] = []
    partial: dict[str, Any] | None = None
    if index is None:
        log.info("no plan to clean up", extra={"error": name})
    else:
        plan = RunPlan.from_dict(index)
        aborted, counts = _clean_run(plan, loc, s3.for_buckets(plan.config.bucket_access()))
        aborted += _abort_report_upload(s3, loc)
        partial = counts.as_dict()

    failure = {
        "run_id": run_id,
        "error": name,
        "cause": cause,
        "raw_cause": raw_cause if isinstance(raw_cause, str) else json.dumps(raw_cause),
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": loc.uri(manifest.INDEX) if index is not None else None,
        "aborted_uploads": aborted,
        "partial_report": partial,
    }
    s3.put_json(loc.bucket, manifest.key(loc, manifest.FAILURE), failure)
    log.info("run cleaned up", extra={"error": name, "aborted_uploads": len(aborted), "report": failure_uri})
    return {
        "run_id": run_id,
        "error": name,
        "cause": f"{cause} (failure report: {failure_uri})",
        "aborted_uploads": len(aborted),
        "failure_report": failure_uri,
        # For the run's notification (generator/state_machine.py, notification_summaries): the cause cut to a
        # length whose JSON stays far below an SNS message's 256 KB whatever its characters (limits.py), and what
        # the run had done when it failed (null before a plan existed): the counts
        # and bytes only, never failure.json's list of failed objects (the state must stay small).
        "notified_cause": notified_cause(f"{cause} (failure report: {failure_uri})"),
        "partial": None if partial is None else {"counts": partial["counts"], "bytes_copied": partial["bytes_copied"]},
    }


def notified_cause(cause: str) -> str:
    """``cause`` as a notification carries it: at most limits.MAX_NOTIFIED_CAUSE_CHARACTERS, the cut marked."""
    limit = limits.MAX_NOTIFIED_CAUSE_CHARACTERS
    return cause if len(cause) <= limit else cause[:limit - len(CUT)] + CUT


CUT = " [...]"


def readable_cause(cause: Any, name: str) -> str:
    """The errorMessage of a Lambda error's JSON Cause; otherwise the Cause as it is (or the name)."""
    if cause is None or cause == "":
        return name
    if not isinstance(cause, str):
        return json.dumps(cause)
    try:
        data = json.loads(cause)
    except ValueError:
        return cause
    message = data.get("errorMessage") if isinstance(data, dict) else None
    return message if isinstance(message, str) and message else cause


def started_since(initiated: str, created_at: str) -> bool:
    """Whether an upload started at or after the plan was made (unknown times count as not ours)."""
    try:
        started, planned = _utc(initiated), _utc(created_at)
    except ValueError:
        return False
    return started >= planned


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clean_run(plan: RunPlan, loc: ManifestLocation, s3: S3Gateway) -> tuple[list[dict[str, str]], Tally]:
    """Abort the run's open uploads; return them and the tally of whatever finished."""
    live = [(bucket, upload) for bucket, prefix in listing_roots(plan.config.targets)
            for upload in s3.list_multipart_uploads(bucket, prefix)]
    known = {split.upload_id for split in plan.splits if split.upload_id}
    # Uploads with an id we did not record: ours only if the key is one of this run's target keys and
    # the upload started after the plan. Finding the run's keys means reading payloads, so only then.
    unknown = {(bucket, u.key) for bucket, u in live
               if u.upload_id not in known and started_since(u.initiated, plan.created_at)}
    planned = {(s.target_bucket, s.target_key) for s in plan.splits} & unknown

    counts = Tally()
    joins = {split.copy_id: ChunkJoin(split) for split in plan.splits}
    for payload_id in sorted({pid for worker in plan.worker_payloads for pid in worker}):
        checkpoint = manifest.read_checkpoint(s3, loc, payload_id)
        if checkpoint is not None:
            known.update(upload_id for _task, upload_id in checkpoint.open_uploads)
            for result in checkpoint.results:
                _add_result(result, joins, counts)
        if unknown - planned:
            payload = manifest.read_payload(s3, loc, payload_id)
            planned.update((t.target_bucket, t.target_key) for t in payload.tasks
                           if (t.target_bucket, t.target_key) in unknown)

    aborted: list[dict[str, str]] = []
    for bucket, upload in live:
        ours_by_key = (bucket, upload.key) in planned and started_since(upload.initiated, plan.created_at)
        if upload.upload_id in known or ours_by_key:
            _abort(s3, bucket, upload)
            aborted.append({"bucket": bucket, "key": upload.key, "upload_id": upload.upload_id})
    aborted_ids = {a["upload_id"] for a in aborted}
    for join in joins.values():
        if join.chunks:
            counts.add(join.row(ABORTED if join.split.upload_id in aborted_ids else ""))
    return aborted, counts


def _abort_report_upload(s3: S3Gateway, loc: ManifestLocation) -> list[dict[str, str]]:
    """Abort the report.csv upload the finalizer's latest saved state names, if any. A failure to do so is
    logged, not raised: the execution's own error is what Cleanup must report, and the manifest bucket's
    AbortIncompleteMultipartUpload lifecycle rule (generator/template.py) removes the upload's parts in the
    end (Amazon S3 user guide, "Configuring a bucket lifecycle configuration to delete incomplete multipart
    uploads")."""
    try:
        upload_id = finalizer_state.latest_upload(s3, loc)
        if not upload_id:
            return []
        key = manifest.key(loc, REPORT_CSV)
        s3.abort_multipart_upload(loc.bucket, key, upload_id)
    except (ObjectError, SourceNotFoundError) as err:
        log.error("could not abort the report.csv upload", extra={"error": f"{type(err).__name__}: {err}"})
        return []
    log.info("aborting upload", extra={"key": key, "upload_id": upload_id})
    return [{"bucket": loc.bucket, "key": key, "upload_id": upload_id}]


def _add_result(result: ObjectResult, joins: dict[int, ChunkJoin], counts: Tally) -> None:
    join = joins.get(result.copy_id) if result.method == "chunk" else None
    if join is not None:
        join.add(result)
    else:
        counts.add(result_row(result))


def _abort(s3: S3Gateway, bucket: str, upload: UploadInfo) -> None:
    log.info("aborting upload", extra={"key": upload.key, "upload_id": upload.upload_id})
    s3.abort_multipart_upload(bucket, upload.key, upload.upload_id)
