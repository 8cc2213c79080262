"""The planner core (lambdas/planner.py) on moto's S3: listing, routing, splits, uploads, the plan files."""

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas import limits, manifest
from lambdas.errors import ConfigError, SourceNotFoundError
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.logs import JsonFormatter
from lambdas.models import CopyTask, PlanPointer, SourceObject
from lambdas.planner import plan_run
from lambdas.settings import Settings

NOW = "2024-05-01T12:00:00Z"
MANIFEST = "sfncopy-manifest"
BUCKETS = ("photos-src", "videos-src", "media-dst", "archive-dst", MANIFEST)


def document(options: dict[str, Any] | None = None, sources: Any = None) -> dict[str, Any]:
    return {"s3_copy_config": {
        "source_s3_config": sources or [{"s3_bucket": "photos-src", "s3_path": "in/"},
                                        {"s3_bucket": "videos-src", "s3_path": ""}],
        "target_s3_config": [
            {"file_types": ["jpg"], "s3_bucket": "media-dst", "s3_path": "images/"},
            {"file_types": ["png", "jpg"], "s3_bucket": "archive-dst", "s3_path": "all-images/"},
            {"file_types": ["mp4"], "s3_bucket": "media-dst", "s3_path": "video/"},
        ],
        "options": options or {},
    }}


def settings(**overrides: Any) -> Settings:
    return Settings(**{"manifest_bucket": MANIFEST, "manifest_prefix": "sfncopy/", "workers": 3, **overrides})


@pytest.fixture
def buckets(s3_client: Any) -> Any:
    for name in BUCKETS:
        s3_client.create_bucket(Bucket=name)
    return s3_client


@pytest.fixture
def planner_log() -> Iterator[list[logging.LogRecord]]:
    """The planner's log records (the JSON handler writes to stdout; this keeps them for the test)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("sfncopy.planner")
    # The CLI's in-process tests lower the "sfncopy" logger to WARNING (sfncopy.cli.route_library_logs); in
    # the same test process the planner's INFO lines would then never be made. This test wants them.
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def read_back(gateway: S3Gateway, pointer: PlanPointer):
    plan = manifest.read_plan(gateway, pointer.manifest)
    payloads = [manifest.read_payload(gateway, pointer.manifest, pid) for ids in pointer.workers for pid in ids]
    return plan, payloads, manifest.read_skipped(gateway, pointer.manifest)


def test_plans_a_paginated_listing_of_two_sources_for_three_targets(buckets, gateway, planner_log):
    # GIVEN 1,030 keys in one source (jpg, png, txt and a folder marker) and 3 mp4 in another
    for i in range(1000):
        buckets.put_object(Bucket="photos-src", Key=f"in/p/{i:04d}.jpg", Body=b"j" * (i % 7))
    for i in range(20):
        buckets.put_object(Bucket="photos-src", Key=f"in/p/{i:02d}.png", Body=b"png")
    for i in range(9):
        buckets.put_object(Bucket="photos-src", Key=f"in/notes/{i}.txt", Body=b"t")
    buckets.put_object(Bucket="photos-src", Key="in/p/", Body=b"")
    for name in ("a.mp4", "b.MP4", "c.mp4"):
        buckets.put_object(Bucket="videos-src", Key=f"clips/{name}", Body=b"video")
    # AND a target that already holds one identical copy and one of the same size but other content
    buckets.put_object(Bucket="media-dst", Key="images/p/0001.jpg", Body=b"j")
    buckets.put_object(Bucket="media-dst", Key="images/p/0002.jpg", Body=b"xx")

    # WHEN planning with 3 workers
    pointer = plan_run(document(), "run-1", settings(), gateway, NOW)

    # THEN every jpg goes to two targets, png to one, mp4 to one, minus the identical copy
    plan, payloads, skipped = read_back(gateway, pointer)
    tasks = [t for p in payloads for t in p.tasks]
    targets = Counter((t.target_bucket, t.target_key.split("/")[0]) for t in tasks)
    assert targets == {("media-dst", "images"): 999, ("archive-dst", "all-images"): 1020,
                       ("media-dst", "video"): 3}
    assert len({(t.target_bucket, t.target_key) for t in tasks}) == len(tasks) == pointer.copies == 2022
    assert ("media-dst", "images/p/0002.jpg") in {(t.target_bucket, t.target_key) for t in tasks}  # size alone
    assert {t.source_key for t in tasks if t.target_key == "video/clips/b.MP4"} == {"clips/b.MP4"}
    # AND skipped: the identical copy and the folder marker; the 9 txt are only counted as unmatched
    assert sorted((s.source_key, s.reason) for s in skipped) == [("in/p/", "folder marker"),
                                                                  ("in/p/0001.jpg", "identical")]
    assert plan.totals.objects_listed == 1033 and plan.totals.unmatched == 9
    assert plan.totals.skipped_by_reason == (("folder marker", 1), ("identical", 1))
    # AND the pointer is small, lists exactly 3 workers, and matches the index
    assert [list(w) for w in pointer.workers] == [list(w) for w in plan.worker_payloads]
    assert len(pointer.to_dict()["workers"]) == 3 and pointer.dry_run is False
    assert pointer.manifest.prefix == "sfncopy/runs/run-1/" and plan.created_at == NOW
    assert pointer.bytes == sum(t.size for t in tasks)
    # AND each worker's payloads are a JSON array of items in the manifest bucket (its Distributed Map's items),
    # whose key the pointer names: each item the payload's id, worker and the key of its file
    for worker, ids in enumerate(plan.worker_payloads):
        key = f"sfncopy/runs/run-1/plan/workers/{worker:05d}.json"
        assert pointer.to_dict()["workers"][worker]["items"] == key
        assert gateway.get_json(pointer.manifest.bucket, key) == [
            {"payload": pid, "worker": worker, "key": f"sfncopy/runs/run-1/plan/payloads/{pid:05d}.json"}
            for pid in ids]
    assert plan.skipped_files == ("plan/skipped.json",)
    # AND one structured summary line says what was planned
    lines = [json.loads(JsonFormatter().format(r)) for r in planner_log]
    summary = [line for line in lines if line["message"] == "plan written"]
    assert len(summary) == 1 and summary[0]["copies"] == 2022 and summary[0]["payloads"] == len(payloads)
    assert summary[0]["skipped_by_reason"] == {"folder marker": 1, "identical": 1}
    assert summary[0]["balance"] <= 1.05


def test_unmatched_objects_are_listed_when_asked(buckets, gateway):
    buckets.put_object(Bucket="photos-src", Key="in/readme.txt", Body=b"t")
    pointer = plan_run(document({"report_unmatched": True}), "run-u", settings(), gateway, NOW)
    plan, _, skipped = read_back(gateway, pointer)
    assert [(s.source_key, s.reason) for s in skipped] == [("in/readme.txt", "unmatched")]
    assert (plan.totals.unmatched, plan.totals.skipped, pointer.skipped) == (1, 0, 0)


def put_multipart(client: Any, bucket: str, key: str, parts: list[bytes], **extra: Any) -> str:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    etags = [client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
             for n, body in enumerate(parts, start=1)]
    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]})
    return done["ETag"].strip('"')


def copy_chunks(client: Any, tasks: list[CopyTask]) -> None:
    """What the workers do with chunk tasks, and the finalizer after them (stand-ins: not under test)."""
    parts = []
    for task in sorted(tasks, key=lambda t: t.first_part):
        for number in range(task.first_part, task.last_part + 1):
            first = (number - 1) * task.part_size
            last = min(number * task.part_size, task.size) - 1
            resp = client.upload_part_copy(Bucket=task.target_bucket, Key=task.target_key, UploadId=task.upload_id,
                                           PartNumber=number, CopySource={"Bucket": task.source_bucket,
                                                                          "Key": task.source_key},
                                           CopySourceRange=f"bytes={first}-{last}")
            parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
    client.complete_multipart_upload(Bucket=tasks[0].target_bucket, Key=tasks[0].target_key,
                                     UploadId=tasks[0].upload_id, MultipartUpload={"Parts": parts})


def test_split_objects_get_an_upload_carrying_the_source_headers_metadata_and_tags(buckets, gateway):
    # GIVEN a 12 MiB single-part object and an 11 MiB multipart one (5 + 5 + 1 MiB), both with
    # headers, metadata and tags, and a payload cap of 5 MiB
    body = bytes(range(256)) * (12 * MiB // 256)
    buckets.put_object(Bucket="videos-src", Key="one.mp4", Body=body, ContentType="video/mp4",
                       CacheControl="max-age=60", Metadata={"owner": "ana"}, Tagging="team=media&keep=yes")
    parts = [b"a" * 5 * MiB, b"b" * 5 * MiB, b"c" * MiB]
    source_etag = put_multipart(buckets, "videos-src", "parts.mp4", parts, ContentType="video/mp4",
                                Metadata={"owner": "bo"}, Tagging="team=edit")
    settings_ = settings(max_payload_size_mb=5, workers=2)

    # WHEN planning
    pointer = plan_run(document({"max_payload_size_mb": 5}), "run-split", settings_, gateway, NOW)

    # THEN both are split into chunks of at most 5 MiB, each with one upload the planner started
    plan, payloads, _ = read_back(gateway, pointer)
    splits = {s.source_key: s for s in plan.splits}
    assert set(splits) == {"one.mp4", "parts.mp4"}
    assert (splits["parts.mp4"].part_size, splits["parts.mp4"].part_count) == (5 * MiB, 3)  # the source's layout
    uploads = {u["Key"]: u["UploadId"] for u in buckets.list_multipart_uploads(Bucket="media-dst")["Uploads"]}
    assert uploads == {"video/one.mp4": splits["one.mp4"].upload_id, "video/parts.mp4": splits["parts.mp4"].upload_id}
    chunks = [t for p in payloads for t in p.tasks]
    assert all(t.method == "chunk" and t.nbytes <= 5 * MiB for t in chunks)
    assert all(p.nbytes <= 5 * MiB for p in payloads)

    # WHEN the chunks are copied and the uploads completed
    for key in ("one.mp4", "parts.mp4"):
        copy_chunks(buckets, [t for t in chunks if t.source_key == key])

    # THEN the targets carry the sources' bytes, headers, metadata and tags
    one = buckets.get_object(Bucket="media-dst", Key="video/one.mp4")
    assert one["Body"].read() == body
    assert (one["ContentType"], one["CacheControl"], one["Metadata"]) == ("video/mp4", "max-age=60", {"owner": "ana"})
    tags = buckets.get_object_tagging(Bucket="media-dst", Key="video/one.mp4")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "media", "keep": "yes"}
    mirrored = buckets.head_object(Bucket="media-dst", Key="video/parts.mp4")
    assert (mirrored["ContentType"], mirrored["Metadata"]) == ("video/mp4", {"owner": "bo"})
    # AND the multipart source's layout was mirrored, so the copy has the same ETag (provably identical)
    assert mirrored["ETag"].strip('"') == source_etag


def test_targets_whose_etag_cannot_be_compared_are_proven_by_checksum(buckets, gateway):
    # GIVEN a source uploaded in parts (multipart ETag) with CRC32, and its earlier copy made in one request
    # (MD5 ETag, same CRC32); a second one whose target has the same size but other bytes; and a small
    # object whose target differs from it the same way
    parts = [b"a" * 5 * MiB, b"b" * 5 * MiB, b"c" * MiB]
    put_multipart(buckets, "videos-src", "same.mp4", parts, ChecksumAlgorithm="CRC32")
    buckets.copy_object(Bucket="media-dst", Key="video/same.mp4",
                        CopySource={"Bucket": "videos-src", "Key": "same.mp4"})
    put_multipart(buckets, "videos-src", "other.mp4", parts, ChecksumAlgorithm="CRC32")
    buckets.put_object(Bucket="media-dst", Key="video/other.mp4", Body=b"z" * 11 * MiB, ChecksumAlgorithm="CRC32")
    put_multipart(buckets, "photos-src", "in/a.jpg", [b"j" * 1000], ChecksumAlgorithm="CRC32")
    buckets.copy_object(Bucket="media-dst", Key="images/a.jpg", CopySource={"Bucket": "photos-src", "Key": "in/a.jpg"})

    # WHEN planning with a 5 MiB payload cap (the videos are split, so the planner compares them itself)
    pointer = plan_run(document({"max_payload_size_mb": 5}), "run-cmp", settings(workers=2), gateway, NOW)

    # THEN the identical video is skipped with its proof, and no upload is started for it
    plan, payloads, skipped = read_back(gateway, pointer)
    assert [(s.source_key, s.reason) for s in skipped] == [("same.mp4", "identical: equal CRC32 checksums")]
    assert [s.source_key for s in plan.splits] == ["other.mp4"]
    uploads = buckets.list_multipart_uploads(Bucket="media-dst")["Uploads"]
    assert [u["Key"] for u in uploads] == ["video/other.mp4"]
    assert dict(plan.totals.skipped_by_reason) == {"identical": 1}
    # AND the small object's copies carry the comparison only where a target exists
    compares = {(t.target_bucket, t.compare_checksum) for p in payloads for t in p.tasks if t.source_key == "in/a.jpg"}
    assert compares == {("media-dst", "CRC32"), ("archive-dst", "")}


def test_dry_run_writes_the_plan_and_starts_no_upload(buckets, gateway):
    buckets.put_object(Bucket="videos-src", Key="big.mp4", Body=b"v" * 11 * MiB)
    buckets.put_object(Bucket="photos-src", Key="in/a.jpg", Body=b"j")
    options = {"dry_run": True, "max_payload_size_mb": 5}
    pointer = plan_run(document(options), "run-dry", settings(), gateway, NOW)
    plan, payloads, _ = read_back(gateway, pointer)
    assert pointer.dry_run is True and pointer.copies == 3
    assert len(plan.splits) == 1 and plan.splits[0].upload_id == ""
    assert {t.upload_id for p in payloads for t in p.tasks if t.method == "chunk"} == {""}
    assert "Uploads" not in buckets.list_multipart_uploads(Bucket="media-dst")


def test_uploads_are_aborted_when_the_plan_cannot_be_written(buckets, gateway):
    # GIVEN an object to split and a manifest bucket that does not exist
    buckets.put_object(Bucket="videos-src", Key="big.mp4", Body=b"v" * 11 * MiB)
    # WHEN planning fails at writing the plan
    with pytest.raises(Exception, match="NoSuchBucket"):
        plan_run(document({"max_payload_size_mb": 5}), "run-x", settings(manifest_bucket="gone-bucket"), gateway, NOW)
    # THEN the upload it had started is aborted: nothing is left behind
    assert "Uploads" not in buckets.list_multipart_uploads(Bucket="media-dst")


def test_invalid_config_and_disallowed_buckets_fail_before_any_write(buckets, gateway):
    with pytest.raises(ConfigError, match=r"s3_copy_config.target_s3_config"):
        plan_run({"s3_copy_config": {"source_s3_config": {"s3_bucket": "photos-src"}}}, "run-c", settings(),
                 gateway, NOW)
    with pytest.raises(ConfigError, match=r"s3_copy_config.target_s3_config\[1\].s3_bucket"):
        plan_run(document(), "run-c", settings(target_buckets=("media-dst",)), gateway, NOW)
    assert "Contents" not in buckets.list_objects_v2(Bucket=MANIFEST)


def test_missing_source_bucket_is_named_by_its_path(buckets, gateway):
    sources = [{"s3_bucket": "photos-src"}, {"s3_bucket": "no-such-source"}]
    with pytest.raises(SourceNotFoundError) as caught:
        plan_run(document(sources=sources), "run-s", settings(), gateway, NOW)
    assert "s3_copy_config.source_s3_config[1].s3_bucket: bucket 'no-such-source' does not exist" in str(caught.value)
    assert "Contents" not in buckets.list_objects_v2(Bucket=MANIFEST)


def test_missing_target_bucket_is_a_config_error(buckets, gateway):
    doc = document()
    doc["s3_copy_config"]["target_s3_config"][1]["s3_bucket"] = "no-such-target"
    with pytest.raises(ConfigError, match=r"target_s3_config\[1\].s3_bucket: bucket 'no-such-target' does not exist"):
        plan_run(doc, "run-t", settings(), gateway, NOW)


class SyntheticGateway(S3Gateway):
    """No network: the source listing is synthetic and the plan files land in a dict."""

    def __init__(self, objects: int) -> None:
        super().__init__(client=None)
        self.objects = objects
        self.files: dict[str, Any] = {}

    def location_status(self, bucket: str, prefix: str) -> str:
        return "ok"

    def list_objects(self, bucket: str, prefix: str) -> Iterator[SourceObject]:
        if bucket != "photos-src":
            return
        for i in range(self.objects):
            yield SourceObject(bucket, f"in/{i // 1000:04d}/{i:07d}.jpg", 1000 + i % 5000, f"{i:032x}")

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.files[key] = json.loads(body)  # what S3 would hold

    def get_json_or_none(self, bucket: str, key: str) -> Any:
        return self.files.get(key)


def test_a_100000_object_plan_keeps_the_state_payload_small():
    # GIVEN 100,000 listed objects and 16 workers (no network)
    doc = {"s3_copy_config": {"source_s3_config": {"s3_bucket": "photos-src", "s3_path": "in/"},
                              "target_s3_config": [{"file_types": ["jpg"], "s3_bucket": "media-dst"}],
                              "options": {"overwrite": "always"}}}
    gateway = SyntheticGateway(100_000)
    # WHEN planning
    pointer = plan_run(doc, "run-big", settings(workers=16), gateway, NOW)
    # THEN all objects are planned, in payloads within the caps
    plan = manifest.read_plan(gateway, pointer.manifest)
    payloads = [manifest.read_payload(gateway, pointer.manifest, pid) for ids in pointer.workers for pid in ids]
    assert pointer.copies == plan.totals.copies == sum(len(p.tasks) for p in payloads) == 100_000
    assert len({t.source_key for p in payloads for t in p.tasks}) == 100_000
    assert all(len(p.tasks) <= limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD for p in payloads)
    # AND the state payload is far below Step Functions' 256 KiB
    size = len(json.dumps(pointer.to_dict()).encode())
    assert size < limits.MAX_STATE_PAYLOAD_BYTES // 64, size
    assert len(pointer.workers) == 16


def test_the_plan_handler_plans_one_list_per_branch_the_machine_passes(buckets, monkeypatch):
    # GIVEN the planner Lambda's environment, which does not say how many branches the machine has
    from lambdas import handlers

    monkeypatch.setenv("SFNCOPY_MANIFEST_BUCKET", MANIFEST)
    monkeypatch.delenv("SFNCOPY_WORKERS", raising=False)
    for i in range(8):
        buckets.put_object(Bucket="videos-src", Key=f"{i}.mp4", Body=b"v" * (i + 1))

    # WHEN the Plan state invokes it with the machine's branch count
    answer = handlers.plan({"run_id": "run-h", "workers": 5, "input": document()}, None)

    # THEN the plan has one payload list per branch (the Parallel state reads worker0..worker4)
    assert len(answer["workers"]) == 5


def test_a_location_the_role_may_not_list_is_named_with_both_fixes(buckets, gateway):
    # GIVEN S3 denies the listing of a source location (a bucket of another account, or a path outside the
    # prefix the stack's role may list)
    from botocore.stub import Stubber

    stub = Stubber(gateway.client)
    stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403,
                          expected_params={"Bucket": "photos-src", "Prefix": "in/", "MaxKeys": 1})
    # WHEN planning  THEN the error names the field, the location and both ways to fix it
    with stub, pytest.raises(SourceNotFoundError) as caught:
        plan_run(document(), "run-d", settings(), gateway, NOW)
    message = str(caught.value)
    assert "s3_copy_config.source_s3_config[0].s3_bucket: this stack may not read s3://photos-src/in/" in message
    assert "`sfncopy policy`" in message and "source_buckets" in message


def test_locations_are_checked_by_a_listing_under_their_prefix_not_head_bucket(buckets, gateway):
    # HeadBucket is authorised as s3:ListBucket without s3:prefix: a role whose ListBucket is conditioned
    # on its prefix is denied it. The planner lists one key under the configured prefix instead.
    from botocore.stub import Stubber

    stub = Stubber(gateway.client)
    stub.add_response("list_objects_v2", {"KeyCount": 0}, {"Bucket": "b", "Prefix": "in/", "MaxKeys": 1})
    stub.add_client_error("list_objects_v2", "NoSuchBucket", "The specified bucket does not exist", 404,
                          expected_params={"Bucket": "gone", "Prefix": "", "MaxKeys": 1})
    with stub:
        assert gateway.location_status("b", "in/") == "ok"
        assert gateway.location_status("gone", "") == "missing"
    stub.assert_no_pending_responses()
