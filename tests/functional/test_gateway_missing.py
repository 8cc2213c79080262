"""S3 answers 403 for a missing key to a role that may not list the whole bucket: the gateway tells a missing
key from a real denial by listing the key (botocore Stubber: moto always answers 404)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from lambdas import errors
from lambdas.gateway import S3Gateway


def denied(stub: Stubber, operation: str, **params: Any) -> None:
    stub.add_client_error(operation, "403", "Forbidden", 403, expected_params=params)


def listed(stub: Stubber, bucket: str, key: str, keys: list[str]) -> None:
    stub.add_response("list_objects_v2", {"Contents": [{"Key": k} for k in keys], "KeyCount": len(keys)},
                      {"Bucket": bucket, "Prefix": key, "MaxKeys": 1})


def test_a_missing_manifest_file_answered_403_reads_as_absent(gateway: S3Gateway) -> None:
    # GIVEN S3 answers 403 for a checkpoint that does not exist (the role lists only its prefix)
    with Stubber(gateway.client) as stub:
        denied(stub, "get_object", Bucket="m", Key="runs/r/results/00001.json")
        listed(stub, "m", "runs/r/results/00001.json", [])
        # WHEN read  THEN it is absent, not an error
        assert gateway.get_json_or_none("m", "runs/r/results/00001.json") is None


def test_a_403_on_a_file_that_exists_stays_a_denial(gateway: S3Gateway) -> None:
    with Stubber(gateway.client) as stub:
        denied(stub, "get_object", Bucket="m", Key="runs/r/plan/index.json")
        listed(stub, "m", "runs/r/plan/index.json", ["runs/r/plan/index.json"])
        with pytest.raises(Exception) as caught:
            gateway.get_json_or_none("m", "runs/r/plan/index.json")
    assert "403" in str(caught.value)


def test_a_missing_target_answered_403_is_no_such_key_and_a_denied_listing_proves_nothing(
        gateway: S3Gateway) -> None:
    with Stubber(gateway.client) as stub:
        denied(stub, "head_object", Bucket="t", Key="out/a.bin")
        listed(stub, "t", "out/a.bin", ["out/a.bin.part"])  # a longer key is not this key
        with pytest.raises(errors.NoSuchKeyError):
            gateway.head_object("t", "out/a.bin")
        denied(stub, "head_object", Bucket="t", Key="out/b.bin")
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        with pytest.raises(errors.AccessDeniedError):
            gateway.head_object("t", "out/b.bin")
