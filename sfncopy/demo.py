"""``sfncopy demo``: the embedded default end to end, on this machine, with no AWS account.

1. start the embedded emulator on a free port;
2. create the demo buckets and a source with a few hundred objects of mixed types and sizes (keys with
   spaces, "+", "%" and unicode; an empty object; a folder marker; an object uploaded in parts that is
   larger than the local copy cutoff; objects with metadata and tags; files no target wants);
3. deploy the stack with ``scripts/deploy.sh local`` (a subprocess pointed at the emulator);
4. start an execution with ``examples/demo-copy.json`` and show its progress;
5. print the report and check every target object byte for byte, with content type, metadata and tags,
   and that nothing else was written and no multipart upload was left open;
6. download the run's HTML report (report.html, next to report.json) to a local file and say where both are.

The demo is its own check: the expected targets are worked out here from the config's file types, not
with sfncopy's routing, and the bytes are compared with what was uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.config import load_config_text
from lambdas.errors import SfnCopyError
from lambdas.models import CopyConfig
from sfncopy import execution
from sfncopy.progress import LinePrinter
from sfncopy.summary import report_lines

ROOT = Path(__file__).resolve().parents[1]
ENV = "local"
DEMO_CONFIG = ROOT / "examples" / "demo-copy.json"
DEPLOY_SCRIPT = ROOT / "scripts" / "deploy.sh"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that could send the demo's clients somewhere other than its own emulator.
FOREIGN_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SFN",
                     "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_IAM",
                     "AWS_CA_BUNDLE")
DEPLOY_TIMEOUT_SECONDS = 300
THREADS = 8
MiB = 1024 * 1024
PART_SIZE = 5 * MiB  # S3's minimum part size: the in-parts upload uses it
SEED = 2018
DEFAULT_LARGE_SIZE = 17 * MiB

# (folder, name pattern, extension, content type); names mix spaces, "+", "%", and non-ASCII letters.
_KINDS = (
    ("photos/été 2024", "plage #{i:03d}", "jpg", "image/jpeg"),
    ("photos/été 2024", "IMG_{i:04d}", "JPG", "image/jpeg"),
    ("photos/日本 旅行", "写真 {i}", "png", "image/png"),
    ("videos", "clip+{i}", "mp4", "video/mp4"),
    ("videos/raw takes", "take {i}", "mov", "video/quicktime"),
    ("data/reports", "report 100% {i}", "csv", "text/csv"),
    ("data", "naïve café {i}", "json", "application/json"),
    ("notes", "файл {i}", "txt", "text/plain"),
    ("logs", "app.{i}", "log", "text/plain"),
)


class DemoError(SfnCopyError):
    """A step of the demo could not run (the emulator, the deployment, the execution)."""


@dataclass(frozen=True)
class DemoObject:
    key: str
    body: bytes
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    in_parts: bool = False  # uploaded with a multipart upload of PART_SIZE parts

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


# --- the data --------------------------------------------------------------------------------------
def demo_objects(count: int, prefix: str = "media/", large_size: int = DEFAULT_LARGE_SIZE,
                 seed: int = SEED) -> list[DemoObject]:
    """``count`` small objects of mixed kinds and sizes, plus the special cases (the two large ones of
    ``large_size``: make it larger than the environment's copy cutoff). Deterministic."""
    rng = random.Random(seed)
    objects: list[DemoObject] = []
    for i in range(count):
        folder, pattern, ext, content_type = _KINDS[i % len(_KINDS)]
        size = 0 if i == 0 else rng.randint(1, 2 * MiB) if i % 40 == 1 else rng.randint(1, 64 * 1024)
        objects.append(DemoObject(
            key=f"{prefix}{folder}/{pattern.format(i=i)}.{ext}",
            body=rng.randbytes(size),
            content_type=content_type,
            metadata={"origin": "sfncopy-demo", "index": str(i)} if i % 7 == 0 else {},
            tags={"team": "media", "n": str(i)} if i % 5 == 0 else {},
        ))
    objects += [
        # Larger than the local copy cutoff and uploaded in parts: copied with UploadPartCopy, part for part.
        DemoObject(key=f"{prefix}videos/big upload in parts ✓.mp4", body=rng.randbytes(large_size),
                   content_type="video/mp4", metadata={"camera": "b", "take": "7"},
                   tags={"team": "video", "cut": "final"}, in_parts=True),
        # Larger than the cutoff, uploaded in one piece: the worker copies it in parts of its own choosing.
        DemoObject(key=f"{prefix}videos/raw takes/long take.mov", body=rng.randbytes(large_size),
                   content_type="video/quicktime", metadata={"camera": "a"}),
        # A folder marker: never copied.
        DemoObject(key=f"{prefix}photos/empty folder/", body=b""),
    ]
    return objects


def large_object_size(copy_cutoff_mb: int | None) -> int:
    """Just over the environment's copy cutoff, so the large objects are copied in parts."""
    cutoff = copy_cutoff_mb * MiB if copy_cutoff_mb else DEFAULT_LARGE_SIZE - MiB
    return cutoff + MiB


def extension(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def expected_copies(objects: list[DemoObject], config: CopyConfig) -> dict[tuple[str, str], DemoObject]:
    """(target bucket, target key) -> the source object, worked out from the file types alone (the demo
    config uses no include/exclude, sizes or flatten; ``check_demo_config`` makes sure)."""
    expected: dict[tuple[str, str], DemoObject] = {}
    for source in config.sources:
        for obj in objects:
            if not obj.key.startswith(source.prefix) or obj.key.endswith("/"):
                continue
            relative = obj.key[len(source.prefix):]
            for target in config.targets:
                if "*" in target.file_types or extension(obj.key) in target.file_types:
                    expected[(target.bucket, target.prefix + relative)] = obj
    return expected


def check_demo_config(config: CopyConfig) -> None:
    """The demo's own expectations only understand file-type routing from one source."""
    simple = all(not (t.include or t.exclude or t.flatten or t.min_size is not None or t.max_size is not None)
                 for t in config.targets)
    if len(config.sources) != 1 or not simple:
        raise DemoError(f"{DEMO_CONFIG}: the demo expects one source and targets routed by file_types only")


# --- the steps -------------------------------------------------------------------------------------
class Steps:
    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.number = 0

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        self.number += 1
        started = time.monotonic()
        self.echo(f"[{self.number}] {what} ...")
        yield
        self.echo(f"    done in {time.monotonic() - started:.1f} s")


def demo_environment(endpoint: str) -> dict[str, str]:
    """The process environment for the demo's clients and for scripts/deploy.sh: everything goes to the
    demo's emulator with dummy credentials."""
    environ = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
    return {**environ, "AWS_ENDPOINT_URL": endpoint, **DUMMY_CREDENTIALS}


def upload(s3: Any, bucket: str, objects: list[DemoObject]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda obj: _put(s3, bucket, obj), objects))


def _put(s3: Any, bucket: str, obj: DemoObject) -> None:
    headers: dict[str, Any] = {"ContentType": obj.content_type, "Metadata": obj.metadata}
    if not obj.in_parts:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, **headers)
    else:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=obj.key, **headers)["UploadId"]
        parts = []
        for number, first in enumerate(range(0, len(obj.body), PART_SIZE), start=1):
            etag = s3.upload_part(Bucket=bucket, Key=obj.key, UploadId=upload_id, PartNumber=number,
                                  Body=obj.body[first:first + PART_SIZE])["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=bucket, Key=obj.key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    if obj.tags:
        s3.put_object_tagging(Bucket=bucket, Key=obj.key,
                              Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in obj.tags.items()]})


def deploy(environ: dict[str, str]) -> None:
    if not DEPLOY_SCRIPT.is_file():
        raise DemoError(f"{DEPLOY_SCRIPT} not found: run the demo from a checkout of sfncopy")
    done = subprocess.run([str(DEPLOY_SCRIPT), ENV], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=DEPLOY_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise DemoError(f"scripts/deploy.sh {ENV} failed (exit {done.returncode}): {tail}")


# --- verification ----------------------------------------------------------------------------------
def verify(s3: Any, config: CopyConfig, objects: list[DemoObject], report: dict[str, Any] | None,
           manifest_bucket: str) -> list[str]:
    """Every problem found; empty when every target object is right and nothing else was written."""
    expected = expected_copies(objects, config)
    problems = _check_report(report, len(expected))
    actual: set[tuple[str, str]] = set()
    for bucket in sorted({t.bucket for t in config.targets}):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            actual.update((bucket, item["Key"]) for item in page.get("Contents", ()))
    problems += [f"missing: s3://{b}/{k}" for b, k in sorted(set(expected) - actual)]
    problems += [f"unexpected: s3://{b}/{k}" for b, k in sorted(actual - set(expected))]
    present = sorted(set(expected) & actual)
    with ThreadPoolExecutor(THREADS) as pool:
        for found in pool.map(lambda where: _check_object(s3, where, expected[where]), present):
            problems += found
    for bucket in sorted({t.bucket for t in config.targets} | {manifest_bucket}):
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
        problems += [f"multipart upload left open: s3://{bucket}/{u['Key']}" for u in uploads]
    return problems


def _check_report(report: dict[str, Any] | None, copies: int) -> list[str]:
    if report is None:
        return ["no report.json was written"]
    counts = report.get("counts", {})
    problems = []
    if report.get("status") != "succeeded":
        problems.append(f"report status is {report.get('status')!r}, not 'succeeded'")
    if counts.get("failed", report.get("failed")) != 0:
        problems.append(f"report counts {counts.get('failed', report.get('failed'))} failed objects")
    if counts.get("copied", report.get("copied")) != copies:
        problems.append(f"report counts {counts.get('copied', report.get('copied'))} copied, expected {copies}")
    return problems


def _check_object(s3: Any, where: tuple[str, str], source: DemoObject) -> list[str]:
    bucket, key = where
    uri = f"s3://{bucket}/{key}"
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    problems = []
    if hashlib.sha256(body).hexdigest() != source.sha256:
        problems.append(f"{uri}: {len(body)} bytes differ from the source's {len(source.body)}")
    if got.get("ContentType") != source.content_type:
        problems.append(f"{uri}: content type {got.get('ContentType')!r}, source {source.content_type!r}")
    if got.get("Metadata", {}) != source.metadata:
        problems.append(f"{uri}: metadata {got.get('Metadata')}, source {source.metadata}")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", ())}
    if tags != source.tags:
        problems.append(f"{uri}: tags {tags}, source {source.tags}")
    return problems


# --- the whole demo --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoOutcome:
    problems: list[str]  # empty: everything verified
    report_html: str = ""  # s3:// URI of the run's HTML report
    html_file: Path | None = None  # where the demo saved it


def run_demo(port: int, objects: int, echo: Callable[[str], None], progress: LinePrinter,
             html_file: Path | None = None) -> DemoOutcome:
    """Run the demo; what it verified and where the HTML report is (saved to ``html_file`` when given).
    DemoError when a step fails."""
    from generator.settings import load_env
    from sfncopy.emulator.server import Emulator, free_port

    config = load_config_text(DEMO_CONFIG.read_text(encoding="utf-8"), str(DEMO_CONFIG))
    check_demo_config(config)
    document = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    settings = load_env(ENV, envs_dir=ROOT / "envs")
    data = demo_objects(objects, config.sources[0].prefix, large_size=large_object_size(settings.copy_cutoff_mb))
    steps = Steps(echo)
    with contextlib.ExitStack() as stack:
        with steps("starting the embedded emulator"):
            emulator = stack.enter_context(Emulator(port=port or free_port()))
            environ = demo_environment(emulator.endpoint)
            aws = execution.AwsClients.create(settings.region, {**DUMMY_CREDENTIALS,
                                                                "AWS_ENDPOINT_URL": emulator.endpoint})
            echo(f"    emulator at {emulator.endpoint}")
        with steps(f"creating the demo buckets and {len(data)} source objects"):
            s3 = aws.s3.client
            for bucket in sorted({s.bucket for s in config.sources} | {t.bucket for t in config.targets}):
                s3.create_bucket(Bucket=bucket)
            upload(s3, config.sources[0].bucket, data)
            echo(f"    {sum(len(o.body) for o in data) / MiB:.1f} MiB in s3://{config.sources[0].bucket}/"
                 f"{config.sources[0].prefix}")
        with steps(f"deploying the stack: scripts/deploy.sh {ENV}"):
            deploy(environ)
            outputs = execution.stack_outputs(aws.cfn, settings.stack_name)
            echo(f"    state machine {outputs.state_machine_arn}")
        with steps(f"copying with {DEMO_CONFIG.relative_to(ROOT)}"):
            name = time.strftime("demo-%Y%m%d-%H%M%S")
            arn = execution.start_execution(aws.sfn, outputs.state_machine_arn, document, name)
            echo(f"    execution {arn}")
            files = execution.files_finder(aws.sfn, aws.s3, arn, outputs.run_location(name))
            status = execution.follow(aws.sfn, arn, files, progress)
            progress.end()
        report = execution.read_report(aws.s3, status, outputs.run_location(name))
        for line in report_lines(report or {}):
            echo("    " + line)
        if not status.succeeded:
            raise DemoError(f"execution {status.status}: {status.error}: {status.cause}")
        with steps("verifying every target object byte for byte, with metadata and tags"):
            problems = verify(s3, config, data, report, outputs.manifest_bucket)
            if not problems:
                echo(f"    {len(expected_copies(data, config))} target objects verified")
        html_uri = str((report or {}).get("report_html", ""))
        if html_file is not None and html_uri:
            with steps("downloading the run's HTML report"):
                html_file.write_bytes(execution.read_bytes(aws.s3, html_uri))
    return DemoOutcome(problems, html_uri, html_file if html_uri else None)
