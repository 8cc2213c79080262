"""The middleware's IAM question (sfncopy.emulator.iam.enforcement) with moto's answers faked: who signed,
what the role may do, what S3 answers and says; and the switch that turns enforcement off."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sfncopy.emulator.iam.enforcement import Lookups, S3Authorizer, credential_scope, denial_message
from sfncopy.emulator.iam.policy import Check, Decision
from sfncopy.emulator.iam.sessions import RolePermissions, RoleSession
from sfncopy.emulator.server import EmulatorError, iam_enforced

PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/worker-role/stack-worker"
SESSION = RoleSession(access_key_id="ASIAWORKER", arn=PRINCIPAL,
                      role_arn="arn:aws:iam::123456789012:role/worker-role", session_name="stack-worker",
                      account_id="123456789012", partition="aws", session_policy=None)
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::data/*"},
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
     "Condition": {"StringLike": {"s3:prefix": "in/*"}}},
    {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
]}


def authorizer(existing: set[str] | None = None, owner: str = "123456789012") -> S3Authorizer:
    return S3Authorizer(Lookups(
        find_session=lambda key: SESSION if key == "ASIAWORKER" else None,
        role_permissions=lambda session: RolePermissions(role_id="AROAWORKER", policies=(POLICY,)),
        session_policies=lambda session: None,
        bucket_owner=lambda bucket: owner,
        object_exists=lambda bucket, key, version: key in (existing or set()),
    ))


def environ(method: str, path: str, key: str = "ASIAWORKER", query: str = "", **headers: str) -> dict[str, Any]:
    auth = f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1:4566",
           "HTTP_AUTHORIZATION": auth, "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http"}
    env.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return env


def test_an_allowed_request_goes_on_and_a_denied_one_names_principal_action_and_resource():
    check = authorizer(existing={"in/a"})
    assert check(environ("GET", "/data/in/a"), "GetObject") is None
    assert check(environ("PUT", "/data/out/b", x_amz_tagging="a=1"), "PutObject") == (
        f'User: {PRINCIPAL} is not authorized to perform: s3:PutObjectTagging on resource: "arn:aws:s3:::data/out/b" '
        "because no identity-based policy allows the s3:PutObjectTagging action")


def test_an_explicit_deny_is_named_as_such():
    assert authorizer()(environ("DELETE", "/data/in/a"), "DeleteObject") == (
        f'User: {PRINCIPAL} is not authorized to perform: s3:DeleteObject on resource: "arn:aws:s3:::data/in/a" '
        "with an explicit deny in an identity-based policy")


def test_headbucket_under_a_prefix_grant_is_denied_and_a_listing_with_the_prefix_is_not():
    check = authorizer()
    assert "s3:ListBucket" in str(check(environ("HEAD", "/data"), "HeadBucket"))
    assert check(environ("GET", "/data", query="list-type=2&prefix=in%2F"), "ListObjectsV2") is None
    assert check(environ("GET", "/data", query="list-type=2"), "ListObjectsV2") is not None


def test_the_admin_keys_and_unsigned_requests_are_not_restricted():
    check = authorizer()
    assert check(environ("DELETE", "/data/in/a", key="testing"), "DeleteObject") is None
    unsigned = environ("PUT", "/anything")
    del unsigned["HTTP_AUTHORIZATION"]
    assert check(unsigned, "CreateBucket") is None


def test_a_presigned_url_is_judged_by_its_credential():
    presigned = environ("GET", "/data/out/x", query="X-Amz-Credential=ASIAWORKER%2F20260101%2Fus-east-1%2Fs3%2F"
                                                    "aws4_request&X-Amz-Signature=x")
    del presigned["HTTP_AUTHORIZATION"]
    assert credential_scope(presigned)[0] == "ASIAWORKER"
    assert "s3:ListBucket" in str(authorizer()(presigned, "GetObject"))  # missing object, no ListBucket


def test_reading_a_missing_object_without_listbucket_is_denied_instead_of_not_found():
    check = authorizer(existing={"out/there"})
    assert check(environ("HEAD", "/data/out/there"), "HeadObject") is None
    assert check(environ("HEAD", "/data/out/missing"), "HeadObject") == (
        f'User: {PRINCIPAL} is not authorized to perform: s3:ListBucket on resource: "arn:aws:s3:::data" '
        "because no identity-based policy allows the s3:ListBucket action")


def test_an_unknown_operation_is_denied_with_a_clear_message():
    message = str(authorizer()(environ("POST", "/data/k"), "PostObject"))
    assert message.startswith(f"User: {PRINCIPAL} is not authorized to perform the S3 operation PostObject")


def test_a_bucket_owner_condition_that_fails_is_denied_for_every_key():
    check = authorizer(owner="123456789012")
    assert check(environ("GET", "/data/in/a", key="testing", x_amz_expected_bucket_owner="999999999999"),
                 "GetObject") == "Access Denied"
    assert check(environ("GET", "/data/in/a", key="testing", x_amz_expected_bucket_owner="123456789012"),
                 "GetObject") is None
    assert check(environ("PUT", "/data/out/b", key="testing", x_amz_copy_source="/data/in/a",
                         x_amz_source_expected_bucket_owner="999999999999"), "CopyObject") == "Access Denied"


def test_the_keys_of_deleteobjects_are_read_and_the_body_is_kept_for_moto():
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Object><Key>in/a</Key></Object></Delete>")
    env = environ("POST", "/data", query="delete=")
    env.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    assert "s3:DeleteObject" in str(authorizer()(env, "DeleteObjects"))
    assert env["wsgi.input"].read() == body


def test_a_session_policy_explicit_deny_message():
    check = Check("s3:PutObject", "arn:aws:s3:::data/k")
    assert denial_message(PRINCIPAL, check, Decision(False, True, "session")).endswith(
        "with an explicit deny in a session policy")
    assert denial_message(PRINCIPAL, Check("s3:ListAllMyBuckets", "*"), Decision(False)) == (
        f"User: {PRINCIPAL} is not authorized to perform: s3:ListAllMyBuckets because no identity-based policy "
        "allows the s3:ListAllMyBuckets action")


# --- the switch --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "environment", "enforced"), [
    (False, {}, True),
    (False, {"SFNCOPY_EMULATOR_IAM": "on"}, True),
    (False, {"SFNCOPY_EMULATOR_IAM": "OFF"}, False),
    (True, {"SFNCOPY_EMULATOR_IAM": "on"}, False),
])
def test_enforcement_is_on_unless_the_flag_or_the_variable_says_off(flag, environment, enforced):
    assert iam_enforced(flag, environment) is enforced


def test_an_unknown_setting_is_refused_with_the_choices():
    with pytest.raises(EmulatorError, match=r"SFNCOPY_EMULATOR_IAM='maybe': expected one of \['off', 'on'\]"):
        iam_enforced(False, {"SFNCOPY_EMULATOR_IAM": "maybe"})


def test_the_emulator_command_has_the_switch_and_refuses_an_unknown_setting_before_starting():
    from click.testing import CliRunner

    from sfncopy.cli import cli

    assert "--no-iam" in CliRunner().invoke(cli, ["emulator", "--help"]).output
    refused = CliRunner().invoke(cli, ["emulator", "--port", "1"], env={"SFNCOPY_EMULATOR_IAM": "maybe"})
    assert refused.exit_code == 2
    assert "SFNCOPY_EMULATOR_IAM='maybe': expected one of ['off', 'on']" in refused.output
