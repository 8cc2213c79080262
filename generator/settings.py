"""An environment's deployment settings: read from ``envs/<env>-env.sh``, typed and validated once.

The file holds ``export name=value`` lines only (no logic, no secrets). It stays valid shell so a user
can ``source`` it, but we parse it here and never run it. Lower-case names are sfncopy settings; upper-case
``AWS_*`` names configure the AWS clients (``local-env.sh`` points them at the embedded emulator).

``schedule_<name>`` lines are the env's schedules, any number of them (generator/schedules.py checks each).

Precedence: a variable of the same name in the process environment beats the file (so a test or a CI job
can point ``AWS_ENDPOINT_URL`` elsewhere, or try ``num_copy_lambda_workers=8``, without editing it).
Every problem is reported at once, each naming the variable and where its value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from generator import schedules as schedules_module
from generator.schedules import Schedule
from lambdas import limits
from lambdas.config import OBJECT_ACLS
from lambdas.errors import SettingsError

# --- bounds (each named once, with its reason) ---------------------------------------------------------
# Each Parallel branch is a Distributed Map of ~1.3 KB of definition (500 make ~0.7 MB of the 1 MB a definition
# may have) and opens one Map Run while the run copies, of the 1,000 an account may have open at once
# (lambdas/limits.py, MAX_OPEN_MAP_RUNS): 500 leaves room for a second run. More parallelism comes from
# worker_concurrency (payloads per worker at once), which costs neither.
MAX_WORKERS = 500
# A worker's Distributed Map runs at most this many payloads at once (MaxConcurrency; AWS's own ceiling).
MAX_WORKER_CONCURRENCY = limits.MAX_MAP_CONCURRENCY
# CloudFormation stack names are letters, digits and "-"; ours also prefixes the function names
# ("<stack>-finalizer" must fit Lambda's 64 characters).
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,53}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# S3 bucket naming rules: 3-63 lower-case letters, digits, "." and "-", starting and ending with a letter or
# digit, no "..", not an IP address.
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
MIN_PAYLOAD_SIZE_MB = limits.MIN_PART_SIZE // limits.MiB  # a payload must hold at least one part
MAX_PART_SIZE_MB = limits.MAX_PART_SIZE // limits.MiB
MAX_COPY_CUTOFF_MB = limits.MAX_COPY_OBJECT_SIZE // limits.MiB
MAX_WORKER_THREADS = 256
MANIFEST_CREATE = "create"  # manifest_bucket=create: the stack creates (and owns) the manifest bucket
PLANNING_SINGLE = "single"
PLANNING_SHARDED = "sharded"
PLANNING_MODES = (PLANNING_SINGLE, PLANNING_SHARDED)
# The partition cuts at most this many shards (lambdas/sharding/partition.py, PartitionParams.max_shards).
MAX_PLANNER_SHARDS = 10_000
# Shards planned at once by the PlanShards Distributed Map (its MaxConcurrency): each is one Lambda invocation
# listing its key range; 100 keeps a run well inside the default 1,000 concurrent executions of an account (Lambda
# developer guide, "Lambda quotas", Concurrent executions).
DEFAULT_SHARD_CONCURRENCY = 100
# notification_topic=create: the stack creates the SNS topic that receives each run's summary.
NOTIFICATION_CREATE = "create"
# SNS topic ARN (Amazon SNS API reference, CreateTopic, Name: 1-256 letters, digits, "-" and "_"; a FIFO
# topic's name ends in ".fifo", which sfncopy does not publish to: it sends no MessageGroupId).
SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")

# Optional settings and their defaults. Everything else is required: no silent defaults.
DEFAULTS: dict[str, str] = {
    "manifest_prefix": "",
    "kms_key_arns": "",
    "max_objects_per_payload": str(limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD),
    "worker_threads": str(limits.DEFAULT_WORKER_THREADS),
    "copy_cutoff_mb": "",
    "part_size_mb": "",
    "log_retention_days": "30",
    "object_acl": "",  # a canned ACL (OBJECT_ACLS) the roles may set: grants s3:PutObjectAcl for it alone
    # Payloads each worker copies at once (its Distributed Map's MaxConcurrency): 1 keeps a worker's payloads
    # one after another, in plan order. `sfncopy plan` checks workers x this against the account's Lambda
    # concurrency.
    "worker_concurrency": "1",
    # How the Plan stage runs: "single" (one planner task) or "sharded" (prepare, a Distributed Map of shard
    # planners, collect hand-ons, assemble: lambdas/sharding/). The two shard settings apply to "sharded" only.
    "planning": PLANNING_SINGLE,
    "planner_shards": "",  # wanted shard count; "" lets the partition estimate it from the sources
    "planner_shard_concurrency": str(DEFAULT_SHARD_CONCURRENCY),
    # Run summaries on success and failure: "" (none), "create" (the stack's own topic) or a topic ARN.
    "notification_topic": "",
}
REQUIRED = (
    "stack_name", "region", "num_copy_lambda_workers", "max_payload_size_per_lambda_execution_in_mb",
    "source_buckets", "target_buckets", "package_bucket", "manifest_bucket",
    "worker_memory_mb", "worker_timeout_seconds", "planner_memory_mb", "planner_timeout_seconds",
    "finalizer_memory_mb", "finalizer_timeout_seconds",
)
KNOWN = frozenset(REQUIRED) | frozenset(DEFAULTS)
# Upper-case names an env file may set for the AWS clients (the endpoint and the emulator's dummy keys).
CLIENT_VARIABLES = frozenset({
    "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE",
})

_EXPORT = re.compile(r"^export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# Characters the shell would treat specially in an unquoted value: refused, so shell and Python agree.
_SHELL_SPECIAL = re.compile(r"[\s$`\\\"';&|<>()#*?\[\]~{}]")


class EnvSettingsError(SettingsError):
    """One or more settings of an env file are bad; ``problems`` names each variable and the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {path}"
        super().__init__(head + ": " + "; ".join(self.problems))


@dataclass(frozen=True)
class BucketScope:
    """A bucket the stack may touch, optionally narrowed to a prefix ("" = the whole bucket)."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class EnvSettings:
    """Everything the template and the deployment of one environment depend on."""

    env: str
    path: Path  # the env file, for messages
    stack_name: str
    region: str
    workers: int
    max_payload_size_mb: int
    max_objects_per_payload: int
    source_buckets: tuple[BucketScope, ...]
    target_buckets: tuple[BucketScope, ...]
    package_bucket: str
    manifest_bucket: str | None  # None: the stack creates it
    manifest_prefix: str  # "" or ending in "/"
    kms_key_arns: tuple[str, ...]
    planner: FunctionSettings
    worker: FunctionSettings
    finalizer: FunctionSettings  # also sizes the cleanup function (same kind of work: listing and aborting)
    worker_threads: int
    copy_cutoff_mb: int | None
    part_size_mb: int | None
    log_retention_days: int
    # The canned ACL the planner and worker may set on what they write (s3:PutObjectAcl conditioned on it);
    # "" for none. A config's options.acl must be this one (the planner checks).
    object_acl: str = field(default="")
    # Payloads each worker copies at once (the Distributed Map's MaxConcurrency).
    worker_concurrency: int = field(default=1)
    # The Plan stage: PLANNING_SINGLE or PLANNING_SHARDED; with the latter, the wanted shard count (None: the
    # partition estimates it) and the shards planned at once.
    planning: str = field(default=PLANNING_SINGLE)
    planner_shards: int | None = field(default=None)
    planner_shard_concurrency: int = field(default=DEFAULT_SHARD_CONCURRENCY)
    # EventBridge Scheduler schedules that start runs of stored configs (schedule_<name> lines), by name.
    schedules: tuple[Schedule, ...] = field(default=())
    # "" (no notifications), NOTIFICATION_CREATE, or an existing SNS topic's ARN.
    notification_topic: str = field(default="")
    # AWS_* variables for the clients (file values, overridden by the process environment), sorted.
    client_environment: tuple[tuple[str, str], ...] = field(default=())
    # sfncopy settings whose value came from the process environment, not the file (sorted names): the
    # template then differs from the committed cfn/<env>.json, which must not be overwritten with it.
    overrides: tuple[str, ...] = field(default=())

    @property
    def sharded(self) -> bool:
        return self.planning == PLANNING_SHARDED

    @property
    def notifications(self) -> bool:
        return bool(self.notification_topic)

    @property
    def creates_topic(self) -> bool:
        return self.notification_topic == NOTIFICATION_CREATE

    @property
    def endpoint_url(self) -> str | None:
        return dict(self.client_environment).get("AWS_ENDPOINT_URL") or None

    @property
    def deadline_margin_seconds(self) -> int:
        """The worker stops taking work this long before its timeout: 60 s, or a fifth of short timeouts."""
        return max(1, min(int(limits.DEFAULT_DEADLINE_MARGIN_SECONDS), self.worker.timeout_seconds // 5))

    def with_workers(self, workers: int) -> EnvSettings:
        """The same settings with another worker count (``sfncopy generate --workers N``)."""
        if not 1 <= workers <= MAX_WORKERS:
            raise EnvSettingsError(self.path, [
                f"num_copy_lambda_workers={workers} (from --workers) must be a whole number from 1 to {MAX_WORKERS}"])
        return replace(self, workers=workers, overrides=tuple(sorted({*self.overrides, "num_copy_lambda_workers"})))


def env_path(name: str, envs_dir: Path = Path("envs")) -> Path:
    return envs_dir / f"{name}-env.sh"


def load_env(name: str, envs_dir: Path = Path("envs"), environ: Mapping[str, str] | None = None) -> EnvSettings:
    """Read, merge (process environment beats file) and validate ``envs/<name>-env.sh``."""
    path = env_path(name, envs_dir)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise SettingsError(f"environment name {name!r} must be lower-case letters, digits, '-' or '_' "
                            f"(one of {', '.join(available_envs(envs_dir)) or 'none found'})")
    if not path.is_file():
        known = ", ".join(available_envs(envs_dir)) or "none"
        raise SettingsError(f"unknown environment {name!r}: {path} does not exist (known: {known})")
    values, problems = parse_env_file(path.read_text(encoding="utf-8"), path)
    process = os.environ if environ is None else environ
    origins = {k: str(path) for k in values}
    for key in sorted(KNOWN | CLIENT_VARIABLES | {k for k in process if is_schedule_variable(k)}):
        if key in process:
            values[key] = process[key]
            origins[key] = f"the process environment (overriding {path})"
    if problems:
        raise EnvSettingsError(path, problems)
    settings = _validate(name, path, values, origins)
    overridden = {k for k in process if k in KNOWN or is_schedule_variable(k)}
    return replace(settings, overrides=tuple(sorted(overridden)))


def is_schedule_variable(name: str) -> bool:
    """``schedule_<name>``: one schedule of the env (generator/schedules.py)."""
    return name.startswith(schedules_module.VARIABLE_PREFIX) and len(name) > len(schedules_module.VARIABLE_PREFIX)


def available_envs(envs_dir: Path = Path("envs")) -> list[str]:
    return sorted(p.name.removesuffix("-env.sh") for p in envs_dir.glob("*-env.sh"))


def parse_env_file(text: str, path: Path) -> tuple[dict[str, str], list[str]]:
    """``export name=value`` lines, blank lines and ``#`` comments; anything else is a problem."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        match = _EXPORT.match(line)
        if not match:
            problems.append(f"{where}: expected 'export name=value', got {line!r} (env files hold no logic)")
            continue
        name, value = match.group(1), _unquote(match.group(2))
        if value is None:
            problems.append(f"{where}: {name}: quote values with spaces in double quotes; no '$', backticks, "
                            "backslashes or trailing comments (env files hold no logic)")
            continue
        if name not in KNOWN and name not in CLIENT_VARIABLES and not is_schedule_variable(name):
            problems.append(f"{where}: unknown variable {name!r} (known: {', '.join(sorted(KNOWN))}, "
                            f"{', '.join(sorted(CLIENT_VARIABLES))}, "
                            f"{schedules_module.VARIABLE_PREFIX}<name>)")
            continue
        if name in values:
            problems.append(f"{where}: {name} is set twice")
        values[name] = value
    return values, problems


def _unquote(raw: str) -> str | None:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        inner = raw[1:-1]
        return None if "'" in inner else inner
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1]
        return None if re.search(r'["$`\\]', inner) else inner
    return None if _SHELL_SPECIAL.search(raw) else raw


# --- validation ------------------------------------------------------------------------------------------
class _Checker:
    """Reads typed values and collects every problem, each naming the variable and its origin."""

    def __init__(self, values: dict[str, str], origins: dict[str, str], path: Path) -> None:
        self.values = values
        self.origins = origins
        self.path = path
        self.problems: list[str] = []

    def fail(self, name: str, message: str) -> None:
        value = self.values.get(name, "")
        self.problems.append(f"{name}={value!r} (from {self.origins.get(name, self.path)}): {message}")

    def text(self, name: str) -> str:
        value = self.values.get(name, DEFAULTS.get(name, "")).strip()
        if name in REQUIRED and not value:
            self.problems.append(f"{name} is not set: add 'export {name}=...' to {self.path}")
        return value

    def integer(self, name: str, low: int, high: int, unit: str = "") -> int:
        raw = self.text(name)
        if not raw:
            return low
        if not re.fullmatch(r"\d+", raw):
            self.fail(name, f"expected a whole number{unit}")
            return low
        value = int(raw)
        if not low <= value <= high:
            self.fail(name, f"must be from {low} to {high}{unit}")
        return value

    def optional_integer(self, name: str, low: int, high: int, unit: str = "") -> int | None:
        return self.integer(name, low, high, unit) if self.text(name) else None

    def bucket(self, name: str, value: str) -> bool:
        if BUCKET.match(value) and ".." not in value and not IP_ADDRESS.match(value):
            return True
        self.fail(name, f"{value!r} is not a valid S3 bucket name (3-63 lower-case letters, digits, '.' "
                        "and '-', starting and ending with a letter or digit)")
        return False

    def scopes(self, name: str) -> tuple[BucketScope, ...]:
        entries = self.text(name).split()
        scopes: set[BucketScope] = set()
        for entry in entries:
            bucket, _, prefix = entry.partition("/")
            if prefix and not prefix.endswith("/"):
                self.fail(name, f"{entry!r}: a prefix must end in '/' (write {entry}/)")
            elif self.bucket(name, bucket):
                scopes.add(BucketScope(bucket, prefix))
        return tuple(sorted(scopes, key=lambda s: (s.bucket, s.prefix)))


def _validate(env: str, path: Path, values: dict[str, str], origins: dict[str, str]) -> EnvSettings:
    check = _Checker(values, origins, path)
    stack_name = check.text("stack_name")
    if stack_name and not STACK_NAME.match(stack_name):
        check.fail("stack_name", "must start with a letter and hold 1-54 letters, digits or '-'")
    region = check.text("region")
    if region and not REGION.match(region):
        check.fail("region", "expected an AWS region such as us-east-1")
    package_bucket = check.text("package_bucket")
    if package_bucket:
        check.bucket("package_bucket", package_bucket)
    manifest_bucket = check.text("manifest_bucket")
    if manifest_bucket and manifest_bucket != MANIFEST_CREATE:
        check.bucket("manifest_bucket", manifest_bucket)
    manifest_prefix = check.text("manifest_prefix").lstrip("/")
    if manifest_prefix and not manifest_prefix.endswith("/"):
        manifest_prefix += "/"
    kms = tuple(sorted(set(check.text("kms_key_arns").split())))
    for arn in kms:
        if not KMS_KEY_ARN.match(arn):
            check.fail("kms_key_arns", f"{arn!r} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID; "
                                       "aliases cannot scope IAM rights)")
    max_lambda = limits.MAX_LAMBDA_TIMEOUT_SECONDS
    memory = (limits.MIN_LAMBDA_MEMORY_MB, limits.MAX_LAMBDA_MEMORY_MB)
    functions = {
        role: FunctionSettings(
            memory_mb=check.integer(f"{role}_memory_mb", *memory, unit=" MB"),
            timeout_seconds=check.integer(f"{role}_timeout_seconds", 1, max_lambda, unit=" seconds (Lambda's limit)"),
        )
        for role in ("planner", "worker", "finalizer")
    }
    object_acl = check.text("object_acl")
    if object_acl and object_acl not in OBJECT_ACLS:
        check.fail("object_acl", f"expected one of {', '.join(OBJECT_ACLS)} (the canned ACLs that give a target "
                                 "bucket's owner access to the copies), or nothing")
    planning = check.text("planning")
    if planning not in PLANNING_MODES:
        check.fail("planning", f"expected one of {', '.join(PLANNING_MODES)}")
    planner_shards = check.optional_integer("planner_shards", 1, MAX_PLANNER_SHARDS,
                                            unit=" shards (the partition's limit)")
    shard_concurrency = check.integer("planner_shard_concurrency", 1, MAX_WORKER_CONCURRENCY,
                                      unit=" shards at once (a Distributed Map's limit)")
    if planning != PLANNING_SHARDED:
        for name in ("planner_shards", "planner_shard_concurrency"):
            if name in values:
                check.fail(name, f"applies to planning={PLANNING_SHARDED} only (planning is {planning!r})")
    topic = check.text("notification_topic")
    if topic and topic != NOTIFICATION_CREATE and not SNS_TOPIC_ARN.match(topic):
        check.fail("notification_topic", f"expected {NOTIFICATION_CREATE!r} (the stack creates the topic) or an "
                                         "SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME; not a FIFO topic)")
    schedules = _schedules(check, stack_name)
    retention = check.integer("log_retention_days", 1, 3653, unit=" days")
    if retention not in LOG_RETENTION_DAYS:
        check.fail("log_retention_days", f"CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION_DAYS))}")
    settings = EnvSettings(
        env=env,
        path=path,
        stack_name=stack_name,
        region=region,
        workers=check.integer("num_copy_lambda_workers", 1, MAX_WORKERS),
        max_payload_size_mb=check.integer("max_payload_size_per_lambda_execution_in_mb", MIN_PAYLOAD_SIZE_MB,
                                          10 * 1024 * 1024, unit=" MiB (a payload holds at least one 5 MiB part)"),
        max_objects_per_payload=check.integer("max_objects_per_payload", 1, 1_000_000),
        source_buckets=check.scopes("source_buckets"),
        target_buckets=check.scopes("target_buckets"),
        package_bucket=package_bucket,
        manifest_bucket=None if manifest_bucket == MANIFEST_CREATE else manifest_bucket,
        manifest_prefix=manifest_prefix,
        kms_key_arns=kms,
        planner=functions["planner"],
        worker=functions["worker"],
        finalizer=functions["finalizer"],
        worker_threads=check.integer("worker_threads", 1, MAX_WORKER_THREADS),
        copy_cutoff_mb=check.optional_integer("copy_cutoff_mb", MIN_PAYLOAD_SIZE_MB, MAX_COPY_CUTOFF_MB, " MiB"),
        part_size_mb=check.optional_integer("part_size_mb", MIN_PAYLOAD_SIZE_MB, MAX_PART_SIZE_MB, " MiB"),
        log_retention_days=retention,
        object_acl=object_acl if object_acl in OBJECT_ACLS else "",
        worker_concurrency=check.integer("worker_concurrency", 1, MAX_WORKER_CONCURRENCY,
                                         unit=" payloads at once (a Distributed Map runs at most "
                                              f"{MAX_WORKER_CONCURRENCY:,} children in parallel)"),
        planning=planning if planning in PLANNING_MODES else PLANNING_SINGLE,
        planner_shards=planner_shards,
        planner_shard_concurrency=shard_concurrency,
        schedules=schedules,
        notification_topic=topic,
        client_environment=tuple(sorted((k, v) for k, v in values.items() if k in CLIENT_VARIABLES)),
    )
    if check.problems:
        raise EnvSettingsError(path, check.problems)
    return settings


def _schedules(check: _Checker, stack_name: str) -> tuple[Schedule, ...]:
    """The ``schedule_<name>`` settings, sorted by name; each bad one reported with its variable."""
    found: list[Schedule] = []
    for variable in sorted(k for k in check.values if is_schedule_variable(k)):
        name = variable.removeprefix(schedules_module.VARIABLE_PREFIX)
        schedule, problems = schedules_module.parse_schedule(name, check.values[variable])
        for problem in problems:
            check.fail(variable, problem)
        if schedule is None:
            continue
        aws_name = schedule.aws_name(stack_name)
        if len(aws_name) > schedules_module.MAX_SCHEDULE_NAME_LENGTH:
            check.fail(variable, f"the schedule's name in EventBridge Scheduler, {aws_name!r}, is longer than "
                                 f"{schedules_module.MAX_SCHEDULE_NAME_LENGTH} characters; shorten the name")
            continue
        found.append(schedule)
    return tuple(found)
