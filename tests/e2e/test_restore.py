"""options.restore end to end: archived sources restored and copied in the same run, beside everything else."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sfncopy.emulator import control
from tests.e2e import support
from tests.e2e.conftest import Stacks, World
from tests.e2e.support import Obj, rich, uri

pytestmark = pytest.mark.e2e


def _archived(world: World, bucket: str, key: str, size: int, storage_class: str) -> Obj:
    obj = Obj(key=key, body=support.body(key, size), content_type="application/octet-stream")
    world.s3.put_object(Bucket=bucket, Key=key, Body=obj.body, ContentType=obj.content_type,
                        StorageClass=storage_class)
    return obj


def _until(what: str, check: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.3)


def test_archived_objects_are_restored_and_copied_while_the_rest_copies_at_once(world: World, stacks: Stacks) -> None:
    stack = stacks.get(support.RESTORE)
    # GIVEN a source with readable objects, a GLACIER one and an INTELLIGENT_TIERING one in the Archive Access tier
    # whose restores the test will complete, one in an access tier (readable: only a HEAD tells), and a
    # DEEP_ARCHIVE one whose restore never completes (the emulator holds restores until told: bridge 14)
    readable = [rich(f"in/rs/now-{i}.txt", 200 + i, "text/plain") for i in range(3)]
    source, target = world.source(*readable), world.target()
    thaw = _archived(world, source, "in/rs/thaw.txt", 300, "GLACIER")
    tiered = _archived(world, source, "in/rs/tiered.txt", 400, "INTELLIGENT_TIERING")
    frequent = _archived(world, source, "in/rs/frequent.txt", 50, "INTELLIGENT_TIERING")
    _archived(world, source, "in/rs/stuck.txt", 100, "DEEP_ARCHIVE")
    control.control_restores(world.endpoint, {
        "mode": "manual", "never": [{"bucket": source, "key": "in/rs/stuck.txt"}],
        "archive": [{"bucket": source, "key": "in/rs/tiered.txt", "tier": "ARCHIVE_ACCESS"}]})
    document = support.config_document(
        {"s3_bucket": source, "s3_path": "in/rs/"},
        [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/rs/"}],
        restore={"tier": "Bulk", "days": 1}, max_failed_objects=1)

    # WHEN the run starts
    name = support.execution_name("restore")
    arn = support.start_execution(world.sfn, stack, document, name)

    # THEN the readable objects are copied while the three restores are still ongoing, and the archived ones are not
    def restores_requested() -> bool:
        listed = control.restores(world.endpoint)["restores"]
        return {r["key"] for r in listed if r["bucket"] == source} == {"in/rs/thaw.txt", "in/rs/tiered.txt",
                                                                         "in/rs/stuck.txt"}

    _until("the two restores requested", restores_requested)
    _until("the readable objects copied",
           lambda: len(support.list_keys(world.s3, target, "out/rs/now-")) == len(readable))
    assert not {"out/rs/thaw.txt", "out/rs/tiered.txt"} & set(support.list_keys(world.s3, target))
    assert world.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    # WHEN the emulator completes the GLACIER and Intelligent-Tiering objects' restores
    control.control_restores(world.endpoint, {"complete": [{"bucket": source, "key": "in/rs/thaw.txt"},
                                                           {"bucket": source, "key": "in/rs/tiered.txt"}]})
    described = support.wait_for(world.sfn, arn)

    # THEN the run succeeds (one failure allowed), the restored object is copied byte for byte, the stuck one not
    assert described["status"] == "SUCCEEDED", described
    support.assert_targets(world.s3, {**{(target, "out/rs/" + o.key[len("in/rs/"):]): o for o in readable},
                                      (target, "out/rs/thaw.txt"): thaw, (target, "out/rs/tiered.txt"): tiered,
                                      (target, "out/rs/frequent.txt"): frequent}, [target])
    # AND the report says when the restore was requested and completed, and why the other failed
    report = support.read_report(world.s3, stack, name)
    rows = {row["target"]: row for row in report.rows}
    restored = rows[uri(target, "out/rs/thaw.txt")]
    assert restored["status"] == "copied" and restored["restore_requested"] and restored["restore_completed"]
    assert restored["restore_requested"] <= restored["restore_completed"]
    assert rows[uri(target, "out/rs/tiered.txt")]["restore_completed"] != ""
    assert rows[uri(target, "out/rs/frequent.txt")]["restore_requested"] == ""  # not archived: copied at once
    stuck = rows[uri(target, "out/rs/stuck.txt")]
    assert stuck["status"] == "failed" and stuck["restore_completed"] == ""
    assert stuck["error"] == "RestoreTimedOut: restore did not complete within 20 s (Bulk)"
    assert all(rows[uri(target, "out/rs/" + o.key[len("in/rs/"):])]["restore_requested"] == "" for o in readable)
    assert report.summary["restores"] == {"objects": 4, "requested": 3, "restored": 2, "copied": 3, "failed": 1,
                                          "how": {"not archived": 1, "requested": 3}}
    support.assert_no_incomplete_uploads(world.s3, stack, target)
    control.control_restores(world.endpoint, {"mode": "manual"})
