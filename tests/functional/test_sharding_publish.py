"""The sharded plan handed to the copy stage (lambdas/sharding/publish.py): after publish, the single planner's
readers (manifest.read_plan / read_payload / read_skipped, the workers' id lists, PlanPointer) read the plan the
shards and the assembler made, and the handlers chain prepare -> shards -> collect -> assemble as the state
machine does."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lambdas import handlers, manifest
from lambdas.limits import MiB
from lambdas.models import PlanPointer
from lambdas.sharding.publish import publish
from tests.functional.test_sharding_plan import (
    copy_rows,
    doc,
    mixed_buckets,
    put,
    read_plan,
    reference,
    run,
    skip_rows,
)


@pytest.fixture
def buckets(s3_client: Any) -> Any:
    for name in ("src", "src2", "tgt", "tgt2", "plans"):
        s3_client.create_bucket(Bucket=name)
    return s3_client


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def test_published_plan_reads_as_the_single_planners(buckets: Any, gateway: Any) -> None:
    # GIVEN a sharded plan (4 shards, 3 workers) with collisions, skips and two split objects
    document = mixed_buckets(buckets)
    put(buckets, "src", "data/big/a.bin", 12 * MiB)
    put(buckets, "src", "data/big/b.bin", 12 * MiB)
    document["s3_copy_config"]["options"]["max_payload_size_mb"] = 5
    expected = reference(gateway, document)
    prepared, assembled, _ = run(gateway, document)
    tasks, skipped, splits, _ = read_plan(gateway, assembled)
    # WHEN it is published
    pointer = publish(assembled, prepared.manifest, gateway)
    loc = prepared.manifest
    # THEN the index, payloads, worker lists and skipped file are where and what the single planner writes
    plan = manifest.read_plan(gateway, loc)
    assert plan.workers == 3 and plan.totals == assembled.totals and plan.worker_loads == assembled.worker_loads
    ids = [pid for worker in plan.worker_payloads for pid in worker]
    assert ids == list(range(assembled.payloads))
    published = []
    for worker, worker_ids in enumerate(plan.worker_payloads):
        assert gateway.get_json(loc.bucket, manifest.worker_list_key(loc, worker)) == list(worker_ids)
        for pid in worker_ids:
            payload = manifest.read_payload(gateway, loc, pid)
            assert (payload.payload_id, payload.worker) == (pid, worker)
            published += payload.tasks
    assert Counter(published) == Counter(tasks)
    assert {t.source_key for t in expected.copies} <= {t.source_key for t in published}
    assert skip_rows(manifest.read_skipped(gateway, loc)) == skip_rows(skipped) == skip_rows(expected.skipped)
    assert {(s.source_key, s.upload_id) for s in plan.splits} == {(s.source_key, s.upload_id) for s in splits}
    assert all(s.upload_id for s in plan.splits) and len(plan.splits) == 2
    # AND the pointer is the single planner's shape (consecutive ids per worker, the lists named)
    again = PlanPointer.from_dict(pointer.to_dict())
    assert again == pointer and again.worker_lists == tuple(manifest.worker_list_key(loc, w) for w in range(3))
    assert (pointer.copies, pointer.skipped, pointer.dry_run) == (plan.totals.copies, plan.totals.skipped, False)
    # AND published again (a retry), it writes the same
    assert publish(assembled, loc, gateway) == pointer


def test_the_handlers_chain_as_the_state_machine_calls_them(buckets: Any, gateway: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the Lambdas' environment and a config over a few hundred objects
    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", "plans")
    document = mixed_buckets(buckets, count=300)
    expected = reference(gateway, document, workers=2)
    # WHEN prepare, each shard (until done), collect and assemble run with the states' events
    prepared = handlers.prepare({"run_id": "h1", "workers": 2, "shards": 3, "input": document}, Context())
    assert prepared["generation"] == 0 and prepared["shards"] >= 2
    pointers = {"run_id": prepared["run_id"], "manifest": prepared["manifest"]}
    for item in gateway.get_json("plans", prepared["items"]):
        event: dict[str, Any] = {**pointers, "shard": item}
        while not (event := handlers.plan_shard(event, Context())).get("done"):
            pass
    collected = handlers.collect({**pointers, "generation": 1}, Context())
    assert (collected["shards"], collected["generation"]) == (0, 1)
    pointer = PlanPointer.from_dict(handlers.assemble(pointers, Context()))
    # THEN the pointer and its plan hold the single planner's decisions
    tasks = [t for ids in pointer.workers for pid in ids
             for t in manifest.read_payload(gateway, pointer.manifest, pid).tasks]
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert pointer.copies == len(expected.copies) and len(pointer.workers) == 2


def test_a_plan_with_nothing_to_copy_publishes_empty_lists(buckets: Any, gateway: Any) -> None:
    put(buckets, "src", "data/readme.txt", 10)
    document = doc([{"s3_bucket": "src", "s3_path": "data/"}], [{"file_types": ["jpg"], "s3_bucket": "tgt"}])
    prepared, assembled, _ = run(gateway, document, shards=1, workers=2)
    pointer = publish(assembled, prepared.manifest, gateway)
    assert pointer.workers == ((), ()) and pointer.copies == 0
    assert manifest.read_plan(gateway, prepared.manifest).worker_payloads == ((), ())
