"""Schedules of an environment: ``export schedule_<name>="<expression> s3://bucket/key [time zone]"`` lines.

Each starts the state machine with ``{"s3_copy_config_location": "s3://bucket/key"}`` (lambdas/stored_config.py)
through EventBridge Scheduler. Expressions are checked here as EventBridge Scheduler checks them, so a bad one
fails at ``sfncopy generate`` rather than halfway through a stack update (EventBridge Scheduler User Guide,
"Schedule types on EventBridge Scheduler"):

- ``rate(value unit)``: a positive whole number and ``minute(s)``, ``hour(s)`` or ``day(s)``;
- ``cron(minutes hours day-of-month month day-of-week year)``: six fields; minutes 0-59, hours 0-23,
  day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT, year 1970-2199; wildcards
  ``, - * /`` everywhere, ``?`` in day-of-month or day-of-week, ``L`` in both, ``W`` in day-of-month, ``#`` in
  day-of-week; day-of-month and day-of-week cannot both be given: one of them is ``?``.

One-time ``at(...)`` schedules are refused: a stored config run once is ``sfncopy start-execution``.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

# The env variable of a schedule: schedule_<name>, the name lower-case letters, digits and "_".
VARIABLE_PREFIX = "schedule_"
NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
# EventBridge Scheduler API reference, CreateSchedule, Name: 1-64 characters of [0-9a-zA-Z-_.].
MAX_SCHEDULE_NAME_LENGTH = 64
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(([^()]*)\)$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names standing for low, low + 1, ...
    question: bool = False  # "?" allowed
    extra: re.Pattern[str] | None = None  # the field's own special forms (L, W, #)


_FIELDS = (
    CronField("minutes", 0, 59),
    CronField("hours", 0, 23),
    CronField("day-of-month", 1, 31, question=True, extra=re.compile(r"^(L|LW|\d{1,2}W|L-\d{1,2})$")),
    CronField("month", 1, 12, names=_MONTHS),
    CronField("day-of-week", 1, 7, names=_DAYS, question=True, extra=re.compile(r"^(L|\w{1,3}L|\w{1,3}#[1-5])$")),
    CronField("year", 1970, 2199),
)


@dataclass(frozen=True)
class Schedule:
    """One schedule of the env: ``name`` (from schedule_<name>), its expression, the stored config's location
    (``s3://bucket/key``) and the time zone its expression is evaluated in (IANA name; "" = UTC)."""

    name: str
    expression: str
    config_uri: str
    timezone: str = ""

    @property
    def config_bucket(self) -> str:
        return self.config_uri.removeprefix("s3://").partition("/")[0]

    @property
    def config_key(self) -> str:
        return self.config_uri.removeprefix("s3://").partition("/")[2]

    def aws_name(self, stack_name: str) -> str:
        """The schedule's name in EventBridge Scheduler: unique per stack in the account's default group."""
        return f"{stack_name}-{self.name}"

    def env_value(self) -> str:
        """The value of its ``schedule_<name>`` line (``sfncopy schedule add`` writes it)."""
        return " ".join(p for p in (self.expression, self.config_uri, self.timezone) if p)

    def input_document(self) -> dict[str, str]:
        """The execution input the schedule passes (lambdas/stored_config.py)."""
        return {"s3_copy_config_location": self.config_uri}


def parse_schedule(name: str, value: str) -> tuple[Schedule | None, list[str]]:
    """``schedule_<name>``'s value -> the Schedule, or None and what is wrong (each problem with its fix)."""
    problems: list[str] = []
    if not NAME.match(name):
        problems.append(f"schedule name {name!r}: use 1-40 lower-case letters, digits and '_', starting with a "
                        "letter or digit")
    text = value.strip()
    match = re.match(r"^((?:rate|cron|at)\([^()]*\))\s*(.*)$", text)
    if not match:
        return None, [
            *problems,
            f"expected '<rate(...) or cron(...)> s3://bucket/key [time zone]', got {value!r} "
            "(e.g. \"cron(0 2 * * ? *) s3://my-configs/nightly.json Europe/Paris\")"]
    expression, rest = match.group(1), match.group(2).split()
    problems += expression_problems(expression)
    if not rest:
        return None, [*problems, "no stored config: add its location after the expression (s3://bucket/key)"]
    uri, timezone = rest[0], " ".join(rest[1:])
    problems += location_problems(uri)
    if len(rest) > 2:
        problems.append(f"unexpected {' '.join(rest[2:])!r} after the time zone")
    elif timezone:
        problems += timezone_problems(timezone)
    if problems:
        return None, problems
    return Schedule(name=name, expression=expression, config_uri=uri, timezone=timezone), []


def expression_problems(expression: str) -> list[str]:
    """What EventBridge Scheduler would refuse in ``expression`` (and what we refuse: one-time schedules)."""
    if expression.startswith("at("):
        return [f"{expression!r}: one-time at() schedules are not supported; a run started once is "
                "'sfncopy start-execution'"]
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            return [f"{expression!r}: the rate's value must be a positive whole number"]
        # "rate(1 minute)" but "rate(5 minutes)": stricter than Scheduler may be (unverified that it refuses
        # "rate(1 minutes)"), the form its examples use.
        if (value == 1) != (not unit.endswith("s")):
            singular = unit.rstrip("s")
            return [f"{expression!r}: write rate(1 {singular}) or rate({max(value, 2)} {singular}s)"]
        return []
    if expression.startswith("rate("):
        return [f"{expression!r}: expected rate(value unit), value a positive whole number, unit minute(s), "
                "hour(s) or day(s)"]
    cron = _CRON.match(expression)
    if not cron:
        return [f"{expression!r}: expected rate(value unit) or cron(minutes hours day-of-month month day-of-week "
                "year)"]
    fields = cron.group(1).split()
    if len(fields) != len(_FIELDS):
        return [f"{expression!r}: a cron expression has six fields (minutes hours day-of-month month day-of-week "
                f"year), got {len(fields)}"]
    problems = [problem for spec, text in zip(_FIELDS, fields, strict=True)
                for problem in _field_problems(spec, text.upper())]
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        problems.append("day-of-month and day-of-week cannot both be given (or both be '?'): make one of them "
                        "'?', e.g. cron(0 2 * * ? *)")
    return [f"{expression!r}: {p}" for p in problems]


def _field_problems(spec: CronField, text: str) -> list[str]:
    if text == "?":
        return [] if spec.question else [f"{spec.name}: '?' is allowed in day-of-month and day-of-week only"]
    if spec.extra is not None and spec.extra.match(text):
        return []
    for item in text.split(","):
        value_part, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return [f"{spec.name}: {item!r}: the increment after '/' must be a positive whole number"]
        if value_part == "*":
            continue
        bounds = value_part.split("-")
        if len(bounds) > 2 or not all(_value(spec, b) is not None for b in bounds):
            allowed = f"{spec.low}-{spec.high}" + (f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else "")
            return [f"{spec.name}: {item!r} is not a value, range or increment of {allowed}"]
    return []


def _value(spec: CronField, text: str) -> int | None:
    if text in spec.names:
        return spec.low + spec.names.index(text)
    if text.isdigit() and spec.low <= int(text) <= spec.high:
        return int(text)
    return None


def location_problems(uri: str) -> list[str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
        return [f"{uri!r}: the stored config's location must be s3://bucket/key (an object, not a prefix)"]
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        return [f"{uri!r}: {bucket!r} is not a valid S3 bucket name"]
    if "*" in key or "?" in key:
        return [f"{uri!r}: the key cannot hold '*' or '?' (the planner's right to read it is this key alone)"]
    return []


def timezone_problems(timezone: str) -> list[str]:
    """EventBridge Scheduler evaluates an expression in an IANA time zone (ScheduleExpressionTimezone)."""
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [f"{timezone!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)"]
    return []
