"""Role policies within IAM's size limits: sizes counted as IAM counts them, intrinsics at their longest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator import EnvSettingsError, available_envs, load_env, policy_size, render_template
from generator.template import FUNCTIONS, intrinsic_values
from tests.unit.generator_helpers import settings_for

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("PlannerRole", "WorkerRole", "FinalizerRole", "CleanupRole", "StateMachineRole")


def prefixed(kind: str, count: int) -> str:
    """``count`` buckets, each narrowed to a prefix of its own (the largest policies: one ListBucket each)."""
    return " ".join(f"example-sfncopy-{kind}-{i:02d}/{kind}-{i:02d}/media/" for i in range(count))


def role_documents(template: dict[str, Any], role: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inline documents, managed documents) of ``role``."""
    resources = template["Resources"]
    inline = [policy["PolicyDocument"] for policy in resources[role]["Properties"]["Policies"]]
    managed = [resource["Properties"]["PolicyDocument"] for resource in resources.values()
               if resource["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role} in resource["Properties"]["Roles"]]
    return inline, managed


def grants(documents: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) triples the documents allow, whatever statement carries them."""
    return {(action, json.dumps(resource, sort_keys=True), json.dumps(statement.get("Condition"), sort_keys=True))
            for document in documents for statement in document["Statement"]
            for action in statement["Action"] for resource in statement["Resource"]}


# --- counting -----------------------------------------------------------------------------------------------
def test_white_space_is_not_counted() -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                        "Resource": ["arn:aws:s3:::b/*"]}]}
    pretty = json.dumps(document, indent=4)  # the strings hold no white space of their own
    assert policy_size.iam_size(document) == len(pretty.replace(" ", "").replace("\n", "")) == 115


def test_intrinsics_take_the_given_values() -> None:
    values = policy_size.deployment_values(partition="aws", region="eu-west-1", account_id="111122223333",
                                           manifest_bucket="m", functions={"WorkerFunction": "s-worker"})
    document = {"Resource": [{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:x"},
                             {"Fn::Sub": "${ManifestBucket.Arn}/p/*"}, {"Fn::GetAtt": ["WorkerFunction", "Arn"]},
                             {"Fn::GetAtt": "WorkerFunction.Arn"}, {"Ref": "WorkerFunction"},
                             {"Fn::Sub": "${!Literal}-${Name}"}, {"Fn::Sub": ["${Own}", {"Own": "mine"}]}]}
    with pytest.raises(policy_size.UnresolvedIntrinsicError, match=r"'Name', which has no value here"):
        policy_size.resolve(document, values)
    document["Resource"][5] = {"Fn::Sub": "${!Literal}"}
    assert policy_size.resolve(document, values) == {"Resource": [
        "arn:aws:logs:eu-west-1:111122223333:x", "arn:aws:s3:::m/p/*",
        "arn:aws:lambda:eu-west-1:111122223333:function:s-worker",
        "arn:aws:lambda:eu-west-1:111122223333:function:s-worker", "s-worker", "${Literal}", "mine"]}


def test_sizes_are_counted_at_the_longest_values(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, region="ap-southeast-2")
    values = intrinsic_values(settings)
    assert values["AWS::Partition"] == "aws-us-gov"
    assert values["AWS::Region"] == "ap-southeast-2"
    assert len(values["AWS::AccountId"]) == 12
    assert values["ManifestBucket.Arn"] == "arn:aws-us-gov:s3:::" + "b" * 63
    assert values["PlannerFunction.Arn"].endswith(":function:sfncopy-test-planner")
    assert set(values) >= {f"{spec.logical}Function.Arn" for spec in FUNCTIONS}


# --- the envs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", available_envs(ROOT / "envs"))
def test_the_envs_roles_fit_their_inline_policy(env: str) -> None:
    settings = load_env(env, ROOT / "envs", environ={})
    template = json.loads(render_template(settings))
    values = intrinsic_values(settings)
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    for role in ROLES:
        inline, managed = role_documents(template, role)
        assert managed == []
        size = sum(policy_size.policy_size(document, values) for document in inline)
        assert size <= policy_size.MAX_ROLE_INLINE_POLICIES_SIZE // 4, (env, role, size)  # far inside the limit


def test_twenty_prefixed_sources_and_targets_spill_into_managed_policies(tmp_path: Path) -> None:
    # GIVEN 20 sources and 20 targets narrowed to prefixes: more than a role's inline policies may hold
    settings = settings_for(tmp_path, source_buckets=prefixed("source", 20), target_buckets=prefixed("target", 20))
    values = intrinsic_values(settings)
    worker = next(spec for spec in FUNCTIONS if spec.logical == "Worker")
    whole = worker.policy(settings, worker.function_name(settings))
    assert policy_size.policy_size(whole, values) > policy_size.MAX_ROLE_INLINE_POLICIES_SIZE
    # WHEN the template is generated
    template = json.loads(render_template(settings))
    # THEN each role's inline policy fits, the rest is in at most 10 managed policies of at most 6,144 each
    spilled = []
    for role in ROLES:
        inline, managed = role_documents(template, role)
        assert sum(policy_size.policy_size(d, values) for d in inline) <= policy_size.MAX_ROLE_INLINE_POLICIES_SIZE
        assert len(managed) <= policy_size.MAX_MANAGED_POLICIES_PER_ROLE
        assert all(policy_size.policy_size(d, values) <= policy_size.MAX_MANAGED_POLICY_SIZE for d in managed)
        for document in inline + managed:
            sids = [s["Sid"] for s in document["Statement"]]
            assert len(sids) == len(set(sids)), (role, sids)  # IAM wants Sids unique within a policy
        spilled += [role] if managed else []
    assert spilled == ["PlannerRole", "WorkerRole"]
    # AND the functions are created only once their roles hold all their rights
    depends = template["Resources"]["WorkerFunction"]["DependsOn"]
    assert depends == ["WorkerLogGroup", "WorkerRolePolicy1"]
    # AND the role may do exactly what the one large document allowed, no more, no less
    inline, managed = role_documents(template, "WorkerRole")
    assert grants(inline + managed) == grants([whole])
    # AND the output stays deterministic
    assert render_template(settings) == render_template(settings)


def test_a_statement_larger_than_a_managed_policy_is_cut_by_its_resources(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, source_buckets=prefixed("source", 100), target_buckets="tgt")
    values = intrinsic_values(settings)
    template = json.loads(render_template(settings))
    inline, managed = role_documents(template, "PlannerRole")
    sids = [s["Sid"] for d in inline + managed for s in d["Statement"]]
    assert [sid for sid in sids if sid.startswith("ReadSources")] == ["ReadSourcesPart1", "ReadSourcesPart2"]
    assert all(policy_size.policy_size(d, values) <= policy_size.MAX_MANAGED_POLICY_SIZE for d in managed)
    planner = next(spec for spec in FUNCTIONS if spec.logical == "Planner")
    assert grants(inline + managed) == grants([planner.policy(settings, planner.function_name(settings))])


def test_an_env_too_large_for_any_role_is_refused_naming_the_role_the_size_and_the_fix(tmp_path: Path) -> None:
    # GIVEN 300 prefixed sources and targets: more than 10,240 inline plus ten managed policies of 6,144
    settings = settings_for(tmp_path, source_buckets=prefixed("source", 300), target_buckets=prefixed("target", 300))
    # WHEN the template is generated  THEN the env file is refused, naming the role, its size and the limits
    with pytest.raises(EnvSettingsError) as refused:
        render_template(settings)
    message = str(refused.value)
    assert "test-env.sh" in message
    assert "the PlannerRole's policy would be " in message and " characters as IAM counts them" in message
    assert "10,240 inline plus 10 managed policies of 6,144" in message
    # AND what to change
    assert "source_buckets (300 entries), target_buckets (300) and kms_key_arns (0)" in message
    assert "use fewer bucket/prefix entries, or whole buckets instead of prefixes" in message
