"""The W1 contenders: each is a list of commands run one after another against the shared local S3.

The runner resets the target buckets, snapshots the emulator's S3 request counters, runs the commands
(each with a time limit), snapshots again, then verifies every target (keys, sizes and sampled bytes)
so a fast-but-wrong run cannot win. Only the commands are timed; setup (the sfncopy deployment) is not.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import baseline2018, requests, workloads
from bench.workloads import Workload
from lambdas import limits

REPO = Path(__file__).resolve().parent.parent
RCLONE_REMOTE = "bench"
SAMPLED_OBJECTS = 24
_RUN_NUMBERS = itertools.count(1)  # objects whose bytes are compared, besides every key and size


# What the sfncopy contender deploys besides envs/local-env.sh: lambdas/limits.py's production defaults.
SFNCOPY_SETTINGS = {
    "copy_cutoff_mb": str(limits.DEFAULT_COPY_CUTOFF // limits.MiB),
    "part_size_mb": str(limits.DEFAULT_PART_SIZE // limits.MiB),
    "max_payload_size_per_lambda_execution_in_mb": str(limits.DEFAULT_MAX_PAYLOAD_SIZE_MB),
    "max_objects_per_payload": str(limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD),
    "worker_threads": str(limits.DEFAULT_WORKER_THREADS),
    "worker_timeout_seconds": str(limits.MAX_LAMBDA_TIMEOUT_SECONDS),
}


@dataclass
class Context:
    workload: Workload
    endpoint: str
    workdir: Path
    timeout: float  # seconds for one contender's commands, all together
    workers: int = 4
    env_name: str = "local"

    def env(self) -> dict[str, str]:
        """The environment of every contender's processes: the local endpoint, dummy keys, path style."""
        env = {k: v for k, v in os.environ.items()
               if k not in {"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"}}
        config_file = self.workdir / "aws-config"
        config_file.write_text("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n", encoding="utf-8")
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-credentials"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
            # rclone: an S3 remote named "bench" from the environment (NOTES.md: provider Other, path style;
            # AWS_CA_BUNDLE is unset above, rclone refuses it on plain HTTP).
            "RCLONE_CONFIG": str(self.workdir / "rclone.conf"),
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_TYPE": "s3",
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_ENDPOINT": self.endpoint,
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_ACCESS_KEY_ID": "testing",
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_SECRET_ACCESS_KEY": "testing",
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_REGION": "us-east-1",
            f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_FORCE_PATH_STYLE": "true",
        })
        (self.workdir / "rclone.conf").touch()
        return env


@dataclass
class Outcome:
    name: str
    status: str  # ok | wrong | failed | unavailable
    seconds: float | None = None  # the median of ``runs``
    runs: list[float] = field(default_factory=list)  # wall seconds of each verified run
    setup_seconds: float | None = None
    detail: str = ""
    commands: list[str] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, float]] = field(default_factory=list)  # sfncopy: seconds per top-level state

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Contender:
    """A named list of commands; ``unavailable`` says why it cannot run here ("" when it can)."""

    name = ""

    def unavailable(self, ctx: Context) -> str:
        return ""

    def setup(self, ctx: Context) -> list[list[str]]:
        return []

    def commands(self, ctx: Context) -> list[list[str]]:
        raise NotImplementedError


class Rclone(Contender):
    """``rclone copy`` with include filters, one invocation per target (server-side copy: same remote)."""

    name = "rclone"

    def unavailable(self, ctx: Context) -> str:
        return "" if shutil.which("rclone") else "rclone is not installed (./scripts/bench.sh installs it)"

    def commands(self, ctx: Context) -> list[list[str]]:
        w = ctx.workload
        source = f"{RCLONE_REMOTE}:{w.source_bucket}/{w.source_prefix.rstrip('/')}"
        return [["rclone", "copy", source, f"{RCLONE_REMOTE}:{t.bucket}/{t.prefix.rstrip('/')}",
                 *[arg for ext in t.file_types for arg in ("--include", f"*.{ext}")]]
                for t in w.targets]


class AwsCli(Contender):
    """``aws s3 cp --recursive`` with ``--exclude "*" --include "*.<type>"``, one invocation per target."""

    name = "aws-cli"

    def unavailable(self, ctx: Context) -> str:
        return "" if _tool("aws") else "the AWS CLI is not installed (it is a dev dependency: pipenv sync --dev)"

    def commands(self, ctx: Context) -> list[list[str]]:
        w = ctx.workload
        return [[_tool("aws"), "s3", "cp", f"s3://{w.source_bucket}/{w.source_prefix}", f"s3://{t.bucket}/{t.prefix}",
                 "--recursive", "--only-show-errors", "--exclude", "*",
                 *[arg for ext in t.file_types for arg in ("--include", f"*.{ext}")]]
                for t in w.targets]


class Baseline2018(Contender):
    """The 2018 design from its description (bench/baseline2018.py), N threads for the N Lambdas."""

    name = "baseline-2018"

    def commands(self, ctx: Context) -> list[list[str]]:
        w = ctx.workload
        spec = baseline2018.spec_for(w.source_bucket, w.source_prefix,
                                     [(t.bucket, t.prefix, t.file_types) for t in w.targets], ctx.workers)
        path = ctx.workdir / "baseline2018-spec.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        return [[sys.executable, "-m", "bench.baseline2018", "--spec", str(path)]]


class Sfncopy(Contender):
    """sfncopy end to end: deploy the local stack with N workers (setup), then ``start-execution --wait``."""

    name = "sfncopy"
    last_execution = ""

    def unavailable(self, ctx: Context) -> str:
        missing = [what for what, ok in (
            ("the CLI (sfncopy/cli.py)", (REPO / "sfncopy" / "cli.py").is_file()),
            ("the deployer (sfncopy/deploy.py)", (REPO / "sfncopy" / "deploy.py").is_file()),
            (f"envs/{ctx.env_name}-env.sh", (REPO / "envs" / f"{ctx.env_name}-env.sh").is_file()),
            ("the planner (lambdas/planner.py)", (REPO / "lambdas" / "planner.py").is_file()),
        ) if not ok]
        return "not built yet: " + ", ".join(missing) if missing else ""

    def setup(self, ctx: Context) -> list[list[str]]:
        return [[sys.executable, "-m", "sfncopy", "deploy", "--env", ctx.env_name]]

    def commands(self, ctx: Context) -> list[list[str]]:
        path = ctx.workdir / "w1-config.json"
        path.write_text(json.dumps(workloads.copy_config(ctx.workload), indent=2), encoding="utf-8")
        # A fresh execution name every run: moto names an unnamed execution "None", and a second start
        # with the same name and input would return the first execution instead of copying again.
        name = f"bench-w1-{time.strftime('%Y%m%dT%H%M%S')}-{next(_RUN_NUMBERS)}"
        self.last_execution = name
        return [[*_sfncopy_cli(), "start-execution", str(path), "--env", ctx.env_name, "--name", name, "--wait"]]

    def extra_env(self, ctx: Context) -> dict[str, str]:
        """The env file's settings, overridden from the process environment (generator/settings.py reads
        it that way): N workers, this workload's buckets, and production defaults instead of local-env.sh's
        demo caps (16 MB copy cutoff, 5 MiB parts), which exist to exercise multipart on tiny objects."""
        # Narrowed to the workload's prefixes, as production env files narrow them (the emulator enforces IAM).
        source = f"{ctx.workload.source_bucket}/{ctx.workload.source_prefix}" if ctx.workload.source_prefix \
            else ctx.workload.source_bucket
        targets = sorted({f"{t.bucket}/{t.prefix}" if t.prefix else t.bucket for t in ctx.workload.targets})
        return {"num_copy_lambda_workers": str(ctx.workers), "source_buckets": source,
                "target_buckets": " ".join(targets), **SFNCOPY_SETTINGS}


    def phases(self, ctx: Context) -> dict[str, float]:
        """Seconds spent in each top-level state of the last execution (Plan, CopyAll, Finalize, ...),
        from its Step Functions history: where the orchestration's time goes."""
        import boto3

        sfn = boto3.session.Session().client("stepfunctions", endpoint_url=ctx.endpoint, region_name="us-east-1",
                                             aws_access_key_id="testing", aws_secret_access_key="testing")
        machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"])
        arn = machine.replace(":stateMachine:", ":execution:") + ":" + self.last_execution
        events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                  for e in page["events"]]
        return state_durations(events)


def state_durations(events: list[dict[str, Any]]) -> dict[str, float]:
    """Top-level states' durations: from each "...StateEntered" to its "...StateExited" at depth 0
    (states inside Parallel branches and Map iterations are nested deeper and not counted)."""
    durations: dict[str, float] = {}
    entered: dict[str, Any] = {}
    depth = 0
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            if depth == 0:
                entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
            depth += 1
        elif kind.endswith("StateExited"):
            depth -= 1
            name = event["stateExitedEventDetails"]["name"]
            if depth == 0 and name in entered:
                seconds = (event["timestamp"] - entered.pop(name)).total_seconds()
                durations[name] = round(durations.get(name, 0.0) + seconds, 3)
    if events:
        durations["execution"] = round((events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds(), 3)
    return durations


def _tool(name: str) -> str:
    """A tool from this interpreter's venv first (the AWS CLI is a dev dependency), then the PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or "")


def _sfncopy_cli() -> list[str]:
    """The ``sfncopy`` console script, or the same entry point (pyproject: sfncopy.cli:main) without it."""
    script = _tool("sfncopy")
    return [script] if script else [sys.executable, "-c", "from sfncopy.cli import main; main()"]


def all_contenders() -> list[Contender]:
    return [Sfncopy(), Rclone(), AwsCli(), Baseline2018()]


# --- running one contender ---------------------------------------------------------------------------
def run_commands(commands: Sequence[list[str]], env: dict[str, str], timeout: float, log: Path) -> tuple[float, str]:
    """Run the commands one after another; (seconds, error or "")."""
    started = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        for command in commands:
            left = timeout - (time.monotonic() - started)
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            try:
                done = subprocess.run(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=max(1.0, left), check=False)
            except subprocess.TimeoutExpired:
                return time.monotonic() - started, f"timed out after {timeout:.0f} s: {' '.join(command)}"
            if done.returncode != 0:
                return time.monotonic() - started, f"exit {done.returncode}: {' '.join(command)} (log: {log})"
    return time.monotonic() - started, ""


def reset_targets(client: Any, workload: Workload) -> None:
    """Empty every target bucket (objects and unfinished uploads), creating it when missing."""
    for target in workload.targets:
        ensure_bucket(client, target.bucket)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=target.bucket, Delete={"Objects": keys, "Quiet": True})
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=target.bucket):
            for upload in page.get("Uploads", ()):
                client.abort_multipart_upload(Bucket=target.bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def ensure_bucket(client: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def list_sizes(client: Any, bucket: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        sizes.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", ())})
    return sizes


def compare(expected: dict[str, dict[str, int]], actual: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per target: objects and bytes expected and found, and the keys missing, extra or of the wrong size."""
    targets = {}
    ok = True
    for bucket, want in expected.items():
        got = actual.get(bucket, {})
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        ok = ok and not (missing or extra or wrong)
        targets[bucket] = {"expected_objects": len(want), "expected_bytes": sum(want.values()),
                           "objects": len(got), "bytes": sum(got.values()),
                           "missing": missing[:5], "extra": extra[:5], "wrong_size": wrong[:5]}
    return {"ok": ok, "targets": targets}


def sample_bytes(client: Any, workload: Workload, count: int = SAMPLED_OBJECTS) -> list[str]:
    """Compare the bytes of a few copied objects (and the tail of the largest) with what was uploaded."""
    block = workloads.pattern_block()
    pairs = workloads.routed(workload)
    rng = random.Random(len(pairs))
    small = [p for p in pairs if p[0].size <= workloads.SMALL_MAX]
    chosen = rng.sample(small, min(count, len(small)))
    problems = []
    for obj, target in chosen:
        key = workloads.target_key(workload, target, obj.key)
        body = client.get_object(Bucket=target.bucket, Key=key)["Body"].read()
        if body != workloads.object_body(obj, block):
            problems.append(f"s3://{target.bucket}/{key}: bytes differ")
    big = max(pairs, key=lambda p: p[0].size)
    tail = 1024 * 1024
    key = workloads.target_key(workload, big[1], big[0].key)
    got = client.get_object(Bucket=big[1].bucket, Key=key, Range=f"bytes={big[0].size - tail}-")["Body"].read()
    if got != workloads.object_body(big[0], block)[-tail:]:
        problems.append(f"s3://{big[1].bucket}/{key}: last MiB differs")
    return problems


def verify(client: Any, workload: Workload) -> dict[str, Any]:
    expected = workloads.expected_targets(workload)
    result = compare(expected, {bucket: list_sizes(client, bucket) for bucket in expected})
    if result["ok"]:
        result["sampled_problems"] = sample_bytes(client, workload)
        result["ok"] = not result["sampled_problems"]
    return result


def contender_env(contender: Contender, ctx: Context) -> dict[str, str]:
    env = ctx.env()
    if isinstance(contender, Sfncopy):
        env.update(contender.extra_env(ctx))
    return env


def prepare(contender: Contender, ctx: Context) -> Outcome:
    """Check availability and run the (untimed) setup; the outcome says "ok" when runs may start."""
    outcome = Outcome(contender.name, "unavailable")
    reason = contender.unavailable(ctx)
    if reason:
        outcome.detail = reason
        return outcome
    setup = contender.setup(ctx)
    if setup:
        log = ctx.workdir / f"{contender.name}.log"
        outcome.setup_seconds, error = run_commands(setup, contender_env(contender, ctx), ctx.timeout, log)
        if error:
            outcome.status, outcome.detail = "failed", f"setup: {error}"
            return outcome
    outcome.status = "ok"
    return outcome


def run_once(contender: Contender, outcome: Outcome, ctx: Context, client: Any,
             counts: Callable[[], dict[str, int]]) -> None:
    """One timed, counted and verified run on empty targets; updates ``outcome`` (the first run's
    requests are kept; a later failure or wrong result marks the whole contender)."""
    reset_targets(client, ctx.workload)
    commands = contender.commands(ctx)
    outcome.commands = [" ".join(c) for c in commands]
    before = counts()
    seconds, error = run_commands(commands, contender_env(contender, ctx), ctx.timeout,
                                  ctx.workdir / f"{contender.name}.log")
    made = requests.diff(before, counts())
    if isinstance(contender, Sfncopy) and not error:
        outcome.phases.append(contender.phases(ctx))
    if not outcome.requests:
        copies = len(workloads.routed(ctx.workload))
        minimum = requests.minimum_requests(o.size for o, _ in workloads.routed(ctx.workload))
        outcome.requests = requests.breakdown(made, copies, minimum)
    outcome.verify = verify(client, ctx.workload)
    if error:
        outcome.status, outcome.detail = "failed", error
    elif not outcome.verify["ok"]:
        outcome.status, outcome.detail = "wrong", "the targets do not match the source (see verify)"
    else:
        outcome.runs.append(round(seconds, 3))
        outcome.seconds = round(statistics.median(outcome.runs), 3)
