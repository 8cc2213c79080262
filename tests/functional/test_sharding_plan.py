"""Sharded planning on moto's S3 (lambdas/sharding): prepare, every shard (with continuations), assemble.

The reference is the single planner's decision path on the same buckets: every source listed, routed by
``routing.Router``, targets listed whole, ``planning.decide``. A sharded plan must decide exactly the same.
"""

import gzip
import io
import itertools
import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from lambdas import planning
from lambdas.config import parse_config
from lambdas.deadline import Deadline
from lambdas.errors import ConfigError, ManifestConflictError
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.models import ExistingTarget, ManifestLocation, Payload, SkippedObject, SplitCopy
from lambdas.planning import PlanParams
from lambdas.routing import Router, is_folder_marker
from lambdas.settings import Settings
from lambdas.sharding import layout, shard
from lambdas.sharding.assemble import AssembledPlan, assemble
from lambdas.sharding.keyspace import KeyRange
from lambdas.sharding.layout import PayloadRef, ShardSummary
from lambdas.sharding.partition import PartitionParams, ShardSpec
from lambdas.sharding.prepare import Prepared, collect_spills, prepare_run
from lambdas.sharding.shard import KeySpaceChangedError, ShardJob, plan_shard

NOW = "2024-01-01T00:00:00Z"
ETAG_OF: dict[bytes, str] = {}


@pytest.fixture
def buckets(s3_client: Any) -> Any:
    for name in ("src", "src2", "tgt", "tgt2", "plans", "inv"):
        s3_client.create_bucket(Bucket=name)
    return s3_client


def put(client: Any, bucket: str, key: str, size: int, fill: bytes = b"x") -> None:
    client.put_object(Bucket=bucket, Key=key, Body=fill * size)


def doc(sources: list[dict[str, Any]], targets: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {"s3_copy_config": {"source_s3_config": sources if len(sources) > 1 else sources[0],
                               "target_s3_config": targets, "options": options}}


def settings(workers: int = 3) -> Settings:
    return Settings(manifest_bucket="plans", workers=workers)


class Cut:
    """A deadline that comes near after ``after`` looks, once per invocation (a fresh one per call)."""

    def __init__(self, after: int) -> None:
        self.after = after

    def deadline(self) -> Deadline:
        looks = iter(range(10**9))
        return Deadline(remaining_ms=lambda: 0 if next(looks) >= self.after else 10**9, margin=0.0)


def run(gateway: S3Gateway, document: dict[str, Any], run_id: str = "r1", shards: int = 4, workers: int = 3,
        cut: Cut | None = None, probes: int = 40) -> tuple[Prepared, AssembledPlan, list[dict[str, Any]]]:
    prepared = prepare_run(document, run_id, settings(workers), gateway, NOW,
                           PartitionParams(shards=shards, max_probes=probes, concurrency=8))
    answers = []
    for item in gateway.get_json("plans", prepared.items):
        job = ShardJob(run_id, prepared.manifest, ShardSpec.from_item(item))
        for _ in range(10_000):
            answer = plan_shard(job, gateway, cut.deadline() if cut else Deadline.never(), threads=4)
            answers.append(answer.to_dict())
            if answer.done:
                break
            job = ShardJob.from_event(answer.to_dict())
    return prepared, assemble(run_id, prepared.manifest, gateway), answers


def read_plan(gateway: S3Gateway, plan: AssembledPlan) -> tuple[list[Any], list[SkippedObject], list[SplitCopy],
                                                                  list[list[PayloadRef]]]:
    refs = [[PayloadRef.from_dict(r) for r in gateway.get_json("plans", key)] for key in plan.worker_lists]
    tasks = [t for worker in refs for ref in worker
             for t in Payload.from_dict(gateway.get_json("plans", ref.key)).tasks]
    skipped = [SkippedObject.from_dict(s) for key in plan.skipped_keys for s in gateway.get_json("plans", key)]
    splits = [SplitCopy.from_dict(s) for s in gateway.get_json("plans", plan.splits_key)]
    return tasks, skipped, splits, refs


def reference(gateway: S3Gateway, document: dict[str, Any], workers: int = 3) -> planning.Decisions:
    """What the single planner decides on the same buckets (lambdas/planner.py's path, from its pure parts)."""
    config = parse_config(document)
    existing: dict[str, dict[str, ExistingTarget]] = {}
    for t in config.targets:
        for obj in gateway.list_objects(t.bucket, t.prefix):
            existing.setdefault(t.bucket, {})[obj.key] = ExistingTarget(obj.size, obj.etag, obj.checksum_algorithm)
    rows = []
    skipped = []
    for source in config.sources:
        router = Router(source, config.targets)
        for obj in gateway.list_objects(source.bucket, source.prefix):
            routes = router.route(obj)
            rows += [(obj, t.bucket, key, existing.get(t.bucket, {}).get(key)) for t, key in routes]
            if not routes and is_folder_marker(obj.key):
                skipped.append(planning.skip(obj, planning.FOLDER_MARKER))
    decisions = planning.decide(rows, PlanParams.from_settings(settings(workers), config.options))
    return planning.Decisions(decisions.copies, skipped + decisions.skipped)


def copy_rows(tasks: list[Any]) -> Counter[tuple[str, ...]]:
    return Counter((t.source_bucket, t.source_key, t.target_bucket, t.target_key, t.method, t.compare_checksum)
                   for t in tasks)


def skip_rows(skipped: list[SkippedObject]) -> Counter[tuple[str, ...]]:
    return Counter((s.source_key, s.target_bucket, s.target_key, s.reason) for s in skipped)


def mixed_buckets(client: Any, count: int = 600) -> dict[str, Any]:
    """Two sources whose relative keys meet in one target, existing targets, markers and unmatched keys."""
    for i in range(count):
        ext = ("jpg", "png", "txt")[i % 3]
        put(client, "src", f"data/d{i % 9}/f{i:05d}.{ext}", i % 40 + 1)
        if i % 4 == 0:
            put(client, "src2", f"more/d{i % 9}/f{i:05d}.{ext}", 7)  # same relative key: collides in "all/"
    for i in range(0, count, 5):
        put(client, "tgt", f"all/d{i % 9}/f{i:05d}.{('jpg', 'png', 'txt')[i % 3]}", i % 40 + 1)  # identical
    put(client, "tgt", "all/d1/f00001.png", 3)  # different: copied again
    put(client, "src", "data/d3/", 0)  # a folder marker
    return doc([{"s3_bucket": "src", "s3_path": "data/"}, {"s3_bucket": "src2", "s3_path": "more/"}],
               [{"file_types": ["*"], "s3_bucket": "tgt", "s3_path": "all/"},
                {"file_types": ["jpg"], "s3_bucket": "tgt2", "s3_path": "img/"}],
               max_objects_per_payload=37)


# --- the same decisions as the single planner ---------------------------------------------------------
def test_sharded_plan_decides_what_the_single_planner_decides(buckets, gateway):
    # GIVEN two sources colliding in one target, existing targets, a marker, unmatched file types
    document = mixed_buckets(buckets)
    expected = reference(gateway, document)
    # WHEN the run plans in 4 shards for 3 workers
    prepared, plan, _ = run(gateway, document)
    tasks, skipped, splits, refs = read_plan(gateway, plan)
    # THEN the copies and skips are the single planner's, each copy once, in payloads within the caps
    assert prepared.ordered and prepared.shards == 4
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert skip_rows(skipped) == skip_rows(expected.skipped)
    assert any(s.reason.startswith(planning.TARGET_COLLISION) for s in skipped)
    assert len({t.copy_id for t in tasks}) == len(tasks) and not splits
    sizes = [len(Payload.from_dict(gateway.get_json("plans", r.key)).tasks) for w in refs for r in w]
    assert max(sizes) <= 37
    # every segment of every shard is on exactly one worker's list, numbered 0..P-1
    segments = [s.key for i in range(prepared.shards) for s in summary(gateway, prepared, i).segments]
    assert sorted(r.key for w in refs for r in w) == sorted(segments)
    assert sorted(r.payload for w in refs for r in w) == list(range(plan.payloads))
    assert plan.totals.copies == len(tasks) and plan.totals.objects_listed == 600 + 150 + 1
    assert plan.totals.skipped_by_reason == tuple(sorted(Counter(
        planning.reason_kind(s.reason) for s in skipped).items()))


def summary(gateway: S3Gateway, prepared: Prepared, shard_index: int) -> ShardSummary:
    return ShardSummary.from_dict(gateway.get_json("plans", layout.summary_key(prepared.manifest, shard_index)))


def test_each_payload_is_a_contiguous_key_range_of_one_shard_in_every_target(buckets, gateway):
    # GIVEN two sources meeting in one target and a second target, planned in 4 shards for 3 workers, with
    # continuations cutting the shards' listings (segments flushed mid-shard)
    document = mixed_buckets(buckets)
    _, plan, _ = run(gateway, document, cut=Cut(after=3))
    _, _, _, refs = read_plan(gateway, plan)
    payloads = [(ref.key, Payload.from_dict(gateway.get_json("plans", ref.key)).tasks) for w in refs for ref in w]
    # THEN every payload is one shard's segment
    assert all("/segments/" in key for key, _ in payloads) and len(payloads) > 10
    # AND, in each target bucket, no other payload's key lies between a payload's first and last key: verifying a
    # payload lists a contiguous key range of its targets (lambdas/verification.py: a page per 1,000 keys), not
    # keys spread over the whole target
    owner = {(t.target_bucket, t.target_key): key for key, tasks in payloads for t in tasks}
    for bucket in ("tgt", "tgt2"):
        ordered = sorted(k for b, k in owner if b == bucket)
        runs = [owner[(bucket, k)] for k in ordered]
        changes = [a for a, b in itertools.pairwise(runs) if a != b]
        assert len(changes) == len(set(runs)) - 1, f"a payload's keys are not contiguous in {bucket}"


def test_a_shard_cut_by_its_deadline_resumes_exactly_where_it_stopped(buckets, gateway, monkeypatch):
    # GIVEN the same buckets, and shards that look at their deadline every 25 objects
    document = mixed_buckets(buckets)
    _, whole, _ = run(gateway, document, run_id="whole", shards=2)
    monkeypatch.setattr(shard, "DEADLINE_EVERY", 25)
    # WHEN every invocation is cut after 3 looks (mid-listing, mid-segment)
    _, cut, answers = run(gateway, document, run_id="cut", shards=2, cut=Cut(3))
    # THEN the shards took many invocations and planned exactly what the uncut run planned, ids included
    assert len(answers) >= 8 and not all(a["done"] for a in answers)
    assert all(a["invocations"] == n + 1 for a, n in zip(answers, _per_shard_counts(answers), strict=True))
    tasks_whole, skipped_whole, _, _ = read_plan(gateway, whole)
    tasks_cut, skipped_cut, _, _ = read_plan(gateway, cut)
    assert sorted(tasks_cut) == sorted(tasks_whole)
    assert skip_rows(skipped_cut) == skip_rows(skipped_whole)
    # (each pause flushes its partial segment: more payloads, the same tasks)
    assert replace(cut.totals, payloads=0) == replace(whole.totals, payloads=0)
    assert cut.payloads > whole.payloads


def test_a_shard_larger_than_planned_hands_the_rest_of_its_range_on(buckets, gateway, monkeypatch):
    # GIVEN one shard for the whole key space, which hands its range on at its first look at the clock
    document = mixed_buckets(buckets)
    expected = reference(gateway, document)
    monkeypatch.setattr(shard, "DEADLINE_EVERY", 40)
    monkeypatch.setattr(shard, "SPILL_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(shard, "SPILL_PIECES", 4)
    monkeypatch.setattr(shard, "MAX_GENERATION", 2)
    prepared = prepare_run(document, "r1", settings(), gateway, NOW, PartitionParams(shards=1, max_probes=4))
    # WHEN every generation's shards run, each handing on once, and the next generation is collected
    generations = [gateway.get_json("plans", prepared.items)]
    for generation in range(1, 4):
        for item in generations[-1]:
            job = ShardJob("r1", prepared.manifest, ShardSpec.from_item(item))
            while not (answer := plan_shard(job, gateway, Deadline.never(), threads=4)).done:
                job = ShardJob.from_event(answer.to_dict())
        collected = collect_spills("r1", prepared.manifest, gateway, generation)
        assert collect_spills("r1", prepared.manifest, gateway, generation) == collected  # run twice: same ids
        generations.append(gateway.get_json("plans", collected.items))
    # THEN generations 1 and 2 exist (3 is beyond MAX_GENERATION), ids follow each other, and the plan is the
    # single planner's
    assert [len(g) for g in generations] == [1, 3, len(generations[2]), 0] and len(generations[2]) > 1
    ids = [item["shard"] for g in generations for item in g]
    assert ids == list(range(len(ids)))
    plan = assemble("r1", prepared.manifest, gateway)
    tasks, skipped, _, _ = read_plan(gateway, plan)
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert skip_rows(skipped) == skip_rows(expected.skipped)
    assert len({t.copy_id for t in tasks}) == len(tasks)


def _per_shard_counts(answers: list[dict[str, Any]]) -> list[int]:
    seen: Counter[int] = Counter()
    counts = []
    for answer in answers:
        counts.append(seen[answer["shard"]["shard"]])
        seen[answer["shard"]["shard"]] += 1
    return counts


def test_a_finished_shard_answers_done_again_without_listing(buckets, gateway):
    document = mixed_buckets(buckets, count=60)
    prepared, _, _ = run(gateway, document, shards=1)
    job = ShardJob("r1", prepared.manifest, ShardSpec.from_item(gateway.get_json("plans", prepared.items)[0]))
    before = summary(gateway, prepared, 0)
    assert plan_shard(job, gateway, Deadline.never()).done
    assert summary(gateway, prepared, 0) == before


def test_assemble_refuses_a_shard_that_has_not_finished(buckets, gateway):
    document = mixed_buckets(buckets, count=60)
    prepared = prepare_run(document, "r1", settings(), gateway, NOW, PartitionParams(shards=2, max_probes=10))
    with pytest.raises(ManifestConflictError, match="shard 0 has not finished"):
        assemble("r1", prepared.manifest, gateway)


# --- configurations that plan in one shard ----------------------------------------------------------------
def test_flatten_plans_in_one_shard_and_keeps_collisions_across_continuations(buckets, gateway, monkeypatch):
    # GIVEN a flattening target: a/x.jpg and b/x.jpg both become flat/x.jpg
    for folder in "abcdefgh":
        for i in range(20):
            put(buckets, "src", f"data/{folder}/x{i}.jpg", 5)
    put(buckets, "tgt", "flat/x3.jpg", 5)
    document = doc([{"s3_bucket": "src", "s3_path": "data/"}],
                   [{"file_types": ["jpg"], "s3_bucket": "tgt", "s3_path": "flat/", "flatten": True}])
    monkeypatch.setattr(shard, "DEADLINE_EVERY", 7)
    # WHEN it plans with a deadline cutting every invocation
    prepared, plan, answers = run(gateway, document, shards=8, cut=Cut(2))
    tasks, skipped, _, _ = read_plan(gateway, plan)
    # THEN one shard, many invocations, and the single planner's decisions (the first a/xN.jpg wins)
    assert not prepared.ordered and prepared.shards == 1 and len(answers) > 5
    expected = reference(gateway, document)
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert skip_rows(skipped) == skip_rows(expected.skipped)
    assert sorted(t.source_key for t in tasks) == sorted(f"data/a/x{i}.jpg" for i in range(20) if i != 3)


def test_a_key_that_breaks_the_order_after_the_partition_fails_the_shard(buckets, gateway):
    # GIVEN s3_path "logs/2024-" with no key under "logs/2024-/" when the key space is cut
    for month in range(1, 13):
        put(buckets, "src", f"logs/2024-{month:02d}/a.jpg", 5)
    document = doc([{"s3_bucket": "src", "s3_path": "logs/2024-"}],
                   [{"file_types": ["*"], "s3_bucket": "tgt", "s3_path": "out/"}])
    prepared = prepare_run(document, "r1", settings(), gateway, NOW, PartitionParams(shards=2, max_probes=10))
    assert prepared.ordered
    # WHEN such a key appears before a shard lists
    put(buckets, "src", "logs/2024-/b.jpg", 5)
    item = gateway.get_json("plans", prepared.items)[0]
    # THEN the shard fails rather than plan keys out of order
    with pytest.raises(KeySpaceChangedError, match=r"logs/2024-/b\.jpg"):
        plan_shard(ShardJob("r1", prepared.manifest, ShardSpec.from_item(item)), gateway, Deadline.never())


# --- objects too large for one payload ---------------------------------------------------------------------
def test_objects_larger_than_a_payload_are_split_by_the_assembler(buckets, gateway):
    # GIVEN 5 MiB payloads and two 12 MiB objects among small ones
    put(buckets, "src", "data/big/a.bin", 12 * MiB)
    put(buckets, "src", "data/big/b.bin", 12 * MiB)
    for i in range(30):
        put(buckets, "src", f"data/small/{i:03d}.bin", 1000)
    document = doc([{"s3_bucket": "src", "s3_path": "data/"}], [{"file_types": ["*"], "s3_bucket": "tgt"}],
                   max_payload_size_mb=5)
    # WHEN the run plans
    _, plan, _ = run(gateway, document, shards=2, workers=2)
    tasks, _, splits, _ = read_plan(gateway, plan)
    # THEN each big object is one split with an upload, copied by chunks of whole parts within 5 MiB
    assert sorted(s.source_key for s in splits) == ["data/big/a.bin", "data/big/b.bin"]
    uploads = {u["UploadId"] for u in buckets.list_multipart_uploads(Bucket="tgt").get("Uploads", ())}
    assert {s.upload_id for s in splits} == uploads and len(uploads) == 2
    for s in splits:
        chunks = sorted((t for t in tasks if t.copy_id == s.copy_id), key=lambda t: t.first_part)
        assert chunks[0].first_part == 1 and chunks[-1].last_part == s.part_count
        assert all(c.nbytes <= 5 * MiB and c.upload_id == s.upload_id and c.method == "chunk" for c in chunks)
    assert plan.totals.split_objects == 2
    assert sum(1 for t in tasks if t.method == "copy") == 30


def test_a_dry_run_starts_no_upload(buckets, gateway):
    put(buckets, "src", "data/big.bin", 12 * MiB)
    document = doc([{"s3_bucket": "src", "s3_path": "data/"}], [{"file_types": ["*"], "s3_bucket": "tgt"}],
                   max_payload_size_mb=5, dry_run=True)
    _, plan, _ = run(gateway, document, shards=1, workers=2)
    assert plan.totals.split_objects == 1
    assert not buckets.list_multipart_uploads(Bucket="tgt").get("Uploads")


# --- manifest sources ------------------------------------------------------------------------------------
def _inventory(client: Any, rows: list[list[str]], files: int = 2) -> str:
    schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass"
    keys = []
    for n in range(files):
        text = io.StringIO()
        for row in rows[n::files]:
            text.write(",".join(f'"{v}"' for v in row) + "\n")
        key = f"inv/src/daily/data/file-{n}.csv.gz"
        client.put_object(Bucket="inv", Key=key, Body=gzip.compress(text.getvalue().encode()))
        keys.append({"key": key, "size": 100, "MD5checksum": "x"})
    manifest = {"sourceBucket": "src", "destinationBucket": "arn:aws:s3:::inv", "version": "2016-11-30",
                "creationTimestamp": "1", "fileFormat": "CSV", "fileSchema": schema, "files": keys}
    client.put_object(Bucket="inv", Key="inv/src/daily/2024-01-01T00-00Z/manifest.json", Body=json.dumps(manifest))
    return "s3://inv/inv/src/daily/2024-01-01T00-00Z/manifest.json"


def test_an_inventory_source_plans_what_a_listing_plans(buckets, gateway):
    # GIVEN a source and its CSV inventory (URL-encoded keys, an old version, a delete marker, another prefix)
    rows = []
    for i in range(120):
        key = f"data/d{i % 4}/f {i:03d}+{i}.jpg"
        put(buckets, "src", key, i + 1)
        etag = buckets.head_object(Bucket="src", Key=key)["ETag"].strip('"')
        encoded = key.replace("+", "%2B").replace(" ", "+")
        rows.append(["src", encoded, "v", "true", "false", str(i + 1), "2024-01-01T00:00:00.000Z", etag, "STANDARD"])
    rows.append(["src", "data/old.jpg", "v0", "false", "false", "5", "2024", "e", "STANDARD"])
    rows.append(["src", "data/gone.jpg", "v1", "true", "true", "0", "2024", "", "STANDARD"])
    rows.append(["src", "elsewhere/x.jpg", "v", "true", "false", "5", "2024", "e", "STANDARD"])
    put(buckets, "tgt", "out/d1/f 001+1.jpg", 2)  # identical to its source: skipped after a HEAD
    uri = _inventory(buckets, rows)
    listed = doc([{"s3_bucket": "src", "s3_path": "data/"}], [{"file_types": ["jpg"], "s3_bucket": "tgt",
                                                               "s3_path": "out/"}])
    from_inventory = doc([{"s3_bucket": "src", "s3_path": "data/", "manifest": uri}],
                         [{"file_types": ["jpg"], "s3_bucket": "tgt", "s3_path": "out/"}])
    # WHEN the run plans from the inventory
    prepared, plan, _ = run(gateway, from_inventory, shards=2)
    tasks, skipped, _, _ = read_plan(gateway, plan)
    # THEN it decides what the listing's plan decides
    expected = reference(gateway, listed)
    assert not prepared.ordered and prepared.shards >= 1
    assert copy_rows(tasks) == copy_rows(expected.copies)
    assert skip_rows(skipped) == skip_rows(expected.skipped) == Counter({("data/d1/f 001+1.jpg", "tgt",
                                                                          "out/d1/f 001+1.jpg", "identical"): 1})


def test_a_csv_manifest_source_completes_rows_with_heads(buckets, gateway, monkeypatch):
    # GIVEN a CSV of bucket,key rows cut into byte ranges of 200 bytes, one row naming a missing key
    monkeypatch.setattr("lambdas.sharding.inventory.CSV_BYTES_PER_SHARD", 200)
    lines = []
    for i in range(25):
        put(buckets, "src", f"data/k{i:02d} é.png", i + 3)
        lines.append(f"src,data/k{i:02d}%20%C3%A9.png")
    lines.insert(7, "src,data/missing.png")
    buckets.put_object(Bucket="inv", Key="lists/keys.csv", Body="\n".join(lines).encode())
    document = doc([{"s3_bucket": "src", "s3_path": "data/", "manifest": "s3://inv/lists/keys.csv"}],
                   [{"file_types": ["png"], "s3_bucket": "tgt", "s3_path": "out/"}])
    # WHEN the run plans
    prepared, plan, _ = run(gateway, document)
    tasks, skipped, _, _ = read_plan(gateway, plan)
    # THEN every row is planned once, with the size and ETag a HEAD gave, and the missing key is a skip
    assert prepared.shards == 4  # 700 bytes of rows, 200 a shard
    assert sorted((t.source_key, t.size) for t in tasks) == [(f"data/k{i:02d} é.png", i + 3) for i in range(25)]
    assert all(t.etag == buckets.head_object(Bucket="src", Key=t.source_key)["ETag"].strip('"') for t in tasks)
    assert [(s.source_key, s.reason.split(":")[0]) for s in skipped] == [("data/missing.png", planning.FAILED_AT_PLAN)]


def test_a_manifest_with_a_flattening_target_plans_in_one_shard_and_catches_collisions(buckets, gateway,
                                                                                       monkeypatch):
    # GIVEN a CSV manifest cut into several byte ranges, naming a.jpg in eight folders, and a flattening target
    monkeypatch.setattr("lambdas.sharding.inventory.CSV_BYTES_PER_SHARD", 100)
    monkeypatch.setattr(shard, "DEADLINE_EVERY", 3)
    rows = []
    for folder in "abcdefgh":
        put(buckets, "src", f"data/{folder}/a.jpg", 5)
        rows.append(f"src,data/{folder}/a.jpg")
    buckets.put_object(Bucket="inv", Key="lists/flat.csv", Body="\n".join(rows).encode())
    document = doc([{"s3_bucket": "src", "s3_path": "data/", "manifest": "s3://inv/lists/flat.csv"}],
                   [{"file_types": ["jpg"], "s3_bucket": "tgt", "s3_path": "flat/", "flatten": True}])
    # WHEN it plans, cut by its deadline every invocation
    prepared, plan, answers = run(gateway, document, cut=Cut(0))
    tasks, skipped, _, _ = read_plan(gateway, plan)
    # THEN one shard, one copy (the manifest's first row), seven collisions
    assert prepared.shards == 1 and len(answers) > 2
    assert [t.source_key for t in tasks] == ["data/a/a.jpg"]
    assert sorted(s.source_key for s in skipped) == [f"data/{f}/a.jpg" for f in "bcdefgh"]
    assert all(s.reason.startswith(planning.TARGET_COLLISION) for s in skipped)


def test_a_bad_manifest_field_is_a_config_error_naming_it(buckets, gateway):
    document = doc([{"s3_bucket": "src", "manifest": "s3://inv/list.txt"}], [{"file_types": ["*"], "s3_bucket": "tgt"}])
    with pytest.raises(ConfigError, match=r"source_s3_config.manifest: .* is neither"):
        prepare_run(document, "r1", settings(), gateway, NOW)


def test_shard_event_round_trips():
    job = ShardJob("r1", ManifestLocation("plans", "runs/r1/"), ShardSpec(3, KeyRange("a", None), 10))
    assert ShardJob.from_event(json.loads(json.dumps(job.to_event()))) == job
