"""Where moto 5.2.5 falls short of AWS for sfncopy, and the small patches that bridge it.

All patches are process-wide (moto's backends are module globals), installed by ``Bridges.install()``
when the emulator starts and undone by ``Bridges.uninstall()`` when it stops.

0. Switch, not a gap: Step Functions executes state machines only with the user config
   ``stepfunctions.execute_state_machine`` on. Its API calls then go to the *parser* backend
   (``moto.stepfunctions.parser.models.stepfunctions_parser_backends``), a port of LocalStack's ASL
   interpreter.

1. CloudFormation-made state machines are not executable. ``AWS::StepFunctions::StateMachine`` resources
   are created through ``moto.stepfunctions.models.stepfunctions_backends`` (the plain backend), so
   ``StartExecution`` (parser backend) answers StateMachineDoesNotExist. The resource class looks that
   name up in its module at call time, so pointing the name at the parser backends makes CloudFormation
   create, update and delete state machines where executions find them. The parser backend subclasses
   the plain one with the same method signatures.

2. moto runs Lambda functions only in Docker (``LambdaFunction._invoke_lambda``). We replace that method
   with one that hands the invocation to ``LambdaRunner`` (local worker processes, see lambda_runner.py)
   and keeps moto's contract: it returns ``(payload_json, errored, logs)``; moto's ``invoke`` turns
   ``errored`` into the ``X-Amz-Function-Error`` header, which is how Step Functions tells a function
   error (Retry/Catch on ``errorType``) from a result. A Lambda *service* error (an injected
   ``Lambda.ServiceException``) is raised as moto's ``LambdaClientError``, so the Invoke call itself fails
   with that error code and HTTP status, as on AWS. The output goes to the function's CloudWatch log group.

3. Service-error names for Lambda Tasks that name the function ARN as ``Resource``. The interpreter
   names a failed Invoke ``Lambda.<Code>`` for the ``arn:aws:states:::lambda:invoke`` integration, but
   plain ``Exception`` when the Task's Resource is the function ARN; AWS uses ``Lambda.<Code>`` for both
   (``Lambda.ServiceException``, ``Lambda.TooManyRequestsException`` ... in a Retry). We give the
   ARN form the integration's naming, so the generated Retry lists behave as on AWS either way.

4. ``x-amz-copy-source-if-match`` is ignored on CopyObject and UploadPartCopy: enforced by the
   middleware (see preconditions.py), since only the request carries the header.

5. An execution started without a name is named "None" (so every unnamed run shares one execution ARN,
   and sfncopy's run id and manifest folder, and a second start with the same input returns the first
   execution). AWS names it with a UUID; so do we.

6. moto accepts state machine definitions AWS refuses: duplicate state names across Parallel branches and Map
   processors, transitions to missing states or out of a branch, unreachable states, states without Next or End,
   names over 80 characters, definitions over 1 MiB (the rules and their sources: definitions.py). We check every
   definition given to ``CreateStateMachine`` and ``UpdateStateMachine`` first and answer as AWS does:
   ``InvalidDefinition`` (HTTP 400), ``Invalid State Machine Definition: 'DUPLICATE_STATE_NAME: ...'`` (an
   oversized one: ``ValidationException``). The patch is on the parser backend's two methods, which both paths
   reach: the Step Functions API (execution on, see 0) and CloudFormation (the resource's
   ``create_from_cloudformation_json`` / ``update_from_cloudformation_json`` look up ``stepfunctions_backends``,
   pointed at the parser backends by 1).
   moto's own parser errors (it refuses some definitions too, e.g. an unknown state ``Type``) come with no error
   code at all; we give them ``InvalidDefinition`` too.

7. A CloudFormation resource that fails leaves a moto stack ``CREATE_IN_PROGRESS`` forever (or, on update, as it
   was) and fails the CreateStack / UpdateStack call itself with the resource's error (a JSON error body in an XML
   API, which botocore cannot even parse). On AWS the call succeeds and the stack fails: the resource's event is
   ``CREATE_FAILED`` / ``UPDATE_FAILED`` with ``Resource handler returned message: "..."``, and the stack rolls
   back (``ROLLBACK_COMPLETE``, "The following resource(s) failed to create: [Machine]. Rollback requested by
   user."; on update ``UPDATE_ROLLBACK_COMPLETE``), or, with ``DisableRollback`` (``OnFailure=DO_NOTHING``), stops
   at ``CREATE_FAILED`` / ``UPDATE_FAILED``. We do that: the resource and stack events, the status and its reason
   (``StackStatusReason``), and the rollback (the resources made so far are deleted; an update re-applies the
   previous template). A failed create keeps no outputs or exports, and lists only the resources it made.
   Differences that remain: it all happens before the call returns (AWS is asynchronous); ``OnFailure=DELETE``
   rolls back like ``ROLLBACK`` but keeps the stack; the handler message names the error code and HTTP status but
   not the service or a request id; only service errors (a moto ``ServiceException`` or HTTP error) count as a
   resource failure: template errors and moto crashes still fail the call; change sets (ExecuteChangeSet) keep
   moto's behaviour.

8. GetRolePolicy of a role that CloudFormation made answers the inline policy as Python's ``repr`` of a dict
   (``{'Statement': ...}``), which no client can read as JSON. IAM answers the document as (URL-encoded) JSON
   (IAM API reference, GetRolePolicy, "PolicyDocument"), which botocore decodes into a dict. We answer JSON.

9. S3's additional checksums (CRC32, CRC32C, CRC64NVME) are half there: an upload created with an algorithm gives its
   parts no checksum (UploadPartCopy, UploadPart, ListParts answer none), CompleteMultipartUpload ignores the part and
   whole-object checksums sent to it, HeadObject answers no checksum type, CopyObject gives the copy's checksum no
   type, and CRC32C / CRC64NVME are computed as CRC32 without moto's optional packages. We do what S3 does (the rules
   and their pages: checksums_bridge.py), answering S3's BadDigest / InvalidPart / InvalidRequest and leaving a refused
   upload open.

10. Conditional writes: CopyObject ignores ``If-None-Match`` and ``If-Match``, CompleteMultipartUpload ignores
   ``If-Match``. Enforced by the middleware (preconditions.py) for PutObject, CopyObject and
   CompleteMultipartUpload alike: 412 PreconditionFailed, or 404 NoSuchKey for ``If-Match`` on a missing key, with
   the check and the write made under one lock per key so that two concurrent conditional writes cannot both win.

11. A Map's iterations recurse: each worker of the interpreter's job pool evaluates its next item by calling
   itself again at the end (``_eval_pool``, a tail call), one Python frame per item, so a Map whose items one
   worker runs in turn (MaxConcurrency 1: every payload of an sfncopy worker) dies of RecursionError after
   ~970 items (the execution hangs or fails with States.Runtime). AWS has no such bound. We run the tail call
   as a loop (``_iterative``): the same calls in the same order, at a constant depth.

12. Lambda's GetAccountSettings is not implemented (moto answers 404 "Not yet implemented"); ``sfncopy plan``
   reads it to check the workers' concurrency. We answer it as AWS does for a new account (Lambda API
   reference, GetAccountSettings; Lambda developer guide, "Lambda quotas": 1,000 concurrent executions per
   Region), or moto's own MOTO_LAMBDA_CONCURRENCY_QUOTA when set, less the functions' reserved concurrency.

13. A Parallel branch that fails with one of Step Functions' own errors (``States.*``) crashes moto's execution
   (``ValueError: Custom Error Names MUST NOT begin with the prefix 'States.'``) instead of failing the
   Parallel, so its Catch never runs; and an ItemReader that cannot read its object fails as ``States.Runtime``.
   On AWS the Map fails with ``States.ItemReaderFailed`` ("a Map state failed because it couldn't read from the
   item source specified in the ItemReader field", developer guide, "Error handling", error names) and the
   Parallel fails with its branch's error, which its Catch handles. sfncopy's Copy fails only that way now (a
   failed child does not fail its Map), and must reach DrainWorkers and Cleanup. We name the ItemReader's
   failure as AWS does, and raise a branch's ``States.*`` error as that States error; so does the Fail state
   whose ErrorPath gives it such a name (the run's Failed state, with the error Cleanup passes on; that AWS
   accepts a States.* name there at run time is unverified).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdas.limits import DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY

# A Lambda's response log travels base64-encoded in a header; Lambda itself sends the last 4 KB.
LOG_RESULT_TAIL_BYTES = 4096
# GetAccountSettings: "GET /2016-08-19/account-settings/" (Lambda API reference), as a moto URL pattern.
ACCOUNT_SETTINGS_PATH = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"


class Bridges:
    """Installs the patches above for one LambdaRunner; ``uninstall`` restores moto exactly as it was."""

    def __init__(self, invoke: Callable[[Any, Any], Any]) -> None:
        """``invoke(function, event) -> InvocationResult``, raising ``LambdaServiceError`` (LambdaRunner.invoke)."""
        self._invoke = invoke
        self._undo: list[Callable[[], None]] = []

    @property
    def installed(self) -> bool:
        return bool(self._undo)

    def install(self) -> None:
        if self._undo:
            raise RuntimeError("the emulator's moto bridges are already installed")
        self._switch_execution_on()
        self._bridge_cloudformation_state_machines()
        self._bridge_lambda_invocations()
        self._bridge_lambda_task_service_errors()
        self._bridge_unnamed_executions()
        self._bridge_state_machine_definitions()
        self._bridge_cloudformation_resource_failures()
        self._bridge_role_policy_documents()
        self._read_part_copy_ranges()  # before the checksum and restore bridges, which wrap upload_part_copy
        self._bridge_checksums()
        self._bridge_map_iteration_recursion()
        self._bridge_lambda_account_settings()
        self._bridge_state_errors()
        self._bridge_restores()
        self._bridge_scheduler()
        self._bridge_context_start_time()

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _set(self, owner: Any, name: str, value: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, original))

    # 0 -------------------------------------------------------------------------------------------
    def _switch_execution_on(self) -> None:
        from moto.core.config import default_user_config

        section = default_user_config["stepfunctions"]
        self._set_item(section, "execute_state_machine", True)

    def _set_item(self, mapping: Any, key: str, value: Any) -> None:
        original = mapping[key]
        mapping[key] = value
        self._undo.append(lambda: mapping.__setitem__(key, original))

    # 1 -------------------------------------------------------------------------------------------
    def _bridge_cloudformation_state_machines(self) -> None:
        import moto.stepfunctions.models as plain
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        self._set(plain, "stepfunctions_backends", stepfunctions_parser_backends)

    # 2 -------------------------------------------------------------------------------------------
    def _bridge_lambda_invocations(self) -> None:
        from moto.awslambda.exceptions import LambdaClientError
        from moto.awslambda.models import LambdaFunction

        from sfncopy.emulator.lambda_runner import LambdaServiceError

        invoke = self._invoke

        def _invoke_lambda(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            # moto's invoke passes the parsed payload, or the string "{}" for an empty one.
            payload = {} if event is None or event == "{}" else event
            try:
                result = invoke(function, payload)
            except LambdaServiceError as err:
                error = LambdaClientError(err.code, err.message)
                error.code = err.status  # the HTTP status (moto's errors keep it in ``code``)
                raise error from err
            function.logs_backend.ensure_log_group(function.logs_group_name)
            function.save_logs(result.logs)
            tail = result.logs.encode("utf-8")[-LOG_RESULT_TAIL_BYTES:].decode("utf-8", errors="ignore")
            return result.payload_json, result.errored, tail

        self._set(LambdaFunction, "_invoke_lambda", _invoke_lambda)

    # 3 -------------------------------------------------------------------------------------------
    def _bridge_lambda_task_service_errors(self) -> None:
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
            StateTaskServiceLambda,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        original = StateTaskLambda._from_error

        def _from_error(self: StateTaskLambda, env: Any, ex: Exception) -> Any:
            if not isinstance(ex, ClientError):
                return original(self, env, ex)
            error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.LambdaFunctionFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict is total by mistake
                    lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)),
            )

        self._set(StateTaskLambda, "_from_error", _from_error)

    # 5 -------------------------------------------------------------------------------------------
    def _bridge_unnamed_executions(self) -> None:
        import uuid

        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        original = StepFunctionsParserBackend.start_execution

        def start_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any,
                            **kwargs: Any) -> Any:
            return original(backend, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

        self._set(StepFunctionsParserBackend, "start_execution", start_execution)

    # 6 -------------------------------------------------------------------------------------------
    def _bridge_state_machine_definitions(self) -> None:
        from moto.core.exceptions import AWSError
        from moto.stepfunctions.parser.api import InvalidDefinition
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        from sfncopy.emulator.definitions import INVALID_DEFINITION, invalid_definition_message, rejection

        create = StepFunctionsParserBackend.create_state_machine
        update = StepFunctionsParserBackend.update_state_machine

        def refuse_what_aws_refuses(definition: Any) -> None:
            refused = rejection(definition) if isinstance(definition, str) else None
            if refused is not None:
                raise AWSError(refused.message, refused.code, refused.status)

        def with_error_code(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except InvalidDefinition as err:  # moto's parser refused it, and its error has no code
                if err.error_type:
                    raise
                message = invalid_definition_message([f"SCHEMA_VALIDATION_FAILED: {err.message}"])
                raise AWSError(message, INVALID_DEFINITION, 400) from err

        # The API passes keywords; CloudFormation passes (name, definition, role_arn, tags=...) and
        # (arn, definition=..., role_arn=...).
        def create_state_machine(backend: Any, name: str, definition: Any, *args: Any, **kwargs: Any) -> Any:
            refuse_what_aws_refuses(definition)
            return with_error_code(lambda: create(backend, name, definition, *args, **kwargs))

        def update_state_machine(backend: Any, arn: str, definition: Any = None, *args: Any, **kwargs: Any) -> Any:
            if definition is not None:  # None: the update changes something else (role, logging ...)
                refuse_what_aws_refuses(definition)
            return with_error_code(lambda: update(backend, arn, definition, *args, **kwargs))

        self._set(StepFunctionsParserBackend, "create_state_machine", create_state_machine)
        self._set(StepFunctionsParserBackend, "update_state_machine", update_state_machine)

    # 7 -------------------------------------------------------------------------------------------
    def _bridge_cloudformation_resource_failures(self) -> None:
        import threading

        import moto.cloudformation.parsing as parsing
        from moto.cloudformation.models import Stack
        from moto.cloudformation.responses import CloudFormationResponse

        # Per request (moto serves each in its own thread): may the stack roll back, and which resource failed first.
        request = threading.local()

        def recording(action: str, original: Callable[..., Any]) -> Callable[..., Any]:
            """parse_and_create_resource / parse_and_update_resource, remembering the first resource whose service
            refused it (a resource made on the way to another, through Ref or GetAtt, fails first). moto tries a
            failed update up to 5 times (a dependency may be made meanwhile): a later success forgets the failure."""

            def run(logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str,
                    region_name: str) -> Any:
                recorded: _ResourceFailure | None = getattr(request, "failure", None)
                try:
                    made = original(logical_id, resource_json, resources_map, account_id, region_name)
                except Exception as err:
                    if _is_resource_error(err) and (recorded is None or recorded.logical_id == logical_id):
                        request.failure = _ResourceFailure(logical_id, str(resource_json.get("Type", "")), action, err)
                    raise
                if recorded is not None and recorded.logical_id == logical_id:
                    request.failure = None
                return made

            return run

        def failure_of(err: Exception) -> _ResourceFailure | None:
            failure: _ResourceFailure | None = getattr(request, "failure", None)
            return failure if failure is not None and _is_resource_error(err) else None

        def may_roll_back(response: Any) -> bool:
            # CreateStack: DisableRollback or OnFailure (ROLLBACK, the default; DO_NOTHING; DELETE); UpdateStack:
            # DisableRollback.
            return not (response._get_bool_param("DisableRollback", False)
                        or response._get_param("OnFailure") == "DO_NOTHING")

        def remembering_rollback(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def handle(response: Any) -> Any:
                request.roll_back = may_roll_back(response)
                try:
                    return original(response)
                finally:
                    request.roll_back = True

            return handle

        create_resources = Stack.create_resources
        update = Stack.update

        def create_resources_or_fail(stack: Any) -> None:
            request.failure = None
            try:
                create_resources(stack)
            except Exception as err:
                failure = failure_of(err)
                if failure is None:
                    raise
                _fail_create(stack, failure, roll_back=getattr(request, "roll_back", True))

        def update_or_fail(stack: Any, template: str, role_arn: str | None = None,
                           parameters: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> None:
            previous = (stack.template, dict(stack.resource_map.input_parameters or {}))
            request.failure = None
            stack.status_reason = None
            try:
                update(stack, template, role_arn, parameters=parameters, tags=tags)
            except Exception as err:
                failure = failure_of(err)
                if failure is None:
                    raise
                _fail_update(stack, failure, previous, roll_back=getattr(request, "roll_back", True))

        self._set(parsing, "parse_and_create_resource", recording("create", parsing.parse_and_create_resource))
        self._set(parsing, "parse_and_update_resource", recording("update", parsing.parse_and_update_resource))
        self._set(CloudFormationResponse, "create_stack", remembering_rollback(CloudFormationResponse.create_stack))
        self._set(CloudFormationResponse, "update_stack", remembering_rollback(CloudFormationResponse.update_stack))
        self._set(Stack, "create_resources", create_resources_or_fail)
        self._set(Stack, "update", update_or_fail)

    # 8 -------------------------------------------------------------------------------------------
    def _bridge_role_policy_documents(self) -> None:
        import json

        from moto.iam.models import IAMBackend

        original = IAMBackend.get_role_policy

        def get_role_policy(backend: Any, role_name: str, policy_name: str) -> tuple[str, str]:
            name, document = original(backend, role_name, policy_name)
            return name, document if isinstance(document, str) else json.dumps(document)

        self._set(IAMBackend, "get_role_policy", get_role_policy)

    # 11 ------------------------------------------------------------------------------------------
    def _bridge_map_iteration_recursion(self) -> None:
        for owner, name, value in map_iteration_patches():
            self._set(owner, name, value)

    # 13 ------------------------------------------------------------------------------------------
    def _bridge_state_errors(self) -> None:
        for owner, name, value in state_error_patches():
            self._set(owner, name, value)

    # 12 ------------------------------------------------------------------------------------------
    def _bridge_lambda_account_settings(self) -> None:
        import os

        from moto.awslambda import urls
        from moto.awslambda.responses import LambdaResponse

        def get_account_settings(response: LambdaResponse) -> str:
            functions = list(response.backend.list_functions())
            limit = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY))
            reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
            return json.dumps({
                "AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": limit - reserved,
                                 "CodeSizeUnzipped": 262_144_000, "CodeSizeZipped": 52_428_800,
                                 "TotalCodeSize": 80_530_636_800},
                "AccountUsage": {"FunctionCount": len(functions),
                                 "TotalCodeSize": sum(int(f.code_size or 0) for f in functions)},
            })

        self._set_item_new(urls.url_paths, ACCOUNT_SETTINGS_PATH, LambdaResponse.dispatch)
        self._set_new(LambdaResponse, "get_account_settings", get_account_settings)

    def _set_new(self, owner: Any, name: str, value: Any) -> None:
        """Add an attribute moto lacks; uninstall removes it."""
        setattr(owner, name, value)
        self._undo.append(lambda: delattr(owner, name))

    def _set_item_new(self, mapping: Any, key: str, value: Any) -> None:
        mapping[key] = value
        self._undo.append(lambda: mapping.pop(key, None))

    # 30 -----------------------------------------------------------------------------------------
    def _bridge_restores(self) -> None:
        """Restores stay ongoing until completed (restores.py); archived sources unreadable until restored."""
        from sfncopy.emulator.restores import RESTORES, restore_patches

        for owner, name, value in restore_patches():
            self._set(owner, name, value)
        RESTORES.reset()
        self._undo.append(RESTORES.reset)
    # 40 (scheduler_bridge.py) ---------------------------------------------------------------------
    def _bridge_scheduler(self) -> None:
        """CloudFormation makes AWS::Scheduler::Schedule resources, and CreateSchedule/UpdateSchedule refuse
        what Scheduler refuses (41, firing, is a control route: middleware.py)."""
        from moto.cloudformation.parsing import get_model_map, get_name_type_map
        from moto.scheduler.exceptions import ValidationException
        from moto.scheduler.models import EventBridgeSchedulerBackend

        from sfncopy.emulator.scheduler_bridge import CloudFormationSchedule, validation_problems

        kind = CloudFormationSchedule.cloudformation_type()
        self._set_item_new(get_model_map(), kind, CloudFormationSchedule)
        self._set_item_new(get_name_type_map(), kind, CloudFormationSchedule.cloudformation_name_type())

        def validated(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(backend: Any, *args: Any, **kwargs: Any) -> Any:
                problems = validation_problems(str(kwargs.get("schedule_expression", "")),
                                               kwargs.get("schedule_expression_timezone"))
                if problems:
                    raise ValidationException("; ".join(problems))
                return original(backend, *args, **kwargs)
            return call

        for method in ("create_schedule", "update_schedule"):
            self._set(EventBridgeSchedulerBackend, method, validated(getattr(EventBridgeSchedulerBackend, method)))

    # 42 ------------------------------------------------------------------------------------------
    def _bridge_context_start_time(self) -> None:
        for owner, name, value in context_start_time_patches():
            self._set(owner, name, value)

    # 9 ------------------------------------------------------------------------------------------
    # Not a fidelity bridge: speed. moto's UploadPartCopy reads the whole source object (FakeKey.value) for every
    # part and keeps the range, so an object copied in n parts is read n times (a 256 MiB object in 16 parts:
    # 4 GiB read, 3.2 s against 1.4 s for one CopyObject on this machine). This reads the range only, under the
    # key's lock as FakeKey.value does; the part stored is the same bytes.
    def _read_part_copy_ranges(self) -> None:
        from moto.s3.models import S3Backend

        self._set(S3Backend, "upload_part_copy", ranged_upload_part_copy)

    def _bridge_checksums(self) -> None:
        from sfncopy.emulator.checksums_bridge import checksum_patches

        for owner, name, value in checksum_patches():
            self._set(owner, name, value)


def ranged_upload_part_copy(backend: Any, dest_bucket_name: str, multipart_id: str, part_id: int,
                            src_bucket_name: str, src_key_name: str, src_version_id: str | None,
                            start_byte: int | None, end_byte: int | None) -> Any:
    """moto's S3Backend.upload_part_copy, reading only ``start_byte``..``end_byte`` (inclusive) of the source."""
    multipart = backend.get_bucket(dest_bucket_name).multiparts[multipart_id]
    source = backend.get_object(src_bucket_name, src_key_name, version_id=src_version_id)
    if start_byte is None or end_byte is None:
        return multipart.set_part(part_id, source.value)
    with source.lock:
        source._value_buffer.seek(start_byte)
        value = source._value_buffer.read(end_byte + 1 - start_byte)
    return multipart.set_part(part_id, value)


# --- 13: Map iterations as a loop -----------------------------------------------------------------------------
def map_iteration_workers() -> tuple[type[Any], ...]:
    """moto's classes whose ``_eval_pool`` ends by calling itself for the worker's next item."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as distributed_processor,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
        IterationWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator import (
        distributed_iterator_worker as distributed_iterator,
    )

    return (IterationWorker, distributed_processor.DistributedItemProcessorWorker,
            distributed_iterator.DistributedIteratorWorker)


Patch = tuple[Any, str, Any]  # (owner, attribute, replacement): Bridges sets it, a test may monkeypatch it


def map_iteration_patches() -> list[Patch]:
    """Bridge 11, for Bridges.install and for tests that run moto's interpreter directly."""
    return [(owner, "_eval_pool", _iterative(owner.__dict__["_eval_pool"])) for owner in map_iteration_workers()]


_TAIL_CALLS = "_sfncopy_tail_calls"


def _iterative(eval_pool: Callable[..., None]) -> Callable[..., None]:
    """``eval_pool(worker, job, worker_frame)`` run as a loop: its tail call to ``worker._eval_pool`` (for the
    next job) is queued instead of made, and run once the current call has returned. The calls and their order
    are the same; only the stack stays one call deep. A method that did anything after that call would
    change behaviour: tests/unit/test_emulator_recursion.py checks that moto's still end with it."""

    def _eval_pool(worker: Any, job: Any, worker_frame: Any) -> None:
        queued: list[tuple[Any, Any]] | None = worker.__dict__.get(_TAIL_CALLS)
        if queued is not None:  # the tail call, from inside eval_pool below
            queued.append((job, worker_frame))
            return
        queued = worker.__dict__[_TAIL_CALLS] = []
        try:
            eval_pool(worker, job, worker_frame)
            while queued:
                eval_pool(worker, *queued.pop())
        finally:
            del worker.__dict__[_TAIL_CALLS]

    return _eval_pool


# --- 7: how a CloudFormation stack fails on AWS ------------------------------------------------------------------
@dataclass(frozen=True)
class _ResourceFailure:
    logical_id: str
    resource_type: str
    action: str  # "create" or "update"
    error: Exception

    @property
    def reason(self) -> str:
        """The resource event's reason, as CloudFormation words a resource handler's error (cfn-lint #3616:
        'Resource handler returned message: "Invalid State Machine Definition: ..." (Service: Sfn, Status Code:
        400, ...)'); we name the error code instead of the service and request id."""
        from werkzeug.exceptions import HTTPException

        error = self.error
        message = _message(error)
        if isinstance(error, HTTPException):  # moto's older errors: the code is the HTTP status
            code, status = getattr(error, "error_type", ""), error.code
        else:
            code, status = getattr(error, "code", ""), 400
        return f'Resource handler returned message: "{message}" (Status Code: {status}, Error Code: {code})'



def _is_resource_error(err: Exception) -> bool:
    """A service refused the resource (the resource fails on AWS), as opposed to a template error (CloudFormation's
    own errors, which fail the call on AWS as well) or a crash in moto."""
    from moto.cloudformation.exceptions import CloudFormationError
    from moto.core.exceptions import ServiceException
    from werkzeug.exceptions import HTTPException

    return isinstance(err, (ServiceException, HTTPException)) and not isinstance(err, CloudFormationError)


def _message(err: Exception) -> str:
    return str(getattr(err, "message", None) or err)


def _resource_event(stack: Any, failure: _ResourceFailure) -> None:
    from moto.cloudformation.models import Event

    stack.events.append(Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=failure.logical_id,
        physical_resource_id="", resource_type=failure.resource_type,
        resource_status=f"{failure.action.upper()}_FAILED", resource_status_reason=failure.reason,
        resource_properties=None))


def _set_status(stack: Any, status: str, reason: str | None = None) -> None:
    stack._add_stack_event(status, resource_status_reason=reason)
    stack.status = status
    if reason is not None:
        stack.status_reason = reason


def _fail_create(stack: Any, failure: _ResourceFailure, roll_back: bool) -> None:
    _resource_event(stack, failure)
    reason = f"The following resource(s) failed to create: [{failure.logical_id}]. "
    if not roll_back:
        _set_status(stack, "CREATE_FAILED", reason)
    else:
        _set_status(stack, "ROLLBACK_IN_PROGRESS", reason + "Rollback requested by user.")
        try:
            stack.resource_map.delete()  # deletes the resources made so far, and forgets them
        except Exception as err:  # the stack must show it; moto's own error says which resource stayed
            _set_status(stack, "ROLLBACK_FAILED", f"Rollback failed: {_message(err)}")
        else:
            _set_status(stack, "ROLLBACK_COMPLETE")
    _forget_what_was_not_made(stack)


def _forget_what_was_not_made(stack: Any) -> None:
    """moto makes resources and outputs lazily, on first use: without this, describing the failed stack's outputs
    or resources would make the failed resource again. A failed stack shows no outputs and exports no values."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import OutputMap

    resources = stack.resource_map
    resources._resource_json_map = {name: resource for name, resource in resources._resource_json_map.items()
                                    if name in resources._parsed_resources}
    stack.output_map = OutputMap(resources, {}, stack.stack_id)
    exports = cloudformation_backends[stack.account_id][stack.region_name].exports
    for name in [name for name, export in exports.items() if export.exporting_stack_id == stack.stack_id]:
        del exports[name]


def _fail_update(stack: Any, failure: _ResourceFailure, previous: tuple[str, dict[str, Any]], roll_back: bool) -> None:
    _resource_event(stack, failure)
    reason = f"The following resource(s) failed to {failure.action}: [{failure.logical_id}]. "
    if not roll_back:
        _set_status(stack, "UPDATE_FAILED", reason)
        return
    _set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
    template, parameters = previous
    try:  # back to the previous template: moto updates what changed, makes what was removed, deletes what was added
        stack.template = template
        stack._parse_template()
        stack.resource_map.update(stack.template_dict, parameters)
        stack.output_map = stack._create_output_map()
    except Exception as err:
        _set_status(stack, "UPDATE_ROLLBACK_FAILED", f"Rollback failed: {_message(err)}")
        return
    _set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    _set_status(stack, "UPDATE_ROLLBACK_COMPLETE")



# --- 15: Step Functions' own errors in a Map and a Parallel --------------------------------------------------
def state_error_patches() -> list[Patch]:
    """Bridge 13, for Bridges.install and for tests that run moto's interpreter directly."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.item_reader_decl import ItemReader
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    # Both modules name an error they pass on (a failed branch's; a Fail state's ErrorPath value) with
    # CustomErrorName, which refuses States.* names.
    return [(ItemReader, "_eval_body", _reader_failure_named(ItemReader.__dict__["_eval_body"])),
            *[(module, "CustomErrorName", _passed_error_name(module.__dict__["CustomErrorName"]))
              for module in (branches_decl, state_fail)]]


def _reader_failure_named(eval_body: Callable[..., None]) -> Callable[..., None]:
    """An ItemReader whose read fails raises States.ItemReaderFailed with the read's error as the cause."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    failed = StatesErrorNameType.StatesItemReaderFailed

    def _eval_body(reader: Any, env: Any) -> None:
        try:
            eval_body(reader, env)
        except FailureEventException:
            raise
        except Exception as err:
            raise FailureEventException(failure_event=FailureEvent(
                env=env, error_name=StatesErrorName(typ=failed), event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict is total by mistake
                    taskFailedEventDetails=TaskFailedEventDetails(error=failed.to_name(), cause=str(err))))) from err

    return _eval_body


def _passed_error_name(custom: Callable[[str | None], Any]) -> Callable[[str | None], Any]:
    """The name of an error passed on (by a Parallel from its failed branch, by a Fail state from its ErrorPath):
    a States error for a ``States.*`` name moto knows, the custom error name (moto's own) otherwise."""
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    def error_name(error_name: str | None) -> Any:
        if error_name and error_name.startswith("States."):
            try:
                return StatesErrorName.from_name(error_name)
            except ValueError:  # a States error moto does not know: its own behaviour
                pass
        return custom(error_name)

    return error_name


# --- 42: $$.Execution.StartTime as text ------------------------------------------------------------------------
def context_start_time_patches() -> list[Patch]:
    """The context object's ``Execution.StartTime`` is ISO 8601 text on AWS (Step Functions developer guide,
    "Accessing execution data from the Context object": ``"StartTime": "2019-03-26T20:14:13.192Z"``); moto
    hands the interpreter a ``datetime``, so a state that copies it (a run summary's ``started``) makes the
    execution's output unserialisable and DescribeExecution fail."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_environment

    def environment(worker: Any) -> Any:
        env = original(worker)
        execution = env.states.context_object.context_object_data["Execution"]
        started = execution.get("StartTime")
        if isinstance(started, datetime):
            utc = started.astimezone(UTC) if started.tzinfo else started.replace(tzinfo=UTC)
            execution["StartTime"] = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
        return env

    return [(ExecutionWorker, "_get_evaluation_environment", environment)]
