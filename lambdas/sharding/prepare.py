"""The first step of sharded planning: validate the config, cut its key space, write what the shards read.

    pointer = prepare_run(document, run_id, settings, s3, now)

Writes ``plan/sharding/context.json`` (config, plan parameters) and ``plan/sharding/shards.json`` (one item
per shard, which the shards' Distributed Map reads with its ItemReader), and answers pointers and counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lambdas import manifest
from lambdas.config import check_allowed_buckets, check_object_acl, check_restore, parse_config
from lambdas.errors import ConfigError, SourceNotFoundError
from lambdas.gateway import S3Gateway
from lambdas.logs import get_logger
from lambdas.models import CopyConfig, ManifestLocation
from lambdas.planning import PlanParams
from lambdas.settings import Settings
from lambdas.sharding import inventory, layout
from lambdas.sharding.keyspace import KeyRange
from lambdas.sharding.layout import ShardingContext
from lambdas.sharding.listing import RequestCount, list_page, probe_batch
from lambdas.sharding.partition import (
    PROBE_CONCURRENCY,
    Partition,
    PartitionParams,
    ProbeBatch,
    ShardSpec,
    order_problems,
    partition,
)

log = get_logger("sharding")


@dataclass(frozen=True)
class Prepared:
    """The prepare step's answer: where the shards' items are, and how many."""

    run_id: str
    manifest: ManifestLocation
    shards: int
    items: str  # key of shards.json in the manifest bucket
    ordered: bool
    estimated_objects: int
    probes: int

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "manifest": {"bucket": self.manifest.bucket, "prefix": self.manifest.prefix},
                "shards": self.shards, "items": self.items, "ordered": self.ordered,
                "estimated_objects": self.estimated_objects, "probes": self.probes}


def prepare_run(document: Any, run_id: str, settings: Settings, s3: S3Gateway, now: str,
                params: PartitionParams | None = None, wrap_probe: Callable[[ProbeBatch], ProbeBatch] | None = None
                ) -> Prepared:
    """``wrap_probe`` wraps the partition's probes (the benchmark times their rounds with it)."""
    sources = inventory.manifest_sources(document)  # validated; ConfigError names the field
    config = parse_config(inventory.without_manifests(document))
    problems = check_allowed_buckets(config, settings.source_buckets, settings.target_buckets)
    problems += check_object_acl(config, settings.object_acl)
    problems += check_restore(config, settings.restore_enabled)
    if problems:
        raise ConfigError(problems)
    loc = manifest.run_location(settings.manifest_bucket, settings.manifest_prefix, run_id)
    s3 = s3.for_buckets(config.bucket_access())
    _check_locations(config, s3, listed=[ref is None for ref in sources] or [True] * len(config.sources))
    plan_params = PlanParams.from_settings(settings, config.options)
    count = RequestCount()
    if any(sources):
        # A flattening (or nested) target gathers keys from anywhere: its collisions are caught in one shard.
        problems = order_problems(config)
        units = inventory.plan_units(sources, config, s3, params or PartitionParams(), count, one_shard=bool(problems))
        cut = Partition(shards=units.shards, ordered=False, reasons=("the sources are manifests", *problems),
                        probes=count.value, estimated_objects=units.estimated_objects)
        s3.put_json(loc.bucket, layout.key(loc, inventory.UNITS), units.to_dict())
    else:
        probe = probe_batch(s3, config.sources, max(settings.worker_threads, PROBE_CONCURRENCY), count)
        cut = partition(config, params or PartitionParams(), wrap_probe(probe) if wrap_probe else probe)
    context = ShardingContext(run_id=run_id, created_at=now, config=config, params=plan_params, ordered=cut.ordered,
                              shards=len(cut.shards), reasons=cut.reasons, manifests=any(sources))
    s3.put_json(loc.bucket, layout.context_key(loc), context.to_dict())
    s3.put_json(loc.bucket, layout.shards_key(loc), [spec.to_item() for spec in cut.shards])
    log.info("key space partitioned", extra={
        "shards": len(cut.shards), "ordered": cut.ordered, "reasons": list(cut.reasons), "probes": cut.probes,
        "rounds": cut.rounds, "estimated_objects": cut.estimated_objects, "exact": cut.exact})
    return Prepared(run_id=run_id, manifest=loc, shards=len(cut.shards), items=layout.shards_key(loc),
                    ordered=cut.ordered, estimated_objects=cut.estimated_objects, probes=cut.probes)


def _check_locations(config: CopyConfig, s3: S3Gateway, listed: list[bool]) -> None:
    """Every source that is listed, and every target, must be listable (a one-key listing, as the single
    planner checks); a source read from a manifest need not be."""
    for index, source in enumerate(config.sources):
        if not listed[index]:
            continue
        found = s3.location_status(source.bucket, source.prefix)
        if found != "ok":
            raise SourceNotFoundError(f"s3_copy_config.source_s3_config[{index}].s3_bucket: s3://{source.bucket}/"
                                      f"{source.prefix} is {found}")
    problems = [f"s3_copy_config.target_s3_config[{t.index}].s3_bucket: s3://{t.bucket}/{t.prefix} is {status}"
                for t in config.targets if (status := s3.location_status(t.bucket, t.prefix)) != "ok"]
    if problems:
        raise ConfigError(problems)



def collect_spills(run_id: str, loc: ManifestLocation, s3: S3Gateway, generation: int,
                   keys_under: Callable[[S3Gateway, str, str], list[str]] | None = None) -> Prepared:
    """Number the ranges the shards of ``generation - 1`` handed on as the shards of ``generation`` (after
    the run's last shard id), write them as that generation's Map items and count them in the context.
    Run again, it answers the same items (they are written before the context is updated). ``keys_under``
    lists the hand-on files (default: a ListObjectsV2 of the manifest bucket; ``sfncopy plan`` keeps them in
    memory)."""
    keys_under = keys_under or _keys_under
    context = ShardingContext.from_dict(s3.get_json(loc.bucket, layout.context_key(loc)))
    items_key = layout.generation_items_key(loc, generation)
    written = s3.get_json_or_none(loc.bucket, items_key)
    if written is not None:
        specs = [ShardSpec.from_item(item) for item in written]
    else:
        ranges: list[KeyRange] = []
        for key in keys_under(s3, loc.bucket, layout.spills_prefix(loc, generation)):
            ranges += [KeyRange.from_dict(r) for r in s3.get_json(loc.bucket, key)]
        specs = [ShardSpec(context.shards + n, piece, -1, generation) for n, piece in enumerate(ranges)]
        s3.put_json(loc.bucket, items_key, [spec.to_item() for spec in specs])
    count = max([context.shards, *(spec.index + 1 for spec in specs)])
    if count != context.shards:
        s3.put_json(loc.bucket, layout.context_key(loc), replace(context, shards=count).to_dict())
    log.info("handed-on ranges collected", extra={"generation": generation, "shards": len(specs)})
    return Prepared(run_id=run_id, manifest=loc, shards=len(specs), items=items_key, ordered=context.ordered,
                    estimated_objects=-1, probes=0)


def _keys_under(s3: S3Gateway, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    token = ""
    while True:
        page = list_page(s3, bucket, prefix, token=token)
        keys += [item["Key"] for item in page.get("Contents", ())]
        token = str(page.get("NextContinuationToken") or "") if page.get("IsTruncated") else ""
        if not token:
            return sorted(keys)
