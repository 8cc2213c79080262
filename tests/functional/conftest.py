"""Shared moto fixtures for functional tests: an in-memory S3 and our gateway on a real retrying client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from lambdas.gateway import S3Gateway, make_client

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's S3 for the test, with fake credentials and no endpoint override (moto intercepts)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def s3_client(aws: None) -> Any:
    """A client built exactly as the Lambdas build theirs (standard retry mode, 10 attempts)."""
    return make_client(max_attempts=10)


@pytest.fixture
def gateway(s3_client: Any) -> S3Gateway:
    return S3Gateway(s3_client)


# --- The embedded emulator (sfncopy.emulator) --------------------------------------------------------
@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    """One emulator per test module on a free loopback port (moto's state is process-wide: one at a time)."""
    from sfncopy.emulator import Emulator, free_port

    with Emulator(port=free_port()) as running:
        yield running


@pytest.fixture(scope="module")
def emulator_client(emulator: Any) -> Any:
    """``emulator_client("s3", attempts=1)``: a boto3 client aimed at the emulator, dummy credentials,
    botocore "standard" retries with ``attempts`` total attempts (1 = no retry)."""
    import boto3
    from botocore.config import Config

    def client(service: str, attempts: int = 1) -> Any:
        return boto3.client(service, endpoint_url=emulator.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))

    return client
