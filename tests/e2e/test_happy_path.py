"""The user's path end to end: ``sfncopy start-execution CONFIG --env local --wait`` against the stack that
``scripts/deploy.sh local`` deployed into the emulator, with several configs; every target object checked
byte for byte with its metadata, content headers and tags, and the report read back."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import MiB, Obj, Stack, rich, uri

pytestmark = pytest.mark.e2e


def test_original_format_config_copies_by_file_type_with_headers_tags_and_a_split_object(
        world: World, main_stack: Stack) -> None:
    # GIVEN a source with videos, images (keys with spaces and unicode), an unmatched file, a folder
    # marker, and a video uploaded in parts that is larger than the copy cutoff (split across workers)
    objects = [
        rich("in/source/clips/intro.mp4", 70_000, "video/mp4"),
        rich("in/source/clips/big.mp4", 21 * MiB, "video/mp4", in_parts=5 * MiB),
        rich("in/source/photos/summer holiday.jpg", 3_000, "image/jpeg"),
        rich("in/source/photos/été/straße ü.png", 1, "image/png"),
        rich("in/source/photos/empty.png", 0, "image/png"),
        rich("in/source/notes/readme.txt", 500, "text/plain"),
        Obj("in/source/photos/", b""),
    ]
    source = world.source(*objects)
    target = world.target()
    document = support.config_document(
        {"s3_bucket": source, "s3_path": "in/source/"},
        [{"file_types": ["mp4"], "s3_bucket": target, "s3_path": "out/mp4/"},
         {"file_types": ["jpg", "png"], "s3_bucket": target, "s3_path": "out/images/"}])

    # WHEN the user starts it with the CLI and waits
    run, name = world.run(main_stack, document, "happy-original")

    # THEN it succeeds, and every matched object is in its target, byte for byte, with headers and tags
    assert run.returncode == 0, run.stdout + run.stderr
    by_key = {o.key: o for o in objects}
    expected = {
        (target, "out/mp4/clips/intro.mp4"): by_key["in/source/clips/intro.mp4"],
        (target, "out/mp4/clips/big.mp4"): by_key["in/source/clips/big.mp4"],
        (target, "out/images/photos/summer holiday.jpg"): by_key["in/source/photos/summer holiday.jpg"],
        (target, "out/images/photos/été/straße ü.png"): by_key["in/source/photos/été/straße ü.png"],
        (target, "out/images/photos/empty.png"): by_key["in/source/photos/empty.png"],
    }
    support.assert_targets(world.s3, expected, [target])
    # a copy of an object uploaded in parts mirrors its part layout, hence its ETag
    big_source = world.s3.head_object(Bucket=source, Key="in/source/clips/big.mp4")["ETag"]
    assert world.s3.head_object(Bucket=target, Key="out/mp4/clips/big.mp4")["ETag"] == big_source
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)

    # AND the report lists each copy once, copied, and counts the unmatched file and the folder marker
    report = support.read_report(world.s3, main_stack, name)
    statuses = report.statuses()
    for bucket, key in expected:
        assert statuses[uri(bucket, key)] == "copied"
    assert report.summary["status"] == "succeeded"
    assert report.summary["counts"]["copied"] == len(expected)
    assert report.summary["counts"]["failed"] == 0
    assert report.summary["bytes_copied"] == sum(len(o.body) for o in expected.values())
    assert report.summary["unmatched"] == 1
    assert report.summary["skipped_by_reason"] == {"folder marker": 1}
    big = report.by_source()[uri(source, "in/source/clips/big.mp4")][0]
    assert big["method"] in ("multipart", "multipart-split") and int(big["parts"]) == 5
    # AND the CLI printed the summary
    assert f"run {name}: succeeded ({len(expected)} copied, 1 skipped, 0 failed)" in run.stdout


def test_multi_source_filters_flatten_and_options(world: World, main_stack: Stack) -> None:
    # GIVEN two sources (prefix ending mid-name) and targets with include/exclude, size bounds and flatten
    eu = [rich("in/app/2025-01/a.log", 100, "text/plain"), rich("in/app/2025-02/b.gz", 5_000, "application/gzip"),
          rich("in/app/2025-02/skip.tmp.log", 10, "text/plain"), rich("in/app/2024-12/old.log", 10, "text/plain")]
    us = [rich("in/app/2025-01/c.log", 2_000_000, "text/plain"), rich("in/app/2025-03/d.log", 300, "text/plain")]
    source_eu, source_us = world.source(*eu), world.source(*us)
    archive, small = world.target(), world.target()
    document = support.config_document(
        [{"s3_bucket": source_eu, "s3_path": "in/app/2025-"}, {"s3_bucket": source_us, "s3_path": "in/app/2025-"}],
        [{"file_types": ["gz", "log"], "s3_bucket": archive, "s3_path": "out/app/", "exclude": ["*.tmp.log"]},
         {"file_types": ["*"], "s3_bucket": small, "s3_path": "out/flat", "flatten": True, "max_size": 1_000,
          "include": ["01/*", "03/*"]}],
        overwrite="never", storage_class="STANDARD_IA", sse="AES256", preserve_tags=False)

    # WHEN
    run, name = world.run(main_stack, document, "happy-multi")

    # THEN
    assert run.returncode == 0, run.stdout + run.stderr
    untagged = {o.key: Obj(o.key, o.body, o.content_type, o.metadata, {}, o.cache_control,
                           o.content_disposition, o.content_language) for o in [*eu, *us]}
    expected = {
        (archive, "out/app/01/a.log"): untagged["in/app/2025-01/a.log"],
        (archive, "out/app/02/b.gz"): untagged["in/app/2025-02/b.gz"],
        (archive, "out/app/01/c.log"): untagged["in/app/2025-01/c.log"],
        (archive, "out/app/03/d.log"): untagged["in/app/2025-03/d.log"],
        (small, "out/flat/a.log"): untagged["in/app/2025-01/a.log"],
        (small, "out/flat/d.log"): untagged["in/app/2025-03/d.log"],
    }
    support.assert_targets(world.s3, expected, [archive, small])
    for bucket, key in expected:
        head = world.s3.head_object(Bucket=bucket, Key=key)
        assert head.get("StorageClass") == "STANDARD_IA", (bucket, key, head.get("StorageClass"))
        assert head.get("ServerSideEncryption") == "AES256", (bucket, key)
    support.assert_no_incomplete_uploads(world.s3, main_stack, archive, small)
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["counts"]["copied"] == len(expected)
    assert {r["target"] for r in report.rows if r["status"] == "copied"} == {uri(b, k) for b, k in expected}


def test_overwrite_never_keeps_existing_targets_and_if_different_replaces_changed_ones(
        world: World, main_stack: Stack) -> None:
    # GIVEN a target that already holds one object of the source with other bytes
    objects = [rich(f"in/docs/{i}.txt", 1_000 + i, "text/plain") for i in range(3)]
    source, target = world.source(*objects), world.target()
    world.s3.put_object(Bucket=target, Key="out/docs/0.txt", Body=b"older")
    document = support.config_document({"s3_bucket": source, "s3_path": "in/docs/"},
                                       [{"file_types": ["txt"], "s3_bucket": target, "s3_path": "out/docs/"}],
                                       overwrite="never")

    # WHEN copying with overwrite "never"
    run, name = world.run(main_stack, document, "happy-never")

    # THEN the existing object is kept and reported as skipped "exists"; the others are copied
    assert run.returncode == 0, run.stdout + run.stderr
    assert world.s3.get_object(Bucket=target, Key="out/docs/0.txt")["Body"].read() == b"older"
    for obj in objects[1:]:
        support.assert_copied(world.s3, obj, target, "out/" + obj.key[len("in/"):])
    rows = support.read_report(world.s3, main_stack, name).statuses()
    assert rows[uri(target, "out/docs/0.txt")] == "skipped"

    # WHEN copying again with the default overwrite ("if-different")
    del document["s3_copy_config"]["options"]
    run, name = world.run(main_stack, document, "happy-ifdiff")

    # THEN only the different object is copied; the identical ones are skipped
    assert run.returncode == 0, run.stdout + run.stderr
    support.assert_targets(world.s3, {(target, "out/" + o.key[len("in/"):]): o for o in objects}, [target])
    report = support.read_report(world.s3, main_stack, name)
    assert report.statuses() == {uri(target, "out/docs/0.txt"): "copied", uri(target, "out/docs/1.txt"): "skipped",
                                 uri(target, "out/docs/2.txt"): "skipped"}
    assert report.summary["skipped_by_reason"] == {"identical": 2}


def test_dry_run_writes_nothing_and_reports_the_plan(world: World, main_stack: Stack) -> None:
    # GIVEN
    objects = [rich(f"in/{i}.csv", 10 + i, "text/csv") for i in range(4)]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/"},
                                       [{"file_types": ["csv"], "s3_bucket": target, "s3_path": "out/"}],
                                       dry_run=True)

    # WHEN
    run, name = world.run(main_stack, document, "happy-dry")

    # THEN nothing is written and every object is "planned" in the report
    assert run.returncode == 0, run.stdout + run.stderr
    assert support.list_keys(world.s3, target) == []
    report = support.read_report(world.s3, main_stack, name)
    assert report.summary["status"] == "dry-run"
    assert report.statuses() == {uri(target, f"out/{i}.csv"): "planned" for i in range(4)}


def test_report_command_prints_the_report_and_saves_the_csv(world: World, main_stack: Stack) -> None:
    # GIVEN a finished run
    objects = [rich("in/r/a.json", 10, "application/json"), rich("in/r/b.json", 20, "application/json")]
    source, target = world.source(*objects), world.target()
    document = support.config_document({"s3_bucket": source, "s3_path": "in/r/"},
                                       [{"file_types": ["json"], "s3_bucket": target, "s3_path": "out/"}])
    run, name = world.run(main_stack, document, "happy-report")
    assert run.returncode == 0, run.stdout + run.stderr

    # WHEN the user asks for its report with the CSV
    csv_path = world.work_dir / "report.csv"
    done = subprocess.run([*support.CLI, "report", run.arn, "--env", support.ENV, "--csv", str(csv_path)],
                          cwd=support.ROOT, env=support.process_environment(world.endpoint, main_stack.spec),
                          capture_output=True, text=True, timeout=60, check=False)

    # THEN it prints the summary and saves report.csv as the finalizer wrote it
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {name}: succeeded (2 copied, 0 failed)" in done.stdout
    report_csv = support.read_text(world.s3, f"s3://{main_stack.manifest_bucket}/{main_stack.run_prefix(name)}"
                                             "report.csv")
    assert csv_path.read_bytes() == report_csv.encode("utf-8")

    # AND `status` shows the finished run with its progress, and `status --watch` returns at once with the summary
    env = support.process_environment(world.endpoint, main_stack.spec)
    shown = subprocess.run([*support.CLI, "status", run.arn, "--env", support.ENV], cwd=support.ROOT, env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"{name}: SUCCEEDED" in shown.stdout and "2/2 objects" in shown.stdout
    watched = subprocess.run([*support.CLI, "status", run.arn, "--env", support.ENV, "--watch"], cwd=support.ROOT,
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert f"run {name}: succeeded (2 copied, 0 failed)" in watched.stdout
