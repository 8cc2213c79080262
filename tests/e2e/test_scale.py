"""Case 11 of the failure suite: 20,000 small objects on 4 workers complete, the run's history fixed by its workers,
with pointer-only state payloads."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lambdas import finalize_shards, history, limits
from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import Stack, rich

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OBJECTS = 20_000
# Pointer-only state payloads stay tiny whatever the object count: run id, manifest location, payload
# numbers. A few KiB leaves room for the plan pointer's 4 workers' payload lists.
MAX_STATE_PAYLOAD_BYTES = 16 * 1024


def _listing(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key (without ``prefix``) -> (size, ETag) of everything under ``prefix``."""
    found: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            found[obj["Key"][len(prefix):]] = (obj["Size"], obj["ETag"])
    return found


def test_twenty_thousand_objects_on_four_workers_fit_the_history_budget(world: World, main_stack: Stack) -> None:
    # GIVEN 20,000 small objects (a handful of them with metadata, headers and tags)
    source, target = world.source(), world.target()
    keys = [f"in/many/{i // 1000:02d}/obj-{i:05d}.txt" for i in range(OBJECTS)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: world.s3.put_object(Bucket=source, Key=k, Body=k.encode()), keys))
    sample = [rich(f"in/many/rich-{i}.txt", 100 + i, "text/plain") for i in range(5)]
    support.put_objects(world.s3, source, sample)
    document = support.config_document({"s3_bucket": source, "s3_path": "in/many/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/copy/"}])

    # WHEN
    run, name = world.run(main_stack, document, "scale")

    # THEN it succeeds and every object is in the target with its size and MD5 ETag (the same bytes)
    assert run.returncode == 0, f"execution failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    expected = {k[len("in/many/"):]: (len(k), f'"{hashlib.md5(k.encode()).hexdigest()}"') for k in keys}
    expected.update({o.key[len("in/many/"):]: (len(o.body), f'"{hashlib.md5(o.body).hexdigest()}"')
                     for o in sample})
    assert _listing(world.s3, target, "out/copy/") == expected
    for obj in sample:
        support.assert_copied(world.s3, obj, target, "out/copy/" + obj.key[len("in/many/"):])
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["counts"]["copied"] == OBJECTS + len(sample)
    assert len(report.rows) == OBJECTS + len(sample)
    # AND it was finalized in a fan-out: payload shards of about 5,000 rows each and the skipped objects' shard,
    # merged into one report.csv
    totals = report.summary["totals"]
    shards = finalize_shards.plan_shards(totals["payloads"], totals["copies"], ["skipped"], shard_rows=5_000)
    assert report.summary["timings"]["finalize_shards"] == len(shards) >= 5, report.summary["timings"]
    assert report.summary["report"]["csv"].endswith("/report.csv")
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    # AND the execution's history stayed inside the budget (its payloads ran as child executions of the workers'
    # Distributed Maps: the run itself records its fixed states and each worker's Map), and no state carried
    # more than pointers
    events = support.history(world.sfn, run.arn)
    assert len(events) <= history.parent_events(main_stack.spec.workers) < limits.HISTORY_EVENT_BUDGET, len(events)
    largest = support.largest_state_payload(events)
    assert largest < MAX_STATE_PAYLOAD_BYTES, f"a state payload of {largest} bytes: not pointer-only"
    assert not any("obj-0" in str(event) for event in events), "an object key travelled in a state payload"
