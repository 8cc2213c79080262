"""The 2018 design's algorithm, written from its description, as a contender and for the balance figure.

The description: list the source, route each object by file type, give whole files to workers largest
first, each onto the least loaded worker (by bytes); every worker copies one payload at a time, one object
after another, with boto3's managed copy (``s3.copy()``, which splits objects above 8 MB into an
UploadPartCopy multipart upload with its own threads). N worker threads stand in for the N Lambdas.

Run as a contender: ``python -m bench.baseline2018 --spec FILE`` where FILE is the JSON written by
``spec_for(workload)``; it prints one JSON line with what it copied.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def assign_largest_first(sizes: Sequence[int], workers: int) -> list[list[int]]:
    """Indexes of ``sizes`` per worker: largest first, each onto the least loaded worker (ties: lowest index).

    Whole files only: one object never spans two workers, however large it is.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    heap = [(0, w) for w in range(workers)]
    assignment: list[list[int]] = [[] for _ in range(workers)]
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        load, worker = heapq.heappop(heap)
        assignment[worker].append(index)
        heapq.heappush(heap, (load + sizes[index], worker))
    return assignment


def worker_loads(sizes: Sequence[int], assignment: list[list[int]]) -> list[int]:
    return [sum(sizes[i] for i in indexes) for indexes in assignment]


# --- the contender -----------------------------------------------------------------------------------
def spec_for(source_bucket: str, source_prefix: str, targets: Sequence[tuple[str, str, Sequence[str]]],
             workers: int) -> dict[str, Any]:
    """What the baseline process needs: the source, the targets (bucket, prefix, file types), N."""
    return {
        "source_bucket": source_bucket,
        "source_prefix": source_prefix,
        "targets": [{"bucket": b, "prefix": p, "file_types": list(t)} for b, p, t in targets],
        "workers": workers,
    }


def route(key: str, source_prefix: str, targets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(target bucket, target key) for every target whose file types include the key's extension."""
    ext = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
    relative = key[len(source_prefix):]
    return [(t["bucket"], t["prefix"] + relative) for t in targets if ext in t["file_types"]]


def run(spec: dict[str, Any], client: Any) -> dict[str, Any]:
    """List, route, assign largest first, then copy with N threads, each one object at a time."""
    started = time.monotonic()
    jobs: list[tuple[str, int, str, str]] = []  # (source key, size, target bucket, target key)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=spec["source_bucket"], Prefix=spec["source_prefix"]):
        for item in page.get("Contents", ()):
            if item["Key"].endswith("/"):
                continue
            for bucket, key in route(item["Key"], spec["source_prefix"], spec["targets"]):
                jobs.append((item["Key"], int(item["Size"]), bucket, key))
    assignment = assign_largest_first([size for _, size, _, _ in jobs], spec["workers"])
    planned = time.monotonic()

    def copy_payload(indexes: list[int]) -> int:
        copied = 0
        for index in indexes:  # one object at a time, as the 2018 worker did
            source_key, size, bucket, key = jobs[index]
            client.copy({"Bucket": spec["source_bucket"], "Key": source_key}, bucket, key)
            copied += size
        return copied

    with ThreadPoolExecutor(spec["workers"]) as pool:
        copied_bytes = sum(pool.map(copy_payload, assignment))
    return {"copies": len(jobs), "bytes": copied_bytes, "plan_seconds": planned - started,
            "seconds": time.monotonic() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline2018", description=__doc__)
    parser.add_argument("--spec", required=True, help="JSON file from spec_for()")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    import boto3
    from botocore.config import Config

    # Path-style addressing for the local endpoint (AWS_ENDPOINT_URL); pool sized for N workers x
    # the managed copy's 10 part threads.
    client = boto3.session.Session().client("s3", config=Config(
        s3={"addressing_style": "path"}, max_pool_connections=10 * spec["workers"]))
    json.dump(run(spec, client), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
