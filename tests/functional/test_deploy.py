"""Packaging and deploying the generated stack into moto's CloudFormation (in-process, mock_aws)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sfncopy import deploy
from tests.unit.generator_helpers import settings_for

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# moto's CloudFormation skips AWS::S3::BucketPolicy (the manifest bucket's TLS-only policy); AWS applies it.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.+S3.+BucketPolicy but")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def copy_lambdas(target: Path) -> Path:
    """A private copy of lambdas/ (plus junk that must stay out of the zip)."""
    target.mkdir(parents=True)
    for source in (ROOT / "lambdas").glob("*.py"):
        (target / source.name).write_bytes(source.read_bytes())
    (target / "__pycache__").mkdir()
    (target / "__pycache__" / "handlers.cpython-311.pyc").write_bytes(b"junk")
    (target / "notes.txt").write_text("not code")
    return target


def test_zip_is_deterministic_and_holds_only_python_sources(tmp_path: Path) -> None:
    # GIVEN the lambdas package with caches and other files around it
    lambdas = copy_lambdas(tmp_path / "lambdas")
    # WHEN it is zipped twice  THEN the bytes are identical and only lambdas/*.py are inside, sorted
    first, second = deploy.build_zip(lambdas), deploy.build_zip(lambdas)
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == sorted(names)
    assert "lambdas/handlers.py" in names
    assert all(n.startswith("lambdas/") and n.endswith(".py") for n in names)
    # AND a change in the code changes the content-hashed key
    key = deploy.content_key(deploy.CODE_PREFIX, "lambdas", first, ".zip")
    assert key.startswith("sfncopy/lambdas-") and key.endswith(".zip")
    (lambdas / "handlers.py").write_text((lambdas / "handlers.py").read_text() + "\n# changed\n")
    assert deploy.content_key(deploy.CODE_PREFIX, "lambdas", deploy.build_zip(lambdas), ".zip") != key


def test_package_creates_the_bucket_uploads_the_zip_and_writes_the_template(aws: None, tmp_path: Path) -> None:
    # GIVEN an environment whose package bucket does not exist yet
    settings = settings_for(tmp_path / "envs")
    cfn_dir = tmp_path / "cfn"
    # WHEN it is packaged
    key = deploy.package(settings, ROOT / "lambdas", cfn_dir)
    # THEN the zip is in the (private) package bucket and cfn/<env>.json was generated
    s3 = boto3.client("s3", region_name=REGION)
    body = s3.get_object(Bucket="pkg-bucket", Key=key)["Body"].read()
    assert body == deploy.build_zip(ROOT / "lambdas")
    assert s3.get_public_access_block(Bucket="pkg-bucket")["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert json.loads((cfn_dir / "test.json").read_text())["Outputs"]["Workers"]["Value"] == "2"
    # AND packaging again changes nothing
    before = (cfn_dir / "test.json").stat().st_mtime_ns
    assert deploy.package(settings, ROOT / "lambdas", cfn_dir) == key
    assert (cfn_dir / "test.json").stat().st_mtime_ns == before


def test_package_leaves_the_committed_template_alone_when_settings_are_overridden(aws: None, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "envs").with_workers(5)  # like num_copy_lambda_workers=5 in the process env
    deploy.package(settings, ROOT / "lambdas", tmp_path / "cfn")
    assert not (tmp_path / "cfn" / "test.json").exists()


def stack(name: str = "sfncopy-test") -> dict[str, Any]:
    result: dict[str, Any] = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName=name)["Stacks"][0]
    return result


def test_deploy_creates_the_stack_with_working_resources(aws: None, tmp_path: Path) -> None:
    # GIVEN an environment with 3 workers and a stack-created manifest bucket
    settings = settings_for(tmp_path / "envs", num_copy_lambda_workers="3", worker_timeout_seconds="120")
    # WHEN it is deployed
    outputs = deploy.deploy(settings, ROOT / "lambdas", tmp_path / "cfn")
    # THEN the outputs name the machine, the manifest location and the functions
    assert stack()["StackStatus"] == "CREATE_COMPLETE"
    assert outputs["WorkerFunctionName"] == "sfncopy-test-worker"
    assert outputs["ManifestPrefix"] == "sfncopy/"
    assert outputs["Workers"] == "3"
    # AND the functions run our handlers with the SFNCOPY_* settings
    lam = boto3.client("lambda", region_name=REGION)
    worker = lam.get_function_configuration(FunctionName=outputs["WorkerFunctionName"])
    assert (worker["Handler"], worker["Runtime"], worker["Timeout"]) == ("lambdas.handlers.copy", "python3.12", 120)
    variables = worker["Environment"]["Variables"]
    assert variables["SFNCOPY_MANIFEST_BUCKET"] == outputs["ManifestBucket"]
    assert variables["SFNCOPY_DEADLINE_MARGIN_SECONDS"] == "24"
    assert lam.get_function_configuration(FunctionName=outputs["CleanupFunctionName"])["Handler"] == (
        "lambdas.handlers.clean_up")
    # AND the manifest bucket exists, encrypted
    s3 = boto3.client("s3", region_name=REGION)
    encryption = s3.get_bucket_encryption(Bucket=outputs["ManifestBucket"])
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "AES256"
    # AND the state machine's definition has real function ARNs and intact context paths ($$.)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    definition = json.loads(machine["definition"])
    assert definition["States"]["Plan"]["Resource"] == worker["FunctionArn"].replace("-worker", "-planner")
    assert definition["States"]["Plan"]["Parameters"]["run_id.$"] == "$$.Execution.Name"
    assert len(definition["States"]["Copy"]["Branches"]) == 3
    assert "${" not in machine["definition"]


def test_redeploy_without_changes_is_a_no_op_and_changes_update(aws: None, tmp_path: Path) -> None:
    # GIVEN a deployed stack
    envs, cfn_dir = tmp_path / "envs", tmp_path / "cfn"
    lambdas = copy_lambdas(tmp_path / "lambdas")
    first = deploy.deploy(settings_for(envs), lambdas, cfn_dir)
    # WHEN it is deployed again unchanged  THEN nothing is updated
    assert deploy.deploy(settings_for(envs), lambdas, cfn_dir) == first
    assert stack()["StackStatus"] == "CREATE_COMPLETE"
    # WHEN the code changes  THEN the stack is updated to the new code key
    (lambdas / "limits.py").write_text((lambdas / "limits.py").read_text() + "\n# changed\n")
    deploy.deploy(settings_for(envs), lambdas, cfn_dir)
    assert stack()["StackStatus"] == "UPDATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack()["Parameters"]}
    assert parameters["CodeKey"] == deploy.content_key(deploy.CODE_PREFIX, "lambdas", deploy.build_zip(lambdas),
                                                       ".zip")
    # WHEN the worker count changes  THEN the machine gets the new branches
    outputs = deploy.deploy(settings_for(envs, num_copy_lambda_workers="4"), lambdas, cfn_dir)
    assert outputs["Workers"] == "4"
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])["definition"])
    assert len(definition["States"]["Copy"]["Branches"]) == 4
