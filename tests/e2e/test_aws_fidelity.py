"""What real AWS accepts and refuses, end to end on the strict emulator: execution names, IAM, prefix scopes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e import support
from tests.e2e.conftest import Stacks, World
from tests.e2e.support import MiB, Stack, rich, uri

pytestmark = pytest.mark.e2e


def test_execution_names_aws_accepts_run_and_fail_cleanly(world: World, main_stack: Stack) -> None:
    # GIVEN execution names Step Functions accepts (StartExecution API reference, "name"): @ + ! ( ) and
    # letters beyond ASCII
    objects = [rich("in/n/a.txt", 10, "text/plain"), rich("in/n/b.txt", 20, "text/plain")]
    source, target = world.source(*objects), world.target()
    good = support.config_document({"s3_bucket": source, "s3_path": "in/n/"},
                                   [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"}])
    bad = support.config_document({"s3_bucket": source, "s3_path": "in/n/"},
                                  [{"file_types": ["txt"], "s3_bucket": world.unused_source(), "s3_path": "out/"}])
    suffix = uuid.uuid4().hex[:6]
    good_name, bad_name = f"café@run+1!(ok)-{suffix}", f"überlauf@run+2!(fails)-{suffix}"

    # WHEN one run succeeds and one fails in the planner
    good_arn = support.start_execution(world.sfn, main_stack, good, good_name)
    bad_arn = support.start_execution(world.sfn, main_stack, bad, bad_name)
    succeeded, failed = support.wait_for(world.sfn, good_arn), support.wait_for(world.sfn, bad_arn)

    # THEN the first copies everything and its report lives in the folder named after the execution
    assert succeeded["status"] == "SUCCEEDED", (succeeded.get("error"), succeeded.get("cause"))
    report = support.read_report(world.s3, main_stack, good_name)
    assert report.statuses() == {uri(target, "out/a.txt"): "copied", uri(target, "out/b.txt"): "copied"}
    # AND the second fails with the planner's error, and Cleanup wrote failure.json in its folder
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "ConfigError", failed
    failure: dict[str, Any] = support.read_json(
        world.s3, f"s3://{main_stack.manifest_bucket}/{main_stack.run_prefix(bad_name)}failure.json")
    assert failure["run_id"] == bad_name and failure["error"] == "ConfigError"


def test_prefix_scoped_roles_copy_tagged_whole_multipart_and_split_objects(
        world: World, main_stack: Stack) -> None:
    # GIVEN roles narrowed to in/ on the sources and out/ on the targets (ListBucket conditioned on s3:prefix)
    # and tagged objects: small, multipart, and one larger than a payload (split by the planner, whose
    # CreateMultipartUpload carries the tags and so needs s3:PutObjectTagging)
    objects = [rich("in/small.txt", 1_000, "text/plain"), rich("in/medium.bin", 17 * MiB, in_parts=6 * MiB),
               rich("in/large.bin", 31 * MiB)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/"},
                                       [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}],
                                       max_payload_size_mb=10)

    # WHEN the run goes through the CLI on the strict emulator (IAM enforced)
    run, name = world.run(main_stack, document, "scoped")

    # THEN every object arrives with its bytes, headers and tags, and no upload is left open
    assert run.returncode == 0, run.stdout + run.stderr
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/"):]): o for o in objects}, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    report = support.read_report(world.s3, main_stack, name)
    methods = {row["source"]: row["method"] for row in report.rows}
    assert methods[uri(source, "in/large.bin")] == "multipart-split", methods
    # AND the emulator denied nothing but reads of files not written yet (checkpoints): S3 answers those 403
    # to roles that may list only their prefix, and the gateway confirms the key is missing by listing it
    denied = world.emulator.stats().get("s3_denied", {})
    assert set(denied) <= {"GetObject", "HeadObject"}, denied


def test_prefix_scoped_roles_refuse_locations_outside_their_prefixes(world: World, main_stack: Stack) -> None:
    # GIVEN a source path and a target path outside the roles' prefixes
    source, target = world.source(rich("other/a.txt", 10, "text/plain")), world.target()
    outside_source = support.config_document({"s3_bucket": source, "s3_path": "other/"},
                                             [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}])
    outside_target = support.config_document({"s3_bucket": source, "s3_path": "in/"},
                                             [{"file_types": ["*"], "s3_bucket": target, "s3_path": "elsewhere/"}])
    # WHEN each goes straight to the state machine
    arns = [support.start_execution(world.sfn, main_stack, doc, support.execution_name(label))
            for label, doc in (("outside-source", outside_source), ("outside-target", outside_target))]
    source_run, target_run = (support.wait_for(world.sfn, arn) for arn in arns)
    # THEN the planner refuses each, naming the field, the location and the env variable to change
    assert (source_run["status"], source_run["error"]) == ("FAILED", "SourceNotFoundError"), source_run
    assert f"may not read s3://{source}/other/" in source_run["cause"]
    assert "source_buckets" in source_run["cause"]
    assert (target_run["status"], target_run["error"]) == ("FAILED", "ConfigError"), target_run
    assert f"s3_copy_config.target_s3_config[0].s3_bucket: this stack may not write s3://{target}/elsewhere/" \
        in target_run["cause"]
    assert support.list_keys(world.s3, target) == []


def test_a_worker_role_missing_one_action_fails_the_run_naming_it_and_leaves_no_upload(
        world: World, stacks: Stacks) -> None:
    # GIVEN a stack whose worker role lost s3:PutObject on the targets (as if its policy were written by hand)
    stack = stacks.get(support.DENIED)
    resources = world.aws.cfn.list_stack_resources(StackName=stack.spec.name)["StackResourceSummaries"]
    (role,) = [r["PhysicalResourceId"] for r in resources if r.get("LogicalResourceId") == "WorkerRole"]
    policy = world.aws.iam.get_role_policy(RoleName=role, PolicyName="worker-least-privilege")["PolicyDocument"]
    document = dict(policy)
    (write,) = [s for s in document["Statement"] if s["Sid"] == "WriteTargets"]
    write["Action"].remove("s3:PutObject")
    world.aws.iam.put_role_policy(RoleName=role, PolicyName="worker-least-privilege",
                                  PolicyDocument=json.dumps(document))
    # AND a small object and one the planner splits (it opens the upload; the workers copy its parts)
    objects = [rich("in/small.txt", 500, "text/plain"), rich("in/large.bin", 25 * MiB)]
    source, target = world.source(*objects), world.target()
    config = support.config_document({"s3_bucket": source, "s3_path": "in/"},
                                     [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}],
                                     max_payload_size_mb=10)

    # WHEN it runs
    run, name = world.run(stack, config, "denied-worker")

    # THEN the run fails, and every object failed with S3's AccessDenied naming the action and the target key
    assert run.returncode != 0, run.stdout
    assert world.sfn.describe_execution(executionArn=run.arn)["error"] == "TooManyFailedObjectsError"
    report = support.read_report(world.s3, stack, name)
    errors = {row["target"]: row["error"] for row in report.rows}
    assert set(errors) == {uri(target, "out/small.txt"), uri(target, "out/large.bin")}, errors
    for target_uri, error in errors.items():
        key = target_uri.split("/", 3)[3]
        assert "AccessDenied" in error, error  # a split object names the failed chunk first: "c0.p1: AccessDenied..."
        assert "s3:PutObject" in error and f"arn:aws:s3:::{target}/{key}" in error, error
    # AND nothing was written, and no multipart upload is left behind (the split's upload was aborted)
    assert support.list_keys(world.s3, target) == []
    support.assert_no_incomplete_uploads(world.s3, stack, target)
