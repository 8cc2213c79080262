"""``sfncopy plan``: the planner core in dry run against real (moto) buckets, with a paginated listing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from sfncopy.cli import cli

MiB = 1024 * 1024
SOURCE, TARGET = "plan-src", "plan-dst"
ENV_FILE = f"""\
export stack_name=sfncopy-plan-test
export region=us-east-1
export num_copy_lambda_workers=3
export max_payload_size_per_lambda_execution_in_mb=64
export max_objects_per_payload=100
export copy_cutoff_mb=16
export part_size_mb=5
export source_buckets={SOURCE}
export target_buckets={TARGET}
export package_bucket=plan-packages
export manifest_bucket=create
export planner_memory_mb=512
export planner_timeout_seconds=300
export worker_memory_mb=1024
export worker_timeout_seconds=900
export finalizer_memory_mb=512
export finalizer_timeout_seconds=300
"""
CONFIG = {"s3_copy_config": {
    "source_s3_config": {"s3_bucket": SOURCE, "s3_path": "in/"},
    "target_s3_config": [
        {"file_types": ["jpg"], "s3_bucket": TARGET, "s3_path": "images/"},
        {"file_types": ["csv"], "s3_bucket": TARGET, "s3_path": "data/"},
        {"file_types": ["mp4"], "s3_bucket": TARGET, "s3_path": "videos/"},
    ],
}}


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "test-env.sh").write_text(ENV_FILE, encoding="utf-8")
    (tmp_path / "copy.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    return tmp_path


def _source(s3: Any, photos: int = 700, tables: int = 300) -> dict[str, int]:
    """photos + tables + 53 keys under the source prefix (by default more than one ListObjectsV2 page)
    and one outside it; returns the bytes expected per target."""
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=TARGET)
    expected = {"images/": 0, "data/": 0, "videos/": 0}
    for i in range(photos):
        body = b"j" * (100 + i)
        s3.put_object(Bucket=SOURCE, Key=f"in/photos/p {i}.jpg", Body=body)
        if i == 0:  # already at the target, identical: skipped
            s3.put_object(Bucket=TARGET, Key="images/photos/p 0.jpg", Body=body)
        else:
            expected["images/"] += len(body)
    for i in range(tables):
        s3.put_object(Bucket=SOURCE, Key=f"in/data/t{i}.csv", Body=b"c" * 50)
        expected["data/"] += 50
    for i in range(50):
        s3.put_object(Bucket=SOURCE, Key=f"in/notes/n{i}.txt", Body=b"n")  # no target wants them
    s3.put_object(Bucket=SOURCE, Key="in/photos/old.jpg", Body=b"g" * 10, StorageClass="GLACIER")
    s3.put_object(Bucket=SOURCE, Key="in/photos/", Body=b"")  # a folder marker
    upload = s3.create_multipart_upload(Bucket=SOURCE, Key="in/clip.mp4")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=SOURCE, Key="in/clip.mp4", UploadId=upload,
                                                      PartNumber=n, Body=b"v" * size)["ETag"]}
             for n, size in ((1, 5 * MiB), (2, MiB))]
    s3.complete_multipart_upload(Bucket=SOURCE, Key="in/clip.mp4", UploadId=upload, MultipartUpload={"Parts": parts})
    expected["videos/"] = 6 * MiB
    s3.put_object(Bucket=SOURCE, Key="elsewhere/x.jpg", Body=b"x")  # outside the source prefix
    return expected


def _plan(workspace: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["--envs-dir", str(workspace / "envs"), "plan", str(workspace / "copy.json"),
                                    "--env", "test", *extra])


def test_plan_json_reports_targets_workers_estimate_and_skips(aws, workspace):
    # GIVEN a source of 1,053 keys: jpg/csv/mp4 for three targets, txt for none, an archived jpg, a
    # folder marker, and one jpg already identical at its target
    expected = _source(aws)
    # WHEN planned for a 3-worker environment, as JSON
    result = _plan(workspace, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    # THEN per target: objects and bytes matched
    targets = {t["target"]: (t["objects"], t["bytes"]) for t in plan["per_target"]}
    assert targets == {f"s3://{TARGET}/images/": (699, expected["images/"]),
                       f"s3://{TARGET}/data/": (300, expected["data/"]),
                       f"s3://{TARGET}/videos/": (1, expected["videos/"])}
    # THEN the work is spread over the 3 workers, close to the ideal
    assert plan["workers"] == 3 and len(plan["payloads_per_worker"]) == 3
    assert all(n >= 1 for n in plan["payloads_per_worker"])
    assert sum(plan["bytes_per_worker"]) == sum(expected.values())
    assert 1.0 <= plan["balance"] < 1.2
    # THEN skipped objects by reason, and the unmatched ones counted
    assert plan["skipped_by_reason"]["restore first"] == 1
    assert plan["skipped_by_reason"]["identical"] == 1
    assert plan["unmatched"] == 50
    assert plan["objects_listed"] == 1053
    # THEN an estimate of requests, transitions, GB-seconds and dollars
    assert plan["requests"]["copy_object"] == 1000
    assert plan["state_transitions"] > 0 and plan["lambda_gb_seconds"] > 0 and plan["dollars"] > 0
    # THEN nothing was written anywhere: the target holds only what was there, no upload is open
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=TARGET).get("Contents", ())]
    assert keys == ["images/photos/p 0.jpg"]
    assert not aws.list_multipart_uploads(Bucket=TARGET).get("Uploads")
    assert {b["Name"] for b in aws.list_buckets()["Buckets"]} == {SOURCE, TARGET}


def test_plan_text_output(aws, workspace):
    _source(aws, photos=20, tables=10)
    result = _plan(workspace)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("plan for env test: 83 objects listed, 30 copies")
    assert "balance" in result.output and "estimate:" in result.output
    assert "restore first: 1" in result.output and "matched no target: 50" in result.output
    assert "folder marker: 1" in result.output


def test_plan_of_a_source_bucket_that_does_not_exist_is_one_line(aws, workspace):
    # GIVEN no buckets at all  WHEN planned  THEN exit 1 with one line naming the bucket
    result = _plan(workspace)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert SOURCE in result.output and "Traceback" not in result.output


def test_plan_reports_the_history_and_the_concurrency_a_run_needs(aws, workspace):
    # GIVEN a small source, and no Lambda answer for the account's settings (moto does not implement
    # GetAccountSettings; the emulator does, bridge 12)
    _source(aws, photos=20, tables=10)
    # WHEN planned as text
    result = _plan(workspace)
    assert result.exit_code == 0, result.output
    # THEN the run's execution and a payload's child execution each have their history figure (the child's
    # budgeted as if its payload failed for good after its retries: 11 + 2 + 6 x 3)
    assert "history events: 66 in the run's execution, at most 31 in a payload's child execution" in result.output
    # AND the workers' concurrency is named, with a warning that the account's could not be read
    assert "concurrency: 3 worker(s) x 1 payload(s) at once = 3 worker invocations at most" in result.output
    assert "warning: Lambda concurrency unknown (GetAccountSettings failed" in result.output
    assert "a new account has 1,000 per Region" in result.output
    # AND the stage closest to its ceiling is named with the setting to change, then each stage's headroom:
    # 3 invocations of a new account's 1,000; 66 and 31 history events of 25,000; 83 objects on a 512 MB planner
    assert ("binding stage: Lambda concurrency: 0.3% of 1,000 invocations: lower worker_concurrency (now 1) or "
            "num_copy_lambda_workers in the env file") in result.output
    assert "  run's history: 0.3% of 25,000 events\n" in result.output
    assert "  largest child history: 0.1% of 25,000 events\n" in result.output
    assert "  planner memory: 0.0% of 512 MB\n" in result.output
    assert "  finalize shard rows per invocation: 0.0% of 166,666 rows\n" in result.output  # 240 s at 1.44 ms a row


def test_plan_refuses_workers_the_worker_functions_concurrency_cannot_run(aws, workspace, monkeypatch):
    # GIVEN the env's worker function deployed with 5 reserved concurrent executions, and 3 workers x 2 payloads
    _source(aws, photos=20, tables=10)
    monkeypatch.setenv("worker_concurrency", "2")
    lam = boto3.client("lambda", region_name="us-east-1")
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="plan-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(FunctionName="sfncopy-plan-test-worker", Runtime="python3.12", Role=role,
                        Handler="lambdas.handlers.copy", Code={"ZipFile": b"fake"})
    lam.put_function_concurrency(FunctionName="sfncopy-plan-test-worker", ReservedConcurrentExecutions=5)
    # WHEN planned as JSON
    result = _plan(workspace, "--json")
    # THEN the plan is printed, with the check, and the command fails naming the figures and the fixes
    assert result.exit_code == 1
    plan = json.loads(result.output[:result.output.rindex("}") + 1])
    assert plan["lambda_concurrency"]["needed"] == 6 and plan["lambda_concurrency"]["available"] == 5
    assert plan["lambda_concurrency"]["verdict"] == "refuse"
    assert "a run invokes up to 6 workers at once, but the reserved concurrency of sfncopy-plan-test-worker " \
           "allows 5" in result.output
    assert "lower num_copy_lambda_workers or worker_concurrency" in result.output
    # AND the JSON names Lambda concurrency as the binding stage, past its ceiling, with every stage's headroom
    room = plan["headroom"]
    assert (room["binding"], room["stages"][0]["share"], room["stages"][0]["ceiling"]) == ("Lambda concurrency",
                                                                                          1.2, 5)
    assert room["fix"].startswith("lower worker_concurrency (now 2)")
    assert {stage["name"] for stage in room["stages"]} == {
        "planner memory", "planner time", "run's history", "largest child history", "payloads of the busiest worker",
        "Lambda concurrency", "finalize shard rows per invocation"}


def test_plan_of_a_sharded_env_runs_the_sharded_planning_and_names_its_stages(aws, workspace):
    # GIVEN a source planned by the single planner
    _source(aws)
    single = json.loads(_plan(workspace, "--json").output)
    # AND an env that plans it in 4 shards (3 workers, payloads of at most 100 objects, a 512 MB planner)
    with (workspace / "envs" / "test-env.sh").open("a", encoding="utf-8") as env_file:
        env_file.write("export planning=sharded\nexport planner_shards=4\n")
    # WHEN planned
    result = _plan(workspace, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    # THEN the sharded steps ran (4 shards, their segments binned), deciding what the single planner decides
    sharding = plan["sharding"]
    assert plan["planning"] == "sharded" and sharding["shards"] == 4 and sharding["ordered"] is True
    assert sharding["segments"] >= 10 and sharding["payloads"] >= sharding["segments"]
    assert 0 < sharding["largest_shard_listed"] < plan["objects_listed"] and sharding["largest_shard_requests"] > 0
    for figure in ("objects_listed", "copies", "bytes", "skipped_by_reason", "per_target"):
        assert plan[figure] == single[figure], figure
    assert plan["payloads"] == sharding["payloads"] and sum(plan["payloads_per_worker"]) == sharding["payloads"]
    assert sum(plan["bytes_per_worker"]) == plan["bytes"]
    # AND the headroom has sharded planning's stages in place of the single planner's
    names = {stage["name"] for stage in plan["headroom"]["stages"]}
    assert {"shards", "largest shard's time", "assembler memory"} <= names
    assert not names & {"planner memory", "planner time"}
    shards = next(stage for stage in plan["headroom"]["stages"] if stage["name"] == "shards")
    assert (shards["used"], shards["ceiling"]) == (4, 10_000)
    # AND nothing was written: no bucket but the two the test made, no upload in them
    assert {b["Name"] for b in aws.list_buckets()["Buckets"]} == {SOURCE, TARGET}
    assert not aws.list_multipart_uploads(Bucket=TARGET).get("Uploads")
    # AND the text says which stage binds and shows the sharded figures
    text = _plan(workspace).output
    assert "sharded planning: 4 shard(s) in 1 generation(s)" in text and "largest shard: " in text
    assert "  assembler memory: " in text and "  largest shard's time: " in text



def test_plan_of_a_sharded_env_follows_the_ranges_shards_hand_on(aws, workspace, monkeypatch):
    # GIVEN a source planned by the single planner, and an env planning it in 2 shards that each hand on the rest
    # of their range at once (as a shard still listing SPILL_AFTER_SECONDS into an invocation does)
    _source(aws, photos=300, tables=100)
    single = json.loads(_plan(workspace, "--json").output)
    with (workspace / "envs" / "test-env.sh").open("a", encoding="utf-8") as env_file:
        env_file.write("export planning=sharded\nexport planner_shards=2\n")
    monkeypatch.setattr("lambdas.sharding.shard.SPILL_AFTER_SECONDS", 0.0)
    monkeypatch.setattr("lambdas.sharding.shard.DEADLINE_EVERY", 40)  # a look at the clock every 40 objects
    # WHEN planned
    result = _plan(workspace, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    # THEN the handed-on ranges were collected from memory and planned as later generations, deciding the same
    assert plan["sharding"]["generations"] > 1 and plan["sharding"]["shards"] > 2
    for figure in ("objects_listed", "copies", "bytes", "skipped_by_reason"):
        assert plan[figure] == single[figure], figure


def test_plan_shows_the_objects_bytes_cost_and_wait_of_the_restores(aws, workspace):
    # GIVEN an env with restore_archived=true, archived objects in the source, and options.restore
    (workspace / "envs" / "test-env.sh").write_text(ENV_FILE + "export restore_archived=true\n", encoding="utf-8")
    _source(aws, photos=5, tables=2)
    aws.put_object(Bucket=SOURCE, Key="in/data/deep.csv", Body=b"d" * 2000, StorageClass="DEEP_ARCHIVE")
    config = {**CONFIG, "s3_copy_config": {**CONFIG["s3_copy_config"], "options": {"restore": {"tier": "Standard",
                                                                                                "days": 2}}}}
    (workspace / "copy.json").write_text(json.dumps(config), encoding="utf-8")

    # WHEN planned, as JSON and as text
    result = _plan(workspace, "--json")
    assert result.exit_code == 0, result.output
    restore = json.loads(result.output)["restore"]
    text = _plan(workspace).output

    # THEN the two archived objects are to restore, with their bytes, the tier's cost and wait, and the bound
    assert (restore["tier"], restore["objects"], restore["bytes"]) == ("Standard", 2, 2010)
    assert {c["storage_class"]: c["objects"] for c in restore["by_storage_class"]} == {"GLACIER": 1,
                                                                                      "DEEP_ARCHIVE": 1}
    assert restore["expected_wait"] == "within 12 hours (DEEP_ARCHIVE), 3-5 hours (GLACIER)"
    assert restore["bound_seconds"] == 12 * 3600 and restore["prices_verified"] is False
    assert restore["retrieval_dollars"] == pytest.approx(0.05 / 1000 + 0.10 / 1000, abs=1e-4)
    assert "restore (Standard): 2 archived object(s), 2,010 bytes" in text
    assert "to restore: 2" in text
