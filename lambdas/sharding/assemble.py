"""Assemble the plan from the shards' summaries: bin segments and split chunks onto the workers.

    plan = assemble(run_id, loc, s3)

Reads every shard's summary (not its objects: a segment is one item, ~1,000 objects), and the split
records (objects larger than a payload, few). Then, with the single planner's cost model and functions
(lambdas/binning.py, lambdas/planning.py):

1. the ideal load: total cost / N, every copy whole (``planning.ideal_load``'s definition);
2. each split object cut into chunks of at most ``planning.chunk_limit(ideal)`` bytes (``chunk_tasks``);
3. segments and chunks assigned largest cost first to the least-loaded worker (``binning.assign``, LPT);
4. each worker's chunks cut into payload files (``binning.cut_payloads``), its segments used as they are;
5. one multipart upload started per split object (unless a dry run), all aborted if any fails;
6. each worker's list of payload references written (its Distributed Map's items), then the index.

Balance: list scheduling ends within one item of the ideal. Graham's bound for a greedy assignment:
makespan <= ideal + (1 - 1/N) * largest item, so the predicted makespan / ideal is at most
``1 + largest / ideal``. A segment costs at most the payload cap plus the cost of its requests
(``max_payload_size_mb`` + ``limits.REQUEST_COST_BYTES`` x ``max_objects_per_payload``: 10 GiB + 4 GiB with
the defaults), a chunk at most ideal / 32 + its parts' requests: today's guarantee (<= 1.05 x ideal) holds
whenever the ideal is at least 20 items of that size, i.e. at least 20 full segments per worker
(``AssembledPlan.bound`` says what the run got; tests/unit/test_sharding_assemble.py proves it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from lambdas import binning, limits, manifest, planner, planning
from lambdas.errors import ManifestConflictError
from lambdas.gateway import JSON_CONTENT_TYPE, S3Gateway, encode_json
from lambdas.logs import get_logger
from lambdas.models import CopyTask, ManifestLocation, Payload, PlanTotals, SplitCopy
from lambdas.sharding import layout
from lambdas.sharding.layout import PayloadRef, SegmentRef, ShardingContext, ShardSummary

log = get_logger("assemble")

READ_THREADS = 32
# A balance guarantee of 1 + 1/GUARANTEE_ITEMS needs the ideal to hold this many of the largest item.
GUARANTEE_ITEMS = 20


@dataclass(frozen=True)
class Item:
    """One unit of binning: a segment (``segment`` set) or a chunk of a split object (``chunk`` set)."""

    cost: int
    nbytes: int
    segment: SegmentRef | None = None
    chunk: CopyTask | None = None


@dataclass(frozen=True)
class Binned:
    """The pure result: each worker's items and load."""

    shares: tuple[tuple[Item, ...], ...]
    loads: tuple[int, ...]
    ideal: float
    largest: int

    @property
    def balance(self) -> float:
        return binning.balance(self.loads)

    @property
    def bound(self) -> float:
        """Graham's bound on the balance: 1 + largest item / ideal."""
        return 1.0 + self.largest / self.ideal if self.ideal else 1.0


@dataclass(frozen=True)
class AssembledPlan:
    run_id: str
    workers: int
    payloads: int
    worker_lists: tuple[str, ...]  # key of each worker's [PayloadRef]
    worker_loads: tuple[int, ...]
    balance: float
    bound: float
    totals: PlanTotals
    splits_key: str
    skipped_keys: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"]["skipped_by_reason"] = [list(p) for p in self.totals.skipped_by_reason]
        return data


# --- pure: items and their binning -------------------------------------------------------------------
def split_task(split: SplitCopy) -> CopyTask:
    """A split object as the whole multipart copy it would be (for its whole cost and its chunks)."""
    return CopyTask(task_id=f"c{split.copy_id}", copy_id=split.copy_id, source_bucket=split.source_bucket,
                    source_key=split.source_key, size=split.size, etag=split.etag, target_bucket=split.target_bucket,
                    target_key=split.target_key, method="multipart")


def ideal_load(segments: Sequence[SegmentRef], splits: Sequence[SplitCopy], params: planning.PlanParams) -> float:
    """Total cost / N with every copy whole, as ``planning.ideal_load`` counts it."""
    whole = [split_task(s) for s in splits]
    nbytes, requests = binning.measure(whole, params.part_size)
    total = sum(s.cost for s in segments) + sum(binning.costs_of(nbytes, requests))
    return total / params.workers


def items_of(segments: Sequence[SegmentRef], splits: Sequence[SplitCopy], params: planning.PlanParams) -> list[Item]:
    """Segments as they are, and every split object cut into chunks no larger than the chunk limit."""
    limit = planning.chunk_limit(ideal_load(segments, splits, params), params)
    items = [Item(cost=s.cost, nbytes=s.bytes, segment=s) for s in segments]
    for split in splits:
        for chunk in planning.chunk_tasks(split_task(split), split.part_size, limit):
            items.append(Item(cost=binning.task_cost(chunk, params.part_size), nbytes=chunk.nbytes, chunk=chunk))
    return items


def bin_items(items: Sequence[Item], workers: int) -> Binned:
    """LPT: largest cost first onto the least-loaded worker (``binning.assign``)."""
    shares, loads = binning.assign([i.cost for i in items], workers)
    total = sum(i.cost for i in items)
    return Binned(shares=tuple(tuple(items[i] for i in share) for share in shares), loads=tuple(loads),
                  ideal=total / workers, largest=max((i.cost for i in items), default=0))


def guarantee_needs(params: planning.PlanParams) -> int:
    """The ideal load (cost per worker) that guarantees balance <= 1 + 1/GUARANTEE_ITEMS with full segments."""
    largest = params.max_payload_bytes + limits.REQUEST_COST_BYTES * params.max_objects_per_payload
    return GUARANTEE_ITEMS * largest


# --- the step ----------------------------------------------------------------------------------------
def assemble(run_id: str, loc: ManifestLocation, s3: S3Gateway, threads: int = READ_THREADS) -> AssembledPlan:
    context = ShardingContext.from_dict(s3.get_json(loc.bucket, layout.context_key(loc)))
    params = context.params
    summaries = _read_summaries(s3, loc, context.shards, threads)
    s3 = s3.for_buckets(context.config.bucket_access())
    splits = _read_splits(s3, loc, summaries, threads)
    segments = [segment for summary in summaries for segment in summary.segments]
    binned = bin_items(items_of(segments, splits, params), params.workers)
    uploads: dict[int, planning.StartedUpload] = {}
    if splits and not context.config.options.dry_run:
        uploads = planner.create_uploads(splits, {}, context.config.options, s3, threads)
    try:
        lists, payloads, requests = _write_workers(s3, loc, binned, uploads, params, threads)
        splits = [planning.split_with_upload(s, uploads.get(s.copy_id)) for s in splits]
        splits_key = layout.key(loc, "splits.json")
        s3.put_json(loc.bucket, splits_key, [s.to_dict() for s in splits])
        plan = AssembledPlan(run_id=run_id, workers=params.workers, payloads=payloads, worker_lists=tuple(lists),
                             worker_loads=binned.loads, balance=round(binned.balance, 6), bound=round(binned.bound, 6),
                             totals=_totals(summaries, payloads, len(splits), requests), splits_key=splits_key,
                             skipped_keys=tuple(f.key for s in summaries for f in s.skipped))
        s3.put_json(loc.bucket, layout.index_key(loc), plan.to_dict())
    except BaseException:
        planner.abort_uploads(splits, uploads, s3)
        raise
    log.info("plan assembled", extra={
        "workers": params.workers, "payloads": payloads, "segments": len(segments), "split_objects": len(splits),
        "balance": plan.balance, "bound": plan.bound, "guaranteed": binned.bound <= 1.05,
        "copies": plan.totals.copies, "bytes": plan.totals.bytes})
    return plan


def _read_summaries(s3: S3Gateway, loc: ManifestLocation, shards: int, threads: int) -> list[ShardSummary]:
    def read(shard: int) -> ShardSummary:
        data = s3.get_json_or_none(loc.bucket, layout.summary_key(loc, shard))
        summary = ShardSummary.from_dict(data) if data is not None else None
        if summary is None or not summary.done:
            raise ManifestConflictError(f"shard {shard} has not finished planning (its summary is "
                                        f"{'missing' if summary is None else 'not done'})")
        return summary

    with ThreadPoolExecutor(max_workers=max(1, min(threads, shards))) as pool:
        return list(pool.map(read, range(shards)))


def _read_splits(s3: S3Gateway, loc: ManifestLocation, summaries: Sequence[ShardSummary],
                 threads: int) -> list[SplitCopy]:
    keys = [f.key for summary in summaries for f in summary.splits]
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(keys)))) as pool:
        files = list(pool.map(lambda k: s3.get_json(loc.bucket, k), keys))
    return [SplitCopy.from_dict(row) for rows in files for row in rows]


def _write_workers(s3: S3Gateway, loc: ManifestLocation, binned: Binned,
                   uploads: dict[int, planning.StartedUpload], params: planning.PlanParams,
                   threads: int) -> tuple[list[str], int, int]:
    """Every worker's chunk payloads and list of payload references; returns the lists' keys, the payload
    count and the S3 copy requests the plan will send."""
    writes: list[tuple[str, bytes]] = []
    lists: list[str] = []
    number = 0
    requests = 0
    for worker, share in enumerate(binned.shares):
        refs: list[PayloadRef] = []
        for item in share:
            if item.segment is not None:
                refs.append(PayloadRef(number, item.segment.key, item.segment.bytes, item.segment.objects))
                requests += item.segment.requests
                number += 1
        chunks = [item.chunk._replace(upload_id=uploads[item.chunk.copy_id].upload_id
                                      if item.chunk.copy_id in uploads else "")
                  for item in share if item.chunk is not None]
        cut, sizes = binning.cut_payloads(chunks, [c.nbytes for c in chunks], params.max_payload_bytes,
                                          params.max_objects_per_payload)
        for index, (tasks, nbytes) in enumerate(zip(cut, sizes, strict=True)):
            key = layout.chunk_payload_key(loc, worker, index)
            writes.append((key, manifest.encode_payload(Payload(payload_id=number, worker=worker, tasks=tuple(tasks)))))
            refs.append(PayloadRef(number, key, nbytes, len(tasks)))
            requests += sum(binning.request_count(t, params.part_size) for t in tasks)
            number += 1
        key = layout.worker_refs_key(loc, worker)
        writes.append((key, encode_json([r.to_dict() for r in refs])))
        lists.append(key)
    requests += planning.SPLIT_EXTRA_REQUESTS * len(uploads)
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(writes)))) as pool:
        for _ in pool.map(lambda kv: s3.put_bytes(loc.bucket, kv[0], kv[1], JSON_CONTENT_TYPE), writes):
            pass
    return lists, number, requests


def _totals(summaries: Sequence[ShardSummary], payloads: int, split_objects: int, requests: int) -> PlanTotals:
    reasons: Counter[str] = Counter()
    for summary in summaries:
        reasons.update(dict(summary.skipped_by_reason))
    return PlanTotals(objects_listed=sum(s.listed for s in summaries), copies=sum(s.copies for s in summaries),
                      bytes=sum(s.bytes for s in summaries), skipped=sum(reasons.values()),
                      unmatched=sum(s.unmatched for s in summaries), payloads=payloads, split_objects=split_objects,
                      requests=requests, skipped_by_reason=tuple(sorted(reasons.items())))


