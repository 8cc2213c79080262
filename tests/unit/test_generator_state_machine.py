"""The state machine as data: shape, limits and the Retry/Catch contract, checked by value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.settings import MAX_WORKER_CONCURRENCY, MAX_WORKERS
from generator.state_machine import (
    CATCH_ALL,
    DRAIN_MARGIN_SECONDS,
    Functions,
    RetryTiming,
    build_definition,
    drain_seconds,
    placeholders,
    to_json,
)
from lambdas import errors, limits

FNS = Functions(planner="P", worker="W", finalizer="F", cleanup="C")


def tasks(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Type") == "Task":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return found


def test_flow_plan_dry_run_copy_finalize_cleanup_fail() -> None:
    states = build_definition(3, FNS)["States"]
    assert states["Plan"]["Next"] == "DryRun"
    assert states["Plan"]["ResultPath"] == "$.plan"
    assert states["Plan"]["Parameters"] == {"run_id.$": "$$.Execution.Name", "workers": 3, "input.$": "$"}
    assert states["DryRun"]["Choices"] == [{"Variable": "$.plan.dry_run", "BooleanEquals": True,
                                            "Next": "StartFinalize"}]
    assert states["DryRun"]["Default"] == "Copy"
    assert states["Copy"]["Next"] == "StartFinalize"
    # StartFinalize asks the finalizer to cut the run into finalize shards; FinalizeShards finalizes each in a
    # child execution (the finalizer called with the plan pointer, the shard and its first cursor, then with
    # its own answer until done); Finalize merges them, starting from the first cursor
    first = {"step": 0, "phase": "payloads", "position": 0}
    assert states["StartFinalize"]["Parameters"] == {"mode": "shards", "pointer.$": "$.plan", "shard_rows": 200_000}
    assert states["StartFinalize"]["ResultPath"] == "$.finalize"
    assert states["StartFinalize"]["Next"] == "FinalizeShards"
    shards = states["FinalizeShards"]
    assert shards["ItemReader"]["Parameters"] == {"Bucket.$": "$.plan.manifest.bucket", "Key.$": "$.finalize.items"}
    assert shards["ItemSelector"] == {"mode": "shard", "pointer.$": "$.plan", "shard.$": "$$.Map.Item.Value",
                                      "cursor": first}
    assert (shards["MaxConcurrency"], shards["ToleratedFailurePercentage"], shards["Label"]) == (
        100, 0.0, "FinalizeShards")
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    child = shards["ItemProcessor"]["States"]
    assert child["FinalizeShard"]["Next"] == "FinalizeShardDone" and child["FinalizeShard"]["Resource"] == "F"
    assert child["FinalizeShardDone"] == {"Type": "Choice", "Default": "FinalizeShard", "Choices": [
        {"Variable": "$.done", "BooleanEquals": True, "Next": "ShardFinalized"}]}
    assert child["ShardFinalized"] == {"Type": "Succeed", "OutputPath": None}
    assert (shards["ResultPath"], shards["Next"]) == (None, "Finalize")
    assert states["Copy"]["ResultPath"] is None
    assert states["Finalize"]["Parameters"] == {"mode": "merge", "pointer.$": "$.plan", "cursor": first}
    # the merge may answer done: false with a cursor; it is called again with its own answer until it
    # answers the RunSummary, which ends the execution
    assert states["Finalize"]["Next"] == states["FinalizeMore"]["Next"] == "FinalizeDone"
    assert "InputPath" not in states["FinalizeMore"] and states["FinalizeMore"]["Resource"] == "F"
    assert states["FinalizeDone"] == {"Type": "Choice", "Default": "Finalized", "Choices": [
        {"Variable": "$.cursor", "IsPresent": True, "Next": "FinalizeMore"}]}
    assert states["Finalized"] == {"Type": "Succeed"}
    assert states["Cleanup"]["Parameters"] == {"run_id.$": "$$.Execution.Name", "error.$": "$.error"}
    assert states["Cleanup"]["ResultPath"] == "$.cleanup"
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.cleanup.error", "CausePath": "$.cleanup.cause"}
    for name in ("Plan", "StartFinalize", "FinalizeShards", "Finalize", "FinalizeMore"):
        assert states[name]["Catch"] == [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.error", "Next": "Cleanup"}]
    assert "Catch" not in states["Cleanup"]


def test_each_branch_is_a_distributed_map_over_its_workers_payload_list_in_s3() -> None:
    copy = build_definition(3, FNS)["States"]["Copy"]
    assert len(copy["Branches"]) == 3
    assert copy["Parameters"]["worker2.$"] == "States.ArrayGetItem($.plan.workers, 2)"
    for index, branch in enumerate(copy["Branches"]):
        assert branch["StartAt"] == f"Worker{index}"
        worker_map = branch["States"][f"Worker{index}"]
        # the items: worker i's payload ids, a JSON array in the manifest bucket whose key the pointer names
        assert worker_map["Type"] == "Map"
        assert worker_map["ItemReader"] == {
            "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": f"$.worker{index}.items"}}
        assert "ItemsPath" not in worker_map and "ItemBatcher" not in worker_map
        # each child gets pointers only: the run, the manifest, its worker, its payload id and its file's key
        assert worker_map["ItemSelector"] == {"run_id.$": "$.run_id", "manifest.$": "$.manifest", "worker": index,
                                              "payload.$": "$$.Map.Item.Value.payload",
                                              "payload_key.$": "$$.Map.Item.Value.key"}
        # one payload at a time by default; a failed child does not fail the run (the finalizer decides)
        assert worker_map["MaxConcurrency"] == 1
        assert worker_map["ToleratedFailurePercentage"] == 100
        assert worker_map["Label"] == f"Worker{index}"
        # a list S3 would not hand over at once (a transient 503) is read again, with the tasks' backoff
        (retry,) = worker_map["Retry"]
        assert retry["ErrorEquals"] == ["States.ItemReaderFailed"] and retry["JitterStrategy"] == "FULL"
        # STANDARD children (EXPRESS ones stop at 5 minutes); nothing kept or exported of their outputs
        processor = worker_map["ItemProcessor"]
        assert processor["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert worker_map["ResultPath"] is None and "ResultWriter" not in worker_map
        assert worker_map["End"] is True
        # the child: the worker re-invoked with its own answer until done, then {} as the child's output
        loop = processor["States"]
        assert processor["StartAt"] == f"CopyPayload{index}"
        assert loop[f"CopyPayload{index}"]["Resource"] == "W"
        assert loop[f"CopyPayload{index}"]["Next"] == f"PayloadDone{index}"
        assert loop[f"PayloadDone{index}"]["Choices"][0]["Next"] == f"PayloadCopied{index}"
        assert loop[f"PayloadDone{index}"]["Default"] == f"CopyPayload{index}"  # done: false -> the worker again
        assert loop[f"PayloadCopied{index}"] == {"Type": "Succeed", "OutputPath": None}


def test_a_payload_that_fails_for_good_records_its_error_then_fails_its_child() -> None:
    for index, branch in enumerate(build_definition(3, FNS)["States"]["Copy"]["Branches"]):
        loop = branch["States"][f"Worker{index}"]["ItemProcessor"]["States"]
        # GIVEN a copy task's error left after its Retry: the error object goes beside the PayloadTask
        assert loop[f"CopyPayload{index}"]["Catch"] == [
            {"ErrorEquals": [CATCH_ALL], "ResultPath": "$.error", "Next": f"RecordFailure{index}"}]
        # THEN the worker is invoked with both (record-failure mode), its answer dropped, then the child fails
        record = loop[f"RecordFailure{index}"]
        assert (record["Type"], record["Resource"], record["ResultPath"], record["Next"]) == (
            "Task", "W", None, f"PayloadFailed{index}")
        assert "Parameters" not in record  # the event: the PayloadTask fields and "error"
        assert "Retry" not in record  # a Retry per worker would not fit 500 workers in 1 MB
        # AND a recorder that fails too still fails the child, keeping the copy's error at $.error
        assert record["Catch"] == [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.record_error",
                                    "Next": f"PayloadFailed{index}"}]
        # AND the child fails with the copy's own error, which its Map Run tolerates
        assert loop[f"PayloadFailed{index}"] == {"Type": "Fail", "ErrorPath": "$.error.Error",
                                                 "CausePath": "$.error.Cause"}


def test_each_worker_runs_as_many_payloads_at_once_as_asked() -> None:
    copy = build_definition(2, FNS, concurrency=8)["States"]["Copy"]
    assert [branch["States"][branch["StartAt"]]["MaxConcurrency"] for branch in copy["Branches"]] == [8, 8]
    with pytest.raises(ValueError, match="concurrency=0"):
        build_definition(2, FNS, concurrency=0)


def test_the_tolerance_is_written_as_a_json_number_moto_parses() -> None:
    # moto 5.2.5's ASL grammar refuses the integer 100 for ToleratedFailurePercentage; 100.0 is the same number
    assert '"ToleratedFailurePercentage":100.0' in to_json(build_definition(1, FNS))


def state_names(node: Any) -> list[str]:
    """Every state name of a definition, nested scopes included (duplicates kept)."""
    names: list[str] = []
    if isinstance(node, dict):
        for name, state in node.get("States", {}).items():
            names.append(name)
            for branch in state.get("Branches", ()):
                names.extend(state_names(branch))
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    names.extend(state_names(state[key]))
    return names


def test_state_names_are_unique_in_the_whole_machine() -> None:
    # Amazon States Language: state names are unique across the whole machine, branches and Map
    # processors included; CloudFormation fails with DUPLICATE_STATE_NAME otherwise.
    for workers in (1, 2, 5, 64):
        names = state_names(build_definition(workers, FNS))
        duplicates = sorted({n for n in names if names.count(n) > 1})
        assert not duplicates, f"{workers} workers: {duplicates}"
        assert len(names) == 15 + 6 * workers


def test_a_failed_copy_waits_for_running_workers_before_cleanup() -> None:
    # GIVEN a worker whose Lambda times out after 300 s
    states = build_definition(2, FNS, drain=drain_seconds(300))["States"]
    # THEN a failed Copy waits that long (plus a margin) before Cleanup; Plan and Finalize go straight there
    assert states["Copy"]["Catch"] == [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.error", "Next": "DrainWorkers"}]
    assert states["DrainWorkers"] == {"Type": "Wait", "Seconds": 300 + DRAIN_MARGIN_SECONDS, "Next": "Cleanup"}
    assert states["Plan"]["Catch"][0]["Next"] == states["Finalize"]["Catch"][0]["Next"] == "Cleanup"


def test_every_task_retries_service_errors_with_backoff_and_full_jitter() -> None:
    timing = RetryTiming(interval_seconds=3, max_attempts=4, backoff_rate=2.0, max_delay_seconds=30)
    definition = build_definition(2, FNS, timing)
    all_tasks = tasks(definition)
    assert {t["Resource"] for t in all_tasks} == {"P", "W", "F", "C"}
    # every task but the two record-failure ones (a failed recorder only loses the error's text in the report)
    retrying = [t for t in all_tasks if "Retry" in t]
    assert len(all_tasks) - len(retrying) == 2
    for task in retrying:
        (retry,) = task["Retry"]
        # the Lambda service errors AWS's Step Functions guide says to retry, and timed-out invocations
        assert {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                "Lambda.ClientExecutionTimeoutException", "Lambda.TooManyRequestsException",
                "Sandbox.Timedout"} <= set(retry["ErrorEquals"])
        assert set(errors.RETRYABLE_ERROR_NAMES) <= set(retry["ErrorEquals"])
        assert not set(errors.FATAL_ERROR_NAMES) & set(retry["ErrorEquals"])
        assert CATCH_ALL not in retry["ErrorEquals"]
        assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"], retry["MaxDelaySeconds"],
                retry["JitterStrategy"]) == (3, 4, 2.0, 30, "FULL")


def test_definition_fits_the_size_limit_with_100_and_500_workers() -> None:
    for workers in (100, MAX_WORKERS):
        size = len(to_json(build_definition(workers, placeholders(), concurrency=MAX_WORKER_CONCURRENCY)).encode())
        assert size < limits.MAX_DEFINITION_BYTES, f"{workers} workers: {size} bytes"


def test_serialisation_is_deterministic_and_has_no_stray_substitutions() -> None:
    text = to_json(build_definition(4, placeholders()))
    assert text == to_json(json.loads(text))
    # Fn::Sub must see only our four ${Logical.Arn} references
    references = {part.split("}", 1)[0] for part in text.split("${")[1:]}
    assert references == {"PlannerFunction.Arn", "WorkerFunction.Arn", "FinalizerFunction.Arn",
                          "CleanupFunction.Arn"}
