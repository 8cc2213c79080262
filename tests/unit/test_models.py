"""The contracts survive a trip through JSON unchanged."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.gateway import encode_json
from lambdas.manifest import encode_payload
from lambdas.models import (
    CopyConfig,
    CopyOptions,
    CopyTask,
    ManifestLocation,
    ObjectResult,
    Payload,
    PayloadCheckpoint,
    PayloadTask,
    PlanPointer,
    PlanTotals,
    RunPlan,
    SkippedObject,
    SourceConfig,
    SplitCopy,
    SseConfig,
    TargetConfig,
)


def roundtrip(data):
    return json.loads(json.dumps(data))


def test_run_plan_round_trips_through_json():
    config = CopyConfig(
        sources=(SourceConfig("src", "in/"),),
        targets=(TargetConfig(0, "dst", "out/", ("jpg",), include=("*.jpg",), min_size=1),),
        options=CopyOptions(sse=SseConfig("aws:kms", "key-1"), max_failed_objects=2),
    )
    split = SplitCopy(3, "src", "in/big", 100, "e", "dst", "out/big", 10, 10, "u-1", tags=(("a", "b"),))
    plan = RunPlan("run-1", "2026-11-21T00:00:00Z", config, 2, ((0, 2), (1,)), (split,),
                   PlanTotals(copies=3, skipped_by_reason=(("identical", 4),)), (5, 7))
    assert RunPlan.from_dict(roundtrip(plan.to_dict())) == plan


def test_payload_and_checkpoint_round_trip():
    task = CopyTask("c1.p3", 1, "src", "k", 100 * 2**20, "e", "dst", "k2", "chunk", 8 * 2**20, 3, 5, "u")
    payload = Payload(4, 1, (task,))
    assert Payload.from_dict(roundtrip(payload.to_dict())) == payload
    assert task.nbytes == 3 * 8 * 2**20
    result = ObjectResult("c1.p3", 1, "src", "k", "dst", "k2", task.nbytes, "copied", "chunk", parts=3)
    checkpoint = PayloadCheckpoint(4, 1, (result,), (("c2", "upload-2"),), invocations=2)
    assert PayloadCheckpoint.from_dict(roundtrip(checkpoint.to_dict())) == checkpoint


def test_payload_files_store_tasks_as_rows_and_read_any_column_order():
    # GIVEN a payload with a whole-object copy, a multipart copy and a chunk (keys with unicode and spaces)
    tasks = (CopyTask("c0", 0, "src", "in/a b.jpg", 10, "e0", "dst", "out/a b.jpg", "copy"),
             CopyTask("c1", 1, "src", "in/é.mov", 9 * 2**30, "e1", "dst", "out/é.mov", "multipart"),
             CopyTask("c2.p4", 2, "src", "in/big", 100, "e2", "dst", "out/big", "chunk", 10, 4, 6, "u-2"),
             CopyTask("c3", 3, "src", "in/c.jpg", 10, "e3-2", "dst", "out/c.jpg", "copy", compare_checksum="CRC32"))
    data = roundtrip(Payload(7, 3, tasks).to_dict())
    # THEN each task is one array in column order, whole-object tasks without the chunk-only fields
    assert data["columns"][:3] == ["task_id", "copy_id", "source_bucket"]
    assert data["tasks"][0] == ["c0", 0, "src", "in/a b.jpg", 10, "e0", "dst", "out/a b.jpg", "copy"]
    assert len(data["tasks"][2]) == len(data["columns"])
    # AND a whole-object task with a checksum to compare keeps every field, so the worker sees it
    compare = data["columns"].index("compare_checksum")
    assert len(data["tasks"][3]) == len(data["columns"]) and data["tasks"][3][compare] == "CRC32"
    assert Payload.from_dict(data) == Payload(7, 3, tasks)
    # AND a file written with another column order (another version) reads the same
    order = list(reversed(data["columns"]))
    rows = [[dict(zip(data["columns"], row, strict=False)).get(c, CopyTask._field_defaults.get(c)) for c in order]
            for row in data["tasks"]]
    assert Payload.from_dict({**data, "columns": order, "tasks": rows}) == Payload(7, 3, tasks)
    # AND a row longer than its columns is refused, not cut
    with pytest.raises(ValueError, match="10 values for 9 columns"):
        Payload.from_dict({**data, "columns": data["columns"][:9], "tasks": [[*data["tasks"][0], 0]]})


TRICKY_KEYS = ["in/a b+c%20.jpg", "in/é/中文/😀.mov", 'in/say "hi".jpg', "in/back\\slash\\.jpg",
               "in/ctl\x00\x01\x1f\t\n\r\x7f.jpg", "in/\u2028line\u2029sep.png", "in/\ud800lone.jpg", "in/./../x"]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_payload_files_are_plain_compact_json_that_reads_back_the_same(key):
    # GIVEN a payload of every kind of row, with a key that JSON must escape
    tasks = (CopyTask("c0", 0, "src", key, 10, "e0", "dst", "out/" + key, "copy"),
             CopyTask("c1", 1, "src", key, 9 * 2**30, "e1", "dst", key, "multipart"),
             CopyTask("c2", 2, "src", key, 10, "e2", "dst", key, "copy", compare_checksum="CRC32C"),
             CopyTask("c3.p4", 3, "src", key, 100, "e3", "dst", key, "chunk", 10, 4, 6, "u-3"),
             CopyTask("c4", 4, "src", key, 10, "e4", "dst", key, "copy", target_etag="old", source_checksum="CRC32"))
    payload = Payload(7, 3, tasks)
    # WHEN the planner's writer encodes it
    body = encode_payload(payload)
    # THEN the bytes are those of the json module's own compact encoding (ASCII, every escape the same)
    plain = json.dumps(payload.to_dict(), separators=(",", ":")).encode()
    assert body == plain == encode_json(payload.to_dict())
    assert body.isascii()
    # AND whole copies with nothing to compare are short rows; the others carry every column
    data = json.loads(body)
    assert [len(row) for row in data["tasks"]] == [9, 9, *[len(CopyTask._fields)] * 3]
    # AND the rows read back as the same tasks
    assert Payload.from_dict(data) == payload


@given(st.lists(st.tuples(st.text(), st.integers(min_value=0), st.text(max_size=3),
                          st.sampled_from(["copy", "multipart", "chunk"]), st.sampled_from(["", "CRC32"])),
                max_size=5),
       st.integers(min_value=0), st.integers(min_value=0))
def test_payload_files_are_the_json_modules_bytes_for_any_task(rows, payload_id, worker):
    # GIVEN tasks of any key, size, ETag, method and comparison (lone surrogates and control characters too)
    tasks = tuple(CopyTask(f"c{i}", i, "src", key, size, etag, "dst", "out/" + key, method,
                           5 if method == "chunk" else 0, 1 if method == "chunk" else 0, 2 if method == "chunk" else 0,
                           "u" if method == "chunk" else "", compare)
                  for i, (key, size, etag, method, compare) in enumerate(rows))
    payload = Payload(payload_id, worker, tasks)
    # WHEN the planner encodes the payload file  THEN it holds the json module's bytes for Payload.to_dict
    assert encode_payload(payload) == json.dumps(payload.to_dict(), separators=(",", ":")).encode()


def test_last_chunk_counts_only_the_bytes_that_exist():
    task = CopyTask("c1.p3", 1, "s", "k", 25, "e", "d", "k", "chunk", part_size=10, first_part=3, last_part=3)
    assert task.nbytes == 5


def test_state_payloads_round_trip():
    loc = ManifestLocation("manifests", "runs/r1/")
    lists = ("runs/r1/plan/workers/00000.json", "runs/r1/plan/workers/00001.json")
    pointer = PlanPointer("r1", loc, False, ((0, 1), ()), copies=3, bytes=10, skipped=1, worker_lists=lists)
    data = roundtrip(pointer.to_dict())
    # a worker's payloads travel as a count from a first id, with the key of their list for its Map
    assert data["workers"] == [{"worker": 0, "first_payload": 0, "payloads": 2, "items": lists[0]},
                               {"worker": 1, "first_payload": 0, "payloads": 0, "items": lists[1]}]
    assert PlanPointer.from_dict(data) == pointer
    task = PayloadTask("r1", loc, worker=1, payload=7, cursor=3)
    assert PayloadTask.from_event(roundtrip(task.to_dict())) == task
    assert SkippedObject.from_dict(SkippedObject("b", "k", 1, "identical").to_dict()).reason == "identical"


def test_the_plan_pointer_stays_small_whatever_the_payload_count():
    # GIVEN 200,000 payloads on 4 workers (ids consecutive per worker, as the planner numbers them)
    loc = ManifestLocation("manifests", "runs/r1/")
    workers = tuple(tuple(range(i * 50_000, (i + 1) * 50_000)) for i in range(4))
    lists = tuple(f"runs/r1/plan/workers/{i:05d}.json" for i in range(4))
    pointer = PlanPointer("r1", loc, False, workers, copies=1, bytes=1, skipped=0, worker_lists=lists)
    # THEN its state form is a few hundred bytes, and reads back to the same ids
    data = pointer.to_dict()
    assert len(json.dumps(data)) < 1_000
    assert PlanPointer.from_dict(roundtrip(data)).workers == workers


def test_a_pointer_written_before_worker_lists_still_reads():
    # GIVEN the state of a run started by the previous version (the ids themselves, no list keys)
    data = {"run_id": "r1", "manifest": {"bucket": "m", "prefix": "runs/r1/"}, "dry_run": False,
            "workers": [{"worker": 1, "payloads": [2, 3]}, {"worker": 0, "payloads": [0, 1]}],
            "copies": 1, "bytes": 1, "skipped": 0}
    # THEN the finalizer still gets every worker's ids, in worker order
    pointer = PlanPointer.from_dict(data)
    assert pointer.workers == ((0, 1), (2, 3)) and pointer.worker_lists == ()


def test_payload_ids_that_are_not_consecutive_cannot_become_state():
    pointer = PlanPointer("r1", ManifestLocation("m", "p/"), False, ((0, 2),), copies=1, bytes=1, skipped=0)
    with pytest.raises(ValueError, match="not consecutive"):
        pointer.to_dict()
