"""What real AWS accepts and refuses, end to end on the strict emulator: execution names, IAM, prefix scopes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import Stack, rich, uri

pytestmark = pytest.mark.e2e


def test_execution_names_aws_accepts_run_and_fail_cleanly(world: World, main_stack: Stack) -> None:
    # GIVEN execution names Step Functions accepts (StartExecution API reference, "name"): @ + ! ( ) and
    # letters beyond ASCII
    objects = [rich("n/a.txt", 10, "text/plain"), rich("n/b.txt", 20, "text/plain")]
    source, target = world.source(*objects), world.target()
    good = support.config_document({"s3_bucket": source, "s3_path": "n/"},
                                   [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"}])
    bad = support.config_document({"s3_bucket": source, "s3_path": "n/"},
                                  [{"file_types": ["txt"], "s3_bucket": world.unused_source(), "s3_path": "out/"}])
    suffix = uuid.uuid4().hex[:6]
    good_name, bad_name = f"café@run+1!(ok)-{suffix}", f"überlauf@run+2!(fails)-{suffix}"

    # WHEN one run succeeds and one fails in the planner
    good_arn = support.start_execution(world.sfn, main_stack, good, good_name)
    bad_arn = support.start_execution(world.sfn, main_stack, bad, bad_name)
    succeeded, failed = support.wait_for(world.sfn, good_arn), support.wait_for(world.sfn, bad_arn)

    # THEN the first copies everything and its report lives in the folder named after the execution
    assert succeeded["status"] == "SUCCEEDED", (succeeded.get("error"), succeeded.get("cause"))
    report = support.read_report(world.s3, main_stack, good_name)
    assert report.statuses() == {uri(target, "out/a.txt"): "copied", uri(target, "out/b.txt"): "copied"}
    # AND the second fails with the planner's error, and Cleanup wrote failure.json in its folder
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "ConfigError", failed
    failure: dict[str, Any] = support.read_json(
        world.s3, f"s3://{main_stack.manifest_bucket}/{main_stack.run_prefix(bad_name)}failure.json")
    assert failure["run_id"] == bad_name and failure["error"] == "ConfigError"
