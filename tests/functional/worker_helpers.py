"""Builders for worker tests: buckets, source objects, and runs written straight from the models (so
the worker's tests do not depend on the planner)."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Any

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.models import (
    CopyConfig,
    CopyMethod,
    CopyOptions,
    CopyTask,
    Payload,
    PayloadTask,
    PlanTotals,
    RunPlan,
    SourceConfig,
    SplitCopy,
    TargetConfig,
)
from lambdas.settings import Settings

SRC, DST, MANIFEST = "src-bucket", "dst-bucket", "manifest-bucket"
CUTOFF = 5 * MiB


def make_buckets(client: Any) -> None:
    for bucket in (SRC, DST, MANIFEST):
        client.create_bucket(Bucket=bucket)


def data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def put_multipart(client: Any, key: str, body: bytes, part_size: int, **kwargs: Any) -> None:
    """Upload ``body`` in parts of ``part_size`` (as an SDK would), with create-time ``kwargs``."""
    upload = client.create_multipart_upload(Bucket=SRC, Key=key, **kwargs)["UploadId"]
    parts = []
    for number, first in enumerate(range(0, len(body), part_size), start=1):
        etag = client.upload_part(Bucket=SRC, Key=key, UploadId=upload, PartNumber=number,
                                  Body=body[first:first + part_size])["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(Bucket=SRC, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})


def task_for(client: Any, copy_id: int, key: str, target_key: str | None = None,
             method: CopyMethod | None = None) -> CopyTask:
    """The task the planner would make for source ``key`` (CopyObject up to the cutoff, parts above)."""
    head = client.head_object(Bucket=SRC, Key=key)
    size = int(head["ContentLength"])
    return CopyTask(
        task_id=f"c{copy_id}", copy_id=copy_id, source_bucket=SRC, source_key=key, size=size,
        etag=head["ETag"].strip('"'), target_bucket=DST, target_key=key if target_key is None else target_key,
        method=method or ("multipart" if size > CUTOFF else "copy"))


def split_for(client: Any, copy_id: int, key: str, part_size: int) -> tuple[SplitCopy, list[CopyTask]]:
    """What the planner does for a split object: create the upload, then one chunk task per part."""
    whole = task_for(client, copy_id, key)
    upload = client.create_multipart_upload(Bucket=DST, Key=whole.target_key)["UploadId"]
    count = -(-whole.size // part_size)
    split = SplitCopy(copy_id=copy_id, source_bucket=SRC, source_key=key, size=whole.size, etag=whole.etag,
                      target_bucket=DST, target_key=whole.target_key, part_size=part_size, part_count=count,
                      upload_id=upload)
    chunks = [CopyTask(task_id=f"c{copy_id}.p{n}", copy_id=copy_id, source_bucket=SRC, source_key=key,
                       size=whole.size, etag=whole.etag, target_bucket=DST, target_key=whole.target_key,
                       method="chunk", part_size=part_size, first_part=n, last_part=n, upload_id=upload)
              for n in range(1, count + 1)]
    return split, chunks


def write_run(gateway: S3Gateway, payloads: Sequence[Sequence[CopyTask]], options: CopyOptions | None = None,
              splits: Sequence[SplitCopy] = (), run_id: str = "run-1",
              config: CopyConfig | None = None) -> list[PayloadTask]:
    """Write a plan with one payload per worker; return each worker's first PayloadTask. ``config`` replaces
    the plan's default config (SRC to DST with ``options``)."""
    loc = manifest.run_location(MANIFEST, "", run_id)
    config = config or CopyConfig(sources=(SourceConfig(SRC, ""),), targets=(TargetConfig(0, DST, "", ("*",)),),
                                  options=options or CopyOptions())
    plan = RunPlan(run_id=run_id, created_at="2024-01-01T00:00:00Z", config=config, workers=len(payloads),
                   worker_payloads=tuple((i,) for i in range(len(payloads))), splits=tuple(splits),
                   totals=PlanTotals())
    written = [Payload(payload_id=i, worker=i, tasks=tuple(tasks)) for i, tasks in enumerate(payloads)]
    manifest.write_plan(gateway, loc, plan, written, [])
    return [PayloadTask(run_id=run_id, manifest=loc, worker=i, payload=i) for i in range(len(payloads))]


def settings(threads: int = 3, part_size: int = 5 * MiB) -> Settings:
    return Settings(manifest_bucket=MANIFEST, copy_cutoff=CUTOFF, part_size=part_size, worker_threads=threads)


class CountingGateway(S3Gateway):
    """The real gateway, noting which copy requests it sent (to prove what was *not* sent again)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._lock = threading.Lock()
        self.copies: list[str] = []  # source keys of CopyObject
        self.parts: list[tuple[str, int]] = []  # (source key, part number) of UploadPartCopy
        self.list_parts_calls = 0

    def copy_object(self, src_bucket: str, src_key: str, *args: Any, **kwargs: Any) -> tuple[str, int]:
        with self._lock:
            self.copies.append(src_key)
        return super().copy_object(src_bucket, src_key, *args, **kwargs)

    def upload_part_copy(self, bucket: str, key: str, upload_id: str, part_number: int, src_bucket: str,
                         src_key: str, etag: str, first: int, last: int) -> tuple[str, int]:
        with self._lock:
            self.parts.append((src_key, part_number))
        return super().upload_part_copy(bucket, key, upload_id, part_number, src_bucket, src_key, etag, first, last)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> Any:
        with self._lock:
            self.list_parts_calls += 1
        return super().list_parts(bucket, key, upload_id)
