"""A scheduled run's input names its config in S3 (lambdas/stored_config.py): the planner reads it, or fails with a
ConfigError naming the field and the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.config import parse_config
from lambdas.errors import ConfigError
from lambdas.gateway import S3Gateway
from lambdas.stored_config import resolve_input

CONFIG = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "src-bucket", "s3_path": "in/"},
                             "target_s3_config": [{"file_types": ["*"], "s3_bucket": "tgt-bucket"}]}}


@pytest.fixture
def configs(s3_client: Any) -> str:
    s3_client.create_bucket(Bucket="cfg-bucket")
    s3_client.put_object(Bucket="cfg-bucket", Key="nightly.json", Body=json.dumps(CONFIG).encode())
    s3_client.put_object(Bucket="cfg-bucket", Key="broken.json", Body=b'{"s3_copy_config": ')
    s3_client.put_object(Bucket="cfg-bucket", Key="loop.json",
                         Body=json.dumps({"s3_copy_config_location": "s3://cfg-bucket/nightly.json"}).encode())
    return "cfg-bucket"


def test_a_location_is_replaced_by_the_stored_config(gateway: S3Gateway, configs: str) -> None:
    document = resolve_input({"s3_copy_config_location": "s3://cfg-bucket/nightly.json"}, gateway)
    assert document == CONFIG
    assert parse_config(document).sources[0].bucket == "src-bucket"


def test_a_config_passes_through_unchanged(gateway: S3Gateway) -> None:
    assert resolve_input(CONFIG, gateway) is CONFIG


@pytest.mark.parametrize(("document", "problem"), [
    ({"s3_copy_config_location": "s3://cfg-bucket/missing.json"}, "cannot read s3://cfg-bucket/missing.json"),
    ({"s3_copy_config_location": "s3://cfg-bucket/broken.json"}, "is not JSON (line 1"),
    ({"s3_copy_config_location": "s3://cfg-bucket/loop.json"}, "holds another location"),
    ({"s3_copy_config_location": "cfg-bucket/nightly.json"}, 'expected "s3://bucket/key"'),
    ({"s3_copy_config_location": "s3://cfg-bucket/"}, "names no object"),
    ({"s3_copy_config_location": "s3://cfg-bucket/nightly.json", **CONFIG}, "not both"),
])
def test_a_bad_location_is_a_config_error_naming_the_field(gateway: S3Gateway, configs: str,
                                                           document: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_input(document, gateway)
    assert problem in str(raised.value)
    assert "s3_copy_config_location" in str(raised.value)
