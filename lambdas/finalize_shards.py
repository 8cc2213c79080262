"""The finalizer's fan-out: which shards a run is finalized in, what each shard leaves, and how they merge.

The state machine finalizes a run in three steps (generator/state_machine.py):

1. StartFinalize (``plan_shards``) cuts the run into finalize shards and writes them as the JSON array
   ``finalizer/shards.json``: consecutive payloads of about ``shard_rows`` report rows each, then one shard per
   skipped-objects file;
2. FinalizeShards, a Distributed Map over that array, finalizes each shard in a child execution of its own
   (lambdas/finalizer.py, scope "shard", continuing in more invocations when it must): rows verified and
   written as report parts named for the shard, then a small summary ``finalizer/shard-<n>/summary.json``
   (counts, the split copies' chunk results it saw, its parts' manifest entries) — never the rows;
3. Finalize (scope "merge") reads every summary, settles the split copies (their chunks come from many
   shards), and writes the run's end-of-run files: report/manifest.json, report.csv, report.json.

Each child has a history of its own (Step Functions developer guide, "Using Map state in Distributed mode":
"Each child workflow execution has its own execution history, which is separate from that of the parent
workflow"), so the run's history no longer grows with the payloads; the shards run side by side, so the
finalizing wall time shrinks with the Map's MaxConcurrency.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lambdas.models import ManifestLocation
from lambdas.report import CHUNK_ERRORS_QUOTED, MAX_FAILED_LISTED, MAX_UNMATCHED_LISTED, ChunkJoin, Tally
from lambdas.verification import VerifyStats

# Report rows a payload shard aims at: at AWS's measured ~1.44 ms a row when verification HEADs every target
# (lambdas/limits.py, FINALIZER_SECONDS_PER_ROW), 200,000 rows take ~290 s, a third of one invocation, so a
# shard's child usually records one invocation (11 history events) and never comes near its 25,000.
DEFAULT_SHARD_ROWS = 200_000
# At most this many shards: the merge reads one summary per shard (a GET each, 16 at a time), and one
# Distributed Map runs them. 10,000 shards of 200,000 rows cover 2 billion rows; past that shards grow.
MAX_SHARDS = 10_000

ShardKind = Literal["payloads", "skipped"]


def shards_key(loc: ManifestLocation) -> str:
    """The FinalizeShards Map's items (its ItemReader reads this JSON array)."""
    return f"{loc.prefix}finalizer/shards.json"


def shard_folder(loc: ManifestLocation, name: str) -> str:
    return f"{loc.prefix}finalizer/shard-{name}/"


def summary_key(loc: ManifestLocation, name: str) -> str:
    return f"{shard_folder(loc, name)}summary.json"


@dataclass(frozen=True)
class ShardSpec:
    """One finalize shard: payload positions [first, first + count) of the run's payload ids in order, or one
    skipped-objects file (``key``, in the manifest bucket). A Map item, so small."""

    index: int
    kind: ShardKind
    first: int = 0
    count: int = 0
    key: str = ""

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "payloads":
            return {"shard": self.index, "kind": self.kind, "first": self.first, "count": self.count}
        return {"shard": self.index, "kind": self.kind, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardSpec:
        kind = data.get("kind")
        if kind == "payloads":
            return cls(int(data["shard"]), "payloads", first=int(data["first"]), count=int(data["count"]))
        if kind == "skipped":
            return cls(int(data["shard"]), "skipped", key=str(data["key"]))
        raise ValueError(f"finalize shard: unknown kind {kind!r} (expected payloads or skipped)")


def payloads_per_shard(payloads: int, rows: int, shard_rows: int, max_shards: int = MAX_SHARDS) -> int:
    """How many consecutive payloads one shard takes: about ``shard_rows`` report rows (``rows`` over
    ``payloads`` a payload on average), at least one, and few enough shards in all (``max_shards``)."""
    if payloads <= 0:
        return 1
    per_payload = max(1, math.ceil(rows / payloads))
    wanted = max(1, shard_rows // per_payload)
    return max(wanted, math.ceil(payloads / max(1, max_shards)))


def plan_shards(payloads: int, rows: int, skipped_files: Sequence[str], shard_rows: int = DEFAULT_SHARD_ROWS,
                max_shards: int = MAX_SHARDS) -> list[ShardSpec]:
    """The run's finalize shards: payload shards in payload order, then one shard per skipped file."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows={shard_rows} must be at least 1")
    step = payloads_per_shard(payloads, rows, shard_rows, max(1, max_shards - len(skipped_files)))
    shards = [ShardSpec(index, "payloads", first=first, count=min(step, payloads - first))
              for index, first in enumerate(range(0, payloads, step))]
    return shards + [ShardSpec(len(shards) + i, "skipped", key=key) for i, key in enumerate(skipped_files)]


@dataclass
class ShardSummary:
    """What a finished shard leaves for the merge (bounded: counts, the first failed and unmatched objects,
    the chunk results of the split copies it saw, its parts' manifest entries)."""

    index: int
    kind: ShardKind
    rows: int
    entries: list[dict[str, Any]]
    tally: Tally
    joins: dict[int, dict[str, Any]]  # copy_id -> ChunkJoin.to_state()
    unmatched: list[str]
    unmatched_count: int
    verification: VerifyStats
    started: str
    invocations: int
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.index, "kind": self.kind, "rows": self.rows, "entries": self.entries,
                "tally": self.tally.as_dict(), "joins": {str(k): v for k, v in self.joins.items()},
                "unmatched": self.unmatched, "unmatched_count": self.unmatched_count,
                "verification": self.verification.as_dict(), "started": self.started,
                "invocations": self.invocations, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardSummary:
        return cls(index=int(data["shard"]), kind=data["kind"], rows=int(data["rows"]),
                   entries=[dict(e) for e in data["entries"]], tally=Tally.from_dict(data["tally"]),
                   joins={int(k): dict(v) for k, v in data["joins"].items()}, unmatched=list(data["unmatched"]),
                   unmatched_count=int(data["unmatched_count"]), verification=VerifyStats(**data["verification"]),
                   started=str(data["started"]), invocations=int(data["invocations"]),
                   seconds=dict(data.get("seconds") or {}))


# --- merging ---------------------------------------------------------------------------------------
def merge_tallies(tallies: Sequence[Tally]) -> Tally:
    """One Tally over every shard's rows (the failed objects listed: the first MAX_FAILED_LISTED, shard order)."""
    merged = Tally()
    for one in tallies:
        merged.counts.update(one.counts)
        merged.bytes_copied += one.bytes_copied
        merged.retries += one.retries
        merged.skipped_by_reason.update(one.skipped_by_reason)
        merged.verified_by.update(one.verified_by)
        room = MAX_FAILED_LISTED - len(merged.failed_objects)
        merged.failed_objects.extend(one.failed_objects[:max(0, room)])
    return merged


def merge_join(join: ChunkJoin, saved: Mapping[str, Any]) -> None:
    """Add one shard's chunk results of ``join``'s split copy (ChunkJoin.to_state) to ``join``."""
    other = ChunkJoin.from_state(join.split, saved)
    join.bytes += other.bytes
    join.parts += other.parts
    join.attempts += other.attempts
    join.retries += other.retries
    join.seconds = max(join.seconds, other.seconds)  # chunks run side by side: the slowest one's time
    join.chunks += other.chunks
    join.statuses.update(other.statuses)
    join.errors.extend(other.errors[:max(0, CHUNK_ERRORS_QUOTED - len(join.errors))])
    join.failed_chunks += other.failed_chunks


def merge_verification(stats: Sequence[VerifyStats]) -> VerifyStats:
    return VerifyStats(list_pages=sum(s.list_pages for s in stats), keys_listed=sum(s.keys_listed for s in stats),
                       heads=sum(s.heads for s in stats))


def merge_unmatched(summaries: Sequence[ShardSummary]) -> tuple[list[str], int]:
    """The unmatched objects listed (the first MAX_UNMATCHED_LISTED, shard order) and how many there were."""
    listed: list[str] = []
    for summary in summaries:
        listed.extend(summary.unmatched[:max(0, MAX_UNMATCHED_LISTED - len(listed))])
    return listed, sum(s.unmatched_count for s in summaries)


def merge_seconds(summaries: Sequence[ShardSummary]) -> dict[str, float]:
    """Time spent per phase, all shards together (Lambda time, not wall time)."""
    total: Counter[str] = Counter()
    for summary in summaries:
        total.update(summary.seconds)
    return {phase: round(seconds, 3) for phase, seconds in sorted(total.items())}


def missing_shards(expected: Sequence[ShardSpec], found: Mapping[int, ShardSummary]) -> list[ShardSpec]:
    return [spec for spec in expected if spec.index not in found]


def describe(spec: ShardSpec) -> str:
    if spec.kind == "payloads":
        return f"finalize shard {spec.index} (payloads {spec.first}-{spec.first + spec.count - 1} in run order)"
    return f"finalize shard {spec.index} (skipped objects of {spec.key})"
