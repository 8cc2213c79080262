"""Validators we did not write, run on what the generator makes: asl-validator (npm) on every state machine,
parliament (PyPI) on every role policy, cfn-lint on templates with many workers or many buckets.

Each runs on the committed cfn/<env>.json and on templates generated here, with CloudFormation's intrinsics
replaced by realistic values first (the validators read plain JSON, not ``Fn::Sub``). asl-validator is
installed by ./scripts/install-tools.sh (which ./scripts/test.sh calls) into tools/node/node_modules.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint

from generator import available_envs, load_env, policy_size, render_template
from generator.settings import MAX_WORKERS, EnvSettings
from generator.template import topic_values
from tests.unit.generator_helpers import settings_for

with warnings.catch_warnings():  # parliament 1.6.4 imports the deprecated pkg_resources at import time
    warnings.simplefilter("ignore", UserWarning)
    import parliament

ROOT = Path(__file__).resolve().parents[2]
ENVS = available_envs(ROOT / "envs")
ASL_VALIDATOR = ROOT / "tools" / "node" / "node_modules" / ".bin" / "asl-validator"
WORKER_COUNTS = (1, 2, 5, 64, MAX_WORKERS)
ACCOUNT_ID = "111122223333"
# An env whose larger roles need managed policies besides their inline one (see test_policy_size.py).
MANY_BUCKETS = {
    "source_buckets": " ".join(f"example-sfncopy-source-{i:02d}/source-{i:02d}/media/" for i in range(20)),
    "target_buckets": " ".join(f"example-sfncopy-target-{i:02d}/target-{i:02d}/media/" for i in range(20)),
    "kms_key_arns": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


# --- templates and their intrinsics ---------------------------------------------------------------------
def committed(env: str) -> tuple[dict[str, Any], EnvSettings]:
    settings = load_env(env, ROOT / "envs", environ={})
    template: dict[str, Any] = json.loads((ROOT / "cfn" / f"{env}.json").read_text())
    return template, settings


def generated(settings: EnvSettings) -> tuple[dict[str, Any], EnvSettings]:
    template: dict[str, Any] = json.loads(render_template(settings))
    return template, settings


def realistic_values(template: dict[str, Any], settings: EnvSettings) -> dict[str, str]:
    """What CloudFormation would put in place of the template's intrinsics in a us-east-1 style deployment."""
    functions = {logical: resource["Properties"]["FunctionName"]
                 for logical, resource in template["Resources"].items()
                 if resource["Type"] == "AWS::Lambda::Function"}
    values = policy_size.deployment_values(
        partition="aws", region=settings.region, account_id=ACCOUNT_ID,
        manifest_bucket=f"{settings.stack_name}-manifestbucket-1q2w3e4r5t6y", functions=functions)
    return {**values, **topic_values(settings, values)}


def state_machine_definition(template: dict[str, Any], settings: EnvSettings) -> str:
    definition = template["Resources"]["StateMachine"]["Properties"]["DefinitionString"]
    resolved: str = policy_size.resolve(definition, realistic_values(template, settings))
    return resolved


def identity_policies(template: dict[str, Any], settings: EnvSettings) -> dict[str, dict[str, Any]]:
    """Every identity policy of the template, resolved: each role's inline policies and the managed ones.
    (Trust policies are resource policies, which parliament does not read: it would ask them for a Resource.)"""
    values = realistic_values(template, settings)
    documents: dict[str, dict[str, Any]] = {}
    for logical, resource in sorted(template["Resources"].items()):
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                documents[f"{logical}/{policy['PolicyName']}"] = policy_size.resolve(policy["PolicyDocument"], values)
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents[logical] = policy_size.resolve(properties["PolicyDocument"], values)
    return documents


# --- asl-validator ---------------------------------------------------------------------------------------
def asl_validator(definition: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not ASL_VALIDATOR.is_file():
        pytest.fail(f"asl-validator is not installed ({ASL_VALIDATOR} is missing): run ./scripts/test.sh, which "
                    "installs it (or ./scripts/install-tools.sh alone)")
    path = tmp_path / "definition.asl.json"
    path.write_text(definition, encoding="utf-8")
    return subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def assert_valid_state_machine(definition: str, what: str, tmp_path: Path) -> None:
    result = asl_validator(definition, tmp_path)
    assert result.returncode == 0, (
        f"asl-validator finds problems in the state machine of {what} (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}")


@pytest.mark.parametrize("env", ENVS)
def test_asl_validator_accepts_the_committed_state_machines(env: str, tmp_path: Path) -> None:
    template, settings = committed(env)
    assert_valid_state_machine(state_machine_definition(template, settings), f"cfn/{env}.json", tmp_path)


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_asl_validator_accepts_the_state_machine_of_any_worker_count(workers: int, tmp_path: Path) -> None:
    template, settings = generated(load_env("dev", ROOT / "envs", environ={}).with_workers(workers))
    assert_valid_state_machine(state_machine_definition(template, settings), f"dev with {workers} workers",
                               tmp_path)


def test_asl_validator_reports_what_aws_refuses(tmp_path: Path) -> None:
    # GIVEN the mistake AWS refused in an earlier version: one state name in two Parallel branches
    branch = {"StartAt": "Copy", "States": {"Copy": {"Type": "Pass", "End": True}}}
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "Branches": [branch, branch],
                                                          "End": True}}}
    # WHEN asl-validator reads it  THEN it fails and names the problem (so a pass above means something)
    result = asl_validator(json.dumps(definition), tmp_path)
    assert result.returncode == 1
    assert "DUPLICATE_STATE_NAMES" in result.stdout + result.stderr


# --- parliament ------------------------------------------------------------------------------------------
def parliament_findings(document: dict[str, Any]) -> list[str]:
    """Every finding, of any severity, with the community auditors too. No finding is ignored."""
    policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    findings = [parliament.enhance_finding(finding) for finding in policy.findings]
    return [f"{f.issue} ({f.severity}): {f.title} {f.detail} at {f.location}" for f in findings]


def assert_no_parliament_findings(template: dict[str, Any], settings: EnvSettings, what: str) -> None:
    documents = identity_policies(template, settings)
    assert documents, f"{what} has no role policies"
    found = {name: problems for name, document in documents.items() if (problems := parliament_findings(document))}
    report = [f"{name}: {problem}\n  {json.dumps(documents[name])}"
              for name, problems in found.items() for problem in problems]
    assert found == {}, f"parliament's findings on the role policies of {what}:\n" + "\n".join(report)


@pytest.mark.parametrize("env", ENVS)
def test_parliament_finds_nothing_in_the_committed_role_policies(env: str) -> None:
    template, settings = committed(env)
    assert_no_parliament_findings(template, settings, f"cfn/{env}.json")


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("workers", [1, 64])
def test_parliament_finds_nothing_in_generated_role_policies(env: str, workers: int) -> None:
    template, settings = generated(load_env(env, ROOT / "envs", environ={}).with_workers(workers))
    assert_no_parliament_findings(template, settings, f"{env} with {workers} workers")


def test_parliament_finds_nothing_when_statements_spill_into_managed_policies(tmp_path: Path) -> None:
    template, settings = generated(settings_for(tmp_path, **MANY_BUCKETS))
    assert any(r["Type"] == "AWS::IAM::ManagedPolicy" for r in template["Resources"].values())
    assert_no_parliament_findings(template, settings, "an env with 20 prefixed sources and targets")


def test_parliament_reports_a_bad_policy() -> None:
    # GIVEN an unknown action, a condition key ListBucket does not have, and an object action on a bucket ARN
    allow = {"Effect": "Allow", "Resource": ["arn:aws:s3:::b"]}
    document = {"Version": "2012-10-17", "Statement": [
        {**allow, "Action": ["s3:ListBuckett"]},
        {**allow, "Action": ["s3:ListBucket"], "Condition": {"StringLike": {"s3:x-amz-acl": ["private"]}}},
        {**allow, "Action": ["s3:GetObject"]}]}
    # THEN parliament reports all three (so a pass above means something)
    issues = {problem.split(" ")[0] for problem in parliament_findings(document)}
    assert issues == {"UNKNOWN_ACTION", "UNKNOWN_CONDITION_FOR_ACTION", "RESOURCE_MISMATCH"}


# --- cfn-lint on templates the committed ones do not cover -----------------------------------------------
@pytest.mark.slow  # cfn-lint takes about a second a template
@pytest.mark.parametrize("workers", [64, MAX_WORKERS])
def test_cfn_lint_accepts_many_workers(workers: int) -> None:
    text = render_template(load_env("dev", ROOT / "envs", environ={}).with_workers(workers))
    assert [str(m) for m in lint(text) if m.rule.id.startswith("E")] == []


@pytest.mark.slow
def test_cfn_lint_accepts_roles_with_managed_policies(tmp_path: Path) -> None:
    text = render_template(settings_for(tmp_path, **MANY_BUCKETS))
    assert "AWS::IAM::ManagedPolicy" in text
    assert [str(m) for m in lint(text) if m.rule.id.startswith("E")] == []


# --- planning=sharded: the sharded planning states, the four sharding roles ------------------------------
SHARDED = {"planning": "sharded", "planner_shards": "64", "planner_shard_concurrency": "50"}


def sharded_env(env: str, workers: int = 2) -> EnvSettings:
    """The committed env with planning=sharded (as a process environment would set it)."""
    return load_env(env, ROOT / "envs", environ=SHARDED).with_workers(workers)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("workers", [1, 64])
def test_asl_validator_accepts_the_sharded_state_machine(env: str, workers: int, tmp_path: Path) -> None:
    template, settings = generated(sharded_env(env, workers))
    definition = state_machine_definition(template, settings)
    assert '"PlanShards"' in definition and '"Plan"' not in definition
    assert_valid_state_machine(definition, f"{env} sharded with {workers} workers", tmp_path)


@pytest.mark.parametrize("env", ENVS)
def test_parliament_finds_nothing_in_the_sharded_role_policies(env: str) -> None:
    template, settings = generated(sharded_env(env))
    assert {"PlanPrepareRole", "PlanShardRole", "PlanCollectRole", "PlanAssembleRole"} <= set(template["Resources"])
    assert_no_parliament_findings(template, settings, f"{env} sharded")


def test_parliament_finds_nothing_in_sharded_roles_with_managed_policies(tmp_path: Path) -> None:
    template, settings = generated(settings_for(tmp_path, **MANY_BUCKETS, **SHARDED))
    assert_no_parliament_findings(template, settings, "a sharded env with 20 prefixed sources and targets")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, MAX_WORKERS])
def test_cfn_lint_accepts_the_sharded_template(workers: int) -> None:
    text = render_template(sharded_env("dev", workers))
    assert [str(m) for m in lint(text) if m.rule.id.startswith("E")] == []
