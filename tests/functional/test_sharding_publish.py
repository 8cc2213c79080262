"""The sharded plan handed to the copy stage (lambdas/sharding/publish.py): after publish, the readers
(manifest.read_plan, the workers' lists of WorkItems, manifest.read_payload_file / payload_files / read_skipped,
PlanPointer) read the plan where the shards and the assembler wrote it, without publish reading or writing a
payload or skip file; and the handlers chain prepare -> shards -> collect -> assemble as the state machine does."""

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
    # THEN the index and the worker lists name the payload files where the shards and the assembler wrote them
    plan = manifest.read_plan(gateway, loc)
    assert plan.workers == 3 and plan.totals == assembled.totals and plan.worker_loads == assembled.worker_loads
    ids = [pid for worker in plan.worker_payloads for pid in worker]
    assert ids == list(range(assembled.payloads))
    files = manifest.payload_files(gateway, loc, plan)
    published = []
    for worker, worker_ids in enumerate(plan.worker_payloads):
        items = manifest.read_worker_list(gateway, loc, worker)
        assert [item.payload for item in items] == list(worker_ids) and {i.worker for i in items} <= {worker}
        assert all(item.key.startswith(loc.prefix + "plan/sharding/") for item in items)
        for pid in worker_ids:
            # AND each reads back with its run-wide id and worker, whatever the shard wrote in the file
            payload = manifest.read_payload_file(gateway, loc, files[pid])
            assert (payload.payload_id, payload.worker) == (pid, worker)
            published += payload.tasks
    assert Counter(published) == Counter(tasks)
    assert {t.source_key for t in expected.copies} <= {t.source_key for t in published}
    # AND no payload file is written under plan/payloads/, nor a joined plan/skipped.json
    assert not list(gateway.list_objects(loc.bucket, loc.prefix + "plan/payloads/"))
    assert gateway.get_json_or_none(loc.bucket, manifest.key(loc, manifest.SKIPPED)) is None
    # AND the index names the shards' skipped files, which read as the single planner's skips
    assert plan.skipped_files == tuple(k[len(loc.prefix):] for k in assembled.skipped_keys)
    read_back = manifest.read_skipped(gateway, loc, plan)
    assert skip_rows(read_back) == skip_rows(skipped) == skip_rows(expected.skipped)
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
    loc = pointer.manifest
    files = manifest.payload_files(gateway, loc, manifest.read_plan(gateway, loc))
    tasks = [t for ids in pointer.workers for pid in ids
             for t in manifest.read_payload_file(gateway, loc, files[pid]).tasks]
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert pointer.copies == len(expected.copies) and len(pointer.workers) == 2


def test_a_plan_with_nothing_to_copy_publishes_empty_lists(buckets: Any, gateway: Any) -> None:
    put(buckets, "src", "data/readme.txt", 10)
    document = doc([{"s3_bucket": "src", "s3_path": "data/"}], [{"file_types": ["jpg"], "s3_bucket": "tgt"}])
    prepared, assembled, _ = run(gateway, document, shards=1, workers=2)
    pointer = publish(assembled, prepared.manifest, gateway)
    assert pointer.workers == ((), ()) and pointer.copies == 0
    assert manifest.read_plan(gateway, prepared.manifest).worker_payloads == ((), ())


class Requests:
    """Every S3 request a client sends, as (operation, key), recorded from botocore's events."""

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[str, str]] = []
        client.meta.events.register("before-parameter-build.s3.*", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.sent.append((model.name, str(params.get("Key", params.get("Prefix", "")))))


def test_publish_reads_no_payload_or_skip_file_and_its_requests_grow_with_workers_only(
        buckets: Any, gateway: Any) -> None:
    # GIVEN two sharded plans of the same buckets shape, one with 4x the objects and skipped rows
    counts, payloads = {}, {}
    for run_id, count in (("small", 120), ("large", 480)):
        for name in ("src", "tgt"):
            for obj in buckets.list_objects_v2(Bucket=name).get("Contents", []):
                buckets.delete_object(Bucket=name, Key=obj["Key"])
        for i in range(count):
            put(buckets, "src", f"data/{i:05d}.jpg", 10)
            put(buckets, "src", f"data/{i:05d}.txt", 10)  # unmatched: no target takes txt (listed as skipped)
            if i % 2:
                put(buckets, "tgt", f"data/{i:05d}.jpg", 10)  # skipped as identical
        document = doc([{"s3_bucket": "src", "s3_path": "data/"}],
                       [{"file_types": ["jpg"], "s3_bucket": "tgt", "s3_path": "data/"}],
                       max_objects_per_payload=10, report_unmatched=True)
        prepared, assembled, _ = run(gateway, document, run_id=run_id, shards=4, workers=3)
        assert assembled.payloads >= count // 20 and assembled.totals.skipped + assembled.totals.unmatched >= count
        # WHEN it is published, its requests recorded
        requests = Requests(gateway.client)
        publish(assembled, prepared.manifest, gateway)
        gateway.client.meta.events.unregister("before-parameter-build.s3.*", requests._record)
        loc = prepared.manifest
        # THEN publish read only the context, the workers' reference lists and the splits, and wrote only the
        # workers' lists and the index: no segment, chunk payload or skipped file
        reads = sorted(key[len(loc.prefix):] for op, key in requests.sent if op == "GetObject")
        writes = sorted(key[len(loc.prefix):] for op, key in requests.sent if op == "PutObject")
        assert reads == sorted(["plan/sharding/context.json", "plan/sharding/splits.json",
                                *(f"plan/sharding/workers/{w:05d}.json" for w in range(3))])
        assert writes == sorted(["plan/index.json", *(f"plan/workers/{w:05d}.json" for w in range(3))])
        assert {op for op, _ in requests.sent} == {"GetObject", "PutObject"}
        counts[run_id], payloads[run_id] = len(requests.sent), assembled.payloads
    # AND 4x the objects (and payloads, and skipped rows) cost publish no more requests
    assert payloads["large"] >= 3 * payloads["small"]
    assert counts["small"] == counts["large"] == 5 + 4
