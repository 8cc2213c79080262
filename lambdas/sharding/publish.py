"""Hand the assembled plan to the copy stage in the single planner's layout (lambdas/manifest.py).

    pointer = publish(assembled, loc, s3)

The copy stage, the finalizer, cleanup and ``sfncopy report/status`` read a plan as the single planner
writes it: ``plan/index.json`` (RunPlan), ``plan/payloads/<id>.json``, ``plan/skipped.json`` and
``plan/workers/<worker>.json`` (the arrays of payload ids the Distributed Maps' ItemReaders read). The
assembler numbers payloads worker by worker (consecutive ids, as PlanPointer requires) but keeps them where
the shards wrote them (segments) or under ``plan/sharding/chunks/``. This step writes them again where the
readers look, each with its own id and worker inside (the worker keys its checkpoints by the payload file's
``payload_id``), so no reader changes:

1. every payload file, re-encoded with its run-wide id and worker, at ``manifest.payload_key``;
2. the shards' skipped files, joined into ``plan/skipped.json`` (the finalizer streams that one file);
3. the workers' id lists and the index, last (``manifest.write_plan``: an index points at complete files).

Run again (a Step Functions retry), it writes the same files. Memory holds one payload per thread and the
skipped rows (a run that skips tens of millions of objects would need the finalizer to read the shards'
files itself; not done here).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lambdas import manifest
from lambdas.gateway import JSON_CONTENT_TYPE, S3Gateway
from lambdas.logs import get_logger
from lambdas.models import ManifestLocation, Payload, PlanPointer, RunPlan, SkippedObject, SplitCopy
from lambdas.sharding import layout
from lambdas.sharding.assemble import READ_THREADS, AssembledPlan
from lambdas.sharding.layout import PayloadRef, ShardingContext

log = get_logger("publish")


def publish(plan: AssembledPlan, loc: ManifestLocation, s3: S3Gateway, threads: int = READ_THREADS) -> PlanPointer:
    context = ShardingContext.from_dict(s3.get_json(loc.bucket, layout.context_key(loc)))
    refs = [[PayloadRef.from_dict(r) for r in s3.get_json(loc.bucket, key)] for key in plan.worker_lists]
    work = [(worker, ref) for worker, worker_refs in enumerate(refs) for ref in worker_refs]

    def move(item: tuple[int, PayloadRef]) -> None:
        worker, ref = item
        tasks = Payload.from_dict(s3.get_json(loc.bucket, ref.key)).tasks
        body = manifest.encode_payload(Payload(payload_id=ref.payload, worker=worker, tasks=tasks))
        s3.put_bytes(loc.bucket, manifest.payload_key(loc, ref.payload), body, JSON_CONTENT_TYPE)

    if work:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(work)))) as pool:
            for _ in pool.map(move, work):  # consume, so the first failure is raised here
                pass
    skipped = [SkippedObject.from_dict(row) for key in plan.skipped_keys for row in s3.get_json(loc.bucket, key)]
    splits = tuple(SplitCopy.from_dict(s) for s in s3.get_json(loc.bucket, plan.splits_key))
    worker_payloads = tuple(tuple(ref.payload for ref in worker_refs) for worker_refs in refs)
    run_plan = RunPlan(run_id=plan.run_id, created_at=context.created_at, config=context.config,
                       workers=plan.workers, worker_payloads=worker_payloads, splits=splits, totals=plan.totals,
                       worker_loads=plan.worker_loads)
    manifest.write_plan(s3, loc, run_plan, [], skipped)
    log.info("plan published", extra={"payloads": len(work), "skipped": len(skipped), "split_objects": len(splits)})
    return PlanPointer(run_id=plan.run_id, manifest=loc, dry_run=context.config.options.dry_run,
                       workers=worker_payloads, copies=plan.totals.copies, bytes=plan.totals.bytes,
                       skipped=plan.totals.skipped,
                       worker_lists=tuple(manifest.worker_list_key(loc, w) for w in range(len(worker_payloads))))
