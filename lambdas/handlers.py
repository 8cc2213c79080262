"""Lambda entry points: parse the event, call the core, serialise the result. Nothing else.

Handler strings in the template: ``lambdas.handlers.plan``, ``.copy``, ``.finalize``, ``.clean_up``; with
sharded planning also ``.prepare``, ``.plan_shard``, ``.collect`` and ``.assemble`` (lambdas/sharding/); with
restore_archived also ``.restore`` (lambdas/restoring/).
"""

from __future__ import annotations

import time
from typing import Any

from lambdas import cleanup, finalize_shards, finalizer, logs, planner, stored_config, worker
from lambdas.deadline import Deadline
from lambdas.finalizer_state import FinalizeCursor
from lambdas.gateway import S3Gateway, gateway_from_settings
from lambdas.models import ManifestLocation, PayloadTask, PlanPointer
from lambdas.restoring import stage as restoring
from lambdas.settings import Settings
from lambdas.sharding import assemble as assembling
from lambdas.sharding import prepare as preparing
from lambdas.sharding import publish, shard
from lambdas.sharding.partition import PartitionParams


def _setup() -> tuple[Settings, S3Gateway]:
    settings = Settings.from_environ()
    return settings, gateway_from_settings(settings.s3_max_attempts, settings.worker_threads)


def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id": <execution name>, "workers": <branch count>, "input": <execution input>}`` ->
    PlanPointer. The input is an s3_copy_config, or ``{"s3_copy_config_location": "s3://..."}`` naming one
    (lambdas/stored_config.py)."""
    logs.bind(run_id=event.get("run_id"))
    settings, s3 = _setup()
    settings = settings.with_branches(event.get("workers"))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    document = stored_config.resolve_input(event.get("input"), s3)  # a scheduled run names a stored config
    return planner.plan_run(document, str(event.get("run_id", "")), settings, s3, now).to_dict()


def prepare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id", "workers", "input"}`` as Plan's, plus ``"shards"`` (the wanted count; absent: the
    partition estimates it) -> the shards' pointer (lambdas/sharding/prepare.py, Prepared) with
    ``"generation": 0``."""
    logs.bind(run_id=event.get("run_id"))
    settings, s3 = _setup()
    settings = settings.with_branches(event.get("workers"))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    shards = event.get("shards")
    params = PartitionParams(shards=int(shards)) if shards is not None else PartitionParams()
    document = stored_config.resolve_input(event.get("input"), s3)  # a scheduled run names a stored config
    prepared = preparing.prepare_run(document, str(event.get("run_id", "")), settings, s3, now, params)
    return {**prepared.to_dict(), "generation": 0}


def plan_shard(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ShardJob (``run_id``, ``manifest``, ``shard``: a Map item) -> ShardAnswer (``done`` false: call
    again with this answer)."""
    job = shard.ShardJob.from_event(event)
    logs.bind(run_id=job.run_id, shard=job.spec.index)
    settings, s3 = _setup()
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    return shard.plan_shard(job, s3, deadline, settings.worker_threads).to_dict()


def collect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id", "manifest", "generation"}`` -> the shards of ``generation`` (the ranges the shards
    before handed on; ``"shards": 0`` when none), as ``prepare`` answers, with that generation."""
    run_id, loc = str(event["run_id"]), ManifestLocation.from_dict(event["manifest"])
    generation = int(event["generation"])
    logs.bind(run_id=run_id)
    _, s3 = _setup()
    return {**preparing.collect_spills(run_id, loc, s3, generation).to_dict(), "generation": generation}


def assemble(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id", "manifest"}`` -> PlanPointer, as Plan answers (the plan written in its layout)."""
    run_id, loc = str(event["run_id"]), ManifestLocation.from_dict(event["manifest"])
    logs.bind(run_id=run_id)
    _, s3 = _setup()
    return publish.publish(assembling.assemble(run_id, loc, s3), loc, s3).to_dict()


def copy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: PayloadTask -> PayloadTask (``done`` false: call again with this answer). Record-failure mode,
    the child execution's Catch: the PayloadTask with ``"error": {"Error": ..., "Cause": ...}`` ->
    ``{"payload": <id>, "failure": "<ErrorName>: <readable cause>"}``, recorded in the payload's checkpoint."""
    task = PayloadTask.from_event(event)
    logs.bind(run_id=task.run_id, worker=task.worker, payload=task.payload)
    settings, s3 = _setup()
    if "error" in event:
        return {"payload": task.payload, "failure": worker.record_failure(task, event["error"], s3)}
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    # The context's memory_limit_in_mb (Lambda developer guide, "Using the Lambda context object to retrieve
    # Python function information"): recorded with the invocation for the report's GB-seconds.
    memory_mb = int(getattr(context, "memory_limit_in_mb", 0) or 0)
    return worker.copy_payload(task, settings, s3, deadline, memory_mb).to_dict()


def restore(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: RestoreProgress (``run_id``, ``manifest``; the first call has nothing else) -> RestoreProgress
    (``done`` false: wait ``wait_seconds``, then call again with this answer). Record-failure mode, the restore
    branch's Catch: the event with ``"error"`` -> ``{"failed": <objects settled as failed>}``."""
    progress = restoring.RestoreProgress.from_event(event)
    logs.bind(run_id=progress.run_id)
    settings, s3 = _setup()
    if "error" in event:
        return {"failed": restoring.record_failure(progress, event["error"], s3)}
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    return restoring.restore_step(progress, settings, s3, deadline).to_dict()


def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The finalizer's steps, by the event's ``mode`` (lambdas/finalize_shards.py):

    - ``{"mode": "shards", "pointer": PlanPointer, "shard_rows": n}`` (StartFinalize) -> ``{"items": <key of
      the FinalizeShards Map's items>, "shards": <count>}``;
    - ``{"mode": "shard", "pointer", "shard": <a Map item>, "cursor"}`` (a FinalizeShards child) ->
      ``{"done": true, "shard": <index>, "rows": n}``, or the event with ``"done": false`` and the next cursor;
    - ``{"mode": "merge", "pointer", "cursor"}`` (Finalize, FinalizeMore) -> RunSummary, or the event with
      ``"done": false`` and the next cursor. Raises TooManyFailedObjectsError past max_failed_objects;
    - no mode: PlanPointer, with a ``cursor`` when the state machine loops (step 0 the first time): the whole
      run in one chain, as state machines before the fan-out call it (an execution keeps the definition it
      started with); without a cursor, the whole finalization in this invocation."""
    mode = event.get("mode")
    pointer = PlanPointer.from_dict(event["pointer"] if mode else event)
    cursor = FinalizeCursor.from_event(event)
    logs.bind(run_id=pointer.run_id)
    settings, s3 = _setup()
    if mode == "shards":
        rows = int(event.get("shard_rows") or finalize_shards.DEFAULT_SHARD_ROWS)
        shards = finalizer.plan_finalize(pointer, s3, rows)
        return {"items": finalize_shards.shards_key(pointer.manifest), "shards": len(shards)}
    if cursor is None:  # a state machine without the Finalize loop could not call again: no deadline
        if mode:
            raise ValueError(f"finalizer: a {mode!r} event needs a cursor (the state machine's first is step 0)")
        return finalizer.finalize(pointer, settings, s3).to_dict()
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    if mode == "shard":
        spec = finalize_shards.ShardSpec.from_dict(event["shard"])
        logs.bind(run_id=pointer.run_id, shard=spec.index)
        done = finalizer.shard_step(pointer, spec, settings, s3, deadline, cursor)
        if isinstance(done, FinalizeCursor):
            return {**event, "done": False, "cursor": done.to_dict()}
        return {"done": True, "shard": done.index, "rows": done.rows}  # small: the Map keeps it (256 KiB)
    if mode not in (None, "merge"):
        raise ValueError(f"finalizer: unknown mode {mode!r} (expected shards, shard or merge)")
    step = finalizer.merge_step if mode == "merge" else finalizer.finalize_step
    outcome = step(pointer, settings, s3, deadline, cursor)
    if isinstance(outcome, FinalizeCursor):
        return {**event, "done": False, "cursor": outcome.to_dict()}  # the event as it came
    return outcome.to_dict()


def clean_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id": ..., "error": {"Error": ..., "Cause": ...}}`` -> what was aborted and written."""
    logs.bind(run_id=event.get("run_id"))
    settings, s3 = _setup()
    return cleanup.clean_up(str(event["run_id"]), event.get("error") or {}, settings, s3)
