"""Balance: predicted makespan / ideal (total bytes / N) for sfncopy's planning and for the 2018 algorithm.

Sizes are heavy-tailed (lognormal, plus one object holding 40% of all bytes, fixed seed). sfncopy's figure
comes from its real planner (``plan_run`` with the stand-in gateway of bench/planner_scale.py): the bytes
of every task in every payload, summed per worker. The 2018 figure comes from whole files, largest first,
onto the least loaded worker. Both are byte loads: the run ends when the busiest worker does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench import baseline2018, workloads
from bench.planner_scale import FakeGateway, plan_with_fake
from lambdas.models import Payload, SourceObject

SOURCE_BUCKET = "bench-balance-src"
TARGET_BUCKET = "bench-balance-dst"
WORKER_COUNTS = (4, 16, 64)


def ratio(loads: Sequence[int]) -> float:
    """Busiest worker / ideal (total / N); 1.0 is perfect."""
    total = sum(loads)
    return max(loads) * len(loads) / total if total else 1.0


def balance_document() -> dict[str, Any]:
    """Every object to one target, so the figure is about binning, not routing."""
    return {"s3_copy_config": {
        "source_s3_config": {"s3_bucket": SOURCE_BUCKET, "s3_path": "in/"},
        "target_s3_config": [{"file_types": ["*"], "s3_bucket": TARGET_BUCKET, "s3_path": "out/"}],
    }}


def listing_of(sizes: Sequence[int]) -> list[SourceObject]:
    return [SourceObject(SOURCE_BUCKET, f"in/obj-{i:06d}.bin", size, f"{i:032x}") for i, size in enumerate(sizes)]


def payload_loads(gateway: FakeGateway, workers: int) -> list[int]:
    """Bytes per worker from the payload files the planner wrote."""
    loads = [0] * workers
    for key, data in gateway.written.items():
        if "/plan/payloads/" in key:
            loads[int(data["worker"])] += Payload.from_dict(data).nbytes
    return loads


def sfncopy_loads(sizes: Sequence[int], workers: int) -> list[int]:
    listing = listing_of(sizes)

    def pages(bucket: str, prefix: str) -> Iterable[list[SourceObject]]:
        if bucket != SOURCE_BUCKET:
            return []
        return (listing[i:i + 1000] for i in range(0, len(listing), 1000))

    pointer, gateway, _ = plan_with_fake(balance_document(), pages, workers, keep=True)
    loads = payload_loads(gateway, workers)
    if sum(loads) != pointer.bytes or pointer.bytes != sum(sizes):
        raise AssertionError(f"plan covers {sum(loads)} bytes in payloads, pointer says {pointer.bytes}, "
                             f"the listing holds {sum(sizes)}")
    return loads


def baseline_loads(sizes: Sequence[int], workers: int) -> list[int]:
    return baseline2018.worker_loads(sizes, baseline2018.assign_largest_first(sizes, workers))


def run(count: int = 10_000, worker_counts: Sequence[int] = WORKER_COUNTS) -> dict[str, Any]:
    sizes = workloads.heavy_tailed_sizes(count)
    rows = []
    for n in worker_counts:
        sfn = ratio(sfncopy_loads(sizes, n))
        old = ratio(baseline_loads(sizes, n))
        rows.append({"workers": n, "sfncopy": round(sfn, 4), "baseline2018": round(old, 4),
                     "target_met": sfn <= 1.05 and (old >= 2.0 or sfn <= old)})
    return {"objects": count, "total_bytes": sum(sizes), "largest_share": round(sizes[0] / sum(sizes), 3),
            "rows": rows}
