"""Bridge 14: a restore of an archived object stays ongoing until the test completes it (or its delay passes), as
on S3, and an archived object that is not restored cannot be read or copied (sfncopy/emulator/restores.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sfncopy.emulator import control
from sfncopy.emulator.restores import RestoreControlError

BULK = {"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}}


def _archived(s3: Any, bucket: str, key: str, body: bytes = b"archived bytes") -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body, StorageClass="GLACIER")


def _error(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_restore_stays_ongoing_until_completed_and_the_object_is_unreadable_meanwhile(emulator, emulator_client):
    # GIVEN a GLACIER object whose restore was requested
    s3 = emulator_client("s3")
    _archived(s3, "rst-src", "cold/a.bin")
    s3.create_bucket(Bucket="rst-dst")
    assert "Restore" not in s3.head_object(Bucket="rst-src", Key="cold/a.bin")
    answer = s3.restore_object(Bucket="rst-src", Key="cold/a.bin", RestoreRequest=BULK)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202

    # THEN HeadObject says ongoing, a second request is refused, and nothing can read it
    assert s3.head_object(Bucket="rst-src", Key="cold/a.bin")["Restore"] == 'ongoing-request="true"'
    assert _error(lambda: s3.restore_object(Bucket="rst-src", Key="cold/a.bin", RestoreRequest=BULK)) == (
        "RestoreAlreadyInProgress", 409)
    assert _error(lambda: s3.get_object(Bucket="rst-src", Key="cold/a.bin")) == ("InvalidObjectState", 403)
    source = {"Bucket": "rst-src", "Key": "cold/a.bin"}
    assert _error(lambda: s3.copy_object(Bucket="rst-dst", Key="a", CopySource=source)) == (
        "ObjectNotInActiveTierError", 403)
    upload = s3.create_multipart_upload(Bucket="rst-dst", Key="m")["UploadId"]
    assert _error(lambda: s3.upload_part_copy(Bucket="rst-dst", Key="m", UploadId=upload, PartNumber=1,
                                              CopySource=source)) == ("ObjectNotInActiveTierError", 403)

    # WHEN the test completes it through the control endpoint
    listed = control.control_restores(emulator.endpoint, {"complete": [{"bucket": "rst-src", "key": "cold/a.bin"}]})
    assert [r["key"] for r in listed["restores"] if r["completed"]] == ["cold/a.bin"]

    # THEN it is readable, with an expiry, and copies
    assert s3.head_object(Bucket="rst-src", Key="cold/a.bin")["Restore"].startswith('ongoing-request="false", expiry')
    s3.copy_object(Bucket="rst-dst", Key="a", CopySource=source)
    assert s3.get_object(Bucket="rst-dst", Key="a")["Body"].read() == b"archived bytes"
    s3.upload_part_copy(Bucket="rst-dst", Key="m", UploadId=upload, PartNumber=1, CopySource=source)
    s3.abort_multipart_upload(Bucket="rst-dst", Key="m", UploadId=upload)
    # AND asking again answers 200 (a restored copy exists)
    again = s3.restore_object(Bucket="rst-src", Key="cold/a.bin", RestoreRequest=BULK)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_restores_complete_after_a_delay_except_those_that_never_do(emulator, emulator_client):
    # GIVEN restores that complete 0.5 s after their request, and one object whose restore never completes
    s3 = emulator_client("s3")
    _archived(s3, "rst-delay", "x")
    s3.put_object(Bucket="rst-delay", Key="stuck", Body=b"s", StorageClass="DEEP_ARCHIVE")
    control.control_restores(emulator.endpoint, {"mode": {"after_seconds": 0.5},
                                                 "never": [{"bucket": "rst-delay", "key": "stuck"}]})
    try:
        for key in ("x", "stuck"):
            s3.restore_object(Bucket="rst-delay", Key=key, RestoreRequest=BULK)
        assert s3.head_object(Bucket="rst-delay", Key="x")["Restore"] == 'ongoing-request="true"'

        # WHEN the delay has passed
        time.sleep(0.8)

        # THEN the one is readable and the other still ongoing
        assert s3.get_object(Bucket="rst-delay", Key="x")["Body"].read() == b"archived bytes"
        assert s3.head_object(Bucket="rst-delay", Key="stuck")["Restore"] == 'ongoing-request="true"'
    finally:
        control.control_restores(emulator.endpoint, {"mode": "manual"})


def test_the_restore_control_refuses_what_it_does_not_understand(emulator):
    with pytest.raises(Exception, match="mode"):
        control.control_restores(emulator.endpoint, {"mode": "sometimes"})
    with pytest.raises(RestoreControlError):
        from sfncopy.emulator.restores import RestoreState
        RestoreState().control({"complete": "yes"})


def test_an_intelligent_tiering_object_in_an_archive_tier_is_restored_without_days(emulator, emulator_client):
    # GIVEN an INTELLIGENT_TIERING object the test puts in the Archive Access tier (moto keeps no access tier)
    s3 = emulator_client("s3")
    s3.create_bucket(Bucket="rst-it")
    s3.create_bucket(Bucket="rst-it-dst")
    s3.put_object(Bucket="rst-it", Key="t", Body=b"tiered", StorageClass="INTELLIGENT_TIERING")
    s3.put_object(Bucket="rst-it", Key="frequent", Body=b"f", StorageClass="INTELLIGENT_TIERING")
    control.control_restores(emulator.endpoint, {"archive": [{"bucket": "rst-it", "key": "t",
                                                              "tier": "ARCHIVE_ACCESS"}]})
    source = {"Bucket": "rst-it", "Key": "t"}

    # THEN HeadObject names the tier, and reads and copies are refused; an object in an access tier reads
    assert s3.head_object(Bucket="rst-it", Key="t")["ArchiveStatus"] == "ARCHIVE_ACCESS"
    assert "ArchiveStatus" not in s3.head_object(Bucket="rst-it", Key="frequent")
    assert _error(lambda: s3.get_object(Bucket="rst-it", Key="t")) == ("InvalidObjectState", 403)
    assert _error(lambda: s3.copy_object(Bucket="rst-it-dst", Key="t", CopySource=source)) == (
        "ObjectNotInActiveTierError", 403)
    # AND a restore with Days is refused, one without is accepted and stays ongoing
    assert _error(lambda: s3.restore_object(Bucket="rst-it", Key="t", RestoreRequest=BULK))[0] == "InvalidArgument"
    tier_only = {"GlacierJobParameters": {"Tier": "Bulk"}}
    assert s3.restore_object(Bucket="rst-it", Key="t", RestoreRequest=tier_only)["ResponseMetadata"][
        "HTTPStatusCode"] == 202
    head = s3.head_object(Bucket="rst-it", Key="t")
    assert (head["ArchiveStatus"], head["Restore"]) == ("ARCHIVE_ACCESS", 'ongoing-request="true"')

    # WHEN the restore completes THEN the object is back in an access tier and copies
    control.control_restores(emulator.endpoint, {"complete": [{"bucket": "rst-it", "key": "t"}]})
    assert "ArchiveStatus" not in s3.head_object(Bucket="rst-it", Key="t")
    s3.copy_object(Bucket="rst-it-dst", Key="t", CopySource=source)
    assert s3.get_object(Bucket="rst-it-dst", Key="t")["Body"].read() == b"tiered"
