"""Where sharded planning keeps its files in the run's manifest location, and the records they hold.

Layout under ``<SFNCOPY_MANIFEST_PREFIX>runs/<run_id>/plan/sharding/``::

    context.json                    ShardingContext: config, plan parameters, ordered or not, shard count
    shards.json                     [ShardSpec item]: the Distributed Map's items (ItemReader), one per shard
    spills/gen01/000042.json        [KeyRange]: what shard 42 handed on (too large for one pass)
    shards-gen01.json               [ShardSpec item]: the handed-on ranges as shards (collect_spills)
    shards/000042/summary.json      ShardSummary: the shard's progress and, once done, what it wrote
    shards/000042/segments/000007.json
                                    a segment: copy tasks in the payload file format (models.Payload,
                                    written by manifest.encode_payload), within the payload caps, in key
                                    order (a contiguous key range of the shard); the workers read it where
                                    it is, under the run-wide id their list gives (its own payload_id is its
                                    place in the shard, its worker -1)
    shards/000042/splits/000000.json   [SplitCopy]: copies too large for one payload (the assembler cuts them)
    shards/000042/skipped/000000.json  [SkippedObject]: at most SKIP_FILE_ROWS each
    chunks/00003-00001.json         a payload of chunk tasks the assembler cut for worker 3
    workers/00003.json              [PayloadRef]: worker 3's payloads, in order (publish.py makes them the
                                    Distributed Map's items, plan/workers/00003.json)
    index.json                      AssembledPlan: totals, worker loads, where every list is

The invariant of a shard's files: a segment, split or skip file counts only when the shard's summary names
it. A shard writes its files first and its summary last, and names its files by number from the summary
it started from, so an invocation that dies between the two leaves files that the next one (starting
from the same summary) overwrites, and nothing counts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.models import CopyConfig, ManifestLocation
from lambdas.planning import PlanParams

ROOT = "plan/sharding/"
SKIP_FILE_ROWS = 10_000
SPLIT_FILE_ROWS = 1_000
# Copy ids are unique in the run: shard << COPY_ID_BITS | the shard's own count. 2**32 copies per shard,
# and 2**21 shards, keep them below 2**53, which every JSON reader holds exactly.
COPY_ID_BITS = 32


def first_copy_id(shard: int) -> int:
    return shard << COPY_ID_BITS


def key(loc: ManifestLocation, name: str) -> str:
    return f"{loc.prefix}{ROOT}{name}"


def context_key(loc: ManifestLocation) -> str:
    return key(loc, "context.json")


def shards_key(loc: ManifestLocation) -> str:
    return key(loc, "shards.json")


def shard_dir(loc: ManifestLocation, shard: int) -> str:
    return key(loc, f"shards/{shard:06d}/")


def summary_key(loc: ManifestLocation, shard: int) -> str:
    return shard_dir(loc, shard) + "summary.json"


def segment_key(loc: ManifestLocation, shard: int, number: int) -> str:
    return shard_dir(loc, shard) + f"segments/{number:06d}.json"


def splits_key(loc: ManifestLocation, shard: int, number: int) -> str:
    return shard_dir(loc, shard) + f"splits/{number:06d}.json"


def skipped_key(loc: ManifestLocation, shard: int, number: int) -> str:
    return shard_dir(loc, shard) + f"skipped/{number:06d}.json"


def spill_key(loc: ManifestLocation, generation: int, shard: int) -> str:
    """The ranges shard ``shard`` handed on, to run as shards of ``generation``."""
    return key(loc, f"spills/gen{generation:02d}/{shard:06d}.json")


def spills_prefix(loc: ManifestLocation, generation: int) -> str:
    return key(loc, f"spills/gen{generation:02d}/")


def generation_items_key(loc: ManifestLocation, generation: int) -> str:
    """The Distributed Map items of the shards of ``generation`` (generation 0: shards_key)."""
    return shards_key(loc) if generation == 0 else key(loc, f"shards-gen{generation:02d}.json")


def chunk_payload_key(loc: ManifestLocation, worker: int, number: int) -> str:
    return key(loc, f"chunks/{worker:05d}-{number:05d}.json")


def worker_refs_key(loc: ManifestLocation, worker: int) -> str:
    return key(loc, f"workers/{worker:05d}.json")


def index_key(loc: ManifestLocation) -> str:
    return key(loc, "index.json")


@dataclass(frozen=True)
class ShardingContext:
    """What every shard and the assembler read first: written once by the partition step."""

    run_id: str
    created_at: str
    config: CopyConfig
    params: PlanParams
    ordered: bool  # False: one shard, whose targets are listed whole (partition.order_problems)
    shards: int
    reasons: tuple[str, ...] = ()
    manifests: bool = False  # the sources are read from manifests (inventory.py): shards are sets of units

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "created_at": self.created_at, "config": self.config.to_dict(),
                "params": asdict(self.params), "ordered": self.ordered, "shards": self.shards,
                "reasons": list(self.reasons), "manifests": self.manifests}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardingContext:
        return cls(run_id=data["run_id"], created_at=data["created_at"], config=CopyConfig.from_dict(data["config"]),
                   params=PlanParams(**data["params"]), ordered=bool(data["ordered"]), shards=int(data["shards"]),
                   reasons=tuple(data.get("reasons", ())), manifests=bool(data.get("manifests", False)))


@dataclass(frozen=True)
class SegmentRef:
    """One segment a shard wrote: where, and what it weighs in the binning cost model."""

    key: str
    objects: int
    bytes: int
    requests: int  # S3 copy requests its tasks send (binning.request_count)
    cost: int  # bytes + limits.REQUEST_COST_BYTES per request (binning.costs_of)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentRef:
        return cls(**{k: data[k] for k in ("key", "objects", "bytes", "requests", "cost")})


@dataclass(frozen=True)
class FileRef:
    """A file of rows (splits, skips) a shard wrote: where, how many rows, their bytes."""

    key: str
    rows: int
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileRef:
        return cls(key=data["key"], rows=int(data["rows"]), bytes=int(data.get("bytes", 0)))


@dataclass(frozen=True)
class ShardSummary:
    """A shard's progress, rewritten at each checkpoint; with ``done`` it is the shard's result.

    ``cursor`` is the last relative key whose every object (from every source) is decided and written:
    the next invocation lists from just after it. ``next_copy`` numbers the next copy (copy ids are
    ``first_copy_id(shard) + n``)."""

    shard: int
    done: bool = False
    cursor: str | None = None
    invocations: int = 0
    next_copy: int = 0
    listed: int = 0  # source keys listed (folder markers included), as PlanTotals.objects_listed
    unmatched: int = 0
    copies: int = 0
    bytes: int = 0
    segments: tuple[SegmentRef, ...] = ()
    splits: tuple[FileRef, ...] = ()
    skipped: tuple[FileRef, ...] = ()
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    requests: int = 0  # S3 requests this shard sent so far (listings, HEADs, writes): for cost figures
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific progress (inventory units)

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "done": self.done, "cursor": self.cursor, "invocations": self.invocations,
                "next_copy": self.next_copy, "listed": self.listed, "unmatched": self.unmatched,
                "copies": self.copies, "bytes": self.bytes, "segments": [s.to_dict() for s in self.segments],
                "splits": [f.to_dict() for f in self.splits], "skipped": [f.to_dict() for f in self.skipped],
                "skipped_by_reason": [list(p) for p in self.skipped_by_reason], "requests": self.requests,
                "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardSummary:
        return cls(shard=int(data["shard"]), done=bool(data["done"]), cursor=data.get("cursor"),
                   invocations=int(data.get("invocations", 0)), next_copy=int(data.get("next_copy", 0)),
                   listed=int(data.get("listed", 0)), unmatched=int(data.get("unmatched", 0)),
                   copies=int(data.get("copies", 0)), bytes=int(data.get("bytes", 0)),
                   segments=tuple(SegmentRef.from_dict(s) for s in data.get("segments", ())),
                   splits=tuple(FileRef.from_dict(f) for f in data.get("splits", ())),
                   skipped=tuple(FileRef.from_dict(f) for f in data.get("skipped", ())),
                   skipped_by_reason=tuple((str(k), int(v)) for k, v in data.get("skipped_by_reason", ())),
                   requests=int(data.get("requests", 0)), extra=dict(data.get("extra", {})))


@dataclass(frozen=True)
class PayloadRef:
    """One item of a worker's list: the payload's number in the run (its results are kept under it) and
    the key of its file (a shard's segment, or a payload of chunks)."""

    payload: int
    key: str
    bytes: int = 0
    objects: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PayloadRef:
        return cls(payload=int(data["payload"]), key=data["key"], bytes=int(data.get("bytes", 0)),
                   objects=int(data.get("objects", 0)))
