"""The Lambda runner's pure parts: the worker's environment, Lambda's error shapes, code extraction."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sfncopy.emulator.lambda_runner import (
    LambdaServiceError,
    exit_payload,
    extract_code,
    lambda_environment,
    timeout_payload,
)


@dataclass
class Function:
    function_name: str = "stack-worker"
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stack-worker"
    handler: str | None = "lambdas.handlers.copy"
    environment_vars: dict[str, str] = field(default_factory=lambda: {"SFNCOPY_MANIFEST_BUCKET": "manifests",
                                                                      "AWS_REGION": "eu-west-9"})
    timeout: int = 30
    memory_size: int = 512
    region: str = "us-east-1"
    code_bytes: bytes = b""
    run_time: str | None = "python3.12"
    role: str = "arn:aws:iam::123456789012:role/stack-worker-role"
    account_id: str = "123456789012"


def test_the_worker_environment_is_the_functions_on_top_of_lambdas_own():
    role_keys = {"AWS_ACCESS_KEY_ID": "ASIAROLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
    env = lambda_environment(Function(), Path("/var/task"), "http://127.0.0.1:4566",
                             {"PATH": "/bin", "SFNCOPY_MANIFEST_BUCKET": "from-my-shell", "AWS_PROFILE": "prod",
                              "PYTHONPATH": "/repo", "LC_ALL": "C.UTF-8", "AWS_ACCESS_KEY_ID": "testing"},
                             role_keys)
    # the function's variables, not the caller's shell
    assert env["SFNCOPY_MANIFEST_BUCKET"] == "manifests"
    assert "AWS_PROFILE" not in env and "PYTHONPATH" not in env
    assert (env["PATH"], env["LC_ALL"]) == ("/bin", "C.UTF-8")
    # Lambda's reserved variables cannot be overridden by the function
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "lambdas.handlers.copy"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "30"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"  # the runtime the template names
    # every SDK call goes to the emulator with the execution role's credentials, not the caller's
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert {k: env[k] for k in role_keys} == role_keys


def test_lambdas_error_shapes():
    assert json.loads(timeout_payload(3)) == {"errorType": "Sandbox.Timedout",
                                              "errorMessage": "Task timed out after 3.00 seconds", "stackTrace": []}
    crashed = json.loads(exit_payload("req-1"))
    assert crashed["errorType"] == "Runtime.ExitError"
    assert crashed["errorMessage"] == "RequestId: req-1 Error: Runtime exited with error: signal: killed"
    assert LambdaServiceError("TooManyRequestsException", "slow down").status == 429
    assert LambdaServiceError("ServiceException", "oops").status == 500


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_code_is_extracted_once_per_digest(tmp_path):
    code = _zip({"lambdas/__init__.py": "", "lambdas/handlers.py": "X = 1\n"})
    first = extract_code(code, tmp_path, "worker", "abc")
    assert (first / "lambdas" / "handlers.py").read_text() == "X = 1\n"
    (first / "marker").write_text("kept")
    assert extract_code(code, tmp_path, "worker", "abc") == first
    assert (first / "marker").exists()
    assert extract_code(_zip({"a.py": ""}), tmp_path, "worker", "def") != first


def test_a_zip_cannot_write_outside_its_directory(tmp_path):
    target = extract_code(_zip({"../../escaped.py": "", "/abs.py": ""}), tmp_path / "functions", "f", "d")
    assert not (tmp_path / "escaped.py").exists()
    assert sorted(p.name for p in target.rglob("*.py")) == ["abs.py", "escaped.py"]


def test_missing_or_broken_code_is_a_service_error_naming_the_function(tmp_path):
    with pytest.raises(LambdaServiceError, match="function f has no zip code"):
        extract_code(b"", tmp_path, "f", "d")
    with pytest.raises(LambdaServiceError) as caught:
        extract_code(b"not a zip", tmp_path, "g", "d")
    assert caught.value.code == "InvalidZipFileException"
