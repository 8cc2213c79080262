"""Start an execution, follow it, and fetch what it wrote: the state machine from the stack's outputs,
status from Step Functions, progress from the run's results files, the report from the manifest bucket.

Clients are passed in (built by the CLI, endpoint from AWS_ENDPOINT_URL as boto3 reads it), so the
same code talks to AWS and to the embedded emulator.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdas import manifest
from lambdas.errors import ConfigError, SfnCopyError
from lambdas.gateway import S3Gateway, error_code
from lambdas.models import CopyConfig, ManifestLocation, PayloadCheckpoint, RunPlan
from sfncopy.progress import (
    PayloadCounts,
    Snapshot,
    Tracker,
    is_worker_map_run,
    payload_counts,
    snapshot,
    worker_lines,
    worker_progress,
)

if TYPE_CHECKING:
    from generator.settings import EnvSettings

POLL_SECONDS = 1.0  # at most one status/progress read a second: cheap on S3 and on the Step Functions API
HISTORY_PAGE = 100
# The workers' Map Runs are read less often: one DescribeMapRun per worker, and Step Functions throttles its API
# per account (developer guide, "Step Functions service quotas", quotas related to API action throttling).
MAP_RUN_POLL_SECONDS = 10.0


class ExecutionError(SfnCopyError):
    """The stack, the execution or its files cannot be found; the message says what to do."""


@dataclass(frozen=True)
class StackOutputs:
    stack_name: str
    state_machine_arn: str
    manifest_bucket: str
    manifest_prefix: str

    def run_location(self, run_id: str) -> ManifestLocation:
        return manifest.run_location(self.manifest_bucket, self.manifest_prefix, run_id)


@dataclass(frozen=True)
class ExecutionStatus:
    arn: str
    name: str
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    started: str
    stopped: str = ""
    output: Any = None  # the parsed execution output (a RunSummary dict when it succeeded)
    error: str = ""
    cause: str = ""

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


# --- stack and state machine -------------------------------------------------------------------------
def stack_outputs(cfn: Any, stack_name: str) -> StackOutputs:
    """The outputs the deployed stack publishes (StateMachineArn, ManifestBucket, ManifestPrefix)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        if error_code(err) == "ValidationError":
            raise ExecutionError(f"stack {stack_name!r} does not exist: deploy it first "
                                 "(scripts/deploy.sh ENV or sfncopy deploy --env ENV)") from err
        raise
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", ())}
    missing = [k for k in ("StateMachineArn", "ManifestBucket") if not outputs.get(k)]
    if missing:
        raise ExecutionError(f"stack {stack_name!r} has no output {', '.join(missing)}: redeploy it with "
                             "this version of sfncopy (status: " + str(stacks[0].get("StackStatus")) + ")")
    prefix = outputs.get("ManifestPrefix", "").lstrip("/")
    return StackOutputs(stack_name=stack_name, state_machine_arn=outputs["StateMachineArn"],
                        manifest_bucket=outputs["ManifestBucket"],
                        manifest_prefix=prefix if not prefix or prefix.endswith("/") else prefix + "/")


def check_buckets_allowed(config: CopyConfig, env: EnvSettings) -> None:
    """The planner refuses buckets the stack may not touch; say so before starting (ConfigError)."""
    from lambdas.config import check_allowed_buckets

    problems = check_allowed_buckets(config, tuple(sorted({s.bucket for s in env.source_buckets})) or ("*",),
                                     tuple(sorted({t.bucket for t in env.target_buckets})) or ("*",))
    if problems:
        raise ConfigError(problems)


def start_execution(sfn: Any, state_machine_arn: str, document: Any, name: str | None) -> str:
    """Start with the user's document as the execution input (``{"s3_copy_config": {...}}``)."""
    kwargs = {"stateMachineArn": state_machine_arn, "input": json.dumps(document), "name": name or default_name()}
    return str(sfn.start_execution(**kwargs)["executionArn"])


def default_name(now: float | None = None) -> str:
    """A readable, unique execution name (and so run id): ``sfncopy-20261122-013000-3f9a1c``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"sfncopy-{stamp}-{secrets.token_hex(3)}"


def check_name(name: str) -> str:
    """An execution name is the run id, so it must be safe in an S3 key (see lambdas.manifest)."""
    try:
        manifest.run_location("bucket", "", name)
    except ValueError as err:
        raise ExecutionError(f"--name: {err}") from err
    return name


def region_of(arn: str) -> str:
    """arn:aws:states:<region>:<account>:execution:<machine>:<name> -> <region>."""
    parts = arn.split(":")
    if len(parts) < 8 or parts[2] != "states" or parts[5] != "execution":
        raise ExecutionError(f"{arn!r} is not an execution ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)")
    return parts[3]


def run_id_of(arn: str) -> str:
    """The run id is the execution name, the last field of its ARN."""
    region_of(arn)
    return arn.rsplit(":", 1)[1]


def describe(sfn: Any, arn: str) -> ExecutionStatus:
    try:
        resp = sfn.describe_execution(executionArn=arn)
    except ClientError as err:
        if error_code(err) in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise ExecutionError(f"execution {arn} does not exist: {error_code(err)} (check the ARN and the "
                                 "region/endpoint)") from err
        raise
    output = resp.get("output")
    return ExecutionStatus(
        arn=arn, name=str(resp.get("name", run_id_of(arn))), status=str(resp["status"]),
        started=_when(resp.get("startDate")), stopped=_when(resp.get("stopDate")),
        output=json.loads(output) if output else None,
        error=str(resp.get("error", "") or ""), cause=str(resp.get("cause", "") or ""))


def _when(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def find_run_location(sfn: Any, arn: str) -> ManifestLocation | None:
    """The run's manifest location from the planner's answer in the execution history (None before
    the planner has answered). Needs no stack or environment: only the execution ARN."""
    for output in _history_outputs(sfn, arn):
        inner = output.get("plan")
        pointer: dict[str, Any] = inner if isinstance(inner, dict) else output
        location = pointer.get("manifest")
        if isinstance(location, dict) and {"bucket", "prefix"} <= set(location) and "workers" in pointer:
            return ManifestLocation.from_dict(location)
    return None


def _history_outputs(sfn: Any, arn: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": HISTORY_PAGE}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page.get("events", ()):
            for details in ("taskSucceededEventDetails", "lambdaFunctionSucceededEventDetails",
                            "stateExitedEventDetails"):
                text = event.get(details, {}).get("output")
                if text:
                    data = json.loads(text)
                    if isinstance(data, dict):
                        yield data
        if not page.get("nextToken"):
            return
        kwargs["nextToken"] = page["nextToken"]


# --- progress ----------------------------------------------------------------------------------------
class RunFiles:
    """Reads a run's plan index and checkpoints, reading a checkpoint's head again only when its ETag
    changed (finished payloads never do) and each result chunk once (chunks never change), so polling a
    large run every second stays cheap: one listing of ``results/`` (the heads), plus what is new."""

    def __init__(self, s3: S3Gateway, location: ManifestLocation) -> None:
        self.s3 = s3
        self.location = location
        self.plan: RunPlan | None = None
        self._checkpoints: dict[str, tuple[str, PayloadCheckpoint]] = {}
        self._chunks: manifest.ChunkCache = {}

    def snapshot(self) -> Snapshot | None:
        """Progress so far; None while the planner has not written the plan yet."""
        loc = self.location
        if self.plan is None:
            data = self.s3.get_json_or_none(loc.bucket, manifest.key(loc, manifest.INDEX))
            if data is None:
                return None
            self.plan = RunPlan.from_dict(data)
        for listed in self.s3.list_objects(loc.bucket, loc.prefix + "results/"):
            payload_id = manifest.results_payload_id(loc, listed.key)
            cached = self._checkpoints.get(listed.key)
            if payload_id is not None and (cached is None or cached[0] != listed.etag):
                checkpoint = manifest.read_checkpoint(self.s3, loc, payload_id, known=self._chunks)
                if checkpoint is not None:
                    self._checkpoints[listed.key] = (listed.etag, checkpoint)
        return snapshot(self.plan, (c for _, c in self._checkpoints.values()))

    def worker_lines(self) -> list[str]:
        """A line per worker, from the checkpoints the last snapshot read (none before the plan is read)."""
        if self.plan is None:
            return []
        return worker_lines(worker_progress(self.plan, (c for _, c in self._checkpoints.values())))


def files_finder(sfn: Any, s3: S3Gateway, arn: str,
                 location: ManifestLocation | None = None) -> Callable[[], RunFiles | None]:
    """A function giving the run's files: at once when the location is known (from the stack's outputs),
    else from the execution history once the planner has answered."""
    found: list[RunFiles] = [RunFiles(s3, location)] if location is not None else []

    def find() -> RunFiles | None:
        if not found:
            where = find_run_location(sfn, arn)
            if where is not None:
                found.append(RunFiles(s3, where))
        return found[0] if found else None

    return find


class MapRuns:
    """The payloads' child executions, counted from the execution's Map Runs (one per worker: ListMapRuns, then
    DescribeMapRun's itemCounts), read at most every ``interval`` seconds; the last counts in between. None
    before the copy starts, or when Step Functions will not tell (no states:ListMapRuns / DescribeMapRun right):
    progress is best effort, the checkpoints in S3 still show the objects."""

    def __init__(self, sfn: Any, arn: str, interval: float = MAP_RUN_POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sfn = sfn
        self.arn = arn
        self.interval = interval
        self.clock = clock
        self._read_at: float | None = None
        self._counts: PayloadCounts | None = None
        self._finished: set[str] = set()  # Map Runs that ended: their counts no longer change
        self._totals: dict[str, PayloadCounts] = {}

    def counts(self, force: bool = False) -> PayloadCounts | None:
        now = self.clock()
        if force or self._read_at is None or now - self._read_at >= self.interval:
            self._read_at = now
            try:
                self._counts = self._read()
            except ClientError:
                self._counts = None
        return self._counts

    def _read(self) -> PayloadCounts | None:
        kwargs: dict[str, Any] = {"executionArn": self.arn}
        runs: list[str] = []
        while True:
            page = self.sfn.list_map_runs(**kwargs)
            runs += [run["mapRunArn"] for run in page.get("mapRuns", ())
                     if is_worker_map_run(run["mapRunArn"])]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        for run in runs:
            if run not in self._finished:
                described = self.sfn.describe_map_run(mapRunArn=run)
                self._totals[run] = payload_counts(described.get("itemCounts", {}))
                if described.get("status") not in (None, "RUNNING"):
                    self._finished.add(run)
        if not self._totals:
            return None
        return sum(self._totals.values(), PayloadCounts())


def follow(sfn: Any, arn: str, files: Callable[[], RunFiles | None], show: Callable[[str], None],
           interval: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep, map_runs: MapRuns | None = None) -> ExecutionStatus:
    """Poll the execution until it ends, calling ``show`` with a progress line after every poll (objects and
    bytes from the checkpoints; payloads from the workers' Map Runs, when ``map_runs`` is given)."""
    tracker = Tracker()
    while True:
        status = describe(sfn, arn)  # first the status, then the files: a finished run shows final numbers
        run = files()
        snap = run.snapshot() if run is not None else None
        if snap is not None:
            payloads = map_runs.counts(force=status.finished) if map_runs is not None else None
            show("\n".join([tracker.line(snap, clock(), payloads), *run.worker_lines()]) if run is not None
                 else tracker.line(snap, clock(), payloads))
        if status.finished:
            return status
        sleep(interval)


# --- reports -----------------------------------------------------------------------------------------
def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ExecutionError(f"{uri!r} is not an s3://BUCKET/KEY location")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def report_uris(status: ExecutionStatus, location: ManifestLocation | None) -> tuple[str, str]:
    """(report.json, report.csv) of a run: from the execution output when it succeeded, else next to
    its plan (a run that failed after the finalizer wrote them) — empty strings when unknown."""
    output = status.output if isinstance(status.output, dict) else {}
    if output.get("report_json"):
        return str(output["report_json"]), str(output.get("report_csv", ""))
    if location is None:
        return "", ""
    return location.uri(manifest.REPORT_JSON), location.uri(manifest.REPORT_CSV)


def read_report(s3: S3Gateway, status: ExecutionStatus, location: ManifestLocation | None) -> dict[str, Any] | None:
    """report.json, or failure.json for a failed run without a report; None when neither exists."""
    json_uri, _ = report_uris(status, location)
    candidates = [json_uri] if json_uri else []
    if location is not None:
        candidates.append(location.uri(manifest.FAILURE))
    for uri in candidates:
        bucket, key = split_uri(uri)
        data = s3.get_json_or_none(bucket, key)
        if isinstance(data, dict):
            return data
    return None


def read_bytes(s3: S3Gateway, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    try:
        body = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if error_code(err) in {"NoSuchKey", "404"}:
            raise ExecutionError(f"{uri} does not exist (the run may not have reached its report)") from err
        raise
    return bytes(body)


# --- clients -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AwsClients:
    cfn: Any
    sfn: Any
    s3: S3Gateway
    lam: Any = None  # Lambda (``sfncopy plan`` reads the account's concurrency)

    @classmethod
    def create(cls, region: str | None = None, environment: Mapping[str, str] | None = None) -> AwsClients:
        """Clients for ``region`` configured by ``environment`` (an env file's AWS_* variables, already
        overridden by the process environment); what it does not set, boto3 reads from the process
        environment as usual (AWS_ENDPOINT_URL, AWS_PROFILE, ...)."""
        env = dict(environment or {})
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=region or env.get("AWS_DEFAULT_REGION"), profile_name=env.get("AWS_PROFILE"))
        s3_endpoint = service_endpoint("S3", env)
        s3_config = Config(retries={"mode": "standard", "max_attempts": 10},
                           s3={"addressing_style": "path"} if s3_endpoint or os.environ.get("AWS_ENDPOINT_URL")
                           else {})
        return cls(cfn=session.client("cloudformation", endpoint_url=service_endpoint("CLOUDFORMATION", env)),
                   sfn=session.client("stepfunctions", endpoint_url=service_endpoint("SFN", env)),
                   s3=S3Gateway(session.client("s3", endpoint_url=s3_endpoint, config=s3_config)),
                   lam=session.client("lambda", endpoint_url=service_endpoint("LAMBDA", env)))


def service_endpoint(service: str, environment: Mapping[str, str]) -> str | None:
    """The endpoint of one service, as the SDKs choose it (``AWS_ENDPOINT_URL_<SERVICE ID>`` before
    ``AWS_ENDPOINT_URL``), with the process environment before the env file. None: boto3 decides (its
    own reading of the process environment and config, else the real AWS endpoint)."""
    name = f"AWS_ENDPOINT_URL_{service}"
    return (os.environ.get(name) or environment.get(name) or environment.get("AWS_ENDPOINT_URL")) or None
