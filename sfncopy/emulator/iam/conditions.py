"""IAM condition operators: a statement's ``Condition`` block decided against a request context (pure).

The request context maps each condition key, lower-cased, to its values: one value for a single-valued key
(``s3:prefix``), any number for a multivalued one (``s3:RequestObjectTagKeys``); a key absent from the
request is absent from the mapping. AWS's rules, from "IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
unless another page is named:

- "If the key that you specify in a policy condition is not present in the request context, the values do
  not match and the condition is *false*. If the policy condition requires that the key is *not* matched,
  such as ``StringNotLike`` or ``ArnNotLike``, and the right key is not present, the condition is *true*.
  This logic applies to all condition operators except ...IfExists and Null check."
- ``...IfExists``: true when the key is absent, else the operator without the suffix.
- ``Null``: ``"true"`` holds when the key is absent, ``"false"`` when it is present.
- Several operators in a block, and several keys under one operator, must all hold (AND); several values
  for one key match when any matches (OR), except for negated operators (``StringNotEquals`` ...), which
  hold only when the key matches none of them ("Creating a condition with multiple context keys or values",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html).
- ``ForAnyValue:``: at least one request value passes; false when the key is absent. ``ForAllValues:``:
  every request value passes; true when the key is absent ("Set operators for multivalued context keys",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
- Condition key names are not case-sensitive; values are, except for the ``...IgnoreCase`` operators
  ("IAM JSON policy elements: Condition",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html).
- ``StringLike`` and the ``Arn`` operators take ``*`` and ``?`` wildcards; the ``Arn`` operators compare the
  six colon-separated parts of an ARN one by one.

Not supported (``UnsupportedCondition``; the policy module then errs towards denying): ``Binary*``
operators, policy variables (``${aws:username}``) in values, unknown operator names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Context = Mapping[str, Sequence[str]]
Matcher = Callable[[str, str], bool]

IF_EXISTS = "IfExists"
SET_OPERATORS = ("ForAnyValue", "ForAllValues")
ARN_PARTS = 6  # arn:partition:service:region:account:resource


class UnsupportedCondition(ValueError):
    """A condition the emulator cannot decide (an operator or a policy variable it does not know)."""


@lru_cache(maxsize=4096)
def _wildcard_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters (``/`` and ``:`` too), ``?`` any one character."""
    return _wildcard_pattern(pattern, ignore_case).fullmatch(value) is not None


def _string_like(value: str, pattern: str) -> bool:
    return wildcard_match(pattern, value)


def _arn_like(value: str, pattern: str) -> bool:
    values, patterns = value.split(":", ARN_PARTS - 1), pattern.split(":", ARN_PARTS - 1)
    if len(values) != ARN_PARTS or len(patterns) != ARN_PARTS:
        return False
    return all(wildcard_match(p, v) for p, v in zip(patterns, values, strict=True))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Matcher:
    def match(value: str, policy_value: str) -> bool:
        left, right = _number(value), _number(policy_value)
        return left is not None and right is not None and compare(left, right)

    return match


def _instant(text: str) -> datetime | None:
    """An ISO 8601 date and time, or seconds since the epoch (both are accepted by the Date operators)."""
    number = _number(text)
    if number is not None:
        return datetime.fromtimestamp(number, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def match(value: str, policy_value: str) -> bool:
        left, right = _instant(value), _instant(policy_value)
        return left is not None and right is not None and compare(left, right)

    return match


def _ip_address(value: str, policy_value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy_value, strict=False)
    except ValueError:
        return False


# Base operator -> (does a request value match a policy value?, is the operator negated?)
OPERATORS: dict[str, tuple[Matcher, bool]] = {
    "StringEquals": (lambda v, p: v == p, False),
    "StringNotEquals": (lambda v, p: v == p, True),
    "StringEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "DateEquals": (_date(lambda a, b: a == b), False),
    "DateNotEquals": (_date(lambda a, b: a == b), True),
    "DateLessThan": (_date(lambda a, b: a < b), False),
    "DateLessThanEquals": (_date(lambda a, b: a <= b), False),
    "DateGreaterThan": (_date(lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_date(lambda a, b: a >= b), False),
    "Bool": (lambda v, p: v.lower() == p.lower(), False),
    "IpAddress": (_ip_address, False),
    "NotIpAddress": (_ip_address, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}


def policy_values(raw: Any) -> list[str]:
    """A condition's value(s) as strings: JSON ``true`` is ``"true"``, numbers their decimal text."""
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            values.append(str(item))
        else:
            raise UnsupportedCondition(f"condition value {item!r} is not a string, number or boolean")
        if "${" in values[-1]:
            raise UnsupportedCondition(f"policy variables are not supported: {values[-1]!r}")
    return values


def split_operator(operator: str) -> tuple[str, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier and qualifier not in SET_OPERATORS:
        raise UnsupportedCondition(f"unknown set operator {qualifier!r} in {operator!r}")
    if_exists = base.endswith(IF_EXISTS) and base != IF_EXISTS
    if if_exists:
        base = base[: -len(IF_EXISTS)]
    if base != "Null" and base not in OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator!r} is not supported by the emulator")
    return qualifier, base, if_exists


def condition_holds(operator: str, key: str, values: Sequence[str], context: Context) -> bool:
    """One operator, one key, the policy's values for it."""
    qualifier, base, if_exists = split_operator(operator)
    request_values = list(context.get(key.lower(), ()))
    if base == "Null":
        if qualifier or if_exists:
            raise UnsupportedCondition(f"{operator!r}: Null takes no set operator and no IfExists")
        if any(v.lower() not in ("true", "false") for v in values):
            raise UnsupportedCondition(f"Null takes \"true\" or \"false\", got {list(values)}")
        absent = not request_values
        return any((v.lower() == "true") == absent for v in values)
    matches, negated = OPERATORS[base]
    if not request_values:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated

    def passes(value: str) -> bool:
        hit = any(matches(value, p) for p in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues" or (not qualifier and negated):
        return all(passes(v) for v in request_values)
    return any(passes(v) for v in request_values)


def block_holds(block: Any, context: Context) -> bool:
    """A whole ``Condition`` element: every operator, every key (AND)."""
    if not isinstance(block, Mapping):
        raise UnsupportedCondition(f"a Condition element must be an object, got {block!r}")
    for operator, keys in block.items():
        if not isinstance(keys, Mapping):
            raise UnsupportedCondition(f"condition {operator!r} must map keys to values, got {keys!r}")
        for key, raw in keys.items():
            if not condition_holds(operator, str(key), policy_values(raw), context):
                return False
    return True
