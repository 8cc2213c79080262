"""Lambda entry points: parse the event, call the core, serialise the result. Nothing else.

Handler strings in the template: ``lambdas.handlers.plan``, ``.copy``, ``.finalize``, ``.clean_up``; with
sharded planning also ``.prepare``, ``.plan_shard``, ``.collect`` and ``.assemble`` (lambdas/sharding/).
"""

from __future__ import annotations

import time
from typing import Any

from lambdas import cleanup, finalizer, logs, planner, stored_config, worker
from lambdas.deadline import Deadline
from lambdas.finalizer_state import FinalizeCursor
from lambdas.gateway import S3Gateway, gateway_from_settings
from lambdas.models import ManifestLocation, PayloadTask, PlanPointer
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


def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: PlanPointer, with a ``cursor`` when the state machine loops on the finalizer (step 0 the first
    time) -> RunSummary when the run is finalized, else the event itself with ``"done": false`` and the
    cursor to call again with (as the worker's PayloadTask loop). Without a cursor the whole finalization
    runs in this invocation, as before cursors. Raises TooManyFailedObjectsError past max_failed_objects."""
    pointer = PlanPointer.from_dict(event)
    cursor = FinalizeCursor.from_event(event)
    logs.bind(run_id=pointer.run_id)
    settings, s3 = _setup()
    if cursor is None:  # a state machine without the Finalize loop could not call again: no deadline
        return finalizer.finalize(pointer, settings, s3).to_dict()
    deadline = Deadline(context.get_remaining_time_in_millis, settings.deadline_margin_seconds)
    outcome = finalizer.finalize_step(pointer, settings, s3, deadline, cursor)
    if isinstance(outcome, FinalizeCursor):
        return {**event, "done": False, "cursor": outcome.to_dict()}  # the planner's pointer as it came
    return outcome.to_dict()


def clean_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Event: ``{"run_id": ..., "error": {"Error": ..., "Cause": ...}}`` -> what was aborted and written."""
    logs.bind(run_id=event.get("run_id"))
    settings, s3 = _setup()
    return cleanup.clean_up(str(event["run_id"]), event.get("error") or {}, settings, s3)
