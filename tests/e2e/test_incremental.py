"""Incremental selection end to end: a run with modified_after copies exactly what changed since then."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import Stack, rich, uri

pytestmark = pytest.mark.e2e


def test_modified_after_copies_exactly_the_objects_changed_since(world: World, main_stack: Stack) -> None:
    # GIVEN a source whose first objects were written before a moment T, and others (new or rewritten) after
    before = [rich(f"in/inc/old-{i}.txt", 100 + i, "text/plain") for i in range(3)]
    source, target = world.source(*before), world.target()
    heads = [world.s3.head_object(Bucket=source, Key=o.key)["LastModified"] for o in before]
    moment = max(heads) + dt.timedelta(seconds=1)
    while dt.datetime.now(dt.UTC) < moment + dt.timedelta(seconds=0.5):
        time.sleep(0.1)
    after = [rich("in/inc/new.txt", 50, "text/plain"), rich("in/inc/old-1.txt", 70, "text/plain")]
    support.put_objects(world.s3, source, after)
    assert all(world.s3.head_object(Bucket=source, Key=o.key)["LastModified"] >= moment for o in after)
    document = support.config_document(
        {"s3_bucket": source, "s3_path": "in/inc/", "modified_after": moment.isoformat()},
        [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/inc/"}])

    # WHEN the scheduled-style run selects by modified_after
    run, name = world.run(main_stack, document, "incremental")

    # THEN exactly the objects written since T are copied, with their current bytes
    assert run.returncode == 0, run.stdout + run.stderr
    support.assert_targets(world.s3, {(target, "out/inc/" + o.key[len("in/inc/"):]): o for o in after}, [target])
    report = support.read_report(world.s3, main_stack, name)
    assert report.statuses() == {uri(target, "out/inc/new.txt"): "copied", uri(target, "out/inc/old-1.txt"): "copied"}
    # AND the two unchanged objects were counted as matching no target, not copied
    assert report.summary["unmatched"] == 2
