"""The demo's data and expectations by value (the demo itself runs in tests/e2e/test_demo.py)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lambdas.config import load_config_text
from sfncopy import demo

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def objects():
    return demo.demo_objects(200, large_size=6 * MiB)


@pytest.fixture(scope="module")
def config():
    return load_config_text(demo.DEMO_CONFIG.read_text(encoding="utf-8"), "demo-copy.json")


def test_demo_objects_cover_the_cases_the_demo_promises(objects):
    keys = [o.key for o in objects]
    assert len(objects) == 203 and len(set(keys)) == 203
    assert any(" " in k for k in keys) and any("+" in k for k in keys) and any("%" in k for k in keys)
    assert any(not k.isascii() for k in keys)
    assert any(o.in_parts and len(o.body) == 6 * MiB for o in objects)
    assert any(o.metadata for o in objects) and any(o.tags for o in objects)
    assert any(len(o.body) == 0 and not o.key.endswith("/") for o in objects)  # an empty object
    assert any(k.endswith("/") for k in keys)  # a folder marker
    assert demo.demo_objects(20) == demo.demo_objects(20)  # deterministic


def test_expected_copies_follow_the_file_types(config, objects):
    # GIVEN the demo config: images, videos, data, and csv also to reports/
    expected = demo.expected_copies(objects, config)
    by_source: dict[str, list[str]] = {}
    for (bucket, key), obj in expected.items():
        assert bucket == "sfncopy-demo-target"
        by_source.setdefault(obj.key, []).append(key)
    # THEN a csv goes to two targets, an upper-case JPG to images/, txt/log and folder markers nowhere
    csv = next(o for o in objects if o.key.endswith(".csv"))
    rel = csv.key.removeprefix("media/")
    assert sorted(by_source[csv.key]) == [f"data/{rel}", f"reports/{rel}"]
    upper = next(o for o in objects if o.key.endswith(".JPG"))
    assert by_source[upper.key] == ["images/" + upper.key.removeprefix("media/")]
    assert not any(o.key.endswith((".txt", ".log", "/")) and o.key in by_source for o in objects)


def test_large_objects_are_just_over_the_cutoff():
    assert demo.large_object_size(16) == 17 * MiB


@mock_aws
def test_verify_finds_wrong_bytes_metadata_tags_missing_and_extra(config):
    # GIVEN the demo buckets where the copies are right except for four planted mistakes
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="sfncopy-demo-target")
    s3.create_bucket(Bucket="manifests")
    objects = [o for o in demo.demo_objects(30, large_size=5 * MiB) if not o.in_parts]
    expected = demo.expected_copies(objects, config)
    wrong = sorted(expected)[:4]
    for (bucket, key), obj in expected.items():
        body = obj.body + b"!" if (bucket, key) == wrong[0] else obj.body
        metadata = {"x": "y"} if (bucket, key) == wrong[1] else obj.metadata
        tags = "t=1" if (bucket, key) == wrong[2] else "&".join(f"{k}={v}" for k, v in obj.tags.items())
        if (bucket, key) != wrong[3]:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=obj.content_type, Metadata=metadata,
                          Tagging=tags)
    s3.put_object(Bucket="sfncopy-demo-target", Key="stray", Body=b"")
    report = {"status": "succeeded", "counts": {"copied": len(expected), "failed": 0}}
    # WHEN verified
    problems = demo.verify(s3, config, objects, report, "manifests")
    # THEN exactly the planted mistakes are found
    uri = [f"s3://{b}/{k}" for b, k in wrong]
    assert len(problems) == 5, problems
    assert any(p.startswith(uri[0]) and "differ" in p for p in problems)
    assert any(p.startswith(uri[1]) and "metadata" in p for p in problems)
    assert any(p.startswith(uri[2]) and "tags" in p for p in problems)
    assert f"missing: {uri[3]}" in problems
    assert "unexpected: s3://sfncopy-demo-target/stray" in problems


def test_report_checks():
    assert demo._check_report(None, 3) == ["no report.json was written"]
    bad = demo._check_report({"status": "failed", "counts": {"copied": 2, "failed": 1}}, 3)
    assert len(bad) == 3
    assert demo._check_report({"status": "succeeded", "counts": {"copied": 3, "failed": 0}}, 3) == []
