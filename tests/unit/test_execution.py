"""Execution helpers by value: ARNs, names, report locations, the run's location from the history, and
progress read from the run's files (on moto S3)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas import manifest
from lambdas.gateway import S3Gateway
from lambdas.models import (
    CopyConfig,
    ManifestLocation,
    ObjectResult,
    PayloadCheckpoint,
    PlanPointer,
    PlanTotals,
    RunPlan,
)
from sfncopy import execution, progress
from sfncopy.execution import ExecutionError, ExecutionStatus, check_name, default_name

ARN = "arn:aws:states:eu-west-1:123456789012:execution:sfncopy-dev:run-7"
LOC = ManifestLocation(bucket="manifests", prefix="sfncopy/runs/run-7/")


def test_region_and_run_id_come_from_the_execution_arn():
    assert execution.region_of(ARN) == "eu-west-1"
    assert execution.run_id_of(ARN) == "run-7"


@pytest.mark.parametrize("arn", ["arn:aws:states:eu-west-1:1:stateMachine:m", "run-7", "arn:aws:s3:::b"])
def test_not_an_execution_arn(arn):
    with pytest.raises(ExecutionError, match="is not an execution ARN"):
        execution.region_of(arn)


def test_execution_names_must_be_safe_run_ids():
    assert execution.check_name("nightly-2025_01.a") == "nightly-2025_01.a"
    with pytest.raises(ExecutionError, match="--name"):
        execution.check_name("two words")


# Names Step Functions accepts (StartExecution API reference, "name"): all of them are run ids, verbatim.
AWS_ACCEPTS = ["run@2026+1!(x)", "café-über", "日本語の実行", "a=b'c", "x" * 80, "nightly.2025"]
# Names it refuses: the run id refuses them too, saying why.
AWS_REFUSES = ["", "x" * 81, "two words", "a/b", "a:b", "a*b", "a?b", "a#b", "a%b", "a{b}", "a[b]", "a<b>",
               'a"b', "a\\b", "a^b", "a|b", "a~b", "a`b", "a$b", "a&b", "a,b", "a;b", "tab\there", "nul\x00",
               "del\x7f", "c1\x85"]


@pytest.mark.parametrize("name", AWS_ACCEPTS)
def test_every_execution_name_aws_accepts_is_a_run_id_kept_verbatim(name):
    assert manifest.run_id_problem(name) == ""
    assert manifest.run_location("m", "sfncopy/", name).prefix == f"sfncopy/runs/{name}/"
    assert execution.check_name(name) == name


@pytest.mark.parametrize("name", AWS_REFUSES)
def test_execution_names_aws_refuses_are_refused_with_the_reason(name):
    problem = manifest.run_id_problem(name)
    assert problem and "run id" in problem
    with pytest.raises(ValueError, match="run id"):
        manifest.run_location("m", "", name)


def test_report_uris_from_output_else_next_to_the_plan():
    done = ExecutionStatus(ARN, "run-7", "SUCCEEDED", "", output={"report_json": "s3://m/r.json",
                                                                    "report_csv": "s3://m/r.csv"})
    assert execution.report_uris(done, LOC) == ("s3://m/r.json", "s3://m/r.csv")
    failed = ExecutionStatus(ARN, "run-7", "FAILED", "", error="TooManyFailedObjectsError")
    assert execution.report_uris(failed, LOC) == ("s3://manifests/sfncopy/runs/run-7/report.json",
                                                  "s3://manifests/sfncopy/runs/run-7/report.csv")
    assert execution.report_uris(failed, None) == ("", "")


def test_split_uri():
    assert execution.split_uri("s3://b/a/b c.json") == ("b", "a/b c.json")
    with pytest.raises(ExecutionError):
        execution.split_uri("https://b/key")


def _history(*outputs: dict[str, Any]) -> dict[str, Any]:
    events = [{"id": i + 1, "timestamp": dt.datetime(2025, 1, 1), "type": "TaskSucceeded",
               "taskSucceededEventDetails": {"resourceType": "lambda", "resource": "invoke", "output": json.dumps(o)}}
              for i, o in enumerate(outputs)]
    return {"events": events}


def test_run_location_is_read_from_the_planners_answer_in_the_history():
    # GIVEN a history whose second task output is the planner's PlanPointer
    pointer = PlanPointer("run-7", LOC, False, ((0,), ()), copies=1, bytes=5, skipped=0).to_dict()
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    with Stubber(sfn) as stub:
        stub.add_response("get_execution_history", _history({"other": 1}, pointer))
        # WHEN the location is looked up THEN it is the pointer's manifest location
        assert execution.find_run_location(sfn, ARN) == LOC


def test_run_location_unknown_before_the_planner_answered():
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    with Stubber(sfn) as stub:
        stub.add_response("get_execution_history", _history({"run_id": "x"}))
        assert execution.find_run_location(sfn, ARN) is None


def _result(task_id: str, copy_id: int, nbytes: int) -> ObjectResult:
    return ObjectResult(task_id, copy_id, "src", f"k{copy_id}", "dst", f"k{copy_id}", nbytes, "copied", "copy")


@mock_aws
def test_run_files_snapshot_follows_the_results_as_workers_rewrite_them():
    # GIVEN a run's plan index in the manifest bucket and no results yet
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=LOC.bucket)
    s3 = S3Gateway(client)
    plan = RunPlan("run-7", "", CopyConfig(sources=(), targets=()), 2, ((0,), (1,)), (),
                   PlanTotals(copies=3, bytes=300))
    files = execution.RunFiles(s3, LOC)
    assert files.snapshot() is None  # before the planner wrote the plan
    s3.put_json(LOC.bucket, manifest.key(LOC, manifest.INDEX), plan.to_dict())
    empty = files.snapshot()
    assert empty is not None and empty.objects_done == 0
    # WHEN worker 0 writes one result, then rewrites its checkpoint with two, and worker 1 writes one
    manifest.write_checkpoint(s3, LOC, PayloadCheckpoint(0, 0, results=(_result("c0", 0, 100),)))
    first = files.snapshot()
    manifest.write_checkpoint(s3, LOC, PayloadCheckpoint(0, 0, results=(_result("c0", 0, 100),
                                                                         _result("c1", 1, 150))))
    manifest.write_checkpoint(s3, LOC, PayloadCheckpoint(1, 1, results=(_result("c2", 2, 50),)))
    second = files.snapshot()
    assert first is not None and second is not None
    # THEN each snapshot counts what the files said at that moment
    assert (first.objects_done, first.bytes_done) == (1, 100)
    assert (second.objects_done, second.bytes_done, second.fraction) == (3, 300, 1.0)


@mock_aws
def test_read_report_prefers_report_json_then_the_failure_report():
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=LOC.bucket)
    s3 = S3Gateway(client)
    failed = ExecutionStatus(ARN, "run-7", "FAILED", "")
    assert execution.read_report(s3, failed, LOC) is None
    s3.put_json(LOC.bucket, manifest.key(LOC, manifest.FAILURE), {"error": "VerificationError"})
    assert execution.read_report(s3, failed, LOC) == {"error": "VerificationError"}
    s3.put_json(LOC.bucket, manifest.key(LOC, manifest.REPORT_JSON), {"status": "failed"})
    assert execution.read_report(s3, failed, LOC) == {"status": "failed"}


def test_stack_outputs_and_a_missing_stack():
    # moto's CloudFormation takes seconds to import; the e2e suite reads real outputs of a deployed stack.
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    outputs = [{"OutputKey": "StateMachineArn", "OutputValue": "arn:sm"},
               {"OutputKey": "ManifestBucket", "OutputValue": "manifests"},
               {"OutputKey": "ManifestPrefix", "OutputValue": "sfncopy"}]
    created = dt.datetime(2025, 1, 1)
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "s", "CreationTime": created,
                                                          "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]})
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "s", "CreationTime": created,
                                                          "StackStatus": "ROLLBACK_COMPLETE"}]})
        got = execution.stack_outputs(cfn, "s")
        assert got.run_location("r1") == ManifestLocation("manifests", "sfncopy/runs/r1/")
        assert got.state_machine_arn == "arn:sm"
        with pytest.raises(ExecutionError, match="stack 'nope' does not exist: deploy it first"):
            execution.stack_outputs(cfn, "nope")
        with pytest.raises(ExecutionError, match=r"no output StateMachineArn, ManifestBucket.*ROLLBACK_COMPLETE"):
            execution.stack_outputs(cfn, "s")


def test_an_execution_without_a_name_gets_a_readable_unique_safe_one():
    # GIVEN no --name  WHEN two names are made in the same second  THEN they differ and are valid run ids
    first, second = default_name(now=0), default_name(now=0)
    assert first.startswith("sfncopy-19700101-000000-") and first != second
    assert check_name(first) == first


@pytest.mark.parametrize(("process", "env_file", "expected"), [
    # the env file points everything at the emulator; a service-specific variable moves one service elsewhere
    ({"AWS_ENDPOINT_URL_SFN": "http://sfn-local:8083"}, {"AWS_ENDPOINT_URL": "http://emu:4566"},
     {"SFN": "http://sfn-local:8083", "S3": "http://emu:4566", "CLOUDFORMATION": "http://emu:4566"}),
    ({}, {"AWS_ENDPOINT_URL": "http://emu:4566", "AWS_ENDPOINT_URL_S3": "http://s3:9000"},
     {"SFN": "http://emu:4566", "S3": "http://s3:9000", "CLOUDFORMATION": "http://emu:4566"}),
    ({}, {}, {"SFN": None, "S3": None, "CLOUDFORMATION": None}),  # real AWS: boto3 decides
])
def test_each_service_endpoint_is_chosen_as_the_sdks_do(monkeypatch, process, env_file, expected):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDFORMATION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in process.items():
        monkeypatch.setenv(name, value)
    assert {service: execution.service_endpoint(service, env_file) for service in expected} == expected


def test_clients_follow_a_service_specific_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", "http://127.0.0.1:8083")
    clients = execution.AwsClients.create("eu-west-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
                                                        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert clients.sfn.meta.endpoint_url == "http://127.0.0.1:8083"
    assert clients.cfn.meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.s3.client.meta.endpoint_url == "http://127.0.0.1:4566"


MAP_RUN = "arn:aws:states:eu-west-1:123456789012:mapRun:sfncopy/Worker{}:uuid-{}"


def _map_run(worker: int, status: str, **items: int) -> dict[str, Any]:
    counts = {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "timedOut": 0, "aborted": 0, "total": 0,
              "resultsWritten": 0, **items}
    return {"mapRunArn": MAP_RUN.format(worker, worker), "executionArn": ARN, "status": status,
            "startDate": dt.datetime(2025, 1, 1), "maxConcurrency": 1, "toleratedFailurePercentage": 100.0,
            "toleratedFailureCount": 0, "itemCounts": counts, "executionCounts": counts}


def test_payloads_are_counted_from_the_workers_map_runs_and_finished_runs_are_read_once():
    # GIVEN an execution with two workers' Map Runs: one finished (3 payloads, 1 failed), one running
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    runs = {"mapRuns": [{"executionArn": ARN, "mapRunArn": MAP_RUN.format(w, w), "stateMachineArn": ARN,
                         "startDate": dt.datetime(2025, 1, 1)} for w in (0, 1)]}
    clock = [0.0]
    map_runs = execution.MapRuns(sfn, ARN, interval=10.0, clock=lambda: clock[0])
    with Stubber(sfn) as stub:
        stub.add_response("list_map_runs", runs)
        stub.add_response("describe_map_run", _map_run(0, "SUCCEEDED", total=3, succeeded=2, failed=1))
        stub.add_response("describe_map_run", _map_run(1, "RUNNING", total=4, succeeded=1, running=1))
        # WHEN polled  THEN the payloads of both are summed
        assert map_runs.counts() == progress.PayloadCounts(total=7, succeeded=3, failed=1, running=1)
        # AND within the interval nothing is asked again
        clock[0] = 5.0
        assert map_runs.counts() == progress.PayloadCounts(total=7, succeeded=3, failed=1, running=1)
        # AND after it only the running Map Run is described again
        clock[0] = 10.0
        stub.add_response("list_map_runs", runs)
        stub.add_response("describe_map_run", _map_run(1, "SUCCEEDED", total=4, succeeded=3, timedOut=1))
        assert map_runs.counts() == progress.PayloadCounts(total=7, succeeded=5, failed=2, running=0)
        stub.assert_no_pending_responses()


def test_only_the_workers_map_runs_count_payloads():
    # GIVEN an execution whose Map Runs are a worker's, the finalize shards' and the planning shards'
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    arns = [MAP_RUN.format(3, 3), "arn:aws:states:eu-west-1:123456789012:mapRun:sfncopy/FinalizeShards:uuid-9",
            "arn:aws:states:eu-west-1:123456789012:mapRun:sfncopy/PlanShards:uuid-8"]
    runs = {"mapRuns": [{"executionArn": ARN, "mapRunArn": arn, "stateMachineArn": ARN,
                         "startDate": dt.datetime(2025, 1, 1)} for arn in arns]}
    with Stubber(sfn) as stub:
        stub.add_response("list_map_runs", runs)
        stub.add_response("describe_map_run", _map_run(3, "SUCCEEDED", total=2, succeeded=2))
        # WHEN polled  THEN only the worker's Map Run was described and counted
        assert execution.MapRuns(sfn, ARN).counts() == progress.PayloadCounts(total=2, succeeded=2)
        stub.assert_no_pending_responses()
    assert [progress.is_worker_map_run(arn) for arn in arns] == [True, False, False]


def test_payload_counts_are_unknown_when_step_functions_will_not_tell():
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    with Stubber(sfn) as stub:
        stub.add_client_error("list_map_runs", "AccessDeniedException", http_status_code=400)
        assert execution.MapRuns(sfn, ARN).counts() is None
