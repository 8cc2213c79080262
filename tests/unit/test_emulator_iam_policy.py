"""IAM policy evaluation in the emulator (sfncopy.emulator.iam.policy / conditions), by value, against
hand-written policies: explicit deny, default deny, conditions on absent keys, wildcards, NotAction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from sfncopy.emulator.iam.conditions import UnsupportedCondition, condition_holds, split_operator
from sfncopy.emulator.iam.policy import SESSION, Check, Decision, evaluate, parse_document

BUCKET = "arn:aws:s3:::media-bucket"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**allow(action, resource, condition), "Effect": "Deny"}


def allowed(check: Check, *documents: Mapping[str, Any]) -> bool:
    return evaluate(check, list(documents)).allowed


PREFIX_LISTING = policy(allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["media/*"]}}))


def listing(prefix: str | None) -> Check:
    return Check("s3:ListBucket", BUCKET, {} if prefix is None else {"s3:prefix": (prefix,)})


# --- ListBucket conditioned on s3:prefix ------------------------------------------------------------------
def test_a_prefix_conditioned_listbucket_grant_allows_a_listing_under_that_prefix():
    assert allowed(listing("media/x"), PREFIX_LISTING)
    assert allowed(listing("media/"), PREFIX_LISTING)


def test_a_prefix_conditioned_listbucket_grant_does_not_allow_a_listing_without_prefix_nor_headbucket():
    # HeadBucket is checked as s3:ListBucket with no s3:prefix in its context: the condition key is absent,
    # so StringLike is false and the Allow does not apply
    assert not allowed(listing(None), PREFIX_LISTING)
    assert not allowed(listing("other/"), PREFIX_LISTING)


# --- explicit deny, default deny, failed conditions -------------------------------------------------------
def test_an_explicit_deny_wins_over_an_allow():
    documents = [policy(allow("s3:*", "*")), policy(deny("s3:DeleteObject", f"{BUCKET}/*"))]
    decision = evaluate(Check("s3:DeleteObject", f"{BUCKET}/a"), documents)
    assert decision == Decision(allowed=False, explicit_deny=True, policy_type="identity-based")
    assert evaluate(Check("s3:GetObject", f"{BUCKET}/a"), documents).allowed


def test_without_any_allow_a_request_is_denied_by_default():
    assert evaluate(Check("s3:GetObject", f"{BUCKET}/a"), []) == Decision(allowed=False, explicit_deny=False)
    assert evaluate(Check("s3:GetObject", f"{BUCKET}/a"), [policy(allow("s3:PutObject", "*"))]).allowed is False


def test_an_allow_whose_condition_fails_is_not_a_deny_and_another_allow_still_applies():
    documents = [policy(allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": "media/*"}})),
                 policy(allow("s3:ListBucket", BUCKET))]
    assert allowed(listing(None), *documents)
    assert allowed(listing("elsewhere/"), *documents)


def test_a_deny_whose_condition_fails_does_not_apply():
    documents = [policy(allow("s3:GetObject", "*"),
                        deny("s3:GetObject", "*", {"Bool": {"aws:SecureTransport": "false"}}))]
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": ("true",)}), *documents)
    assert not allowed(Check("s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": ("false",)}), *documents)


# --- Action and Resource matching -------------------------------------------------------------------------
def test_actions_match_case_insensitively_with_wildcards():
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a"), policy(allow("S3:getobject", "*")))
    assert allowed(Check("s3:GetObjectTagging", f"{BUCKET}/a"), policy(allow("s3:GetObject*", "*")))
    assert allowed(Check("s3:PutObject", f"{BUCKET}/a"), policy(allow("s3:?utObject", "*")))
    assert not allowed(Check("s3:PutObjectTagging", f"{BUCKET}/a"), policy(allow("s3:PutObject", "*")))


def test_resources_match_case_sensitively_with_wildcards_across_slashes():
    document = policy(allow("s3:GetObject", f"{BUCKET}/media/*"))
    assert allowed(Check("s3:GetObject", f"{BUCKET}/media/2024/a.jpg"), document)
    assert not allowed(Check("s3:GetObject", f"{BUCKET}/Media/a.jpg"), document)
    assert not allowed(Check("s3:GetObject", f"{BUCKET}/other/a.jpg"), document)
    assert not allowed(Check("s3:GetObject", f"{BUCKET}-2/media/a.jpg"), document)
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a1"), policy(allow("s3:GetObject", f"{BUCKET}/a?")))
    # an object grant does not cover the bucket itself
    assert not allowed(Check("s3:ListBucket", BUCKET), policy(allow("s3:*", f"{BUCKET}/*")))


def test_not_action_applies_to_every_action_but_the_named_ones():
    document = policy({"Effect": "Allow", "NotAction": ["s3:Delete*"], "Resource": "*"})
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a"), document)
    assert not allowed(Check("s3:DeleteObject", f"{BUCKET}/a"), document)


def test_not_resource_applies_to_every_resource_but_the_named_ones():
    document = policy({"Effect": "Deny", "Action": "s3:*", "NotResource": [f"{BUCKET}/public/*"]},
                      allow("s3:GetObject", "*"))
    assert allowed(Check("s3:GetObject", f"{BUCKET}/public/a"), document)
    assert not allowed(Check("s3:GetObject", f"{BUCKET}/private/a"), document)


def test_a_statement_without_resource_does_not_allow():
    assert not allowed(Check("s3:GetObject", f"{BUCKET}/a"), policy({"Effect": "Allow", "Action": "s3:*"}))


# --- conditions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("operator", "holds"), [
    ("StringEquals", False), ("StringLike", False), ("StringEqualsIgnoreCase", False), ("NumericEquals", False),
    ("Bool", False), ("ArnLike", False),
    ("StringNotEquals", True), ("StringNotLike", True), ("StringNotEqualsIgnoreCase", True),
    ("NumericNotEquals", True), ("ArnNotLike", True),
    ("StringEqualsIfExists", True), ("StringLikeIfExists", True),
    ("ForAnyValue:StringEquals", False), ("ForAllValues:StringEquals", True),
])
def test_a_condition_on_a_key_absent_from_the_request_is_false_unless_negated_or_if_exists(operator, holds):
    assert condition_holds(operator, "s3:prefix", ["x"], {}) is holds


def test_several_values_match_any_but_a_negated_operator_must_match_none():
    context = {"s3:prefix": ("b/",)}
    assert condition_holds("StringEquals", "s3:prefix", ["a/", "b/"], context)
    assert not condition_holds("StringNotEquals", "s3:prefix", ["a/", "b/"], context)
    assert condition_holds("StringNotEquals", "s3:prefix", ["a/", "c/"], context)


def test_string_operators():
    context = {"s3:prefix": ("Media/2024/",)}
    assert condition_holds("StringLike", "s3:prefix", ["Media/*"], context)
    assert not condition_holds("StringLike", "s3:prefix", ["media/*"], context)  # case-sensitive
    assert condition_holds("StringEqualsIgnoreCase", "s3:prefix", ["media/2024/"], context)
    assert condition_holds("StringNotLike", "s3:prefix", ["other/*"], context)
    assert condition_holds("StringLike", "s3:prefix", ["Media/20??/"], context)


def test_condition_key_names_are_case_insensitive():
    document = policy(allow("s3:ListBucket", BUCKET, {"StringLike": {"S3:Prefix": "media/*"}}))
    assert allowed(listing("media/a"), document)


def test_null_checks_whether_the_key_is_present():
    assert condition_holds("Null", "s3:prefix", ["true"], {})
    assert not condition_holds("Null", "s3:prefix", ["false"], {})
    assert condition_holds("Null", "s3:prefix", ["false"], {"s3:prefix": ("",)})


def test_numeric_bool_date_and_ip_operators():
    assert condition_holds("NumericLessThanEquals", "s3:max-keys", ["1000"], {"s3:max-keys": ("10",)})
    assert not condition_holds("NumericLessThanEquals", "s3:max-keys", ["5"], {"s3:max-keys": ("10",)})
    assert not condition_holds("NumericEquals", "s3:max-keys", ["5"], {"s3:max-keys": ("five",)})
    assert condition_holds("Bool", "aws:SecureTransport", ["false"], {"aws:securetransport": ("false",)})
    assert condition_holds("DateLessThan", "aws:CurrentTime", ["2030-01-01T00:00:00Z"],
                           {"aws:currenttime": ("2026-05-01T12:00:00Z",)})
    assert condition_holds("IpAddress", "aws:SourceIp", ["127.0.0.0/8"], {"aws:sourceip": ("127.0.0.1",)})
    assert condition_holds("NotIpAddress", "aws:SourceIp", ["10.0.0.0/8"], {"aws:sourceip": ("127.0.0.1",)})


def test_set_operators_on_a_multivalued_key():
    tags = {"s3:requestobjecttagkeys": ("project", "owner")}
    assert condition_holds("ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["project", "owner", "x"], tags)
    assert not condition_holds("ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["project"], tags)
    assert condition_holds("ForAnyValue:StringEquals", "s3:RequestObjectTagKeys", ["owner"], tags)
    assert not condition_holds("ForAnyValue:StringEquals", "s3:RequestObjectTagKeys", ["cost"], tags)


def test_arn_operators_compare_each_part():
    context = {"aws:principalarn": ("arn:aws:iam::123456789012:role/worker",)}
    assert condition_holds("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/work*"], context)
    assert not condition_holds("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::*:user/*"], context)


def test_an_unsupported_condition_makes_an_allow_not_apply_and_a_deny_apply():
    with pytest.raises(UnsupportedCondition):
        split_operator("BinaryEquals")
    unsupported = {"BinaryEquals": {"s3:prefix": "AA=="}}
    check = Check("s3:GetObject", f"{BUCKET}/a")
    assert not allowed(check, policy(allow("s3:GetObject", "*", unsupported)))
    assert not allowed(check, policy(allow("s3:GetObject", "*"), deny("s3:GetObject", "*", unsupported)))
    variable = {"StringLike": {"s3:prefix": "${aws:username}/*"}}
    assert not allowed(listing("alice/"), policy(allow("s3:ListBucket", BUCKET, variable)))


# --- documents and session policies ----------------------------------------------------------------------
def test_documents_come_as_json_text_or_objects_with_one_or_many_statements():
    single = {"Version": "2012-10-17", "Statement": allow("s3:GetObject", "*")}
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a"), parse_document(json.dumps(single)))
    assert allowed(Check("s3:GetObject", f"{BUCKET}/a"), parse_document(single))


def test_a_session_policy_narrows_the_role_and_names_itself_in_denials():
    role = [policy(allow("s3:*", "*"))]
    session = [policy(allow("s3:GetObject", "*"))]
    assert evaluate(Check("s3:GetObject", f"{BUCKET}/a"), role, session).allowed
    assert evaluate(Check("s3:PutObject", f"{BUCKET}/a"), role, session) == Decision(False, False, SESSION)
    assert not evaluate(Check("s3:PutObject", f"{BUCKET}/a"), [], [policy(allow("s3:*", "*"))]).allowed
