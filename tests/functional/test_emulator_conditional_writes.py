"""Gap 12: conditional writes (If-None-Match, If-Match) on CopyObject and CompleteMultipartUpload, enforced by the
middleware as S3 does (preconditions.py); PutObject's, which moto enforces itself, still hold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(emulator_client: Any) -> Any:
    client = emulator_client("s3")
    client.create_bucket(Bucket="cond")
    for name in ("one", "two"):
        client.put_object(Bucket="cond", Key=f"src/{name}", Body=name.encode())
    return client


def _error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _body(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket="cond", Key=key)["Body"].read())


def test_copy_object_with_if_none_match_does_not_overwrite(s3):
    source = {"Bucket": "cond", "Key": "src/one"}
    # GIVEN no object at the key  WHEN copied with If-None-Match: *  THEN it is written
    s3.copy_object(Bucket="cond", Key="copy/new", CopySource=source, IfNoneMatch="*")
    assert _body(s3, "copy/new") == b"one"

    # WHEN another copy to the same key asks the same  THEN 412 PreconditionFailed and the object is unchanged
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="cond", Key="copy/new", CopySource={"Bucket": "cond", "Key": "src/two"},
                       IfNoneMatch="*")
    assert _error(caught) == (412, "PreconditionFailed")
    assert _body(s3, "copy/new") == b"one"


def test_copy_object_with_if_match_writes_only_over_that_etag(s3):
    # GIVEN a target object and its ETag
    etag = s3.put_object(Bucket="cond", Key="copy/target", Body=b"old")["ETag"]
    source = {"Bucket": "cond", "Key": "src/two"}

    # WHEN a copy pins another ETag  THEN 412; WHEN the key is missing  THEN 404 NoSuchKey
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="cond", Key="copy/target", CopySource=source, IfMatch='"0123456789abcdef"')
    assert _error(caught) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="cond", Key="copy/absent", CopySource=source, IfMatch=etag)
    assert _error(caught) == (404, "NoSuchKey")
    assert _body(s3, "copy/target") == b"old"

    # WHEN it pins the current ETag (quoted or not)  THEN it is written
    s3.copy_object(Bucket="cond", Key="copy/target", CopySource=source, IfMatch=etag.strip('"'))
    assert _body(s3, "copy/target") == b"two"


def _two_part_upload(s3: Any, key: str) -> tuple[str, list[dict[str, Any]]]:
    upload = s3.create_multipart_upload(Bucket="cond", Key=key)["UploadId"]
    parts = []
    for number, body in enumerate((b"a" * 5 * MiB, b"b"), start=1):
        etag = s3.upload_part(Bucket="cond", Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    return upload, parts


def _open_uploads(s3: Any, key: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="cond").get("Uploads", []) if u["Key"] == key]


def test_complete_multipart_upload_with_if_match_checks_the_current_object(s3):
    # GIVEN an object and an upload to its key
    etag = s3.put_object(Bucket="cond", Key="mpu/target", Body=b"old")["ETag"]
    upload, parts = _two_part_upload(s3, "mpu/target")

    # WHEN the upload completes pinning another ETag  THEN 412, the object unchanged, the upload still open
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(Bucket="cond", Key="mpu/target", UploadId=upload,
                                     MultipartUpload={"Parts": parts}, IfMatch='"0123456789abcdef"')
    assert _error(caught) == (412, "PreconditionFailed")
    assert _body(s3, "mpu/target") == b"old"
    assert _open_uploads(s3, "mpu/target") == [upload]

    # WHEN it pins the current ETag  THEN it completes
    s3.complete_multipart_upload(Bucket="cond", Key="mpu/target", UploadId=upload, MultipartUpload={"Parts": parts},
                                 IfMatch=etag)
    assert len(_body(s3, "mpu/target")) == 5 * MiB + 1


def test_complete_multipart_upload_with_if_match_on_a_missing_key_is_no_such_key(s3):
    upload, parts = _two_part_upload(s3, "mpu/absent")
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(Bucket="cond", Key="mpu/absent", UploadId=upload,
                                     MultipartUpload={"Parts": parts}, IfMatch='"0123456789abcdef"')
    assert _error(caught) == (404, "NoSuchKey")
    s3.abort_multipart_upload(Bucket="cond", Key="mpu/absent", UploadId=upload)


def test_of_concurrent_conditional_copies_to_one_key_exactly_one_wins(s3):
    # GIVEN eight sources  WHEN all are copied at once to one new key with If-None-Match: *
    for n in range(8):
        s3.put_object(Bucket="cond", Key=f"race/src{n}", Body=f"source {n}".encode())

    def copy(n: int) -> str:
        try:
            s3.copy_object(Bucket="cond", Key="race/target", CopySource={"Bucket": "cond", "Key": f"race/src{n}"},
                           IfNoneMatch="*")
        except ClientError as err:
            return str(err.response["Error"]["Code"])
        return f"won {n}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(copy, range(8)))

    # THEN one copy wrote the object, seven got 412, and the object is the winner's
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1, outcomes
    assert outcomes.count("PreconditionFailed") == 7
    assert _body(s3, "race/target") == f"source {winners[0].split()[1]}".encode()


def test_of_two_uploads_to_one_key_with_if_none_match_the_second_to_complete_fails(s3):
    # GIVEN two uploads to one new key (S3 checks the condition when an upload completes)
    first, first_parts = _two_part_upload(s3, "mpu/race")
    second, second_parts = _two_part_upload(s3, "mpu/race")

    # WHEN both complete with If-None-Match: *  THEN the first wins, the second gets 412 and stays open
    s3.complete_multipart_upload(Bucket="cond", Key="mpu/race", UploadId=first,
                                 MultipartUpload={"Parts": first_parts}, IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(Bucket="cond", Key="mpu/race", UploadId=second,
                                     MultipartUpload={"Parts": second_parts}, IfNoneMatch="*")
    assert _error(caught) == (412, "PreconditionFailed")
    assert _open_uploads(s3, "mpu/race") == [second]
    s3.abort_multipart_upload(Bucket="cond", Key="mpu/race", UploadId=second)


def test_put_object_conditions_hold_as_before(s3):
    # (moto enforces these itself; the middleware must not change them)
    etag = s3.put_object(Bucket="cond", Key="put/key", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="cond", Key="put/key", Body=b"2", IfNoneMatch="*")
    assert _error(caught) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="cond", Key="put/absent", Body=b"2", IfMatch=etag)
    assert _error(caught) == (404, "NoSuchKey")
    s3.put_object(Bucket="cond", Key="put/key", Body=b"3", IfMatch=etag)
    assert _body(s3, "put/key") == b"3"
