"""Sharded planning end to end: a stack deployed with planning=sharded (PreparePlan, the PlanShards Distributed
Map, CollectHandOns, AssemblePlan), started with the CLI; every target checked byte for byte, the report read."""

from __future__ import annotations

import pytest

from tests.e2e import support
from tests.e2e.conftest import Stacks, World
from tests.e2e.support import MiB, Obj, Stack, rich, uri

pytestmark = pytest.mark.e2e

# Key families spread over the key space, so the partition has several ranges to cut.
FAMILIES = ("alpha", "bravo", "kilo", "mike", "tango", "zulu")
PER_FAMILY = 50


@pytest.fixture(scope="session")
def sharded_stack(stacks: Stacks) -> Stack:
    return stacks.get(support.SHARDED)


def test_a_sharded_plan_copies_hundreds_of_objects_over_several_shards(world: World, sharded_stack: Stack) -> None:
    # GIVEN 300 small objects under six key families, a few with headers and tags, one uploaded in parts larger
    # than a payload (local env: 64 MiB), which a shard hands to the assembler to split across workers, a file
    # no rule matches and a folder marker
    objects = [Obj(f"in/src/{family}/{n:03d}.bin", support.body(f"{family}{n}", 100 + n))
               for family in FAMILIES for n in range(PER_FAMILY)]
    objects += [rich(f"in/src/mike/rich-{n}.bin", 1_000 + n) for n in range(3)]
    objects.append(rich("in/src/tango/big.bin", 66 * MiB, in_parts=6 * MiB))
    unmatched = Obj("in/src/zulu/readme.txt", b"not copied")
    marker = Obj("in/src/kilo/", b"")
    source = world.source(*objects, unmatched, marker)
    target = world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/src/"},
                                       [{"file_types": ["bin"], "s3_bucket": target, "s3_path": "out/copy/"}])

    # WHEN the user starts it with the CLI and waits
    run, name = world.run(sharded_stack, document, "sharded")

    # THEN it succeeds, and every object is in its target, byte for byte, with its headers and tags
    assert run.returncode == 0, run.stdout + run.stderr
    expected = {(target, "out/copy/" + o.key.removeprefix("in/src/")): o for o in objects}
    support.assert_targets(world.s3, expected, [target])
    big = world.s3.head_object(Bucket=source, Key="in/src/tango/big.bin")["ETag"]
    assert world.s3.head_object(Bucket=target, Key="out/copy/tango/big.bin")["ETag"] == big
    # AND no upload is left open
    support.assert_no_incomplete_uploads(world.s3, sharded_stack, target)

    # AND the plan came from several shards, written in the single planner's layout
    run_prefix = sharded_stack.run_prefix(name)
    bucket = sharded_stack.manifest_bucket
    context = support.read_json(world.s3, uri(bucket, run_prefix + "plan/sharding/context.json"))
    assert context["shards"] > 1, context
    index = support.read_json(world.s3, uri(bucket, run_prefix + "plan/index.json"))
    assert index["workers"] == 3 and len(index["splits"]) == 1
    ids = [pid for worker in index["worker_payloads"] for pid in worker]
    assert ids == list(range(len(ids)))
    # AND the workers read their payloads where the shards and the assembler wrote them (no copy under
    # plan/payloads/), the finalizer the shards' skipped files (no joined plan/skipped.json)
    items = [item for worker in range(3) for item in support.read_json(
        world.s3, uri(bucket, run_prefix + f"plan/workers/{worker:05d}.json"))]
    assert sorted(item["payload"] for item in items) == ids
    assert all(item["key"].startswith(run_prefix + "plan/sharding/") for item in items)
    listed = world.s3.list_objects_v2(Bucket=bucket, Prefix=run_prefix + "plan/").get("Contents", [])
    assert not [o["Key"] for o in listed if o["Key"].startswith(run_prefix + "plan/payloads/")
                or o["Key"] == run_prefix + "plan/skipped.json"]
    assert index["skipped_files"] and all(f.startswith("plan/sharding/shards/") for f in index["skipped_files"])

    # AND the report lists each copy once, copied, and counts the unmatched file and the folder marker
    report = support.read_report(world.s3, sharded_stack, name)
    statuses = report.statuses()
    assert all(statuses[uri(b, k)] == "copied" for b, k in expected)
    assert report.summary["status"] == "succeeded"
    assert report.summary["counts"]["copied"] == len(expected)
    assert report.summary["counts"]["failed"] == 0
    assert report.summary["bytes_copied"] == sum(len(o.body) for o in expected.values())
    assert report.summary["unmatched"] == 1
    assert report.summary["skipped_by_reason"] == {"folder marker": 1}
    # AND each payload is a contiguous key range of one shard, so verification listed the targets' pages
    # (about one per 1,000 keys a payload) instead of sending a HEAD per copied object
    verification = report.summary["verification"]
    assert verification["heads"] < len(expected) // 2, verification
    assert f"run {name}: succeeded ({len(expected)} copied, 1 skipped, 0 failed)" in run.stdout
