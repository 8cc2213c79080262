"""planning=sharded: the definition's sharded planning states, the settings that choose them, the roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import render_template
from generator.bucket_policies import role_logical_ids
from generator.policies import assemble_policy, collect_policy, prepare_policy, shard_policy
from generator.settings import MAX_WORKER_CONCURRENCY, MAX_WORKERS, EnvSettingsError
from generator.state_machine import (
    ASSEMBLE_PLAN,
    CATCH_ALL,
    CLEANUP,
    COLLECT_HAND_ONS,
    MORE_SHARDS,
    NEXT_SHARD_GENERATION,
    PLAN_SHARD,
    PLAN_SHARDS,
    PREPARE_PLAN,
    SHARD_DONE,
    SHARD_PLANNED,
    SHARDING_STATES,
    Functions,
    ShardedPlanning,
    build_definition,
    placeholders,
    to_json,
)
from lambdas import errors, limits
from lambdas.sharding.shard import MAX_GENERATION
from tests.unit.generator_helpers import settings_for
from tests.unit.test_generator_state_machine import FNS, state_names

SHARD_FNS = Functions(planner="P", worker="W", finalizer="F", cleanup="C", prepare="PP", shard="PS", collect="PC",
                      assemble="PA")
SHARDED = ShardedPlanning(shards=32, concurrency=7)


def sharded_definition(workers: int = 3, sharded: ShardedPlanning = SHARDED) -> dict[str, Any]:
    return build_definition(workers, SHARD_FNS, sharded=sharded)


def test_single_planning_is_unchanged_by_the_switch() -> None:
    # GIVEN no sharded planning  THEN the machine starts with the one Plan task and has no sharding state
    definition = build_definition(3, SHARD_FNS)
    assert definition == build_definition(3, FNS)
    assert definition["StartAt"] == "Plan"
    assert not set(SHARDING_STATES) & set(state_names(definition))


def test_flow_prepare_shards_collect_assemble_then_the_same_stages() -> None:
    definition = sharded_definition()
    states = definition["States"]
    assert definition["StartAt"] == PREPARE_PLAN and "Plan" not in states
    assert states[PREPARE_PLAN]["Resource"] == "PP"
    assert states[PREPARE_PLAN]["Parameters"] == {"run_id.$": "$$.Execution.Name", "workers": 3, "shards": 32,
                                                  "input.$": "$"}
    assert states[PREPARE_PLAN]["ResultPath"] == "$.sharding"
    assert states[PREPARE_PLAN]["Next"] == PLAN_SHARDS
    assert states[PLAN_SHARDS]["Next"] == NEXT_SHARD_GENERATION
    assert states[NEXT_SHARD_GENERATION]["Parameters"] == {
        "generation.$": "States.MathAdd($.sharding.generation, 1)"}
    assert states[NEXT_SHARD_GENERATION]["Next"] == COLLECT_HAND_ONS
    assert states[COLLECT_HAND_ONS]["Parameters"]["generation.$"] == "$.next.generation"
    assert states[COLLECT_HAND_ONS]["Next"] == MORE_SHARDS
    assert states[MORE_SHARDS]["Choices"] == [
        {"Variable": "$.sharding.generation", "NumericGreaterThan": MAX_GENERATION, "Next": ASSEMBLE_PLAN},
        {"Variable": "$.sharding.shards", "NumericGreaterThan": 0, "Next": PLAN_SHARDS}]
    assert states[MORE_SHARDS]["Default"] == ASSEMBLE_PLAN
    # AssemblePlan leaves the PlanPointer where Plan did, and every later state is the single machine's
    assert states[ASSEMBLE_PLAN]["ResultPath"] == "$.plan" and states[ASSEMBLE_PLAN]["Next"] == "DryRun"
    single = build_definition(3, FNS)["States"]
    assert {k: v for k, v in states.items() if k not in SHARDING_STATES} == {
        k: v for k, v in single.items() if k != "Plan"}
    # every sharding step that can fail goes to Cleanup
    for name in (PREPARE_PLAN, PLAN_SHARDS, COLLECT_HAND_ONS, ASSEMBLE_PLAN):
        assert states[name]["Catch"] == [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.error", "Next": CLEANUP}]


def test_without_a_wanted_count_prepare_lets_the_partition_estimate() -> None:
    states = sharded_definition(sharded=ShardedPlanning(shards=None, concurrency=1))["States"]
    assert "shards" not in states[PREPARE_PLAN]["Parameters"]


def test_shards_run_as_a_distributed_map_over_the_items_in_s3() -> None:
    shards = sharded_definition()["States"][PLAN_SHARDS]
    assert shards["ItemReader"] == {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                                    "Parameters": {"Bucket.$": "$.sharding.manifest.bucket",
                                                   "Key.$": "$.sharding.items"}}
    assert shards["ItemSelector"] == {"run_id.$": "$.sharding.run_id", "manifest.$": "$.sharding.manifest",
                                      "shard.$": "$$.Map.Item.Value"}
    assert shards["MaxConcurrency"] == 7
    assert shards["ToleratedFailurePercentage"] == 0.0  # one failed shard fails the run
    processor = shards["ItemProcessor"]
    assert processor["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    loop = processor["States"]
    assert processor["StartAt"] == PLAN_SHARD and loop[PLAN_SHARD]["Resource"] == "PS"
    assert loop[SHARD_DONE]["Choices"] == [{"Variable": "$.done", "BooleanEquals": True, "Next": SHARD_PLANNED}]
    assert loop[SHARD_DONE]["Default"] == PLAN_SHARD
    # a shard retries transient errors and manifest conflicts like every task; KeySpaceChangedError is not retried
    retried = loop[PLAN_SHARD]["Retry"][0]["ErrorEquals"]
    assert set(errors.RETRYABLE_ERROR_NAMES) <= set(retried) and "KeySpaceChangedError" not in retried


def test_sharded_state_names_are_unique_and_the_definition_fits() -> None:
    for workers in (1, 2, 64):
        names = state_names(sharded_definition(workers))
        assert sorted({n for n in names if names.count(n) > 1}) == []
        # the single machine's states, Plan replaced by the sharding states
        assert len(names) == len(state_names(build_definition(workers, FNS))) - 1 + len(SHARDING_STATES)
    size = len(to_json(build_definition(MAX_WORKERS, placeholders(), concurrency=MAX_WORKER_CONCURRENCY,
                                        sharded=ShardedPlanning(10_000, MAX_WORKER_CONCURRENCY))).encode())
    assert size < limits.MAX_DEFINITION_BYTES


def test_sharded_planning_needs_its_functions() -> None:
    with pytest.raises(ValueError, match="prepare, shard, collect and assemble"):
        build_definition(2, FNS, sharded=SHARDED)
    with pytest.raises(ValueError, match="concurrency=0"):
        build_definition(2, SHARD_FNS, sharded=ShardedPlanning(None, 0))


# --- settings ----------------------------------------------------------------------------------------
def test_planning_defaults_to_single(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert (settings.planning, settings.sharded, settings.planner_shards) == ("single", False, None)


def test_sharded_settings_are_typed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, planning="sharded", planner_shards="64", planner_shard_concurrency="20")
    assert (settings.sharded, settings.planner_shards, settings.planner_shard_concurrency) == (True, 64, 20)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"planning": "parallel"}, "planning='parallel' (from "),
    ({"planning": "sharded", "planner_shards": "0"}, "planner_shards='0'"),
    ({"planning": "sharded", "planner_shards": "10001"}, "must be from 1 to 10000 shards"),
    ({"planning": "sharded", "planner_shard_concurrency": "10001"}, "planner_shard_concurrency='10001'"),
    ({"planner_shards": "8"}, "planner_shards='8' (from "),
    ({"planning": "single", "planner_shard_concurrency": "8"}, "applies to planning=sharded only"),
])
def test_bad_sharding_settings_are_named(tmp_path: Path, changes: dict[str, str], expected: str) -> None:
    with pytest.raises(EnvSettingsError) as raised:
        settings_for(tmp_path, **changes)
    assert expected in str(raised.value)


# --- template and roles ------------------------------------------------------------------------------
def test_the_sharded_template_has_four_more_functions_and_roles(tmp_path: Path) -> None:
    import json

    settings = settings_for(tmp_path, planning="sharded")
    resources = json.loads(render_template(settings))["Resources"]
    handlers = {name.removesuffix("Function"): r["Properties"]["Handler"].removeprefix("lambdas.handlers.")
                for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert handlers == {"Planner": "plan", "Worker": "copy", "Finalizer": "finalize", "Cleanup": "clean_up",
                        "PlanPrepare": "prepare", "PlanShard": "plan_shard", "PlanCollect": "collect",
                        "PlanAssemble": "assemble"}
    assert role_logical_ids(settings)[4:] == ["PlanPrepareRole", "PlanShardRole", "PlanCollectRole",
                                              "PlanAssembleRole"]
    machine_policy = resources["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    sids = {s["Sid"]: s for s in machine_policy["Statement"]}
    assert [r["Fn::Sub"].rsplit("/", 1)[1] for r in sids["ReadShardLists"]["Resource"]] == [
        "shards.json", "shards-gen*.json"]
    single = json.loads(render_template(settings_for(tmp_path)))["Resources"]
    assert "PlanShardFunction" not in single and "ReadShardLists" not in json.dumps(single)


def actions(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def test_each_sharding_role_has_only_its_steps_rights(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, planning="sharded")
    logs = {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert actions(prepare_policy(settings, "f")) == logs | {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    assert actions(shard_policy(settings, "f")) == logs | {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    assert actions(collect_policy(settings, "f")) == logs | {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    assert actions(assemble_policy(settings, "f")) == logs | {
        "s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload",
        "s3:ListBucket"}
    # the collector touches the run's files only; the shards write nothing outside them
    collecting = str(collect_policy(settings, "f"))
    assert "tgt-bucket" not in collecting and "src-bucket" not in collecting
    writes = [s for s in shard_policy(settings, "f")["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Sid"] for s in writes] == ["ReadWriteRunFiles"]


# --- cross-account: the sharding roles need the bucket owners' statements too ----------------------------
def test_bucket_and_key_policies_of_a_sharded_env_name_the_sharding_roles(tmp_path: Path) -> None:
    from generator.bucket_policies import RoleArnsError, bucket_policies, key_policies, policy_documents

    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = settings_for(tmp_path, planning="sharded", source_buckets="their-src/in/",
                            target_buckets="their-dst/out/", kms_key_arns=key)
    arns = {logical: f"arn:aws:iam::123456789012:role/sfncopy-test-{logical}-1A2B3C"
            for logical in role_logical_ids(settings)}
    # GIVEN a deployed sharded stack missing a sharding role  THEN the documents are refused with the fix
    with pytest.raises(RoleArnsError, match="no PlanShardRole"):
        policy_documents(settings, {k: v for k, v in arns.items() if k != "PlanShardRole"})
    # WHEN all are there  THEN each sharding role that touches a bucket has its statements on it
    documents = bucket_policies(settings, arns)
    principals = {b: {s["Principal"]["AWS"].split("/")[1].rsplit("-", 1)[0] for s in d["Statement"]}
                  for b, d in documents.items()}
    assert {"sfncopy-test-PlanPrepareRole", "sfncopy-test-PlanShardRole",
            "sfncopy-test-PlanAssembleRole"} <= principals["their-src"]
    assert "sfncopy-test-PlanCollectRole" not in principals["their-src"] | principals["their-dst"]
    assert "sfncopy-test-PlanAssembleRole" in principals["their-dst"]
    sids = {s["Sid"] for s in key_policies(settings, arns)[key]["Statement"]}
    assert {"SfncopyTestPlanAssembleUseKeyForS3", "SfncopyTestPlanShardUseKeyForS3"} <= sids
