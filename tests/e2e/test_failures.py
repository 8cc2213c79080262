"""Cases 7 and 8 of the failure suite: a run that cannot finish fails cleanly and says why.

7. the finalizer fails for good: Cleanup aborts every multipart upload of the run (and no one else's),
   writes a failure report, and the execution ends FAILED with a clear Cause;
8. bad input sent straight to the state machine fails in the planner, before any copy, naming the field;
   an empty source succeeds with an empty report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import Stack, rich, uri

pytestmark = pytest.mark.e2e


def _failure_report(world: World, stack: Stack, name: str) -> dict[str, Any]:
    report: dict[str, Any] = support.read_json(
        world.s3, f"s3://{stack.manifest_bucket}/{stack.run_prefix(name)}failure.json")
    return report


def test_finalizer_failing_for_good_cleans_up_every_upload_of_the_run(world: World, main_stack: Stack) -> None:
    # GIVEN two objects uploaded in parts (split into chunks: the planner opens their uploads and the
    # finalizer would complete them), three small objects, and somebody else's upload in the target, under
    # the run's target path (where Cleanup lists uploads)
    part = support.PART_SIZE
    split = [rich(f"in/f/large-{i}.bin", 2 * part, in_parts=part) for i in range(2)]
    small = [rich(f"in/f/{i}.bin", 100 + i) for i in range(3)]
    source, target = world.source(*split, *small), world.target()
    foreign = world.s3.create_multipart_upload(Bucket=target, Key="out/someone-else/upload.bin")["UploadId"]
    document = support.config_document({"s3_bucket": source, "s3_path": "in/f/"},
                                       [{"file_types": ["bin"], "s3_bucket": target, "s3_path": "out/"}])
    # AND a finalizer that fails on every invocation with an error that is not retried
    world.emulator.set_faults({"lambda": [{"function": main_stack.function("finalizer"), "invocations": [1, 2, 3],
                                           "action": "error", "error": "VerificationError",
                                           "message": "injected: the finalizer cannot finish"}]})

    # WHEN
    run, name = world.run(main_stack, document, "finalizer-fails")

    # THEN the execution failed with the finalizer's error and a Cause pointing at the failure report
    assert run.returncode != 0, run.stdout
    described = world.sfn.describe_execution(executionArn=run.arn)
    failure_uri = f"s3://{main_stack.manifest_bucket}/{main_stack.run_prefix(name)}failure.json"
    assert described["status"] == "FAILED"
    assert described["error"] == "VerificationError"
    assert described["cause"] == f"injected: the finalizer cannot finish (failure report: {failure_uri})"
    assert world.emulator.stats()["lambda_invocations"][main_stack.function("cleanup")] == 1
    # AND the user who started it with the CLI is told the error and the Cause
    assert "VerificationError" in run.stderr and failure_uri in run.stderr, run.stderr
    # AND every upload of the run was aborted, and listed in the failure report; the foreign one was left alone
    report = _failure_report(world, main_stack, name)
    assert report["error"] == "VerificationError"
    assert sorted(u["key"] for u in report["aborted_uploads"]) == ["out/large-0.bin", "out/large-1.bin"]
    left = support.incomplete_uploads(world.s3, [target])
    assert left == [f"s3://{target}/out/someone-else/upload.bin#{foreign}"], left
    world.s3.abort_multipart_upload(Bucket=target, Key="out/someone-else/upload.bin", UploadId=foreign)
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    # AND the split objects were never completed; the failure report tallies what the workers did finish
    assert support.list_keys(world.s3, target) == sorted("out/" + o.key[len("in/f/"):] for o in small)
    assert report["partial_report"]["counts"]["copied"] == len(small)


@dataclass(frozen=True)
class BadInput:
    label: str
    document: Any
    error: str
    names: str  # the field the Cause must name


def test_bad_input_fails_in_the_planner_naming_the_field_and_an_empty_source_succeeds(
        world: World, main_stack: Stack) -> None:
    # GIVEN a source, an empty source, a target, a bucket of another account, and documents a console user
    # might send
    source = world.source(rich("in/b/one.txt", 10, "text/plain"))
    empty, target = world.source(), world.target()
    missing = world.unused_source()
    foreign = world.foreign_target()
    good_target = {"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}
    good = {"source_s3_config": {"s3_bucket": source, "s3_path": "in/b/"}, "target_s3_config": [good_target]}
    cases = [
        BadInput("malformed", {"s3_copy_config": ["not", "an", "object"]}, "ConfigError", "s3_copy_config"),
        BadInput("missing", {"s3_copy_config": {"target_s3_config": [good_target]}}, "ConfigError",
                 "s3_copy_config.source_s3_config"),
        BadInput("unknown-key", {"s3_copy_config": {**good, "option": {"dry_run": True}}}, "ConfigError",
                 "s3_copy_config.option"),
        BadInput("unknown-target-key", {"s3_copy_config": {**good, "target_s3_config": [
            {**good_target, "filetypes": ["jpg"]}]}}, "ConfigError", "s3_copy_config.target_s3_config[0].filetypes"),
        BadInput("no-such-source", {"s3_copy_config": {**good, "source_s3_config": {"s3_bucket": missing,
                                                                                    "s3_path": "in/"}}},
                 "SourceNotFoundError", "s3_copy_config.source_s3_config.s3_bucket"),
        BadInput("foreign-target", {"s3_copy_config": {**good, "target_s3_config": [
            {**good_target, "s3_bucket": foreign}]}}, "ConfigError", "s3_copy_config.target_s3_config[0].s3_bucket"),
        BadInput("target-is-source", {"s3_copy_config": {**good, "target_s3_config": [
            {"file_types": ["*"], "s3_bucket": source, "s3_path": "in/b/"}]}}, "ConfigError",
                 "s3_copy_config.target_s3_config[0].s3_path"),
    ]

    # WHEN each goes straight to the state machine (no CLI validation), all at once, with an empty source too
    arns = {case.label: support.start_execution(world.sfn, main_stack, case.document,
                                                support.execution_name(f"bad-{case.label}")) for case in cases}
    empty_name = support.execution_name("empty-source")
    empty_arn = support.start_execution(world.sfn, main_stack, support.config_document(
        {"s3_bucket": empty, "s3_path": "in/"}, [good_target]), empty_name)
    results = {label: support.wait_for(world.sfn, arn) for label, arn in arns.items()}
    empty_result = support.wait_for(world.sfn, empty_arn)

    # THEN each failed in the planner with the error that names the field
    problems = []
    for case in cases:
        got = results[case.label]
        if got["status"] != "FAILED" or got.get("error") != case.error or case.names not in got.get("cause", ""):
            problems.append(f"{case.label}: {got['status']} {got.get('error')}: {got.get('cause')}")
            continue
        events = support.history(world.sfn, arns[case.label])
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
        if entered != ["Plan", "Cleanup", "Failed"] and entered != ["Plan", "Cleanup"]:
            problems.append(f"{case.label}: states entered {entered}, expected Plan -> Cleanup -> Failed")
    assert not problems, "\n".join(problems)
    # AND nothing was copied by any of them (no worker ran; the planner was not retried on a fatal error)
    invocations = world.emulator.stats()["lambda_invocations"]
    assert invocations.get(main_stack.worker_function, 0) == 0, invocations
    assert invocations[main_stack.function("planner")] == len(cases) + 1, invocations
    assert support.list_keys(world.s3, target) == []
    # AND the empty source succeeded with an empty report
    assert empty_result["status"] == "SUCCEEDED", empty_result
    report = support.read_report(world.s3, main_stack, empty_name)
    assert report.summary["status"] == "succeeded"
    assert report.summary["counts"] == {"copied": 0, "skipped": 0, "failed": 0, "planned": 0}
    assert report.rows == []
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)


def test_a_payload_whose_worker_fails_for_good_is_reported_with_that_error(world: World, solo_stack: Stack) -> None:
    # GIVEN three small objects (one payload on the solo stack's one worker) and max_failed_objects 0
    objects = [rich(f"in/w/{i}.txt", 200 + i, "text/plain") for i in range(3)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/w/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"}],
                                       max_failed_objects=0)
    # AND the worker's first invocation fails with an error that is not retried
    message = "injected: the worker cannot start"
    world.emulator.set_faults({"lambda": [{"function": solo_stack.function("worker"), "invocation": 1,
                                           "action": "error", "error": "ConfigError", "message": message}]})

    # WHEN
    run, name = world.run(solo_stack, document, "worker-fails")

    # THEN the payload's child failed, its Catch called the worker once more (to record the error), and the run
    # went on to the finalizer, which failed it by max_failed_objects
    assert run.returncode != 0, run.stdout
    described = world.sfn.describe_execution(executionArn=run.arn)
    assert (described["status"], described["error"]) == ("FAILED", "TooManyFailedObjectsError")
    assert "3 objects failed" in described["cause"], described["cause"]
    assert world.emulator.stats()["lambda_invocations"][solo_stack.function("worker")] == 2
    # AND every row of the report carries the worker's error, not "NotRun"
    report = support.read_report(world.s3, solo_stack, name)
    assert report.summary["counts"] == {"copied": 0, "skipped": 0, "failed": 3, "planned": 0}
    assert sorted((row["source"], row["status"], row["error"]) for row in report.rows) == [
        (uri(source, o.key), "failed", f"ConfigError: {message}") for o in objects]
    # AND nothing was copied and no upload is left open
    assert support.list_keys(world.s3, target) == []
    support.assert_no_incomplete_uploads(world.s3, solo_stack, target)


def test_a_finalize_shard_failing_for_good_fails_the_run_naming_it_and_leaves_no_upload(
        world: World, main_stack: Stack) -> None:
    # GIVEN an object split into chunks (the planner opens its upload, the merge would complete it) and small ones
    part = support.PART_SIZE
    source, target = world.source(rich("in/g/large.bin", 2 * part, in_parts=part),
                                  *[rich(f"in/g/{i}.bin", 50 + i) for i in range(3)]), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/g/"},
                                       [{"file_types": ["bin"], "s3_bucket": target, "s3_path": "out/"}])
    # AND a finalizer whose second invocation (the first in a FinalizeShards child; the first is StartFinalize)
    # fails with an error that is not retried
    world.emulator.set_faults({"lambda": [{"function": main_stack.function("finalizer"), "invocations": [2],
                                           "action": "error", "error": "VerificationError",
                                           "message": "injected: a finalize shard cannot finish"}]})
    # WHEN
    run, name = world.run(main_stack, document, "finalize-shard-fails")
    # THEN the run failed: the merge found the shard's summary missing and named it (on AWS the FinalizeShards
    # Map fails first, ToleratedFailurePercentage 0; moto does not enforce it, README "The embedded emulator")
    assert run.returncode != 0, run.stdout
    described = world.sfn.describe_execution(executionArn=run.arn)
    assert (described["status"], described["error"]) == ("FAILED", "FinalizeShardError")
    assert "finalize shards did not finish: finalize shard" in described["cause"], described["cause"]
    # AND no report was written, cleanup aborted the split copy's upload, and nothing is left open anywhere
    report = _failure_report(world, main_stack, name)
    assert [u["key"] for u in report["aborted_uploads"]] == ["out/large.bin"]
    assert world.s3.list_objects_v2(Bucket=main_stack.manifest_bucket,
                                    Prefix=f"{main_stack.run_prefix(name)}report.json")["KeyCount"] == 0
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
