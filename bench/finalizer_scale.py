"""Finalizer scale: sfncopy's real finalizer over millions of synthetic report rows, with no network.

``finalize`` (lambdas/finalizer.py) runs as in the Lambda, one invocation with no deadline: it reads the plan,
every payload and checkpoint, the skipped list, settles split copies, verifies targets and writes the report.
The stand-in gateway makes every file it is asked for on the fly from the payload's number (nothing is kept:
its memory does not grow with the run, so the peak is the finalizer's), answers target listings and HEADs
from the same formula, and counts what is written and sent.

The payloads hold 1,000 tasks each, laid out one of two ways (``--layout``):

- ``spread`` (the single planner's large run): each payload's keys spread over the whole target (payload p
  holds objects p, p + P, p + 2P, ...: the single planner bins by size, not by key), verification's least
  favourable case (a probe page, then a HEAD per key);
- ``segments`` (sharded planning: each payload is one shard's segment, a contiguous key range): payload p holds
  objects pT .. pT + T - 1, so verification lists about one page per payload.

A few split copies have chunks in the first payloads; the skipped list interleaves unmatched objects.

Run in a subprocess so its peak memory is its own (``ru_maxrss``, the process's peak resident set, in KiB on
Linux; tracemalloc would count Python's allocations only and slow the run several times):
``python -m bench.finalizer_scale --rows 1000000 [--skipped N]`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from bisect import bisect_right
from collections.abc import Iterator
from typing import Any

from bench.planner_scale import cpu_seconds, max_rss_bytes, quiet_lambda_logs, reference_seconds
from lambdas import limits, manifest
from lambdas.gateway import JSON_CONTENT_TYPE, ObjectHead, PartInfo, S3Gateway, Written, encode_json
from lambdas.models import (
    CopyConfig,
    CopyOptions,
    CopyTask,
    ManifestLocation,
    Payload,
    PlanPointer,
    PlanTotals,
    RunPlan,
    SourceConfig,
    SourceObject,
    SplitCopy,
    TargetConfig,
    WorkItem,
)
from lambdas.settings import Settings

MANIFEST_BUCKET = "bench-manifest"
SOURCE, TARGET = "bench-src", "bench-dst"
RUN_ID = "bench-finalizer-scale"
TASKS_PER_PAYLOAD = limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD
SPLITS = 8
SPLIT_PART = 64 * limits.MiB
NOW = "2024-01-01T00:00:00Z"
LAYOUTS = ("spread", "segments")
SEGMENTS = "plan/sharding/shards/000000/segments/"  # where the segments layout keeps its payload files


def source_key(i: int) -> str:
    return f"data/{i:010d}.jpg"


def target_key(i: int) -> str:
    return f"copy/{i:010d}.jpg"


def size_of(i: int) -> int:
    return 1_000 + (i * 7_919) % 2_000_000


def split_of(s: int) -> SplitCopy:
    return SplitCopy(copy_id=10**12 + s, source_bucket=SOURCE, source_key=f"big/{s:03d}.bin", size=3 * SPLIT_PART,
                     etag="e", target_bucket=TARGET, target_key=f"copy/big/{s:03d}.bin", part_size=SPLIT_PART,
                     part_count=3, upload_id=f"split-{s}")


# plan/skipped.json's entries all have one length, so an offset names an entry: the array is
# "[" e0 "," e1 "," ... "]", and the offset after entry k-1 is k * (length + 1). An unmatched object has no
# target: its size has 29 more digits to make up for the target's 29 characters.
def skipped_entry(k: int) -> bytes:
    if k % 10 == 9:
        return (f'{{"source_bucket":"{SOURCE}","source_key":"skip/{k:010d}.tmp","size":{10**29},'
                f'"reason":"unmatched","target_bucket":"","target_key":""}}').encode()
    return (f'{{"source_bucket":"{SOURCE}","source_key":"skip/{k:010d}.tmp","size":1,"reason":"identical",'
            f'"target_bucket":"{TARGET}","target_key":"copy/s{k:010d}.tmp"}}').encode()


class _NoClient:
    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"bench finalizer fake: the finalizer called client.{name}; add it to "
                                  "bench/finalizer_scale.py")


class SyntheticRun(S3Gateway):
    """A finished run of ``rows`` whole copies in payloads of TASKS_PER_PAYLOAD and ``skipped`` skipped
    entries, served from formulas. Writes are counted and dropped (small JSON files are kept: the state a
    continuation reads, report.json, the parts' manifest)."""

    def __init__(self, rows: int, skipped: int, layout: str = "spread") -> None:
        super().__init__(_NoClient())
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
        self.rows, self.skipped, self.layout = rows, skipped, layout
        self.payloads = -(-rows // TASKS_PER_PAYLOAD)
        self.loc = ManifestLocation(MANIFEST_BUCKET, f"runs/{RUN_ID}/")
        self.splits = tuple(split_of(s) for s in range(SPLITS if self.payloads >= 2 else 0))  # chunks in 0 and 1
        self.entry_bytes = len(skipped_entry(0))
        self.kept: dict[str, bytes] = {}
        self.counts: dict[str, int] = {}
        self.bytes_written = 0
        self.generate_seconds = 0.0  # making the files the finalizer reads (not the finalizer's own work)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --- the run's files --------------------------------------------------------------------------------
    def plan(self) -> RunPlan:
        config = CopyConfig(sources=(SourceConfig(SOURCE, "data/"),),
                            targets=(TargetConfig(0, TARGET, "copy/", ("*",)),),
                            options=CopyOptions(report_unmatched=True))
        unmatched = sum(1 for k in range(self.skipped) if k % 10 == 9)
        totals = PlanTotals(copies=self.rows + len(self.splits), skipped=self.skipped - unmatched,
                            unmatched=unmatched, payloads=self.payloads, split_objects=len(self.splits))
        return RunPlan(RUN_ID, NOW, config, 1, (tuple(range(self.payloads)),), self.splits, totals)

    def pointer(self) -> PlanPointer:
        return PlanPointer(RUN_ID, self.loc, False, (tuple(range(self.payloads)),), self.rows + len(self.splits),
                           0, self.skipped)

    def _indexes(self, payload: int) -> range:
        if self.layout == "segments":  # a contiguous key range, as a shard's segment
            return range(payload * TASKS_PER_PAYLOAD, min(self.rows, (payload + 1) * TASKS_PER_PAYLOAD))
        return range(payload, self.rows, self.payloads)  # spread over the whole key space

    def _chunks(self, payload: int) -> list[CopyTask]:
        """Payload 0 holds parts 1-2 of every split copy, payload 1 part 3."""
        if payload > 1 or self.payloads < 2:
            return []
        first, last = (1, 2) if payload == 0 else (3, 3)
        return [CopyTask(f"c{s.copy_id}.p{first}", s.copy_id, SOURCE, s.source_key, s.size, "e", TARGET,
                         s.target_key, "chunk", SPLIT_PART, first, last, s.upload_id) for s in self.splits]

    def item(self, payload: int) -> WorkItem:
        """Payload ``payload``'s entry in the worker's list: where the planner (or a shard) wrote its file."""
        key = (f"{self.loc.prefix}{SEGMENTS}{payload:06d}.json" if self.layout == "segments"
               else manifest.payload_key(self.loc, payload))
        return WorkItem(payload, 0, key)

    def payload_bytes(self, payload: int) -> bytes:
        tasks = [CopyTask(f"c{i}", i, SOURCE, source_key(i), size_of(i), "e", TARGET, target_key(i), "copy")
                 for i in self._indexes(payload)]
        return manifest.encode_payload(Payload(payload, 0, (*tasks, *self._chunks(payload))))

    def checkpoint_bytes(self, payload: int) -> bytes:
        """A finished payload's checkpoint, as a single file (the form every reader still reads)."""
        results = [
            f'{{"task_id":"c{i}","copy_id":{i},"source_bucket":"{SOURCE}","source_key":"{source_key(i)}",'
            f'"target_bucket":"{TARGET}","target_key":"{target_key(i)}","bytes":{size_of(i)},"status":"copied",'
            f'"method":"copy","parts":0,"attempts":1,"retries":0,"seconds":0.05,"error":"","target_etag":"e"}}'
            for i in self._indexes(payload)]
        results += [encode_json({"task_id": t.task_id, "copy_id": t.copy_id, "source_bucket": SOURCE,
                                 "source_key": t.source_key, "target_bucket": TARGET, "target_key": t.target_key,
                                 "bytes": t.nbytes, "status": "copied", "method": "chunk",
                                 "parts": t.last_part - t.first_part + 1, "attempts": 1, "retries": 0,
                                 "seconds": 1.0, "error": "", "target_etag": ""}).decode()
                    for t in self._chunks(payload)]
        return (f'{{"payload_id":{payload},"worker":0,"results":[{",".join(results)}],"open_uploads":[],'
                f'"invocations":1}}').encode()

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        self._count("GetObject")
        began = time.process_time()
        prefix = self.loc.prefix
        if key in self.kept:
            body = self.kept[key]
        elif key == prefix + manifest.INDEX:
            body = encode_json(self.plan().to_dict())
        elif key == manifest.worker_list_key(self.loc, 0):
            body = encode_json([self.item(p).to_dict() for p in range(self.payloads)])
        elif key.startswith((prefix + "plan/payloads/", prefix + SEGMENTS)):
            body = self.payload_bytes(int(key.rsplit("/", 1)[1].split(".")[0]))
        elif key.startswith(prefix + "results/"):
            body = self.checkpoint_bytes(int(key.rsplit("/", 1)[1].split(".")[0]))
        else:
            return None
        self.generate_seconds += time.process_time() - began
        return json.loads(body)  # what the real gateway does with the body

    def read_chunks(self, bucket: str, key: str, start: int = 0, chunk_size: int = limits.MiB) -> Iterator[bytes]:
        self._count("GetObject")
        if key in self.kept:
            yield self.kept[key][start:]
            return
        if key != self.loc.prefix + manifest.SKIPPED:
            raise NotImplementedError(key)
        # From the offset after entry k-1 the bytes are "," entry_k "," ... "]"; from 0, "[" entry_0 ...
        first = start // (self.entry_bytes + 1)
        buffer = bytearray(b"[" if start == 0 else b"")
        for k in range(first, self.skipped):
            if k:
                buffer += b","
            buffer += skipped_entry(k)
            if len(buffer) >= chunk_size:
                yield bytes(buffer)
                buffer = bytearray()
        buffer += b"]"
        yield bytes(buffer)

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._count("PutObject")
        self.bytes_written += len(body)
        if content_type == JSON_CONTENT_TYPE or "/finalizer/" in key:
            self.kept[key] = body

    def start_upload(self, bucket: str, key: str, content_type: str) -> str:
        self._count("CreateMultipartUpload")
        return "report-upload"

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> PartInfo:
        self._count("UploadPart")
        self.bytes_written += len(body)
        return PartInfo(number, f"etag-{number}", len(body))

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: list[PartInfo],
                                  **_: Any) -> Written:
        self._count("CompleteMultipartUpload")
        return Written("etag")

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._count("AbortMultipartUpload")

    # --- the targets ------------------------------------------------------------------------------------
    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        self._count("ListParts")
        return [PartInfo(n, f"p{n}", SPLIT_PART) for n in (1, 2, 3)]

    def head_object(self, bucket: str, key: str, if_match: str = "", part_number: int = 0,
                    checksums: bool = False) -> ObjectHead:
        self._count("HeadObject")
        if key.startswith("copy/big/"):
            return ObjectHead(size=3 * SPLIT_PART, etag="e")
        return ObjectHead(size=size_of(int(key[5:15])), etag="e")

    def list_page(self, bucket: str, prefix: str, start_after: str = "",
                  max_keys: int = limits.LIST_PAGE_SIZE) -> tuple[list[SourceObject], bool]:
        self._count("ListObjectsV2")
        first = bisect_right(range(self.rows), start_after, key=target_key)
        page: list[SourceObject] = []
        i = first
        while i < self.rows and len(page) < max_keys and target_key(i).startswith(prefix):
            page.append(SourceObject(bucket, target_key(i), size_of(i), "e"))
            i += 1
        return page, i < self.rows and target_key(i).startswith(prefix)


def measure(rows: int, skipped: int, layout: str = "spread") -> dict[str, Any]:
    """Finalize a synthetic run of ``rows`` copies and ``skipped`` skipped entries in this process."""
    from lambdas.finalizer import finalize

    reference = reference_seconds()
    fake = SyntheticRun(rows, skipped, layout)
    rss_before = max_rss_bytes()
    cpu_before = cpu_seconds()
    settings = Settings(manifest_bucket=MANIFEST_BUCKET)
    with quiet_lambda_logs():
        started = time.perf_counter()
        summary = finalize(fake.pointer(), settings, fake)
        seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    report = json.loads(fake.kept[fake.loc.prefix + manifest.REPORT_JSON])
    return {
        "rows": rows,
        "skipped": skipped,
        "layout": layout,
        "payloads": fake.payloads,
        "report_rows": report["parts"]["rows"],
        "copied": summary.copied,
        "failed": summary.failed,
        "report_csv": bool(summary.report_csv),
        "parts": report["parts"]["count"],
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "fake_generation_cpu_seconds": round(fake.generate_seconds, 3),  # making the files: not the finalizer's
        "reference_seconds": round(reference, 3),
        "peak_rss_bytes": max_rss_bytes(),
        "rss_before_bytes": rss_before,  # interpreter, imports, the fake
        "bytes_written": fake.bytes_written,
        "requests": dict(sorted(fake.counts.items())),
        "verification": report["verification"],
        "phase_seconds": report["timings"]["phase_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.finalizer_scale")
    parser.add_argument("--rows", type=int, default=1_000_000, help="copied rows (whole-object copies)")
    parser.add_argument("--skipped", type=int, default=0, help="entries of plan/skipped.json (1 in 10 unmatched)")
    parser.add_argument("--layout", choices=LAYOUTS, default="spread",
                        help="payloads' keys spread over the target (single planner) or contiguous (sharded)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rows, args.skipped, args.layout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
