"""Where a run's files live in the manifest location, and reading/writing them.

Layout under ``<SFNCOPY_MANIFEST_PREFIX>runs/<run_id>/``::

    plan/index.json              RunPlan: config, totals, worker -> payload ids, split objects
    plan/payloads/00042.json     Payload: the tasks of payload 42
    plan/skipped.json            [SkippedObject]: what the plan does not copy, and why (the index's
                                 ``skipped_files`` name the files to read: this one, or a sharded plan's)
    plan/workers/00003.json      [WorkItem]: worker 3's payloads, in order (its Distributed Map's items):
                                 each payload's run-wide id, its worker and the key of its file (here under
                                 plan/payloads/, or where sharded planning wrote it: plan/sharding/)
    results/00042.json           ResultsHead of payload 42: which result chunks count, open uploads,
                                 invocations (small; rewritten at every checkpoint), and why the payload's
                                 child execution failed when it did (``failure``, written once, at the end)
    result-chunks/00042/0003-9f3a2b1c-00007.json
                                 a result chunk: the results one checkpoint recorded since the previous one
                                 (written once, never changed); "<writer>-<number>", the writer being
                                 "<invocation>-<8 random hex digits>", unique to one worker invocation
    report.json, report.csv      written by the finalizer (report.csv for reports up to 1,048,575 rows)
    report/part-00003-00000.csv, ...   the report's rows in parts (a finalize shard's, the merge's
                                 "part-splits-..."), and report/manifest.json naming them (lambdas/report_files.py)
    finalizer/shards.json        the finalize shards, the FinalizeShards Map's items (lambdas/finalize_shards.py)
    finalizer/shard-00003/summary.json   what finalize shard 3 leaves for the merge
    finalizer/state-00001.json   the finalizer's state between two of its invocations (lambdas/finalizer_state.py;
                                 a shard's under finalizer/shard-00003/)
    failure.json                 written by cleanup when the execution fails

A payload's checkpoint is append-only, so the bytes written for it grow with its results (O(n)) instead of
with results x checkpoints: each checkpoint write puts one new chunk (only what was recorded since the last
write; none when nothing was) and then rewrites the head. Chunks live outside ``results/`` so listing
``results/`` (the CLI's progress) still lists one key per payload.

The invariant, which every reader and writer keeps:

1. A payload's results are exactly the results in the chunks its head names: ``(writer, count)`` names that
   writer's chunks ``0 .. count-1``, in the order the head lists them (oldest first). A chunk the head does
   not name does not count, even if it exists.
2. A chunk is written before the first head that names it, and never rewritten: its key is unique to one
   invocation (the random part of the writer), so a Step Functions retry that re-runs an invocation, or two
   invocations of one payload running at once, never write the same key.
3. A head's open uploads are those opened and not yet settled by a result in the chunks it names (both are
   taken from the worker's state at the same moment).
4. A task id found in more than one counted chunk counts once: the latest chunk wins.

So a crash between a chunk and its head loses nothing that was counted and counts nothing twice: the
chunk is not named, its results do not count, and the next invocation (which reads the head that is there)
copies those tasks again, as a crash before any write would (at most a checkpoint's worth of work). Two
invocations of one payload each write a head naming the chunks they read plus their own; the last head
written wins whole, and its view is consistent (tasks only the other one finished are copied again).

A single-file checkpoint written before result chunks existed (``results/00042.json`` holding every
result inline) is still read as it is, and the first checkpoint write of a newer worker moves its results
into that worker's first chunk (once, then it appends as usual).
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, MutableMapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from json.encoder import encode_basestring_ascii as json_string
from operator import itemgetter
from typing import Any, TypeVar

from lambdas.gateway import JSON_CONTENT_TYPE, S3Gateway, encode_json
from lambdas.json_stream import iter_array
from lambdas.models import (
    SKIPPED_FILE,
    CopyTask,
    ManifestLocation,
    ObjectResult,
    Payload,
    PayloadCheckpoint,
    ResultsHead,
    RunPlan,
    SkippedObject,
    WorkItem,
)

INDEX = "plan/index.json"
SKIPPED = SKIPPED_FILE
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
FAILURE = "failure.json"

# Manifest files read or written at once (the planner's payloads; the finalizer's and cleanup's reads):
# each is a small request (~20 ms), so a run of 1,000 payloads takes about a second instead of forty.
READ_THREADS = 16

# The run id is the execution name. Step Functions accepts 1-80 characters except white space, brackets
# < > { } [ ], wildcards ? *, the characters " # % \ ^ | ~ ` $ & , ; : /, control characters (U+0000-001F,
# U+007F-009F) and surrogates (Step Functions API reference, StartExecution, "name"). Every name it accepts
# is a valid S3 key segment (Amazon S3 user guide, "Naming Amazon S3 objects": any UTF-8 characters), so the
# run's folder is the name itself; only "." and ".." are refused, as path segments that tools resolve.
MAX_RUN_ID_LENGTH = 80
_FORBIDDEN_IN_NAMES = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ud800-\udfff]')


def run_id_problem(run_id: str) -> str:
    """Why ``run_id`` cannot be a run id ("" when it can): exactly the execution names AWS refuses."""
    if not 1 <= len(run_id) <= MAX_RUN_ID_LENGTH:
        return f"run id {run_id!r} must be 1-{MAX_RUN_ID_LENGTH} characters (Step Functions' execution name limit)"
    bad = _FORBIDDEN_IN_NAMES.search(run_id)
    if bad:
        return (f"run id {run_id!r} contains {bad.group()!r}, which Step Functions refuses in execution names "
                "(white space, brackets, ? * \" # % \\ ^ | ~ ` $ & , ; : / and control characters)")
    if run_id in (".", ".."):
        return f"run id {run_id!r} cannot name a folder of run files; choose another execution name"
    return ""


def run_location(bucket: str, base_prefix: str, run_id: str) -> ManifestLocation:
    problem = run_id_problem(run_id)
    if problem:
        raise ValueError(problem)
    return ManifestLocation(bucket=bucket, prefix=f"{base_prefix}runs/{run_id}/")


def worker_list_key(loc: ManifestLocation, worker: int) -> str:
    """The JSON array of worker ``worker``'s payload ids: its branch's Distributed Map reads it (ItemReader)."""
    return f"{loc.prefix}plan/workers/{worker:05d}.json"


def payload_key(loc: ManifestLocation, payload_id: int) -> str:
    return f"{loc.prefix}plan/payloads/{payload_id:05d}.json"


def results_key(loc: ManifestLocation, payload_id: int) -> str:
    """The payload's ResultsHead (or a single-file checkpoint an older version wrote)."""
    return f"{loc.prefix}results/{payload_id:05d}.json"


_RESULTS_KEY = re.compile(r"results/(\d+)\.json")


def results_payload_id(loc: ManifestLocation, key: str) -> int | None:
    """The payload whose head ``key`` is; None for any other key."""
    found = _RESULTS_KEY.fullmatch(key, len(loc.prefix)) if key.startswith(loc.prefix) else None
    return int(found.group(1)) if found else None


def chunk_key(loc: ManifestLocation, payload_id: int, writer: str, number: int) -> str:
    return f"{loc.prefix}result-chunks/{payload_id:05d}/{writer}-{number:05d}.json"


def new_writer(invocation: int) -> str:
    """A name for one invocation's chunks: its number (for people reading the bucket) and 32 random bits,
    so that a retry re-running the same invocation number never writes another invocation's keys."""
    return f"{invocation:04d}-{secrets.token_hex(4)}"


def key(loc: ManifestLocation, name: str) -> str:
    return f"{loc.prefix}{name}"


# --- reading and writing ----------------------------------------------------------------------------
def write_plan(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan, payloads: list[Payload],
               skipped: list[SkippedObject]) -> None:
    """The single planner's plan: payloads (under plan/payloads/), the workers' lists of them (concurrently)
    and skipped first, the index last: an index always points at complete files."""
    def write(payload: Payload) -> None:
        s3.put_bytes(loc.bucket, payload_key(loc, payload.payload_id), encode_payload(payload), JSON_CONTENT_TYPE)

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for _ in pool.map(write, payloads):  # consume, so the first failure is raised here
            pass
    lists = [[WorkItem(pid, worker, payload_key(loc, pid)) for pid in ids]
             for worker, ids in enumerate(plan.worker_payloads)]
    write_worker_lists(s3, loc, lists)
    s3.put_json(loc.bucket, key(loc, SKIPPED), [s.to_dict() for s in skipped])
    write_index(s3, loc, plan)


def write_worker_lists(s3: S3Gateway, loc: ManifestLocation, lists: Sequence[Sequence[WorkItem]]) -> None:
    """Worker i's items at ``worker_list_key(loc, i)``, concurrently."""
    def write_list(worker: int) -> None:
        s3.put_json(loc.bucket, worker_list_key(loc, worker), [item.to_dict() for item in lists[worker]])

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for _ in pool.map(write_list, range(len(lists))):  # consume, so the first failure is raised here
            pass


def write_index(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan) -> None:
    """The index, after every file it points at."""
    s3.put_json(loc.bucket, key(loc, INDEX), plan.to_dict())


_COLUMNS = encode_json(CopyTask._fields).decode()


def encode_payload(payload: Payload) -> bytes:
    """A payload file's bytes: exactly ``encode_json(payload.to_dict())``, with the common row (a whole
    copy with nothing to compare) written out here. The json module would first cut each such row from
    its task and then make a string per value and per separator: twice the time, at a million rows.
    Strings go through the json module's own escaping, and ints print as it prints them, so the bytes are
    its bytes (tests/unit/test_models.py checks tricky keys)."""
    rows: list[str] = []
    for task in payload.tasks:
        (task_id, copy_id, source_bucket, source_key, size, etag, target_bucket, target_key, method,
         _part_size, _first_part, _last_part, _upload_id, compare_checksum, target_etag, source_checksum) = task
        if method == "chunk":  # every column, as Payload.to_dict writes it
            rows.append(encode_json(task).decode())
            continue
        head = (f"[{json_string(task_id)},{copy_id:d},{json_string(source_bucket)},{json_string(source_key)},"
                f"{size:d},{json_string(etag)},{json_string(target_bucket)},{json_string(target_key)},"
                f"{json_string(method)}")
        if compare_checksum or target_etag or source_checksum:
            # Every column (Payload.to_dict), the chunk-only ones at their defaults: most sources keep a checksum
            # today, so this is a common row too.
            rows.append(f'{head},0,0,0,"",{json_string(compare_checksum)},{json_string(target_etag)},'
                        f"{json_string(source_checksum)}]")
        else:
            rows.append(head + "]")
    return (f'{{"payload_id":{payload.payload_id:d},"worker":{payload.worker:d},"columns":{_COLUMNS},'
            f'"tasks":[{",".join(rows)}]}}').encode()


def read_plan(s3: S3Gateway, loc: ManifestLocation) -> RunPlan:
    return RunPlan.from_dict(s3.get_json(loc.bucket, key(loc, INDEX)))


# --- where a plan's payload and skip files are (the one place every reader asks) ----------------------
def read_payload(s3: S3Gateway, loc: ManifestLocation, payload_id: int) -> Payload:
    """A payload of the single planner's layout (plan/payloads/), found by its id alone."""
    return read_payload_file(s3, loc, WorkItem(payload_id, -1, payload_key(loc, payload_id)))


def read_payload_file(s3: S3Gateway, loc: ManifestLocation, item: WorkItem) -> Payload:
    """The payload ``item`` names, with the item's run-wide id (and its worker, when the item knows it):
    the file's own numbers may be a shard's (a segment carries its place in the shard and worker -1)."""
    payload = Payload.from_dict(s3.get_json(loc.bucket, item.key))
    worker = item.worker if item.worker >= 0 else payload.worker
    return Payload(payload_id=item.payload, worker=worker, tasks=payload.tasks)


def work_item(value: Any, loc: ManifestLocation, worker: int) -> WorkItem:
    """An item of a worker's list: a WorkItem, or (a list written before WorkItems) a bare payload id."""
    if isinstance(value, int):
        return WorkItem(value, worker, payload_key(loc, value))
    return WorkItem.from_dict(value)


def read_worker_list(s3: S3Gateway, loc: ManifestLocation, worker: int) -> list[WorkItem]:
    return [work_item(value, loc, worker) for value in s3.get_json(loc.bucket, worker_list_key(loc, worker))]


def payload_files(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan,
                  ids: Collection[int] | None = None) -> dict[int, WorkItem]:
    """Every payload of the run by id (or those of ``ids``), from the workers' lists (one GET per worker that
    has one of them, concurrently; memory ~150 bytes a payload). For readers that go by payload id: the
    finalizer (a finalize shard reads only the lists of its payloads' workers), cleanup, the dry run."""
    wanted = set(ids) if ids is not None else None
    workers = [worker for worker, pids in enumerate(plan.worker_payloads)
               if wanted is None or not wanted.isdisjoint(pids)]
    with ThreadPoolExecutor(max_workers=max(1, min(READ_THREADS, len(workers)))) as pool:
        lists = list(pool.map(lambda worker: read_worker_list(s3, loc, worker), workers))
    return {item.payload: item for items in lists for item in items}


def skipped_keys(loc: ManifestLocation, plan: RunPlan) -> list[str]:
    """The keys of the plan's files of skipped objects, in report order."""
    return [key(loc, name) for name in plan.skipped_files]


def iter_skipped(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan | None = None) -> Iterator[SkippedObject]:
    """Every skipped object, file after file as the index names them, each file streamed (lambdas/json_stream.py):
    memory holds one object at a time. The finalizer streams them itself, to stop and resume at a byte offset."""
    keys = skipped_keys(loc, plan) if plan is not None else [key(loc, SKIPPED)]
    for k in keys:
        for data, _ in iter_array(s3.read_chunks(loc.bucket, k)):
            yield SkippedObject.from_dict(data)


def read_skipped(s3: S3Gateway, loc: ManifestLocation, plan: RunPlan | None = None) -> list[SkippedObject]:
    """Every skipped object at once (small plans, tests)."""
    return list(iter_skipped(s3, loc, plan))


# --- checkpoints: a head and the result chunks it names (see the module doc) --------------------------
# A result with its position in the payload (its task's index in Payload.tasks), so a checkpoint read
# back lists results in payload order whatever order they finished and were written in.
Positioned = tuple[int, ObjectResult]
# Chunks already read, by key (chunks never change): a reader that polls passes one to read each once.
ChunkCache = MutableMapping[str, list[Positioned]]
X = TypeVar("X")


def write_chunk(s3: S3Gateway, loc: ManifestLocation, payload_id: int, writer: str, number: int,
                rows: Sequence[Positioned]) -> None:
    """One chunk: written once, before any head names it."""
    s3.put_json(loc.bucket, chunk_key(loc, payload_id, writer, number), {
        "payload_id": payload_id, "writer": writer, "number": number,
        "positions": [position for position, _ in rows], "results": [r.to_dict() for _, r in rows]})


def write_head(s3: S3Gateway, loc: ManifestLocation, head: ResultsHead) -> None:
    """The head, after every chunk it names is written."""
    s3.put_json(loc.bucket, results_key(loc, head.payload_id), head.to_dict())


def write_checkpoint(s3: S3Gateway, loc: ManifestLocation, checkpoint: PayloadCheckpoint) -> None:
    """Replace the payload's checkpoint with ``checkpoint`` whole: its results as one new chunk (positions
    in their given order), then a head naming only that chunk. For tools and tests that set a payload's
    state; the worker appends with write_chunk and write_head instead."""
    writer = new_writer(checkpoint.invocations)
    chunks: tuple[tuple[str, int], ...] = ()
    if checkpoint.results:
        write_chunk(s3, loc, checkpoint.payload_id, writer, 0, list(enumerate(checkpoint.results)))
        chunks = ((writer, 1),)
    write_head(s3, loc, ResultsHead(payload_id=checkpoint.payload_id, worker=checkpoint.worker,
                                    invocations=checkpoint.invocations, open_uploads=checkpoint.open_uploads,
                                    chunks=chunks, failure=checkpoint.failure, timeline=checkpoint.timeline,
                                    failed_at=checkpoint.failed_at))


def read_head(s3: S3Gateway, loc: ManifestLocation, payload_id: int) -> ResultsHead | None:
    """The payload's head, None before its first checkpoint. A single-file checkpoint of an older version
    reads as a head without chunks holding its results ``inline``."""
    data: Any = s3.get_json_or_none(loc.bucket, results_key(loc, payload_id))
    if data is None:
        return None
    if "results" in data:  # heads have no "results"; the single files always had
        old = PayloadCheckpoint.from_dict(data)
        return ResultsHead(payload_id=old.payload_id, worker=old.worker, invocations=old.invocations,
                           open_uploads=old.open_uploads, inline=old.results, failure=old.failure)
    return ResultsHead.from_dict(data)


def chunk_keys(loc: ManifestLocation, head: ResultsHead) -> list[str]:
    """The keys of the chunks the head names, oldest first."""
    return [chunk_key(loc, head.payload_id, writer, number) for writer, count in head.chunks
            for number in range(count)]


def iter_results(s3: S3Gateway, loc: ManifestLocation, head: ResultsHead) -> Iterator[ObjectResult]:
    """The payload's results, chunk by chunk (newest chunk first), each task once: for consumers that must
    not hold every result at once. Up to READ_THREADS chunks are read ahead, concurrently; memory holds
    those chunks and the task ids seen (to drop a task's older results)."""
    return (result for _, result in _positioned(s3, loc, head))


def read_checkpoint(s3: S3Gateway, loc: ManifestLocation, payload_id: int, known: ChunkCache | None = None,
                    threads: int = READ_THREADS) -> PayloadCheckpoint | None:
    """The payload's whole checkpoint (results in payload order), None before its first checkpoint. Reads
    the head, then the chunks it names, ``threads`` at a time; those in ``known`` are not read again, and
    the ones read are added to it."""
    head = read_head(s3, loc, payload_id)
    if head is None:
        return None
    rows = sorted(_positioned(s3, loc, head, known, threads), key=itemgetter(0))
    return PayloadCheckpoint(payload_id=head.payload_id, worker=head.worker, results=tuple(r for _, r in rows),
                             open_uploads=head.open_uploads, invocations=head.invocations, chunks=head.chunks,
                             failure=head.failure, timeline=head.timeline, failed_at=head.failed_at)


def _positioned(s3: S3Gateway, loc: ManifestLocation, head: ResultsHead, known: ChunkCache | None = None,
                threads: int = READ_THREADS) -> Iterator[Positioned]:
    """Each counted result once with its position, newest chunk first (so the first seen is the latest)."""
    def read(key: str) -> list[Positioned]:
        rows = known.get(key) if known is not None else None
        if rows is None:
            data = s3.get_json(loc.bucket, key)  # a named chunk exists (invariant 2): missing is an error
            rows = list(zip(data["positions"], map(ObjectResult.from_dict, data["results"]), strict=True))
            if known is not None:
                known[key] = rows
        return rows

    seen: set[str] = set()
    chunks = (_read_ahead(read, chunk_keys(loc, head)[::-1], threads) if head.chunks
              else iter([list(enumerate(head.inline))]))
    for rows in chunks:
        for position, result in rows:
            if result.task_id not in seen:
                seen.add(result.task_id)
                yield position, result


def _read_ahead(read: Callable[[str], X], keys: Sequence[str], window: int = READ_THREADS) -> Iterator[X]:
    """``read(key)`` for each key, in order, with up to ``window`` reads in flight (no threads for one key)."""
    if len(keys) <= 1 or window <= 1:
        yield from map(read, keys)
        return
    todo = iter(keys)
    with ThreadPoolExecutor(max_workers=min(window, len(keys))) as pool:
        ahead: deque[Future[X]] = deque(pool.submit(read, key) for key in islice(todo, window))
        try:
            while ahead:
                rows = ahead.popleft().result()
                following = next(todo, None)
                if following is not None:
                    ahead.append(pool.submit(read, following))
                yield rows
        finally:
            for future in ahead:  # a consumer that stops early does not wait for reads it will not use
                future.cancel()


def read_payloads(s3: S3Gateway, loc: ManifestLocation, items: Iterable[WorkItem],
                  with_checkpoints: bool = True) -> Iterator[tuple[Payload, PayloadCheckpoint | None]]:
    """Each payload with its checkpoint (None without one, or when not asked), in the given order, read
    concurrently: READ_THREADS requests in flight in all, a checkpoint's chunks sharing them with the
    payloads (the client's connection pool is sized for that many)."""
    todo = list(items)
    chunk_threads = max(1, READ_THREADS // max(1, len(todo)))

    def read(item: WorkItem) -> tuple[Payload, PayloadCheckpoint | None]:
        payload = read_payload_file(s3, loc, item)
        return payload, read_checkpoint(s3, loc, item.payload, threads=chunk_threads) if with_checkpoints else None

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        yield from pool.map(read, todo)
