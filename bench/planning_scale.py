"""Planning scale: sharded planning (lambdas/sharding) for 10M, 100M and 1B objects, against a simulated S3.

The real code runs: ``prepare_run`` (its partition probes the simulated bucket), one real shard
(``plan_shard``: listing, routing, deciding, segments, summary) and the real ``assemble`` over as many shard
summaries as the run has. Nothing sleeps: the simulated S3 gives every request a latency (a ListObjectsV2
page 100-300 ms, a PUT/GET/HEAD 20-60 ms, drawn from a fixed seed) and the wall time is computed from the
requests, their order and their concurrency:

- prepare: its probe rounds run concurrently (a round takes its slowest probe), then a few writes;
- a shard: its source pages come one after another, the next fetched while the current one is decided (a
  page takes the longer of its latency and the CPU spent on it: our code, measured, plus botocore's parse
  of a 1,000-key page, ~37 ms on these machines: /work/shared/NOTES.md); targets are listed alongside;
  writes overlap the listing on 8 threads; an invocation stops 60 s before Lambda's 900 s and the next
  one goes on (continuations);
- the shards' Distributed Map runs ``concurrency`` shards at once, in waves;
- assemble: summaries read 32 at a time, CPU measured, the workers' lists written 32 at a time.

CPU and peak memory (``ru_maxrss``) are measured for real, each role in a fresh subprocess, with the
simulated bucket's own work (making keys) left out of the CPU. Figures for 10^8 and 10^9 objects reuse the
one measured shard: shards are cut to the same size (``PartitionParams.objects_per_shard``).

    python -m bench.planning_scale                 # every role, then the table (JSON on the last line)
    python -m bench.planning_scale --role shard --objects 1000000000
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import io
import itertools
import json
import math
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bench.json_subprocess import run_json
from bench.planner_scale import cpu_seconds, max_rss_bytes, quiet_lambda_logs

SOURCE, TARGET, PLANS = "bench-src", "bench-dst", "bench-plans"
RUN_ID = "bench-planning"
NOW = "2024-01-01T00:00:00Z"
SIZES = (10_000_000, 100_000_000, 1_000_000_000)
OBJECTS_PER_SHARD = 1_000_000
WORKERS = 100
CONCURRENCY = (1_000, 100)  # shards the Distributed Map runs at once (Lambda's default account quota: 1,000)
# Every this many objects one is 20 GiB: larger than a payload, split by the assembler (one per shard).
HUGE_EVERY = 1_000_000
HUGE_SIZE = 20 * 1024**3
# botocore parses one 1,000-key ListObjectsV2 page in ~35-40 ms (/work/shared/NOTES.md, measured here); a
# probe's page holds 100 keys (partition.PROBE_KEYS).
BOTOCORE_PARSE_S = 0.037
PROBE_PARSE_S = BOTOCORE_PARSE_S / 10
LAMBDA_TIMEOUT_S = 900.0
DEADLINE_MARGIN_S = 60.0
GB = 1_000_000_000
# Prices, us-east-1, unverified at the time of writing: Amazon S3 pricing (S3 Standard requests: PUT, COPY,
# POST, LIST $0.005 per 1,000; GET and others $0.0004 per 1,000), AWS Lambda pricing (x86: $0.0000166667
# per GB-second, $0.20 per 1M requests), AWS Step Functions pricing (Standard: $0.025 per 1,000 state
# transitions).
PRICE_LIST_PUT = 0.005 / 1000
PRICE_GET = 0.0004 / 1000
PRICE_GB_SECOND = 0.0000166667
PRICE_INVOKE = 0.20 / 1_000_000
PRICE_TRANSITION = 0.025 / 1000
# Memory configured for each Lambda (the peak measured below must fit, with room).
MEMORY_MB = {"prepare": 1024, "shard": 1024, "assemble": 2048}


# --- the simulated bucket ------------------------------------------------------------------------------
class KeySpace:
    """``count`` keys under "data/" in folders of lognormal sizes (a few dense ones, many small), made on
    demand from their index: nothing is stored, so 10^9 keys cost nothing until listed."""

    EXTS = ("mp4", "mov", "jpg", "png", "pdf", "csv")

    def __init__(self, count: int, seed: int = 20180601) -> None:
        rng = random.Random(seed)
        folders = max(1, count // 20_000)
        weights = [rng.lognormvariate(0, 1.5) for _ in range(folders)]
        total = sum(weights)
        sizes = [max(1, int(count * w / total)) for w in weights]
        sizes[-1] += count - sum(sizes)
        self.count = count
        self.ends = list(_accumulate(sizes))  # index just past each folder

    def key(self, i: int) -> str:
        folder = bisect.bisect_right(self.ends, i)
        first = self.ends[folder - 1] if folder else 0
        return f"data/{folder:06d}/{i - first:010d}.{self.EXTS[i % 6]}"

    def first(self, after: str, inclusive: bool = False) -> int:
        """The index of the first key after ``after`` (or equal to it, with ``inclusive``)."""
        low, high = 0, self.count
        while low < high:
            mid = (low + high) // 2
            key = self.key(mid)
            if key < after or (key == after and not inclusive):
                low = mid + 1
            else:
                high = mid
        return low

    @staticmethod
    def size(i: int) -> int:
        if i % HUGE_EVERY == HUGE_EVERY // 2:
            return HUGE_SIZE
        u = int.from_bytes(hashlib.blake2b(i.to_bytes(8, "little"), digest_size=4).digest(), "little") / 2**32
        return int(math.exp(math.log(1024) + u * (math.log(64 * 1024**2) - math.log(1024))))


def _accumulate(values: list[int]) -> Iterator[int]:
    total = 0
    for v in values:
        total += v
        yield total


class SimS3:
    """The boto3 S3 client calls sharded planning sends, answered from a KeySpace (source), an empty target
    and an in-memory manifest bucket. Every call is recorded with its simulated latency; the time spent
    making keys is kept apart (``own_cpu``) so it can be left out of the measured CPU."""

    def __init__(self, keys: KeySpace, summaries: Any = None) -> None:
        self.keys = keys
        self.files: dict[str, bytes] = {}
        self.written = Counter[str]()
        self.calls: list[tuple[str, float]] = []
        self.own_cpu = 0.0
        self.summaries = summaries  # callable(key) -> bytes | None: summaries made on demand (assemble)
        self._lock = threading.Lock()
        self._rng = random.Random(7)

    def _record(self, op: str) -> None:
        with self._lock:
            u = self._rng.random()
            latency = 0.1 + 0.2 * u if op == "list" else 0.02 + 0.04 * u
            self.calls.append((op, latency))

    def list_objects_v2(self, Bucket: str, Prefix: str = "", MaxKeys: int = 1000, StartAfter: str = "",
                        ContinuationToken: str = "", **_: Any) -> dict[str, Any]:
        self._record("list")
        if Bucket != SOURCE:
            return {"Contents": [], "IsTruncated": False, "KeyCount": 0}
        started = time.thread_time()
        keys = self.keys
        if ContinuationToken:
            i = int(ContinuationToken)
        else:  # keys that begin with Prefix and come after StartAfter (ListObjectsV2)
            i = max(keys.first(Prefix, inclusive=True), keys.first(StartAfter) if StartAfter else 0)
        contents: list[dict[str, Any]] = []
        while len(contents) < MaxKeys and i < keys.count:
            key = keys.key(i)
            if not key.startswith(Prefix):
                break
            contents.append({"Key": key, "Size": keys.size(i), "ETag": f'"{i:032x}"', "StorageClass": "STANDARD"})
            i += 1
        truncated = len(contents) == MaxKeys and i < keys.count and keys.key(i).startswith(Prefix)
        with self._lock:
            self.own_cpu += time.thread_time() - started
        return {"Contents": contents, "IsTruncated": truncated, "NextContinuationToken": str(i)}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._record("put")
        with self._lock:
            self.written[Key.rsplit("/", 2)[-2]] += len(Body)
            if not ("/segments/" in Key or "/chunks/" in Key or "/workers/" in Key or "/skipped/" in Key):
                self.files[Key] = bytes(Body)
        return {}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._record("get")
        body = self.files.get(Key)
        if body is None and self.summaries is not None:
            body = self.summaries(Key)
        if body is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "missing"}}, "GetObject")
        return {"Body": io.BytesIO(body)}

    def head_object(self, Bucket: str, Key: str, PartNumber: int = 0, **_: Any) -> dict[str, Any]:
        self._record("get")
        size = HUGE_SIZE
        part = 64 * 1024**2
        head: dict[str, Any] = {"ContentLength": part if PartNumber else size, "ETag": '"0"',
                                "StorageClass": "STANDARD"}
        if PartNumber:
            head["PartsCount"] = size // part
            head["ContentRange"] = f"bytes 0-{part - 1}/{size}"
        return head

    def get_object_tagging(self, **_: Any) -> dict[str, Any]:
        self._record("get")
        return {"TagSet": []}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self._record("put")
        return {"UploadId": f"u{len(self.calls)}"}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self._record("put")
        return {}

    def ops(self, since: int = 0) -> Counter[str]:
        return Counter(op for op, _ in self.calls[since:])


def document() -> dict[str, Any]:
    """W1's routing: six file types to three target prefixes of one target bucket."""
    routes = (("media", ("mp4", "mov")), ("images", ("jpg", "png")), ("docs", ("pdf", "csv")))
    return {"s3_copy_config": {
        "source_s3_config": {"s3_bucket": SOURCE, "s3_path": "data/"},
        "target_s3_config": [{"file_types": list(types), "s3_bucket": TARGET, "s3_path": f"{name}/"}
                             for name, types in routes]}}


def _setup(objects: int, summaries: Any = None) -> tuple[SimS3, Any, Any]:
    from lambdas.gateway import S3Gateway
    from lambdas.settings import Settings

    client = SimS3(KeySpace(objects), summaries)
    return client, S3Gateway(client), Settings(manifest_bucket=PLANS, workers=WORKERS)


def _prepare(objects: int, client: SimS3, gateway: Any, settings: Any) -> tuple[Any, list[float], set[int]]:
    """The real prepare step; returns its answer, each probe round's simulated time (its slowest probe) and
    the indexes of the probe calls among the client's calls."""
    from lambdas.sharding import prepare
    from lambdas.sharding.partition import PartitionParams

    rounds: list[float] = []
    probes: set[int] = set()

    def timed(batch: Any) -> Any:
        def run(requests: Any) -> Any:
            mark = len(client.calls)
            pages = batch(requests)
            rounds.append(max((lat for _, lat in client.calls[mark:]), default=0.0))
            probes.update(range(mark, len(client.calls)))
            return pages
        return run

    # The wanted shard count is given, as an operator would from the bucket's NumberOfObjects metric (an
    # order of magnitude is enough): the estimate then shapes the cuts, not their number.
    wanted = max(1, math.ceil(objects / OBJECTS_PER_SHARD))
    answer = prepare.prepare_run(document(), RUN_ID, settings, gateway, NOW, PartitionParams(shards=wanted),
                                 wrap_probe=timed)
    return answer, rounds, probes


# --- roles (each in its own process) -------------------------------------------------------------------
def role_prepare(objects: int) -> dict[str, Any]:
    """The real prepare step (validation, partition by probing, context and items written)."""
    from lambdas.sharding import layout

    client, gateway, settings = _setup(objects)
    rss0, cpu0 = max_rss_bytes(), cpu_seconds()
    with quiet_lambda_logs():
        answer, rounds, probes = _prepare(objects, client, gateway, settings)
    cpu = cpu_seconds() - cpu0 - client.own_cpu
    sequential = sum(lat for i, (_, lat) in enumerate(client.calls) if i not in probes)
    items = json.loads(client.files[answer.items])
    keys = client.keys
    edges = [0 if i["start_after"] is None else keys.first("data/" + i["start_after"]) for i in items] + [keys.count]
    counts = [b - a for a, b in itertools.pairwise(edges)]
    return {"role": "prepare", "objects": objects, "shards": answer.shards, "probes": answer.probes,
            "shard_counts": counts, "parse_seconds": round(PROBE_PARSE_S * answer.probes, 2),
            "rounds": len(rounds), "estimated_objects": answer.estimated_objects, "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(sum(rounds) + sequential + cpu + PROBE_PARSE_S * answer.probes, 2),
            "peak_rss_bytes": max_rss_bytes(),
            "rss_start_bytes": rss0, "requests": dict(client.ops()),
            # The shard measured: the one whose size is closest to the wanted size.
            "middle_item": items[min(range(len(items)), key=lambda n: abs(counts[n] - OBJECTS_PER_SHARD))],
            "context": json.loads(client.files[layout.context_key(answer.manifest)])}


def _manifest() -> Any:
    from lambdas.manifest import run_location

    return run_location(PLANS, "", RUN_ID)


def role_shard(objects: int, inputs: dict[str, Any]) -> dict[str, Any]:
    """One shard of the real partition (a full one), planned for real from the context prepare wrote."""
    from lambdas.deadline import Deadline
    from lambdas.sharding import layout
    from lambdas.sharding.partition import ShardSpec
    from lambdas.sharding.shard import ShardJob, plan_shard

    client, gateway, _ = _setup(objects)
    loc = _manifest()
    client.files[layout.context_key(loc)] = json.dumps(inputs["context"]).encode()
    spec = ShardSpec.from_item(inputs["middle_item"])
    rss0, cpu0 = max_rss_bytes(), cpu_seconds()
    started = time.perf_counter()
    with quiet_lambda_logs():
        done = plan_shard(ShardJob(RUN_ID, loc, spec), gateway, Deadline.never(), threads=16)
    real = time.perf_counter() - started
    cpu = cpu_seconds() - cpu0 - client.own_cpu
    summary = json.loads(client.files[layout.summary_key(loc, spec.index)])
    splits = {f["key"]: json.loads(client.files[f["key"]]) for f in summary["splits"]}
    return {"role": "shard", "objects": objects, "shard": spec.index, "estimate": spec.estimate,
            "listed": done.listed, "copies": done.copies, "segments": done.segments,
            "splits": sum(len(rows) for rows in splits.values()), "cpu_seconds": round(cpu, 3),
            "real_seconds": round(real, 2), "peak_rss_bytes": max_rss_bytes(), "rss_start_bytes": rss0,
            "requests": dict(client.ops()), "list_latencies": [round(lat, 4) for op, lat in client.calls
                                                                if op == "list"],
            "bytes_written": sum(client.written.values()),
            "summary_bytes": len(client.files[layout.summary_key(loc, spec.index)]), "summary": summary,
            "split_files": splits}


def role_assemble(objects: int, inputs: dict[str, Any], shards: int) -> dict[str, Any]:
    """The real assembler over ``shards`` summaries, each the measured shard's, made on demand (with its
    split records): the simulated bucket holds none of them, so the peak memory is the assembler's."""
    from lambdas.sharding import assemble, layout

    template = inputs["summary"]
    summary_text = json.dumps(template)
    split_texts = {key.rsplit("/", 1)[-1]: json.dumps(rows).encode() for key, rows in inputs["split_files"].items()}
    own = f"/shards/{template['shard']:06d}/"
    first = f'"shard": {template["shard"]},'

    def on_demand(key: str) -> bytes | None:
        if key.endswith("/summary.json"):
            shard = int(key.rsplit("/", 2)[-2])
            return summary_text.replace(own, f"/shards/{shard:06d}/").replace(first, f'"shard": {shard},', 1).encode()
        if "/splits/" in key:
            return split_texts.get(key.rsplit("/", 1)[-1])
        return None

    client, gateway, _ = _setup(objects, on_demand)
    loc = _manifest()
    client.files[layout.context_key(loc)] = json.dumps({**inputs["context"], "shards": shards}).encode()
    rss0, cpu0 = max_rss_bytes(), cpu_seconds()
    with quiet_lambda_logs():
        plan = assemble.assemble(RUN_ID, loc, gateway)
    cpu = cpu_seconds() - cpu0
    gets = [lat for op, lat in client.calls if op == "get"]
    puts = [lat for op, lat in client.calls if op == "put"]
    wall = _waves(gets, assemble.READ_THREADS) + _waves(puts, assemble.READ_THREADS) + cpu
    return {"role": "assemble", "objects": objects, "shards": shards, "payloads": plan.payloads,
            "split_objects": plan.totals.split_objects, "copies": plan.totals.copies, "balance": plan.balance,
            "bound": plan.bound, "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 2),
            "peak_rss_bytes": max_rss_bytes(), "rss_start_bytes": rss0, "requests": dict(client.ops())}


def _waves(latencies: list[float], threads: int) -> float:
    """Time of requests sent ``threads`` at a time, in order: each wave takes its slowest."""
    return sum(max(latencies[i:i + threads]) for i in range(0, len(latencies), threads))


# --- the model: measured roles -> the planning stage of each size -------------------------------------
def shard_timing(shard: dict[str, Any]) -> dict[str, Any]:
    """The measured shard's simulated time per listed object and per invocation."""
    pages = shard["list_latencies"]
    cpu_page = shard["cpu_seconds"] / max(1, len(pages)) + BOTOCORE_PARSE_S
    listing = sum(max(lat, cpu_page) for lat in pages)
    return {"seconds_per_object": listing / max(1, shard["listed"]), "cpu_per_page": round(cpu_page, 4),
            "listing_seconds": round(listing, 1), "overhead_seconds": 0.06 + 0.04 * 3}


def shard_seconds(objects: int, per_object: float, overhead: float) -> tuple[float, int]:
    """Wall time and invocations of a shard that lists ``objects`` (an invocation stops 60 s before 900 s;
    a continuation re-reads the context and summary and asks for one page again)."""
    work = objects * per_object + overhead
    invocations = max(1, math.ceil(work / (LAMBDA_TIMEOUT_S - DEADLINE_MARGIN_S)))
    return work + (invocations - 1) * (0.2 + 0.04 * 3), invocations


def generations(counts: list[int], per_object: float, overhead: float, concurrency: int) -> list[dict[str, Any]]:
    """Each generation of the shards' Map, as shard.py runs it: a shard still listing after
    SPILL_AFTER_SECONDS cuts the rest of its range in SPILL_PIECES (split_range, SPILL_PROBES probes: two
    rounds of ~0.3 s), keeps one piece and hands the others to the next generation (taken here as even
    pieces). A generation's Map runs ``concurrency`` shards at once (list scheduling)."""
    from lambdas.sharding import shard as shard_module

    after, pieces = shard_module.SPILL_AFTER_SECONDS, shard_module.SPILL_PIECES
    spill_cost = 0.6 + shard_module.SPILL_PROBES * PROBE_PARSE_S
    passes = []
    current = [float(c) for c in counts]
    for generation in range(shard_module.MAX_GENERATION + 1):
        times: list[float] = []
        invocations = 0
        handed: list[float] = []
        for n in current:
            listed_in_time = after / per_object
            if generation < shard_module.MAX_GENERATION and n > listed_in_time * 1.05:
                rest = n - listed_in_time
                kept = rest / pieces
                handed += [rest / pieces] * (pieces - 1)
                seconds, calls = shard_seconds(int(listed_in_time + kept), per_object, overhead + spill_cost)
            else:
                seconds, calls = shard_seconds(int(n), per_object, overhead)
            times.append(seconds)
            invocations += calls
        slots = [0.0] * min(concurrency, max(1, len(times)))
        for t in sorted(times, reverse=True):
            slots[slots.index(min(slots))] += t
        longest = max((min(t, LAMBDA_TIMEOUT_S - DEADLINE_MARGIN_S) for t in times), default=0.0)
        passes.append({"generation": generation, "shards": len(current), "invocations": invocations,
                       "longest_invocation_seconds": round(longest, 1),
                       "seconds": round(max(slots, default=0.0), 1), "largest_objects": int(max(current, default=0)),
                       "collect_seconds": 0.5 if generation else 0.0})
        if not handed:
            break
        current = handed
    return passes


def stage(objects: int, prepare: dict[str, Any], shard: dict[str, Any], assemble: dict[str, Any],
          concurrency: int) -> dict[str, Any]:
    timing = shard_timing(shard)
    passes = generations(prepare["shard_counts"], timing["seconds_per_object"], timing["overhead_seconds"],
                         concurrency)
    shards = sum(p["shards"] for p in passes)
    shard_invocations = sum(p["invocations"] for p in passes)
    map_seconds = sum(p["seconds"] + p["collect_seconds"] for p in passes)
    wall = prepare["wall_seconds"] + map_seconds + assemble["wall_seconds"]
    # Requests: every listed page (one per 1,000 keys), and per shard invocation what the measured shard sent
    # besides its pages (context, summary, segment and skip files: segments scale with the objects).
    per_object_puts = shard["requests"].get("put", 0) / max(1, shard["listed"])
    lists = prepare["requests"].get("list", 0) + math.ceil(objects / 1000) + shards * 3  # + target listings
    puts = (prepare["requests"].get("put", 0) + int(objects * per_object_puts) + shard_invocations
            + assemble["requests"].get("put", 0))
    gets = prepare["requests"].get("get", 0) + 2 * shard_invocations + assemble["requests"].get("get", 0)
    invocations = 1 + shard_invocations + sum(1 for p in passes if p["generation"]) + 1
    shard_busy = objects * timing["seconds_per_object"] + shard_invocations * timing["overhead_seconds"]
    gb_seconds = (MEMORY_MB["prepare"] / 1024 * prepare["wall_seconds"] + MEMORY_MB["shard"] / 1024 * shard_busy
                  + MEMORY_MB["assemble"] / 1024 * assemble["wall_seconds"])
    transitions = 12 + shards * 2 + shard_invocations * 3  # each shard a child: Task + Choice per invocation
    cost = {"s3": (lists + puts) * PRICE_LIST_PUT + gets * PRICE_GET,
            "lambda": gb_seconds * PRICE_GB_SECOND + invocations * PRICE_INVOKE,
            "step_functions": transitions * PRICE_TRANSITION}
    peaks = {"prepare": prepare["peak_rss_bytes"], "shard": shard["peak_rss_bytes"],
             "assemble": assemble["peak_rss_bytes"]}
    counts = sorted(prepare["shard_counts"])
    # The same shards without hand-on: the largest ones run to their end, with continuations.
    alone = [shard_seconds(c, timing["seconds_per_object"], timing["overhead_seconds"])[0] for c in counts]
    slots = [0.0] * min(concurrency, max(1, len(alone)))
    for t in sorted(alone, reverse=True):
        slots[slots.index(min(slots))] += t
    longest_invocation = max(*(p["longest_invocation_seconds"] for p in passes), prepare["wall_seconds"],
                             assemble["wall_seconds"])
    return {"objects": objects, "concurrency": concurrency, "shards": shards,
            "partition_shards": prepare["shards"], "largest_shard": counts[-1] if counts else 0,
            "median_shard": counts[len(counts) // 2] if counts else 0, "passes": passes,
            "wall_seconds": round(wall, 1), "prepare_seconds": prepare["wall_seconds"],
            "map_seconds": round(map_seconds, 1), "map_seconds_without_handon": round(max(slots), 1),
            "assemble_seconds": assemble["wall_seconds"],
            "invocations": invocations, "longest_invocation_seconds": round(longest_invocation, 1),
            "requests": {"list": lists, "put": puts, "get": gets}, "peak_rss_bytes": peaks,
            "memory_mb": dict(MEMORY_MB), "cost_usd": {k: round(v, 2) for k, v in cost.items()},
            "cost_total_usd": round(sum(cost.values()), 2), "balance": assemble["balance"],
            "bound": assemble["bound"]}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's planning targets, each with its value and whether it was met."""
    rows: list[dict[str, Any]] = []
    for row in results.get("stages", []):
        if row["concurrency"] != CONCURRENCY[0]:
            continue
        peak = max(row["peak_rss_bytes"].values()) / GB
        if row["objects"] == 100_000_000:
            rows.append({"target": "Planning: 100M objects in <= 15 min wall (simulated S3)",
                         "value": round(row["wall_seconds"] / 60, 1), "met": row["wall_seconds"] <= 900})
        rows.append({"target": f"Planning {row['objects']:,}: no Lambda above 2 GB (peak GB)", "value": round(peak, 3),
                     "met": peak <= 2.0})
        if row["objects"] == 1_000_000_000:
            longest = row["longest_invocation_seconds"]
            rows.append({"target": "Planning 1B: every invocation within 900 s and 10 GB (longest s)",
                         "value": longest, "met": longest <= LAMBDA_TIMEOUT_S and peak <= 10.0})
    return rows


def table_lines(results: dict[str, Any] | None) -> list[str]:
    if not results:
        return []
    if "error" in results:
        return [f"Planning scale: {results['error']}", ""]
    shard = results["shard"]
    timing = results["shard_timing"]
    lines = [f"Planning scale (sharded; simulated S3: list pages 100-300 ms, PUT/GET 20-60 ms; {WORKERS} workers; "
             f"shards of {results['objects_per_shard']:,} objects wanted). Measured shard: {shard['listed']:,} "
             "objects, "
             f"{shard['cpu_seconds']:.1f} s CPU ({timing['cpu_per_page'] * 1000:.0f} ms a page with botocore's parse), "
             f"peak {shard['peak_rss_bytes'] / GB:.2f} GB; reference loop {results.get('reference_seconds')} s", "",
             "| objects | Map concurrency | shards (partition / in all) | largest / median shard | wall: prepare + "
             "Map passes + assemble | (Map without hand-on) | invocations | LIST+PUT / GET | peak GB prepare / "
             "shard / assemble | balance (bound) | cost USD |",
             "|---:|---:|---|---|---|---:|---:|---:|---|---|---:|"]
    for row in results.get("stages", []):
        peaks = row["peak_rss_bytes"]
        passes = " + ".join(f"{p['seconds']:.0f}" for p in row["passes"])
        lines.append(
            f"| {row['objects']:,} | {row['concurrency']:,} | {row['partition_shards']:,} / {row['shards']:,} | "
            f"{row['largest_shard']:,} / {row['median_shard']:,} | {row['wall_seconds'] / 60:.1f} min "
            f"({row['prepare_seconds']:.0f} s + [{passes}] s + {row['assemble_seconds']:.0f} s) | "
            f"{row['map_seconds_without_handon']:.0f} s | {row['invocations']:,} | "
            f"{row['requests']['list'] + row['requests']['put']:,} / "
            f"{row['requests']['get']:,} | {peaks['prepare'] / GB:.2f} / {peaks['shard'] / GB:.2f} / "
            f"{peaks['assemble'] / GB:.2f} | {row['balance']:.3f} ({row['bound']:.3f}) | {row['cost_total_usd']:.2f} |")
    lines.append("")
    return lines


# --- driver ------------------------------------------------------------------------------------------
def _subprocess(args: list[str], timeout: float) -> dict[str, Any]:
    return run_json([sys.executable, "-m", "bench.planning_scale", *args], timeout)


def run(quick: bool = False, timeout: float = 1800.0) -> dict[str, Any]:
    """Every role in its own process, then the stage of each size."""
    sizes = SIZES if not quick else (200_000, 2_000_000)
    per_shard = OBJECTS_PER_SHARD if not quick else 20_000
    extra = ["--objects-per-shard", str(per_shard)]
    prepares = {n: _subprocess(["--role", "prepare", "--objects", str(n), *extra], timeout) for n in sizes}
    failed = [r["error"] for r in prepares.values() if "error" in r]
    if failed:
        return {"error": failed[0]}
    with tempfile.TemporaryDirectory(prefix="sfncopy-planning-") as folder:
        inputs = Path(folder) / "inputs.json"
        inputs.write_text(json.dumps(prepares[sizes[-1]]), encoding="utf-8")
        shard = _subprocess(["--role", "shard", "--objects", str(sizes[-1]), "--inputs", str(inputs), *extra], timeout)
        if "error" in shard:
            return {"error": shard["error"]}
        inputs.write_text(json.dumps({**prepares[sizes[-1]], **shard}), encoding="utf-8")
        assembles = {n: _subprocess(["--role", "assemble", "--objects", str(n), "--shards",
                                     str(prepares[n]["shards"]), "--inputs", str(inputs), *extra], timeout)
                     for n in sizes}
    failed = [r["error"] for r in assembles.values() if "error" in r]
    if failed:
        return {"error": failed[0]}
    stages = [stage(n, prepares[n], shard, assembles[n], c) for n in sizes for c in CONCURRENCY]
    for result in prepares.values():
        result.pop("context", None)
        result.pop("middle_item", None)
        counts = sorted(result.pop("shard_counts"))
        result["shard_counts_summary"] = {"largest": counts[-1], "median": counts[len(counts) // 2],
                                          "smallest": counts[0], "empty": sum(1 for c in counts if c == 0)}
    results = {"objects_per_shard": per_shard, "workers": WORKERS, "prepare": list(prepares.values()),
               "shard": {k: v for k, v in shard.items() if k not in ("list_latencies", "summary", "split_files")},
               "shard_timing": shard_timing(shard), "assemble": list(assembles.values()), "stages": stages,
               "reference_seconds": reference_seconds()}
    results["targets"] = targets(results)
    return results


def reference_seconds(iterations: int = 5_000_000) -> float:
    """A fixed pure-Python loop: how fast this machine runs Python right now (as bench/planner_scale.py)."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i
    return round(time.perf_counter() - started, 3)


def main(argv: list[str] | None = None) -> int:
    global OBJECTS_PER_SHARD
    parser = argparse.ArgumentParser(prog="python -m bench.planning_scale")
    parser.add_argument("--role", choices=("prepare", "shard", "assemble"))
    parser.add_argument("--objects", type=int, default=SIZES[0])
    parser.add_argument("--objects-per-shard", type=int, default=OBJECTS_PER_SHARD)
    parser.add_argument("--shards", type=int, default=0)
    parser.add_argument("--inputs", default="", help="JSON of the earlier roles' results (shard, assemble)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    OBJECTS_PER_SHARD = args.objects_per_shard
    inputs = json.loads(Path(args.inputs).read_text(encoding="utf-8")) if args.inputs else {}
    if args.role == "prepare":
        result = role_prepare(args.objects)
    elif args.role == "shard":
        result = role_shard(args.objects, inputs)
    elif args.role == "assemble":
        result = role_assemble(args.objects, inputs, args.shards)
    else:
        result = run(quick=args.quick)
        print("\n".join(table_lines(result)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
