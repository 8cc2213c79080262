"""The copy plan as data: pure functions from routed candidates to payloads, skips and splits.

    decisions = decide(candidates, params)                 # copy or skip each (object, target) pair
    to_split = split_candidates(decisions.copies, params)  # which copies are cut into chunks
    work = build_work(decisions.copies, part_sizes, params)  # chunks, workers, payloads
    check_history_budget(work, params)

planner.py feeds the listing in and learns the part sizes of the objects to split (a HEAD each);
``plan`` runs all four steps for callers that already know the part sizes (tests, benchmarks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

from lambdas import binning, history, limits
from lambdas.errors import ObjectError
from lambdas.models import (
    CopyOptions,
    CopyTask,
    ExistingTarget,
    Overwrite,
    Payload,
    PlanTotals,
    SkippedObject,
    SourceObject,
    SplitCopy,
)
from lambdas.parts import choose_part_size, part_count
from lambdas.settings import Settings

# Skip reasons. Reasons that carry details ("too large: ...") are counted under their first words.
FOLDER_MARKER = "folder marker"
UNMATCHED = "unmatched"
RESTORE_FIRST = "restore first"
# With options.restore: an archived object (or one in INTELLIGENT_TIERING, whose archive tier only HeadObject
# tells) goes to the restore stage (lambdas/restoring/), which restores and copies it; the plan lists it in
# plan/skipped.json with this reason, its ETag and storage class, for both the single and the sharded planner.
TO_RESTORE = "to restore"
RESTORE_REFUSED = "restore refused"
EXISTS = "exists"
TARGET_CHANGED = "target changed during the run"  # overwrite if-different: If-Match refused (lambdas/copying.py)
IDENTICAL = "identical"
TARGET_COLLISION = "target collision"
TOO_LARGE = "too large"
FAILED_AT_PLAN = "failed at plan"
_DETAILED_REASONS = (TARGET_COLLISION, TOO_LARGE, FAILED_AT_PLAN, IDENTICAL, RESTORE_REFUSED, TARGET_CHANGED)

# An object split for balance is cut into chunks of at most ideal / CHUNKS_PER_IDEAL_LOAD, where the
# ideal load is the total cost / N. LPT scheduling then ends within about one chunk of the ideal.
CHUNKS_PER_IDEAL_LOAD = 32
# Balance splits happen only when whole copies would give a predicted makespan above this times the ideal.
BALANCE_TARGET = 1.05
# Requests a split object costs besides its chunks' parts: the planner's HEAD and create, the finalizer's
# complete.
SPLIT_EXTRA_REQUESTS = 3


class Candidate(NamedTuple):
    """One routed (source object, target key) pair and what the target listing says is already there.

    A named tuple: the planner makes one per listed object and target, so it must be cheap."""

    obj: SourceObject
    target_bucket: str
    target_key: str
    existing: ExistingTarget | None = None


# What ``decide`` reads: a Candidate, or the same four values as a plain tuple (the planner's listing
# makes a million, and a plain tuple costs a fraction of a named tuple's Python-level constructor).
CandidateRow = tuple[SourceObject, str, str, ExistingTarget | None]

@dataclass(frozen=True)
class PlanParams:
    workers: int
    max_payload_bytes: int
    max_objects_per_payload: int
    copy_cutoff: int = limits.DEFAULT_COPY_CUTOFF
    part_size: int = limits.DEFAULT_PART_SIZE
    overwrite: Overwrite = "if-different"
    restore_tier: str = ""  # options.restore's tier; "" without options.restore

    @classmethod
    def from_settings(cls, settings: Settings, options: CopyOptions) -> PlanParams:
        """The config's options beat the deployment's settings."""
        payload_mb = options.max_payload_size_mb or settings.max_payload_size_mb
        return cls(
            workers=settings.workers,
            max_payload_bytes=payload_mb * limits.MiB,
            max_objects_per_payload=options.max_objects_per_payload or settings.max_objects_per_payload,
            copy_cutoff=settings.copy_cutoff,
            part_size=settings.part_size,
            overwrite=options.overwrite,
            restore_tier=options.restore.tier if options.restore is not None else "",
        )


@dataclass(frozen=True)
class Decisions:
    copies: list[CopyTask]  # whole-object tasks ("copy" or "multipart"), copy_id = position
    skipped: list[SkippedObject]


@dataclass(frozen=True)
class Work:
    """The binned plan: payloads (ids dense, 0..P-1), split objects, and each worker's share."""

    payloads: tuple[Payload, ...]
    splits: tuple[SplitCopy, ...]
    worker_payloads: tuple[tuple[int, ...], ...]
    worker_loads: tuple[int, ...]
    payload_bytes: tuple[int, ...]  # of each payload, by payload id
    requests: int  # S3 copy requests the plan will issue (see binning.request_count), splits included


@dataclass(frozen=True)
class PlanResult:
    decisions: Decisions
    work: Work


# --- deciding ---------------------------------------------------------------------------------------
def decide(candidates: Iterable[CandidateRow], params: PlanParams) -> Decisions:
    """Copy or skip each candidate, in order. The first candidate to claim a target key wins it.

    Skipped, in this order: larger than S3 allows, archived ("restore first"), a target key an earlier
    candidate claimed, an existing target that ``overwrite`` keeps. One pass, written out inline: it runs
    once per routed object, a million times in a big run.

    With ``params.restore_tier`` an archived object is not skipped as "restore first": it claims its target
    key like any copy, and unless ``overwrite`` keeps the target it goes to the restore stage (``TO_RESTORE``,
    ``restore_skip``), as does every INTELLIGENT_TIERING object (its archive tier is known only from a HEAD).
    """
    claimed: dict[str, dict[str, SourceObject]] = {}
    copies: list[CopyTask] = []
    skipped: list[SkippedObject] = []
    cutoff, overwrite = params.copy_cutoff, params.overwrite
    archived = limits.ARCHIVED_STORAGE_CLASSES
    restore_tier = params.restore_tier
    maybe_archived = limits.ARCHIVED_STORAGE_CLASSES | {limits.INTELLIGENT_TIERING} if restore_tier else frozenset()
    new_task = tuple.__new__
    for obj, bucket, key, existing in candidates:
        keys = claimed.get(bucket)
        if keys is None:
            keys = claimed[bucket] = {}
        if obj.size > limits.MAX_OBJECT_SIZE:
            reason = f"{TOO_LARGE}: {obj.size} bytes is more than S3's {limits.MAX_OBJECT_SIZE}-byte object limit"
        elif obj.storage_class in archived and not restore_tier:
            reason = RESTORE_FIRST
        elif key in keys:
            first = keys[key]
            reason = f"{TARGET_COLLISION} with s3://{bucket}/{key} of s3://{first.bucket}/{first.key}"
        else:
            keys[key] = obj
            reason = "" if existing is None else overwrite_reason(obj, existing, overwrite)
            if not reason and obj.storage_class in maybe_archived:
                skipped.append(restore_skip(obj, bucket, key, restore_tier))
                continue
        if reason:
            skipped.append(skip(obj, reason, bucket, key))
            continue
        copy_id = len(copies)
        # Every field, through tuple's constructor: the named tuple's own (a Python function) costs a
        # tenth of this loop.
        if existing is not None and overwrite == "if-different":
            compare, target_etag = checksum_to_compare(obj, existing), existing.etag
        else:
            compare = target_etag = ""
        method = "multipart" if obj.size > cutoff or keeps_composite_layout(obj) else "copy"
        copies.append(new_task(CopyTask, (f"c{copy_id}", copy_id, obj.bucket, obj.key, obj.size, obj.etag, bucket,
                                          key, method, 0, 0, 0, "", compare, target_etag, obj.checksum_algorithm)))
    return Decisions(copies=copies, skipped=skipped)


def overwrite_reason(obj: SourceObject, existing: ExistingTarget | None, overwrite: Overwrite) -> str:
    """Why an existing target is kept ("" to copy). "identical" needs proof: same size AND same ETag."""
    if existing is None or overwrite == "always":
        return ""
    if overwrite == "never":
        return EXISTS
    if existing.size == obj.size and existing.etag and existing.etag == obj.etag:
        return IDENTICAL
    return ""


# Algorithms S3 keeps as a COMPOSITE checksum for an object uploaded in parts unless asked for FULL_OBJECT (which
# CRC64NVME always is): Amazon S3 User Guide, "Checking object integrity for data uploads in Amazon S3",
# "Checksum types" (CRC64NVME: full object only; SHA1, SHA256: composite only; CRC32, CRC32C: either).
COMPOSITE_ALGORITHMS = frozenset({"CRC32", "CRC32C", "SHA1", "SHA256"})


def keeps_composite_layout(obj: SourceObject) -> bool:
    """Whether the object is copied in parts however small, to keep its checksum: uploaded in parts with an
    algorithm S3 keeps per part (a composite checksum, the CRC of the part checksums), it keeps that value
    only in a copy with the same part layout (lambdas/integrity.py), which also keeps its multipart ETag. One
    CopyObject would give it a FULL_OBJECT checksum and an MD5 ETag, neither comparable with the source's, and
    every re-run would copy it again."""
    return obj.checksum_algorithm in COMPOSITE_ALGORITHMS and is_multipart_etag(obj.etag)


def checksum_to_compare(obj: SourceObject, existing: ExistingTarget) -> str:
    """The checksum algorithm whose values can still prove an existing target identical when the ETags
    did not: same size, and both objects keep a checksum of the same algorithm ("" otherwise).

    A source uploaded in parts and copied in one request, or a target encrypted with SSE-KMS, has an
    ETag that is not comparable with the other's; equal checksums of one algorithm are proof all the
    same. The values are not in listings: the worker asks for both (two HEADs) before it would copy."""
    if existing.size != obj.size or not obj.checksum_algorithm:
        return ""
    return obj.checksum_algorithm if existing.checksum_algorithm == obj.checksum_algorithm else ""


class ChecksumHead(Protocol):
    """What a HeadObject with checksum mode tells (``gateway.ObjectHead``)."""

    @property
    def size(self) -> int: ...

    @property
    def checksums(self) -> dict[str, str]: ...


def prove_by_checksums(task: CopyTask, head: Callable[[str, str, str], ChecksumHead]) -> str:
    """The skip reason when ``task``'s existing target is proven identical by checksum (see
    ``checksum_to_compare``), else "". ``head(bucket, key, if_match)`` asks S3 with checksum mode on: the
    source pinned to the planned ETag (a changed source raises, as its copy would), then the target; a
    target that is gone, or that this role may not read, proves nothing."""
    source = head(task.source_bucket, task.source_key, task.etag)
    try:
        target = head(task.target_bucket, task.target_key, "")
    except ObjectError:
        return ""
    if target.size != task.size:
        return ""
    return checksums_prove_identical(task.compare_checksum, source.checksums, target.checksums)


def checksums_prove_identical(algorithm: str, source: Mapping[str, str], target: Mapping[str, str]) -> str:
    """The skip reason when the two objects' ``algorithm`` checksums (from HEADs with checksum mode) are
    present and equal, else "". The caller has checked that the sizes are equal too."""
    value = source.get(algorithm, "")
    if value and target.get(algorithm) == value:
        return f"{IDENTICAL}: equal {algorithm} checksums"
    return ""


def skip(obj: SourceObject, reason: str, target_bucket: str = "", target_key: str = "") -> SkippedObject:
    return SkippedObject(source_bucket=obj.bucket, source_key=obj.key, size=obj.size, reason=reason,
                         target_bucket=target_bucket, target_key=target_key)


def restore_skip(obj: SourceObject, bucket: str, key: str, tier: str) -> SkippedObject:
    """The plan's entry for an object the restore stage restores and copies, or refuses to: Expedited
    retrievals are not available for S3 Glacier Deep Archive (Amazon S3 User Guide, "Understanding archive
    retrieval options": Expedited is for S3 Glacier Flexible Retrieval and the Intelligent-Tiering Archive
    Access tier only)."""
    if tier == "Expedited" and obj.storage_class == "DEEP_ARCHIVE":
        return SkippedObject(obj.bucket, obj.key, obj.size, EXPEDITED_REFUSED.format(storage_class="DEEP_ARCHIVE"),
                             bucket, key)
    return SkippedObject(obj.bucket, obj.key, obj.size, TO_RESTORE, bucket, key, obj.etag, obj.storage_class)


EXPEDITED_REFUSED = (RESTORE_REFUSED + ": Expedited retrieval is not available for {storage_class} objects "
                     '(S3 User Guide, "Understanding archive retrieval options"); set options.restore.tier to '
                     '"Standard" or "Bulk"')


def reason_kind(reason: str) -> str:
    """The reason without its details, for counting ("too large: 6 TiB ..." -> "too large")."""
    for kind in _DETAILED_REASONS:
        if reason.startswith(kind):
            return kind
    return reason


# --- splitting --------------------------------------------------------------------------------------
def ideal_load(copies: Sequence[CopyTask], params: PlanParams) -> float:
    """Total cost / N, with every copy whole."""
    nbytes, requests = binning.measure(copies, params.part_size)
    return (sum(nbytes) + limits.REQUEST_COST_BYTES * sum(requests)) / params.workers


def chunk_limit(ideal: float, params: PlanParams) -> int:
    """The most bytes one chunk of a split object may hold."""
    if params.workers == 1:  # one worker: splitting cannot shorten the run, only the payload cap forces it
        return params.max_payload_bytes
    return max(1, min(params.max_payload_bytes, int(ideal / CHUNKS_PER_IDEAL_LOAD)))


def copied_in_parts(task: CopyTask, copy_cutoff: int) -> bool:
    """Copied with UploadPartCopy anyway: larger than the cutoff, or uploaded in parts (ETag "<md5>-<n>"),
    in which case the copy mirrors the source's part layout and gets the same ETag."""
    return task.size > copy_cutoff or is_multipart_etag(task.etag)


def is_multipart_etag(etag: str) -> bool:
    _, dash, count = etag.rpartition("-")
    return bool(dash) and count.isdigit()


def split_candidates(copies: Sequence[CopyTask], params: PlanParams) -> list[CopyTask]:
    """Copies to cut into chunks: every copy larger than the payload cap must be. A copy made in parts
    anyway and large next to the ideal load is cut too, but only when binning the copies whole would miss
    the balance target: a chunked copy costs more requests and a completion, so it must buy something."""
    ideal = ideal_load(copies, params)
    limit = chunk_limit(ideal, params)  # at most the payload cap
    large = [t for t in copies if t.size > limit]
    must = [t.size > params.max_payload_bytes for t in large]
    may = [not m and copied_in_parts(t, params.copy_cutoff) for t, m in zip(large, must, strict=True)]
    if any(may) and whole_balance(copies, params, ideal) <= BALANCE_TARGET:
        may = [False] * len(large)
    return [t for t, m, b in zip(large, must, may, strict=True) if m or b]


def whole_balance(copies: Sequence[CopyTask], params: PlanParams, ideal: float) -> float:
    """Predicted makespan / ideal when only the copies over the payload cap are cut (into cap-sized pieces)."""
    nbytes, requests = binning.measure(copies, params.part_size)
    costs: list[int] = []
    for task, cost in zip(copies, binning.costs_of(nbytes, requests), strict=True):
        pieces = -(-task.size // params.max_payload_bytes) if task.size > params.max_payload_bytes else 1
        costs.extend([cost // pieces] * pieces)
    _shares, loads = binning.assign(costs, params.workers)
    return max(loads) / ideal if ideal else 1.0


def chunk_tasks(task: CopyTask, part_size: int, limit: int) -> list[CopyTask]:
    """``task`` as chunks of consecutive whole parts, each at most ``limit`` bytes (or one part when a
    part is larger), as even as possible. Part numbers run 1..count without gaps."""
    parts = part_count(task.size, part_size)
    per_chunk = max(1, limit // part_size)
    chunks = -(-parts // per_chunk)
    base, extra = divmod(parts, chunks)
    tasks: list[CopyTask] = []
    first = 1
    for index in range(chunks):
        last = first + base - 1 + (1 if index < extra else 0)
        tasks.append(task._replace(task_id=f"c{task.copy_id}.p{first}", method="chunk", part_size=part_size,
                                   first_part=first, last_part=last, compare_checksum="",
                                   target_etag="", source_checksum=""))  # the split's completion carries the If-Match
        first = last + 1
    return tasks


def split_part_size(size: int, preferred: int, max_payload_bytes: int, source_parts: int = 0,
                    source_first_part: int = 0) -> int:
    """The part size of a split object: the source's own layout (so the target gets the same ETag) when
    its parts fit in a payload, else the preferred size, lowered to the payload cap where S3 allows."""
    part_size = choose_part_size(size, preferred, source_parts, source_first_part)
    if part_size > max_payload_bytes:
        part_size = choose_part_size(size, min(preferred, max_payload_bytes))
    return part_size


def split_record(task: CopyTask, part_size: int) -> SplitCopy:
    return SplitCopy(
        copy_id=task.copy_id, source_bucket=task.source_bucket, source_key=task.source_key, size=task.size,
        etag=task.etag, target_bucket=task.target_bucket, target_key=task.target_key, part_size=part_size,
        part_count=part_count(task.size, part_size), upload_id="", target_etag=task.target_etag,
    )


# --- binning ----------------------------------------------------------------------------------------
def build_work(copies: Sequence[CopyTask], part_sizes: Mapping[int, int], params: PlanParams) -> Work:
    """Split the copies in ``part_sizes`` (copy_id -> part size), assign all tasks to workers, cut payloads."""
    if not part_sizes:
        return bin_tasks(copies, [], params)
    return bin_tasks(*_split(copies, part_sizes, params), params)


def _split(copies: Sequence[CopyTask], part_sizes: Mapping[int, int],
           params: PlanParams) -> tuple[list[CopyTask], list[SplitCopy]]:
    """The copies with each one in ``part_sizes`` replaced by its chunks, and the split records."""
    limit = chunk_limit(ideal_load(copies, params), params)
    tasks: list[CopyTask] = []
    splits: list[SplitCopy] = []
    for task in copies:
        part_size = part_sizes.get(task.copy_id)
        chunks = chunk_tasks(task, part_size, limit) if part_size else []
        if len(chunks) > 1:
            tasks.extend(chunks)
            splits.append(split_record(task, part_size or 0))
        else:
            tasks.append(task)
    return tasks, splits


def bin_tasks(tasks: Sequence[CopyTask], splits: list[SplitCopy], params: PlanParams) -> Work:
    """Assign tasks to workers by cost, and cut each worker's share into payloads (ids dense, by worker)."""
    nbytes, requests = binning.measure(tasks, params.part_size)
    shares, loads = binning.assign(binning.costs_of(nbytes, requests), params.workers)
    payloads: list[Payload] = []
    payload_bytes: list[int] = []
    worker_payloads: list[tuple[int, ...]] = []
    for worker, share in enumerate(shares):
        cut, sizes = binning.cut_payloads([tasks[i] for i in share], [nbytes[i] for i in share],
                                          params.max_payload_bytes, params.max_objects_per_payload)
        ids = range(len(payloads), len(payloads) + len(cut))
        payloads.extend(Payload(payload_id=pid, worker=worker, tasks=tuple(p)) for pid, p in zip(ids, cut, strict=True))
        payload_bytes.extend(sizes)
        worker_payloads.append(tuple(ids))
    total_requests = sum(requests) + SPLIT_EXTRA_REQUESTS * len(splits)
    return Work(payloads=tuple(payloads), splits=tuple(splits), worker_payloads=tuple(worker_payloads),
                worker_loads=tuple(loads), payload_bytes=tuple(payload_bytes), requests=total_requests)


class StartedUpload(NamedTuple):
    """A split copy's upload as the planner started it (planner.create_uploads)."""

    upload_id: str
    tags: tuple[tuple[str, str], ...] = ()  # applied by the finalizer (too long for the upload's header)
    checksum_algorithm: str = ""  # the upload's checksum (lambdas/integrity.py, WriteSpec)
    checksum_type: str = ""
    checksum_expected: str = ""


def split_with_upload(split: SplitCopy, upload: StartedUpload | None) -> SplitCopy:
    """``split`` with its upload's id, tags and checksum filled in (None: no upload was started)."""
    if upload is None:
        return replace(split, upload_id="", tags=())
    return replace(split, upload_id=upload.upload_id, tags=upload.tags, checksum_algorithm=upload.checksum_algorithm,
                   checksum_type=upload.checksum_type, checksum_expected=upload.checksum_expected)


def with_uploads(work: Work, uploads: Mapping[int, StartedUpload]) -> Work:
    """``work`` with the upload of each split filled in: copy_id -> StartedUpload."""
    splits = tuple(split_with_upload(s, uploads[s.copy_id]) for s in work.splits)
    payloads = tuple(_payload_with_uploads(p, uploads) for p in work.payloads)
    return replace(work, splits=splits, payloads=payloads)


def _payload_with_uploads(payload: Payload, uploads: Mapping[int, StartedUpload]) -> Payload:
    if not any(t.method == "chunk" for t in payload.tasks):
        return payload
    tasks = tuple(t._replace(upload_id=uploads[t.copy_id][0]) if t.method == "chunk" else t for t in payload.tasks)
    return replace(payload, tasks=tasks)


def check_history_budget(work: Work, params: PlanParams) -> int:
    """The plan's estimated history events; PlanTooLargeError (saying what to raise) over the budget."""
    return history.check_history_budget(work.payload_bytes, params.workers, params.max_payload_bytes,
                                        params.max_objects_per_payload)


# --- totals and the whole pipeline --------------------------------------------------------------------
def totals(copies: Sequence[CopyTask], skipped: Sequence[SkippedObject], work: Work,
           objects_listed: int, unmatched: int) -> PlanTotals:
    """Counts for the index; "unmatched" rows (listed only when asked) are counted in ``unmatched`` only."""
    kinds = Counter(reason_kind(s.reason) for s in skipped if s.reason != UNMATCHED)
    return PlanTotals(
        objects_listed=objects_listed, copies=len(copies), bytes=sum(t.size for t in copies),
        skipped=sum(kinds.values()), unmatched=unmatched, payloads=len(work.payloads),
        split_objects=len(work.splits), requests=work.requests, skipped_by_reason=tuple(sorted(kinds.items())),
    )


def plan(candidates: Iterable[CandidateRow], params: PlanParams,
         part_size_of: Callable[[CopyTask], int] | Mapping[int, int]) -> PlanResult:
    """Decide, split (part sizes from ``part_size_of``: a callable of the task, or copy_id -> size), bin,
    and check the history budget."""
    decisions = decide(candidates, params)
    to_split = split_candidates(decisions.copies, params)
    if callable(part_size_of):
        sizes = {t.copy_id: part_size_of(t) for t in to_split}
    else:
        sizes = {t.copy_id: part_size_of[t.copy_id] for t in to_split}
    work = build_work(decisions.copies, sizes, params)
    check_history_budget(work, params)
    return PlanResult(decisions=decisions, work=work)
