"""The statements other accounts add for this stack (generator/bucket_policies.py), asserted by value: per
bucket only what each role does there, with the stack's own prefix scoping and conditions; KMS key
statements per role; the roles' s3:PutObjectAcl only with the env's object_acl; parliament finds nothing
but what is justified below."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from generator import policies, policy_size
from generator.bucket_policies import (
    RoleArnsError,
    bucket_policies,
    key_policies,
    partition_of,
    policy_documents,
    role_logical_ids,
    sid_prefix,
)
from generator.settings import EnvSettingsError
from generator.template import lambda_environment
from tests.unit.generator_helpers import settings_for

with warnings.catch_warnings():  # parliament 1.6.4 imports the deprecated pkg_resources at import time
    warnings.simplefilter("ignore")
    import parliament

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCOUNT = "123456789012"
ARNS = {f"{name}Role": f"arn:aws:iam::{ACCOUNT}:role/sfncopy-test-{name}Role-1A2B3C"
        for name in ("Planner", "Worker", "Finalizer", "Cleanup")}
CROSS_ACCOUNT_ENV = {"source_buckets": "their-src/in/ our-src", "target_buckets": "their-dst/out/ their-dst/more/",
                     "kms_key_arns": KEY, "object_acl": "bucket-owner-full-control"}
WORKER_TARGET = sorted(policies.WORKER_TARGET)

# Findings parliament reports that these documents must have, each with the reason it is right:
JUSTIFIED = {
    # A key policy's Resource is "*", which means the key the policy is attached to (AWS KMS developer guide,
    # "Creating a key policy"); parliament reads it as every key.
    ("key", "RESOURCE_STAR"),
    # s3:PutObjectAcl manages permissions, but these statements allow it only with the one canned ACL of the
    # env (StringEquals s3:x-amz-acl), which gives the bucket's owner control of the copies and nobody else
    # anything: it is what a write carrying x-amz-acl needs (see generator/policies.py, acl_statements).
    ("bucket", "PERMISSIONS_MANAGEMENT_ACTIONS"),
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS"),
}


def parliament_findings(document: dict[str, Any], kind: str) -> list[str]:
    """Every finding of any severity, community auditors included, except the JUSTIFIED ones."""
    policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return [f"{f.issue}: {f.detail} at {f.location}" for f in policy.findings if (kind, f.issue) not in JUSTIFIED]


def statements_by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return settings_for(tmp_path, **CROSS_ACCOUNT_ENV)


# --- bucket policies --------------------------------------------------------------------------------------
def test_a_source_narrowed_to_a_prefix_gets_reads_and_a_prefix_conditioned_list_for_planner_and_worker(settings):
    # GIVEN an env reading their-src/in/  WHEN the bucket's statements are built
    document = bucket_policies(settings, ARNS)["their-src"]
    # THEN exactly the planner's and the worker's reads, under in/ only, and ListBucket only for s3:prefix in/*
    reads = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectTagging"],
             "Resource": ["arn:aws:s3:::their-src/in/*"]}
    listing = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::their-src"],
               "Condition": {"StringLike": {"s3:prefix": ["in/*"]}}}
    assert document == {"Version": "2012-10-17", "Statement": [
        {"Sid": "SfncopyTestPlannerReadSources", "Principal": {"AWS": ARNS["PlannerRole"]}, **reads},
        {"Sid": "SfncopyTestPlannerListSourcesPrefix1", "Principal": {"AWS": ARNS["PlannerRole"]}, **listing},
        {"Sid": "SfncopyTestWorkerReadSources", "Principal": {"AWS": ARNS["WorkerRole"]}, **reads},
        {"Sid": "SfncopyTestWorkerListSourcesPrefix1", "Principal": {"AWS": ARNS["WorkerRole"]}, **listing},
    ]}


def test_a_whole_source_bucket_is_listed_without_a_condition(settings):
    sids = statements_by_sid(bucket_policies(settings, ARNS)["our-src"])
    assert sids["SfncopyTestWorkerListSources"]["Resource"] == ["arn:aws:s3:::our-src"]
    assert "Condition" not in sids["SfncopyTestWorkerListSources"]
    assert sids["SfncopyTestWorkerReadSources"]["Resource"] == ["arn:aws:s3:::our-src/*"]


def test_a_target_gets_each_roles_own_actions_under_its_prefixes(settings):
    # GIVEN a target bucket narrowed to two prefixes  WHEN its statements are built
    sids = statements_by_sid(bucket_policies(settings, ARNS)["their-dst"])
    objects = ["arn:aws:s3:::their-dst/more/*", "arn:aws:s3:::their-dst/out/*"]
    acl = {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}
    # THEN each role has the actions it uses there and nothing else, on both prefixes
    actions = {sid: (s["Principal"]["AWS"], s["Action"], s["Resource"], s.get("Condition")) for sid, s in sids.items()}
    prefixes = {"StringLike": {"s3:prefix": ["more/*", "out/*"]}}
    bucket = ["arn:aws:s3:::their-dst"]
    assert actions == {
        "SfncopyTestPlannerStartSplitCopies": (ARNS["PlannerRole"], sorted(policies.PLANNER_TARGET), objects, None),
        "SfncopyTestPlannerSetObjectAcl": (ARNS["PlannerRole"], ["s3:PutObjectAcl"], objects, acl),
        "SfncopyTestPlannerListTargetsPrefix1": (ARNS["PlannerRole"], ["s3:ListBucket"], bucket, prefixes),
        "SfncopyTestWorkerWriteTargets": (ARNS["WorkerRole"], WORKER_TARGET, objects, None),
        "SfncopyTestWorkerSetObjectAcl": (ARNS["WorkerRole"], ["s3:PutObjectAcl"], objects, acl),
        "SfncopyTestWorkerListTargetsPrefix1": (ARNS["WorkerRole"], ["s3:ListBucket"], bucket, prefixes),
        "SfncopyTestFinalizerCompleteAndCheckTargets": (
            ARNS["FinalizerRole"], sorted(policies.FINALIZER_TARGET), objects, None),
        "SfncopyTestFinalizerListTargetsPrefix1": (ARNS["FinalizerRole"], ["s3:ListBucket"], bucket, prefixes),
        "SfncopyTestCleanupAbortTargetUploads": (ARNS["CleanupRole"], sorted(policies.CLEANUP_TARGET), objects, None),
        "SfncopyTestCleanupFindTargetUploads": (ARNS["CleanupRole"], ["s3:ListBucketMultipartUploads"], bucket, None),
    }


def test_every_bucket_of_the_env_has_a_document_and_no_statement_reaches_outside_it(settings):
    documents = bucket_policies(settings, ARNS)
    assert sorted(documents) == ["our-src", "their-dst", "their-src"]
    for bucket, document in documents.items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Principal"]["AWS"] in ARNS.values()  # one role, never "*"
            assert all(r == f"arn:aws:s3:::{bucket}" or r.startswith(f"arn:aws:s3:::{bucket}/")
                       for r in statement["Resource"]), statement
            assert "*" not in statement["Resource"] and all(a.startswith("s3:") for a in statement["Action"])


def test_a_bucket_that_is_source_and_target_gets_both_sets(tmp_path):
    settings = settings_for(tmp_path, source_buckets="shared/in/", target_buckets="shared/out/")
    sids = statements_by_sid(bucket_policies(settings, ARNS)["shared"])
    assert sids["SfncopyTestWorkerReadSources"]["Resource"] == ["arn:aws:s3:::shared/in/*"]
    assert sids["SfncopyTestWorkerWriteTargets"]["Resource"] == ["arn:aws:s3:::shared/out/*"]


def test_the_partition_comes_from_the_deployed_roles(settings):
    arns = {k: v.replace("arn:aws:", "arn:aws-cn:") for k, v in ARNS.items()}
    statements = bucket_policies(settings, arns)["our-src"]["Statement"]
    assert {r.split(":")[1] for s in statements for r in s["Resource"]} == {"aws-cn"}
    assert partition_of("arn:aws-us-gov:iam::1:role/r") == "aws-us-gov"
    with pytest.raises(RoleArnsError):
        partition_of("not-an-arn")


def test_without_object_acl_no_role_may_set_acls_anywhere(tmp_path):
    settings = settings_for(tmp_path, **{**CROSS_ACCOUNT_ENV, "object_acl": None})
    text = json.dumps(policy_documents(settings, ARNS))
    assert "s3:PutObjectAcl" not in text


# --- key policies -----------------------------------------------------------------------------------------
def test_each_key_lets_the_roles_that_touch_object_data_use_it_for_s3(settings):
    assert key_policies(settings, ARNS) == {KEY: {"Version": "2012-10-17", "Statement": [
        {"Sid": "SfncopyTestPlannerUseKeyForS3", "Effect": "Allow", "Principal": {"AWS": ARNS["PlannerRole"]},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"},
        {"Sid": "SfncopyTestWorkerUseKeyForS3", "Effect": "Allow", "Principal": {"AWS": ARNS["WorkerRole"]},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"},
        {"Sid": "SfncopyTestFinalizerUseKeyForS3", "Effect": "Allow", "Principal": {"AWS": ARNS["FinalizerRole"]},
         "Action": ["kms:Decrypt"], "Resource": "*"},
    ]}}


def test_no_keys_no_key_policies(tmp_path):
    assert key_policies(settings_for(tmp_path), ARNS) == {}


# --- the whole output -------------------------------------------------------------------------------------
def test_a_missing_role_is_refused_with_the_fix(settings):
    arns = {k: v for k, v in ARNS.items() if k != "CleanupRole"}
    with pytest.raises(RoleArnsError, match="the deployed stack has no CleanupRole: redeploy it"):
        policy_documents(settings, arns)


def test_role_ids_and_sid_prefix(settings):
    assert role_logical_ids() == ["PlannerRole", "WorkerRole", "FinalizerRole", "CleanupRole"]
    assert sid_prefix(settings) == "SfncopyTest"


def test_parliament_finds_nothing_unjustified_in_any_document(settings):
    output = policy_documents(settings, ARNS)
    found = {name: problems for kind, documents in (("bucket", output["bucket_policies"]),
                                                    ("key", output["key_policies"]))
             for name, document in documents.items() if (problems := parliament_findings(document, kind))}
    assert found == {}


def test_the_justified_findings_are_really_there(settings):
    # GIVEN the same documents checked with nothing excused  THEN exactly the JUSTIFIED findings show (so the
    # exceptions above excuse something real, and nothing else is hidden)
    output = policy_documents(settings, ARNS)
    issues = set()
    for kind, documents in (("bucket", output["bucket_policies"]), ("key", output["key_policies"])):
        for document in documents.values():
            policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
            issues |= {(kind, f.issue) for f in policy.findings}
    assert issues == {("key", "RESOURCE_STAR"), ("bucket", "PERMISSIONS_MANAGEMENT_ACTIONS")}


# --- the stack's own roles: s3:PutObjectAcl only with object_acl ----------------------------------------
def test_planner_and_worker_may_set_the_envs_acl_on_targets_and_nobody_else_any(tmp_path):
    settings = settings_for(tmp_path, target_buckets="dst/out/", object_acl="bucket-owner-full-control")
    expected = {"Sid": "SetObjectAcl", "Effect": "Allow", "Action": ["s3:PutObjectAcl"],
                "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::dst/out/*"}],
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}
    for build, wanted in ((policies.planner_policy, True), (policies.worker_policy, True),
                          (policies.finalizer_policy, False), (policies.cleanup_policy, False)):
        statements = build(settings, "fn")["Statement"]
        acl = [s for s in statements if "s3:PutObjectAcl" in s["Action"]]
        assert acl == ([expected] if wanted else []), build.__name__


def test_without_object_acl_no_role_has_s3_put_object_acl(tmp_path):
    settings = settings_for(tmp_path)
    for build in (policies.planner_policy, policies.worker_policy, policies.finalizer_policy, policies.cleanup_policy):
        assert "s3:PutObjectAcl" not in json.dumps(build(settings, "fn"))


def test_parliament_on_the_roles_with_object_acl(tmp_path):
    # GIVEN the roles of an env with object_acl, their intrinsics resolved as CloudFormation would
    settings = settings_for(tmp_path, **CROSS_ACCOUNT_ENV)
    values = policy_size.deployment_values(partition="aws", region="us-east-1", account_id=ACCOUNT,
                                           manifest_bucket="sfncopy-test-manifest", functions={})
    for build in (policies.planner_policy, policies.worker_policy):
        document = policy_size.resolve(build(settings, "sfncopy-test-fn"), values)
        # THEN parliament finds nothing but the justified permissions-management action
        assert parliament_findings(document, "identity") == [], build.__name__


def test_the_lambdas_get_the_envs_acl_only_when_set(tmp_path):
    assert "SFNCOPY_OBJECT_ACL" not in lambda_environment(settings_for(tmp_path / "a"))
    env = lambda_environment(settings_for(tmp_path / "b", object_acl="bucket-owner-read"))
    assert env["SFNCOPY_OBJECT_ACL"] == "bucket-owner-read"


def test_an_env_with_another_acl_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(EnvSettingsError, match=r"object_acl='public-read' .*expected one of "
                                               r"bucket-owner-full-control, bucket-owner-read"):
        settings_for(tmp_path, object_acl="public-read")
