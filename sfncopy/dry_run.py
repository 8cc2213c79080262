"""``sfncopy plan``: run the planner core locally against the environment's buckets, writing nothing.

The planner lists the real sources and targets through a gateway whose writes stay in memory (the plan
files) or are refused (anything that would change a bucket). What it planned is then read back and
given to the planner core's estimate (per target, per worker, requests, transitions, cost, skips).

An env with planning=sharded is planned with its own code, in this process: prepare (the partition probes the
sources), every shard (one after another, each until done; the ranges a shard hands on become the next
generation's shards, as CollectHandOns makes them), and the assembler, all writing to memory; the publish step
is not run (it only writes the workers' lists and the index). So the payloads, balance and per-worker figures
are the deployed run's, and the report adds the sharded stages (shards, the largest shard, the assembler's
payloads) for sfncopy/headroom.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lambdas import limits, manifest
from lambdas.errors import SfnCopyError
from lambdas.gateway import ObjectHead, PartInfo, S3Gateway, Written, encode_json
from lambdas.models import Payload, RunPlan, SkippedObject, SplitCopy, SseConfig
from lambdas.restoring.estimate import RestoreEstimate, estimate_restores
from lambdas.settings import Settings
from lambdas.units import format_bytes
from sfncopy.progress import format_duration

if TYPE_CHECKING:
    from generator.settings import EnvSettings
    from lambdas.estimate import Estimate
    from sfncopy.headroom import Headroom, ShardLoads

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

    def read_chunks(self, bucket: str, key: str, start: int = 0, chunk_size: int = limits.MiB) -> Iterator[bytes]:
        """A written file's bytes from ``start`` on, as S3Gateway.read_chunks gives a stored object's."""
        data = self.files.get((bucket, key))
        if data is None:
            raise SfnCopyError(f"the dry run wrote no s3://{bucket}/{key}")
        body = data if isinstance(data, bytes) else encode_json(data)
        for offset in range(start, len(body), chunk_size):
            yield body[offset:offset + chunk_size]

    def keys_under(self, bucket: str, prefix: str) -> list[str]:
        """The keys of files written under ``prefix`` (what a listing of the manifest bucket would answer)."""
        return sorted(key for b, key in self.files if b == bucket and key.startswith(prefix))

    def create_multipart_upload(self, bucket: str, key: str, head: ObjectHead | None, tags: dict[str, str],
                                *, storage_class: str | None = None, sse: SseConfig | None = None,
                                checksum: tuple[str, str] | None = None) -> str:
        self.uploads += 1
        return f"{DRY_RUN_UPLOAD}{self.uploads}"

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        if not upload_id.startswith(DRY_RUN_UPLOAD):
            raise DryRunWriteError(f"dry run: refused to abort upload {upload_id} of s3://{bucket}/{key}")

    def copy_object(self, *args: Any, **kwargs: Any) -> tuple[Written, int]:
        raise DryRunWriteError("dry run: refused CopyObject")

    def upload_part_copy(self, *args: Any, **kwargs: Any) -> tuple[PartInfo, int]:
        raise DryRunWriteError("dry run: refused UploadPartCopy")

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo],
                                  **kwargs: Any) -> Written:
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
    planning: str = "single"  # the env's planning, which the dry run ran
    sharding: ShardingReport | None = None  # planning=sharded: what its stages did
    restores: RestoreEstimate | None = None  # options.restore: what restoring the archived objects takes

    def to_dict(self) -> dict[str, Any]:
        data = {"env": self.env, "objects_listed": self.objects_listed, "unmatched": self.unmatched,
                "bytes_per_worker": list(self.bytes_per_worker), "planning": self.planning, **self.estimate.to_dict()}
        if self.sharding is not None:
            data["sharding"] = self.sharding.to_dict()
        if self.restores is not None:
            data["restore"] = self.restores.to_dict()
        return data

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
        if self.restores is not None:
            lines += self.restores.lines()
        if self.sharding is not None:
            lines += self.sharding.lines()
        return lines


@dataclass(frozen=True)
class ShardingReport:
    """What sharded planning's stages did in the dry run (planning=sharded)."""

    shards: int  # every shard planned, hand-ons included
    generations: int  # 1 + the generations of hand-ons
    ordered: bool  # False: one shard listing its targets whole (partition.order_problems)
    reasons: tuple[str, ...]
    largest_shard: int
    largest_shard_listed: int
    largest_shard_requests: int
    segments: int
    payloads: int
    balance_bound: float  # Graham's bound on the balance the assembler guarantees (assemble.Binned.bound)

    def to_dict(self) -> dict[str, Any]:
        return {"shards": self.shards, "generations": self.generations, "ordered": self.ordered,
                "reasons": list(self.reasons), "largest_shard": self.largest_shard,
                "largest_shard_listed": self.largest_shard_listed,
                "largest_shard_requests": self.largest_shard_requests, "segments": self.segments,
                "payloads": self.payloads, "balance_bound": self.balance_bound}

    def lines(self) -> list[str]:
        lines = [f"sharded planning: {self.shards} shard(s) in {self.generations} generation(s), {self.segments:,} "
                 f"segment(s) and {self.payloads - self.segments:,} payload(s) of split chunks binned into "
                 f"{self.payloads:,} payload(s) (balance bound {self.balance_bound:.3f})",
                 f"  largest shard: {self.largest_shard} ({self.largest_shard_listed:,} objects listed, "
                 f"{self.largest_shard_requests:,} S3 requests)"]
        if not self.ordered:
            lines.append(f"  one shard lists the targets whole: {'; '.join(self.reasons)}")
        return lines


def planner_settings(env: EnvSettings) -> Settings:
    """The planner's settings exactly as the environment deploys them (the generator's Lambda environment),
    with the manifest in memory."""
    from generator.template import lambda_environment

    variables = {name: str(value) for name, value in lambda_environment(env).items()}
    variables["SFNCOPY_MANIFEST_BUCKET"] = DRY_RUN_BUCKET
    return Settings.from_environ(variables).with_branches(env.workers)  # as the Plan state passes it


def plan(document: Any, env: EnvSettings, s3: S3Gateway) -> PlanReport:
    """Plan ``document`` for ``env`` against the real buckets behind ``s3``, keeping the plan in memory, with the
    planning the env deploys (single, or sharded)."""
    from lambdas.planner import plan_run

    settings = planner_settings(env)
    memory = MemoryGateway(s3)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run_id = "dry-run-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    if env.sharded:
        return plan_sharded(document, env, settings, memory, run_id, now)
    loc = plan_run(document, run_id, settings, memory, now).manifest
    run_plan = manifest.read_plan(memory, loc)
    files = manifest.payload_files(memory, loc, run_plan)
    payloads = [manifest.read_payload_file(memory, loc, files[pid]) for ids in run_plan.worker_payloads for pid in ids]
    report = summarise(env.env, run_plan, payloads, env.worker.memory_mb, settings.part_size, env.worker_concurrency)
    restore = run_plan.config.options.restore
    restores = (estimate_restores(manifest.read_skipped(memory, loc), restore.tier) if restore is not None
                else None)
    return replace(report, planning=env.planning, restores=restores)


def plan_sharded(document: Any, env: EnvSettings, settings: Settings, memory: MemoryGateway, run_id: str,
                 now: str) -> PlanReport:
    """Sharded planning's steps in this process, as the state machine runs them (PreparePlan, PlanShards per
    generation, CollectHandOns, AssemblePlan), writing to memory; then the plan as the copy stage would read it."""
    from lambdas.deadline import Deadline
    from lambdas.sharding import layout
    from lambdas.sharding.assemble import assemble, bin_items, items_of
    from lambdas.sharding.layout import PayloadRef, ShardingContext, ShardSummary
    from lambdas.sharding.partition import PartitionParams, ShardSpec
    from lambdas.sharding.prepare import collect_spills, prepare_run
    from lambdas.sharding.shard import MAX_GENERATION, ShardJob, plan_shard

    params = PartitionParams(shards=env.planner_shards) if env.planner_shards is not None else PartitionParams()
    prepared = prepare_run(document, run_id, settings, memory, now, params)
    loc = prepared.manifest
    generation = 0
    while prepared.shards:
        for item in memory.get_json(loc.bucket, prepared.items):
            job = ShardJob(run_id, loc, ShardSpec.from_item(item))
            while not (answer := plan_shard(job, memory, Deadline.never(), settings.worker_threads)).done:
                job = answer.job
        if generation >= MAX_GENERATION:
            break
        generation += 1
        prepared = collect_spills(run_id, loc, memory, generation, lambda _, bucket, prefix: memory.keys_under(
            bucket, prefix))
    assembled = assemble(run_id, loc, memory, settings.worker_threads)
    context = ShardingContext.from_dict(memory.get_json(loc.bucket, layout.context_key(loc)))
    summaries = [ShardSummary.from_dict(memory.get_json(loc.bucket, layout.summary_key(loc, shard)))
                 for shard in range(context.shards)]
    refs = [[PayloadRef.from_dict(r) for r in memory.get_json(loc.bucket, key)] for key in assembled.worker_lists]
    payloads = [replace(Payload.from_dict(memory.get_json(loc.bucket, ref.key)), payload_id=ref.payload, worker=worker)
                for worker, worker_refs in enumerate(refs) for ref in worker_refs]
    splits = tuple(SplitCopy.from_dict(s) for s in memory.get_json(loc.bucket, assembled.splits_key))
    run_plan = RunPlan(run_id=run_id, created_at=now, config=context.config, workers=assembled.workers,
                       worker_payloads=tuple(tuple(ref.payload for ref in worker_refs) for worker_refs in refs),
                       splits=splits, totals=assembled.totals, worker_loads=assembled.worker_loads)
    report = summarise(env.env, run_plan, payloads, env.worker.memory_mb, settings.part_size, env.worker_concurrency)
    segments = [segment for summary in summaries for segment in summary.segments]
    bound = bin_items(items_of(segments, splits, context.params), context.params.workers).bound
    largest = max(summaries, key=lambda summary: (summary.requests, summary.listed))
    sharding = ShardingReport(
        shards=context.shards, generations=generation if prepared.shards == 0 else generation + 1,
        ordered=context.ordered, reasons=context.reasons, largest_shard=largest.shard,
        largest_shard_listed=largest.listed, largest_shard_requests=largest.requests, segments=len(segments),
        payloads=assembled.payloads, balance_bound=round(bound, 6))
    restore = context.config.options.restore
    restores = None
    if restore is not None:
        skipped = [SkippedObject.from_dict(row) for key in assembled.skipped_keys
                   for row in memory.get_json(loc.bucket, key)]
        restores = estimate_restores(skipped, restore.tier)
    return replace(report, planning=env.planning, sharding=sharding, restores=restores)


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
        max_objects_per_payload=env.max_objects_per_payload, sharding=shard_loads(report.sharding),
        finalizer_shard_rows=env.finalizer_shard_rows))


def shard_loads(sharding: ShardingReport | None) -> ShardLoads | None:
    from generator.settings import MAX_PLANNER_SHARDS
    from sfncopy.headroom import ShardLoads

    if sharding is None:
        return None
    return ShardLoads(shards=sharding.shards, max_shards=MAX_PLANNER_SHARDS,
                      largest_shard_listed=sharding.largest_shard_listed,
                      largest_shard_requests=sharding.largest_shard_requests, payloads=sharding.payloads)


# --- Lambda concurrency ------------------------------------------------------------------------------------
# Past this share of what the account has free, other functions of the account (which share it) may throttle
# the workers, or be throttled by them.
CONCURRENCY_WARNING_SHARE = 0.5


@dataclass(frozen=True)
class ConcurrencyCheck:
    """Whether the account can run the invocations a run starts at once in its busiest stage (``needed``: by
    default the copy stage's workers x worker_concurrency; ``stage`` names it). Lambda throttles invocations past
    the concurrency a function may use (Lambda developer guide, "Lambda function scaling": throttled requests
    fail with TooManyRequestsException); the state machine retries them with backoff, and a payload whose
    retries run out fails."""

    needed: int
    available: int | None  # what the busiest stage's function may use at once; None: unknown
    source: str  # where ``available`` comes from, or why it is unknown
    stage: str = "workers"  # what runs ``needed`` invocations at once

    @property
    def verdict(self) -> str:
        """"refuse" (more than available), "warn" (over half of it, or unknown) or "ok"."""
        if self.available is None:
            return "warn"
        if self.needed > self.available:
            return "refuse"
        return "warn" if self.needed > self.available * CONCURRENCY_WARNING_SHARE else "ok"

    def message(self) -> str:
        fix = (f"lower {STAGE_SETTINGS.get(self.stage, 'num_copy_lambda_workers or worker_concurrency')} in the "
               "env file and redeploy, or ask AWS to raise the account's Lambda concurrency quota")
        if self.available is None:
            return (f"Lambda concurrency unknown ({self.source}): a run invokes up to {self.needed:,} {self.stage} at "
                    f"once; make sure the account has that much unreserved concurrency (a new account has "
                    f"{limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY:,} per Region)")
        if self.verdict == "refuse":
            return (f"Lambda concurrency too low: a run invokes up to {self.needed:,} {self.stage} at once, but "
                    f"{self.source} allows {self.available:,}; the rest would be throttled: {fix}")
        if self.verdict == "warn":
            return (f"Lambda concurrency: a run invokes up to {self.needed:,} {self.stage} at once, more than half of "
                    f"the {self.available:,} {self.source} allows (other functions share it)")
        return f"Lambda concurrency: up to {self.needed:,} {self.stage} at once, of {self.available:,} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {"needed": self.needed, "available": self.available, "source": self.source, "stage": self.stage,
                "verdict": self.verdict, "message": self.message()}


# What each stage's concurrency is set by (the fix a refusal names).
STAGE_SETTINGS = {"workers": "num_copy_lambda_workers or worker_concurrency",
                  "finalize shards": "finalizer_concurrency", "planning shards": "planner_shard_concurrency"}
_VERDICT_RANK = {"ok": 0, "warn": 1, "refuse": 2}


def stage_needs(env: EnvSettings, report: PlanReport | None = None) -> list[tuple[str, int]]:
    """The Lambda invocations each stage runs at once. The stages run one after another (planning, copying,
    finalizing: generator/state_machine.py), each its own function: the copy stage's workers x
    worker_concurrency (plus the restore branch's one invocation beside them); the FinalizeShards Map's
    finalizer_concurrency, or the plan's finalize shards when fewer; with planning=sharded the PlanShards Map's
    planner_shard_concurrency, or the dry run's shards when fewer."""
    from lambdas.estimate import finalize_shard_count

    needs = [("workers", env.workers * env.worker_concurrency + (1 if env.restore_archived else 0))]
    shards = env.finalizer_concurrency
    if report is not None:
        e = report.estimate
        rows = e.copies + sum(n for _, n in e.skipped_by_reason)
        shards = min(shards, finalize_shard_count(e.payloads, rows, env.finalizer_shard_rows))
    needs.append(("finalize shards", shards))
    if env.sharded:
        planned = report.sharding.shards if report is not None and report.sharding is not None else None
        needs.append(("planning shards", min(env.planner_shard_concurrency, planned or env.planner_shard_concurrency)))
    return needs


def check_concurrency(lam: Any, env: EnvSettings, report: PlanReport | None = None) -> ConcurrencyCheck:
    """Each stage's invocations at once (``stage_needs``) against what its function may use: for the workers,
    the worker function's reserved concurrency when the deployed function has one, else the account's
    unreserved concurrency (Lambda API reference, GetAccountSettings, AccountLimit.UnreservedConcurrentExecutions;
    GetFunctionConcurrency). The answer is the worst stage's (refused before warned; then the fuller one)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from generator.template import FUNCTIONS

    worker = next(spec for spec in FUNCTIONS if spec.logical == "Worker").function_name(env)
    try:
        reserved = lam.get_function_concurrency(FunctionName=worker).get("ReservedConcurrentExecutions")
    except (ClientError, BotoCoreError):
        reserved = None  # not deployed yet, or not allowed to ask: the account's figure decides
    account: int | None = None
    account_source = "the account's unreserved concurrency"
    try:
        account = int(lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])
    except (ClientError, BotoCoreError) as err:
        account_source = f"GetAccountSettings failed: {err}"
    checks = []
    for stage, needed in stage_needs(env, report):
        if stage == "workers" and reserved is not None:
            checks.append(ConcurrencyCheck(needed, int(reserved), f"the reserved concurrency of {worker}", stage))
        else:
            checks.append(ConcurrencyCheck(needed, account, account_source, stage))
    return max(checks, key=lambda c: (_VERDICT_RANK[c.verdict], c.needed / c.available if c.available else 0.0))
