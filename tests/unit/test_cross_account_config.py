"""Cross-account options of the s3_copy_config (options.acl, expected_bucket_owner, request_payer): parsed
into the config, carried per bucket, refused with their JSON path and the fix, and checked against the
deployed stack's object_acl."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lambdas.config import check_object_acl, parse_config
from lambdas.errors import ConfigError, SettingsError
from lambdas.models import BucketAccess, CopyConfig
from lambdas.settings import Settings

OWNER_A, OWNER_B = "111122223333", "444455556666"
CROSS_ACCOUNT: dict[str, Any] = {"s3_copy_config": {
    "source_s3_config": [
        {"s3_bucket": "their-source", "s3_path": "in/", "expected_bucket_owner": OWNER_A,
         "request_payer": "requester"},
        {"s3_bucket": "their-source", "s3_path": "more/"},
        {"s3_bucket": "our-source"},
    ],
    "target_s3_config": [
        {"file_types": ["*"], "s3_bucket": "their-target", "s3_path": "copies/", "expected_bucket_owner": OWNER_B},
        {"file_types": ["jpg"], "s3_bucket": "our-target"},
    ],
    "options": {"acl": "bucket-owner-full-control"},
}}


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """CROSS_ACCOUNT with the value at ``path`` (keys and indexes under s3_copy_config) replaced."""
    doc = copy.deepcopy(CROSS_ACCOUNT)
    node = doc["s3_copy_config"]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    return info.value.problems


# --- accepted ------------------------------------------------------------------------------------------
def test_the_options_are_read_into_the_config():
    # GIVEN a config with an ACL, owners on a source and a target, and a Requester Pays source
    config = parse_config(CROSS_ACCOUNT)
    # THEN each lands on its own field, and what was left out stays empty
    assert config.options.acl == "bucket-owner-full-control"
    assert [(s.expected_bucket_owner, s.request_payer) for s in config.sources] == [
        (OWNER_A, "requester"), ("", ""), ("", "")]
    assert [t.expected_bucket_owner for t in config.targets] == [OWNER_B, ""]


def test_conditions_are_per_bucket_so_every_request_to_a_bucket_carries_them():
    # GIVEN the owner and payer set on one of two sources of a bucket
    # WHEN the config is turned into what each bucket's requests carry
    access = parse_config(CROSS_ACCOUNT).bucket_access()
    # THEN the bucket has them (for both sources), targets get the ACL, and nothing is invented elsewhere
    assert access == {
        "their-source": BucketAccess(expected_owner=OWNER_A, request_payer="requester"),
        "their-target": BucketAccess(expected_owner=OWNER_B, object_acl="bucket-owner-full-control"),
        "our-target": BucketAccess(object_acl="bucket-owner-full-control"),
    }
    assert "our-source" not in access


def test_a_config_without_them_carries_nothing():
    doc = changed(("options",), {})
    doc["s3_copy_config"]["source_s3_config"] = [{"s3_bucket": "our-source"}]
    doc["s3_copy_config"]["target_s3_config"] = [{"file_types": ["*"], "s3_bucket": "our-target"}]
    assert parse_config(doc).bucket_access() == {}


def test_the_options_survive_the_plan_file_round_trip():
    config = parse_config(CROSS_ACCOUNT)
    assert CopyConfig.from_dict(config.to_dict()) == config


def test_a_plan_written_before_these_options_still_reads():
    # GIVEN the config of a plan file written by an older version (no owner, payer or acl keys)
    old = {"sources": [{"bucket": "b", "prefix": ""}],
           "targets": [{"index": 0, "bucket": "t", "prefix": "", "file_types": ["*"]}],
           "options": {"overwrite": "always"}}
    # THEN it reads with the options off
    config = CopyConfig.from_dict(old)
    assert (config.sources[0].expected_bucket_owner, config.sources[0].request_payer, config.options.acl) == (
        "", "", None)
    assert config.bucket_access() == {}


# --- refused, each with its path and the fix -------------------------------------------------------------
@pytest.mark.parametrize(("path", "value", "expected"), [
    (("options", "acl"), "public-read",
     's3_copy_config.options.acl: "public-read" is not accepted: sfncopy sets only one of '
     '"bucket-owner-full-control", "bucket-owner-read" (they give the target bucket\'s owner access to the '
     'copies); write "bucket-owner-full-control", or remove "acl" for S3\'s default (private to the writer)'),
    (("options", "acl"), "bucket-owner-fullcontrol",
     's3_copy_config.options.acl: expected one of "bucket-owner-full-control", "bucket-owner-read", got '
     '"bucket-owner-fullcontrol"; did you mean "bucket-owner-full-control"?'),
    (("options", "acl"), True,
     's3_copy_config.options.acl: expected one of "bucket-owner-full-control", "bucket-owner-read", got true'),
    (("source_s3_config", 0, "expected_bucket_owner"), "1234",
     's3_copy_config.source_s3_config[0].expected_bucket_owner: expected a 12-digit AWS account id, got "1234"; '
     'write the bucket owner\'s 12-digit account id, e.g. "111122223333"'),
    (("source_s3_config", 0, "expected_bucket_owner"), "1111-2222-3333",
     's3_copy_config.source_s3_config[0].expected_bucket_owner: expected a 12-digit AWS account id, got '
     '"1111-2222-3333"; write "111122223333"'),
    (("target_s3_config", 0, "expected_bucket_owner"), 444455556666,
     's3_copy_config.target_s3_config[0].expected_bucket_owner: expected a string, got 444455556666; write it in '
     'double quotes: "444455556666"'),
    (("source_s3_config", 0, "request_payer"), "BucketOwner",
     's3_copy_config.source_s3_config[0].request_payer: expected one of "requester", got "BucketOwner"'),
    (("source_s3_config", 0, "expected_owner"), OWNER_A,
     's3_copy_config.source_s3_config[0].expected_owner: unknown key; did you mean "expected_bucket_owner"?'),
    (("target_s3_config", 0, "request_payer"), "requester",
     's3_copy_config.target_s3_config[0].request_payer: unknown key; remove it (known keys:'),
])
def test_bad_values_are_named_with_their_path_and_the_fix(path, value, expected):
    problems = problems_of(changed(path, value))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_one_bucket_with_two_expected_owners_is_refused():
    # GIVEN the same bucket expected to be owned by one account as a source and another as a target
    doc = changed(("target_s3_config", 1), {"file_types": ["jpg"], "s3_bucket": "their-source", "s3_path": "out/",
                                            "expected_bucket_owner": OWNER_B})
    # THEN the second is refused, naming the first
    assert problems_of(doc) == [
        f's3_copy_config.target_s3_config[1].expected_bucket_owner: bucket "their-source" is expected to be owned '
        f"by {OWNER_B} here but by {OWNER_A} at s3_copy_config.source_s3_config[0]; a bucket has one owner: write "
        "the same account id in both"]


# --- the deployed stack decides which ACL it may set ----------------------------------------------------
def test_an_acl_is_refused_by_a_stack_without_object_acl():
    assert check_object_acl(parse_config(CROSS_ACCOUNT), "") == [
        's3_copy_config.options.acl: this stack may not set object ACLs ("bucket-owner-full-control"): its roles '
        "have no s3:PutObjectAcl; set object_acl=bucket-owner-full-control in envs/<ENV>-env.sh and redeploy "
        '(it grants the roles s3:PutObjectAcl), or remove "acl"']


def test_another_acl_than_the_stacks_is_refused():
    config = parse_config(changed(("options", "acl"), "bucket-owner-read"))
    assert check_object_acl(config, "bucket-owner-full-control") == [
        's3_copy_config.options.acl: this stack may set only the ACL "bucket-owner-full-control" (object_acl of its '
        'env file), not "bucket-owner-read"; write "bucket-owner-full-control", or set '
        "object_acl=bucket-owner-read in envs/<ENV>-env.sh and redeploy (it grants the roles s3:PutObjectAcl)"]


@pytest.mark.parametrize("allowed", ["", "bucket-owner-full-control"])
def test_no_acl_is_always_fine_and_the_stacks_acl_is_fine(allowed):
    assert check_object_acl(parse_config(changed(("options",), {})), allowed) == []
    assert check_object_acl(parse_config(CROSS_ACCOUNT), "bucket-owner-full-control") == []


def test_the_lambdas_read_the_stacks_acl_from_their_environment():
    base = {"SFNCOPY_MANIFEST_BUCKET": "m"}
    assert Settings.from_environ(base).object_acl == ""
    assert Settings.from_environ({**base, "SFNCOPY_OBJECT_ACL": "bucket-owner-full-control"}).object_acl == \
        "bucket-owner-full-control"
    with pytest.raises(SettingsError, match="SFNCOPY_OBJECT_ACL='public-read' must be one of "
                                            "bucket-owner-full-control, bucket-owner-read"):
        Settings.from_environ({**base, "SFNCOPY_OBJECT_ACL": "public-read"})


def test_validate_shows_the_owners_the_payer_and_the_acl():
    from sfncopy.summary import config_lines

    lines = config_lines(parse_config(CROSS_ACCOUNT))
    assert lines[1:4] == [f"source: s3://their-source/in/ (owner {OWNER_A}, requester pays)",
                          "source: s3://their-source/more/", "source: s3://our-source/"]
    assert lines[4] == f"target 0: s3://their-target/copies/ <- every file (owner {OWNER_B})"
    assert lines[-1].endswith(", acl=bucket-owner-full-control")
