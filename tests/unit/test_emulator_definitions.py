"""The definitions AWS Step Functions refuses (sfncopy.emulator.definitions), one rule at a time, by value."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from generator.state_machine import build_definition, placeholders, to_json
from sfncopy.emulator.definitions import (
    INVALID_DEFINITION,
    MAX_DEFINITION_BYTES,
    TOO_LONG,
    VALIDATION_EXCEPTION,
    definition_problems,
    rejection,
)

END: dict[str, Any] = {"Type": "Pass", "End": True}


def problems(definition: dict[str, Any]) -> list[str]:
    return definition_problems(json.dumps(definition))


def branch(*names: str) -> dict[str, Any]:
    """A branch (or Map processor) of Pass states chained in order, the last one ending it."""
    states = {name: {"Type": "Pass", "Next": after} for name, after in itertools.pairwise(names)}
    states[names[-1]] = END
    return {"StartAt": names[0], "States": states}


def parallel(*branches: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "Branches": list(branches), "End": True}}}


def test_a_valid_machine_with_every_kind_of_transition_has_no_problem():
    definition = {"StartAt": "Choose", "States": {
        "Choose": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Work"}],
                   "Default": "Done"},
        "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "Next": "Fan",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
        "Fan": {"Type": "Parallel", "Branches": [branch("A1", "A2"), branch("B1")], "Next": "Each"},
        "Each": {"Type": "Map", "ItemProcessor": branch("Item"), "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail"},
    }}
    assert problems(definition) == []
    assert rejection(json.dumps(definition)) is None


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_the_generated_state_machine_passes(workers):
    # GIVEN today's generator output (placeholders where the template's Fn::Sub puts ARNs)
    text = to_json(build_definition(workers, placeholders()))

    # THEN AWS would accept it: no problem at all
    assert definition_problems(text) == []


# 1. State names are unique in the whole machine --------------------------------------------------------------------
def test_a_state_name_repeated_in_another_parallel_branch_is_a_duplicate():
    # GIVEN two Parallel branches that both name a state CopyPayload (as the generator once did)
    definition = parallel(branch("CopyPayload0", "CopyPayload"), branch("CopyPayload1", "CopyPayload"))

    # THEN the second one is reported where it stands, in AWS's words
    assert problems(definition) == [
        "DUPLICATE_STATE_NAME: Duplicate State name: CopyPayload at /States/Fan/Branches[1]/States/CopyPayload"]


def test_a_map_processor_may_not_reuse_a_name_of_the_outer_machine():
    definition = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemProcessor": branch("Done"), "Next": "Done"},
        "Done": {"Type": "Succeed"},
    }}
    assert problems(definition) == [
        "DUPLICATE_STATE_NAME: Duplicate State name: Done at /States/Done"]


def test_a_key_repeated_in_one_states_object_is_a_duplicate_although_json_keeps_only_the_last():
    text = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "A": {"Type": "Succeed"}}}'
    assert definition_problems(text) == ["DUPLICATE_STATE_NAME: Duplicate State name: A at /States/A"]


def test_the_invalid_definition_message_joins_every_problem_in_one_quoted_list():
    # GIVEN three branches sharing a state name
    text = json.dumps(parallel(branch("X"), branch("X"), branch("X")))

    # WHEN AWS's answer is built
    refused = rejection(text)

    # THEN it is InvalidDefinition, HTTP 400, with both later occurrences in AWS's message shape
    assert refused is not None
    assert (refused.code, refused.status) == (INVALID_DEFINITION, 400)
    assert refused.message == (
        "Invalid State Machine Definition: "
        "'DUPLICATE_STATE_NAME: Duplicate State name: X at /States/Fan/Branches[1]/States/X, "
        "DUPLICATE_STATE_NAME: Duplicate State name: X at /States/Fan/Branches[2]/States/X'")


# 2. Size -----------------------------------------------------------------------------------------------------------
def test_a_definition_over_the_size_limit_is_refused_before_it_is_read():
    # GIVEN a valid definition padded with a Comment to one byte over 1,048,576
    base = {"StartAt": "A", "States": {"A": END}, "Comment": ""}
    padding = MAX_DEFINITION_BYTES - len(json.dumps(base))
    at_limit = json.dumps({**base, "Comment": "x" * padding})
    over = json.dumps({**base, "Comment": "x" * (padding + 1)})
    assert len(at_limit.encode()) == MAX_DEFINITION_BYTES

    # THEN the one at the limit passes and the one over it is the API's ValidationException
    assert definition_problems(at_limit) == []
    assert definition_problems(over) == [TOO_LONG]
    refused = rejection(over)
    assert refused is not None and refused.code == VALIDATION_EXCEPTION


def test_the_size_limit_counts_utf8_bytes():
    base = {"StartAt": "A", "States": {"A": END}, "Comment": ""}
    two_byte_chars = (MAX_DEFINITION_BYTES - len(json.dumps(base))) // 2 + 1
    text = json.dumps({**base, "Comment": "é" * two_byte_chars}, ensure_ascii=False)
    assert len(text) < MAX_DEFINITION_BYTES < len(text.encode())
    assert definition_problems(text) == [TOO_LONG]


# 3. Transitions name a state of their own scope --------------------------------------------------------------------
def test_a_missing_start_at_target_also_leaves_the_states_unreachable():
    assert problems({"StartAt": "Nope", "States": {"A": END}}) == [
        "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nope at /StartAt",
        'MISSING_TRANSITION_TARGET: State "A" is not reachable. at /States/A']


@pytest.mark.parametrize(("state", "location"), [
    ({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Ghost",
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]}, "/States/S/Next"),
    ({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Ghost"}], "Default": "Z"},
     "/States/S/Choices[0]/Next"),
    ({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Z"}], "Default": "Ghost"},
     "/States/S/Default"),
    ({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Z",
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Ghost"}]}, "/States/S/Catch[0]/Next"),
])
def test_every_kind_of_transition_to_a_missing_state_is_reported_at_its_field(state, location):
    assert problems({"StartAt": "S", "States": {"S": state, "Z": END}}) == [
        f"MISSING_TRANSITION_TARGET: Missing 'Next' target: Ghost at {location}"]


def test_a_branch_may_not_transition_to_a_state_outside_it():
    # GIVEN a Parallel branch whose state jumps to a state of the outer machine
    inner = {"StartAt": "Inside", "States": {"Inside": {"Type": "Pass", "Next": "Outside"}}}
    definition = {"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Branches": [inner], "Next": "Outside"},
        "Outside": END,
    }}

    # THEN the target is missing from the branch's scope (AWS has no other code for it)
    assert problems(definition) == [
        "MISSING_TRANSITION_TARGET: Missing 'Next' target: Outside at /States/Fan/Branches[0]/States/Inside/Next"]


def test_the_outer_machine_may_not_transition_into_a_map_processor():
    definition = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemProcessor": branch("Item"), "Next": "Item"},
    }}
    assert problems(definition) == [
        "MISSING_TRANSITION_TARGET: Missing 'Next' target: Item at /States/Each/Next",
        "MISSING_END_STATE: Workflow has no terminal state at null"]


def test_a_state_nothing_transitions_to_is_unreachable_in_a_nested_scope_too():
    processor = {"StartAt": "W", "States": {"W": END, "Ghost": END}}
    definition = {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemProcessor": processor, "End": True}}}
    assert problems(definition) == [
        'MISSING_TRANSITION_TARGET: State "Ghost" is not reachable. at /States/Each/ItemProcessor/States/Ghost']


def test_a_machine_without_a_terminal_state_reports_that_instead_of_unreachable_states():
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Next": "A"},
        "Unused": {"Type": "Pass", "Next": "A"},
    }}
    assert problems(definition) == ["MISSING_END_STATE: Workflow has no terminal state at null"]


# 4. JSON, required fields, name length, Next or End ---------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("", "MISSING_DESCRIPTION: Received a null or empty workflow input"),
    ('{"StartAt": "A", ', "INVALID_JSON_DESCRIPTION: Expecting property name enclosed in double quotes: "
                          "line 1 column 18 (char 17)"),
    ("[]", "INVALID_JSON_DESCRIPTION: a state machine definition is a JSON object, not list"),
])
def test_a_definition_that_is_not_a_json_object_is_refused(text, expected):
    assert definition_problems(text) == [expected]


def test_start_at_and_states_are_required_at_the_top_and_in_every_branch():
    assert problems({"Comment": "empty"}) == [
        "SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt, States] at /"]
    assert problems(parallel({"States": {"A": END}})) == [
        "SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt] at /States/Fan/Branches[0]"]


def test_every_state_needs_a_known_type():
    assert problems({"StartAt": "A", "States": {"A": {"End": True}}}) == [
        "SCHEMA_VALIDATION_FAILED: These fields are required: [Type] at /States/A"]
    assert problems({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": True}}}) == [
        "SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these values: "
        "[Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map] at /States/A/Type"]


def test_a_state_name_may_have_80_characters_but_not_81():
    ok, long = "S" * 80, "L" * 81
    assert problems({"StartAt": ok, "States": {ok: END}}) == []
    assert problems({"StartAt": long, "States": {long: END}}) == [
        f"INVALID_STATE_NAME: Invalid State name: State '{long}' exceeds the 80-character limit allowed by the "
        f"service at /States/{long}"]


@pytest.mark.parametrize("state", [{"Type": "Pass"}, {"Type": "Task", "Resource": "arn:x", "End": False}])
def test_a_non_terminal_state_needs_next_or_end(state):
    kind = state["Type"]
    assert problems({"StartAt": "A", "States": {"A": state, "Z": END}}) == [
        f"SCHEMA_VALIDATION_FAILED: A {kind} state needs a 'Next' field or \"End\": true at /States/A",
        'MISSING_TRANSITION_TARGET: State "Z" is not reachable. at /States/Z']


def test_choice_succeed_and_fail_need_neither_next_nor_end():
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Yes"}],
              "Default": "No"},
        "Yes": {"Type": "Succeed"},
        "No": {"Type": "Fail"},
    }}
    assert problems(definition) == []
