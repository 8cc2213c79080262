"""Typed contracts between the planner, the workers, the finalizer, the state machine and the CLI.

Everything that crosses a process boundary (state payloads, files in the manifest location) is one of
these frozen dataclasses, turned into JSON with ``to_dict`` and read back with ``from_dict``. State
payloads carry pointers only (run id, manifest location, payload numbers); lists of objects live in S3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, NamedTuple, TypeVar

from lambdas.timeline import Invocation

Overwrite = Literal["if-different", "always", "never"]
CopyMethod = Literal["copy", "multipart", "chunk", "none"]
ResultStatus = Literal["copied", "skipped", "failed", "planned"]
RestoreTier = Literal["Bulk", "Standard", "Expedited"]

T = TypeVar("T")


def _plain(cls: type[T], data: dict[str, Any]) -> T:
    """Build a flat dataclass from a dict, turning lists into tuples (JSON has no tuples)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**values)


# --- The s3_copy_config, after validation (lambdas/config.py builds these) ----------------------------
@dataclass(frozen=True)
class SourceConfig:
    bucket: str
    prefix: str  # "" for the whole bucket; otherwise as given, without a leading "/"
    expected_bucket_owner: str = ""  # 12-digit account id, or "": see BucketAccess
    request_payer: str = ""  # "requester" for a Requester Pays bucket, or ""
    # Incremental selection (lambdas/routing.py): last modified in [modified_after, modified_before), UTC
    # isoformat or "" (no bound); storage_classes empty = any.
    modified_after: str = ""
    modified_before: str = ""
    storage_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SseConfig:
    algorithm: Literal["AES256", "aws:kms"]
    kms_key_id: str = ""


@dataclass(frozen=True)
class TargetConfig:
    index: int  # position in target_s3_config, for messages and the report
    bucket: str
    prefix: str
    file_types: tuple[str, ...]  # lower case, without the dot; ("*",) matches every key
    include: tuple[str, ...] = ()  # glob patterns on the key relative to the source prefix
    exclude: tuple[str, ...] = ()
    min_size: int | None = None  # bytes, inclusive
    max_size: int | None = None  # bytes, inclusive
    flatten: bool = False  # keep only the base name of the key
    expected_bucket_owner: str = ""  # 12-digit account id, or "": see BucketAccess
    modified_after: str = ""  # as SourceConfig's
    modified_before: str = ""
    storage_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoreOptions:
    """options.restore: restore archived sources with RestoreObject at this retrieval tier, for ``days`` days
    (lambdas/restoring/). ``days`` is not sent for Intelligent-Tiering archive tiers (they take none)."""

    tier: RestoreTier
    days: int


@dataclass(frozen=True)
class CopyOptions:
    overwrite: Overwrite = "if-different"
    max_payload_size_mb: int | None = None  # None: the environment's default
    max_objects_per_payload: int | None = None
    storage_class: str | None = None  # None: S3's default (STANDARD) on the target
    sse: SseConfig | None = None
    preserve_metadata: bool = True
    preserve_tags: bool = True
    dry_run: bool = False
    max_failed_objects: int = 0
    report_unmatched: bool = False  # list unmatched objects in the report (always counted)
    acl: str | None = None  # canned ACL of every object written ("bucket-owner-full-control"); None: S3's default
    restore: RestoreOptions | None = None  # None: archived sources are skipped ("restore first")


@dataclass(frozen=True)
class BucketAccess:
    """What every request to one bucket carries (``lambdas.gateway`` sends it), from the config.

    A bucket has one owner and one payment setting, so an ``expected_bucket_owner`` or ``request_payer``
    given on any source or target naming the bucket applies to every request to that bucket (config.py
    refuses two different owners for one bucket). ``object_acl`` is the canned ACL of the objects a copy
    writes into it (``options.acl``, target buckets only)."""

    expected_owner: str = ""  # sent as ExpectedBucketOwner (ExpectedSourceBucketOwner for a copy's source)
    request_payer: str = ""  # sent as RequestPayer
    object_acl: str = ""  # sent as ACL on CopyObject and CreateMultipartUpload


@dataclass(frozen=True)
class CopyConfig:
    sources: tuple[SourceConfig, ...]
    targets: tuple[TargetConfig, ...]
    options: CopyOptions = field(default_factory=CopyOptions)

    def bucket_access(self) -> dict[str, BucketAccess]:
        """bucket -> what every request to it carries; buckets with nothing to carry are left out."""
        owners: dict[str, str] = {}
        payers: dict[str, str] = {}
        acls: dict[str, str] = {}
        for source in self.sources:
            if source.expected_bucket_owner:
                owners[source.bucket] = source.expected_bucket_owner
            if source.request_payer:
                payers[source.bucket] = source.request_payer
        for target in self.targets:
            if target.expected_bucket_owner:
                owners[target.bucket] = target.expected_bucket_owner
            if self.options.acl:
                acls[target.bucket] = self.options.acl
        return {bucket: BucketAccess(owners.get(bucket, ""), payers.get(bucket, ""), acls.get(bucket, ""))
                for bucket in sorted({*owners, *payers, *acls})}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyConfig:
        """Read back what ``to_dict`` wrote (already validated). User input goes through config.py."""
        opts = dict(data.get("options", {}))
        sse = opts.get("sse")
        opts["sse"] = SseConfig(**sse) if sse else None
        restore = opts.get("restore")
        opts["restore"] = RestoreOptions(**restore) if restore else None
        return cls(
            sources=tuple(_plain(SourceConfig, s) for s in data["sources"]),
            targets=tuple(_plain(TargetConfig, t) for t in data["targets"]),
            options=CopyOptions(**opts),
        )


# --- The listing -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceObject:
    bucket: str
    key: str
    size: int
    etag: str  # as S3 returns it, with the quotes stripped
    storage_class: str = "STANDARD"
    last_modified: str = ""  # ISO 8601
    checksum_algorithm: str = ""  # the additional checksum S3 keeps for it ("CRC64NVME", "SHA256", ...), if any


@dataclass(frozen=True, slots=True)
class ExistingTarget:
    """What the target listing says about an object that is already there (for overwrite decisions)."""

    size: int
    etag: str
    checksum_algorithm: str = ""


# --- The plan ----------------------------------------------------------------------------------------
class CopyTask(NamedTuple):
    """One unit of a worker's work: a whole object, or a range of parts of a split object.

    ``method`` is "copy" (one CopyObject), "multipart" (the worker creates, copies and completes the
    upload itself) or "chunk" (parts first_part..last_part of an upload the planner created and the
    finalizer completes; the chunks of one object may belong to different workers).

    A named tuple, not a dataclass: the planner makes one per object (a million in a big run), and a
    payload file stores each as a JSON array in field order (``Payload.to_dict``), which the json
    module writes from the tuple itself, with no dict per task.
    """

    task_id: str  # unique within the run: "c<copy_id>" or "c<copy_id>.p<first_part>"
    copy_id: int  # one (source object, target) pair
    source_bucket: str
    source_key: str
    size: int  # of the whole source object
    etag: str  # of the source, pinned with CopySourceIfMatch
    target_bucket: str
    target_key: str
    method: CopyMethod
    part_size: int = 0  # chunk only (a multipart task picks its own)
    first_part: int = 0  # chunk only, 1-based inclusive
    last_part: int = 0  # chunk only, 1-based inclusive
    upload_id: str = ""  # chunk only
    # Whole-object tasks only: the target exists with the same size but an ETag that cannot be compared
    # (a multipart source copied in one request, SSE-KMS), and both list this checksum algorithm. The
    # worker compares the two checksums first and skips the copy when they are equal.
    compare_checksum: str = ""
    # The ETag the target had at planning, when it existed and ``overwrite: if-different`` replaces it: the write
    # carries If-Match with it, so a target changed since planning is not overwritten (lambdas/copying.py).
    target_etag: str = ""
    # Whole-object tasks: the checksum algorithm the source's listing names ("" none). A CopyObject keeps it; a
    # source without one gets CRC64NVME (lambdas/integrity.py).
    source_checksum: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes this task copies."""
        if self.method != "chunk":
            return self.size
        first = (self.first_part - 1) * self.part_size
        last = min(self.last_part * self.part_size, self.size)
        return last - first

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyTask:
        return cls(**{k: v for k, v in data.items() if k in cls._fields})

    @classmethod
    def from_row(cls, row: list[Any] | tuple[Any, ...], columns: tuple[str, ...]) -> CopyTask:
        """A task from a payload file's array; ``columns`` names its values (the writer's field order), and
        a row may stop early (the rest are defaults)."""
        if len(row) > len(columns):
            raise ValueError(f"a payload row has {len(row)} values for {len(columns)} columns")
        if columns == cls._fields:
            return cls(*row)
        return cls.from_dict(dict(zip(columns, row, strict=False)))  # a short row: defaults


_WHOLE_TASK_COLUMNS = CopyTask._fields.index("part_size")  # the fields a whole-object task sets


@dataclass(frozen=True)
class Payload:
    """What one worker invocation chain copies, stored at ``manifest.payload_key``.

    On disk: ``{"payload_id", "worker", "columns": [field names], "tasks": [[values in column order]]}``,
    where a whole-object task with nothing to compare leaves out the fields after ``method`` (defaults). Half the bytes
    of one JSON object per task, and several times faster to write at a million tasks.
    """

    payload_id: int
    worker: int
    tasks: tuple[CopyTask, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.size if t.method != "chunk" else t.nbytes for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        rows = [t if t.method == "chunk" or t.compare_checksum or t.target_etag or t.source_checksum
                else t[:_WHOLE_TASK_COLUMNS] for t in self.tasks]
        return {"payload_id": self.payload_id, "worker": self.worker, "columns": CopyTask._fields, "tasks": rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Payload:
        columns = tuple(data.get("columns", CopyTask._fields))
        tasks = tuple(CopyTask.from_row(t, columns) if isinstance(t, (list, tuple)) else CopyTask.from_dict(t)
                      for t in data["tasks"])
        return cls(payload_id=data["payload_id"], worker=data["worker"], tasks=tasks)



@dataclass(frozen=True, slots=True)
class SplitCopy:
    """An object copied in chunks by several tasks; the planner created the upload, the finalizer completes it."""

    copy_id: int
    source_bucket: str
    source_key: str
    size: int
    etag: str
    target_bucket: str
    target_key: str
    part_size: int
    part_count: int
    upload_id: str
    tags: tuple[tuple[str, str], ...] = ()  # applied after completion when over the tagging header limit
    # The upload's checksum (lambdas/integrity.py, WriteSpec): its algorithm and type, and the source's value the
    # finalizer's completion asks S3 to validate ("" when the source has none: the parts' combined CRCs are sent).
    checksum_algorithm: str = ""
    checksum_type: str = ""
    checksum_expected: str = ""
    target_etag: str = ""  # as CopyTask.target_etag: the completion's If-Match

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitCopy:
        tags = tuple((str(k), str(v)) for k, v in data.get("tags", ()))
        return _plain(cls, {**data, "tags": tags})


@dataclass(frozen=True, slots=True)
class SkippedObject:
    """An object the plan does not copy, and why ("identical", "exists", "restore first", ...)."""

    source_bucket: str
    source_key: str
    size: int
    reason: str
    target_bucket: str = ""
    target_key: str = ""
    # Objects to restore (options.restore; reason planning.TO_RESTORE) only: what the restore stage needs to
    # copy them once readable (the ETag it pins) and how to restore them. Written only when set.
    etag: str = ""
    storage_class: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.etag:
            del data["etag"], data["storage_class"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkippedObject:
        return _plain(cls, data)


@dataclass(frozen=True)
class PlanTotals:
    objects_listed: int = 0  # every key listed under the sources, folder markers included
    copies: int = 0  # (object, target) pairs to copy
    bytes: int = 0  # bytes to copy
    skipped: int = 0
    unmatched: int = 0  # objects no target's rule matched
    payloads: int = 0
    split_objects: int = 0
    requests: int = 0  # S3 copy requests the plan will issue (CopyObject + UploadPartCopy + ...)
    skipped_by_reason: tuple[tuple[str, int], ...] = ()


# The single planner's file of skipped objects, relative to the run's folder (manifest.SKIPPED).
SKIPPED_FILE = "plan/skipped.json"


@dataclass(frozen=True)
class WorkItem:
    """One item of a worker's list (``plan/workers/<i>.json``), which its Distributed Map reads and hands to
    each child execution: the payload's run-wide id (its checkpoint is kept under it), the worker, and the
    key of the payload file in the manifest bucket (where the planner, a shard or the assembler wrote it).
    A payload file's own ``payload_id`` and ``worker`` are not trusted: a shard's segment carries its place
    in the shard (manifest.read_payload_file)."""

    payload: int
    worker: int
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {"payload": self.payload, "worker": self.worker, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkItem:
        return cls(payload=int(data["payload"]), worker=int(data["worker"]), key=str(data["key"]))


@dataclass(frozen=True)
class RunPlan:
    """The plan's index, stored at ``manifest.index_key``; payloads and skipped objects are separate files."""

    run_id: str
    created_at: str
    config: CopyConfig
    workers: int
    worker_payloads: tuple[tuple[int, ...], ...]  # worker index -> its payload ids, in order
    splits: tuple[SplitCopy, ...]
    totals: PlanTotals
    worker_loads: tuple[int, ...] = ()  # cost-model load of each worker (for the balance figure)
    # The files of skipped objects, relative to the run's folder (manifest.skipped_keys): the single planner's
    # plan/skipped.json, or the shards' own files, read where the shards wrote them.
    skipped_files: tuple[str, ...] = (SKIPPED_FILE,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "config": self.config.to_dict(),
            "workers": self.workers,
            "worker_payloads": [list(p) for p in self.worker_payloads],
            "splits": [s.to_dict() for s in self.splits],
            "totals": asdict(self.totals),
            "worker_loads": list(self.worker_loads),
            "skipped_files": list(self.skipped_files),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        totals = dict(data["totals"])
        totals["skipped_by_reason"] = tuple(tuple(p) for p in totals.get("skipped_by_reason", ()))
        return cls(
            run_id=data["run_id"],
            created_at=data["created_at"],
            config=CopyConfig.from_dict(data["config"]),
            workers=data["workers"],
            worker_payloads=tuple(tuple(p) for p in data["worker_payloads"]),
            splits=tuple(SplitCopy.from_dict(s) for s in data["splits"]),
            totals=PlanTotals(**totals),
            worker_loads=tuple(data.get("worker_loads", ())),
            skipped_files=tuple(data.get("skipped_files", (SKIPPED_FILE,))),  # an index written before the field
        )


# --- State payloads (what the state machine passes between states) -----------------------------------
@dataclass(frozen=True)
class ManifestLocation:
    bucket: str
    prefix: str  # the run's folder, ending in "/": "<SFNCOPY_MANIFEST_PREFIX>runs/<run_id>/"

    def uri(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestLocation:
        return cls(bucket=data["bucket"], prefix=data["prefix"])


@dataclass(frozen=True)
class PlanPointer:
    """The planner's answer, stored by the state machine at ``$.plan``. Pointers and counts only.

    ``workers[i]`` is worker i's payload ids, in order: a run of consecutive ids (the planner numbers payloads
    worker by worker), so the state carries only its first id and its length, whatever the run's size (a state
    is at most 256 KiB). ``worker_lists[i]`` is the key of the JSON array of those ids in the manifest bucket,
    which the i-th Parallel branch's Distributed Map reads as its items (``workers[i]["items"]`` in the state).
    """

    run_id: str
    manifest: ManifestLocation
    dry_run: bool
    workers: tuple[tuple[int, ...], ...]
    copies: int
    bytes: int
    skipped: int
    worker_lists: tuple[str, ...] = ()  # one key per worker; () only where no state machine reads it (tests)

    def to_dict(self) -> dict[str, Any]:
        if self.worker_lists and len(self.worker_lists) != len(self.workers):
            raise ValueError(f"{len(self.worker_lists)} worker lists for {len(self.workers)} workers")
        workers: list[dict[str, Any]] = []
        for index, ids in enumerate(self.workers):
            first = ids[0] if ids else 0
            if list(ids) != list(range(first, first + len(ids))):
                raise ValueError(f"worker {index}'s payload ids are not consecutive: {list(ids)[:10]}")
            entry: dict[str, Any] = {"worker": index, "first_payload": first, "payloads": len(ids)}
            if self.worker_lists:
                entry["items"] = self.worker_lists[index]
            workers.append(entry)
        return {
            "run_id": self.run_id,
            "manifest": asdict(self.manifest),
            "dry_run": self.dry_run,
            "workers": workers,
            "copies": self.copies,
            "bytes": self.bytes,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanPointer:
        entries = sorted(data["workers"], key=lambda w: w["worker"])
        workers = tuple(_payload_ids(entry) for entry in entries)
        lists = tuple(str(entry["items"]) for entry in entries if "items" in entry)
        return cls(
            run_id=data["run_id"],
            manifest=ManifestLocation.from_dict(data["manifest"]),
            dry_run=bool(data["dry_run"]),
            workers=workers,
            copies=data["copies"],
            bytes=data["bytes"],
            skipped=data["skipped"],
            worker_lists=lists if len(lists) == len(entries) else (),
        )


def _payload_ids(entry: dict[str, Any]) -> tuple[int, ...]:
    """A worker's payload ids from its pointer entry: a count from a first id, or (as pointers written before
    the Distributed Map) the list of ids itself."""
    if isinstance(entry["payloads"], list):
        return tuple(entry["payloads"])
    first = int(entry.get("first_payload", 0))
    return tuple(range(first, first + int(entry["payloads"])))


@dataclass(frozen=True)
class PayloadTask:
    """The worker's input, and (with ``done`` and counts updated) its output: the state machine calls the
    worker again with its own answer while ``done`` is false. The checkpoint in S3 is the truth about
    what is finished; ``cursor`` (tasks finished so far) is for progress and logs."""

    run_id: str
    manifest: ManifestLocation
    worker: int
    payload: int
    payload_key: str = ""  # the payload file's key (its WorkItem); "": manifest.payload_key (older lists)
    cursor: int = 0
    invocation: int = 0
    done: bool = False
    copied: int = 0
    failed: int = 0
    skipped: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["manifest"] = asdict(self.manifest)
        return data

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> PayloadTask:
        data = dict(event)
        data["manifest"] = ManifestLocation.from_dict(data["manifest"])
        return _plain(cls, data)


# --- Results -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ObjectResult:
    """The outcome of one task. The report joins chunk results into one row per copy."""

    task_id: str
    copy_id: int
    source_bucket: str
    source_key: str
    target_bucket: str
    target_key: str
    bytes: int
    status: ResultStatus
    method: CopyMethod
    parts: int = 0
    attempts: int = 1  # requests sent for this task including S3 retries, over the part/object calls
    retries: int = 0  # retries the SDK made (SlowDown, 5xx, resets)
    seconds: float = 0.0
    error: str = ""  # "<code>: <message>" when failed, the reason when skipped
    target_etag: str = ""  # what the write answered (copied whole-object tasks)
    # The target's whole-object checksum the write answered, "ALGORITHM:TYPE:VALUE" (lambdas/integrity.py), and
    # what S3 checked it against at write time ("source", "parts", "copy"). Left out of a checkpoint row when
    # empty (chunks, skips, failures), so rows stay compact.
    checksum: str = ""
    checksum_check: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.checksum:
            del data["checksum"], data["checksum_check"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectResult:
        return _plain(cls, data)


@dataclass(frozen=True)
class PayloadCheckpoint:
    """A worker's progress on one payload, as ``manifest.read_checkpoint`` assembles it from the payload's
    ResultsHead and the result chunks it names (lambdas/manifest.py: layout and invariant).

    A retried or resumed invocation reads it first, so finished tasks are never copied twice and an
    unfinished multipart upload is resumed (its finished parts found with ListParts). ``to_dict`` is also
    the single-file checkpoint that versions before result chunks wrote (still read)."""

    payload_id: int
    worker: int
    results: tuple[ObjectResult, ...] = ()  # one per finished task, in payload order
    open_uploads: tuple[tuple[str, str], ...] = ()  # (task_id, upload_id) of whole-object multipart copies
    invocations: int = 0
    # The chunks that hold ``results`` (ResultsHead.chunks); () when none do yet (a single-file checkpoint).
    chunks: tuple[tuple[str, int], ...] = ()
    failure: str = ""  # ResultsHead.failure: why the payload's child execution failed, "" when it did not
    timeline: tuple[Invocation, ...] = ()  # ResultsHead.timeline
    failed_at: int = 0  # ResultsHead.failed_at

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "payload_id": self.payload_id,
            "worker": self.worker,
            "results": [r.to_dict() for r in self.results],
            "open_uploads": [list(u) for u in self.open_uploads],
            "invocations": self.invocations,
            "chunks": [list(c) for c in self.chunks],
        }
        if self.failure:
            data["failure"] = self.failure
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PayloadCheckpoint:
        return cls(
            payload_id=data["payload_id"],
            worker=data["worker"],
            results=tuple(ObjectResult.from_dict(r) for r in data.get("results", ())),
            open_uploads=tuple((str(t), str(u)) for t, u in data.get("open_uploads", ())),
            invocations=data.get("invocations", 0),
            chunks=tuple((str(w), int(n)) for w, n in data.get("chunks", ())),
            failure=str(data.get("failure", "")),
        )


@dataclass(frozen=True)
class ResultsHead:
    """The small object of a payload's checkpoint that the worker rewrites (``manifest.results_key``):
    which result chunks count, the open uploads and the invocations so far. Its size grows with the
    invocations and open uploads, never with the results (lambdas/manifest.py: layout and invariant)."""

    payload_id: int
    worker: int
    invocations: int = 0
    open_uploads: tuple[tuple[str, str], ...] = ()  # (task_id, upload_id), as in PayloadCheckpoint
    # (writer, chunks it wrote), oldest writer first: writer "0003-9f3a2b1c" with 2 names its chunks 0 and 1.
    chunks: tuple[tuple[str, int], ...] = ()
    # Only when read from a single-file checkpoint of an older version: its results, held inline. Never written.
    inline: tuple[ObjectResult, ...] = ()
    # "<ErrorName>: <readable cause>" when the payload's child execution failed for good (the worker's
    # record-failure mode writes it; lambdas/worker.py, record_failure): the finalizer reports each unfinished
    # task of the payload with it. Written only when set, so heads without it (older ones) read as before.
    failure: str = ""
    # The payload's invocations, when each began and ended and how (lambdas/timeline.py; at most
    # timeline.MAX_RECORDS, the oldest merged), and when its failure was recorded (epoch ms, 0: it was not).
    # Written only when set, as ``failure``.
    timeline: tuple[Invocation, ...] = ()
    failed_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "payload_id": self.payload_id,
            "worker": self.worker,
            "invocations": self.invocations,
            "open_uploads": [list(u) for u in self.open_uploads],
            "chunks": [list(c) for c in self.chunks],
        }
        if self.failure:
            data["failure"] = self.failure
        if self.timeline:
            data["timeline"] = [i.to_dict() for i in self.timeline]
        if self.failed_at:
            data["failed_at"] = self.failed_at
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultsHead:
        return cls(
            payload_id=data["payload_id"],
            worker=data["worker"],
            invocations=data.get("invocations", 0),
            open_uploads=tuple((str(t), str(u)) for t, u in data.get("open_uploads", ())),
            chunks=tuple((str(w), int(n)) for w, n in data.get("chunks", ())),
            failure=str(data.get("failure", "")),
            timeline=tuple(Invocation.from_dict(i) for i in data.get("timeline", ())),
            failed_at=int(data.get("failed_at", 0)),
        )


@dataclass(frozen=True)
class RunSummary:
    """The finalizer's answer (the execution's output) and the head of report.json."""

    run_id: str
    status: Literal["succeeded", "failed", "dry-run"]
    copied: int
    skipped: int
    failed: int
    bytes: int
    retries: int
    report_json: str  # s3:// URI
    report_csv: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        return _plain(cls, data)
