"""Hand the assembled plan to the copy stage: the workers' lists and the index, nothing else rewritten.

    pointer = publish(assembled, loc, s3)

The copy stage, the finalizer, cleanup and ``sfncopy report/status`` read a plan through its index
(``plan/index.json``, RunPlan) and the workers' lists (``plan/workers/<worker>.json``, the arrays of
WorkItems the Distributed Maps' ItemReaders read). A WorkItem names the payload's run-wide id, its worker and
the key of its file, so payload files stay where the shards (segments) and the assembler (chunk payloads,
``plan/sharding/chunks/``) wrote them: the reader takes the id and worker from the item, not from the file
(manifest.read_payload_file). The index names the shards' skipped files (``RunPlan.skipped_files``), which
the finalizer streams one after another. So this step writes:

1. each worker's list of WorkItems, made from the assembler's PayloadRefs (one GET and one PUT per worker);
2. the index, last (an index points at complete files).

Its requests grow with the workers and its memory with the payload count (a PayloadRef is ~100 bytes:
100,000 payloads at 10^8 objects are ~10 MB), never with objects or skipped rows: no payload or skip file
is read. Run again (a Step Functions retry), it writes the same files.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.logs import get_logger
from lambdas.models import ManifestLocation, PlanPointer, RunPlan, SplitCopy, WorkItem
from lambdas.sharding import layout
from lambdas.sharding.assemble import READ_THREADS, AssembledPlan
from lambdas.sharding.layout import PayloadRef, ShardingContext

log = get_logger("publish")


def relative(loc: ManifestLocation, key: str) -> str:
    """``key`` relative to the run's folder, as the index names files (RunPlan.skipped_files)."""
    if not key.startswith(loc.prefix):
        raise ValueError(f"{key!r} is not in the run's folder {loc.prefix!r}")
    return key[len(loc.prefix):]


def publish(plan: AssembledPlan, loc: ManifestLocation, s3: S3Gateway, threads: int = READ_THREADS) -> PlanPointer:
    context = ShardingContext.from_dict(s3.get_json(loc.bucket, layout.context_key(loc)))

    def read_refs(key: str) -> list[PayloadRef]:
        return [PayloadRef.from_dict(r) for r in s3.get_json(loc.bucket, key)]

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(plan.worker_lists)))) as pool:
        refs = list(pool.map(read_refs, plan.worker_lists))
    items = [[WorkItem(ref.payload, worker, ref.key) for ref in worker_refs] for worker, worker_refs in enumerate(refs)]
    manifest.write_worker_lists(s3, loc, items)
    splits = tuple(SplitCopy.from_dict(s) for s in s3.get_json(loc.bucket, plan.splits_key))
    worker_payloads = tuple(tuple(item.payload for item in worker_items) for worker_items in items)
    run_plan = RunPlan(run_id=plan.run_id, created_at=context.created_at, config=context.config,
                       workers=plan.workers, worker_payloads=worker_payloads, splits=splits, totals=plan.totals,
                       worker_loads=plan.worker_loads,
                       skipped_files=tuple(relative(loc, key) for key in plan.skipped_keys))
    manifest.write_index(s3, loc, run_plan)
    log.info("plan published", extra={"payloads": sum(len(w) for w in items), "skipped_files": len(plan.skipped_keys),
                                       "skipped": plan.totals.skipped, "split_objects": len(splits)})
    return PlanPointer(run_id=plan.run_id, manifest=loc, dry_run=context.config.options.dry_run,
                       workers=worker_payloads, copies=plan.totals.copies, bytes=plan.totals.bytes,
                       skipped=plan.totals.skipped,
                       worker_lists=tuple(manifest.worker_list_key(loc, w) for w in range(len(worker_payloads))))
