"""The restore branch's Lambda core: request restores, look at them again later, copy what became readable.

The branch runs beside the workers (generator/state_machine.py, ``restore_branch``), so everything else copies
at once and never waits for archived objects:

    RequestRestores -> RestoresPending? --no--> WaitForRestores (SecondsPath $.wait_seconds) -> CheckRestores
                                        --yes (done)--> RestoresSettled              (CheckRestores -> RestoresPending?)

Both Tasks call ``restore_step``. Its first call builds the book (``restore/book.json`` in the run's folder)
from the plan's ``to restore`` entries (the skipped files the plan's index names: plan/skipped.json from the
single planner, the shards' own files from the sharded one), one item per source object with its targets.
Each call then looks at every item not yet settled:

- a HeadObject pinned to the planned ETag reads the Restore header (and, for INTELLIGENT_TIERING, the
  archive tier from ArchiveStatus) (Amazon S3 API Reference, "HeadObject": ``ongoing-request="true"`` while a
  restore runs, ``ongoing-request="false", expiry-date=...`` once the restored copy is readable);
- archived with no restore asked: RestoreObject at the config's tier (``days`` for GLACIER / DEEP_ARCHIVE,
  none for an Intelligent-Tiering archive tier), the request time and the tier's deadline recorded;
- archived with a restore ongoing past its deadline (lambdas/restoring/tiers.py): the item fails, with the
  bound in its reason; the run goes on;
- readable (restored, or never archived): copied to each target with the workers' copy core
  (lambdas/copying.py), the time it was first seen readable recorded.

The book is rewritten after each call: the finalizer reads it for the report rows of these objects. The
answer (``RestoreProgress``) says whether anything is left and how long to wait (the schedule grows the
wait; a call stopped by its deadline asks to be called again at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from lambdas import limits, logs, manifest
from lambdas.copying import CopyContext, copy_task, run_windowed
from lambdas.deadline import Deadline
from lambdas.errors import ObjectError, SettingsError
from lambdas.gateway import S3Gateway
from lambdas.models import (
    CopyMethod,
    CopyOptions,
    CopyTask,
    ManifestLocation,
    ObjectResult,
    RestoreOptions,
    SkippedObject,
)
from lambdas.planning import TO_RESTORE
from lambdas.restoring import tiers
from lambdas.settings import Settings

log = logs.get_logger("restore")

BOOK = "restore/book.json"
# Source objects one run restores at most: the book is one JSON file rewritten after each call (about 0.5 KB
# an object: 50 MB at this count). Objects past it fail with TOO_MANY.
MAX_RESTORE_OBJECTS = 100_000
TOO_MANY = (f"TooManyRestores: the run has more than {MAX_RESTORE_OBJECTS:,} objects to restore; restore the rest "
            "in another run (narrow the sources or select by storage_classes)")
NOT_FINISHED = "NotRun: the restore stage stopped before this object was settled"
Status = Literal["new", "waiting", "settled"]


@dataclass
class RestoreItem:
    """One archived source object and its copies. Mutable: one thread owns it during a call."""

    bucket: str
    key: str
    size: int
    etag: str
    storage_class: str
    targets: list[tuple[str, str]]
    status: Status = "new"
    archive_status: str = ""
    requested_at: str = ""  # when this run asked for the restore, or first saw one ongoing ("" when none was)
    completed_at: str = ""  # when first seen readable after a restore ("" when it never was)
    deadline_at: float = 0.0  # epoch seconds: a restore ongoing after this fails the item
    how: str = ""  # "requested", "in progress before the run", "restored before the run", "not archived"
    error: str = ""  # why the item failed as a whole ("" when its copies decided)
    results: list[dict[str, Any]] = field(default_factory=list)  # ObjectResult dicts, one per finished target
    uploads: dict[str, str] = field(default_factory=dict)  # task_id -> open multipart upload

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RestoreItem:
        values = dict(data)
        values["targets"] = [(str(b), str(k)) for b, k in values.get("targets", ())]
        return cls(**values)

    def tasks(self, cutoff: int, index: int) -> list[CopyTask]:
        method: CopyMethod = "copy" if self.size <= cutoff else "multipart"
        return [CopyTask(f"r{index}.{n}", index, self.bucket, self.key, self.size, self.etag, bucket, key, method)
                for n, (bucket, key) in enumerate(self.targets)]


@dataclass(frozen=True)
class RestoreProgress:
    """The restore Tasks' input and answer: pointers and counts only."""

    run_id: str
    manifest: ManifestLocation
    done: bool = False
    pending: int = 0  # items not settled
    settled: int = 0
    polls: int = 0  # looks made after the first call
    wait_seconds: int = 0  # before the next look (WaitForRestores' SecondsPath)
    calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "manifest": asdict(self.manifest)}

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RestoreProgress:
        names = {"done", "pending", "settled", "polls", "wait_seconds", "calls"}
        return cls(run_id=str(event["run_id"]), manifest=ManifestLocation.from_dict(event["manifest"]),
                   **{k: v for k, v in event.items() if k in names})


def book_key(loc: ManifestLocation) -> str:
    return manifest.key(loc, BOOK)


def read_book(s3: S3Gateway, loc: ManifestLocation) -> list[RestoreItem] | None:
    data = s3.get_json_or_none(loc.bucket, book_key(loc))
    return None if data is None else [RestoreItem.from_dict(item) for item in data["items"]]


def write_book(s3: S3Gateway, loc: ManifestLocation, items: list[RestoreItem]) -> None:
    s3.put_json(loc.bucket, book_key(loc), {"items": [item.to_dict() for item in items]})


def to_restore(entries: Iterator[SkippedObject]) -> list[RestoreItem]:
    """The book's items from the plan's skipped entries: one per source object, its targets in plan order;
    objects past MAX_RESTORE_OBJECTS settled as failed."""
    items: dict[tuple[str, str], RestoreItem] = {}
    for entry in entries:
        if entry.reason != TO_RESTORE:
            continue
        item = items.get((entry.source_bucket, entry.source_key))
        if item is None:
            item = items[entry.source_bucket, entry.source_key] = RestoreItem(
                entry.source_bucket, entry.source_key, entry.size, entry.etag, entry.storage_class, [])
            if len(items) > MAX_RESTORE_OBJECTS:
                item.status, item.error = "settled", TOO_MANY
        item.targets.append((entry.target_bucket, entry.target_key))
    return list(items.values())


class _Uploads:
    """The copy core's UploadBook for one item: its open multipart uploads live in the item (and so in the
    book), so a call stopped mid-copy resumes them and the finalizer can abort what is left."""

    def __init__(self, item: RestoreItem) -> None:
        self.item = item

    def open_upload(self, task_id: str) -> str:
        return self.item.uploads.get(task_id, "")

    def opened(self, task_id: str, upload_id: str) -> None:
        self.item.uploads[task_id] = upload_id

    def part_done(self) -> None:
        return None


@dataclass(frozen=True)
class _Call:
    """What one call needs to look at an item."""

    s3: S3Gateway
    options: CopyOptions
    restore: RestoreOptions
    settings: Settings
    now: Callable[[], float]
    make_context: Callable[[RestoreItem], CopyContext]


def look(item: RestoreItem, index: int, call: _Call) -> None:
    """Move ``item`` on as far as S3 allows now (see the module docstring). Per-object errors settle it as
    failed; TransientError and bugs propagate."""
    now = call.now()
    try:
        head = call.s3.head_object(item.bucket, item.key, if_match=item.etag)
        family = tiers.family(head.storage_class, head.archive_status)
        item.archive_status = head.archive_status
        if family and tiers.restore_state(head.restore) != "done":
            _wait_for_restore(item, head.storage_class, head.restore, call, now)
            return
        _note_readable(item, family, now)
        results = {r["task_id"]: r for r in item.results}
        for task in item.tasks(call.settings.copy_cutoff, index):
            if task.task_id in results:
                continue
            result = copy_task(task, call.make_context(item))
            if result is None:
                item.status = "waiting"  # stopped by the deadline: the next call resumes
                return
            item.uploads.pop(task.task_id, None)
            results[task.task_id] = result.to_dict()
            item.results = list(results.values())
        item.status = "settled"
    except ObjectError as err:
        item.status, item.error = "settled", f"{err.code}: {err}"


def _wait_for_restore(item: RestoreItem, storage_class: str, header: str, call: _Call, now: float) -> None:
    tier = call.restore.tier
    refusal = tiers.refused(tier, storage_class, item.archive_status)
    if refusal:
        item.status, item.error = "settled", f"RestoreRefused: {refusal}"
        return
    state = tiers.restore_state(header)
    if state == "none":
        # An Intelligent-Tiering archive tier takes no Days: the object moves back to Frequent Access.
        days = None if storage_class == limits.INTELLIGENT_TIERING else call.restore.days
        answer = call.s3.restore_object(item.bucket, item.key, tier, days)
        item.how = item.how or ("requested" if answer == "accepted" else answer)
    elif not item.requested_at:
        item.how = "in progress before the run"
    if not item.requested_at:
        bound = tiers.bound_seconds(tier, storage_class, item.archive_status, call.settings.restore_bound_seconds)
        item.requested_at, item.deadline_at = _iso(now), now + bound
    elif now >= item.deadline_at:
        bound = tiers.bound_seconds(tier, storage_class, item.archive_status, call.settings.restore_bound_seconds)
        item.status = "settled"
        item.error = f"RestoreTimedOut: restore did not complete within {tiers.describe_bound(bound)} ({tier})"
        return
    item.status = "waiting"


def _note_readable(item: RestoreItem, family: str, now: float) -> None:
    if item.requested_at:
        item.completed_at = item.completed_at or _iso(now)
    elif not item.how:
        item.how = "restored before the run" if family else "not archived"
    item.status = "waiting"  # readable: its copies follow


def restore_step(progress: RestoreProgress, settings: Settings, s3: S3Gateway, deadline: Deadline,
                 now: Callable[[], float] = time.time) -> RestoreProgress:
    """One call of the restore loop (see the module docstring)."""
    if deadline.near():
        raise SettingsError(f"the restore function starts with {deadline.remaining():.0f} s left, inside its "
                            f"{deadline.margin:.0f} s deadline margin: raise its timeout (worker_timeout_seconds)")
    loc = progress.manifest
    plan = manifest.read_plan(s3, loc)
    restore = plan.config.options.restore
    items = read_book(s3, loc)
    if items is None:
        items = to_restore(manifest.iter_skipped(s3, loc, plan)) if restore is not None else []
        write_book(s3, loc, items)
    if restore is None or not any(item.status != "settled" for item in items):
        return _answer(progress, items, finished=True, wait=0)
    s3 = s3.for_buckets(plan.config.bucket_access())
    stopping = False
    threads = settings.worker_threads

    def may_start() -> bool:
        nonlocal stopping
        stopping = stopping or deadline.near()
        return not stopping

    failures: list[BaseException] = []
    todo = [(index, item) for index, item in enumerate(items) if item.status != "settled"]
    with ThreadPoolExecutor(threads, thread_name_prefix="sfncopy-restore") as pool, \
            ThreadPoolExecutor(threads, thread_name_prefix="sfncopy-part") as parts:
        def context(item: RestoreItem) -> CopyContext:
            return CopyContext(s3=s3, options=plan.config.options, part_size=settings.part_size, part_pool=parts,
                               part_window=threads, should_stop=deadline.near, uploads=_Uploads(item),
                               resumed=bool(item.uploads))

        call = _Call(s3, plan.config.options, restore, settings, now, context)
        for (_, item), future in run_windowed(todo, lambda pair: look(pair[1], pair[0], call), pool, threads,
                                              may_start):
            if future.exception() is not None:
                failures.append(future.exception())  # type: ignore[arg-type]
                stopping = True
                log.warning("restore look stopped", extra={"key": item.key, "error": repr(future.exception())})
    write_book(s3, loc, items)
    if failures:
        raise failures[0]
    finished = not stopping
    pending = [item for item in items if item.status != "settled"]
    wait = 1  # a call stopped by its deadline: the next goes on at once
    if finished and pending:
        bound = max(tiers.bound_seconds(restore.tier, item.storage_class, item.archive_status,
                                        settings.restore_bound_seconds) for item in pending)
        schedule = tiers.schedule(restore.tier, bound, settings.restore_first_wait_seconds)
        earliest = min((item.deadline_at for item in pending if item.requested_at), default=now() + bound)
        looks = progress.polls + (1 if progress.calls else 0)  # this call's look counts unless it requested
        wait = schedule.wait(looks, earliest - now())
    answer = _answer(progress, items, finished=finished, wait=wait)
    log.info("restore step", extra={"pending": answer.pending, "settled": answer.settled, "polls": answer.polls,
                                    "wait_seconds": answer.wait_seconds, "finished": finished})
    return answer


def _answer(progress: RestoreProgress, items: list[RestoreItem], finished: bool, wait: int) -> RestoreProgress:
    pending = sum(item.status != "settled" for item in items)
    first_call = progress.calls == 0
    return replace(progress, done=pending == 0, pending=pending, settled=len(items) - pending,
                   polls=progress.polls + (1 if finished and not first_call else 0),
                   wait_seconds=wait if pending else 0, calls=progress.calls + 1)


def record_failure(progress: RestoreProgress, error: Mapping[str, Any], s3: S3Gateway) -> int:
    """The restore branch failed for good (its Catch): settle every unsettled item as failed with the error,
    so the report says why; answer how many. The run goes on (the workers are not affected)."""
    # Imported here: lambdas.worker imports lambdas.cleanup, which reads this module's book.
    from lambdas.worker import failure_text

    items = read_book(s3, progress.manifest) or []
    text = failure_text(error)
    unsettled = [item for item in items if item.status != "settled"]
    for item in unsettled:
        item.status, item.error = "settled", text
    if unsettled:
        write_book(s3, progress.manifest, items)
    log.warning("restore stage failed", extra={"objects": len(unsettled), "error": text})
    return len(unsettled)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def result_of(data: Mapping[str, Any]) -> ObjectResult:
    return ObjectResult.from_dict(dict(data))
