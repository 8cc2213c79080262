"""Fault plans: parsing with every problem named, which invocation a rule hits, the seeded SlowDown draw."""

from __future__ import annotations

import pytest

from sfncopy.emulator.faults import FaultPlan, FaultPlanError, FaultState, LambdaFault, S3CorruptPart, S3Faults


def test_a_plan_round_trips_through_its_json_form():
    document = {
        "lambda": [
            {"function": "*-worker", "invocations": [2, 1], "action": "crash", "after_seconds": 0.5},
            {"function": "planner", "invocation": 1, "action": "error", "error": "Lambda.ServiceException",
             "message": "boom"},
        ],
        "s3": {"slow_down_fraction": 0.2, "seed": 7},
    }
    plan = FaultPlan.from_dict(document)
    assert plan.lambda_faults[0] == LambdaFault("*-worker", (1, 2), "crash", after_seconds=0.5)
    assert plan.lambda_faults[1].is_service_error
    assert plan.s3 == S3Faults(0.2, 7, ("CopyObject", "UploadPartCopy"))
    assert FaultPlan.from_dict(plan.to_dict()) == plan


def test_the_empty_plan_injects_nothing():
    state = FaultState()
    assert state.next_lambda_fault("any") is None
    assert not state.slow_down("CopyObject")


def test_every_problem_of_a_bad_plan_is_named():
    with pytest.raises(FaultPlanError) as caught:
        FaultPlan.from_dict({
            "lambda": [{"function": "", "invocation": 0, "action": "error"}, "not a rule"],
            "s3": {"slow_down_fraction": -1, "seed": "x", "operations": "CopyObject"},
            "sqs": {},
        })
    message = str(caught.value)
    for expected in ("lambda[0].function", "lambda[0].invocation(s): expected invocation numbers >= 1",
                     "lambda[0].error: an 'error' action needs the error name", "lambda[1]: expected an object",
                     "s3.slow_down_fraction", "s3.seed", "s3.operations", "fault plan.sqs: unknown key"):
        assert expected in message


def test_a_plan_must_be_an_object():
    with pytest.raises(FaultPlanError, match="expected a JSON object, got list"):
        FaultPlan.from_dict([])


def test_rules_hit_the_numbered_invocation_of_matching_functions_only():
    # GIVEN a rule for the 2nd and 3rd invocation of functions ending in -worker
    state = FaultState(FaultPlan((LambdaFault("*-worker", (2, 3), "timeout"),)))

    # WHEN the worker is invoked four times and the planner twice
    hits = [state.next_lambda_fault("stack-worker") is not None for _ in range(4)]
    planner = [state.next_lambda_fault("stack-planner") for _ in range(2)]

    # THEN only the worker's 2nd and 3rd were hit, and both are recorded as fired
    assert hits == [False, True, True, False]
    assert planner == [None, None]
    assert [(f.function, f.invocation) for f in state.fired()] == [("stack-worker", 2), ("stack-worker", 3)]


def test_setting_a_plan_starts_the_invocation_count_again():
    state = FaultState(FaultPlan((LambdaFault("f", (1,), "crash"),)))
    assert state.next_lambda_fault("f") is not None
    assert state.next_lambda_fault("f") is None
    state.set_plan(state.plan)
    assert state.next_lambda_fault("f") is not None


def test_slow_down_is_a_seeded_fraction_of_the_chosen_operations():
    plan = FaultPlan(s3=S3Faults(slow_down_fraction=0.25, seed=42))
    state = FaultState(plan)
    draws = [state.slow_down("UploadPartCopy") for _ in range(400)]
    again = FaultState(plan)
    assert [again.slow_down("CopyObject") for _ in range(400)] == draws
    assert 60 < sum(draws) < 140  # about a quarter
    assert not any(state.slow_down("GetObject") for _ in range(50))


def test_corrupt_part_rules_parse_and_round_trip():
    plan = FaultPlan.from_dict({"s3": {"corrupt_parts": [
        {"bucket": "target-*", "key_pattern": "*.bin", "part_number": 2},
        {"bucket": "other", "part_number": 1, "times": 1}]}})
    assert plan.s3.corrupt_parts == (S3CorruptPart("target-*", "*.bin", 2), S3CorruptPart("other", "*", 1, times=1))
    assert FaultPlan.from_dict(plan.to_dict()) == plan


def test_every_problem_of_a_corrupt_part_rule_is_named():
    with pytest.raises(FaultPlanError) as caught:
        FaultPlan.from_dict({"s3": {"corrupt_parts": [
            {"bucket": "", "key_pattern": 3, "part_number": 0, "times": -1, "size": 1}, "rule"]}})
    message = str(caught.value)
    for expected in ("s3.corrupt_parts[0].bucket", "s3.corrupt_parts[0].key_pattern",
                     "s3.corrupt_parts[0].part_number: expected a part number >= 1", "s3.corrupt_parts[0].times",
                     "s3.corrupt_parts[0].size: unknown key", "s3.corrupt_parts[1]: expected an object"):
        assert expected in message
    with pytest.raises(FaultPlanError, match=r"s3\.corrupt_parts: expected a list"):
        FaultPlan.from_dict({"s3": {"corrupt_parts": {"bucket": "b"}}})


def test_a_corrupt_part_rule_hits_its_part_of_matching_keys_as_many_times_as_asked():
    # GIVEN a rule for part 2 of *.bin in bucket t, twice
    state = FaultState(FaultPlan(s3=S3Faults(corrupt_parts=(S3CorruptPart("t", "*.bin", 2, times=2),))))

    # WHEN part copies come in  THEN only part 2 of .bin keys in t is hit, and only twice
    assert not state.corrupts("t", "a.bin", 1)
    assert not state.corrupts("t", "a.txt", 2)
    assert not state.corrupts("u", "a.bin", 2)
    assert [state.corrupts("t", "a.bin", 2) for _ in range(3)] == [True, True, False]
    assert state.corrupted_parts() == 2
    # AND setting a plan starts counting again
    state.set_plan(state.plan)
    assert state.corrupted_parts() == 0
    assert state.corrupts("t", "dir/b.bin", 2)
