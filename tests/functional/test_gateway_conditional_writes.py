"""The gateway's mapping of refused conditional writes and checksum refusals to our error classes, with botocore
Stubber (the answers are S3's documented ones: Amazon S3 API reference, CopyObject and CompleteMultipartUpload,
If-None-Match / If-Match; Amazon S3 User Guide, "Checking object integrity in Amazon S3", BadDigest)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from lambdas import errors
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.integrity import Checksum

ETAG = '"0123456789abcdef0123456789abcdef"'
PARTS = [PartInfo(1, "p1", 5, "AAAAAAAAAAA=")]
WHOLE = Checksum("CRC64NVME", "FULL_OBJECT", "AAAAAAAAAAA=")


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, S3Gateway]]:
    client = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id="testing",
                                            aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield stub, S3Gateway(client)
        stub.assert_no_pending_responses()


def complete(s3: S3Gateway, **conditions: object) -> None:
    s3.complete_multipart_upload("dst", "k", "u", PARTS, checksum=WHOLE, **conditions)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "status", "conditions", "raised"), [
    ("PreconditionFailed", 412, {"if_none_match": True}, errors.TargetExistsError),
    ("ConditionalRequestConflict", 409, {"if_none_match": True}, errors.TargetExistsError),
    ("PreconditionFailed", 412, {"if_match": ETAG}, errors.TargetChangedError),
    ("NoSuchKey", 404, {"if_match": ETAG}, errors.TargetChangedError),
    ("BadDigest", 400, {}, errors.ChecksumMismatchError),
    ("NoSuchKey", 404, {}, errors.NoSuchKeyError),
])
def test_a_refused_completion_is_named_by_what_was_refused(stubbed, code, status, conditions, raised):
    stub, s3 = stubbed
    sent = {"IfNoneMatch": "*"} if conditions.get("if_none_match") else (
        {"IfMatch": ETAG} if conditions.get("if_match") else {})
    stub.add_client_error("complete_multipart_upload", code, "refused", http_status_code=status, expected_params={
        "Bucket": "dst", "Key": "k", "UploadId": "u", "ChecksumCRC64NVME": WHOLE.value, "ChecksumType": "FULL_OBJECT",
        "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"p1"', "ChecksumCRC64NVME": "AAAAAAAAAAA="}]},
        **sent})
    with pytest.raises(raised):
        complete(s3, **conditions)


@pytest.mark.parametrize(("source_answer", "raised"), [
    (None, errors.TargetExistsError),  # the source still has the planned ETag: the target's condition failed
    ("PreconditionFailed", errors.SourceChangedError),  # the source changed: CopySourceIfMatch failed
])
def test_a_refused_conditional_copy_asks_the_source_whose_condition_failed(stubbed, source_answer, raised):
    stub, s3 = stubbed
    stub.add_client_error("copy_object", "PreconditionFailed", "At least one of the pre-conditions you specified "
                          "did not hold", http_status_code=412)
    if source_answer is None:
        stub.add_response("head_object", {"ContentLength": 5, "ETag": ETAG},
                          {"Bucket": "src", "Key": "a", "IfMatch": ETAG})
    else:
        stub.add_client_error("head_object", source_answer, "", http_status_code=412,
                              expected_params={"Bucket": "src", "Key": "a", "IfMatch": ETAG})
    with pytest.raises(raised):
        s3.copy_object("src", "a", ETAG, "dst", "a", if_none_match=True)


def test_an_unconditional_copy_412_is_the_source_without_a_head(stubbed):
    stub, s3 = stubbed
    stub.add_client_error("copy_object", "PreconditionFailed", "", http_status_code=412)
    with pytest.raises(errors.SourceChangedError):
        s3.copy_object("src", "a", ETAG, "dst", "a")
