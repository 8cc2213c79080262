"""The Lambdas' deployment settings, read once from the environment and validated.

Precedence: a value in the s3_copy_config ``options`` beats the environment, which beats the default
here. Required settings have no default: a missing one is a SettingsError that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from lambdas import limits
from lambdas.config import OBJECT_ACLS
from lambdas.errors import SettingsError

ENV_PREFIX = "SFNCOPY_"
MAX_WORKERS = 1000  # a sanity bound; the generator allows fewer (Parallel branches in one definition)


@dataclass(frozen=True)
class Settings:
    manifest_bucket: str
    manifest_prefix: str = ""  # "" or ending in "/"
    # Parallel branches of the state machine: its Plan state passes the count in the event (the one
    # place it is written down); the environment's SFNCOPY_WORKERS serves direct invocations only.
    workers: int = 1
    max_payload_size_mb: int = limits.DEFAULT_MAX_PAYLOAD_SIZE_MB
    max_objects_per_payload: int = limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD
    copy_cutoff: int = limits.DEFAULT_COPY_CUTOFF  # bytes; larger objects are copied in parts
    part_size: int = limits.DEFAULT_PART_SIZE  # bytes; used when the source's own part size is unknown
    worker_threads: int = limits.DEFAULT_WORKER_THREADS
    deadline_margin_seconds: float = limits.DEFAULT_DEADLINE_MARGIN_SECONDS
    s3_max_attempts: int = 10  # botocore "standard" retry mode: exponential backoff with jitter
    # Buckets this stack's roles may touch; ("*",) when the deployment does not restrict them. The
    # planner checks the config against these so a user gets a clear error instead of AccessDenied.
    source_buckets: tuple[str, ...] = ("*",)
    target_buckets: tuple[str, ...] = ("*",)
    # The canned ACL this stack's roles may set on the objects they write (the env's object_acl: their
    # s3:PutObjectAcl is conditioned on it); "" when they may set none. The planner refuses other options.acl.
    object_acl: str = ""
    # The env's restore_archived: the stack has the restore function and s3:RestoreObject on the sources
    # (lambdas/restoring/). The planner refuses options.restore without it.
    restore_enabled: bool = False
    # Tests only (env restore_first_wait_seconds / restore_bound_seconds): the restore stage's first wait and
    # its bound for every tier, instead of lambdas/restoring/tiers.py's (AWS's documented restore times).
    restore_first_wait_seconds: int | None = None
    restore_bound_seconds: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            manifest_bucket=reader.text("MANIFEST_BUCKET", required=True),
            manifest_prefix=reader.prefix("MANIFEST_PREFIX"),
            workers=reader.integer("WORKERS", 1, low=1, high=MAX_WORKERS),
            max_payload_size_mb=reader.integer("MAX_PAYLOAD_SIZE_MB", limits.DEFAULT_MAX_PAYLOAD_SIZE_MB, low=5),
            max_objects_per_payload=reader.integer(
                "MAX_OBJECTS_PER_PAYLOAD", limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD, low=1),
            copy_cutoff=reader.integer("COPY_CUTOFF_BYTES", limits.DEFAULT_COPY_CUTOFF,
                                       low=limits.MIN_PART_SIZE, high=limits.MAX_COPY_OBJECT_SIZE),
            part_size=reader.integer("PART_SIZE_BYTES", limits.DEFAULT_PART_SIZE,
                                     low=limits.MIN_PART_SIZE, high=limits.MAX_PART_SIZE),
            worker_threads=reader.integer("WORKER_THREADS", limits.DEFAULT_WORKER_THREADS, low=1, high=256),
            deadline_margin_seconds=float(reader.integer(
                "DEADLINE_MARGIN_SECONDS", int(limits.DEFAULT_DEADLINE_MARGIN_SECONDS), low=1, high=600)),
            s3_max_attempts=reader.integer("S3_MAX_ATTEMPTS", 10, low=1, high=50),
            source_buckets=reader.names("SOURCE_BUCKETS"),
            target_buckets=reader.names("TARGET_BUCKETS"),
            object_acl=reader.choice("OBJECT_ACL", OBJECT_ACLS),
            restore_enabled=reader.choice("RESTORE", ("enabled",)) == "enabled",
            restore_first_wait_seconds=reader.optional_integer("RESTORE_FIRST_WAIT_SECONDS", low=1, high=86_400),
            restore_bound_seconds=reader.optional_integer("RESTORE_BOUND_SECONDS", low=1, high=7 * 86_400),
        )
        reader.raise_problems()
        return settings

    def with_branches(self, workers: object) -> Settings:
        """These settings for a state machine of ``workers`` branches (the Plan event's ``workers``;
        None when the event has none: a direct invocation keeps the environment's count)."""
        if workers is None:
            return self
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise SettingsError(f"the planner's event field workers={workers!r} must be a whole number from 1 to "
                                f"{MAX_WORKERS} (the state machine's branch count): regenerate and deploy the "
                                "template with scripts/deploy.sh ENV")
        return replace(self, workers=workers)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "", required: bool = False) -> str:
        value = self.env.get(ENV_PREFIX + name, "").strip()
        if required and not value:
            self.problems.append(f"{ENV_PREFIX}{name} is not set: set it in the function's environment "
                                 "(envs/ENV-env.sh, then redeploy)")
        return value or default

    def prefix(self, name: str) -> str:
        value = self.text(name).lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{ENV_PREFIX}{name}={raw!r} is not a whole number")
            return default
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problems.append(f"{ENV_PREFIX}{name}={value} must be {bound}")
            return default
        return value

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        """None when unset, else as ``integer``."""
        if not self.text(name):
            return None
        return self.integer(name, low, low=low, high=high)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        """"" (unset) or one of ``allowed``."""
        value = self.text(name)
        if value and value not in allowed:
            self.problems.append(f"{ENV_PREFIX}{name}={value!r} must be one of {', '.join(allowed)}")
            return ""
        return value

    def names(self, name: str) -> tuple[str, ...]:
        raw = self.text(name, default="*")
        return tuple(sorted({n.strip() for n in raw.replace(",", " ").split() if n.strip()}))

    def raise_problems(self) -> None:
        if self.problems:
            raise SettingsError("; ".join(self.problems))
