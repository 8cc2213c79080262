"""Validate a JSON document against a schema written as data, collecting every problem at once.

A schema is a tree of ``Kind`` objects (``Text``, ``Flag``, ``WholeNumber``, ``OneOf``, ``ListOf``,
``OneOrList``, ``Record``). Calling a kind with ``(value, path, problems)`` returns the parsed value, or
``INVALID`` after recording why in ``problems``. Every problem reads ``<json path>: <what is wrong>; <the fix>``.
Types are strict, as in JSON: ``true`` is not a number and ``"true"`` is not a boolean.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

TOP_LEVEL = "(top level)"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()  # what a kind returns after recording a problem


class Problems:
    """The problems found so far, each formatted ``<json path>: <what is wrong>; <the fix>``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, wrong: str, fix: str) -> None:
        self.items.append(f"{path or TOP_LEVEL}: {wrong}; {fix}")

    def __bool__(self) -> bool:
        return bool(self.items)


def join(path: str, key: str | int) -> str:
    """The JSON path of ``key`` inside ``path``: ``a.b``, ``a[2]``, or ``a["odd key"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _IDENTIFIER.fullmatch(key):
        return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{path}.{key}" if path else key


def show(value: Any, limit: int = 40) -> str:
    """A short JSON rendering of a user's value for messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "..."
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit + 10 else text[:limit] + "...]"


def did_you_mean(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (case-insensitive), if any is close."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


class Kind:
    """A rule for one JSON value. ``expected`` names it in messages ("a string"), ``plural`` in lists.

    Containers keep what is valid and drop what is not, so that checks across fields still run on the
    rest; the caller raises if any problem was recorded, before building anything from the result.
    """

    plural: ClassVar[str] = "values"

    @property
    def expected(self) -> str:
        return "a value"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        raise NotImplementedError

    def looks_like(self, value: Any) -> bool:
        """True when ``value`` is of this kind's JSON type (used to suggest wrapping a value in a list)."""
        return self(value, "", Problems()) is not INVALID


@dataclass(frozen=True)
class Text(Kind):
    allow_empty: bool = False
    plural: ClassVar[str] = "strings"

    @property
    def expected(self) -> str:
        return "a string"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, str):
            if isinstance(value, int | float):  # bool too
                fix = f'write it in double quotes: "{show(value)}"'
            else:
                fix = "write a string in double quotes" if value is not None else "write a string or remove the key"
            problems.add(path, f"expected a string, got {show(value)}", fix)
            return INVALID
        if not value and not self.allow_empty:
            problems.add(path, "expected a non-empty string, got \"\"", "write a value or remove the key")
            return INVALID
        return value


@dataclass(frozen=True)
class Flag(Kind):
    plural: ClassVar[str] = "booleans"

    @property
    def expected(self) -> str:
        return "true or false"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            fix = f"write {value.lower()} without quotes"
        else:
            fix = "write true or false"
        problems.add(path, f"expected true or false, got {show(value)}", fix)
        return INVALID


@dataclass(frozen=True)
class WholeNumber(Kind):
    low: int | None = None
    high: int | None = None
    plural: ClassVar[str] = "whole numbers"

    @property
    def expected(self) -> str:
        return "a whole number"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, f"expected a whole number, got {show(value)}", self._fix(value))
            return INVALID
        if self.low is not None and value < self.low:
            problems.add(path, f"must be at least {self.low}, got {value}", f"write {self.low} or more")
            return INVALID
        if self.high is not None and value > self.high:
            problems.add(path, f"must be at most {self.high}, got {value}", f"write {self.high} or less")
            return INVALID
        return value

    @staticmethod
    def _fix(value: Any) -> str:
        if isinstance(value, str) and value.strip().isdigit():
            return f"write {value.strip()} without quotes"
        if isinstance(value, float) and value.is_integer():
            return f"write {int(value)}"
        return "write a whole number such as 5"


@dataclass(frozen=True)
class OneOf(Kind):
    options: tuple[str, ...]
    plural: ClassVar[str] = "strings"

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(json.dumps(o) for o in self.options)

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, str) and value in self.options:
            return value
        close = did_you_mean(value, list(self.options)) if isinstance(value, str) else None
        fix = f'did you mean "{close}"?' if close else "use one of them"
        problems.add(path, f"expected {self.expected}, got {show(value)}", fix)
        return INVALID


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind
    allow_empty: bool = False
    empty_fix: str = "add at least one entry"

    @property
    def expected(self) -> str:
        return f"a list of {self.item.plural}"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, list):
            wrapped = "{...}" if isinstance(value, dict) else show(value)
            fix = f"write [{wrapped}]" if self.item.looks_like(value) else "write a list in square brackets"
            problems.add(path, f"expected {self.expected}, got {show(value)}", fix)
            return INVALID
        if not value and not self.allow_empty:
            problems.add(path, f"expected {self.expected}, got []", self.empty_fix)
            return INVALID
        parsed = [self.item(v, join(path, i), problems) for i, v in enumerate(value)]
        return [p for p in parsed if p is not INVALID]


@dataclass(frozen=True)
class OneOrList(Kind):
    """One item, or a non-empty list of them; always parsed to a list."""

    item: Kind

    @property
    def expected(self) -> str:
        return f"{self.item.expected} or a list of {self.item.plural}"

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, list):
            return ListOf(self.item)(value, path, problems)
        parsed = self.item(value, path, problems)
        return INVALID if parsed is INVALID else [parsed]


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = False
    example: str = ""  # shown in the fix when the key is missing: add "<key>": <example>


@dataclass(frozen=True)
class Parsed:
    """A validated JSON object: the values of the keys that were present, and where it was."""

    path: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Record(Kind):
    """A JSON object with known keys; unknown keys are refused with a "did you mean" hint."""

    fields: Mapping[str, Field]
    example: str = "{...}"
    check: Callable[[Parsed, Problems], None] | None = field(default=None, compare=False)
    plural: ClassVar[str] = "objects"

    @property
    def expected(self) -> str:
        return "an object"

    def looks_like(self, value: Any) -> bool:
        return isinstance(value, dict)

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if not isinstance(value, dict):
            problems.add(path, f"expected an object, got {show(value)}", f"write an object such as {self.example}")
            return INVALID
        values: dict[str, Any] = {}
        for key, raw in value.items():
            spec = self.fields.get(key)
            if spec is None:
                problems.add(join(path, key), "unknown key", self._unknown_key_fix(key))
            elif (parsed := spec.kind(raw, join(path, key), problems)) is not INVALID:
                values[key] = parsed
        for key, spec in self.fields.items():
            if spec.required and key not in value:
                problems.add(join(path, key), "required key is missing", f'add "{key}": {spec.example or "..."}')
        result = Parsed(path, values)
        if self.check is not None and all(k in values for k, s in self.fields.items() if s.required):
            self.check(result, problems)
        return result

    def _unknown_key_fix(self, key: str) -> str:
        close = did_you_mean(key, list(self.fields))
        if close:
            return f'did you mean "{close}"?'
        return "remove it (known keys: " + ", ".join(self.fields) + ")"
