"""The middleware's pure parts: which S3 operation a request is, which service signed it."""

from __future__ import annotations

import pytest

from sfncopy.emulator.middleware import path_style, s3_operation, signing_service


@pytest.mark.parametrize(("method", "path", "query", "copy", "operation"), [
    ("PUT", "/b/k", {}, True, "CopyObject"),
    ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, True, "UploadPartCopy"),
    ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, False, "UploadPart"),
    ("PUT", "/b/k", {}, False, "PutObject"),
    ("PUT", "/b/k", {"tagging": [""]}, False, "PutObjectTagging"),
    ("POST", "/b/k", {"uploads": [""]}, False, "CreateMultipartUpload"),
    ("POST", "/b/k", {"uploadId": ["u"]}, False, "CompleteMultipartUpload"),
    ("DELETE", "/b/k", {"uploadId": ["u"]}, False, "AbortMultipartUpload"),
    ("GET", "/b/k", {"uploadId": ["u"]}, False, "ListParts"),
    ("GET", "/b/dir/k with space", {}, False, "GetObject"),
    ("GET", "/b/k", {"tagging": [""]}, False, "GetObjectTagging"),
    ("HEAD", "/b/k", {}, False, "HeadObject"),
    ("DELETE", "/b/k", {}, False, "DeleteObject"),
    ("GET", "/b", {"list-type": ["2"], "prefix": ["p"]}, False, "ListObjectsV2"),
    ("GET", "/b/", {}, False, "ListObjects"),
    ("GET", "/b", {"uploads": [""]}, False, "ListMultipartUploads"),
    ("GET", "/b", {"location": [""]}, False, "GetBucketLocation"),
    ("PUT", "/b", {}, False, "CreateBucket"),
    ("PUT", "/b", {"policy": [""]}, False, "PutBucketPolicy"),
    ("POST", "/b", {"delete": [""]}, False, "DeleteObjects"),
    ("HEAD", "/b", {}, False, "HeadBucket"),
    ("DELETE", "/b", {}, False, "DeleteBucket"),
    ("GET", "/", {}, False, "ListBuckets"),
])
def test_s3_operation_names(method, path, query, copy, operation):
    assert s3_operation(method, path, query, copy) == operation


def test_the_signing_service_comes_from_the_sigv4_header_or_a_presigned_query():
    header = ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, "
              "SignedHeaders=host, Signature=abc")
    assert signing_service({"HTTP_AUTHORIZATION": header}) == "s3"
    presigned = "X-Amz-Credential=testing%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x"
    assert signing_service({"QUERY_STRING": presigned}) == "s3"
    lambda_header = header.replace("/s3/", "/lambda/")
    assert signing_service({"HTTP_AUTHORIZATION": lambda_header}) == "lambda"
    assert signing_service({}) == ""


def test_a_virtual_hosted_bucket_moves_into_the_path():
    assert path_style({"HTTP_HOST": "bucket.localhost:4566", "PATH_INFO": "/key"}) == "/bucket/key"
    assert path_style({"HTTP_HOST": "bucket.s3.us-east-1.amazonaws.com", "PATH_INFO": "/k"}) == "/bucket/k"
    assert path_style({"HTTP_HOST": "127.0.0.1:4566", "PATH_INFO": "/bucket/key"}) == "/bucket/key"
    assert path_style({"HTTP_HOST": "s3.amazonaws.com", "PATH_INFO": "/bucket/key"}) == "/bucket/key"


def test_the_dispatcher_asks_moto_once_per_host():
    from sfncopy.emulator.server import _remember_backends

    class Dispatcher:  # moto's DomainDispatcherApplication, as far as the lookup goes
        def __init__(self) -> None:
            self.asked: list[str] = []

        def get_backend_for_host(self, host: str) -> str | None:
            self.asked.append(host)
            return host.split(".")[0] if host.endswith("amazonaws.com") else None

    dispatcher = _remember_backends(Dispatcher())
    hosts = ["s3.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com", "127.0.0.1:4566"] * 3
    assert [dispatcher.get_backend_for_host(h) for h in hosts] == ["s3", "states", None] * 3
    assert dispatcher.get_backend_for_host(None) is None  # no host: moto infers one from the request
    assert sorted(dispatcher.asked) == sorted(hosts[:3])
