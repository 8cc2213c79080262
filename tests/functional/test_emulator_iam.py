"""IAM enforcement on the in-process emulator: a role made through IAM with a hand-written inline policy,
assumed through the emulator's STS, is held to that policy by S3 as on AWS; the admin keys are not; a
deployed Lambda runs with its role's credentials; with enforcement off the denied calls pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sfncopy.emulator import Emulator, free_port
from sfncopy.emulator.iam.sessions import find_session
from tests.functional.emulator_helpers import invoke, lambda_zip

REGION = "us-east-1"
ACCOUNT = "123456789012"
SOURCE, TARGET = "iam-source", "iam-target"
PROBE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{SOURCE}",
     "Condition": {"StringLike": {"s3:prefix": ["media/*"]}}},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{SOURCE}/media/*"},
    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{TARGET}/*"},
]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# Reports the credentials it runs with, who STS says it is, and what S3 answers to two writes.
PROBE_HANDLER = '''
import os
import boto3
from botocore.exceptions import ClientError


def handler(event, context):
    answer = {"access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
              "caller": boto3.client("sts").get_caller_identity()["Arn"]}
    for name in ("allowed", "denied"):
        try:
            boto3.client("s3").put_object(Bucket=event["bucket"], Key=event[name], Body=b"x")
            answer[name] = "ok"
        except ClientError as err:
            answer[name] = err.response["Error"]["Code"] + ": " + err.response["Error"]["Message"]
    return answer
'''


def client(emulator: Emulator, service: str, credentials: dict[str, str] | None = None) -> Any:
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=emulator.endpoint, region_name=REGION,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}), **keys)


def create_role(iam: Any, name: str, policy: dict[str, Any]) -> str:
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"])
    iam.put_role_policy(RoleName=name, PolicyName="hand-written", PolicyDocument=json.dumps(policy))
    return arn


def assume(emulator: Emulator, role_arn: str) -> dict[str, str]:
    keys = client(emulator, "sts").assume_role(RoleArn=role_arn, RoleSessionName="debug")["Credentials"]
    return {"aws_access_key_id": keys["AccessKeyId"], "aws_secret_access_key": keys["SecretAccessKey"],
            "aws_session_token": keys["SessionToken"]}


@pytest.fixture(scope="class")
def world(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """An emulator (IAM on or off as the class says), two buckets, the probe role and clients for it."""
    with Emulator(port=free_port(), enforce_iam=request.cls.ENFORCE_IAM) as emulator:
        admin = client(emulator, "s3")
        for bucket in (SOURCE, TARGET):
            admin.create_bucket(Bucket=bucket)
        for key in ("media/a.jpg", "other/b.jpg"):
            admin.put_object(Bucket=SOURCE, Key=key, Body=b"payload", Tagging="project=blue")
        role_arn = create_role(client(emulator, "iam"), "probe-role", PROBE_POLICY)
        yield {"emulator": emulator, "admin": admin, "role_arn": role_arn,
               "probe": client(emulator, "s3", assume(emulator, role_arn))}


def denied(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error: dict[str, str] = raised.value.response["Error"]
    return error


def access_denied(action: str, resource: str) -> str:
    return (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/probe-role/debug is not authorized to perform: {action} "
            f'on resource: "{resource}" because no identity-based policy allows the {action} action')


class TestEnforced:
    ENFORCE_IAM = True

    def test_what_the_policy_allows_succeeds(self, world):
        probe = world["probe"]
        listed = probe.list_objects_v2(Bucket=SOURCE, Prefix="media/")
        assert [o["Key"] for o in listed["Contents"]] == ["media/a.jpg"]
        assert probe.get_object(Bucket=SOURCE, Key="media/a.jpg")["Body"].read() == b"payload"
        probe.put_object(Bucket=TARGET, Key="plain", Body=b"x")
        probe.copy_object(Bucket=TARGET, Key="copied", CopySource={"Bucket": SOURCE, "Key": "media/a.jpg"},
                          TaggingDirective="REPLACE")
        assert world["admin"].get_object(Bucket=TARGET, Key="copied")["Body"].read() == b"payload"

    def test_headbucket_is_denied_under_a_prefix_conditioned_listbucket_grant(self, world):
        # GIVEN ListBucket granted only with StringLike s3:prefix media/*  WHEN the role calls HeadBucket
        before = world["emulator"].stats.snapshot()["s3_denied"].get("HeadBucket", 0)
        error = denied(world["probe"].head_bucket, Bucket=SOURCE)
        # THEN 403 (a HEAD answer has no body to carry the message) and the denial is counted
        assert error["Code"] == "403"
        assert world["emulator"].stats.snapshot()["s3_denied"]["HeadBucket"] == before + 1

    def test_a_listing_without_the_prefix_is_denied_naming_the_action_and_bucket(self, world):
        error = denied(world["probe"].list_objects_v2, Bucket=SOURCE)
        assert error == {"Code": "AccessDenied", "Message": access_denied("s3:ListBucket", f"arn:aws:s3:::{SOURCE}")}

    def test_a_copy_without_getobject_on_the_source_is_denied(self, world):
        error = denied(world["probe"].copy_object, Bucket=TARGET, Key="stolen",
                       CopySource={"Bucket": SOURCE, "Key": "other/b.jpg"}, TaggingDirective="REPLACE")
        assert error["Message"] == access_denied("s3:GetObject", f"arn:aws:s3:::{SOURCE}/other/b.jpg")
        assert "stolen" not in [o["Key"] for o in world["admin"].list_objects_v2(Bucket=TARGET).get("Contents", [])]

    def test_copying_tags_needs_the_tagging_actions(self, world):
        error = denied(world["probe"].copy_object, Bucket=TARGET, Key="with-tags",
                       CopySource={"Bucket": SOURCE, "Key": "media/a.jpg"})  # TaggingDirective COPY by default
        assert error["Message"] == access_denied("s3:GetObjectTagging", f"arn:aws:s3:::{SOURCE}/media/a.jpg")

    def test_a_tagged_putobject_without_putobjecttagging_is_denied(self, world):
        error = denied(world["probe"].put_object, Bucket=TARGET, Key="tagged", Body=b"x", Tagging="a=1")
        assert error["Message"] == access_denied("s3:PutObjectTagging", f"arn:aws:s3:::{TARGET}/tagged")

    def test_reading_a_missing_object_without_listbucket_is_403_not_404(self, world):
        assert denied(world["probe"].head_object, Bucket=SOURCE, Key="media/missing.jpg")["Code"] == "403"
        assert denied(world["admin"].head_object, Bucket=SOURCE, Key="media/missing.jpg")["Code"] == "404"

    def test_the_admin_keys_stay_unrestricted(self, world):
        admin = world["admin"]
        admin.head_bucket(Bucket=SOURCE)
        assert len(admin.list_objects_v2(Bucket=SOURCE)["Contents"]) == 2
        admin.copy_object(Bucket=TARGET, Key="admin-copy", CopySource={"Bucket": SOURCE, "Key": "other/b.jpg"})
        admin.put_object(Bucket=TARGET, Key="admin-tagged", Body=b"x", Tagging="a=1")

    def test_a_policy_change_applies_to_the_next_request(self, world):
        iam = client(world["emulator"], "iam")
        iam.put_role_policy(RoleName="probe-role", PolicyName="tags", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": f"arn:aws:s3:::{TARGET}/*"}]}))
        try:
            world["probe"].put_object(Bucket=TARGET, Key="tagged-later", Body=b"x", Tagging="a=1")
        finally:
            iam.delete_role_policy(RoleName="probe-role", PolicyName="tags")

    def test_deleteobjects_needs_deleteobject_on_every_key(self, world):
        admin, probe = world["admin"], world["probe"]
        admin.put_object(Bucket=TARGET, Key="doomed", Body=b"x")
        batch = {"Objects": [{"Key": "doomed"}]}
        error = denied(probe.delete_objects, Bucket=TARGET, Delete=batch)
        assert error["Message"] == access_denied("s3:DeleteObject", f"arn:aws:s3:::{TARGET}/doomed")
        iam = client(world["emulator"], "iam")
        iam.put_role_policy(RoleName="probe-role", PolicyName="delete", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{TARGET}/*"}]}))
        try:
            assert [d["Key"] for d in probe.delete_objects(Bucket=TARGET, Delete=batch)["Deleted"]] == ["doomed"]
        finally:
            iam.delete_role_policy(RoleName="probe-role", PolicyName="delete")
        assert denied(admin.head_object, Bucket=TARGET, Key="doomed")["Code"] == "404"

    def test_a_deployed_lambda_runs_with_its_roles_credentials(self, world):
        # GIVEN a function whose role may write under from-lambda/ only
        emulator = world["emulator"]
        iam, lam = client(emulator, "iam"), client(emulator, "lambda")
        role_arn = create_role(iam, "lambda-probe-role", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{TARGET}/from-lambda/*"}]})
        lam.create_function(FunctionName="iam-probe", Runtime="python3.11", Role=role_arn, Handler="app.handler",
                            Code={"ZipFile": lambda_zip({"app.py": PROBE_HANDLER})}, Timeout=10)
        event = {"bucket": TARGET, "allowed": "from-lambda/ok", "denied": "elsewhere/no"}

        # WHEN it runs
        error, answer = invoke(lam, "iam-probe", event)

        # THEN its keys are an AssumeRole session of its role, named after the function, and S3 judges by the role
        assert error is None, answer
        session = find_session(answer["access_key_id"])
        assert session is not None and session.role_arn == role_arn
        assert answer["caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/lambda-probe-role/iam-probe"
        assert answer["allowed"] == "ok"
        assert answer["denied"] == (
            f"AccessDenied: User: arn:aws:sts::{ACCOUNT}:assumed-role/lambda-probe-role/iam-probe is not authorized "
            f'to perform: s3:PutObject on resource: "arn:aws:s3:::{TARGET}/elsewhere/no" because no identity-based '
            "policy allows the s3:PutObject action")

        # AND a new role gets new workers with the new role's keys
        lam.update_function_configuration(FunctionName="iam-probe", Role=world["role_arn"])
        _, again = invoke(lam, "iam-probe", event)
        assert again["caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/probe-role/iam-probe"
        assert again["allowed"] == "ok"  # probe-role may write anywhere in the target


class TestNotEnforced:
    ENFORCE_IAM = False

    def test_the_same_denied_calls_pass(self, world):
        probe = world["probe"]
        probe.head_bucket(Bucket=SOURCE)
        assert len(probe.list_objects_v2(Bucket=SOURCE)["Contents"]) == 2
        probe.copy_object(Bucket=TARGET, Key="copied", CopySource={"Bucket": SOURCE, "Key": "other/b.jpg"})
        probe.put_object(Bucket=TARGET, Key="tagged", Body=b"x", Tagging="a=1")
        assert world["emulator"].stats.snapshot()["s3_denied"] == {}
