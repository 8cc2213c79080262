"""Plan one shard: list its key range in every source and target, route and decide, write segments.

    answer = plan_shard(job, s3, deadline)   # done False: call again with the answer's event

What a shard reads: ``ShardingContext`` (config, plan parameters) and its own summary (its progress).
What it writes (lambdas/sharding/layout.py): its copy tasks cut into *segments* (payload files within the
payload caps), its copies too large for one payload apart (*splits*, with their part size: the assembler
cuts them into chunks once it knows the run's ideal load), its skips (bounded files), and its summary.

How (the key-ordered case, ``ShardingContext.ordered``): the sources' listings of the range are merged in
relative-key order (config order among equal relative keys, so the first source wins a target key, as in the
single planner); each target location is listed over the same relative range, in the same order, and looked
up by a cursor that only moves forward (a merge join: one page of each target in memory, not the target).
Candidates go through ``routing.Router`` and ``planning.decide`` in batches that never split one relative
key, so every collision ``decide`` would see in the single planner it still sees. Memory holds the batch,
one segment, the pages in flight and a skip buffer: bounded by the segment size, not by the shard.

Configurations whose target keys do not follow the source's order (``partition.order_problems``) plan in
one shard, as the single planner does: the targets listed whole into memory, and the target keys claimed
so far kept (and saved at each checkpoint, so a continuation still sees the collisions). Manifest sources
(lambdas/sharding/inventory.py) read their objects from inventory files and look targets up one HEAD each.

Hand-on ("spill", as S3P splits a range it finds long while listing it): a shard of a key-ordered run
that is still listing SPILL_AFTER_SECONDS into an invocation cuts the rest of its range by probing
(``partition.split_range``), keeps the first piece and writes the others for the next generation's Map
(``prepare.collect_spills`` numbers them). A misjudged dense region costs a pass, not the stage's wall time.

Continuations: after each batch, with the deadline near, the shard flushes its partial segment, split and
skip buffers, waits for every write, then writes its summary with the cursor (the last relative key whose
objects are all decided and written) and answers ``done: false``. The next invocation lists from just after
the cursor, numbering files and copy ids from the summary: nothing is lost or written twice.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any, Protocol

from lambdas import binning, limits, manifest, planning
from lambdas.deadline import Deadline
from lambdas.errors import ObjectError, SfnCopyError
from lambdas.gateway import JSON_CONTENT_TYPE, ObjectHead, S3Gateway, encode_json
from lambdas.logs import get_logger
from lambdas.models import (
    CopyConfig,
    CopyTask,
    ExistingTarget,
    ManifestLocation,
    Payload,
    SkippedObject,
    SourceObject,
    SplitCopy,
    TargetConfig,
)
from lambdas.parts import part_count
from lambdas.planning import PlanParams
from lambdas.routing import Router, is_folder_marker
from lambdas.sharding import inventory, layout
from lambdas.sharding.keyspace import KeyRange
from lambdas.sharding.layout import FileRef, SegmentRef, ShardingContext, ShardSummary
from lambdas.sharding.listing import RangeListing, RequestCount, probe_batch
from lambdas.sharding.partition import ShardSpec, order_problems, plain_prefix, split_range

log = get_logger("shard")

# Candidates decided at once (never splitting one relative key): large enough to amortise, small enough
# to bound memory.
DECIDE_BATCH = 2_000
# Objects listed between two looks at the deadline when nothing is decided (unmatched stretches).
DEADLINE_EVERY = 1_000
# Copies to split looked at (HEAD part 1) together.
SPLIT_BATCH = 256
# Files written at once; the summary waits for all of them.
WRITE_THREADS = 8
CLAIMED = "claimed.json"
# A shard still listing after this many seconds of one invocation is larger than the partition thought:
# it cuts what is left of its range (SPILL_PIECES pieces, SPILL_PROBES probes), keeps the first piece and
# hands the others on as shards of the next generation (a further pass of the shards' Map). Up to
# MAX_GENERATION passes: a range the partition misjudged by SPILL_PIECES ** MAX_GENERATION still finishes
# in about MAX_GENERATION x SPILL_AFTER_SECONDS.
SPILL_AFTER_SECONDS = 240.0
SPILL_PIECES = 16
SPILL_PROBES = 256
MAX_GENERATION = 3


class KeySpaceChangedError(SfnCopyError):
    """A key appeared that breaks the order the partition relied on (the state machine fails the run
    rather than plan it wrong)."""


@dataclass(frozen=True)
class ShardJob:
    """The shard Lambda's event: one item of the shards' Distributed Map plus the run's pointers."""

    run_id: str
    manifest: ManifestLocation
    spec: ShardSpec

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ShardJob:
        return cls(run_id=str(event["run_id"]), manifest=ManifestLocation.from_dict(event["manifest"]),
                   spec=ShardSpec.from_item(event["shard"]))

    def to_event(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "manifest": {"bucket": self.manifest.bucket, "prefix": self.manifest.prefix},
                "shard": self.spec.to_item()}


@dataclass(frozen=True)
class ShardAnswer:
    job: ShardJob
    done: bool
    invocations: int
    listed: int
    copies: int
    segments: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.job.to_event(), "done": self.done, "invocations": self.invocations, "listed": self.listed,
                "copies": self.copies, "segments": self.segments}


# What the shard's loop reads: (position, source index, object). Objects of equal position are decided
# together; the position of the last one done is the cursor. Listings use the relative key, manifests the
# row's place; a manifest row that cannot be read comes as its skip.
Item = tuple[str, int, SourceObject | SkippedObject]


class Targets(Protocol):
    """What is already at each routed target key: asked for the rows of one batch, in the stream's order."""

    def existing(self, rows: Sequence[tuple[SourceObject, TargetConfig, str]]) -> list[ExistingTarget | None]: ...


# --- the shard ---------------------------------------------------------------------------------------
def plan_shard(job: ShardJob, s3: S3Gateway, deadline: Deadline,
               threads: int = limits.DEFAULT_WORKER_THREADS) -> ShardAnswer:
    """Plan (or go on planning) ``job``'s shard until done or until ``deadline`` is near."""
    loc = job.manifest
    context = ShardingContext.from_dict(s3.get_json(loc.bucket, layout.context_key(loc)))
    saved = s3.get_json_or_none(loc.bucket, layout.summary_key(loc, job.spec.index))
    summary = ShardSummary.from_dict(saved) if saved is not None else ShardSummary(shard=job.spec.index)
    if summary.done:
        return _answer(job, summary)
    s3 = s3.for_buckets(context.config.bucket_access())
    count = RequestCount()
    count.add(2)  # the context and the summary just read
    summary = replace(summary, invocations=summary.invocations + 1)
    started = time.monotonic()
    may_spill = (context.ordered and not context.manifests and job.spec.generation < MAX_GENERATION
                 and not summary.extra.get("spilled"))

    def spill_now() -> bool:
        return may_spill and time.monotonic() - started >= SPILL_AFTER_SECONDS

    with ThreadPoolExecutor(max_workers=max(2, threads)) as pool:
        writer = _Writer(loc, context, summary, s3, pool, count)
        writer.end = _remaining(job.spec.range, summary).end
        lookup: Targets
        stream: Iterator[Item]
        if context.manifests:
            units = inventory.Units.from_dict(s3.get_json(loc.bucket, layout.key(loc, inventory.UNITS)))
            count.add()
            stream = inventory.unit_items(s3, context, units.by_shard[job.spec.index], summary, count, threads)
            lookup = inventory.HeadTargets(s3, context, count, pool)
            if order_problems(context.config):  # one shard (prepare): its claims carried across batches
                writer.keep_claims(summary)
        elif context.ordered:
            keys = _remaining(job.spec.range, summary)
            stream = listed_items(s3, context, keys, pool, count)
            lookup = _TargetCursors(s3, context.config, keys, pool, count)
        else:
            stream = listed_items(s3, context, _remaining(job.spec.range, summary), pool, count)
            lookup = _TargetsInMemory(s3, context, summary, count, writer)
        outcome = _run(context, stream, lookup, writer, deadline, spill_now)
        if outcome == SPILL:
            _spill(job, context, writer, s3, threads, count)
        summary = writer.checkpoint(outcome == DONE)
    log.info("shard planned" if summary.done else "shard paused", extra={
        "shard": job.spec.index, "done": summary.done, "cursor": summary.cursor, "listed": summary.listed,
        "copies": summary.copies, "segments": len(summary.segments), "invocations": summary.invocations,
        "requests": summary.requests, "spilled": bool(summary.extra.get("spilled"))})
    return _answer(job, summary)


def _spill(job: ShardJob, context: ShardingContext, writer: _Writer, s3: S3Gateway, threads: int,
           count: RequestCount) -> None:
    """Cut what is left of the shard's range, keep the first piece, write the others for the next generation
    (before the summary that records the shorter range: a retry cuts again and overwrites the same file)."""
    left = KeyRange(writer.cursor, writer.end)
    probe = probe_batch(s3, context.config.sources, threads, count)
    pieces = split_range(context.config, left, SPILL_PIECES, probe, SPILL_PROBES)
    writer.extra["spilled"] = True
    if len(pieces) < 2:
        return
    writer.end = pieces[0].end
    writer.extra["end"] = writer.end
    loc = job.manifest
    s3.put_json(loc.bucket, layout.spill_key(loc, job.spec.generation + 1, job.spec.index),
                [piece.to_dict() for piece in pieces[1:]])
    count.add()
    log.info("shard handed on", extra={"shard": job.spec.index, "pieces": len(pieces) - 1, "kept_end": writer.end})


def _answer(job: ShardJob, summary: ShardSummary) -> ShardAnswer:
    return ShardAnswer(job=job, done=summary.done, invocations=summary.invocations, listed=summary.listed,
                       copies=summary.copies, segments=len(summary.segments))


def _remaining(keys: KeyRange, summary: ShardSummary) -> KeyRange:
    """The shard's range from just after its cursor, to its end (shorter once it handed a part on)."""
    end = summary.extra.get("end", keys.end)
    return KeyRange(keys.start_after if summary.cursor is None else summary.cursor, end)


DONE, PAUSED, SPILL = "done", "paused", "spill"


def _run(context: ShardingContext, stream: Iterator[Item], lookup: Targets, writer: _Writer,
         deadline: Deadline, spill_now: Callable[[], bool]) -> str:
    """Decide and write until the stream ends (DONE), the deadline is near (PAUSED) or the shard should hand
    part of its range on (SPILL)."""
    config = context.config
    routers = [Router(source, config.targets) for source in config.sources]
    report_unmatched = config.options.report_unmatched
    pending: list[tuple[SourceObject, TargetConfig, str]] = []
    since_look = 0
    last = writer.cursor
    for position, group in groupby(stream, key=lambda item: item[0]):
        for _, source, obj in group:
            writer.listed += 1
            since_look += 1
            if isinstance(obj, SkippedObject):
                writer.skip(obj)
                continue
            routes = routers[source].route(obj)
            if routes:
                pending.extend((obj, target, key) for target, key in routes)
            elif is_folder_marker(obj.key):
                writer.skip(planning.skip(obj, planning.FOLDER_MARKER))
            else:
                writer.unmatched += 1
                if report_unmatched:
                    writer.skip(planning.skip(obj, planning.UNMATCHED))
        last = position
        if len(pending) >= DECIDE_BATCH or since_look >= DEADLINE_EVERY:
            _decide(pending, lookup, writer, context.params)
            pending, since_look = [], 0
            writer.cursor = last  # every object up to here is decided: a continuation starts after it
            if deadline.near():
                return PAUSED
            if spill_now():
                return SPILL
    _decide(pending, lookup, writer, context.params)
    writer.cursor = last
    return DONE


def _decide(pending: list[tuple[SourceObject, TargetConfig, str]], lookup: Targets, writer: _Writer,
            params: PlanParams) -> None:
    if not pending:
        return
    existing = lookup.existing(pending)
    rows = [(obj, target.bucket, key, there) for (obj, target, key), there in zip(pending, existing, strict=True)]
    rows = writer.claim(rows)
    decisions = planning.decide(rows, params)
    for skipped in decisions.skipped:
        writer.skip(skipped)
    for task in decisions.copies:
        writer.copy(task)


def listed_items(s3: S3Gateway, context: ShardingContext, keys: KeyRange, pool: ThreadPoolExecutor | None,
                 count: RequestCount) -> Iterator[Item]:
    """Every source's objects in ``keys``, merged by relative key (config order among equals)."""
    listings = []
    for index, source in enumerate(context.config.sources):
        listing = RangeListing(s3, source.bucket, source.prefix, keys, pool, count)
        listings.append(_relative(listing, index, source.prefix, context.ordered and not plain_prefix(source)))
    # heapq.merge breaks ties by the position of the iterable, so equal relative keys come in config order.
    yield from heapq.merge(*listings, key=lambda item: item[0])


def _relative(objects: Iterable[SourceObject], index: int, prefix: str, check: bool) -> Iterator[Item]:
    cut = len(prefix)
    for obj in objects:
        rel = obj.key[cut:]
        if check and (rel == "" or rel.startswith("/")):
            raise KeySpaceChangedError(
                f"s3://{obj.bucket}/{obj.key} appeared after the partition found no key equal to or under "
                f"{prefix!r} + '/': its target key would break the order the shards rely on; start the run again")
        yield rel, index, obj


# --- targets -----------------------------------------------------------------------------------------
class _TargetCursors:
    """Each target location listed over the shard's relative range, in order, and read forward only: a
    lookup of ``prefix + rel`` moves that location's cursor to the first key not before it."""

    def __init__(self, s3: S3Gateway, config: CopyConfig, keys: KeyRange, pool: ThreadPoolExecutor | None,
                 count: RequestCount) -> None:
        self.skip_lookup = config.options.overwrite == "always"  # nothing existing changes a decision
        self.cursors: dict[tuple[str, str], _Cursor] = {}
        for target in () if self.skip_lookup else config.targets:
            where = (target.bucket, target.prefix)
            if where not in self.cursors:
                self.cursors[where] = _Cursor(iter(RangeListing(s3, target.bucket, target.prefix, keys, pool, count)))

    def existing(self, rows: Sequence[tuple[SourceObject, TargetConfig, str]]) -> list[ExistingTarget | None]:
        if self.skip_lookup:
            return [None] * len(rows)
        return [self.cursors[target.bucket, target.prefix].seek(key) for _, target, key in rows]


class _Cursor:
    def __init__(self, objects: Iterator[SourceObject]) -> None:
        self.objects = objects
        self.current: SourceObject | None = next(objects, None)

    def seek(self, key: str) -> ExistingTarget | None:
        while self.current is not None and self.current.key < key:
            self.current = next(self.objects, None)
        if self.current is not None and self.current.key == key:
            found = self.current
            return ExistingTarget(found.size, found.etag, found.checksum_algorithm)
        return None


class _TargetsInMemory:
    """For a configuration that plans in one shard: every target location listed whole, as the single
    planner does (``planner.list_targets``), and the claimed target keys carried across continuations."""

    def __init__(self, s3: S3Gateway, context: ShardingContext, summary: ShardSummary, count: RequestCount,
                 writer: _Writer) -> None:
        self.known: dict[str, dict[str, ExistingTarget]] = {}
        if context.config.options.overwrite != "always":
            for bucket, prefix in _target_locations(context.config):
                keys = self.known.setdefault(bucket, {})
                for obj in RangeListing(s3, bucket, prefix, KeyRange(), None, count):
                    keys[obj.key] = ExistingTarget(obj.size, obj.etag, obj.checksum_algorithm)
        writer.keep_claims(summary)

    def existing(self, rows: Sequence[tuple[SourceObject, TargetConfig, str]]) -> list[ExistingTarget | None]:
        found: list[ExistingTarget | None] = []
        for _, target, key in rows:
            there = self.known.get(target.bucket)
            found.append(there.get(key) if there else None)
        return found


def _target_locations(config: CopyConfig) -> list[tuple[str, str]]:
    """Distinct (bucket, prefix) pairs, without prefixes a listed one covers (as ``planner.target_prefixes``)."""
    kept: list[tuple[str, str]] = []
    for bucket, prefix in sorted({(t.bucket, t.prefix) for t in config.targets}):
        if not any(b == bucket and prefix.startswith(p) for b, p in kept):
            kept.append((bucket, prefix))
    return kept


# --- writing -----------------------------------------------------------------------------------------
class _Writer:
    """The shard's outputs: a segment being filled, copies waiting to be looked at for splitting, a skip
    buffer; files written on a thread pool, the summary only after all of them (layout.py: invariant)."""

    def __init__(self, loc: ManifestLocation, context: ShardingContext, summary: ShardSummary, s3: S3Gateway,
                 pool: ThreadPoolExecutor, count: RequestCount) -> None:
        self.loc, self.context, self.s3, self.pool, self.count = loc, context, s3, pool, count
        self.params = context.params
        self.shard = summary.shard
        self.summary = summary
        self.listed, self.unmatched = summary.listed, summary.unmatched
        self.copies, self.bytes = summary.copies, summary.bytes
        self.next_copy = summary.next_copy
        self.cursor: str | None = summary.cursor
        self.extra: dict[str, Any] = dict(summary.extra)
        self.end: str | None = None  # the end of the range still to plan (plan_shard sets it)
        self.segments: list[SegmentRef] = list(summary.segments)
        self.split_files: list[FileRef] = list(summary.splits)
        self.skip_files: list[FileRef] = list(summary.skipped)
        self.reasons: Counter[str] = Counter(dict(summary.skipped_by_reason))
        self.segment: list[CopyTask] = []
        self.segment_bytes = self.segment_requests = 0
        self.to_split: list[CopyTask] = []
        self.splits: list[SplitCopy] = []
        self.skips: list[SkippedObject] = []
        self.writes: list[Future[None]] = []
        self.claims: dict[tuple[str, str], tuple[str, str]] | None = None

    # --- what the loop hands over ---
    def copy(self, task: CopyTask) -> None:
        copy_id = layout.first_copy_id(self.shard) + self.next_copy
        self.next_copy += 1
        task = task._replace(task_id=f"c{copy_id}", copy_id=copy_id)
        self.copies += 1
        self.bytes += task.size
        if task.size > self.params.max_payload_bytes:
            self.to_split.append(task)
            if len(self.to_split) >= SPLIT_BATCH:
                self._look_at_splits()
            return
        nbytes, requests = task.size, binning.request_count(task, self.params.part_size)
        full = len(self.segment) >= self.params.max_objects_per_payload
        if self.segment and (full or self.segment_bytes + nbytes > self.params.max_payload_bytes):
            self._flush_segment()
        self.segment.append(task)
        self.segment_bytes += nbytes
        self.segment_requests += requests

    def skip(self, skipped: SkippedObject) -> None:
        if skipped.reason != planning.UNMATCHED:
            self.reasons[planning.reason_kind(skipped.reason)] += 1
        self.skips.append(skipped)
        if len(self.skips) >= layout.SKIP_FILE_ROWS:
            self._flush_skips()

    def keep_claims(self, summary: ShardSummary) -> None:
        """Carry claimed target keys across batches and continuations (single-shard configurations)."""
        saved = self.s3.get_json_or_none(self.loc.bucket, layout.shard_dir(self.loc, self.shard) + CLAIMED)
        self.claims = {(b, k): (sb, sk) for b, k, sb, sk in saved or ()} if summary.invocations > 1 else {}

    def claim(self, rows: list[planning.CandidateRow]) -> list[planning.CandidateRow]:
        """Rows whose target key an earlier batch claimed are skipped as ``decide`` skips a collision; the
        others go on, and the keys ``decide`` will claim are remembered. Only with ``keep_claims``: when
        shards follow the key order, one batch holds every candidate of a target key."""
        if self.claims is None:
            return rows
        kept: list[planning.CandidateRow] = []
        for row in rows:
            obj, bucket, key, _ = row
            first = self.claims.get((bucket, key))
            if first is not None:
                self.skip(planning.skip(obj, f"{planning.TARGET_COLLISION} with s3://{bucket}/{key} of "
                                             f"s3://{first[0]}/{first[1]}", bucket, key))
                continue
            kept.append(row)
        for obj, bucket, key, _ in kept:  # decide claims a key for every candidate it does not skip first
            # decide claims an archived object's key too when it restores (options.restore)
            readable = bool(self.params.restore_tier) or obj.storage_class not in limits.ARCHIVED_STORAGE_CLASSES
            if obj.size <= limits.MAX_OBJECT_SIZE and readable:
                self.claims.setdefault((bucket, key), (obj.bucket, obj.key))
        return kept

    # --- files ---
    def _put(self, key: str, body: bytes) -> None:
        def put() -> None:
            self.s3.put_bytes(self.loc.bucket, key, body, JSON_CONTENT_TYPE)
            self.count.add()
        self.writes.append(self.pool.submit(put))

    def _flush_segment(self) -> None:
        if not self.segment:
            return
        number = len(self.segments)
        key = layout.segment_key(self.loc, self.shard, number)
        # A segment is a payload file whose numbers the assembler gives: payload_id is its place in the
        # shard, worker -1 (the worker list names the payload number the worker's results go under).
        self._put(key, manifest.encode_payload(Payload(payload_id=number, worker=-1, tasks=tuple(self.segment))))
        cost = self.segment_bytes + limits.REQUEST_COST_BYTES * self.segment_requests
        self.segments.append(SegmentRef(key, len(self.segment), self.segment_bytes, self.segment_requests, cost))
        self.segment, self.segment_bytes, self.segment_requests = [], 0, 0

    def _flush_skips(self) -> None:
        if not self.skips:
            return
        key = layout.skipped_key(self.loc, self.shard, len(self.skip_files))
        self._put(key, encode_json([s.to_dict() for s in self.skips]))
        self.skip_files.append(FileRef(key, len(self.skips), sum(s.size for s in self.skips)))
        self.skips = []

    def _flush_splits(self) -> None:
        self._look_at_splits()
        while self.splits:
            rows, self.splits = self.splits[:layout.SPLIT_FILE_ROWS], self.splits[layout.SPLIT_FILE_ROWS:]
            key = layout.splits_key(self.loc, self.shard, len(self.split_files))
            self._put(key, encode_json([s.to_dict() for s in rows]))
            self.split_files.append(FileRef(key, len(rows), sum(s.size for s in rows)))

    def _look_at_splits(self) -> None:
        """HEAD part 1 of each copy to split (its part layout gives the part size, as the single planner's
        ``learn_layouts``); a copy whose existing target is proven identical by checksum is skipped (as its
        ``prove_identical``); one that can no longer be read is skipped as failed at plan."""
        tasks, self.to_split = self.to_split, []
        if not tasks:
            return
        s3, params = self.s3, self.params

        def head(bucket: str, key: str, if_match: str) -> ObjectHead:
            self.count.add()
            return s3.head_object(bucket, key, if_match=if_match, checksums=True)

        def look(task: CopyTask) -> SplitCopy | SkippedObject:
            try:
                if task.compare_checksum:
                    reason = planning.prove_by_checksums(task, head)
                    if reason:
                        return SkippedObject(task.source_bucket, task.source_key, task.size, reason,
                                             task.target_bucket, task.target_key)
                self.count.add()
                first = s3.head_object(task.source_bucket, task.source_key, "", 1)
            except ObjectError as error:
                return SkippedObject(task.source_bucket, task.source_key, task.size,
                                     f"{planning.FAILED_AT_PLAN}: {error}", task.target_bucket, task.target_key)
            size = planning.split_part_size(task.size, params.part_size, params.max_payload_bytes,
                                            first.parts_count, first.first_part_size)
            return SplitCopy(copy_id=task.copy_id, source_bucket=task.source_bucket, source_key=task.source_key,
                             size=task.size, etag=task.etag, target_bucket=task.target_bucket,
                             target_key=task.target_key, part_size=size, part_count=part_count(task.size, size),
                             upload_id="", target_etag=task.target_etag)

        for result in self.pool.map(look, tasks):
            if isinstance(result, SkippedObject):
                self.copies -= 1
                self.bytes -= result.size
                self.skip(result)
            else:
                self.splits.append(result)

    def checkpoint(self, done: bool) -> ShardSummary:
        """Flush every buffer, wait for every file, then write the summary (the commit point)."""
        self._flush_segment()
        self._flush_splits()
        self._flush_skips()
        if self.claims is not None and not done:
            self._put(layout.shard_dir(self.loc, self.shard) + CLAIMED,
                      encode_json([[b, k, sb, sk] for (b, k), (sb, sk) in self.claims.items()]))
        for write in self.writes:
            write.result()
        self.writes = []
        summary = replace(
            self.summary, done=done, cursor=self.cursor, next_copy=self.next_copy, listed=self.listed,
            unmatched=self.unmatched, copies=self.copies, bytes=self.bytes, segments=tuple(self.segments),
            splits=tuple(self.split_files), skipped=tuple(self.skip_files),
            skipped_by_reason=tuple(sorted(self.reasons.items())), extra=dict(self.extra),
            requests=self.summary.requests + self.count.value + 1)
        self.s3.put_json(self.loc.bucket, layout.summary_key(self.loc, self.shard), summary.to_dict())
        return summary
