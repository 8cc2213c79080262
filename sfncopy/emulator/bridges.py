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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# A Lambda's response log travels base64-encoded in a header; Lambda itself sends the last 4 KB.
LOG_RESULT_TAIL_BYTES = 4096


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
