"""Identity-based policy evaluation (pure): may this principal perform this action on this resource?

AWS's rules, from "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
every request is denied by default; an explicit ``Deny`` in any policy overrides any ``Allow``; otherwise an
``Allow`` in an identity-based policy allows it. A session policy (passed to AssumeRole) narrows a role
session: the request must be allowed by the role's policies *and* by the session policy, and an explicit
deny in either denies it ("Session policies",
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).

A statement applies when its action, its resource and its conditions all match:

- ``Action`` / ``NotAction``: "The prefix and the action name are case insensitive"; ``*`` and ``?`` are
  wildcards ("IAM JSON policy elements: Action",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
- ``Resource`` / ``NotResource``: ARNs with ``*`` and ``?``; ``*`` also matches ``/`` ("IAM JSON policy
  elements: Resource", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
  Matching is case-sensitive: the page says so of IAM names in ARNs, and S3 object keys are case-sensitive;
  that it holds for every ARN is unverified (the stricter reading). A ``*`` inside a non-final ARN segment
  also matches ``:`` here (AWS stops it at the colon): a simplification, looser only for such patterns.
- ``Condition``: see conditions.py. An ``Allow`` whose condition does not hold simply does not apply: it is
  not a deny, and another ``Allow`` may still allow the request.

What the emulator cannot decide (an unsupported condition operator, a policy variable) errs towards
denying: such an ``Allow`` does not apply, such a ``Deny`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sfncopy.emulator.iam.conditions import Context, UnsupportedCondition, block_holds, wildcard_match

Document = Mapping[str, Any]
IDENTITY_BASED = "identity-based"
SESSION = "session"


class PolicyDocumentError(ValueError):
    """A stored policy document is not JSON or has no ``Statement``."""


@dataclass(frozen=True)
class Check:
    """One authorization check: ``action`` on ``resource`` (an ARN, or ``*``) with these context keys."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def with_context(self, extra: Mapping[str, tuple[str, ...]]) -> Check:
        """The same check with more context keys (the request's own keys win)."""
        return Check(self.action, self.resource, {**extra, **self.context})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    policy_type: str = IDENTITY_BASED  # the kind of policy whose deny (or missing allow) decided a denial


ALLOWED = Decision(allowed=True)


def parse_document(raw: str | Mapping[str, Any]) -> Document:
    """A policy document as moto stores it: JSON text (IAM API) or an object (CloudFormation)."""
    document = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise PolicyDocumentError(f"not a policy document (no Statement): {str(raw)[:200]}")
    return document


def statements(document: Document) -> list[Mapping[str, Any]]:
    found = document.get("Statement")
    items = found if isinstance(found, list) else [found]
    return [s for s in items if isinstance(s, Mapping)]


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items]


def action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(wildcard_match(p, action, ignore_case=True) for p in patterns)


def resource_matches(patterns: Iterable[str], resource: str) -> bool:
    for pattern in patterns:
        if "${" in pattern:
            raise UnsupportedCondition(f"policy variables are not supported: {pattern!r}")
        if wildcard_match(pattern, resource):
            return True
    return False


def _targets(statement: Mapping[str, Any], check: Check) -> bool:
    """Do the statement's action and resource elements cover the check?"""
    if "Action" in statement:
        covered = action_matches(_strings(statement["Action"]), check.action)
    elif "NotAction" in statement:
        covered = not action_matches(_strings(statement["NotAction"]), check.action)
    else:
        return False  # neither element: not a valid statement
    if not covered:
        return False
    if "Resource" in statement:
        return resource_matches(_strings(statement["Resource"]), check.resource)
    if "NotResource" in statement:
        return not resource_matches(_strings(statement["NotResource"]), check.resource)
    return False  # an identity-based statement must name its resources


def statement_applies(statement: Mapping[str, Any], check: Check) -> bool:
    """Does this statement decide the check? Undecidable parts make an Allow not apply and a Deny apply."""
    effect = str(statement.get("Effect"))
    if effect not in ("Allow", "Deny"):
        return False
    try:
        if not _targets(statement, check):
            return False
        return "Condition" not in statement or block_holds(statement["Condition"], _lowered(check.context))
    except UnsupportedCondition:
        return effect == "Deny"


def _lowered(context: Mapping[str, Sequence[str]]) -> Context:
    return {key.lower(): tuple(values) for key, values in context.items()}


def _effects(documents: Iterable[Document], check: Check) -> set[str]:
    return {str(s["Effect"]) for d in documents for s in statements(d) if statement_applies(s, check)}


def evaluate(check: Check, identity_policies: Sequence[Document],
             session_policies: Sequence[Document] | None = None) -> Decision:
    """Explicit deny wins, then an Allow is needed (from the session policy too when there is one)."""
    identity = _effects(identity_policies, check)
    session = _effects(session_policies, check) if session_policies is not None else {"Allow"}
    if "Deny" in identity:
        return Decision(allowed=False, explicit_deny=True, policy_type=IDENTITY_BASED)
    if "Deny" in session:
        return Decision(allowed=False, explicit_deny=True, policy_type=SESSION)
    if "Allow" not in identity:
        return Decision(allowed=False, policy_type=IDENTITY_BASED)
    if "Allow" not in session:
        return Decision(allowed=False, policy_type=SESSION)
    return ALLOWED
