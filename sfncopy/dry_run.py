"""``sfncopy plan``: run the planner core locally against the environment's buckets, writing nothing.

The planner lists the real sources and targets through a gateway whose writes stay in memory (the plan
files) or are refused (anything that would change a bucket). What it planned is then read back and
given to the planner core's estimate (per target, per worker, requests, transitions, cost, skips).

An env with planning=sharded is planned here with the single planner too, and the report says so: the sharded
steps decide exactly what the single planner decides (tests/functional/test_sharding_plan.py checks it on the
same buckets), so copies, bytes, skips and requests are the same; only the cut into payloads, and so the
balance and per-worker figures, may differ. Running the shards locally would need the dry run's in-memory
manifest to be listable (the collect step lists the shards' hand-ons), which it is not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lambdas import limits, manifest
from lambdas.errors import SfnCopyError
from lambdas.gateway import ObjectHead, PartInfo, S3Gateway
from lambdas.models import Payload, RunPlan, SseConfig
from lambdas.settings import Settings
from sfncopy.progress import format_bytes, format_duration

if TYPE_CHECKING:
    from generator.settings import EnvSettings
    from lambdas.estimate import Estimate
    from sfncopy.headroom import Headroom

DRY_RUN_BUCKET = "sfncopy-dry-run"  # the plan files never leave memory, so any name will do
DRY_RUN_UPLOAD = "dry-run-upload-"


class DryRunWriteError(SfnCopyError):
    """Something tried to change a bucket during a dry run (a bug: the planner only lists and reads)."""


class MemoryGateway(S3Gateway):
    """Reads and lists through the real client; the manifest files go to ``files``; nothing is written."""

    def __init__(self, real: S3Gateway) -> None:
        super().__init__(real.client)
        self.files: dict[tuple[str, str], Any] = {}
        self.uploads = 0

    def put_json(self, bucket: str, key: str, data: Any) -> None:
        self.files[(bucket, key)] = data

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.files[(bucket, key)] = body

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        data = self.files.get((bucket, key))
        return json.loads(data) if isinstance(data, bytes) else data  # the planner writes payload files encoded

    def create_multipart_upload(self, bucket: str, key: str, head: ObjectHead | None, tags: dict[str, str],
                                *, storage_class: str | None = None, sse: SseConfig | None = None) -> str:
        self.uploads += 1
        return f"{DRY_RUN_UPLOAD}{self.uploads}"

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        if not upload_id.startswith(DRY_RUN_UPLOAD):
            raise DryRunWriteError(f"dry run: refused to abort upload {upload_id} of s3://{bucket}/{key}")

    def copy_object(self, *args: Any, **kwargs: Any) -> tuple[str, int]:
        raise DryRunWriteError("dry run: refused CopyObject")

    def upload_part_copy(self, *args: Any, **kwargs: Any) -> tuple[str, int]:
        raise DryRunWriteError("dry run: refused UploadPartCopy")

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]) -> str:
        raise DryRunWriteError(f"dry run: refused to complete an upload of s3://{bucket}/{key}")

    def put_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        raise DryRunWriteError(f"dry run: refused to tag s3://{bucket}/{key}")


@dataclass(frozen=True)
class PlanReport:
    """The planner core's estimate plus what only the plan files show (listing counts, bytes per worker)."""

    env: str
    objects_listed: int
    unmatched: int
    bytes_per_worker: tuple[int, ...]
    estimate: Estimate
    planning: str = "single"  # the env's planning; the dry run always plans with the single planner

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "objects_listed": self.objects_listed, "unmatched": self.unmatched,
                "bytes_per_worker": list(self.bytes_per_worker), "planning": self.planning,
                **self.estimate.to_dict()}

    def lines(self) -> list[str]:
        e = self.estimate
        lines = [f"plan for env {self.env}: {self.objects_listed:,} objects listed, {e.copies:,} copies, "
                 f"{format_bytes(e.bytes)}"]
        lines += [f"  target {t.index} {t.target}: {t.objects:,} objects, {format_bytes(t.bytes)}"
                  for t in e.per_target]
        lines.append(f"workers: {e.workers}, balance {e.balance:.2f} (largest load / ideal), {e.payloads} "
                     f"payload(s), {e.split_objects} object(s) split across workers")
        lines += [f"  worker {i}: {n} payload(s), {format_bytes(b)}"
                  for i, (n, b) in enumerate(zip(e.payloads_per_worker, self.bytes_per_worker, strict=True))]
        r = e.requests
        lines += [
            "estimate:",
            f"  S3 requests: {r.writes_and_lists + r.reads:,} ({r.copy_object:,} CopyObject, "
            f"{r.upload_part_copy:,} UploadPartCopy, {r.list_pages:,} list pages, {r.reads:,} reads)",
            f"  state transitions: {e.state_transitions:,}; history events: {e.history_events:,} in the run's "
            f"execution, at most {e.child_history_events:,} in a payload's child execution (limit "
            f"{limits.MAX_HISTORY_EVENTS:,} each)",
            f"  concurrency: {e.workers} worker(s) x {e.worker_concurrency} payload(s) at once = "
            f"{e.workers * e.worker_concurrency:,} worker invocations at most",
            f"  Lambda: {e.lambda_invocations:,} invocations, {e.lambda_gb_seconds:,.1f} GB-seconds",
            f"  copying time: about {format_duration(e.predicted_seconds)} (the busiest worker)",
            f"  cost: ${e.dollars:,.4f} (S3 ${e.s3_dollars:,.4f}, Step Functions ${e.step_functions_dollars:,.4f}, "
            f"Lambda ${e.lambda_dollars:,.4f})",
        ]
        skipped = [f"  {reason}: {count:,}" for reason, count in e.skipped_by_reason]
        if self.unmatched:
            skipped.append(f"  matched no target: {self.unmatched:,}")
        lines += ["skipped:", *skipped] if skipped else ["skipped: none"]
        if self.planning != "single":
            lines.append(f"note: the env plans with planning={self.planning}; this dry run used the single planner, "
                         "which decides the same copies and skips (payloads and balance may differ)")
        return lines


def planner_settings(env: EnvSettings) -> Settings:
    """The planner's settings exactly as the environment deploys them (the generator's Lambda environment),
    with the manifest in memory."""
    from generator.template import lambda_environment

    variables = {name: str(value) for name, value in lambda_environment(env).items()}
    variables["SFNCOPY_MANIFEST_BUCKET"] = DRY_RUN_BUCKET
    return Settings.from_environ(variables).with_branches(env.workers)  # as the Plan state passes it


def plan(document: Any, env: EnvSettings, s3: S3Gateway) -> PlanReport:
    """Plan ``document`` for ``env`` against the real buckets behind ``s3``, keeping the plan in memory."""
    from lambdas.planner import plan_run

    settings = planner_settings(env)
    memory = MemoryGateway(s3)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run_id = "dry-run-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    loc = plan_run(document, run_id, settings, memory, now).manifest
    run_plan = manifest.read_plan(memory, loc)
    payloads = [manifest.read_payload(memory, loc, pid) for ids in run_plan.worker_payloads for pid in ids]
    report = summarise(env.env, run_plan, payloads, env.worker.memory_mb, settings.part_size, env.worker_concurrency)
    return replace(report, planning=env.planning)


def summarise(env: str, run_plan: RunPlan, payloads: list[Payload], worker_memory_mb: int,
              part_size: int, worker_concurrency: int = 1) -> PlanReport:
    """The figures ``sfncopy plan`` shows, from what the planner wrote."""
    from lambdas.estimate import estimate

    worker_bytes = [0] * run_plan.workers
    for payload in payloads:
        worker_bytes[payload.worker] += payload.nbytes
    return PlanReport(env=env, objects_listed=run_plan.totals.objects_listed, unmatched=run_plan.totals.unmatched,
                      bytes_per_worker=tuple(worker_bytes),
                      estimate=estimate(run_plan, payloads, worker_memory_mb, part_size=part_size,
                                        worker_concurrency=worker_concurrency))


def headroom(report: PlanReport, env: EnvSettings, concurrency: ConcurrencyCheck) -> Headroom:
    """Which stage binds for this plan on ``env`` (sfncopy/headroom.py), and each stage's headroom."""
    from sfncopy.headroom import Loads
    from sfncopy.headroom import headroom as stages

    e = report.estimate
    return stages(Loads(
        objects_listed=report.objects_listed, report_rows=e.copies + sum(n for _, n in e.skipped_by_reason),
        parent_events=e.history_events, largest_child_events=e.child_history_events,
        most_payloads_per_worker=max(e.payloads_per_worker, default=0), workers=e.workers,
        worker_concurrency=e.worker_concurrency, concurrency_available=concurrency.available,
        planner_memory_mb=env.planner.memory_mb, planner_timeout_seconds=env.planner.timeout_seconds,
        finalizer_timeout_seconds=env.finalizer.timeout_seconds, max_payload_size_mb=env.max_payload_size_mb,
        max_objects_per_payload=env.max_objects_per_payload, finalizer_shard_rows=env.finalizer_shard_rows))


# --- Lambda concurrency ------------------------------------------------------------------------------------
# Past this share of what the account has free, other functions of the account (which share it) may throttle
# the workers, or be throttled by them.
CONCURRENCY_WARNING_SHARE = 0.5


@dataclass(frozen=True)
class ConcurrencyCheck:
    """Whether the account can run every worker invocation a run starts at once (``needed``: workers x
    worker_concurrency). Lambda throttles invocations past the concurrency a function may use (Lambda developer
    guide, "Lambda function scaling": throttled requests fail with TooManyRequestsException); the state machine
    retries them with backoff, and a payload whose retries run out fails."""

    needed: int
    available: int | None  # what the worker function may use at once; None: unknown
    source: str  # where ``available`` comes from, or why it is unknown

    @property
    def verdict(self) -> str:
        """"refuse" (more than available), "warn" (over half of it, or unknown) or "ok"."""
        if self.available is None:
            return "warn"
        if self.needed > self.available:
            return "refuse"
        return "warn" if self.needed > self.available * CONCURRENCY_WARNING_SHARE else "ok"

    def message(self) -> str:
        fix = ("lower num_copy_lambda_workers or worker_concurrency in the env file and redeploy, or ask AWS to "
               "raise the account's Lambda concurrency quota")
        if self.available is None:
            return (f"Lambda concurrency unknown ({self.source}): a run invokes up to {self.needed:,} workers at "
                    f"once; make sure the account has that much unreserved concurrency (a new account has "
                    f"{limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY:,} per Region)")
        if self.verdict == "refuse":
            return (f"Lambda concurrency too low: a run invokes up to {self.needed:,} workers at once, but "
                    f"{self.source} allows {self.available:,}; the rest would be throttled: {fix}")
        if self.verdict == "warn":
            return (f"Lambda concurrency: a run invokes up to {self.needed:,} workers at once, more than half of "
                    f"the {self.available:,} {self.source} allows (other functions share it)")
        return f"Lambda concurrency: up to {self.needed:,} workers at once, of {self.available:,} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"needed": self.needed, "available": self.available, "source": self.source,
                "verdict": self.verdict, "message": self.message()}


def check_concurrency(lam: Any, env: EnvSettings) -> ConcurrencyCheck:
    """Compare workers x worker_concurrency with what the worker function may use: its reserved concurrency
    when the deployed function has one, else the account's unreserved concurrency (Lambda API reference,
    GetAccountSettings, AccountLimit.UnreservedConcurrentExecutions; GetFunctionConcurrency)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from generator.template import FUNCTIONS

    needed = env.workers * env.worker_concurrency
    worker = next(spec for spec in FUNCTIONS if spec.logical == "Worker").function_name(env)
    try:
        reserved = lam.get_function_concurrency(FunctionName=worker).get("ReservedConcurrentExecutions")
    except (ClientError, BotoCoreError):
        reserved = None  # not deployed yet, or not allowed to ask: the account's figure decides
    if reserved is not None:
        return ConcurrencyCheck(needed, int(reserved), f"the reserved concurrency of {worker}")
    try:
        limit = lam.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as err:
        return ConcurrencyCheck(needed, None, f"GetAccountSettings failed: {err}")
    return ConcurrencyCheck(needed, int(limit["UnreservedConcurrentExecutions"]),
                            "the account's unreserved concurrency")
