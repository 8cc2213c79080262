"""Fault injection for tests: a plan of Lambda and S3 faults, off by default.

A plan is plain JSON, so a test can set it from another process (``POST /_sfncopy/faults`` on the
emulator's port, see ``sfncopy.emulator.control``) or in process (``Emulator.set_faults``)::

    {
      "lambda": [
        {"function": "*-worker", "invocation": 2, "action": "timeout", "after_seconds": 1.5},
        {"function": "*-worker", "invocations": [1, 2], "action": "error", "error": "Lambda.ServiceException"},
        {"function": "*-worker", "invocation": 3, "action": "error", "error": "TransientError"},
        {"function": "*-worker", "invocation": 4, "action": "crash", "after_seconds": 0.8}
      ],
      "s3": {"slow_down_fraction": 0.2, "seed": 7,
             "deny": [{"bucket": "my-target", "operations": ["CopyObject", "UploadPartCopy"]}],
             "corrupt_parts": [{"bucket": "my-target", "key_pattern": "*.bin", "part_number": 2}]}
    }

Lambda rules
  ``function``      the function name, or an ``fnmatch`` pattern (``*-worker``).
  ``invocation``    the 1-based number of the invocation of that function the rule hits, counted from
  / ``invocations`` the moment the plan was set (every invocation counts: retries and continuations too).
  ``action``
    ``timeout``  the handler runs and its process is killed ``after_seconds`` into the invocation
                 (capped at the function's Timeout; default 0: the handler does not start); Step
                 Functions sees Lambda's timeout error ``Sandbox.Timedout`` ("Task timed out after
                 <Timeout>.00 seconds"). Whatever the handler did stays done. Should the handler finish
                 sooner, its answer is dropped and the fault still reported, at that moment.
    ``crash``    the same kill, reported as Lambda reports a runtime whose process died:
                 ``Runtime.ExitError`` ("... Runtime exited with error: signal: killed").
    ``error``    the handler does not run. ``error`` names the error. ``Lambda.<Code>`` names are
                 Lambda *service* errors: the Invoke call itself fails with error code ``<Code>``
                 (HTTP 429 for TooManyRequestsException, else 500) and Step Functions names it
                 ``Lambda.<Code>``, as on AWS. Any other name is a *function* error, as if the handler
                 had raised an exception of that class. ``message`` is optional.
  A killed worker process is replaced: the next invocation starts a fresh (cold) one.

S3
  ``slow_down_fraction``  share (0..1) of matching requests answered ``503 SlowDown``.
  ``seed``                seeds the draw, so a run is repeatable (default 0).
  ``operations``          S3 operations the fraction applies to (default: the copy requests,
                          ``CopyObject`` and ``UploadPartCopy``, i.e. PUT with ``x-amz-copy-source``).
  ``deny``                rules answering ``403 AccessDenied``, as S3 does when a bucket policy or an
                          IAM policy denies the request: ``bucket`` (a name or ``fnmatch`` pattern) and
                          ``operations`` (default: the writes, ``DENY_OPERATIONS``). moto evaluates bucket
                          policies only with IAM authentication switched on for every request, which the
                          emulator's dummy credentials cannot pass, so the emulator answers it itself.
  ``corrupt_parts``       rules that corrupt a part copy: ``bucket`` (the *target* bucket: a name or ``fnmatch``
                          pattern), ``key_pattern`` (``fnmatch`` on the target key, default ``*``), ``part_number``
                          (>= 1), ``times`` (optional: only the first N matching copies; default every one). The
                          matching UploadPartCopy succeeds, but the part S3 stores is the copied range with its
                          first byte inverted, and everything S3 answers about the part is computed from the bytes
                          it stored, as it would be after a real corruption: the part's ETag, and its checksum
                          (CopyPartResult, ListParts) when the upload was created with a checksum algorithm. So the
                          client sees nothing wrong in the part copy itself; a whole-object checksum it derives from
                          the *source* (the source's FULL_OBJECT CRC, or one combined from the source's part CRCs,
                          ``lambdas.checksums.full_object``) and passes to CompleteMultipartUpload no longer matches
                          the parts, and S3 refuses the completion with ``BadDigest`` (checksums_bridge.py), leaving
                          the upload open to be aborted: nothing is written. Without such a checksum the corrupted
                          object completes, as it would on S3.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LAMBDA_ACTIONS = ("timeout", "crash", "error")
COPY_OPERATIONS = ("CopyObject", "UploadPartCopy")
# What a "deny" rule refuses by default: every request that writes into a bucket (reads and listings pass).
DENY_OPERATIONS = ("CopyObject", "UploadPartCopy", "CreateMultipartUpload", "UploadPart",
                   "CompleteMultipartUpload", "PutObject", "PutObjectTagging")
# The prefix that makes an injected error a Lambda service error rather than a function error.
LAMBDA_SERVICE_ERROR_PREFIX = "Lambda."


class FaultPlanError(ValueError):
    """A fault plan is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class LambdaFault:
    function: str
    invocations: tuple[int, ...]
    action: str
    after_seconds: float = 0.0
    error: str = ""
    message: str = ""

    def matches(self, function_name: str, invocation: int) -> bool:
        return invocation in self.invocations and fnmatch.fnmatchcase(function_name, self.function)

    @property
    def is_service_error(self) -> bool:
        return self.action == "error" and self.error.startswith(LAMBDA_SERVICE_ERROR_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "invocations": list(self.invocations),
                               "action": self.action}
        if self.action in ("timeout", "crash"):
            out["after_seconds"] = self.after_seconds
        if self.action == "error":
            out["error"] = self.error
            if self.message:
                out["message"] = self.message
        return out


@dataclass(frozen=True)
class S3Deny:
    """Answer 403 AccessDenied to ``operations`` on buckets matching ``bucket``."""

    bucket: str
    operations: tuple[str, ...] = DENY_OPERATIONS

    def matches(self, bucket: str, operation: str) -> bool:
        return operation in self.operations and fnmatch.fnmatchcase(bucket, self.bucket)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "operations": list(self.operations)}


@dataclass(frozen=True)
class S3CorruptPart:
    """Store part ``part_number`` of uploads to matching keys corrupted (the first ``times`` copies; 0: all)."""

    bucket: str
    key_pattern: str = "*"
    part_number: int = 1
    times: int = 0

    def matches(self, bucket: str, key: str, part_number: int) -> bool:
        return (part_number == self.part_number and fnmatch.fnmatchcase(bucket, self.bucket)
                and fnmatch.fnmatchcase(key, self.key_pattern))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "key_pattern": self.key_pattern, "part_number": self.part_number}
        if self.times:
            out["times"] = self.times
        return out


@dataclass(frozen=True)
class S3Faults:
    slow_down_fraction: float = 0.0
    seed: int = 0
    operations: tuple[str, ...] = COPY_OPERATIONS
    deny: tuple[S3Deny, ...] = ()
    corrupt_parts: tuple[S3CorruptPart, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"slow_down_fraction": self.slow_down_fraction, "seed": self.seed,
                "operations": list(self.operations), "deny": [d.to_dict() for d in self.deny],
                "corrupt_parts": [c.to_dict() for c in self.corrupt_parts]}


@dataclass(frozen=True)
class FaultPlan:
    lambda_faults: tuple[LambdaFault, ...] = ()
    s3: S3Faults = field(default_factory=S3Faults)

    @classmethod
    def from_dict(cls, document: Any) -> FaultPlan:
        """Parse and validate the JSON form (module docstring); raise FaultPlanError naming every problem."""
        problems: list[str] = []
        if not isinstance(document, Mapping):
            raise FaultPlanError(f"fault plan: expected a JSON object, got {type(document).__name__}")
        _unknown_keys(document, {"lambda", "s3"}, "fault plan", problems)
        rules = document.get("lambda", [])
        faults: list[LambdaFault] = []
        if not isinstance(rules, list):
            problems.append("lambda: expected a list of rules")
            rules = []
        for index, rule in enumerate(rules):
            fault = _lambda_fault(rule, f"lambda[{index}]", problems)
            if fault is not None:
                faults.append(fault)
        s3 = _s3_faults(document.get("s3", {}), problems)
        if problems:
            raise FaultPlanError("invalid fault plan: " + "; ".join(problems))
        return cls(lambda_faults=tuple(faults), s3=s3)

    def to_dict(self) -> dict[str, Any]:
        return {"lambda": [f.to_dict() for f in self.lambda_faults], "s3": self.s3.to_dict()}


def _unknown_keys(document: Mapping[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(document) - known):
        problems.append(f"{where}.{key}: unknown key; expected one of {sorted(known)}")


def _lambda_fault(rule: Any, where: str, problems: list[str]) -> LambdaFault | None:
    if not isinstance(rule, Mapping):
        problems.append(f"{where}: expected an object")
        return None
    start = len(problems)
    _unknown_keys(rule, {"function", "invocation", "invocations", "action", "after_seconds", "error", "message"},
                  where, problems)
    function = rule.get("function")
    if not isinstance(function, str) or not function:
        problems.append(f"{where}.function: expected a function name or fnmatch pattern")
    invocations = _invocations(rule, where, problems)
    action = rule.get("action")
    if action not in LAMBDA_ACTIONS:
        problems.append(f"{where}.action: expected one of {list(LAMBDA_ACTIONS)}, got {action!r}")
    after = rule.get("after_seconds", 0.0)
    if isinstance(after, bool) or not isinstance(after, int | float) or after < 0:
        problems.append(f"{where}.after_seconds: expected a number of seconds >= 0, got {after!r}")
    error = rule.get("error", "")
    if action == "error" and (not isinstance(error, str) or not error):
        problems.append(f"{where}.error: an 'error' action needs the error name (e.g. Lambda.ServiceException)")
    message = rule.get("message", "")
    if not isinstance(message, str):
        problems.append(f"{where}.message: expected a string")
    if len(problems) > start:
        return None
    return LambdaFault(function=str(function), invocations=invocations, action=str(action),
                       after_seconds=float(after), error=str(error), message=str(message))


def _invocations(rule: Mapping[str, Any], where: str, problems: list[str]) -> tuple[int, ...]:
    if ("invocation" in rule) == ("invocations" in rule):
        problems.append(f"{where}: give exactly one of 'invocation' (a number) or 'invocations' (a list)")
        return ()
    raw = [rule["invocation"]] if "invocation" in rule else rule["invocations"]
    if not isinstance(raw, list) or not raw or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in raw):
        problems.append(f"{where}.invocation(s): expected invocation numbers >= 1 (the first is 1)")
        return ()
    return tuple(sorted(set(raw)))


def _s3_faults(raw: Any, problems: list[str]) -> S3Faults:
    if not isinstance(raw, Mapping):
        problems.append("s3: expected an object")
        return S3Faults()
    _unknown_keys(raw, {"slow_down_fraction", "seed", "operations", "deny", "corrupt_parts"}, "s3", problems)
    fraction = raw.get("slow_down_fraction", 0.0)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        problems.append(f"s3.slow_down_fraction: expected a number between 0 and 1, got {fraction!r}")
        fraction = 0.0
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(f"s3.seed: expected a whole number, got {seed!r}")
        seed = 0
    operations = raw.get("operations", list(COPY_OPERATIONS))
    if not isinstance(operations, list) or not all(isinstance(o, str) and o for o in operations):
        problems.append("s3.operations: expected a list of S3 operation names (e.g. ['CopyObject'])")
        operations = list(COPY_OPERATIONS)
    deny = _s3_deny(raw.get("deny", []), problems)
    corrupt = _s3_corrupt_parts(raw.get("corrupt_parts", []), problems)
    return S3Faults(slow_down_fraction=float(fraction), seed=seed, operations=tuple(operations), deny=deny,
                    corrupt_parts=corrupt)


def _s3_deny(raw: Any, problems: list[str]) -> tuple[S3Deny, ...]:
    if not isinstance(raw, list):
        problems.append("s3.deny: expected a list of rules like {\"bucket\": \"name\", \"operations\": [...]}")
        return ()
    rules: list[S3Deny] = []
    for index, rule in enumerate(raw):
        where = f"s3.deny[{index}]"
        if not isinstance(rule, Mapping):
            problems.append(f"{where}: expected an object")
            continue
        start = len(problems)
        _unknown_keys(rule, {"bucket", "operations"}, where, problems)
        bucket = rule.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            problems.append(f"{where}.bucket: expected a bucket name or fnmatch pattern")
        operations = rule.get("operations", list(DENY_OPERATIONS))
        if not isinstance(operations, list) or not operations or not all(isinstance(o, str) and o for o in operations):
            problems.append(f"{where}.operations: expected a list of S3 operation names (e.g. ['CopyObject'])")
        if len(problems) == start:
            rules.append(S3Deny(bucket=str(bucket), operations=tuple(operations)))
    return tuple(rules)


def _s3_corrupt_parts(raw: Any, problems: list[str]) -> tuple[S3CorruptPart, ...]:
    if not isinstance(raw, list):
        problems.append("s3.corrupt_parts: expected a list of rules like {\"bucket\": \"name\", \"key_pattern\": "
                        "\"*.bin\", \"part_number\": 2}")
        return ()
    rules: list[S3CorruptPart] = []
    for index, rule in enumerate(raw):
        where = f"s3.corrupt_parts[{index}]"
        if not isinstance(rule, Mapping):
            problems.append(f"{where}: expected an object")
            continue
        start = len(problems)
        _unknown_keys(rule, {"bucket", "key_pattern", "part_number", "times"}, where, problems)
        bucket = rule.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            problems.append(f"{where}.bucket: expected the target bucket's name or an fnmatch pattern")
        pattern = rule.get("key_pattern", "*")
        if not isinstance(pattern, str) or not pattern:
            problems.append(f"{where}.key_pattern: expected an fnmatch pattern of target keys (e.g. '*.bin')")
        number = rule.get("part_number")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            problems.append(f"{where}.part_number: expected a part number >= 1 (the first part is 1), got {number!r}")
        times = rule.get("times", 0)
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            problems.append(f"{where}.times: expected how many matching copies to corrupt (>= 1; omit for all), "
                            f"got {times!r}")
        if len(problems) == start:
            rules.append(S3CorruptPart(bucket=str(bucket), key_pattern=str(pattern), part_number=int(number or 0),
                                       times=int(times)))
    return tuple(rules)


@dataclass(frozen=True)
class FiredFault:
    """A fault that was applied: which function's which invocation got what."""

    function: str
    invocation: int
    action: str
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "invocation": self.invocation, "action": self.action,
                "error": self.error}


class FaultState:
    """The emulator's current plan and its counters; shared by the Lambda runner and the S3 middleware.

    Thread-safe: the server answers requests on many threads.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._invocations: Counter[str] = Counter()
        self._random = random.Random(0)
        self._fired: list[FiredFault] = []
        self._corrupted: Counter[S3CorruptPart] = Counter()
        self.set_plan(plan or FaultPlan())

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the plan; invocation numbers and the SlowDown draw start again from the beginning."""
        with self._lock:
            self._plan = plan
            self._invocations.clear()
            self._random = random.Random(plan.s3.seed)
            self._fired.clear()
            self._corrupted.clear()

    def clear(self) -> None:
        self.set_plan(FaultPlan())

    def next_lambda_fault(self, function_name: str) -> LambdaFault | None:
        """Count one invocation of ``function_name``; return the rule that hits it, if any (first wins)."""
        with self._lock:
            self._invocations[function_name] += 1
            number = self._invocations[function_name]
            for fault in self._plan.lambda_faults:
                if fault.matches(function_name, number):
                    self._fired.append(FiredFault(function_name, number, fault.action, fault.error))
                    return fault
            return None

    def slow_down(self, operation: str) -> bool:
        """Whether this S3 request is to be answered 503 SlowDown (a seeded draw per matching request)."""
        with self._lock:
            s3 = self._plan.s3
            if s3.slow_down_fraction <= 0 or operation not in s3.operations:
                return False
            return self._random.random() < s3.slow_down_fraction

    def denied(self, bucket: str, operation: str) -> bool:
        """Whether this S3 request is to be answered 403 AccessDenied (a ``deny`` rule matches it)."""
        with self._lock:
            return any(rule.matches(bucket, operation) for rule in self._plan.s3.deny)

    def corrupts(self, bucket: str, key: str, part_number: int) -> bool:
        """Whether this UploadPartCopy (into ``bucket/key``, part ``part_number``) is to store a corrupted part (a
        ``corrupt_parts`` rule matches it and has copies left); counts it."""
        with self._lock:
            for rule in self._plan.s3.corrupt_parts:
                if rule.matches(bucket, key, part_number) and (not rule.times or self._corrupted[rule] < rule.times):
                    self._corrupted[rule] += 1
                    return True
            return False

    def corrupted_parts(self) -> int:
        """How many part copies were corrupted since the plan was set."""
        with self._lock:
            return sum(self._corrupted.values())

    def fired(self) -> list[FiredFault]:
        with self._lock:
            return list(self._fired)
