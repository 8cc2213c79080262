"""The restore branch of the state machine (generator/state_machine.py, ``restore_branch``) and its template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator import state_machine as sm
from generator.settings import EnvSettingsError, load_env
from generator.template import build_template, function_specs, lambda_environment

ROOT = Path(__file__).resolve().parents[2]


def test_the_restore_branch_sits_beside_the_workers_only_when_asked() -> None:
    functions = sm.placeholders()
    without = sm.build_definition(3, functions)
    with_restore = sm.build_definition(3, functions, restore=True)
    assert len(without["States"]["Copy"]["Branches"]) == 3
    branches = with_restore["States"]["Copy"]["Branches"]
    assert len(branches) == 4 and branches[-1]["StartAt"] == sm.REQUEST_RESTORES
    assert not any(name in sm.to_json(without) for name in sm.RESTORE_STATES)


def test_the_wait_is_a_wait_state_whose_interval_the_function_sets_and_failures_settle_the_branch() -> None:
    states = sm.restore_branch("${RestoreFunction.Arn}", sm.PRODUCTION_RETRY)["States"]
    # the wait costs no Lambda time: a Wait state, its seconds from the function's answer
    assert states[sm.WAIT_FOR_RESTORES] == {"Type": "Wait", "SecondsPath": "$.wait_seconds",
                                            "Next": sm.CHECK_RESTORES}
    assert states[sm.RESTORES_PENDING]["Choices"] == [
        {"Variable": "$.done", "BooleanEquals": True, "Next": sm.RESTORES_SETTLED}]
    # a failure of either Task is recorded and ends the branch without failing the Parallel (the workers go on)
    for task in (sm.REQUEST_RESTORES, sm.CHECK_RESTORES):
        assert states[task]["Catch"][0]["Next"] == sm.RECORD_RESTORE_FAILURE
        assert states[task]["Retry"][0]["ErrorEquals"] == list(sm.retry_error_names())
    assert states[sm.RECORD_RESTORE_FAILURE]["Next"] == sm.RESTORES_SETTLED
    assert states[sm.RESTORES_SETTLED] == {"Type": "Succeed"}


def test_restore_archived_adds_the_function_its_settings_and_nothing_otherwise() -> None:
    plain = load_env("dev", ROOT / "envs", environ={})
    restoring = load_env("dev", ROOT / "envs", environ={"restore_archived": "true", "restore_bound_seconds": "30"})
    assert "Restore" not in [s.logical for s in function_specs(plain)]
    assert "SFNCOPY_RESTORE" not in lambda_environment(plain)
    assert [s.logical for s in function_specs(restoring)][-1] == "Restore"
    assert lambda_environment(restoring)["SFNCOPY_RESTORE"] == "enabled"
    assert lambda_environment(restoring)["SFNCOPY_RESTORE_BOUND_SECONDS"] == "30"
    template = json.loads(build_template(restoring).to_json())
    invoke = json.dumps(template["Resources"]["StateMachineRole"])
    assert "RestoreFunction" in invoke  # the state machine may invoke the restore function


def test_the_test_only_restore_settings_are_refused_without_restore_archived() -> None:
    with pytest.raises(EnvSettingsError, match=r"restore_bound_seconds=.*applies to restore_archived=true only"):
        load_env("dev", ROOT / "envs", environ={"restore_bound_seconds": "30"})
