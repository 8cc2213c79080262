"""Which state machine definitions AWS Step Functions refuses, worded as AWS words them (a pure function).

    definition_problems(text)  -> ["DUPLICATE_STATE_NAME: Duplicate State name: CopyPayload at /States/Copy/...", ...]
    rejection(text)            -> DefinitionRejected(code, message) to raise, or None for a definition AWS accepts

moto 5.2.5 accepts definitions that CreateStateMachine and UpdateStateMachine refuse (bridges.py, bridge 6, puts
this check in front of both). AWS answers ``InvalidDefinition`` (HTTP 400) with every problem in one message:

    Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: Not sure at /StartAt,
    MISSING_TRANSITION_TARGET: State "Pass One" is not reachable. at /States/Pass One'

Each problem is ``CODE: message at location``. The codes are AWS's own diagnostic codes (ValidateStateMachineDefinition
diagnostics, https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html);
asl-validator's names differ (``DUPLICATE_STATE_NAMES``, ``BRANCH_OUTBOUND_TRANSITION_TARGET``): AWS has no separate
code for a transition out of a Parallel branch or Map processor, the target is simply missing from the branch's
scope. The message texts are the ones AWS returned in public reports (cited at each rule); where no report shows
AWS's wording, the rule says so and the code is still AWS's. AWS warns that diagnostic wording and order may change:
tests should match codes and locations, not whole messages.

Checked: the definition's size; JSON; ``StartAt`` and ``States`` (and each state's ``Type``); state names at most 80
characters and unique across the whole machine (Parallel branches and Map processors included); every ``StartAt``,
``Next``, Choice ``Next``/``Default`` and Catch ``Next`` names a state of its own ``States`` object; each non-terminal
state has ``Next`` or ``End``; every state is reachable; the top level has a terminal state. Not checked: field
types and allowed fields per state type, paths, intrinsic functions, resources, JSONata (moto's own parser catches
some of these).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

# CreateStateMachine ``definition``: "Length Constraints: Minimum length of 1. Maximum length of 1048576."
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html; botocore's model
# agrees). The service quotas page calls it "Maximum size of state machine definition: 1 MB", a hard quota
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). Counted here in UTF-8 bytes, the
# stricter reading; for ASCII definitions (ours) bytes and characters are the same number.
MAX_DEFINITION_BYTES = 1_048_576
# "The state name, whose length MUST BE less than or equal to 80 Unicode characters" (Amazon States Language,
# https://states-language.net/spec.html#states-fields); the API's state names have "Maximum length of 80"
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateExitedEventDetails.html).
MAX_STATE_NAME_LENGTH = 80

INVALID_DEFINITION = "InvalidDefinition"
VALIDATION_EXCEPTION = "ValidationException"
MESSAGE_PREFIX = "Invalid State Machine Definition: "

STATE_TYPES = ("Task", "Wait", "Pass", "Succeed", "Fail", "Choice", "Parallel", "Map")
# Terminal without "End": Succeed and Fail; Choice moves on through its rules (ASL, "Transitions").
NO_NEXT_OR_END = frozenset({"Choice", "Succeed", "Fail"})

# A length constraint of the API, checked before the definition is read. An oversized member fails the request
# with ValidationException, not InvalidDefinition ("1 validation error detected: Value 'x' at 'name' failed to
# satisfy constraint: Member must have length less than or equal to 80" is AWS's shape for StartExecution's name);
# the definition is a sensitive member, so its value is left out here.
TOO_LONG = (f"1 validation error detected: Value at 'definition' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_DEFINITION_BYTES}")


class DefinitionRejected(ValueError):
    """The error AWS answers for a refused definition: ``code`` (``InvalidDefinition`` or, for an oversized
    definition, ``ValidationException``), HTTP 400, and its message."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rejection(text: str) -> DefinitionRejected | None:
    """The error CreateStateMachine / UpdateStateMachine would answer for ``text``, or None if AWS accepts it."""
    problems = definition_problems(text)
    if not problems:
        return None
    if problems == [TOO_LONG]:
        return DefinitionRejected(VALIDATION_EXCEPTION, TOO_LONG)
    return DefinitionRejected(INVALID_DEFINITION, invalid_definition_message(problems))


def invalid_definition_message(problems: list[str]) -> str:
    """AWS's InvalidDefinition message: every problem, comma-separated, in one pair of quotes (cfn-lint #4074)."""
    return f"{MESSAGE_PREFIX}'{', '.join(problems)}'"


def definition_problems(text: str) -> list[str]:
    """Every problem AWS reports for the definition ``text``, as ``CODE: message at location``; [] if none."""
    if len(text.encode("utf-8")) > MAX_DEFINITION_BYTES:
        return [TOO_LONG]
    if not text.strip():
        # MISSING_DESCRIPTION: "Received a null or empty workflow input." (diagnostic codes page)
        return ["MISSING_DESCRIPTION: Received a null or empty workflow input"]
    try:
        machine = json.loads(text, object_pairs_hook=_JsonObject.from_pairs)
    except ValueError as err:
        # INVALID_JSON_DESCRIPTION: "JSON syntax problem found." AWS quotes its own (Java) parser's message.
        return [f"INVALID_JSON_DESCRIPTION: {err}"]
    if not isinstance(machine, dict):
        return [f"INVALID_JSON_DESCRIPTION: a state machine definition is a JSON object, not {type(machine).__name__}"]
    walk = _Walk()
    walk.scope(machine, "")
    walk.top_level_end(machine)
    return walk.problems


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers which keys it had more than once (``json`` keeps only the last value)."""

    duplicate_keys: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) < len(pairs):
            seen: set[str] = set()
            repeated: list[str] = []
            for key, _ in pairs:
                if key in seen:
                    repeated.append(key)
                seen.add(key)
            obj.duplicate_keys = tuple(repeated)
        return obj


class _Walk:
    """One pass over the machine, scope by scope (the top level, each Parallel branch, each Map processor)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._names: set[str] = set()  # every state name seen so far, in any scope

    def scope(self, scope: dict[str, Any], where: str) -> None:
        """A ``{"StartAt": ..., "States": {...}}`` object at JSON-pointer-like location ``where`` ("" at the top).

        Structure (https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html): "StartAt
        (Required) A string that must exactly match (is case sensitive) the name of one of the state objects";
        "States (Required)". Parallel branches and Map processors have "fields named States and StartAt whose
        meanings are exactly like those in the top level of a state machine" (state-parallel.html,
        state-map-inline.html)."""
        missing = [field for field in ("StartAt", "States") if field not in scope]
        if missing:
            # AWS's schema message, e.g. "SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt]".
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: These fields are required: [{', '.join(missing)}] "
                                 f"at {where or '/'}")
        states = scope.get("States")
        if "States" in scope and not isinstance(states, dict):
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: The value for the field 'States' must be an OBJECT "
                                 f"at {where}/States")
        if not isinstance(states, dict):
            return
        start = scope.get("StartAt")
        if "StartAt" in scope:
            self._target(start, states, f"{where}/StartAt")
        for name, state in states.items():
            self._state(name, state, states, f"{where}/States/{name}")
        for name in getattr(states, "duplicate_keys", ()):
            self.problems.append(_duplicate(name, f"{where}/States/{name}"))
        # No walk without a StartAt (already reported); at the top level, MISSING_END_STATE replaces the walk.
        if "StartAt" in scope and (where or _has_terminal_state(states)):
            self._unreachable(start, states, where)

    def top_level_end(self, machine: dict[str, Any]) -> None:
        """MISSING_END_STATE, "The workflow does not have a terminal state." (diagnostic codes page). Measured on
        AWS (floci-io/floci #2735): only the top level is checked, its message is "Workflow has no terminal state"
        with no location ("at null"), and it replaces the top level's not-reachable diagnostics."""
        states = machine.get("States")
        if isinstance(states, dict) and states and not _has_terminal_state(states):
            self.problems.append("MISSING_END_STATE: Workflow has no terminal state at null")

    def _state(self, name: str, state: Any, states: dict[str, Any], where: str) -> None:
        if len(name) > MAX_STATE_NAME_LENGTH:
            # AWS's wording, asl-validator #69: "INVALID_STATE_NAME: Invalid State name: State '...' exceeds the
            # 80-character limit allowed by the service at /States/..."
            self.problems.append(f"INVALID_STATE_NAME: Invalid State name: State '{name}' exceeds the "
                                 f"{MAX_STATE_NAME_LENGTH}-character limit allowed by the service at {where}")
        # "State names MUST be unique within the scope of the whole state machine" (ASL, "States"), so a Parallel
        # branch or Map processor may not reuse a name from elsewhere. AWS's wording, cfn-lint #3616: "Invalid State
        # Machine Definition: 'DUPLICATE_STATE_NAME: Duplicate State name: ..."; later occurrences are reported.
        if name in self._names:
            self.problems.append(_duplicate(name, where))
        self._names.add(name)
        if not isinstance(state, dict):
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: The value for the field '{name}' must be an OBJECT "
                                 f"at {where}")
            return
        kind = state.get("Type")
        if kind is None:
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: These fields are required: [Type] at {where}")
        elif kind not in STATE_TYPES:
            # AWS's wording, quoted by LocalStack's Step Functions tests.
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these values: "
                                 f"[{', '.join(STATE_TYPES)}] at {where}/Type")
        elif kind not in NO_NEXT_OR_END and "Next" not in state and state.get("End") is not True:
            # "All non-terminal states MUST have a Next field, except for the Choice State" (ASL, "Transitions");
            # "Next ... End ... Only one of Next or End can be used in a state" (statemachine-structure.html,
            # common state fields). No public report shows AWS's words for this one: the wording is ours.
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: A {kind} state needs a 'Next' field or "
                                 f"\"End\": true at {where}")
        for target, location in _transitions(state, where):
            self._target(target, states, location)
        for nested, nested_where in _nested_scopes(state, where):
            self.scope(nested, nested_where)

    def _target(self, target: Any, states: dict[str, Any], where: str) -> None:
        """A transition must name a state of its own ``States`` object: "The value of the Next field MUST exactly
        and case-sensitively match the name of another state" (ASL, "Transitions"); "Each branch must be
        self-contained. A state in one branch of a Parallel state must not have a Next field that targets a field
        outside of that branch, nor can any other state outside the branch transition into that branch"
        (https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html); the ASL spec says the same of
        a Map's processor ("A state in the States field of an Iterator field MUST NOT have a Next field that
        targets a field outside of that States field"). AWS's wording (LocalStack PR #12487, cfn-lint #4074,
        floci-io/floci #2786): "Missing 'Next' target: <name>" for StartAt, Next, Choice Next and Default and Catch
        Next alike, at the field's location."""
        if not isinstance(target, str):
            field = where.rsplit("/", 1)[-1]
            self.problems.append(f"SCHEMA_VALIDATION_FAILED: The value for the field '{field}' must be a STRING "
                                 f"at {where}")
        elif target not in states:
            self.problems.append(f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {target} at {where}")

    def _unreachable(self, start: Any, states: dict[str, Any], where: str) -> None:
        """Every state must be reachable from its scope's StartAt. AWS's wording (cfn-lint #4073, #4074):
        'MISSING_TRANSITION_TARGET: State "Unreachable pass" is not reachable. at /States/Unreachable pass'."""
        reached: set[str] = set()
        pending = [start] if isinstance(start, str) and start in states else []
        while pending:
            name = pending.pop()
            if name in reached:
                continue
            reached.add(name)
            state = states[name]
            if isinstance(state, dict):
                pending.extend(t for t, _ in _transitions(state, "") if isinstance(t, str) and t in states)
        for name in states:
            if name not in reached:
                self.problems.append(f'MISSING_TRANSITION_TARGET: State "{name}" is not reachable. '
                                     f"at {where}/States/{name}")


def _duplicate(name: str, where: str) -> str:
    return f"DUPLICATE_STATE_NAME: Duplicate State name: {name} at {where}"


def _has_terminal_state(states: dict[str, Any]) -> bool:
    """A terminal state: "End": true, or a Succeed or Fail state (ASL, "States")."""
    return any(isinstance(s, dict) and (s.get("End") is True or s.get("Type") in ("Succeed", "Fail"))
               for s in states.values())


def _transitions(state: dict[str, Any], where: str) -> Iterator[tuple[Any, str]]:
    """(target, location) of each transition a state makes: Next, Choice rules' Next, Default, Catch Next."""
    if "Next" in state:
        yield state["Next"], f"{where}/Next"
    choices = state.get("Choices") if state.get("Type") == "Choice" else None
    for index, rule in enumerate(choices if isinstance(choices, list) else []):
        if isinstance(rule, dict) and "Next" in rule:
            yield rule["Next"], f"{where}/Choices[{index}]/Next"
    if state.get("Type") == "Choice" and "Default" in state:
        yield state["Default"], f"{where}/Default"
    catchers = state.get("Catch")
    for index, catcher in enumerate(catchers if isinstance(catchers, list) else []):
        if isinstance(catcher, dict) and "Next" in catcher:
            yield catcher["Next"], f"{where}/Catch[{index}]/Next"


def _nested_scopes(state: dict[str, Any], where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The scopes inside a state: a Parallel's Branches, a Map's ItemProcessor (or its older name, Iterator)."""
    if state.get("Type") == "Parallel" and isinstance(state.get("Branches"), list):
        for index, branch in enumerate(state["Branches"]):
            if isinstance(branch, dict):
                yield branch, f"{where}/Branches[{index}]"
    if state.get("Type") == "Map":
        for field in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(field), dict):
                yield state[field], f"{where}/{field}"
