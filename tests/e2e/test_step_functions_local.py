"""Optional mode: the generated state machine runs on AWS Step Functions Local while Lambda and S3 (and the
CloudFormation stack) are served by the emulator — the interpreter AWS ships, instead of moto's port.

Where a Docker engine is available:

    docker run -d -p 8083:8083 -e LAMBDA_ENDPOINT=http://host.docker.internal:<emulator port> \
        amazon/aws-stepfunctions-local
    SFNCOPY_SFN_ENDPOINT=http://127.0.0.1:8083 ./scripts/test.sh tests/e2e/test_step_functions_local.py

The e2e emulator listens on a free port chosen per run; to point LAMBDA_ENDPOINT at it, run the suite with
``-n 0`` and read the port from the test's log, or start ``sfncopy emulator --port 4566`` yourself. Without
``SFNCOPY_SFN_ENDPOINT`` (as here: no Docker engine) this module is skipped.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import Stack, rich

SFN_LOCAL = os.environ.get("SFNCOPY_SFN_ENDPOINT", "").strip()
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not SFN_LOCAL, reason="SFNCOPY_SFN_ENDPOINT is unset (needs Step Functions Local "
                                                       "in Docker; see this module's docstring)")]


def test_the_deployed_definition_copies_on_step_functions_local(world: World, main_stack: Stack) -> None:
    # GIVEN the definition CloudFormation deployed into the emulator, created again on Step Functions Local
    described = world.sfn.describe_state_machine(stateMachineArn=main_stack.state_machine_arn)
    local = boto3.client("stepfunctions", endpoint_url=SFN_LOCAL, region_name=support.REGION,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    machine = local.create_state_machine(name=f"{described['name']}-{support.execution_name('sfnlocal')}",
                                         definition=described["definition"], roleArn=described["roleArn"])
    objects = [rich("in/a.jpg", 2_000, "image/jpeg"), rich("in/b b.png", 10, "image/png")]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/"},
                                       [{"file_types": ["jpg", "png"], "s3_bucket": target, "s3_path": "out/"}])

    # WHEN an execution runs there
    name = support.execution_name("sfnlocal")
    arn = local.start_execution(stateMachineArn=machine["stateMachineArn"], name=name,
                                input=json.dumps(document))["executionArn"]
    result = support.wait_for(local, arn)

    # THEN it succeeds and every object arrived byte for byte with its headers and tags
    assert result["status"] == "SUCCEEDED", result.get("cause")
    expected = {(target, "out/a.jpg"): objects[0], (target, "out/b b.png"): objects[1]}
    support.assert_targets(world.s3, expected, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
