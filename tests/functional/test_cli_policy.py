"""``sfncopy policy --env ENV`` against a stack deployed into moto's CloudFormation (in-process, mock_aws):
the statements name the deployed roles, every printed document passes parliament, and an env whose stack
is not deployed gets one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from sfncopy import deploy
from sfncopy.cli import cli
from tests.unit.generator_helpers import settings_for
from tests.unit.test_bucket_policies import parliament_findings

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENV = {"source_buckets": "their-src/in/", "target_buckets": "their-dst/out/ our-dst", "kms_key_arns": KEY,
       "object_acl": "bucket-owner-full-control"}
# moto's CloudFormation skips AWS::S3::BucketPolicy (the manifest bucket's TLS-only policy); AWS applies it.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.+S3.+BucketPolicy but")


def run(envs: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--envs-dir", str(envs), *args])


def role_arn(logical: str) -> str:
    """The deployed role's ARN as IAM has it (moto's DescribeStackResource trips over the skipped bucket policy,
    so the stack's resources are listed)."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    (name,) = [r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName="sfncopy-test")[
        "StackResourceSummaries"] if r["LogicalResourceId"] == logical]
    arn: str = boto3.client("iam", region_name=REGION).get_role(RoleName=name)["Role"]["Arn"]
    return arn


def test_policy_prints_statements_for_the_deployed_roles(aws: None, tmp_path: Path) -> None:
    # GIVEN a deployed stack reading their-src/in/ and writing their-dst/out/ and our-dst, with a KMS key
    envs = tmp_path / "envs"
    deploy.deploy(settings_for(envs, **ENV), ROOT / "lambdas", tmp_path / "cfn")

    # WHEN the owners' statements are asked for
    result = run(envs, "policy", "--env", "test")

    # THEN the output is JSON with one bucket policy per bucket and one key policy per key
    assert result.exit_code == 0, result.output
    output: dict[str, Any] = json.loads(result.output)
    assert sorted(output["bucket_policies"]) == ["our-dst", "their-dst", "their-src"]
    assert sorted(output["key_policies"]) == [KEY]
    # AND each statement's principal is one of the deployed roles (read back from IAM), never "*"
    roles = {logical: role_arn(logical) for logical in ("PlannerRole", "WorkerRole", "FinalizerRole", "CleanupRole")}
    principals = {s["Principal"]["AWS"] for kind in output.values() for document in kind.values()
                  for s in document["Statement"]}
    assert principals == set(roles.values())
    # AND the source bucket lets the worker read under in/ only, and list only that prefix
    source = {s["Sid"]: s for s in output["bucket_policies"]["their-src"]["Statement"]}
    assert source["SfncopyTestWorkerReadSources"] == {
        "Sid": "SfncopyTestWorkerReadSources", "Effect": "Allow", "Principal": {"AWS": roles["WorkerRole"]},
        "Action": ["s3:GetObject", "s3:GetObjectTagging"], "Resource": ["arn:aws:s3:::their-src/in/*"]}
    assert source["SfncopyTestWorkerListSourcesPrefix1"]["Condition"] == {"StringLike": {"s3:prefix": ["in/*"]}}
    assert not any("Cleanup" in sid or "Finalizer" in sid for sid in source)  # they never touch sources
    # AND the target lets the worker set only the env's ACL
    target = {s["Sid"]: s for s in output["bucket_policies"]["their-dst"]["Statement"]}
    assert target["SfncopyTestWorkerSetObjectAcl"]["Condition"] == {
        "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}
    assert target["SfncopyTestWorkerSetObjectAcl"]["Resource"] == ["arn:aws:s3:::their-dst/out/*"]
    # AND parliament finds nothing in any printed document but the findings justified in test_bucket_policies
    for kind, documents in (("bucket", output["bucket_policies"]), ("key", output["key_policies"])):
        for name, document in documents.items():
            assert parliament_findings(document, kind) == [], name


def test_policy_for_an_env_that_is_not_deployed_is_one_line(aws: None, tmp_path: Path) -> None:
    # GIVEN an env whose stack was never deployed
    envs = tmp_path / "envs"
    settings_for(envs, **ENV)
    # WHEN the statements are asked for  THEN one line says so and how to fix it, exit 1
    result = run(envs, "policy", "--env", "test")
    assert result.exit_code == 1
    assert result.output == ("Error: stack sfncopy-test is not deployed: deploy it first "
                             "(sfncopy deploy --env test)\n")
