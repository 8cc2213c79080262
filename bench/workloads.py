"""What the benchmarks copy: pure descriptions of data sets, plus the one function that uploads W1.

Everything is a function of a seed, so two runs (and two contenders) see the same bytes.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lambdas.limits import KiB, MiB
from lambdas.models import SourceObject

SEED = 20180601

# Six file types, routed to three targets by type (two types each). The big objects are videos.
ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("media", ("mp4", "mov")),
    ("images", ("jpg", "png")),
    ("docs", ("pdf", "csv")),
)
FILE_TYPES = tuple(ext for _, exts in ROUTES for ext in exts)
SMALL_MIN = 1 * KiB
SMALL_MAX = 2 * MiB
BIG_SIZES = tuple(n * MiB for n in (32, 64, 96, 128, 160, 192, 224, 256))
SOURCE_BUCKET = "bench-src"
SOURCE_PREFIX = "data/"
TARGET_PREFIX = "copy/"
# Multipart upload of the big source objects (the issue asks for it: real sources are multipart).
UPLOAD_PART_SIZE = 16 * MiB


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    key: str  # full key in the source bucket
    size: int
    ext: str


@dataclass(frozen=True)
class TargetSpec:
    name: str
    bucket: str
    prefix: str
    file_types: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    name: str
    source_bucket: str
    source_prefix: str
    objects: tuple[ObjectSpec, ...]
    targets: tuple[TargetSpec, ...]

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)


def default_targets(prefix: str = TARGET_PREFIX) -> tuple[TargetSpec, ...]:
    return tuple(TargetSpec(name, f"bench-dst-{name}", prefix, exts) for name, exts in ROUTES)


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    """A size between low and high, uniform in log space (many small files, some larger ones)."""
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def mixed_workload(small_count: int = 2000, big_sizes: tuple[int, ...] = BIG_SIZES, seed: int = SEED) -> Workload:
    """W1: ``small_count`` objects of 1 KiB-2 MiB in six types, plus one video per size in ``big_sizes``."""
    rng = random.Random(seed)
    objects = [
        ObjectSpec(f"{SOURCE_PREFIX}batch-{i % 20:02d}/file-{i:05d}.{ext}", log_uniform(rng, SMALL_MIN, SMALL_MAX), ext)
        for i, ext in ((i, FILE_TYPES[rng.randrange(len(FILE_TYPES))]) for i in range(small_count))
    ]
    video = ("mp4", "mov")
    objects += [ObjectSpec(f"{SOURCE_PREFIX}videos/big-{i:02d}.{video[i % 2]}", size, video[i % 2])
                for i, size in enumerate(big_sizes)]
    return Workload("W1 mixed", SOURCE_BUCKET, SOURCE_PREFIX, tuple(objects), default_targets())


def target_key(workload: Workload, target: TargetSpec, source_key: str) -> str:
    return target.prefix + source_key[len(workload.source_prefix):]


def routed(workload: Workload) -> list[tuple[ObjectSpec, TargetSpec]]:
    """Every (object, target) pair the routing asks for: an object goes to each target listing its type."""
    return [(o, t) for o in workload.objects for t in workload.targets if o.ext in t.file_types]


def expected_targets(workload: Workload) -> dict[str, dict[str, int]]:
    """Target bucket -> {key: size} that a correct copy leaves behind."""
    expected: dict[str, dict[str, int]] = {t.bucket: {} for t in workload.targets}
    for obj, target in routed(workload):
        expected[target.bucket][target_key(workload, target, obj.key)] = obj.size
    return expected


def copy_config(workload: Workload, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The s3_copy_config document that asks sfncopy for the same routing."""
    config: dict[str, Any] = {
        "source_s3_config": {"s3_bucket": workload.source_bucket, "s3_path": workload.source_prefix},
        "target_s3_config": [
            {"file_types": list(t.file_types), "s3_bucket": t.bucket, "s3_path": t.prefix} for t in workload.targets
        ],
    }
    if options:
        config["options"] = dict(options)
    return {"s3_copy_config": config}


# --- bytes -------------------------------------------------------------------------------------------
def pattern_block(seed: int = SEED, size: int = 1 * MiB) -> bytes:
    return random.Random(seed).randbytes(size)


def object_body(spec: ObjectSpec, block: bytes) -> bytes:
    """Deterministic, cheap content: the key, then the random block repeated, cut to size."""
    head = spec.key.encode() + b"\n"
    repeats = spec.size // len(block) + 1
    return (head + block * repeats)[: spec.size]


def populate(client: Any, workload: Workload, threads: int = 8) -> None:
    """Upload the workload's source objects; the big ones as multipart uploads like real media files."""
    from boto3.s3.transfer import TransferConfig

    block = pattern_block()
    transfer = TransferConfig(multipart_threshold=UPLOAD_PART_SIZE, multipart_chunksize=UPLOAD_PART_SIZE,
                              max_concurrency=4)

    def upload(spec: ObjectSpec) -> None:
        body = object_body(spec, block)
        if spec.size > UPLOAD_PART_SIZE:
            client.upload_fileobj(io.BytesIO(body), workload.source_bucket, spec.key, Config=transfer)
        else:
            client.put_object(Bucket=workload.source_bucket, Key=spec.key, Body=body)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(upload, workload.objects))


# --- synthetic listings (no network) -----------------------------------------------------------------
def synthetic_pages(count: int, bucket: str = SOURCE_BUCKET, prefix: str = SOURCE_PREFIX, page_size: int = 1000,
                    seed: int = SEED) -> Iterator[list[SourceObject]]:
    """``count`` listing entries of the W1 kinds, page by page, as ListObjectsV2 would return them."""
    rng = random.Random(seed)
    page: list[SourceObject] = []
    for i in range(count):
        ext = FILE_TYPES[i % len(FILE_TYPES)]
        size = log_uniform(rng, SMALL_MIN, 64 * MiB)
        page.append(SourceObject(bucket=bucket, key=f"{prefix}part-{i // 10_000:04d}/obj-{i:07d}.{ext}", size=size,
                                 etag=f"{i:032x}", last_modified="2024-01-01T00:00:00+00:00"))
        if len(page) == page_size:
            yield page
            page = []
    if page:
        yield page


def heavy_tailed_sizes(count: int = 10_000, seed: int = SEED, median: int = 8 * MiB, sigma: float = 2.0,
                       giant_share: float = 0.4) -> list[int]:
    """Lognormal sizes plus one giant object holding ``giant_share`` of all bytes (the giant comes first)."""
    rng = random.Random(seed)
    sizes = [max(1, int(rng.lognormvariate(math.log(median), sigma))) for _ in range(count - 1)]
    rest = sum(sizes)
    giant = int(rest * giant_share / (1.0 - giant_share))
    return [giant, *sizes]
