"""The gateway sends each bucket's conditions with every request to it, proven with botocore Stubber (which
refuses a request whose parameters differ from the expected ones): ExpectedBucketOwner on every request to
a source or target, ExpectedSourceBucketOwner and RequestPayer on copies, RequestPayer on every request to a
Requester Pays source, the ACL on the two requests that write an object, and nothing on the manifest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas import errors
from lambdas.copying import CopyContext, copy_task
from lambdas.gateway import PartInfo, S3Gateway
from lambdas.limits import MiB
from lambdas.models import BucketAccess, CopyOptions, CopyTask

SOURCE_OWNER, TARGET_OWNER = "111122223333", "444455556666"
ACL = "bucket-owner-full-control"
BUCKETS = {"src": BucketAccess(expected_owner=SOURCE_OWNER, request_payer="requester"),
           "dst": BucketAccess(expected_owner=TARGET_OWNER, object_acl=ACL)}
READ = {"ExpectedBucketOwner": SOURCE_OWNER, "RequestPayer": "requester"}  # every request to the source
WRITE = {"ExpectedBucketOwner": TARGET_OWNER}  # every request to the target
COPY = {**WRITE, "ExpectedSourceBucketOwner": SOURCE_OWNER, "RequestPayer": "requester"}  # both buckets
SOURCE = {"Bucket": "src", "Key": "in/a.bin"}
ETAG = '"0123456789abcdef0123456789abcdef"'


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, S3Gateway]]:
    client = boto3.session.Session().client("s3", region_name="us-east-1", aws_access_key_id="testing",
                                            aws_secret_access_key="testing")
    with Stubber(client) as stub:
        yield stub, S3Gateway(client).for_buckets(BUCKETS)
        stub.assert_no_pending_responses()


Call = Callable[[S3Gateway], Any]
CASES: list[tuple[str, Call, str, dict[str, Any], dict[str, Any]]] = [
    ("list a source", lambda s3: list(s3.list_objects("src", "in/")), "list_objects_v2",
     {"Bucket": "src", "Prefix": "in/", "MaxKeys": 1000, **READ}, {"Contents": []}),
    ("list a target", lambda s3: list(s3.list_objects("dst", "out/")), "list_objects_v2",
     {"Bucket": "dst", "Prefix": "out/", "MaxKeys": 1000, **WRITE}, {"Contents": []}),
    ("check a source location", lambda s3: s3.location_status("src", "in/"), "list_objects_v2",
     {"Bucket": "src", "Prefix": "in/", "MaxKeys": 1, **READ}, {}),
    ("check a target location", lambda s3: s3.location_status("dst", "out/"), "list_objects_v2",
     {"Bucket": "dst", "Prefix": "out/", "MaxKeys": 1, **WRITE}, {}),
    ("ask whether a key is missing", lambda s3: s3.absent("src", "in/a.bin"), "list_objects_v2",
     {"Bucket": "src", "Prefix": "in/a.bin", "MaxKeys": 1, **READ}, {}),
    ("head a source", lambda s3: s3.head_object("src", "in/a.bin", if_match=ETAG), "head_object",
     {**SOURCE, "IfMatch": ETAG, **READ}, {"ContentLength": 1, "ETag": ETAG}),
    ("head a source's first part", lambda s3: s3.head_object("src", "in/a.bin", part_number=1), "head_object",
     {**SOURCE, "PartNumber": 1, **READ}, {"ContentLength": 1, "ETag": ETAG}),
    ("head a target with checksums", lambda s3: s3.head_object("dst", "out/a.bin", checksums=True), "head_object",
     {"Bucket": "dst", "Key": "out/a.bin", "ChecksumMode": "ENABLED", **WRITE}, {"ContentLength": 1, "ETag": ETAG}),
    ("read a source's tags", lambda s3: s3.get_tags("src", "in/a.bin"), "get_object_tagging",
     {**SOURCE, **READ}, {"TagSet": []}),
    ("tag a target", lambda s3: s3.put_tags("dst", "out/a.bin", {"t": "v"}), "put_object_tagging",
     {"Bucket": "dst", "Key": "out/a.bin", "Tagging": {"TagSet": [{"Key": "t", "Value": "v"}]}, **WRITE}, {}),
    ("copy an object", lambda s3: s3.copy_object("src", "in/a.bin", ETAG, "dst", "out/a.bin"), "copy_object",
     {"Bucket": "dst", "Key": "out/a.bin", "CopySource": SOURCE, "CopySourceIfMatch": ETAG,
      "MetadataDirective": "COPY", "TaggingDirective": "COPY", "ACL": ACL, **COPY},
     {"CopyObjectResult": {"ETag": ETAG}}),
    ("start an upload", lambda s3: s3.create_multipart_upload("dst", "out/a.bin", None, {}),
     "create_multipart_upload", {"Bucket": "dst", "Key": "out/a.bin", "ACL": ACL, **WRITE}, {"UploadId": "u"}),
    ("copy a part", lambda s3: s3.upload_part_copy("dst", "out/a.bin", "u", 2, "src", "in/a.bin", ETAG, 5, 9),
     "upload_part_copy", {"Bucket": "dst", "Key": "out/a.bin", "UploadId": "u", "PartNumber": 2, "CopySource": SOURCE,
                          "CopySourceIfMatch": ETAG, "CopySourceRange": "bytes=5-9", **COPY},
     {"CopyPartResult": {"ETag": ETAG}}),
    ("list an upload's parts", lambda s3: s3.list_parts("dst", "out/a.bin", "u"), "list_parts",
     {"Bucket": "dst", "Key": "out/a.bin", "UploadId": "u", **WRITE}, {"Parts": []}),
    ("complete an upload", lambda s3: s3.complete_multipart_upload("dst", "out/a.bin", "u", [PartInfo(1, "e", 5)]),
     "complete_multipart_upload", {"Bucket": "dst", "Key": "out/a.bin", "UploadId": "u", **WRITE,
                                   "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"e"'}]}}, {}),
    ("abort an upload", lambda s3: s3.abort_multipart_upload("dst", "out/a.bin", "u"), "abort_multipart_upload",
     {"Bucket": "dst", "Key": "out/a.bin", "UploadId": "u", **WRITE}, {}),
    ("list a target's uploads", lambda s3: s3.list_multipart_uploads("dst", "out/"), "list_multipart_uploads",
     {"Bucket": "dst", "Prefix": "out/", **WRITE}, {"Uploads": []}),
    ("write a manifest file", lambda s3: s3.put_bytes("manifest", "runs/r/x.json", b"{}", "application/json"),
     "put_object", {"Bucket": "manifest", "Key": "runs/r/x.json", "Body": b"{}", "ContentType": "application/json"},
     {}),
]


@pytest.mark.parametrize(("what", "call", "operation", "params", "response"), CASES, ids=[c[0] for c in CASES])
def test_each_request_carries_its_buckets_conditions(stubbed, what, call, operation, params, response):
    # GIVEN a gateway for a Requester Pays source of one account and a target of another with an ACL
    stub, s3 = stubbed
    # WHEN it sends the request  THEN it carries exactly these parameters (the Stubber refuses any other)
    stub.add_response(operation, response, params)
    call(s3)


def test_a_bucket_without_conditions_gets_none(stubbed):
    stub, s3 = stubbed
    stub.add_response("copy_object", {"CopyObjectResult": {"ETag": ETAG}}, {
        "Bucket": "other", "Key": "k", "CopySource": {"Bucket": "plain", "Key": "k"}, "CopySourceIfMatch": ETAG,
        "MetadataDirective": "COPY", "TaggingDirective": "COPY"})
    s3.copy_object("plain", "k", ETAG, "other", "k")


def test_access_denied_names_the_expected_owners_it_sent(stubbed):
    # GIVEN a copy S3 refuses (as it does when a bucket is not owned by its expected owner)
    stub, s3 = stubbed
    stub.add_client_error("copy_object", "AccessDenied", "Access Denied", http_status_code=403)
    # WHEN it is sent  THEN the error says which owners the request expected
    with pytest.raises(errors.AccessDeniedError) as info:
        s3.copy_object("src", "in/a.bin", ETAG, "dst", "out/a.bin")
    assert str(info.value) == (
        "copy s3://src/in/a.bin to s3://dst/out/a.bin: AccessDenied: Access Denied (S3 answers AccessDenied also "
        f"when a bucket is not owned by its expected_bucket_owner, src: {SOURCE_OWNER}, dst: {TARGET_OWNER})")


class Book:
    def __init__(self) -> None:
        self.uploads: dict[str, str] = {}

    def open_upload(self, task_id: str) -> str:
        return self.uploads.get(task_id, "")

    def opened(self, task_id: str, upload_id: str) -> None:
        self.uploads[task_id] = upload_id

    def part_done(self) -> None:
        pass


def test_a_multipart_copy_sends_the_payer_on_every_source_request_and_the_owners_everywhere(stubbed):
    # GIVEN a 12 MiB task from the Requester Pays source of one account to a target of another
    stub, s3 = stubbed
    size = 12 * MiB
    target = {"Bucket": "dst", "Key": "out/a.bin"}
    stub.add_response("head_object", {"ContentLength": size, "ETag": ETAG},
                      {**SOURCE, "IfMatch": ETAG, "ChecksumMode": "ENABLED", **READ})
    stub.add_response("get_object_tagging", {"TagSet": []}, {**SOURCE, **READ})
    stub.add_response("create_multipart_upload", {"UploadId": "u"}, {
        **target, "Metadata": {}, "ACL": ACL, "ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT",
        **WRITE})
    ranges = [(1, 0, 5 * MiB - 1), (2, 5 * MiB, 10 * MiB - 1), (3, 10 * MiB, size - 1)]
    for number, first, last in ranges:
        stub.add_response("upload_part_copy", {"CopyPartResult": {"ETag": f'"p{number}"'}}, {
            **target, "UploadId": "u", "PartNumber": number, "CopySource": SOURCE, "CopySourceIfMatch": ETAG,
            "CopySourceRange": f"bytes={first}-{last}", **COPY})
    stub.add_response("complete_multipart_upload", {"ETag": '"whole-3"'}, {
        **target, "UploadId": "u", **WRITE,
        "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": f'"p{n}"'} for n, _, _ in ranges]}})
    task = CopyTask(task_id="c0", copy_id=0, source_bucket="src", source_key="in/a.bin", size=size,
                    etag=ETAG.strip('"'), target_bucket="dst", target_key="out/a.bin", method="multipart")
    # WHEN the worker's copy runs (one part at a time, so the answers are used in order)
    with ThreadPoolExecutor(1) as pool:
        result = copy_task(task, CopyContext(s3=s3, options=CopyOptions(acl=ACL), part_size=5 * MiB, part_pool=pool,
                                             part_window=1, should_stop=lambda: False, uploads=Book(),
                                             resumed=False))
    # THEN every request carried its conditions (the Stubber checked each) and the copy succeeded
    assert result is not None and (result.status, result.parts) == ("copied", 3)
