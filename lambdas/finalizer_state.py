"""What a finalization carries from one invocation to the next.

A finalization that does not fit one invocation stops near its deadline and answers with a cursor; the state
machine calls the finalizer again with it (lambdas/handlers.py). The cursor is small (state payloads are at
most 256 KiB, limits.MAX_STATE_PAYLOAD_BYTES); the state it names lives in the manifest location::

    finalizer/state-00001.json   FinalizeState after the first invocation (counts, split joins, report files)
    finalizer/state-00001.csv    the rows of the report part being filled when it stopped
    finalizer/shard-00003/state-00001.json, .csv   the same, of finalize shard 3's chain (lambdas/finalize_shards.py)
    finalizer/report-csv.json    the report.csv upload the merge is writing (for cleanup, until it is completed)

Step n's files are written once by the invocation that began at step n-1 (a retry of that invocation, from
the same cursor, writes them again), so a retried invocation always starts from the state its cursor names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lambdas.gateway import JSON_CONTENT_TYPE, S3Gateway, encode_json
from lambdas.models import ManifestLocation, SplitCopy
from lambdas.report import ChunkJoin, Tally
from lambdas.report_files import CSV_CONTENT_TYPE
from lambdas.verification import VerifyStats

Phase = Literal["payloads", "splits", "skipped", "done"]
PHASES: tuple[Phase, ...] = ("payloads", "splits", "skipped", "done")


@dataclass(frozen=True)
class FinalizeCursor:
    """The finalizer's place in a finalization that goes on in another invocation: ``step`` invocations are
    done and their state is at ``state_key(loc, step)``; ``phase`` and ``position`` (a payload index, a split
    index, or a byte offset in the skipped file the saved state names) are for people reading the execution history.

    ``FIRST`` (step 0) is what a state machine that loops on the finalizer puts in its first event: it says
    the caller will call again on a cursor. An event without any cursor (a state machine without the loop)
    gets the whole finalization in one invocation, as before cursors existed."""

    step: int
    phase: Phase
    position: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> FinalizeCursor | None:
        """The cursor of a continuation's event; None for a first invocation (an event with no ``cursor``)."""
        data = event.get("cursor")
        if not isinstance(data, Mapping):
            return None
        phase = data["phase"]
        if phase not in PHASES:
            raise ValueError(f"finalizer cursor: unknown phase {phase!r}")
        return cls(step=int(data["step"]), phase=phase, position=int(data["position"]))


FIRST = FinalizeCursor(step=0, phase="payloads", position=0)


def _folder(loc: ManifestLocation, shard: str) -> str:
    """The run's finalizer folder, or finalize shard ``shard``'s (lambdas/finalize_shards.py)."""
    return f"{loc.prefix}finalizer/shard-{shard}/" if shard else f"{loc.prefix}finalizer/"


def state_key(loc: ManifestLocation, step: int, shard: str = "") -> str:
    return f"{_folder(loc, shard)}state-{step:05d}.json"


def pending_key(loc: ManifestLocation, step: int, shard: str = "") -> str:
    return f"{_folder(loc, shard)}state-{step:05d}.csv"


def csv_upload_key(loc: ManifestLocation) -> str:
    """Names the report.csv upload the merge has open (its id), so cleanup can abort it after a crash."""
    return f"{loc.prefix}finalizer/report-csv.json"


@dataclass
class FinalizeState:
    """Everything the finalizer has gathered so far (bounded: counts, the first failed and unmatched objects,
    one join per split copy of the plan, the report parts' entries)."""

    phase: Phase = "payloads"
    position: int = 0
    started: str = ""  # when the first invocation began
    invocations: int = 0  # invocations before this one
    tally: Tally = field(default_factory=Tally)
    joins: dict[int, ChunkJoin] = field(default_factory=dict)  # copy_id -> chunks gathered so far
    unmatched: list[str] = field(default_factory=list)  # the first MAX_UNMATCHED_LISTED
    unmatched_count: int = 0
    files: dict[str, Any] = field(default_factory=dict)  # ReportFiles.state()
    verification: VerifyStats = field(default_factory=VerifyStats)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per phase
    item: int = 0  # in phase "skipped": which of the scope's skipped files ``position`` is an offset in

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "position": self.position, "started": self.started,
            "invocations": self.invocations, "tally": self.tally.as_dict(),
            "joins": {str(copy_id): join.to_state() for copy_id, join in self.joins.items() if join.chunks},
            "unmatched": self.unmatched, "unmatched_count": self.unmatched_count, "files": self.files,
            "verification": self.verification.as_dict(), "seconds": self.seconds, "item": self.item,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], splits: Sequence[SplitCopy]) -> FinalizeState:
        by_id = {split.copy_id: split for split in splits}
        joins = {split.copy_id: ChunkJoin(split) for split in splits}
        joins.update({int(copy_id): ChunkJoin.from_state(by_id[int(copy_id)], saved)
                      for copy_id, saved in data["joins"].items()})
        return cls(phase=data["phase"], position=int(data["position"]), started=data["started"],
                   invocations=int(data["invocations"]), tally=Tally.from_dict(data["tally"]), joins=joins,
                   unmatched=list(data["unmatched"]), unmatched_count=int(data["unmatched_count"]),
                   files=dict(data["files"]), verification=VerifyStats(**data["verification"]),
                   seconds=dict(data["seconds"]), item=int(data.get("item", 0)))


def save(s3: S3Gateway, loc: ManifestLocation, step: int, state: FinalizeState, pending: bytes,
         shard: str = "") -> None:
    """Step ``step``'s files: the pending rows first, the state (which a cursor names) last."""
    s3.put_bytes(loc.bucket, pending_key(loc, step, shard), pending, CSV_CONTENT_TYPE)
    s3.put_bytes(loc.bucket, state_key(loc, step, shard), encode_json(state.to_dict()), JSON_CONTENT_TYPE)


def load(s3: S3Gateway, loc: ManifestLocation, step: int, splits: Sequence[SplitCopy],
         shard: str = "") -> tuple[FinalizeState, bytes]:
    """Step ``step``'s state and pending rows (ManifestConflictError when missing)."""
    state = FinalizeState.from_dict(s3.get_json(loc.bucket, state_key(loc, step, shard)), splits)
    pending = b"".join(s3.read_chunks(loc.bucket, pending_key(loc, step, shard)))
    return state, pending


def latest_upload(s3: S3Gateway, loc: ManifestLocation) -> str:
    """The report.csv upload id that may be open ("" when none): the merge's marker, else what the run's latest
    saved state records (shards write no report.csv). For cleanup."""
    marker = s3.get_json_or_none(loc.bucket, csv_upload_key(loc))
    if isinstance(marker, dict) and marker.get("upload_id"):
        return str(marker["upload_id"])
    keys = [obj.key for obj in s3.list_objects(loc.bucket, f"{loc.prefix}finalizer/state-")
            if obj.key.endswith(".json")]
    if not keys:
        return ""
    data = s3.get_json_or_none(loc.bucket, max(keys))
    return str(((data or {}).get("files") or {}).get("upload_id", "")) if isinstance(data, dict) else ""
