"""The state machine, as Python data (Amazon States Language).

    Plan -> DryRun? --yes--------------------------------> StartFinalize -> Finalize -> FinalizeDone? --> Finalized
                    --no--> Copy (Parallel, N branches) -> StartFinalize  (done: false -> FinalizeMore -> FinalizeDone?)
    (StartFinalize adds the finalizer's first cursor to the plan pointer; Finalized ends with the RunSummary)
    branch i: Worker<i>, a Distributed Map over worker i's payload ids (read from S3, MaxConcurrency
              worker_concurrency at a time), one child execution per payload:
              CopyPayload<i> -> PayloadDone<i>? --no--> CopyPayload<i>   (--yes--> PayloadCopied<i>)
              CopyPayload<i> fails for good -> RecordFailure<i> (the worker writes the error into the
              payload's checkpoint head) -> PayloadFailed<i> (the child fails with the original error)
    Plan / Finalize / FinalizeMore fail -> Cleanup -> Failed (Error and Cause from the cleanup's answer)

With sharded planning (env planning=sharded, lambdas/sharding/), Plan is replaced by:

    PreparePlan -> PlanShards -> NextShardGeneration -> CollectHandOns -> MoreShards? --yes--> PlanShards
                                                                                      --no---> AssemblePlan -> DryRun?
    PlanShards: a Distributed Map over plan/sharding/shards.json (or a generation's hand-ons), one child per shard:
              PlanShard -> ShardDone? --no--> PlanShard   (--yes--> ShardPlanned)
    AssemblePlan answers a PlanPointer at $.plan, as Plan does; every stage after it is the same.
    PreparePlan / PlanShards / CollectHandOns / AssemblePlan fail -> Cleanup -> Failed
    Copy fails -> DrainWorkers (a Wait as long as the worker's timeout) -> Cleanup -> Failed

Each payload runs as a child execution with a history of its own, so the run's execution records a fixed
number of events per worker whatever the payload count (Step Functions developer guide, "Using Map state in
Distributed mode": "Each child workflow execution has its own execution history, which is separate from that
of the parent workflow"). A failed child does not fail its Map (ToleratedFailurePercentage 100): the
finalizer reports the payload's unfinished tasks as failed, with the error RecordFailure<i> wrote, and decides
whether the run failed. The error is recorded by the child itself because reading the children's histories
afterwards would need ListMapRuns/ListExecutions rights and a call per failed child.

State names are unique in the whole machine, Parallel branches and Map processors included: the Amazon
States Language says so ("State names must be unique within the scope of the whole state machine"), and
CloudFormation fails with DUPLICATE_STATE_NAME otherwise. So every state of branch i carries the suffix i.

States carry pointers only (run id, manifest location, each worker's list of payload ids in S3): plans and
results live in S3. Task resources are placeholders (``${PlannerFunction.Arn}``) that the template's
``Fn::Sub`` resolves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambdas import errors, limits
from lambdas.sharding.shard import MAX_GENERATION as MAX_SHARD_GENERATION

State = dict[str, Any]

# Errors Lambda's service raises around an invocation (not our code's): always worth retrying.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
)
# A timed-out or crashed invocation (the runtime process died: out of memory, killed): the worker resumes
# from its checkpoint, the other functions are idempotent.
TIMEOUT_ERRORS = ("Sandbox.Timedout", "States.Timeout", "Runtime.ExitError")
CATCH_ALL = "States.ALL"
CLEANUP = "Cleanup"
DRAIN_WORKERS = "DrainWorkers"
START_FINALIZE = "StartFinalize"
FINALIZE_DONE = "FinalizeDone"
# lambdas/finalizer_state.py, FIRST: the cursor of a finalization's first invocation, by a caller that loops.
FIRST_FINALIZE_CURSOR = {"step": 0, "phase": "payloads", "position": 0}
FINALIZE_MORE = "FinalizeMore"
FINALIZED = "Finalized"
# When a Parallel state fails, Step Functions stops its other branches but not the Lambda invocations they
# already started (Step Functions developer guide, "Parallel workflow state", Error handling: "When a
# parallel state fails, invoked Lambda functions continue to run"). Those invocations may open multipart
# uploads until their function's timeout ends them (Lambda developer guide, "Configure Lambda function
# timeout"), so Cleanup waits that long, plus this margin for a request already in flight when the
# sandbox stops (unverified: Lambda documents no figure).
DRAIN_MARGIN_SECONDS = 10
TOLERATED_FAILURE_PERCENTAGE = 100.0
SHARD_TOLERATED_FAILURE_PERCENTAGE = 0.0  # every shard must plan
ITEM_READER_FAILED = "States.ItemReaderFailed"


@dataclass(frozen=True)
class RetryTiming:
    """Backoff of every Task's Retry: waits of interval x rate^n seconds, each cut to a random share (FULL
    jitter) and capped at ``max_delay_seconds``. Tests use a short interval; production keeps the default."""

    interval_seconds: int = 2
    max_attempts: int = limits.TASK_RETRY_ATTEMPTS
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60


PRODUCTION_RETRY = RetryTiming()


@dataclass(frozen=True)
class Functions:
    """The Task resources: function ARNs, or ``${Logical.Arn}`` placeholders for the template's Fn::Sub."""

    planner: str
    worker: str
    finalizer: str
    cleanup: str
    # Sharded planning's functions (lambdas/handlers.py prepare, plan_shard, collect, assemble): used only by a
    # definition built with ShardedPlanning.
    prepare: str = ""
    shard: str = ""
    collect: str = ""
    assemble: str = ""


@dataclass(frozen=True)
class ShardedPlanning:
    """The Plan stage as shards (env planning=sharded): ``shards`` wanted (None: the partition estimates),
    ``concurrency`` planned at once."""

    shards: int | None
    concurrency: int


def placeholders() -> Functions:
    """References to the template's function resources, resolved by ``Fn::Sub``."""
    return Functions(
        planner="${PlannerFunction.Arn}",
        worker="${WorkerFunction.Arn}",
        finalizer="${FinalizerFunction.Arn}",
        cleanup="${CleanupFunction.Arn}",
        prepare="${PlanPrepareFunction.Arn}",
        shard="${PlanShardFunction.Arn}",
        collect="${PlanCollectFunction.Arn}",
        assemble="${PlanAssembleFunction.Arn}",
    )


def retry_error_names() -> tuple[str, ...]:
    return LAMBDA_SERVICE_ERRORS + TIMEOUT_ERRORS + errors.RETRYABLE_ERROR_NAMES


def _retry(timing: RetryTiming) -> list[State]:
    return [{
        "ErrorEquals": list(retry_error_names()),
        "IntervalSeconds": timing.interval_seconds,
        "MaxAttempts": timing.max_attempts,
        "BackoffRate": timing.backoff_rate,
        "MaxDelaySeconds": timing.max_delay_seconds,
        "JitterStrategy": "FULL",
    }]


def _catch(next_state: str = CLEANUP) -> list[State]:
    return [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.error", "Next": next_state}]


def _task(resource: str, timing: RetryTiming, **fields: Any) -> State:
    return {"Type": "Task", "Resource": resource, "Retry": _retry(timing), **fields}


def _worker_field(worker: int) -> str:
    return f"worker{worker}"


def branch_input(workers: int) -> State:
    """The Parallel's Parameters: what every branch needs, with worker i's entry of the plan as ``worker<i>``.

    Why not ``ItemsPath: $.plan.workers[i].payloads`` directly: moto's JSONPath wraps any value reached through
    an array index in a list (moto issue 7825's fix), so the Map would see one item ``[[0, 3]]``.
    ``States.ArrayGetItem`` picks the entry on AWS and on moto alike, without extra states or history events.
    """
    fields: State = {"run_id.$": "$.plan.run_id", "manifest.$": "$.plan.manifest"}
    for worker in range(workers):
        fields[f"{_worker_field(worker)}.$"] = f"States.ArrayGetItem($.plan.workers, {worker})"
    return fields


def loop_state_names(worker: int) -> tuple[str, str, str]:
    """The names of worker ``worker``'s payload loop: (copy task, done choice, succeed)."""
    return f"CopyPayload{worker}", f"PayloadDone{worker}", f"PayloadCopied{worker}"


def failure_state_names(worker: int) -> tuple[str, str]:
    """The names of worker ``worker``'s failure path: (record-failure task, fail state)."""
    return f"RecordFailure{worker}", f"PayloadFailed{worker}"


def worker_map_name(worker: int) -> str:
    """The name (and Map Run label) of worker ``worker``'s Distributed Map."""
    return f"Worker{worker}"


def worker_branch(worker: int, resource: str, timing: RetryTiming, concurrency: int = 1) -> State:
    """Branch ``worker`` of the Parallel: a Distributed Map whose children copy the worker's payloads,
    ``concurrency`` at a time (1: one after another, in plan order), each child re-invoking the worker on
    its payload until it answers done."""
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency} must be at least 1")
    copy_payload, payload_done, payload_copied = loop_state_names(worker)
    record_failure, payload_failed = failure_state_names(worker)
    name = worker_map_name(worker)
    return {
        "StartAt": name,
        "States": {
            name: {
                "Type": "Map",
                # The items: the JSON array of the worker's payload ids the planner wrote (its pointer names the
                # key), read by Step Functions itself (developer guide, "ItemReader (Map)": Resource
                # arn:aws:states:::s3:getObject, ReaderConfig.InputType JSON), so no list rides in the state.
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": f"$.{_worker_field(worker)}.items"},
                },
                "ItemSelector": {
                    "run_id.$": "$.run_id",
                    "manifest.$": "$.manifest",
                    "worker": worker,
                    "payload.$": "$$.Map.Item.Value",
                },
                "MaxConcurrency": concurrency,
                # A failed child (a payload whose worker failed for good) must not fail the run: the finalizer
                # counts its unfinished tasks as failed and applies options.max_failed_objects. A float: the
                # ASL allows any number from 0 to 100 (developer guide, "Map state in Distributed mode",
                # ToleratedFailurePercentage; DescribeMapRun answers it as a Float), and moto 5.2.5's parser
                # refuses the integer 100 (its grammar wants a NUMBER token there and lexes 100 as an INT).
                "ToleratedFailurePercentage": TOLERATED_FAILURE_PERCENTAGE,
                "Label": name,  # in the Map Run's and the children's ARNs: ".../<machine>/Worker3:<id>"
                # A list that cannot be read (States.ItemReaderFailed: developer guide, "Error handling", error
                # names) is read again: S3 may answer a GetObject with a transient error (503 SlowDown), and no
                # child has started then. A missing list fails the Copy after these attempts.
                "Retry": [{**_retry(timing)[0], "ErrorEquals": [ITEM_READER_FAILED]}],
                "ItemProcessor": {
                    # STANDARD children: EXPRESS ones stop at 5 minutes (developer guide, "Standard and Express
                    # workflow types"), shorter than one worker invocation may run.
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": copy_payload,
                    "States": {
                        # Input and output are a PayloadTask: the worker's answer is its next input. An error
                        # left after the Retry (a fatal one, or retries exhausted) goes to RecordFailure, with the
                        # Step Functions error object at $.error beside the PayloadTask.
                        copy_payload: _task(resource, timing, Next=payload_done,
                                            Catch=_catch(record_failure)),
                        payload_done: {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": payload_copied}],
                            "Default": copy_payload,
                        },
                        # The child's output is {} (ASL: a null OutputPath yields an empty object): the Map
                        # returns one result per child to the parent, which must fit 256 KiB (limits.py,
                        # MAX_PAYLOADS_PER_WORKER).
                        payload_copied: {"Type": "Succeed", "OutputPath": None},
                        # The worker in record-failure mode (lambdas/handlers.py, copy: an event with "error")
                        # writes "<Error>: <readable cause>" into the payload's checkpoint head; its answer is
                        # dropped. If that fails, the child still fails with the copy's error, and the finalizer
                        # reports the tasks as NotRun, as before the recorder. No Retry: this state is repeated
                        # per worker in a definition limited to 1 MB, and a Retry (~250 bytes even with a short
                        # error list) would put 500 workers over it (tests/unit/test_generator_state_machine.py).
                        record_failure: {"Type": "Task", "Resource": resource, "ResultPath": None,
                                         "Next": payload_failed,
                                         "Catch": [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.record_error",
                                                    "Next": payload_failed}]},
                        # The child fails with the copy's own error, so the Map Run counts it as failed.
                        payload_failed: {"Type": "Fail", "ErrorPath": "$.error.Error",
                                         "CausePath": "$.error.Cause"},
                    },
                },
                # No ResultWriter and no result kept: the children's outputs are {} and the checkpoints in S3 hold
                # what they did, so exporting them (and granting s3:PutObject for it) would add nothing.
                "ResultPath": None,
                "End": True,
            },
        },
    }


# Sharded planning's states (names unique in the whole machine, as every state's).
PREPARE_PLAN = "PreparePlan"
PLAN_SHARDS = "PlanShards"
PLAN_SHARD = "PlanShard"
SHARD_DONE = "ShardDone"
SHARD_PLANNED = "ShardPlanned"
NEXT_SHARD_GENERATION = "NextShardGeneration"
COLLECT_HAND_ONS = "CollectHandOns"
MORE_SHARDS = "MoreShards"
ASSEMBLE_PLAN = "AssemblePlan"
SHARDING_STATES = (PREPARE_PLAN, PLAN_SHARDS, PLAN_SHARD, SHARD_DONE, SHARD_PLANNED, NEXT_SHARD_GENERATION,
                   COLLECT_HAND_ONS, MORE_SHARDS, ASSEMBLE_PLAN)


def sharded_plan_states(workers: int, functions: Functions, timing: RetryTiming, sharded: ShardedPlanning,
                        next_state: str) -> dict[str, State]:
    """The states that plan in shards and leave a PlanPointer at ``$.plan``, then go to ``next_state``.

    ``$.sharding`` holds the answer of PreparePlan or CollectHandOns (lambdas/sharding/prepare.py, Prepared,
    with ``generation``): where the current generation's shard items are and how many. A shard that runs
    long hands the rest of its range on (lambdas/sharding/shard.py); CollectHandOns numbers those ranges as
    the next generation's shards, at most shard.MAX_GENERATION generations after the first (shards of the
    last generation do not hand on, so the loop ends; MoreShards checks the bound as well)."""
    if sharded.concurrency < 1:
        raise ValueError(f"concurrency={sharded.concurrency} must be at least 1")
    if not all((functions.prepare, functions.shard, functions.collect, functions.assemble)):
        raise ValueError("sharded planning needs the prepare, shard, collect and assemble functions")
    prepare_parameters: State = {"run_id.$": "$$.Execution.Name", "workers": workers, "input.$": "$"}
    if sharded.shards is not None:
        prepare_parameters["shards"] = sharded.shards
    pointers = {"run_id.$": "$.sharding.run_id", "manifest.$": "$.sharding.manifest"}
    return {
        PREPARE_PLAN: _task(functions.prepare, timing, Parameters=prepare_parameters, ResultPath="$.sharding",
                            Next=PLAN_SHARDS, Catch=_catch()),
        PLAN_SHARDS: {
            "Type": "Map",
            # The shards' items as prepare (or collect) wrote them, read by Step Functions (developer guide,
            # "ItemReader (Map)"), so no list of shards rides in the state.
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": "$.sharding.manifest.bucket", "Key.$": "$.sharding.items"},
            },
            "ItemSelector": {**pointers, "shard.$": "$$.Map.Item.Value"},
            "MaxConcurrency": sharded.concurrency,
            # 0: the Map Run fails when any child fails (developer guide, "Setting failure thresholds for
            # Distributed Map states"; written out rather than left to the default, which the stored pages do not
            # state: unverified): a shard that could not plan (or met KeySpaceChangedError, never retried) fails
            # the run rather than leave out its key range. The assembler checks again that every shard's summary
            # is done (moto does not enforce the threshold). A float, as the workers' (moto lexes 0 as an INT).
            "ToleratedFailurePercentage": SHARD_TOLERATED_FAILURE_PERCENTAGE,
            "Label": PLAN_SHARDS,
            "Retry": [{**_retry(timing)[0], "ErrorEquals": [ITEM_READER_FAILED]}],
            "ItemProcessor": {
                # STANDARD children: a shard invocation may run up to Lambda's 15 minutes, longer than an EXPRESS
                # child may (developer guide, "Standard and Express workflow types": 5 minutes).
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": PLAN_SHARD,
                "States": {
                    # Input and output are a ShardJob / ShardAnswer: the answer is the next input.
                    PLAN_SHARD: _task(functions.shard, timing, Next=SHARD_DONE),
                    SHARD_DONE: {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": SHARD_PLANNED}],
                        "Default": PLAN_SHARD,
                    },
                    SHARD_PLANNED: {"Type": "Succeed", "OutputPath": None},  # {}: the shard's summary is in S3
                },
            },
            "ResultPath": None,
            "Next": NEXT_SHARD_GENERATION,
            "Catch": _catch(),
        },
        NEXT_SHARD_GENERATION: {
            "Type": "Pass",
            "Parameters": {"generation.$": "States.MathAdd($.sharding.generation, 1)"},
            "ResultPath": "$.next",
            "Next": COLLECT_HAND_ONS,
        },
        COLLECT_HAND_ONS: _task(functions.collect, timing,
                                Parameters={**pointers, "generation.$": "$.next.generation"},
                                ResultPath="$.sharding", Next=MORE_SHARDS, Catch=_catch()),
        MORE_SHARDS: {
            "Type": "Choice",
            # Rules are tried in order (developer guide, "Choice workflow state"): the generation bound first.
            "Choices": [
                {"Variable": "$.sharding.generation", "NumericGreaterThan": MAX_SHARD_GENERATION,
                 "Next": ASSEMBLE_PLAN},
                {"Variable": "$.sharding.shards", "NumericGreaterThan": 0, "Next": PLAN_SHARDS},
            ],
            "Default": ASSEMBLE_PLAN,
        },
        ASSEMBLE_PLAN: _task(functions.assemble, timing, Parameters=pointers, ResultPath="$.plan",
                             Next=next_state, Catch=_catch()),
    }


def drain_seconds(worker_timeout_seconds: int) -> int:
    """How long a failed Copy waits before Cleanup: until every worker invocation has surely ended."""
    return worker_timeout_seconds + DRAIN_MARGIN_SECONDS


def build_definition(workers: int, functions: Functions, timing: RetryTiming = PRODUCTION_RETRY,
                     drain: int = drain_seconds(limits.MAX_LAMBDA_TIMEOUT_SECONDS), concurrency: int = 1,
                     sharded: ShardedPlanning | None = None) -> State:
    """The whole state machine for ``workers`` parallel workers, each running ``concurrency`` payloads at once;
    a failed Copy waits ``drain`` seconds (``drain_seconds`` of the worker's timeout) before Cleanup. Planning
    is one Plan task, or, with ``sharded``, the sharded planning states (``sharded_plan_states``)."""
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    if drain < 0:
        raise ValueError(f"drain={drain} must not be negative")
    planning: dict[str, State] = {
        "Plan": _task(functions.planner, timing,
                      # The branch count rides in the event: the plan always has one list per branch.
                      Parameters={"run_id.$": "$$.Execution.Name", "workers": workers, "input.$": "$"},
                      ResultPath="$.plan", Next="DryRun", Catch=_catch()),
    } if sharded is None else sharded_plan_states(workers, functions, timing, sharded, "DryRun")
    return {
        "Comment": "sfncopy: plan, copy with parallel workers, finalize; clean up on failure",
        "StartAt": "Plan" if sharded is None else PREPARE_PLAN,
        "States": {
            **planning,
            "DryRun": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.plan.dry_run", "BooleanEquals": True, "Next": START_FINALIZE}],
                "Default": "Copy",
            },
            "Copy": {
                "Type": "Parallel",
                "Parameters": branch_input(workers),
                "Branches": [worker_branch(i, functions.worker, timing, concurrency) for i in range(workers)],
                "ResultPath": None,
                "Next": START_FINALIZE,
                "Catch": _catch(DRAIN_WORKERS),
            },
            # Copy fails when a Map Run does (its item list cannot be read, States.ItemReaderFailed; a result over
            # the state limit), not when a child does (ToleratedFailurePercentage 100). Step Functions then stops
            # the other Map Runs' children, but not the worker invocations they started: those may open uploads
            # until they time out (unverified that stopping a child differs from a failed Parallel here).
            DRAIN_WORKERS: {"Type": "Wait", "Seconds": drain,
                            "Next": CLEANUP},
            # The finalizer answers the RunSummary, or (a run too large for one invocation) its own event with
            # done false and a cursor, to be called again with (lambdas/handlers.py, finalize). The first event
            # carries the first cursor: it tells the finalizer that it will be called again.
            START_FINALIZE: {"Type": "Pass", "Result": FIRST_FINALIZE_CURSOR, "ResultPath": "$.plan.cursor",
                             "Next": "Finalize"},
            "Finalize": _task(functions.finalizer, timing, InputPath="$.plan", Next=FINALIZE_DONE, Catch=_catch()),
            FINALIZE_DONE: {
                "Type": "Choice",
                # Only a continuation carries a cursor; the RunSummary has none. One IsPresent test, never a
                # comparison on a path that may be missing (a runtime error on AWS: Step Functions developer
                # guide, "Choice workflow state", "IsPresent"; whether And stops at its first false rule is
                # unverified, so it is not relied on).
                "Choices": [{"Variable": "$.cursor", "IsPresent": True, "Next": FINALIZE_MORE}],
                "Default": FINALIZED,
            },
            FINALIZE_MORE: _task(functions.finalizer, timing, Next=FINALIZE_DONE, Catch=_catch()),
            FINALIZED: {"Type": "Succeed"},  # the execution's output: the RunSummary
            CLEANUP: _task(functions.cleanup, timing,
                             Parameters={"run_id.$": "$$.Execution.Name", "error.$": "$.error"},
                             ResultPath="$.cleanup", Next="Failed"),
            "Failed": {"Type": "Fail", "ErrorPath": "$.cleanup.error", "CausePath": "$.cleanup.cause"},
        },
    }


def to_json(definition: State) -> str:
    """Deterministic, compact serialisation (the definition counts against the 1 MB limit)."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def error_names(definition: State) -> set[str]:
    """Every error name any Retry or Catch of ``definition`` matches (for the contract test)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("Retry", "Catch"):
                for rule in node.get(key, ()):
                    names.update(rule["ErrorEquals"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return names


# --- notifications (env notification_topic) ---------------------------------------------------------------------
SUMMARIZE_SUCCEEDED = "SummarizeSucceeded"
NOTIFY_SUCCEEDED = "NotifySucceeded"
SUMMARIZE_FAILED = "SummarizeFailed"
NOTIFY_FAILED = "NotifyFailed"
FAILED = "Failed"
NOTIFICATION_STATES = (SUMMARIZE_SUCCEEDED, NOTIFY_SUCCEEDED, SUMMARIZE_FAILED, NOTIFY_FAILED)
# Step Functions' optimized SNS integration, request-response (developer guide, "Publish messages to an Amazon SNS
# topic with Step Functions"): it publishes with the state machine's role, which needs sns:Publish on the topic.
SNS_PUBLISH = "arn:aws:states:::sns:publish"
NOTIFY_RETRY_ATTEMPTS = 2


def notification_summaries() -> tuple[State, State]:
    """The summaries published on success (built from the finalizer's RunSummary) and on failure (from the
    Cleanup's answer): status, counts, bytes, report or failure report, the cause, and when the run started and
    ended. They stay a few KB: every value is a count, a time, a URI, or the cause, which the cleanup cuts to
    limits.MAX_NOTIFIED_CAUSE_CHARACTERS (the whole cause is in failure.json and the execution's own failure), far
    under SNS's 256 KB (limits.MAX_SNS_MESSAGE_BYTES).
    Amazon States Language has no date arithmetic, so the duration is given as the two times ("started" is
    the execution's start, "ended" when the summary was made)."""
    times = {"execution.$": "$$.Execution.Id", "started.$": "$$.Execution.StartTime",
             "ended.$": "$$.State.EnteredTime"}
    succeeded: State = {
        "status.$": "$.status", "run_id.$": "$.run_id", "copied.$": "$.copied", "skipped.$": "$.skipped",
        "failed.$": "$.failed", "bytes.$": "$.bytes", "report.$": "$.report_json", "report_csv.$": "$.report_csv",
        **times,
    }
    failed: State = {
        "status": "failed", "run_id.$": "$.cleanup.run_id", "error.$": "$.cleanup.error",
        "cause.$": "$.cleanup.notified_cause", "failure_report.$": "$.cleanup.failure_report",
        # Counts and bytes copied before the failure (null when the run failed before it had a plan).
        "partial.$": "$.cleanup.partial", **times,
    }
    return succeeded, failed


def notify_states(topic: str, stack_name: str, succeeded_next: str, failed_next: str) -> dict[str, State]:
    """Summarize<Outcome> (a Pass building the summary at ``$.notification``) -> Notify<Outcome> (publish it to
    ``topic``) -> ``succeeded_next`` / ``failed_next``.

    A notification that cannot be published does not change the run's outcome: a copy that succeeded stays
    succeeded, and a failed run still fails with its own error. Notify<Outcome> retries twice, then its Catch
    records the publish error at ``$.notification_error`` (in the execution's history and output) and goes on:
    the copy is done and verified, and failing it for a lost e-mail would make a user re-run a good copy."""
    succeeded, failed = notification_summaries()

    def publish(next_state: str) -> State:
        return {
            "Type": "Task",
            "Resource": SNS_PUBLISH,
            "Parameters": {
                "TopicArn": topic,
                # SNS subjects are at most 100 ASCII characters (Amazon SNS API reference, Publish, Subject); a
                # stack name has at most 54 (generator/settings.py).
                "Subject.$": f"States.Format('sfncopy {stack_name}: run {{}}', $.notification.status)",
                "Message.$": "States.JsonToString($.notification)",
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": [CATCH_ALL], "IntervalSeconds": 1, "MaxAttempts": NOTIFY_RETRY_ATTEMPTS,
                       "BackoffRate": 2.0}],
            "Catch": [{"ErrorEquals": [CATCH_ALL], "ResultPath": "$.notification_error", "Next": next_state}],
            "Next": next_state,
        }

    return {
        SUMMARIZE_SUCCEEDED: {"Type": "Pass", "Parameters": succeeded, "ResultPath": "$.notification",
                              "Next": NOTIFY_SUCCEEDED},
        NOTIFY_SUCCEEDED: publish(succeeded_next),
        SUMMARIZE_FAILED: {"Type": "Pass", "Parameters": failed, "ResultPath": "$.notification",
                           "Next": NOTIFY_FAILED},
        NOTIFY_FAILED: publish(failed_next),
    }


def with_notifications(definition: State, topic: str, stack_name: str) -> State:
    """``definition`` with a notification before each end of a run: every transition into FINALIZED (the run
    succeeded) goes through SummarizeSucceeded/NotifySucceeded first, every transition into FAILED (after
    Cleanup wrote failure.json) through SummarizeFailed/NotifyFailed. Only the top-level states are rewired
    (the two ends are top-level); ``definition`` is not changed."""
    states: dict[str, State] = json.loads(json.dumps(definition["States"]))
    if FINALIZED not in states or FAILED not in states:
        raise ValueError(f"a definition to notify from needs the {FINALIZED} and {FAILED} states")
    redirect = {FINALIZED: SUMMARIZE_SUCCEEDED, FAILED: SUMMARIZE_FAILED}

    def rewire(rule: State) -> None:
        for key in ("Next", "Default"):
            if rule.get(key) in redirect:
                rule[key] = redirect[rule[key]]

    for state in states.values():
        rewire(state)
        for rule in (*state.get("Choices", ()), *state.get("Catch", ())):
            rewire(rule)
    clashes = set(states) & set(NOTIFICATION_STATES)
    if clashes:
        raise ValueError(f"state names already taken: {sorted(clashes)}")
    states.update(notify_states(topic, stack_name, FINALIZED, FAILED))
    return {**definition, "States": states}
