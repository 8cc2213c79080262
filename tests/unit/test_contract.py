"""The Retry/Catch contract: every error name the state machine matches exists in lambdas/errors.py."""

from __future__ import annotations

import json
from pathlib import Path

from generator.state_machine import build_definition, error_names, placeholders
from lambdas import errors

ROOT = Path(__file__).resolve().parents[2]
# Names Step Functions and Lambda's service raise themselves, not our code.
SERVICE_PREFIXES = ("States.", "Lambda.", "Sandbox.", "Runtime.")


def own_names(names: set[str]) -> set[str]:
    return {n for n in names if not n.startswith(SERVICE_PREFIXES)}


def test_generated_error_names_are_exception_classes_in_lambdas_errors() -> None:
    # GIVEN the names a generated definition retries or catches
    names = own_names(error_names(build_definition(3, placeholders())))
    # THEN each is an exception class of lambdas.errors (Lambda reports errorType = the class name)
    assert names == set(errors.RETRYABLE_ERROR_NAMES)
    for name in names:
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.SfnCopyError), name


def test_committed_templates_use_only_known_error_names() -> None:
    for path in sorted((ROOT / "cfn").glob("*.json")):
        template = json.loads(path.read_text())
        definition = json.loads(template["Resources"]["StateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"])
        for name in own_names(error_names(definition)):
            assert isinstance(getattr(errors, name, None), type), f"{path.name}: {name} is not in lambdas.errors"


def test_retryable_and_fatal_names_are_classes_and_disjoint() -> None:
    for name in errors.RETRYABLE_ERROR_NAMES + errors.FATAL_ERROR_NAMES:
        assert issubclass(getattr(errors, name), errors.SfnCopyError), name
    assert not set(errors.RETRYABLE_ERROR_NAMES) & set(errors.FATAL_ERROR_NAMES)
