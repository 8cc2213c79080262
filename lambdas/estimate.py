"""What a plan will cost: requests, state transitions, Lambda time and dollars (``sfncopy plan`` shows it).

Pure: a function of the plan's files. Prices are list prices of us-east-1 and are named below with their
source, so a reader can check and update them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lambdas import binning, finalize_shards, history, limits
from lambdas.models import Payload, RunPlan, TargetConfig

# --- prices (USD, us-east-1) ------------------------------------------------------------------------
# S3 Standard, https://aws.amazon.com/s3/pricing/ (checked 2024-06): PUT, COPY, POST and LIST requests
# (UploadPartCopy, CreateMultipartUpload and CompleteMultipartUpload are PUT/POST) cost $0.005 per 1,000;
# GET, HEAD and other reads (GetObjectTagging) $0.0004 per 1,000. Server-side copies in one region move
# no billable data.
S3_WRITE_OR_LIST_PER_1000 = 0.005
S3_READ_PER_1000 = 0.0004
# Step Functions Standard, https://aws.amazon.com/step-functions/pricing/ (checked 2024-06): $0.025 per
# 1,000 state transitions.
SFN_PER_1000_TRANSITIONS = 0.025
# Lambda x86, https://aws.amazon.com/lambda/pricing/ (checked 2024-06): $0.0000166667 per GB-second and
# $0.20 per million requests.
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000

# --- model ------------------------------------------------------------------------------------------
# Server-side copy throughput of one worker invocation (its thread pool together), MB/s: the same
# conservative 250 MB/s that limits.EXPECTED_BYTES_PER_INVOCATION assumes.
DEFAULT_THROUGHPUT_MB_S = 250.0
# Start-up, manifest reads and writes of one invocation, seconds.
INVOCATION_OVERHEAD_SECONDS = 0.5
# The planner lists, routes and bins about 50,000 objects a second; the finalizer checks ~100,000.
PLANNER_SECONDS_PER_OBJECT = 20e-6
FINALIZER_SECONDS_PER_OBJECT = 10e-6
# State transitions: the fixed states (Plan, the dry-run Choice, Parallel, StartFinalize, the FinalizeShards
# Map, Finalize, its done Choice, the Succeed, end), one Map per branch, per payload its child execution's
# start, CopyPayload, Choice and Succeed, per extra invocation CopyPayload + Choice, and per finalize shard
# (lambdas/finalize_shards.py) its child's start, FinalizeShard, its Choice and the Succeed. Step Functions
# charges one transition for each child execution a Distributed Map starts (developer guide, "Transitions",
# transitions in Distributed Map states: "you are charged one state transition for each child workflow
# execution that the Distributed Map state starts").
TRANSITIONS_FIXED = 9
TRANSITIONS_PER_BRANCH = 1
TRANSITIONS_PER_PAYLOAD = 4
TRANSITIONS_PER_CONTINUATION = 2
TRANSITIONS_PER_FINALIZE_SHARD = 4
# Requests of one whole-object multipart copy besides its parts: HEAD, create, complete (+ tags read).
MULTIPART_HEAD_CREATE_COMPLETE = 3


@dataclass(frozen=True)
class TargetEstimate:
    index: int
    target: str  # s3://bucket/prefix
    objects: int
    bytes: int


@dataclass(frozen=True)
class Requests:
    copy_object: int = 0
    upload_part_copy: int = 0
    create_multipart_upload: int = 0
    complete_multipart_upload: int = 0
    list_pages: int = 0  # ListObjectsV2 pages (sources, targets, the finalizer's checks) and ListParts pages
    head: int = 0  # HeadObject
    get_tagging: int = 0
    manifest_reads: int = 0
    manifest_writes: int = 0

    @property
    def writes_and_lists(self) -> int:
        return (self.copy_object + self.upload_part_copy + self.create_multipart_upload
                + self.complete_multipart_upload + self.list_pages + self.manifest_writes)

    @property
    def reads(self) -> int:
        return self.head + self.get_tagging + self.manifest_reads


@dataclass(frozen=True)
class Estimate:
    workers: int
    copies: int
    bytes: int
    split_objects: int
    payloads: int
    payloads_per_worker: tuple[int, ...]
    balance: float  # largest worker load / ideal (total / N)
    predicted_seconds: float  # the busiest worker's copying time
    per_target: tuple[TargetEstimate, ...]
    requests: Requests
    history_events: int  # the run's (parent) execution
    child_history_events: int  # the busiest child execution (one payload and its continuations)
    state_transitions: int
    lambda_invocations: int
    lambda_gb_seconds: float
    s3_dollars: float
    step_functions_dollars: float
    lambda_dollars: float
    skipped_by_reason: tuple[tuple[str, int], ...]
    worker_concurrency: int = 1  # payloads each worker copies at once

    @property
    def dollars(self) -> float:
        return self.s3_dollars + self.step_functions_dollars + self.lambda_dollars

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests"] = {**asdict(self.requests), "total": self.requests.writes_and_lists + self.requests.reads}
        data["per_target"] = [asdict(t) for t in self.per_target]
        data["payloads_per_worker"] = list(self.payloads_per_worker)
        data["skipped_by_reason"] = dict(self.skipped_by_reason)
        data["dollars"] = round(self.dollars, 6)
        for name in ("balance", "predicted_seconds", "lambda_gb_seconds"):
            data[name] = round(data[name], 4)
        for name in ("s3_dollars", "step_functions_dollars", "lambda_dollars"):
            data[name] = round(data[name], 6)
        return data


def estimate(plan: RunPlan, payloads: Sequence[Payload], worker_memory_mb: int,
             throughput_mb_s: float = DEFAULT_THROUGHPUT_MB_S, part_size: int = limits.DEFAULT_PART_SIZE,
             worker_concurrency: int = 1) -> Estimate:
    """The cost of running ``plan`` (its index and payload files) with workers of ``worker_memory_mb``, each
    copying ``worker_concurrency`` payloads at once."""
    loads = list(plan.worker_loads) or _byte_loads(plan.workers, payloads)
    extra = history.continuations(p.nbytes for p in payloads)
    events = history.estimate([p.nbytes for p in payloads], plan.workers)
    requests = count_requests(plan, payloads, extra, part_size)
    shards = finalize_shard_count(len(payloads), plan.totals.copies)
    # planner, one per payload and continuation, the finalizer's: StartFinalize, one per shard, the merge
    invocations = 1 + len(payloads) + extra + 2 + shards
    gb_seconds = _seconds(plan, loads, invocations, throughput_mb_s) * worker_memory_mb / 1024
    transitions = state_transitions(plan.workers, len(payloads), extra, shards)
    return Estimate(
        workers=plan.workers, copies=plan.totals.copies, bytes=plan.totals.bytes,
        split_objects=len(plan.splits), payloads=len(payloads),
        payloads_per_worker=tuple(len(ids) for ids in plan.worker_payloads),
        balance=binning.balance(loads),
        predicted_seconds=_makespan(loads, payloads, worker_concurrency) / (throughput_mb_s * 1e6),
        per_target=per_target(plan, payloads),
        requests=requests,
        history_events=events.parent,
        child_history_events=events.largest_child,
        state_transitions=transitions,
        lambda_invocations=invocations,
        lambda_gb_seconds=gb_seconds,
        s3_dollars=(requests.writes_and_lists * S3_WRITE_OR_LIST_PER_1000 + requests.reads * S3_READ_PER_1000) / 1000,
        step_functions_dollars=transitions * SFN_PER_1000_TRANSITIONS / 1000,
        lambda_dollars=gb_seconds * LAMBDA_PER_GB_SECOND + invocations * LAMBDA_PER_REQUEST,
        skipped_by_reason=plan.totals.skipped_by_reason,
        worker_concurrency=worker_concurrency,
    )


def count_requests(plan: RunPlan, payloads: Sequence[Payload], continuations: int, part_size: int) -> Requests:
    tasks = [t for p in payloads for t in p.tasks]
    whole_multipart = [t for t in tasks if t.method == "multipart"]
    started = len(whole_multipart) + len(plan.splits)  # uploads: the worker's own, and the planner's splits
    options = plan.config.options
    pages = _pages(plan.totals.objects_listed) + len(plan.config.sources)
    target_pages = _pages(plan.totals.copies) + len(plan.config.targets)
    return Requests(
        copy_object=sum(1 for t in tasks if t.method == "copy"),
        upload_part_copy=sum(binning.request_count(t, part_size) for t in tasks if t.method == "chunk")
        + sum(binning.request_count(t, part_size) - MULTIPART_HEAD_CREATE_COMPLETE for t in whole_multipart),
        create_multipart_upload=started,
        complete_multipart_upload=started,
        # the sources; the targets (before, unless overwrite is "always", and the finalizer's check after);
        # the finalizer's ListParts of every split upload
        list_pages=pages + target_pages * (1 if options.overwrite == "always" else 2)
        + sum(-(-s.part_count // limits.LIST_PARTS_PAGE_SIZE) for s in plan.splits),
        head=started,
        get_tagging=started if options.preserve_tags else 0,
        # a worker reads its payload and checkpoint on each invocation; each worker's Map its list of payloads;
        # the finalizer the index, the skipped list and every checkpoint, and every checkpoint head again for
        # the HTML report
        manifest_reads=2 * (len(payloads) + continuations) + plan.workers + 2 + 2 * len(payloads),
        # the planner's payloads, worker lists, skipped list and index; per invocation a head at its start
        # and a checkpoint at its end; three reports (CSV, JSON, HTML)
        manifest_writes=len(payloads) + plan.workers + 2 + 2 * (len(payloads) + continuations) + 3,
    )


def finalize_shard_count(payloads: int, copies: int,
                         shard_rows: int = finalize_shards.DEFAULT_SHARD_ROWS) -> int:
    """The finalize shards of a run (its payload shards and its one skipped-objects file)."""
    return len(finalize_shards.plan_shards(payloads, copies, ("skipped",), shard_rows))


def state_transitions(workers: int, payloads: int, continuations: int, shards: int = 2) -> int:
    """A run's transitions: ``shards`` finalize shards (a small run's two: its payloads, its skipped objects)."""
    return (TRANSITIONS_FIXED + workers * TRANSITIONS_PER_BRANCH + payloads * TRANSITIONS_PER_PAYLOAD
            + continuations * TRANSITIONS_PER_CONTINUATION + shards * TRANSITIONS_PER_FINALIZE_SHARD)


def per_target(plan: RunPlan, payloads: Sequence[Payload]) -> tuple[TargetEstimate, ...]:
    """Objects and bytes per configured target: a copy belongs to the target of its bucket with the
    longest prefix its key starts with (the first of equals). Split objects count once."""
    counts = {t.index: [0, 0] for t in plan.config.targets}
    copies = [(t.target_bucket, t.target_key, t.size) for p in payloads for t in p.tasks if t.method != "chunk"]
    copies += [(s.target_bucket, s.target_key, s.size) for s in plan.splits]
    for bucket, key, size in copies:
        owner = _owner(plan.config.targets, bucket, key)
        if owner is not None:
            counts[owner.index][0] += 1
            counts[owner.index][1] += size
    return tuple(TargetEstimate(t.index, f"s3://{t.bucket}/{t.prefix}", *counts[t.index])
                 for t in plan.config.targets)


def _owner(targets: Sequence[TargetConfig], bucket: str, key: str) -> TargetConfig | None:
    owners = [t for t in targets if t.bucket == bucket and key.startswith(t.prefix)]
    return max(owners, key=lambda t: len(t.prefix), default=None)  # max keeps the first of equals


def _pages(keys: int) -> int:
    return math.ceil(keys / limits.LIST_PAGE_SIZE)


def _byte_loads(workers: int, payloads: Sequence[Payload]) -> list[int]:
    loads = [0] * workers
    for payload in payloads:
        loads[payload.worker] += payload.nbytes
    return loads


def _makespan(loads: Sequence[int], payloads: Sequence[Payload], concurrency: int) -> float:
    """The busiest worker's load, copied ``concurrency`` payloads at a time: its load shared out, but never
    less than its largest payload (a payload is one invocation chain)."""
    if concurrency <= 1:
        return binning.predicted_makespan(loads)
    largest = [0] * len(loads)
    for payload in payloads:
        largest[payload.worker] = max(largest[payload.worker], payload.nbytes)
    return max((max(load / concurrency, big) for load, big in zip(loads, largest, strict=True)), default=0.0)


def _seconds(plan: RunPlan, loads: Sequence[int], invocations: int, throughput_mb_s: float) -> float:
    """Lambda run time of the whole execution (all workers' copying, planner, finalizer, overheads)."""
    copying = sum(loads) / (throughput_mb_s * 1e6)
    planning = plan.totals.objects_listed * PLANNER_SECONDS_PER_OBJECT
    finalizing = plan.totals.copies * FINALIZER_SECONDS_PER_OBJECT
    return copying + planning + finalizing + invocations * INVOCATION_OVERHEAD_SECONDS
