"""Build a finished (or half-finished) run in moto S3 without the planner or the worker.

Copies are made with the gateway the way a worker makes them (CopyObject, UploadPartCopy), the plan and
the checkpoints are written with lambdas.manifest, so the finalizer and cleanup see what they see in a
real run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest
from moto import mock_aws

from lambdas import limits, manifest
from lambdas.gateway import S3Gateway
from lambdas.models import (
    CopyConfig,
    CopyOptions,
    CopyTask,
    ObjectResult,
    Payload,
    PayloadCheckpoint,
    PlanPointer,
    PlanTotals,
    RunPlan,
    SkippedObject,
    SourceConfig,
    SplitCopy,
    TargetConfig,
)
from lambdas.settings import Settings

SOURCE = "src-bucket"
TARGET = "dst-bucket"
MANIFESTS = "manifest-bucket"
PART = limits.MIN_PART_SIZE  # real S3 (and moto) refuse smaller parts except the last
CREATED_AT = "2026-01-01T00:00:00Z"


def moto_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Gateway]:
    """Body of the ``s3`` fixture of the test modules: moto S3 with the source, target and manifest buckets."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (SOURCE, TARGET, MANIFESTS):
            client.create_bucket(Bucket=bucket)
        yield S3Gateway(client)


SETTINGS = Settings(manifest_bucket=MANIFESTS, manifest_prefix="")


def body_of(size: int, seed: int = 0) -> bytes:
    """Bytes that differ from part to part, so a part copied to the wrong place shows."""
    block = bytes((seed + i) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


def uploads(s3: S3Gateway, bucket: str = TARGET) -> list[tuple[str, str]]:
    return [(u.key, u.upload_id) for u in s3.list_multipart_uploads(bucket)]


@dataclass
class RunBuilder:
    s3: S3Gateway
    run_id: str = "r1"
    options: CopyOptions = field(default_factory=CopyOptions)
    created_at: str = CREATED_AT
    target_prefix: str = "out/"
    tasks: dict[int, list[CopyTask]] = field(default_factory=lambda: defaultdict(list))
    results: dict[int, list[ObjectResult]] = field(default_factory=lambda: defaultdict(list))
    open_uploads: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    splits: list[SplitCopy] = field(default_factory=list)
    skipped: list[SkippedObject] = field(default_factory=list)
    copies: int = 0

    @property
    def loc(self):
        return manifest.run_location(MANIFESTS, "", self.run_id)

    def put_source(self, key: str, body: bytes, tags: dict[str, str] | None = None) -> str:
        tagging = "&".join(f"{k}={v}" for k, v in (tags or {}).items())
        self.s3.client.put_object(Bucket=SOURCE, Key=key, Body=body, Tagging=tagging)
        return self.s3.head_object(SOURCE, key).etag

    def whole(self, key: str, body: bytes, payload: int = 0, outcome: str = "copied", error: str = "",
              retries: int = 0) -> CopyTask:
        """A CopyObject task; outcome "copied" copies it for real, "failed"/"skipped" record only, "none"
        records no result (the payload stopped before it)."""
        etag = self.put_source(key, body)
        task = CopyTask(f"c{self.copies}", self.copies, SOURCE, key, len(body), etag, TARGET,
                        self.target_prefix + key, "copy")
        self.copies += 1
        self.tasks[payload].append(task)
        if outcome == "copied":
            self.s3.copy_object(SOURCE, key, etag, TARGET, task.target_key)
        if outcome != "none":
            self.results[payload].append(ObjectResult(
                task.task_id, task.copy_id, SOURCE, key, TARGET, task.target_key,
                len(body) if outcome == "copied" else 0, outcome, "copy" if outcome != "skipped" else "none",
                attempts=1 + retries, retries=retries, seconds=0.5, error=error))
        return task

    def split(self, key: str, body: bytes, chunks: list[tuple[int, int, int]], *, tags=(),
              failed_chunk: int | None = None, unsent_parts: tuple[int, ...] = (), planned_only: bool = False,
              ) -> SplitCopy:
        """A split copy of ``PART``-sized parts; ``chunks`` are (payload, first_part, last_part).
        ``failed_chunk`` (an index into chunks) fails that chunk without copying its parts;
        ``unsent_parts`` are reported copied but never reach S3 (a lost part); ``planned_only`` (a dry
        run) starts no upload and records no results."""
        etag = self.put_source(key, body)
        count = -(-len(body) // PART)
        target_key = self.target_prefix + key
        upload_id = "" if planned_only else self.s3.create_multipart_upload(TARGET, target_key, None, {})
        split = SplitCopy(self.copies, SOURCE, key, len(body), etag, TARGET, target_key, PART, count, upload_id,
                          tags=tuple(tags))
        self.copies += 1
        self.splits.append(split)
        for index, (payload, first, last) in enumerate(chunks):
            task = CopyTask(f"c{split.copy_id}.p{first}", split.copy_id, SOURCE, key, len(body), etag, TARGET,
                            target_key, "chunk", PART, first, last, upload_id)
            self.tasks[payload].append(task)
            if planned_only:
                continue
            failed = index == failed_chunk
            for number in range(first, last + 1):
                if not failed and number not in unsent_parts:
                    end = min(number * PART, len(body)) - 1
                    self.s3.upload_part_copy(TARGET, target_key, upload_id, number, SOURCE, key, etag,
                                             (number - 1) * PART, end)
            self.results[payload].append(ObjectResult(
                task.task_id, split.copy_id, SOURCE, key, TARGET, target_key,
                0 if failed else task.nbytes, "failed" if failed else "copied", "chunk",
                parts=0 if failed else last - first + 1, attempts=last - first + 1, retries=1,
                seconds=2.0 + index, error="SourceChanged: the source changed" if failed else ""))
        return split

    def skip(self, key: str, reason: str, size: int = 10) -> None:
        target = "" if reason == "unmatched" else TARGET
        self.skipped.append(SkippedObject(SOURCE, key, size, reason, target, self.target_prefix + key
                                          if target else ""))

    def write(self, ran: set[int] | None = None, workers: int = 2) -> PlanPointer:
        """Write the plan and the checkpoints of the payloads in ``ran`` (default: all)."""
        payload_ids = sorted(self.tasks) or []
        per_worker = tuple(tuple(p for p in payload_ids if p % workers == w) for w in range(workers))
        config = CopyConfig(sources=(SourceConfig(SOURCE, ""),),
                            targets=(TargetConfig(0, TARGET, self.target_prefix, ("*",)),), options=self.options)
        reasons: dict[str, int] = defaultdict(int)
        for s in self.skipped:
            reasons[s.reason] += 1
        totals = PlanTotals(copies=self.copies, skipped=len(self.skipped), payloads=len(payload_ids),
                            split_objects=len(self.splits), unmatched=reasons.pop("unmatched", 0),
                            skipped_by_reason=tuple(sorted(reasons.items())))
        plan = RunPlan(self.run_id, self.created_at, config, workers, per_worker, tuple(self.splits), totals)
        payloads = [Payload(pid, pid % workers, tuple(self.tasks[pid])) for pid in payload_ids]
        manifest.write_plan(self.s3, self.loc, plan, payloads, self.skipped)
        for pid in payload_ids:
            if ran is None or pid in ran:
                manifest.write_checkpoint(self.s3, self.loc, PayloadCheckpoint(
                    pid, pid % workers, tuple(self.results[pid]), tuple(self.open_uploads[pid]), 1))
        return PlanPointer(self.run_id, self.loc, self.options.dry_run, per_worker, self.copies, 0,
                           len(self.skipped))
