"""Package the Lambda code and create or update an environment's stack (real AWS or the embedded emulator).

    sfncopy package --env ENV   # regenerate cfn/ENV.json if needed, upload the code zip (scripts/package.sh)
    sfncopy deploy --env ENV    # package, then create/update the stack; prints its outputs (scripts/deploy.sh)

Endpoint-agnostic: the clients use the env file's AWS_* variables (``local-env.sh`` points them at the
emulator), which the process environment overrides; nothing here names an endpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, WaiterError

from generator.settings import EnvSettings
from generator.template import render_template, template_path, write_template
from lambdas.errors import SfnCopyError

CODE_PREFIX = "sfncopy/"
TEMPLATE_PREFIX = "sfncopy/templates/"
# Fixed zip entry timestamps: the same sources always give the same bytes, hence the same code key.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
WAITER = {"Delay": 5, "MaxAttempts": 360}  # up to 30 minutes
# Statuses of a stack that can be updated in place; ROLLBACK_COMPLETE (a failed create) must be deleted first.
UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
                       "IMPORT_ROLLBACK_COMPLETE"})
FAILED_CREATE = "ROLLBACK_COMPLETE"


class DeployError(SfnCopyError):
    """The stack could not be created or updated; the message carries CloudFormation's reasons."""


# --- clients -------------------------------------------------------------------------------------------------
def session(settings: EnvSettings) -> boto3.Session:
    env = dict(settings.client_environment)
    return boto3.Session(
        region_name=settings.region,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        profile_name=env.get("AWS_PROFILE"),
    )


def client(settings: EnvSettings, service: str) -> Any:
    """A boto3 client for ``service`` in the environment's region, at its endpoint (None: AWS's own)."""
    return session(settings).client(service, endpoint_url=settings.endpoint_url)


# --- the code zip ----------------------------------------------------------------------------------------------
def build_zip(lambdas_dir: Path = Path("lambdas")) -> bytes:
    """The ``lambdas`` package (its *.py files only) as a deterministic zip: sorted entries, fixed times."""
    buffer = io.BytesIO()
    sources = sorted(p for p in lambdas_dir.rglob("*.py") if "__pycache__" not in p.parts)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sources:
            entry = zipfile.ZipInfo(f"lambdas/{source.relative_to(lambdas_dir).as_posix()}", ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, source.read_bytes())
    return buffer.getvalue()


def content_key(prefix: str, stem: str, body: bytes, suffix: str) -> str:
    return f"{prefix}{stem}-{hashlib.sha256(body).hexdigest()[:16]}{suffix}"


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the package bucket (private) if it does not exist."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise DeployError(f"package_bucket {bucket!r} exists but is not usable with these credentials "
                              f"({err}); pick another name in the env file") from err
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def upload_once(s3: Any, bucket: str, key: str, body: bytes) -> None:
    """Content-addressed keys: an object already there has these bytes."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def package(settings: EnvSettings, lambdas_dir: Path = Path("lambdas"), cfn_dir: Path = Path("cfn")) -> str:
    """Regenerate ``cfn/<env>.json`` if its inputs changed, upload the code zip; returns the code key.

    With settings overridden from the process environment the committed template is left alone (it must
    stay a function of the env file)."""
    if not settings.overrides:
        write_template(settings, template_path(settings, cfn_dir))
    body = build_zip(lambdas_dir)
    key = content_key(CODE_PREFIX, "lambdas", body, ".zip")
    s3 = client(settings, "s3")
    ensure_bucket(s3, settings.package_bucket, settings.region)
    upload_once(s3, settings.package_bucket, key, body)
    return key


# --- the stack -------------------------------------------------------------------------------------------------
def find_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """The live stack of that name, or None (listed, so a missing stack is not an error to decode)."""
    for page in cfn.get_paginator("list_stacks").paginate():
        for summary in page["StackSummaries"]:
            if summary["StackName"] == name and summary["StackStatus"] != "DELETE_COMPLETE":
                return dict(summary)
    return None


def template_url(settings: EnvSettings, key: str) -> str:
    """Path-style S3 URL (works for bucket names with dots, and moto resolves it to its own S3)."""
    host = "s3.amazonaws.com" if settings.region == "us-east-1" else f"s3.{settings.region}.amazonaws.com"
    return f"https://{host}/{settings.package_bucket}/{urllib.parse.quote(key)}"


def _parameters(settings: EnvSettings, code_key: str) -> list[dict[str, str]]:
    return [{"ParameterKey": "CodeBucket", "ParameterValue": settings.package_bucket},
            {"ParameterKey": "CodeKey", "ParameterValue": code_key}]


def _unchanged(cfn: Any, name: str, template: dict[str, Any], parameters: list[dict[str, str]]) -> bool:
    """Same template and parameters as deployed: nothing to update."""
    deployed = cfn.get_template(StackName=name)["TemplateBody"]
    if isinstance(deployed, str):
        deployed = json.loads(deployed)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    current = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    wanted = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
    return bool(deployed == template and current == wanted)


def _failure_reasons(cfn: Any, name: str) -> str:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
               if e.get("ResourceStatus", "").endswith("FAILED")]
    return "; ".join(reasons[:5]) or "no failure events recorded"


def _wait(cfn: Any, waiter: str, name: str) -> None:
    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=WAITER)
    except WaiterError as err:
        raise DeployError(f"stack {name}: {waiter.replace('_', ' ')} failed: {_failure_reasons(cfn, name)}") from err


def deploy(settings: EnvSettings, lambdas_dir: Path = Path("lambdas"), cfn_dir: Path = Path("cfn")) -> dict[str, str]:
    """Package, then create or update the stack and wait; returns the stack's outputs. No change: no update."""
    code_key = package(settings, lambdas_dir, cfn_dir)
    text = render_template(settings)
    body = text.encode("utf-8")
    key = content_key(TEMPLATE_PREFIX, settings.stack_name, body, ".json")
    upload_once(client(settings, "s3"), settings.package_bucket, key, body)
    cfn = client(settings, "cloudformation")
    name = settings.stack_name
    parameters = _parameters(settings, code_key)
    request = {"StackName": name, "TemplateURL": template_url(settings, key), "Parameters": parameters,
               "Capabilities": ["CAPABILITY_IAM"]}
    stack = find_stack(cfn, name)
    if stack is not None and stack["StackStatus"] == FAILED_CREATE:
        cfn.delete_stack(StackName=name)  # a failed first create cannot be updated
        _wait(cfn, "stack_delete_complete", name)
        stack = None
    if stack is None:
        cfn.create_stack(**request)
        _wait(cfn, "stack_create_complete", name)
    elif stack["StackStatus"] not in UPDATABLE:
        raise DeployError(f"stack {name} is {stack['StackStatus']}: wait for it to settle, then deploy again")
    elif not _unchanged(cfn, name, json.loads(text), parameters):
        cfn.update_stack(**request)
        _wait(cfn, "stack_update_complete", name)
    return stack_outputs(cfn, name)


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
