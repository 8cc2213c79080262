"""Planner scale: synthetic listing entries through sfncopy's real planning path, with no network.

``plan_run`` (lambdas/planner.py) runs as in the Lambda: parse the config, list (a fake paginated lister),
filter + route + bin, write the plan. The stand-in gateway only serialises what would be written (so
the JSON cost is measured) and keeps the plan's index and payloads for the balance figure.

Run in a subprocess so its peak memory is its own:
``python -m bench.planner_scale --objects 1000000 [--workers 16] [--profile FILE]`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from lambdas.gateway import JSON_CONTENT_TYPE, ObjectHead, PartInfo, S3Gateway, UploadInfo
from lambdas.models import PlanPointer, SourceObject, SseConfig
from lambdas.settings import Settings

MANIFEST_BUCKET = "bench-manifest"
RUN_ID = "bench-planner-scale"
# Objects above this are remembered from the listing, so head_object can answer for objects the planner
# splits (the smallest payload cap an environment may set is 5 MiB; W1-like listings stay well below).
SPLIT_CANDIDATE_BYTES = 1024 * 1024 * 1024
NOW = "2024-01-01T00:00:00Z"


class _NoClient:
    """Any boto3 call the fake does not stand in for is a harness gap, named clearly."""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"bench FakeGateway: the planner called client.{name}; "
                                  "add it to bench/planner_scale.py")


class FakeGateway(S3Gateway):
    """A gateway with no network: listings come from ``pages``; writes are serialised, measured and kept."""

    def __init__(self, pages: Callable[[str, str], Iterable[list[SourceObject]]], keep: bool = False) -> None:
        super().__init__(_NoClient())
        self.pages = pages
        self.keep = keep
        self.files_written = 0
        self.bytes_written = 0
        self.largest_file = 0
        self.list_calls: list[tuple[str, str]] = []
        self.written: dict[str, Any] = {}
        self.uploads_created = 0
        self.listed: dict[tuple[str, str], SourceObject] = {}  # for head_object on objects the planner splits

    # --- listing ------------------------------------------------------------------------------------
    def list_objects(self, bucket: str, prefix: str) -> Iterator[SourceObject]:
        self.list_calls.append((bucket, prefix))
        for page in self.pages(bucket, prefix):
            for obj in page:
                if self.keep or obj.size > SPLIT_CANDIDATE_BYTES:
                    self.listed[(obj.bucket, obj.key)] = obj
                yield obj

    def location_status(self, bucket: str, prefix: str) -> str:
        return "ok"

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> list[UploadInfo]:
        return []

    # --- what a planner may ask about one object (split objects) -------------------------------------
    def head_object(self, bucket: str, key: str, if_match: str = "", part_number: int = 0,
                    checksums: bool = False) -> ObjectHead:
        obj = self.listed.get((bucket, key))
        if obj is None:
            raise NotImplementedError(f"bench FakeGateway: head_object on s3://{bucket}/{key}, which it did not list")
        return ObjectHead(size=obj.size, etag=obj.etag, storage_class=obj.storage_class)

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        return {}

    def create_multipart_upload(self, bucket: str, key: str, head: ObjectHead | None, tags: dict[str, str],
                                *, storage_class: str | None = None, sse: SseConfig | None = None,
                                checksum: tuple[str, str] | None = None) -> str:
        self.uploads_created += 1
        return f"bench-upload-{self.uploads_created}"

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        return []

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        return None

    # --- the manifest location ----------------------------------------------------------------------
    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.files_written += 1
        self.bytes_written += len(body)
        self.largest_file = max(self.largest_file, len(body))
        if self.keep and content_type == JSON_CONTENT_TYPE:
            self.written[key] = json.loads(body)

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        return self.written.get(key)


def settings_for(workers: int) -> Settings:
    return Settings(manifest_bucket=MANIFEST_BUCKET, workers=workers)


def plan_with_fake(document: Any, pages: Callable[[str, str], Iterable[list[SourceObject]]], workers: int,
                   keep: bool = False) -> tuple[PlanPointer, FakeGateway, float]:
    """Run the real ``plan_run`` against the fake gateway; returns (pointer, gateway, seconds)."""
    from lambdas.planner import plan_run

    gateway = FakeGateway(pages, keep=keep)
    with quiet_lambda_logs():
        started = time.perf_counter()
        pointer = plan_run(document, RUN_ID, settings_for(workers), gateway, NOW)
        seconds = time.perf_counter() - started
    return pointer, gateway, seconds


@contextmanager
def quiet_lambda_logs() -> Iterator[None]:
    """The planner logs one JSON line per plan to stdout, where the benchmarks print tables and JSON."""
    logger = logging.getLogger("sfncopy")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def w1_listing(count: int) -> tuple[dict[str, Any], Callable[[str, str], Iterable[list[SourceObject]]]]:
    """The W1 routing config and a lister that yields ``count`` synthetic entries for its source only.

    The pages are made before planning starts, so the clock measures the planner, not the generator
    (a real listing arrives over the network while the planner waits anyway)."""
    from bench import workloads

    workload = workloads.Workload("planner scale", workloads.SOURCE_BUCKET, workloads.SOURCE_PREFIX, (),
                                  workloads.default_targets())
    listing = list(workloads.synthetic_pages(count, bucket=workload.source_bucket, prefix=workload.source_prefix))

    def pages(bucket: str, prefix: str) -> Iterable[list[SourceObject]]:
        if bucket == workload.source_bucket and prefix == workload.source_prefix:
            return iter(listing)
        return iter(())  # the targets are empty

    return workloads.copy_config(workload), pages


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def reference_seconds(iterations: int = 5_000_000) -> float:
    """A fixed pure-Python loop: how fast this machine runs Python right now (shared hosts vary by 2x)."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i
    return time.perf_counter() - started


def measure(count: int, workers: int) -> dict[str, Any]:
    """Plan ``count`` synthetic objects; figures for one run in this process."""
    import lambdas.planner  # noqa: F401  (imports count in the baseline, not in the planning)

    reference = reference_seconds()
    rss_start = max_rss_bytes()
    started = time.perf_counter()
    document, pages = w1_listing(count)
    listing_seconds = time.perf_counter() - started
    rss_before = max_rss_bytes()
    cpu_before = cpu_seconds()
    pointer, gateway, seconds = plan_with_fake(document, pages, workers)
    cpu = cpu_seconds() - cpu_before
    state = json.dumps(pointer.to_dict(), separators=(",", ":"))
    return {
        "objects": count,
        "workers": workers,
        "seconds": round(seconds, 3),
        "reference_seconds": round(reference, 3),
        "cpu_seconds": round(cpu, 3),  # user + system: what other load on the machine does not inflate
        "peak_rss_bytes": max_rss_bytes(),
        "rss_before_bytes": rss_before,  # interpreter + imports + the synthetic listing
        "rss_start_bytes": rss_start,  # interpreter + imports
        "listing_seconds": round(listing_seconds, 3),  # making the synthetic pages (not timed as planning)
        "copies": pointer.copies,
        "bytes": pointer.bytes,
        "payloads": sum(len(p) for p in pointer.workers),
        "files_written": gateway.files_written,
        "bytes_written": gateway.bytes_written,
        "largest_file_bytes": gateway.largest_file,
        "state_payload_bytes": len(state.encode()),
    }


def profile(count: int, workers: int, out_path: str) -> dict[str, Any]:
    """The same run under pyinstrument; writes its text report to ``out_path``."""
    from pyinstrument import Profiler

    import lambdas.planner  # noqa: F401

    document, pages = w1_listing(count)
    profiler = Profiler(interval=0.005)
    profiler.start()
    pointer, _, seconds = plan_with_fake(document, pages, workers)
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    with open(out_path, "w", encoding="utf-8") as handle:
        handle.write(f"# pyinstrument profile: plan_run on {count:,} synthetic objects, {workers} workers\n")
        handle.write(f"# wall time under the profiler: {seconds:.2f} s; copies {pointer.copies:,}\n\n")
        handle.write(text)
    return {"objects": count, "seconds_profiled": round(seconds, 3), "profile": out_path}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.planner_scale")
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--profile", default="", help="write a pyinstrument text profile here instead")
    args = parser.parse_args(argv)
    result = profile(args.objects, args.workers, args.profile) if args.profile else measure(args.objects, args.workers)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
