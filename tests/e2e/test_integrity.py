"""Cases 5, 6 and 9 of the failure suite: nothing wrong or mixed is ever written, failures are per object,
and a finished copy is not done twice.

5. a source object replaced after planning and before its copy fails as "source changed";
6. AccessDenied on one target: the other targets complete, the failure is reported per object;
9. re-running a finished config copies nothing; after one source change, only that object is copied.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from lambdas.models import Payload
from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import MiB, Obj, Stack, rich, uri

pytestmark = pytest.mark.e2e


def _replace_after_planning(world: World, stack: Stack, document: dict[str, Any], label: str, source: str,
                            replaced: Obj) -> tuple[support.CliRun, str]:
    """Run ``document`` with the CLI and replace ``replaced`` in ``source`` after the plan is written and
    before any worker can copy it.

    Deterministic, without timing: S3 answers SlowDown to every GetObject until the object is replaced.
    The planner only lists, HEADs and writes (no GetObject); a worker must read the plan and its payload
    (GetObject) before it copies anything, so no copy can happen in between. The planner writes the plan
    index last, so once it exists the plan (with the old ETag) is complete."""
    world.emulator.set_faults({"s3": {"slow_down_fraction": 1.0, "operations": ["GetObject"]}})
    name = support.execution_name(label)
    index_key = stack.run_prefix(name) + "plan/index.json"
    started = time.monotonic()
    process = support.start_cli(world.endpoint, stack, document, name, world.work_dir)
    try:
        support.wait_until(lambda: _exists(world.s3, stack.manifest_bucket, index_key), timeout=60,
                           what="the plan")
        support.put_object(world.s3, source, replaced)
    finally:
        world.emulator.clear_faults()
    return support.finish_cli(process, stack, name, started), name


def _exists(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0))


def _planned_etag(world: World, stack: Stack, name: str, source_key: str) -> str:
    """The ETag the plan pinned for ``source_key`` (from the payload files in the manifest)."""
    prefix = stack.run_prefix(name) + "plan/payloads/"
    for key in support.list_keys(world.s3, stack.manifest_bucket, prefix):
        payload = Payload.from_dict(support.read_json(world.s3, f"s3://{stack.manifest_bucket}/{key}"))
        for task in payload.tasks:
            if task.source_key == source_key:
                return task.etag
    raise AssertionError(f"{source_key} is in no payload of run {name}")


def test_source_replaced_after_planning_fails_that_object_and_the_run_at_max_failed_0(
        world: World, main_stack: Stack) -> None:
    # GIVEN five objects and max_failed_objects 0
    objects = [rich(f"in/c/{i}.txt", 500 + i, "text/plain") for i in range(5)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/c/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/"}],
                                       max_failed_objects=0)
    changed = objects[2].with_body(b"a new version, written after the plan")
    old_etag = world.s3.head_object(Bucket=source, Key=changed.key)["ETag"].strip('"')

    # WHEN one object is replaced after planning and before its copy
    run, name = _replace_after_planning(world, main_stack, document, "changed-0", source, changed)

    # THEN the plan had pinned the old version
    assert _planned_etag(world, main_stack, name, changed.key) == old_etag
    # AND the execution failed with a Cause that names the count and the report's location
    assert run.returncode != 0, run.stdout
    described = world.sfn.describe_execution(executionArn=run.arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "TooManyFailedObjectsError"
    report_uri = f"s3://{main_stack.manifest_bucket}/{main_stack.run_prefix(name)}report.json"
    assert "1 object failed" in described["cause"] and report_uri in described["cause"], described["cause"]
    # AND nothing was written for the changed object (neither version), the others were copied
    expected = {(target, "out/" + o.key[len("in/c/"):]): o for o in objects if o.key != changed.key}
    support.assert_targets(world.s3, expected, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    # AND the report names it as changed
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["counts"] == {"copied": 4, "skipped": 0, "failed": 1, "planned": 0}
    [failed] = report.summary["failed_objects"]
    assert failed["source"] == uri(source, changed.key) and failed["error"].startswith("SourceChanged"), failed


def test_split_source_replaced_after_planning_is_reported_and_the_run_succeeds_at_max_failed_1(
        world: World, main_stack: Stack) -> None:
    # GIVEN a 21 MiB object (larger than the copy cutoff: split into chunks across the workers), three small
    # objects, and max_failed_objects 1
    big = rich("in/d/big.bin", 21 * MiB)
    small = [rich(f"in/d/{i}.bin", 700 + i) for i in range(3)]
    source, target = world.source(big, *small), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/d/"},
                                       [{"file_types": ["bin"], "s3_bucket": target, "s3_path": "out/"}],
                                       max_failed_objects=1)
    changed = big.with_body(support.body("another version", 21 * MiB))

    # WHEN the large object is replaced after planning and before its chunks are copied
    run, name = _replace_after_planning(world, main_stack, document, "changed-1", source, changed)

    # THEN the execution succeeds and reports the one failure
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["status"] == "succeeded"
    assert report.summary["counts"]["failed"] == 1 and report.summary["counts"]["copied"] == 3
    [failed] = report.summary["failed_objects"]
    assert failed["source"] == uri(source, big.key) and "SourceChanged" in failed["error"], failed
    # AND nothing mixed was written: no target object for it, and its multipart upload was aborted
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/d/"):]): o for o in small}, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)


def test_access_denied_on_one_target_fails_its_objects_and_the_other_targets_complete(
        world: World, main_stack: Stack) -> None:
    # GIVEN two targets, and S3 denying every write to the second one (listing and reading it still work)
    objects = [rich(f"in/a/{i}.csv", 300 + i, "text/csv") for i in range(4)]
    source, open_target, denied = world.source(*objects), world.target(), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/a/"},
                                       [{"file_types": ["csv"], "s3_bucket": open_target, "s3_path": "out/"},
                                        {"file_types": ["csv"], "s3_bucket": denied, "s3_path": "out/"}],
                                       max_failed_objects=len(objects))
    world.emulator.set_faults({"s3": {"deny": [{"bucket": denied, "operations": [
        "CopyObject", "UploadPartCopy", "CreateMultipartUpload", "PutObject", "PutObjectTagging"]}]}})

    # WHEN
    run, name = world.run(main_stack, document, "denied")

    # THEN the open target got every object; the denied one nothing
    assert run.returncode == 0, f"execution failed:\n{run.stdout}\n{run.stderr}"
    copied = {o.key: "out/" + o.key[len("in/a/"):] for o in objects}
    support.assert_targets(world.s3, {(open_target, copied[o.key]): o for o in objects}, [open_target, denied])
    support.assert_no_incomplete_uploads(world.s3, main_stack, open_target, denied)
    # AND the report has one failed row per object of the denied target, with the AccessDenied code
    report = support.read_report(world.s3, main_stack, name)
    assert report.statuses() == {**{uri(open_target, copied[o.key]): "copied" for o in objects},
                                 **{uri(denied, copied[o.key]): "failed" for o in objects}}
    denied_rows = [r for r in report.rows if r["target"].startswith(f"s3://{denied}/")]
    assert all(r["error"].startswith("AccessDenied") for r in denied_rows), denied_rows


def test_rerun_copies_nothing_then_only_the_changed_object(world: World, main_stack: Stack) -> None:
    # GIVEN a finished copy of small objects and of a large object uploaded in parts (copied in parts)
    objects = [rich(f"in/r/{i}.json", 100 + i, "application/json") for i in range(6)]
    objects.append(rich("in/r/large.json", 18 * MiB, "application/json", in_parts=6 * MiB))
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/r/"},
                                       [{"file_types": ["json"], "s3_bucket": target, "s3_path": "out/copy/"}])
    first, _ = world.run(main_stack, document, "rerun-1")
    assert first.returncode == 0, f"first run failed:\n{first.stdout}\n{first.stderr}"
    expected = {(target, f"out/copy/{o.key[len('in/r/'):]}"): o for o in objects}
    support.assert_targets(world.s3, expected, [target])

    # WHEN the same config runs again
    world.emulator.reset_stats()
    second, name = world.run(main_stack, document, "rerun-2")

    # THEN nothing is copied: every object is skipped as proven identical
    assert second.returncode == 0, f"second run failed:\n{second.stdout}\n{second.stderr}"
    report = support.read_report(world.s3, main_stack, name)
    assert report.statuses() == {uri(b, k): "skipped" for b, k in expected}
    assert report.summary["skipped_by_reason"] == {"identical": len(objects)}
    requests = world.emulator.stats()["s3_requests"]
    assert not {op: n for op, n in requests.items()
                if op in ("CopyObject", "UploadPartCopy", "CreateMultipartUpload")}, requests

    # WHEN one source object changes and the config runs a third time
    changed = objects[3].with_body(b"changed since the last run")
    support.put_object(world.s3, source, changed)
    world.emulator.reset_stats()
    third, name = world.run(main_stack, document, "rerun-3")

    # THEN only that object is copied
    assert third.returncode == 0, f"third run failed:\n{third.stdout}\n{third.stderr}"
    report = support.read_report(world.s3, main_stack, name)
    changed_target = uri(target, f"out/copy/{changed.key[len('in/r/'):]}")
    assert report.statuses() == {uri(b, k): "copied" if uri(b, k) == changed_target else "skipped"
                                 for b, k in expected}
    assert world.emulator.stats()["s3_requests"].get("CopyObject") == 1
    support.assert_targets(world.s3, {**expected, (target, f"out/copy/{changed.key[len('in/r/'):]}"): changed},
                           [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)


def test_every_copy_is_checksum_verified_and_a_rerun_copies_nothing(world: World, solo_stack: Stack) -> None:
    # GIVEN sources as SDKs upload them today (a CRC32 with every PUT; parts with a composite CRC32): a small
    # object, a 10 MiB object uploaded in 5 MiB parts (copied by the worker in parts, under the cutoff, to keep its
    # composite checksum), and a 13 MiB object uploaded with one PUT, split into chunks by the 12 MB payload cap
    small = rich("in/v/small.bin", 64 * 1024)
    composite = replace(rich("in/v/composite.bin", 10 * MiB, in_parts=5 * MiB), checksum="CRC32")
    single_put = rich("in/v/single-put.bin", 13 * MiB)
    objects = [small, composite, single_put]
    source, target, encrypted = world.source(*objects), world.target(), world.target()
    plain = support.config_document({"s3_bucket": source, "s3_path": "in/v/"},
                                    [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}],
                                    max_payload_size_mb=12)
    # AND the same copied to a target encrypted with SSE-KMS (whose ETags are not MD5s on S3)
    kms = support.config_document({"s3_bucket": source, "s3_path": "in/v/"},
                                  [{"file_types": ["*"], "s3_bucket": encrypted, "s3_path": "out/"}],
                                  max_payload_size_mb=12, sse="aws:kms")
    for document, label in ((plain, "verified"), (kms, "verified-kms")):
        # WHEN the config runs
        first, name = world.run(solo_stack, document, label)
        assert first.returncode == 0, f"{label} failed:\n{first.stdout}\n{first.stderr}"
        # THEN each object was copied by its method, and verified by the checksum S3 validated at write time
        report = support.read_report(world.s3, solo_stack, name)
        methods = {row["source"]: (row["status"], row["method"], row["verified_by"]) for row in report.rows}
        assert methods == {uri(source, small.key): ("copied", "copy", "checksum"),
                           uri(source, composite.key): ("copied", "multipart", "checksum"),
                           uri(source, single_put.key): ("copied", "multipart-split", "checksum")}, methods
        assert report.summary["verified_by"] == {"checksum": 3, "etag": 0, "size": 0}
        # AND each target keeps the source's checksum: its algorithm, type and value (a composite one its layout)
        for obj in objects:
            key = "out/" + obj.key[len("in/v/"):]
            wanted = world.s3.head_object(Bucket=source, Key=obj.key, ChecksumMode="ENABLED")
            got = world.s3.head_object(Bucket=document["s3_copy_config"]["target_s3_config"][0]["s3_bucket"],
                                       Key=key, ChecksumMode="ENABLED")
            assert (got.get("ChecksumCRC32"), got.get("ChecksumType")) == (
                wanted.get("ChecksumCRC32"), wanted.get("ChecksumType")), key
            row = next(r for r in report.rows if r["source"] == uri(source, obj.key))
            assert row["checksum"] == f"CRC32:{got['ChecksumType']}:{got['ChecksumCRC32']}"

        # WHEN it runs again
        world.emulator.reset_stats()
        again, name = world.run(solo_stack, document, f"{label}-again")
        # THEN nothing is copied: every pair is proven identical, at most by a HEAD pair each
        assert again.returncode == 0, f"{label} re-run failed:\n{again.stdout}\n{again.stderr}"
        report = support.read_report(world.s3, solo_stack, name)
        assert {r["status"] for r in report.rows} == {"skipped"}, report.rows
        assert report.summary["copied"] == 0 and report.summary["skipped_by_reason"] == {"identical": 3}
        requests = world.emulator.stats()["s3_requests"]
        assert not {op: n for op, n in requests.items()
                    if op in ("CopyObject", "UploadPartCopy", "CreateMultipartUpload")}, requests
        assert requests.get("HeadObject", 0) <= 2 * len(objects), requests
    expected = {(bucket, "out/" + o.key[len("in/v/"):]): o for bucket in (target, encrypted) for o in objects}
    support.assert_targets(world.s3, expected, [target, encrypted])
    support.assert_no_incomplete_uploads(world.s3, solo_stack, target, encrypted)


def test_a_corrupted_part_fails_its_object_and_never_keeps_a_concurrent_writers_objects(
        world: World, solo_stack: Stack) -> None:
    # GIVEN objects copied with overwrite "never": one whose part 2 S3 stores corrupted on every copy, one copied
    # whole and one split into chunks whose targets someone else writes after planning, and one plain copy
    corrupt = replace(rich("in/n/corrupt.bin", 10 * MiB, in_parts=5 * MiB), checksum="CRC32")
    raced, raced_split, plain = rich("in/n/raced.bin", 1000), rich("in/n/raced-split.bin", 13 * MiB), \
        rich("in/n/plain.bin", 2000)
    source, target = world.source(corrupt, raced, raced_split, plain), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/n/"},
                                       [{"file_types": ["*"], "s3_bucket": target, "s3_path": "out/"}],
                                       overwrite="never", max_payload_size_mb=12, max_failed_objects=1)
    theirs = {key: f"written by someone else: {key}".encode() for key in ("out/raced.bin", "out/raced-split.bin")}

    def write_theirs() -> None:
        for key, data in theirs.items():
            world.s3.put_object(Bucket=target, Key=key, Body=data)
        # The workers may go on (GetObject answered again); every copy of the corrupt object's part 2 is corrupted.
        world.emulator.set_faults({"s3": {"corrupt_parts": [{"bucket": target, "key_pattern": "out/corrupt.bin",
                                                             "part_number": 2}]}})

    # WHEN the config runs, the two targets written between planning and copying
    run, name = _after_planning(world, solo_stack, document, "never-raced", write_theirs)

    # THEN the run succeeds (one failure allowed): the corrupted object failed with a checksum error and nothing
    # is at its key; the raced ones are skipped as "exists" with the writer's bytes kept; the plain one is copied
    assert run.returncode == 0, f"run failed:\n{run.stdout}\n{run.stderr}"
    report = support.read_report(world.s3, solo_stack, name)
    rows = {row["source"]: row for row in report.rows}
    failed = rows[uri(source, corrupt.key)]
    assert failed["status"] == "failed" and failed["error"].startswith("ChecksumMismatch: "), failed
    for obj in (raced, raced_split):
        assert (rows[uri(source, obj.key)]["status"], rows[uri(source, obj.key)]["error"]) == ("skipped", "exists")
    assert (rows[uri(source, plain.key)]["status"], rows[uri(source, plain.key)]["verified_by"]) == (
        "copied", "checksum")
    for key, data in theirs.items():
        assert world.s3.get_object(Bucket=target, Key=key)["Body"].read() == data
    assert support.list_keys(world.s3, target) == ["out/plain.bin", "out/raced-split.bin", "out/raced.bin"]
    support.assert_copied(world.s3, plain, target, "out/plain.bin")
    support.assert_no_incomplete_uploads(world.s3, solo_stack, target)


def _after_planning(world: World, stack: Stack, document: dict[str, Any], label: str,
                    action: Any) -> tuple[support.CliRun, str]:
    """Run ``document`` and call ``action`` after the plan is written and before any worker copies (the gate of
    ``_replace_after_planning``: every GetObject answered SlowDown until ``action`` lifts it)."""
    world.emulator.set_faults({"s3": {"slow_down_fraction": 1.0, "operations": ["GetObject"]}})
    name = support.execution_name(label)
    index_key = stack.run_prefix(name) + "plan/index.json"
    started = time.monotonic()
    process = support.start_cli(world.endpoint, stack, document, name, world.work_dir)
    try:
        support.wait_until(lambda: _exists(world.s3, stack.manifest_bucket, index_key), timeout=60,
                           what="the plan")
        action()
    except BaseException:
        world.emulator.clear_faults()
        raise
    result = support.finish_cli(process, stack, name, started)
    world.emulator.clear_faults()
    return result, name
