"""``sfncopy schedule list|add|remove``: the env file's ``schedule_<name>`` lines, edited as text.

Why the CLI edits the env file instead of creating schedules through the EventBridge Scheduler API:

- The env file is the declarative source of truth for everything the stack holds (``generator/settings.py``);
  a schedule made on the side would be missing from the reviewed file and the committed template, and the next
  deployment would neither know nor keep it.
- A schedule is more than a Scheduler resource: the planner's role may read exactly the stored configs the env's
  schedules name (``generator/policies.py``, ReadStoredConfigs). An ad-hoc schedule of another config would start
  runs that fail with AccessDenied, unless the CLI also rewrote a role's policy out of band.

So ``add`` and ``remove`` change one ``export schedule_<name>=...`` line, after checking that the whole env file
still validates (the same checks ``sfncopy generate`` runs), and say how to apply it: ``./scripts/deploy.sh ENV``
(or ``--deploy`` to deploy at once). ``list`` shows the env's schedules and, with ``--deployed``, what EventBridge
Scheduler holds for the stack, so drift shows.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.schedules import VARIABLE_PREFIX, Schedule, parse_schedule
from generator.settings import EnvSettings, env_path, load_env
from lambdas.errors import SettingsError


class ScheduleEditError(SettingsError):
    """The edit cannot be made: no such schedule, a schedule of that name already, or a bad value."""


def _line_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*export\s+{re.escape(VARIABLE_PREFIX + name)}=")


def env_line(schedule: Schedule) -> str:
    """The env file's line for ``schedule`` (double-quoted: an expression holds spaces, '*' and '?')."""
    return f'export {VARIABLE_PREFIX}{schedule.name}="{schedule.env_value()}"'


def with_schedule(text: str, schedule: Schedule) -> str:
    """``text`` with ``schedule``'s line added after the last schedule line (or at the end)."""
    lines = text.splitlines()
    if any(_line_pattern(schedule.name).match(line) for line in lines):
        raise ScheduleEditError(f"schedule {schedule.name!r} exists already; remove it first")
    schedule_lines = [i for i, line in enumerate(lines) if re.match(rf"^\s*export\s+{VARIABLE_PREFIX}", line)]
    at = schedule_lines[-1] + 1 if schedule_lines else len(lines)
    return "\n".join([*lines[:at], env_line(schedule), *lines[at:]]) + "\n"


def without_schedule(text: str, name: str) -> str:
    """``text`` without schedule ``name``'s line."""
    lines = text.splitlines()
    kept = [line for line in lines if not _line_pattern(name).match(line)]
    if len(kept) == len(lines):
        raise ScheduleEditError(f"no schedule {name!r} in the env file (see 'sfncopy schedule list')")
    return "\n".join(kept) + "\n"


def new_schedule(name: str, expression: str, config_uri: str, timezone: str = "") -> Schedule:
    """A Schedule from the command's arguments, checked as the env file's line will be."""
    value = " ".join(p for p in (expression, config_uri, timezone) if p)
    schedule, problems = parse_schedule(name, value)
    if schedule is None:
        raise ScheduleEditError(f"schedule {name!r}: " + "; ".join(problems))
    return schedule


def checked(env: str, envs_dir: Path, text: str) -> EnvSettings:
    """The settings ``text`` would give env ``env`` (EnvSettingsError naming every problem): checked in a copy,
    so a bad edit never reaches the file. Process-environment overrides are ignored here: the file is checked."""
    with tempfile.TemporaryDirectory() as scratch:
        env_path(env, Path(scratch)).write_text(text, encoding="utf-8")
        return load_env(env, Path(scratch), environ={})


def edit(env: str, envs_dir: Path, change: str, schedule: Schedule | None = None, name: str = "") -> EnvSettings:
    """Add ``schedule`` (change "add") or remove ``name`` (change "remove") in ``envs/<env>-env.sh``; returns the
    env's settings after the edit. The file is written only when the whole env still validates."""
    path = env_path(env, envs_dir)
    load_env(env, envs_dir)  # the env exists and validates before (its own error otherwise)
    text = path.read_text(encoding="utf-8")
    if change == "add" and schedule is not None:
        edited = with_schedule(text, schedule)
    elif change == "remove" and name:
        edited = without_schedule(text, name)
    else:
        raise ValueError(f"edit: change={change!r} needs a schedule (add) or a name (remove)")
    settings = checked(env, envs_dir, edited)
    path.write_text(edited, encoding="utf-8")
    return settings


@dataclass(frozen=True)
class ListedSchedule:
    """A schedule of the env, or one EventBridge Scheduler holds for the stack (``deployed`` its state)."""

    name: str  # the env's name ("nightly"), or the Scheduler name when the env has no such schedule
    expression: str
    timezone: str
    config_uri: str
    deployed: str  # "", or Scheduler's State (ENABLED/DISABLED), "not deployed", or "not in the env file"


def listing(settings: EnvSettings, scheduler: Any | None = None) -> list[ListedSchedule]:
    """The env's schedules; with a Scheduler client, each one's deployed state and the stack's schedules the env
    no longer names (``<stack>-`` in the default group)."""
    deployed: dict[str, dict[str, Any]] = {}
    if scheduler is not None:
        pages = scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{settings.stack_name}-")
        deployed = {s["Name"]: s for page in pages for s in page.get("Schedules", [])}
    rows = []
    for schedule in settings.schedules:
        found = deployed.pop(schedule.aws_name(settings.stack_name), None)
        state = "" if scheduler is None else (str(found["State"]) if found else "not deployed")
        rows.append(ListedSchedule(schedule.name, schedule.expression, schedule.timezone or "UTC",
                                   schedule.config_uri, state))
    for aws_name in sorted(deployed):
        full = scheduler.get_schedule(Name=aws_name) if scheduler is not None else {}
        rows.append(ListedSchedule(aws_name, str(full.get("ScheduleExpression", "")),
                                   str(full.get("ScheduleExpressionTimezone", "")), "", "not in the env file"))
    return rows
