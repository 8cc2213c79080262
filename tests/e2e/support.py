"""Helpers of the end-to-end suite: stacks deployed through ``scripts/deploy.sh local`` into the embedded
emulator, executions started the user's way (``sfncopy start-execution --wait`` in a subprocess), and the
checks every case repeats (target objects byte for byte with metadata, content headers and tags; the
report; no incomplete multipart upload anywhere).

Buckets: the stack's roles may touch only the buckets its env names, and bucket names have no wildcard,
so every stack is deployed with the same fixed pools (``SOURCE_POOL``, ``TARGET_POOL``) given as
process-environment overrides of ``envs/local-env.sh``, each bucket narrowed to ``in/`` (sources) or
``out/`` (targets) as production env files narrow theirs: every source key and path of a test starts with
``in/``, every target path with ``out/``. Each test takes fresh buckets from the pools (``BucketPool``): no
two tests of one emulator share a bucket.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SCRIPT = ROOT / "scripts" / "deploy.sh"
ENV = "local"
REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": REGION}
# Variables of the developer's shell that would send our clients elsewhere.
FOREIGN_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SFN",
                     "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                     "AWS_CA_BUNDLE")
SOURCE_POOL = tuple(f"sfncopy-e2e-src-{i:02d}" for i in range(64))
TARGET_POOL = tuple(f"sfncopy-e2e-dst-{i:02d}" for i in range(64))
# A bucket created in this account is foreign to the stack's account: with cross-account access off in
# the emulator (MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS=false), S3 answers AccessDenied to everything the
# stack's functions ask of it, as AWS does for a bucket whose owner granted nothing.
FOREIGN_ACCOUNT = "111111111111"
MiB = 1024 * 1024
PART_SIZE = 5 * MiB  # part_size_mb of envs/local-env.sh
COPY_CUTOFF = 16 * MiB  # copy_cutoff_mb of envs/local-env.sh
DEPLOY_TIMEOUT_SECONDS = 240
EXECUTION_TIMEOUT_SECONDS = 300


# --- stacks --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackSpec:
    """A stack of the local environment with some settings overridden (process environment beats file)."""

    name: str
    workers: int
    worker_timeout_seconds: int = 60
    worker_threads: int = 8
    # Narrow every pool bucket to these prefixes ("bucket/prefix/" entries), as production env files do.
    source_scope: str = ""
    target_scope: str = ""
    # The Plan stage (env planning): "single", or "sharded" with the wanted shard count and shards at once.
    planning: str = "single"
    planner_shards: int | None = None
    planner_shard_concurrency: int | None = None
    # options.restore (env restore_archived=true), with the restore stage's first wait and bound shortened
    restore_first_wait_seconds: int | None = None
    restore_bound_seconds: int | None = None
    # The Finalize stage's fan-out (env finalizer_shard_rows): report rows a finalize shard aims at.
    finalizer_shard_rows: int | None = None
    # Further env settings as (name, value) pairs (schedule_<name>, notification_topic ...).
    extra: tuple[tuple[str, str], ...] = ()

    def overrides(self) -> dict[str, str]:
        values = {
            "stack_name": self.name,
            "num_copy_lambda_workers": str(self.workers),
            "worker_timeout_seconds": str(self.worker_timeout_seconds),
            "worker_threads": str(self.worker_threads),
            "source_buckets": " ".join(scoped(bucket, self.source_scope) for bucket in SOURCE_POOL),
            "target_buckets": " ".join(scoped(bucket, self.target_scope) for bucket in TARGET_POOL),
        }
        if self.finalizer_shard_rows is not None:
            values["finalizer_shard_rows"] = str(self.finalizer_shard_rows)
        if self.planning != "single":  # the shard settings are refused with planning=single
            values["planning"] = self.planning
            if self.planner_shards is not None:
                values["planner_shards"] = str(self.planner_shards)
            if self.planner_shard_concurrency is not None:
                values["planner_shard_concurrency"] = str(self.planner_shard_concurrency)
        if self.restore_bound_seconds is not None:
            values["restore_archived"] = "true"
            values["restore_bound_seconds"] = str(self.restore_bound_seconds)
            if self.restore_first_wait_seconds is not None:
                values["restore_first_wait_seconds"] = str(self.restore_first_wait_seconds)
        values.update(self.extra)
        return values


def scoped(bucket: str, prefix: str) -> str:
    """An env file's bucket entry: the whole bucket, or ``bucket/prefix/``."""
    return f"{bucket}/{prefix}" if prefix else bucket


# Every stack narrows its roles to in/ on the sources and out/ on the targets, as production env files
# narrow them: whatever a function reads or lists lies under in/, whatever it writes under out/.
SOURCE_SCOPE = "in/"
TARGET_SCOPE = "out/"
# The stack most cases run on: the local environment's 4 workers and timeouts.
# Finalize shards of 5,000 rows: the 20,000-object run is finalized by several FinalizeShards children.
MAIN = StackSpec("sfncopy-e2e", workers=4, source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE,
                 finalizer_shard_rows=5_000)
# One worker with a short timeout and one thread: a payload of a few hundred small objects outlasts an
# invocation (deadline continuations), a test can act in the middle of it, and a 12-part object is not
# split (with one worker, splitting cannot shorten the run), so the worker owns its multipart upload.
SOLO = StackSpec("sfncopy-e2e-solo", workers=1, worker_timeout_seconds=5, worker_threads=1,
                 source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE)
# Sharded planning (planning=sharded): 3 workers, 4 shards wanted, 2 planned at once.
SHARDED = StackSpec("sfncopy-e2e-sharded", workers=3, source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE,
                    planning="sharded", planner_shards=4, planner_shard_concurrency=2)
# options.restore (restore_archived=true): 2 workers beside the restore branch, which looks every 2 s and gives a
# restore 20 s (AWS's bounds are hours: lambdas/restoring/tiers.py).
RESTORE = StackSpec("sfncopy-e2e-restore", workers=2, source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE,
                    restore_first_wait_seconds=2, restore_bound_seconds=20)
# A stack of its own whose worker role a test takes a right from.
DENIED = StackSpec("sfncopy-e2e-denied", workers=2, source_scope=SOURCE_SCOPE, target_scope=TARGET_SCOPE)


@dataclass(frozen=True)
class Stack:
    spec: StackSpec
    state_machine_arn: str
    manifest_bucket: str
    manifest_prefix: str

    @property
    def worker_function(self) -> str:
        return f"{self.spec.name}-worker"

    def function(self, suffix: str) -> str:
        return f"{self.spec.name}-{suffix}"

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def run_prefix(self, run_id: str) -> str:
        return f"{self.manifest_prefix}runs/{run_id}/"


def process_environment(endpoint: str, spec: StackSpec | None = None) -> dict[str, str]:
    """The environment of a subprocess (deploy.sh, the CLI): the emulator, dummy keys, the stack's overrides."""
    environ = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
    environ.update({"AWS_ENDPOINT_URL": endpoint, **DUMMY_CREDENTIALS, "PYTHONUNBUFFERED": "1"})
    if spec is not None:
        environ.update(spec.overrides())
    return environ


def deploy(endpoint: str, spec: StackSpec) -> Stack:
    """``scripts/deploy.sh local`` with the stack's overrides, then its outputs."""
    done = subprocess.run([str(DEPLOY_SCRIPT), ENV], cwd=ROOT, env=process_environment(endpoint, spec),
                          capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise AssertionError(f"scripts/deploy.sh {ENV} ({spec.name}) failed with exit {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    cfn = clients(endpoint).cfn
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=spec.name)["Stacks"][0].get("Outputs", [])}
    prefix = outputs.get("ManifestPrefix", "")
    return Stack(spec=spec, state_machine_arn=outputs["StateMachineArn"], manifest_bucket=outputs["ManifestBucket"],
                 manifest_prefix=prefix if not prefix or prefix.endswith("/") else prefix + "/")


# --- clients -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clients:
    s3: Any
    sfn: Any
    cfn: Any
    foreign_s3: Any  # S3 as the foreign account (FOREIGN_ACCOUNT) sees it
    iam: Any = None


def clients(endpoint: str) -> Clients:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    # Response checksums are checked only when asked: moto keeps a multipart object's CRC32 as a value
    # without the "-<parts>" suffix of S3's composite checksums, so botocore would take it for a full-object
    # checksum and reject correct bytes on GET. The tests compare the bytes themselves.
    s3_config = Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 5},
                       max_pool_connections=32, response_checksum_validation="when_required")
    foreign = session.client("s3", endpoint_url=endpoint, config=s3_config)
    foreign.meta.events.register("before-sign.s3.*", _as_foreign_account)
    return Clients(s3=session.client("s3", endpoint_url=endpoint, config=s3_config),
                   sfn=session.client("stepfunctions", endpoint_url=endpoint),
                   cfn=session.client("cloudformation", endpoint_url=endpoint),
                   foreign_s3=foreign, iam=session.client("iam", endpoint_url=endpoint))


def _as_foreign_account(request: Any, **_: Any) -> None:
    request.headers["x-moto-account-id"] = FOREIGN_ACCOUNT


class BucketPool:
    """Hands out each pool bucket once per emulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = {"source": 0, "target": 0}

    def take(self, kind: str) -> str:
        pool = SOURCE_POOL if kind == "source" else TARGET_POOL
        with self._lock:
            index = self._next[kind]
            if index >= len(pool):
                raise AssertionError(f"the e2e {kind} bucket pool ({len(pool)} buckets) is used up: enlarge it")
            self._next[kind] = index + 1
        return pool[index]


# --- objects -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Obj:
    """A source object: key, bytes and everything a copy must carry over."""

    key: str
    body: bytes
    content_type: str = "application/octet-stream"
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    cache_control: str = ""
    content_disposition: str = ""
    content_language: str = ""
    in_parts: int = 0  # > 0: uploaded with a multipart upload of parts of this size (ETag "<md5>-<n>")
    checksum: str = ""  # with in_parts: the checksum algorithm of the upload (as SDKs send CRC32 today)

    def with_body(self, body: bytes) -> Obj:
        return replace(self, body=body)


def body(seed: str, size: int) -> bytes:
    """Deterministic bytes that differ for every seed (a copy from the wrong source cannot match)."""
    block = (seed.encode() + b"|" + uuid.uuid5(uuid.NAMESPACE_URL, seed).bytes) * 64
    return (block * (size // len(block) + 1))[:size]


def rich(key: str, size: int, content_type: str = "application/octet-stream", in_parts: int = 0) -> Obj:
    """An object with user metadata, content headers and tags (the things a copy must preserve)."""
    file_name = key.rsplit("/", 1)[-1].encode("ascii", "replace").decode()  # HTTP headers are ASCII
    return Obj(key=key, body=body(key, size), content_type=content_type,
               metadata={"origin": "e2e", "size": str(size)},
               tags={"team": "e2e", "kind": key.rsplit(".", 1)[-1]}, cache_control="max-age=60",
               content_disposition=f'attachment; filename="{file_name}"', content_language="en", in_parts=in_parts)


def put_object(s3: Any, bucket: str, obj: Obj) -> None:
    headers: dict[str, Any] = {"ContentType": obj.content_type, "Metadata": dict(obj.metadata)}
    for name, value in (("CacheControl", obj.cache_control), ("ContentDisposition", obj.content_disposition),
                        ("ContentLanguage", obj.content_language)):
        if value:
            headers[name] = value
    if obj.tags:
        headers["Tagging"] = "&".join(f"{k}={v}" for k, v in sorted(obj.tags.items()))
    if not obj.in_parts:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, **headers)
        return
    if obj.checksum:
        headers["ChecksumAlgorithm"] = obj.checksum
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=obj.key, **headers)["UploadId"]
    parts = []
    for number, first in enumerate(range(0, len(obj.body), obj.in_parts), start=1):
        extra = {"ChecksumAlgorithm": obj.checksum} if obj.checksum else {}
        answer = s3.upload_part(Bucket=bucket, Key=obj.key, UploadId=upload_id, PartNumber=number,
                                Body=obj.body[first:first + obj.in_parts], **extra)
        parts.append({"PartNumber": number, "ETag": answer["ETag"],
                      **{k: v for k, v in answer.items() if k.startswith("Checksum") and k != "ChecksumType"}})
    s3.complete_multipart_upload(Bucket=bucket, Key=obj.key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def put_objects(s3: Any, bucket: str, objects: Iterable[Obj], threads: int = 16) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda o: put_object(s3, bucket, o), objects))


def create_bucket(s3: Any, bucket: str) -> str:
    s3.create_bucket(Bucket=bucket)
    return bucket


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", ()))
    return sorted(keys)


# --- checks --------------------------------------------------------------------------------------------
def assert_copied(s3: Any, obj: Obj, bucket: str, key: str) -> None:
    """The target has the source's bytes, content type, content headers, user metadata and tags."""
    got = s3.get_object(Bucket=bucket, Key=key)
    where = f"s3://{bucket}/{key}"
    assert got["Body"].read() == obj.body, f"{where}: bytes differ from the source {obj.key}"
    assert got["ContentLength"] == len(obj.body), where
    assert got.get("ContentType") == obj.content_type, f"{where}: ContentType {got.get('ContentType')!r}"
    assert got.get("Metadata", {}) == dict(obj.metadata), f"{where}: Metadata {got.get('Metadata')!r}"
    for header, wanted in (("CacheControl", obj.cache_control), ("ContentDisposition", obj.content_disposition),
                           ("ContentLanguage", obj.content_language)):
        assert got.get(header, "") == wanted, f"{where}: {header} {got.get(header)!r}, expected {wanted!r}"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    assert tags == dict(obj.tags), f"{where}: tags {tags!r}, expected {dict(obj.tags)!r}"


def assert_targets(s3: Any, expected: Mapping[tuple[str, str], Obj], buckets: Iterable[str]) -> None:
    """Exactly the expected objects in ``buckets`` (nothing more, nothing missing), each a true copy."""
    found = {(b, k) for b in buckets for k in list_keys(s3, b)}
    missing = sorted(set(expected) - found)
    extra = sorted(found - set(expected))
    assert not missing and not extra, f"target objects differ: missing {missing[:10]}, unexpected {extra[:10]}"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: assert_copied(s3, item[1], *item[0]), expected.items()))


def incomplete_uploads(s3: Any, buckets: Iterable[str]) -> list[str]:
    """s3://bucket/key#upload-id of every multipart upload still open in ``buckets``."""
    found: list[str] = []
    for bucket in buckets:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            found.extend(f"s3://{bucket}/{u['Key']}#{u['UploadId']}" for u in page.get("Uploads", ()))
    return found


def assert_no_incomplete_uploads(s3: Any, stack: Stack, *target_buckets: str) -> None:
    """No incomplete multipart upload on any target bucket nor in the manifest bucket."""
    left = incomplete_uploads(s3, [*target_buckets, stack.manifest_bucket])
    assert not left, f"incomplete multipart uploads left behind: {left}"


# --- executions ----------------------------------------------------------------------------------------
def execution_name(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def config_document(sources: list[dict[str, Any]] | dict[str, Any], targets: list[dict[str, Any]],
                    **options: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"source_s3_config": sources, "target_s3_config": targets}
    if options:
        config["options"] = options
    return {"s3_copy_config": config}


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    arn: str
    seconds: float


CLI = [sys.executable, "-c", "import sys; from sfncopy.cli import main; sys.argv[0] = 'sfncopy'; main()"]


def cli_command(config_path: Path, name: str) -> list[str]:
    return [*CLI, "start-execution", str(config_path), "--env", ENV, "--name", name, "--wait"]


def start_cli(endpoint: str, stack: Stack, document: Mapping[str, Any], name: str,
              work_dir: Path) -> subprocess.Popen[str]:
    """``sfncopy start-execution CONFIG --env local --name NAME --wait`` in a subprocess (not waited for)."""
    config_path = work_dir / f"{name}.json"
    config_path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return subprocess.Popen(cli_command(config_path, name), cwd=ROOT, env=process_environment(endpoint, stack.spec),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_cli(process: subprocess.Popen[str], stack: Stack, name: str, started: float,
               timeout: float = EXECUTION_TIMEOUT_SECONDS) -> CliRun:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as err:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"sfncopy start-execution {name} did not end in {timeout:.0f} s:\n{stdout}\n{stderr}") from err
    return CliRun(process.returncode, stdout, stderr, stack.execution_arn(name), time.monotonic() - started)


def run_cli(endpoint: str, stack: Stack, document: Mapping[str, Any], name: str, work_dir: Path) -> CliRun:
    """The user's path: start the execution with the CLI and wait for it to end."""
    started = time.monotonic()
    return finish_cli(start_cli(endpoint, stack, document, name, work_dir), stack, name, started)


def start_execution(sfn: Any, stack: Stack, document: Any, name: str) -> str:
    """Straight to the state machine (as a console user would), bypassing the CLI's validation."""
    return str(sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name,
                                   input=document if isinstance(document, str) else json.dumps(document))[
        "executionArn"])


def wait_for(sfn: Any, arn: str, timeout: float = EXECUTION_TIMEOUT_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {arn} still RUNNING after {timeout:.0f} s")
        time.sleep(0.2)


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of the execution's history (paginated)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def failed_task_errors(events: Iterable[dict[str, Any]]) -> list[str]:
    """The error names of the execution's failed Task invocations, in order."""
    names: list[str] = []
    for event in events:
        for details in ("lambdaFunctionFailedEventDetails", "taskFailedEventDetails"):
            if details in event:
                names.append(str(event[details].get("error", "")))
    return names


def largest_state_payload(events: Iterable[dict[str, Any]]) -> int:
    """The largest state input or output (bytes) in the history."""
    largest = 0
    for event in events:
        for details in event.values():
            if isinstance(details, dict):
                for name in ("input", "output"):
                    value = details.get(name)
                    if isinstance(value, str):
                        largest = max(largest, len(value.encode("utf-8")))
    return largest


# --- reports -------------------------------------------------------------------------------------------
def split_uri(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def read_text(s3: Any, uri: str) -> str:
    bucket, key = split_uri(uri)
    return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))


def read_json(s3: Any, uri: str) -> Any:
    return json.loads(read_text(s3, uri))


def read_csv(s3: Any, uri: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(s3, uri), newline="")))


@dataclass(frozen=True)
class Report:
    summary: dict[str, Any]
    rows: list[dict[str, str]]

    def by_source(self) -> dict[str, list[dict[str, str]]]:
        rows: dict[str, list[dict[str, str]]] = {}
        for row in self.rows:
            rows.setdefault(row["source"], []).append(row)
        return rows

    def statuses(self) -> dict[str, str]:
        """target URI (or source URI when the row has no target) -> status; fails on a duplicate row."""
        out: dict[str, str] = {}
        for row in self.rows:
            key = row["target"] or row["source"]
            assert key not in out, f"the report lists {key} twice"
            out[key] = row["status"]
        return out


def read_report(s3: Any, stack: Stack, run_id: str) -> Report:
    prefix = f"s3://{stack.manifest_bucket}/{stack.run_prefix(run_id)}"
    return Report(summary=read_json(s3, prefix + "report.json"), rows=read_csv(s3, prefix + "report.csv"))


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# --- Lambda worker processes and logs -----------------------------------------------------------------
def function_pids(pids: Iterable[int], function_name: str) -> list[int]:
    """The Lambda worker processes (of ``pids``) that run ``function_name`` (read from /proc/PID/environ)."""
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    found: list[int] = []
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            found.append(pid)
    return found


def invocation_logs(log_dir: Path, function_name: str) -> list[str]:
    """Every invocation's log of ``function_name`` (START ... REPORT), oldest first."""
    path = log_dir / f"{function_name}.log"
    if not path.is_file():
        return []
    blocks: list[str] = []
    current: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("START RequestId:"):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("REPORT RequestId:"):
                blocks.append("\n".join(current))
                current = []
    return blocks


def log_records(block: str) -> Iterator[dict[str, Any]]:
    """The JSON log records (lambdas.logs) of one invocation's log."""
    for line in block.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def wait_until(check: Any, timeout: float, interval: float = 0.01, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
