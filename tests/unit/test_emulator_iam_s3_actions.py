"""Which IAM checks each S3 request needs (sfncopy.emulator.iam.s3_actions), by value, and what a
hand-written policy then allows."""

from __future__ import annotations

from typing import Any

import pytest

from sfncopy.emulator.iam.policy import Check, evaluate
from sfncopy.emulator.iam.s3_actions import (
    S3Request,
    UnmappedOperation,
    copy_source,
    missing_object_check,
    required_checks,
)

SRC = "arn:aws:s3:::src"
DST = "arn:aws:s3:::dst"


def actions(request: S3Request) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in required_checks(request)]


def obj(operation: str, headers: dict[str, str] | None = None, **query: str) -> S3Request:
    return S3Request(operation, bucket="dst", key="dir/a b.txt", query=query, headers=headers or {})


def copy(operation: str = "CopyObject", source: str = "/src/in/a%20b.txt", **headers: str) -> S3Request:
    return obj(operation, {"x-amz-copy-source": source, **{k.replace("_", "-"): v for k, v in headers.items()}})


def allowed(request: S3Request, *statements: dict[str, Any]) -> bool:
    documents = [{"Version": "2012-10-17", "Statement": list(statements)}]
    return all(evaluate(check, documents).allowed for check in required_checks(request))


# --- bucket operations -------------------------------------------------------------------------------------
def test_headbucket_needs_listbucket_on_the_bucket_without_a_prefix_in_its_context():
    [check] = required_checks(S3Request("HeadBucket", bucket="dst"))
    assert check == Check("s3:ListBucket", DST, {})


def test_a_listing_carries_its_prefix_delimiter_and_max_keys_as_context_keys():
    request = S3Request("ListObjectsV2", bucket="dst", query={"list-type": "2", "prefix": "media/", "delimiter": "/",
                                                             "max-keys": "100"})
    [check] = required_checks(request)
    assert check == Check("s3:ListBucket", DST, {"s3:prefix": ("media/",), "s3:delimiter": ("/",),
                                                 "s3:max-keys": ("100",)})


def test_a_listing_without_prefix_has_no_prefix_key_and_a_prefix_grant_does_not_cover_it():
    grant = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": DST,
             "Condition": {"StringLike": {"s3:prefix": ["media/*"]}}}
    without = S3Request("ListObjectsV2", bucket="dst", query={"list-type": "2"})
    under = S3Request("ListObjectsV2", bucket="dst", query={"list-type": "2", "prefix": "media/x"})
    assert required_checks(without)[0].context == {}
    assert not allowed(without, grant)
    assert not allowed(S3Request("HeadBucket", bucket="dst"), grant)
    assert allowed(under, grant)
    assert allowed(S3Request("ListObjects", bucket="dst", query={"prefix": "media/"}), grant)


@pytest.mark.parametrize(("operation", "action"), [
    ("ListObjects", "s3:ListBucket"),
    ("ListObjectVersions", "s3:ListBucketVersions"),
    ("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
    ("GetBucketLocation", "s3:GetBucketLocation"),
    ("CreateBucket", "s3:CreateBucket"),
    ("DeleteBucket", "s3:DeleteBucket"),
    ("DeleteBucketTagging", "s3:PutBucketTagging"),
    ("GetBucketCors", "s3:GetBucketCORS"),
])
def test_bucket_operations(operation, action):
    assert actions(S3Request(operation, bucket="dst")) == [(action, DST)]


def test_listbuckets_is_granted_on_star():
    assert actions(S3Request("ListBuckets")) == [("s3:ListAllMyBuckets", "*")]


def test_createbucket_with_a_public_acl_also_needs_putbucketacl():
    request = S3Request("CreateBucket", bucket="dst", headers={"x-amz-acl": "public-read"})
    assert actions(request) == [("s3:CreateBucket", DST), ("s3:PutBucketAcl", DST)]
    assert actions(S3Request("CreateBucket", bucket="dst", headers={"x-amz-acl": "private"})) == [
        ("s3:CreateBucket", DST)]


# --- object operations -------------------------------------------------------------------------------------
TARGET = f"{DST}/dir/a b.txt"


@pytest.mark.parametrize(("operation", "action"), [
    ("GetObject", "s3:GetObject"),
    ("HeadObject", "s3:GetObject"),
    ("GetObjectTagging", "s3:GetObjectTagging"),
    ("PutObjectTagging", "s3:PutObjectTagging"),
    ("DeleteObjectTagging", "s3:DeleteObjectTagging"),
    ("PutObject", "s3:PutObject"),
    ("CreateMultipartUpload", "s3:PutObject"),
    ("UploadPart", "s3:PutObject"),
    ("CompleteMultipartUpload", "s3:PutObject"),
    ("AbortMultipartUpload", "s3:AbortMultipartUpload"),
    ("ListParts", "s3:ListMultipartUploadParts"),
    ("DeleteObject", "s3:DeleteObject"),
    ("RestoreObject", "s3:RestoreObject"),
    ("PutObjectAcl", "s3:PutObjectAcl"),
    ("GetObjectAcl", "s3:GetObjectAcl"),
])
def test_object_operations(operation, action):
    assert actions(obj(operation)) == [(action, TARGET)]


@pytest.mark.parametrize(("operation", "action"), [
    ("GetObject", "s3:GetObjectVersion"),
    ("HeadObject", "s3:GetObjectVersion"),
    ("GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("DeleteObject", "s3:DeleteObjectVersion"),
])
def test_a_version_id_asks_for_the_version_action(operation, action):
    [check] = required_checks(obj(operation, versionId="v1"))
    assert (check.action, check.context["s3:versionid"]) == (action, ("v1",))


def test_writing_tags_with_an_object_needs_putobjecttagging():
    for operation in ("PutObject", "CreateMultipartUpload"):
        request = obj(operation, {"x-amz-tagging": "project=blue&owner=me"})
        assert actions(request) == [("s3:PutObject", TARGET), ("s3:PutObjectTagging", TARGET)]
        assert required_checks(request)[0].context["s3:RequestObjectTagKeys"] == ("project", "owner")
    grant = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{DST}/*"}
    assert not allowed(obj("PutObject", {"x-amz-tagging": "a=1"}), grant)
    assert allowed(obj("PutObject"), grant)


def test_an_acl_header_needs_putobjectacl():
    assert actions(obj("PutObject", {"x-amz-acl": "bucket-owner-full-control"})) == [
        ("s3:PutObject", TARGET), ("s3:PutObjectAcl", TARGET)]
    assert ("s3:PutObjectAcl", TARGET) in actions(obj("CreateMultipartUpload", {"x-amz-grant-read": "id=x"}))


# --- copies ------------------------------------------------------------------------------------------------
SOURCE = f"{SRC}/in/a b.txt"


def test_a_copy_needs_putobject_on_the_target_and_getobject_on_the_source():
    assert actions(copy("UploadPartCopy")) == [("s3:PutObject", TARGET), ("s3:GetObject", SOURCE)]
    write_only = {"Effect": "Allow", "Action": ["s3:PutObject", "s3:*Tagging"], "Resource": [f"{DST}/*", f"{SRC}/*"]}
    assert not allowed(copy(), write_only)  # no s3:GetObject on the source
    assert allowed(copy(), {**write_only, "Action": ["s3:PutObject", "s3:GetObject", "s3:*Tagging"]})


def test_a_copy_of_a_source_version_needs_getobjectversion():
    assert actions(copy("UploadPartCopy", "/src/in/a%20b.txt?versionId=v7")) == [
        ("s3:PutObject", TARGET), ("s3:GetObjectVersion", SOURCE)]


def test_copying_tags_needs_getobjecttagging_on_the_source_and_putobjecttagging_on_the_target():
    expected = [("s3:PutObject", TARGET), ("s3:GetObject", SOURCE), ("s3:GetObjectTagging", SOURCE),
                ("s3:PutObjectTagging", TARGET)]
    assert actions(copy()) == expected  # COPY is the default directive
    assert actions(copy(x_amz_tagging_directive="COPY")) == expected
    read_and_write = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                      "Resource": [f"{DST}/*", f"{SRC}/*"]}
    assert not allowed(copy(), read_and_write)
    assert not allowed(copy(), read_and_write, {"Effect": "Allow", "Action": "s3:GetObjectTagging",
                                                "Resource": f"{SRC}/*"})
    assert allowed(copy(), read_and_write, {"Effect": "Allow", "Action": ["s3:GetObjectTagging",
                                                                           "s3:PutObjectTagging"], "Resource": "*"})


def test_replacing_tags_on_a_copy_needs_putobjecttagging_only_when_tags_are_given():
    assert actions(copy(x_amz_tagging_directive="REPLACE")) == [("s3:PutObject", TARGET), ("s3:GetObject", SOURCE)]
    assert actions(copy(x_amz_tagging_directive="REPLACE", x_amz_tagging="a=1")) == [
        ("s3:PutObject", TARGET), ("s3:GetObject", SOURCE), ("s3:PutObjectTagging", TARGET)]


def test_the_copy_source_is_decoded_and_in_the_context():
    assert copy_source("/src/in/a%20b.txt?versionId=v7") == ("src", "in/a b.txt", "v7")
    assert copy_source("src/k") == ("src", "k", "")
    assert required_checks(copy())[0].context["s3:x-amz-copy-source"] == ("src/in/a b.txt",)


# --- the rest ----------------------------------------------------------------------------------------------
def test_an_unknown_operation_is_denied():
    with pytest.raises(UnmappedOperation) as raised:
        required_checks(obj("PostObject"))
    assert raised.value.operation == "PostObject"
    with pytest.raises(UnmappedOperation):
        required_checks(S3Request("PutBucketReplication", bucket="dst"))


def test_deleteobjects_needs_deleteobject_on_every_key():
    request = S3Request("DeleteObjects", bucket="dst", deleted=(("a", ""), ("b", "v2")))
    assert actions(request) == [("s3:DeleteObject", f"{DST}/a"), ("s3:DeleteObjectVersion", f"{DST}/b")]
    with pytest.raises(UnmappedOperation):
        required_checks(S3Request("DeleteObjects", bucket="dst"))


def test_reading_a_missing_object_also_needs_listbucket():
    assert missing_object_check(obj("HeadObject")) == Check("s3:ListBucket", DST)
    assert missing_object_check(obj("GetObject")) == Check("s3:ListBucket", DST)
    assert missing_object_check(obj("PutObject")) is None
