"""The planner Lambda's core: list the sources, route, decide, split, bin, start split uploads, write the plan.

Everything is validated and listed before the first write. The decisions are pure (lambdas/planning.py);
this module only fetches what they need from S3 (listings, the part layout of objects to split) and
executes the result (multipart uploads for split objects, the plan files).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lambdas import binning, history, limits, manifest, planning
from lambdas.config import check_allowed_buckets, check_object_acl, check_restore, parse_config
from lambdas.errors import ConfigError, ObjectError, SourceNotFoundError
from lambdas.gateway import ObjectHead, S3Gateway, tagging_header
from lambdas.integrity import COMPOSITE, multipart_spec
from lambdas.logs import get_logger
from lambdas.models import (
    CopyConfig,
    CopyOptions,
    CopyTask,
    ExistingTarget,
    PlanPointer,
    RunPlan,
    SkippedObject,
    SplitCopy,
)
from lambdas.planning import CandidateRow, PlanParams
from lambdas.routing import Router, is_folder_marker
from lambdas.settings import Settings

log = get_logger("planner")

Upload = planning.StartedUpload


@dataclass
class _Tally:
    """What the listing saw besides candidates."""

    listed: int = 0
    unmatched: int = 0
    skipped: list[SkippedObject] = field(default_factory=list)


def plan_run(document: Any, run_id: str, settings: Settings, s3: S3Gateway, now: str) -> PlanPointer:
    config = parse_config(document)
    problems = check_allowed_buckets(config, settings.source_buckets, settings.target_buckets)
    problems += check_object_acl(config, settings.object_acl)
    problems += check_restore(config, settings.restore_enabled)
    if problems:
        raise ConfigError(problems)
    location = manifest.run_location(settings.manifest_bucket, settings.manifest_prefix, run_id)
    params = PlanParams.from_settings(settings, config.options)
    # Every request to a source or target carries its expected owner and payer, every write the ACL.
    s3 = s3.for_buckets(config.bucket_access())
    check_buckets_exist(document, config, s3)
    with _gc_paused():
        existing = {} if config.options.overwrite == "always" else list_targets(config, s3)
        tally = _Tally()
        decisions = planning.decide(candidates(config, s3, existing, tally), params)
        del existing
        to_split = planning.split_candidates(decisions.copies, params)
        dropped = prove_identical([t for t in to_split if t.compare_checksum], settings, s3)
        part_sizes, heads, failed = learn_layouts([t for t in to_split if t.copy_id not in dropped],
                                                  settings, params, s3)
        dropped.update(failed)
        copies = [t for t in decisions.copies if t.copy_id not in dropped] if dropped else decisions.copies
        work = planning.build_work(copies, part_sizes, params)
        # Each payload runs as a child execution: the parent's history grows with the workers, a child's with its
        # payload's continuations, and a worker's Map must hold a result per payload (lambdas/history.py).
        events = history.check_history_budget(work.payload_bytes, params.workers, params.max_payload_bytes,
                                              params.max_objects_per_payload,
                                              payloads_per_worker=[len(ids) for ids in work.worker_payloads])
        skipped = tally.skipped + decisions.skipped + list(dropped.values())
        uploads: dict[int, Upload] = {}
        if work.splits and not config.options.dry_run:
            uploads = create_uploads(work.splits, heads, config.options, s3, settings.worker_threads)
            work = planning.with_uploads(work, uploads)
        totals = planning.totals(copies, skipped, work, tally.listed, tally.unmatched)
        plan = RunPlan(run_id=run_id, created_at=now, config=config, workers=params.workers,
                       worker_payloads=work.worker_payloads, splits=work.splits, totals=totals,
                       worker_loads=work.worker_loads)
        try:
            manifest.write_plan(s3, location, plan, list(work.payloads), skipped)
        except BaseException:
            abort_uploads(work.splits, uploads, s3)
            raise
        # Let the tasks go while the collector is still paused: alive when it resumes, a million of them
        # (made with the collector off, so all in its youngest generation) would be walked by its first
        # collection (~0.3 s at 1,000,000 objects). What follows reads the plan and the totals only.
        del decisions, copies, to_split, work, skipped, tally
    log.info("plan written", extra={
        "copies": totals.copies, "bytes": totals.bytes, "payloads": totals.payloads, "workers": params.workers,
        "split_objects": totals.split_objects, "skipped": totals.skipped, "unmatched": totals.unmatched,
        "skipped_by_reason": dict(totals.skipped_by_reason), "history_events": events,
        "balance": round(binning.balance(plan.worker_loads), 4), "dry_run": config.options.dry_run,
        "manifest": location.uri()})
    return PlanPointer(run_id=run_id, manifest=location, dry_run=config.options.dry_run,
                       workers=plan.worker_payloads, copies=totals.copies, bytes=totals.bytes, skipped=totals.skipped,
                       worker_lists=tuple(manifest.worker_list_key(location, worker)
                                          for worker in range(len(plan.worker_payloads))))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the plan is built and written: the listing creates
    millions of small objects and no cycles, and each full collection would walk all of them again
    (~25% of the time at 1,000,000 objects; another ~4 s when it ran during the writes)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- checking and listing -----------------------------------------------------------------------------
def check_buckets_exist(document: Any, config: CopyConfig, s3: S3Gateway) -> None:
    """Every source location must exist and be listable (SourceNotFoundError), and every target's
    (ConfigError), each problem naming the field and the fix."""
    statuses: dict[tuple[str, str], str] = {}

    def status(bucket: str, prefix: str) -> str:
        if (bucket, prefix) not in statuses:
            statuses[bucket, prefix] = s3.location_status(bucket, prefix)
        return statuses[bucket, prefix]

    for index, source in enumerate(config.sources):
        found = status(source.bucket, source.prefix)
        if found != "ok":
            problem = _location_problem(found, source.bucket, source.prefix, "source_buckets", "read",
                                        source.expected_bucket_owner, requester_pays=bool(source.request_payer))
            raise SourceNotFoundError(f"{_source_path(document, index)}.{problem}")
    problems = []
    for target in config.targets:
        found = status(target.bucket, target.prefix)
        if found != "ok":
            owner = config.bucket_access().get(target.bucket)
            problem = _location_problem(found, target.bucket, target.prefix, "target_buckets", "write",
                                        owner.expected_owner if owner else "")
            problems.append(f"s3_copy_config.target_s3_config[{target.index}].{problem}")
    if problems:
        raise ConfigError(problems)


def _location_problem(found: str, bucket: str, prefix: str, variable: str, verb: str, owner: str = "",
                      requester_pays: bool = True) -> str:
    """The problem with a location, after the field path it belongs to (``...source_s3_config[0].``).
    S3 answers 403 also to a request whose expected owner is not the bucket's (Amazon S3 user guide,
    "Verifying bucket ownership with bucket owner condition") and to a request without RequestPayer to a
    Requester Pays bucket it does not own (Amazon S3 user guide, "Downloading objects from Requester Pays
    buckets"), so those causes are named too."""
    if found == "missing":
        return f"s3_bucket: bucket {bucket!r} does not exist: create it or fix the name"
    causes = [f"the bucket is not owned by account {owner} (its expected_bucket_owner)"] if owner else []
    if not requester_pays:
        causes.append('the bucket is Requester Pays (set "request_payer": "requester")')
    causes += ["the bucket's owner has not granted this stack access (`sfncopy policy` prints the statements "
               "to add)",
               f"s3_path is outside the env file's {variable} entry for {bucket!r} (add it there and redeploy)"]
    return (f"s3_bucket: this stack may not {verb} s3://{bucket}/{prefix} (listing it was denied): "
            + ", or ".join(causes))


def _source_path(document: Any, index: int) -> str:
    """The JSON path of source ``index`` as the user wrote it (one source object, or a list of them)."""
    copy_config = document.get("s3_copy_config") if isinstance(document, dict) else None
    sources = copy_config.get("source_s3_config") if isinstance(copy_config, dict) else None
    return f"s3_copy_config.source_s3_config[{index}]" if isinstance(sources, list) else \
        "s3_copy_config.source_s3_config"


def target_prefixes(config: CopyConfig) -> list[tuple[str, str]]:
    """Distinct (bucket, prefix) pairs to list, without prefixes that a listed one already covers."""
    pairs = sorted({(t.bucket, t.prefix) for t in config.targets})
    kept: list[tuple[str, str]] = []
    for bucket, prefix in pairs:  # sorted: a covering prefix comes before the prefixes it covers
        if not any(b == bucket and prefix.startswith(p) for b, p in kept):
            kept.append((bucket, prefix))
    return kept


def list_targets(config: CopyConfig, s3: S3Gateway) -> dict[str, dict[str, ExistingTarget]]:
    """What already exists under each target: one ListObjectsV2 request per 1,000 keys instead of a HEAD
    per object. bucket -> key -> (size, ETag)."""
    existing: dict[str, dict[str, ExistingTarget]] = {}
    for bucket, prefix in target_prefixes(config):
        keys = existing.setdefault(bucket, {})
        for obj in s3.list_objects(bucket, prefix):
            keys[obj.key] = ExistingTarget(obj.size, obj.etag, obj.checksum_algorithm)
    return existing


def candidates(config: CopyConfig, s3: S3Gateway, existing: Mapping[str, Mapping[str, ExistingTarget]],
               tally: _Tally) -> Iterator[CandidateRow]:
    """Stream every source listing through routing: one candidate per (object, matching target).

    Runs once per listed object (a million times in a big run), hence the local names."""
    report_unmatched = config.options.report_unmatched
    for source in config.sources:
        route = Router(source, config.targets).route
        listed = unmatched = 0
        try:
            for obj in s3.list_objects(source.bucket, source.prefix):
                listed += 1
                routes = route(obj)
                if routes:
                    for target, key in routes:
                        there = existing.get(target.bucket)  # None for a target with nothing in it yet
                        # A plain tuple: a Candidate's own constructor costs a tenth of this loop.
                        yield obj, target.bucket, key, there.get(key) if there else None
                elif is_folder_marker(obj.key):
                    tally.skipped.append(planning.skip(obj, planning.FOLDER_MARKER))
                else:
                    unmatched += 1
                    if report_unmatched:
                        tally.skipped.append(planning.skip(obj, planning.UNMATCHED))
        finally:
            tally.listed += listed
            tally.unmatched += unmatched


# --- split objects ------------------------------------------------------------------------------------
def learn_layouts(to_split: list[CopyTask], settings: Settings, params: PlanParams,
                  s3: S3Gateway) -> tuple[dict[int, int], dict[int, ObjectHead], dict[int, SkippedObject]]:
    """HEAD part 1 of each object to split (concurrently) to learn how it was uploaded, and choose its
    part size. Returns copy_id -> part size, copy_id -> HEAD, and the objects that could not be read
    (copy_id -> skip: deleted or denied since the listing; the run goes on without them)."""
    futures = _run_all(settings.worker_threads,
                       {t.copy_id: (s3.head_object, (t.source_bucket, t.source_key, "", 1)) for t in to_split})
    part_sizes: dict[int, int] = {}
    heads: dict[int, ObjectHead] = {}
    failed: dict[int, SkippedObject] = {}
    for task in to_split:
        future = futures[task.copy_id]
        error = future.exception()
        if isinstance(error, ObjectError):
            failed[task.copy_id] = SkippedObject(
                task.source_bucket, task.source_key, task.size, f"{planning.FAILED_AT_PLAN}: {error}",
                task.target_bucket, task.target_key)
            continue
        if error is not None:
            raise error
        head: ObjectHead = future.result()
        heads[task.copy_id] = head
        part_sizes[task.copy_id] = planning.split_part_size(
            task.size, params.part_size, params.max_payload_bytes, head.parts_count, head.first_part_size)
    return part_sizes, heads, failed


def prove_identical(to_compare: list[CopyTask], settings: Settings, s3: S3Gateway) -> dict[int, SkippedObject]:
    """Copies to split whose existing target is proven identical by checksum: copy_id -> skip. A split
    copy's chunks run on several workers, so the comparison the worker makes for a whole copy is made
    here, before any upload is started. Anything unproven (a HEAD that fails included) is copied."""
    def head(bucket: str, key: str, if_match: str) -> ObjectHead:
        return s3.head_object(bucket, key, if_match=if_match, checksums=True)

    def compare(task: CopyTask) -> str:
        try:
            return planning.prove_by_checksums(task, head)
        except ObjectError:
            return ""  # the source changed or is gone since the listing: its copy decides

    futures = _run_all(settings.worker_threads, {t.copy_id: (compare, (t,)) for t in to_compare})
    proven: dict[int, SkippedObject] = {}
    for task in to_compare:
        reason = futures[task.copy_id].result()
        if reason:
            proven[task.copy_id] = SkippedObject(task.source_bucket, task.source_key, task.size, reason,
                                                 task.target_bucket, task.target_key)
    return proven


def create_uploads(splits: Sequence[SplitCopy], heads: Mapping[int, ObjectHead], options: CopyOptions,
                   s3: S3Gateway, threads: int) -> dict[int, Upload]:
    """Start one multipart upload per split object (concurrently), with the source's headers and tags.
    ``heads``: HEADs already made, by copy id (a split without one is HEADed here). If any upload fails,
    abort the ones that were started and raise: a failed plan leaves no upload behind. The sharded
    planner's assembler starts its uploads here too."""
    futures = _run_all(threads, {s.copy_id: (_create_upload, (s, heads.get(s.copy_id), options, s3)) for s in splits})
    created = {cid: f.result() for cid, f in futures.items() if f.exception() is None}
    errors = [f.exception() for f in futures.values() if f.exception() is not None]
    if errors:
        abort_uploads(splits, created, s3)
        raise errors[0]  # type: ignore[misc]
    return created


def _create_upload(split: SplitCopy, head: ObjectHead | None, options: CopyOptions, s3: S3Gateway) -> Upload:
    """Start the split's upload with the source's headers and tags, and with the whole-object checksum its
    completion will ask S3 to validate (lambdas/integrity.py): the source's own when it keeps a CRC. ``head``
    (a HEAD of part 1, the layout) does not carry the object's checksum, nor, for objects uploaded in parts, the
    object's headers on moto (on S3 it does): one HEAD of the whole object with checksum mode gives both."""
    tags = s3.get_tags(split.source_bucket, split.source_key) if options.preserve_tags else {}
    whole = s3.head_object(split.source_bucket, split.source_key, checksums=True)
    headers = whole if options.preserve_metadata else None
    if head is None and whole.checksum is not None and whole.checksum.type == COMPOSITE:
        # Only a HEAD of part 1 tells the layout a composite checksum depends on (the sharded assembler passes none).
        head = s3.head_object(split.source_bucket, split.source_key, part_number=1)
    layout = (head.parts_count, head.first_part_size) if head is not None else (0, 0)
    spec = multipart_spec(whole.checksum, split.part_size, split.part_count, *layout)
    upload_id = s3.create_multipart_upload(split.target_bucket, split.target_key, headers, tags,
                                           storage_class=options.storage_class, sse=options.sse,
                                           checksum=(spec.algorithm, spec.type))
    too_long = len(tagging_header(tags).encode()) > limits.MAX_TAGGING_HEADER_BYTES
    return Upload(upload_id, tuple(sorted(tags.items())) if too_long else (), spec.algorithm, spec.type,
                  spec.expected)


def abort_uploads(splits: Sequence[SplitCopy], uploads: Mapping[int, Upload], s3: S3Gateway) -> None:
    for split in splits:
        if split.copy_id in uploads:
            s3.abort_multipart_upload(split.target_bucket, split.target_key, uploads[split.copy_id][0])
            log.warning("upload aborted", extra={"key": split.target_key, "upload_id": uploads[split.copy_id][0]})


def _run_all(threads: int, calls: Mapping[int, tuple[Any, tuple[Any, ...]]]) -> dict[int, Future[Any]]:
    """Run every call on a thread pool and wait for all of them (S3 requests wait, they do not compute)."""
    if not calls:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(calls)))) as pool:
        return {key: pool.submit(fn, *args) for key, (fn, args) in calls.items()}
