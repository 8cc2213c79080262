"""Gap 4: the emulator enforces CopySourceIfMatch on CopyObject and UploadPartCopy, as AWS does."""

import pytest
from botocore.exceptions import ClientError

MiB = 1024 * 1024


def test_copy_pinned_to_an_old_etag_fails_and_writes_nothing(emulator_client):
    # GIVEN a source object that was replaced after its ETag was noted
    s3 = emulator_client("s3")
    s3.create_bucket(Bucket="pre-src")
    s3.create_bucket(Bucket="pre-dst")
    old = s3.put_object(Bucket="pre-src", Key="a b+c.txt", Body=b"old")["ETag"]
    new = s3.put_object(Bucket="pre-src", Key="a b+c.txt", Body=b"new")["ETag"]
    source = {"Bucket": "pre-src", "Key": "a b+c.txt"}

    # WHEN a copy pins the old ETag THEN S3 answers PreconditionFailed and the target does not exist
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="pre-dst", Key="x", CopySource=source, CopySourceIfMatch=old)
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.list_objects_v2(Bucket="pre-dst").get("KeyCount") == 0

    # AND a copy pinned to the current ETag goes through
    s3.copy_object(Bucket="pre-dst", Key="x", CopySource=source, CopySourceIfMatch=new)
    assert s3.get_object(Bucket="pre-dst", Key="x")["Body"].read() == b"new"


def test_part_copy_pinned_to_an_old_etag_fails(emulator_client):
    # GIVEN an upload copying from a source that changed
    s3 = emulator_client("s3")
    s3.create_bucket(Bucket="pre-src2")
    s3.create_bucket(Bucket="pre-dst2")
    old = s3.put_object(Bucket="pre-src2", Key="big", Body=b"1" * 6 * MiB)["ETag"]
    s3.put_object(Bucket="pre-src2", Key="big", Body=b"2" * 6 * MiB)
    upload = s3.create_multipart_upload(Bucket="pre-dst2", Key="big")["UploadId"]

    # WHEN a part copy pins the old ETag THEN it fails with PreconditionFailed
    with pytest.raises(ClientError) as caught:
        s3.upload_part_copy(Bucket="pre-dst2", Key="big", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": "pre-src2", "Key": "big"}, CopySourceIfMatch=old,
                            CopySourceRange="bytes=0-5242879")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    s3.abort_multipart_upload(Bucket="pre-dst2", Key="big", UploadId=upload)
