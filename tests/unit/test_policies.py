"""IAM documents grant nothing outside the configured buckets, prefixes and keys (asserted on the documents)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from generator import policies, render_template
from tests.unit.generator_helpers import settings_for

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLES = ("PlannerRole", "WorkerRole", "FinalizerRole", "CleanupRole")
S3_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:s3:::([^/]+)(?:/(.*))?$")
WRITES = {"s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject"}


def text(resource: Any) -> str:
    """A resource expression as one string: Fn::Sub bodies as written, GetAtt as 'Logical.Arn'."""
    if isinstance(resource, str):
        return resource
    if "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    if "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    raise AssertionError(f"unexpected resource expression {resource!r}")


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    result: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return result


def grants(template: dict[str, Any], role: str) -> list[tuple[str, str]]:
    """(action, resource) pairs the role's document allows."""
    pairs = []
    for statement in statements(template, role):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            for resource in statement["Resource"]:
                pairs.append((action, text(resource)))
    return pairs


@pytest.fixture
def template(tmp_path: Path) -> dict[str, Any]:
    settings = settings_for(tmp_path, source_buckets="src-a/data/ src-b", target_buckets="tgt-a tgt-b/out/",
                            manifest_bucket="manifests", manifest_prefix="sfncopy/", kms_key_arns=KEY)
    result: dict[str, Any] = json.loads(render_template(settings))
    return result


def test_no_wildcard_resources(template: dict[str, Any]) -> None:
    for role in (*ROLES, "StateMachineRole"):
        for action, resource in grants(template, role):
            assert resource != "*", (role, action)
            match = S3_ARN.match(resource)
            if match:
                assert "*" not in match.group(1), (role, action, resource)  # never a bucket wildcard


def test_s3_rights_stay_inside_the_configured_locations(template: dict[str, Any]) -> None:
    allowed = {"src-a": "data/", "src-b": "", "tgt-a": "", "tgt-b": "out/", "manifests": "sfncopy/"}
    for role in ROLES:
        for action, resource in grants(template, role):
            if not action.startswith("s3:"):
                continue
            match = S3_ARN.match(resource)
            assert match, (role, action, resource)
            bucket, key = match.group(1), match.group(2)
            assert bucket in allowed, (role, resource)
            if key is not None:
                assert key == allowed[bucket] + "*", (role, action, resource)


def test_sources_are_read_only_and_writes_go_to_targets_and_manifest(template: dict[str, Any]) -> None:
    for role in ROLES:
        for action, resource in grants(template, role):
            match = S3_ARN.match(resource)
            bucket = match.group(1) if match else ""
            if bucket in ("src-a", "src-b"):
                assert action in {"s3:GetObject", "s3:GetObjectTagging", "s3:ListBucket"}, (role, action)
            if action in WRITES:
                assert bucket in {"tgt-a", "tgt-b", "manifests"}, (role, action, resource)


def test_who_may_touch_what(template: dict[str, Any]) -> None:
    def buckets(role: str, action: str) -> set[str]:
        found = set()
        for granted, resource in grants(template, role):
            match = S3_ARN.match(resource)
            if granted == action and match:
                found.add(match.group(1))
        return found

    assert buckets("PlannerRole", "s3:GetObject") == {"src-a", "src-b", "tgt-a", "tgt-b", "manifests"}
    assert buckets("WorkerRole", "s3:PutObject") == {"tgt-a", "tgt-b", "manifests"}
    assert buckets("WorkerRole", "s3:PutObjectTagging") == {"tgt-a", "tgt-b"}
    # the planner starts split uploads with the source's tags (x-amz-tagging needs s3:PutObjectTagging)
    assert buckets("PlannerRole", "s3:PutObjectTagging") == {"tgt-a", "tgt-b"}
    assert buckets("FinalizerRole", "s3:GetObject") == {"tgt-a", "tgt-b", "manifests"}  # no source access
    assert buckets("CleanupRole", "s3:ListBucketMultipartUploads") == {"tgt-a", "tgt-b"}
    assert buckets("CleanupRole", "s3:GetObject") == {"manifests"}
    # the finalizer's report.csv is a multipart upload in the run folder: it and cleanup may abort it
    assert buckets("FinalizerRole", "s3:AbortMultipartUpload") == {"tgt-a", "tgt-b", "manifests"}
    assert buckets("CleanupRole", "s3:AbortMultipartUpload") == {"tgt-a", "tgt-b", "manifests"}
    assert "manifests" not in buckets("WorkerRole", "s3:AbortMultipartUpload")


def test_prefixed_buckets_are_listed_only_under_their_prefix(template: dict[str, Any]) -> None:
    listing = [s for s in statements(template, "PlannerRole") if s["Action"] == ["s3:ListBucket"]]
    conditions = {text(r): s.get("Condition") for s in listing if "Condition" in s for r in s["Resource"]}
    assert conditions["arn:${AWS::Partition}:s3:::src-a"] == {"StringLike": {"s3:prefix": ["data/*"]}}
    assert conditions["arn:${AWS::Partition}:s3:::tgt-b"] == {"StringLike": {"s3:prefix": ["out/*"]}}
    assert conditions["arn:${AWS::Partition}:s3:::manifests"] == {"StringLike": {"s3:prefix": ["sfncopy/*"]}}
    unconditioned = {text(r) for s in listing if "Condition" not in s for r in s["Resource"]}
    assert unconditioned == {"arn:${AWS::Partition}:s3:::src-b", "arn:${AWS::Partition}:s3:::tgt-a"}


def test_buckets_narrowed_to_the_same_prefixes_share_one_listing_statement() -> None:
    # GIVEN three buckets narrowed to in/ and one to other/ (a role's inline policies have a size limit)
    locations = [policies.Location(f"arn:${{AWS::Partition}}:s3:::{b}", p)
                 for b, p in (("b1", "in/"), ("b2", "in/"), ("b3", "in/"), ("b4", "other/"), ("b5", ""))]
    listing = policies.list_statements("List", locations)
    # THEN one statement per distinct prefix set, plus one for the whole buckets
    assert [(s["Sid"], [text(r) for r in s["Resource"]], s.get("Condition")) for s in listing] == [
        ("List", ["arn:${AWS::Partition}:s3:::b5"], None),
        ("ListPrefix1", [f"arn:${{AWS::Partition}}:s3:::{b}" for b in ("b1", "b2", "b3")],
         {"StringLike": {"s3:prefix": ["in/*"]}}),
        ("ListPrefix2", ["arn:${AWS::Partition}:s3:::b4"], {"StringLike": {"s3:prefix": ["other/*"]}}),
    ]


def test_kms_rights_only_on_the_configured_keys(template: dict[str, Any], tmp_path: Path) -> None:
    for role in ("PlannerRole", "WorkerRole", "FinalizerRole"):
        kms = {(a, r) for a, r in grants(template, role) if a.startswith("kms:")}
        assert kms == {(a, KEY) for a in ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*",
                                          "kms:ReEncrypt*")}
    assert not [a for a, _ in grants(template, "CleanupRole") if a.startswith("kms:")]
    without_keys = json.loads(render_template(settings_for(tmp_path / "nokeys")))
    for role in ROLES:
        assert not [a for a, _ in grants(without_keys, role) if a.startswith("kms:")]


def test_each_function_writes_only_its_own_log_group(template: dict[str, Any]) -> None:
    for role, suffix in zip(ROLES, ("planner", "worker", "finalizer", "cleanup"), strict=True):
        logs = {r for a, r in grants(template, role) if a.startswith("logs:")}
        assert logs == {"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                        f"/aws/lambda/sfncopy-test-{suffix}:*"}


def test_state_machine_may_invoke_its_four_functions_and_run_only_its_own_distributed_maps(
        template: dict[str, Any]) -> None:
    # GIVEN the env's stack "sfncopy-test", its manifest location manifests/sfncopy/ and one KMS key
    account = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    # THEN the state machine's role may invoke the four functions, start executions of itself only (by its
    # name: no reference back to the machine), describe and stop its own executions (the children's
    # "<name>/<label>:<id>" included), read the workers' payload lists and the finalize shards' list, and decrypt
    # them with the env's key
    assert set(grants(template, "StateMachineRole")) == {
        *{("lambda:InvokeFunction", f"{name}Function.Arn") for name in ("Planner", "Worker", "Finalizer", "Cleanup")},
        ("states:StartExecution", f"{account}:stateMachine:sfncopy-test"),
        *{(action, f"{account}:{resource}") for action in ("states:DescribeExecution", "states:StopExecution")
          for resource in ("execution:sfncopy-test:*", "execution:sfncopy-test/*", "express:sfncopy-test:*:*")},
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::manifests/sfncopy/runs/*/plan/workers/*"),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::manifests/sfncopy/runs/*/finalizer/shards.json"),
        ("kms:Decrypt", KEY),
    }
    machine = template["Resources"]["StateMachine"]["Properties"]
    assert machine["StateMachineName"] == "sfncopy-test"
    trust = template["Resources"]["StateMachineRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]


def test_created_manifest_bucket_is_referenced_by_its_arn(tmp_path: Path) -> None:
    template = json.loads(render_template(settings_for(tmp_path, manifest_bucket="create")))
    manifest = {r for a, r in grants(template, "WorkerRole") if a == "s3:PutObject" and "ManifestBucket" in r}
    assert manifest == {"${ManifestBucket.Arn}/sfncopy/*"}


def test_only_the_restore_role_may_restore_and_only_the_configured_sources(tmp_path: Path) -> None:
    # GIVEN an env with restore_archived=true and sources narrowed to a prefix
    settings = settings_for(tmp_path, source_buckets="src-a/data/ src-b", target_buckets="tgt-a",
                            manifest_bucket="manifests", restore_archived="true")
    template: dict[str, Any] = json.loads(render_template(settings))
    # THEN s3:RestoreObject is granted to the restore role alone, on exactly the source locations
    restores = {role: sorted(r for a, r in grants(template, role) if a == "s3:RestoreObject")
                for role in (*ROLES, "RestoreRole")}
    assert restores == {"PlannerRole": [], "WorkerRole": [], "FinalizerRole": [], "CleanupRole": [],
                        "RestoreRole": ["arn:${AWS::Partition}:s3:::src-a/data/*",
                                        "arn:${AWS::Partition}:s3:::src-b/*"]}
    # AND the restore role writes only to targets and the manifest, as the worker does
    written = {S3_ARN.match(r).group(1) for a, r in grants(template, "RestoreRole")  # type: ignore[union-attr]
               if a in WRITES and S3_ARN.match(r)}
    assert written == {"tgt-a", "manifests"}
