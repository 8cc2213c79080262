"""Cross-account copies on moto's S3: the planner, the worker, the finalizer and cleanup send each bucket's
expected owner and payer with every request to it and the ACL with every write; a copy with ``acl`` leaves
the bucket owner's grant; a bucket that is not its expected owner's fails the objects with AccessDenied and a
clear reason, leaving no multipart upload.

moto ignores ExpectedBucketOwner, so ``owner_check`` answers as S3 does (Amazon S3 user guide, "Verifying
bucket ownership with bucket owner condition": a request whose expected owner is not the bucket's fails with
403 Access Denied) for the account moto keeps every bucket in. What each request carried is recorded at the
client (``requests``), as botocore serialises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from lambdas import errors, manifest
from lambdas.cleanup import clean_up
from lambdas.deadline import Deadline
from lambdas.finalizer import finalize
from lambdas.gateway import S3Gateway
from lambdas.limits import MiB
from lambdas.models import CopyConfig, CopyOptions, PayloadTask, PlanPointer, SourceConfig, TargetConfig
from lambdas.planner import plan_run
from lambdas.settings import Settings
from lambdas.worker import copy_payload
from tests.functional.worker_helpers import DST, MANIFEST, SRC, data, make_buckets, settings, task_for, write_run

MOTO_ACCOUNT = "123456789012"  # moto keeps every bucket in this account
STRANGER = "999988887777"
ACL = "bucket-owner-full-control"
NOW = "2026-01-01T00:00:00Z"
Request = tuple[str, dict[str, Any]]  # (operation, the parameters botocore serialised)


@pytest.fixture
def client(s3_client: Any) -> Any:
    make_buckets(s3_client)
    return s3_client


@pytest.fixture
def requests(client: Any) -> list[Request]:
    """Every S3 request the client sends from here on, with its parameters."""
    sent: list[Request] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, dict(params)))

    client.meta.events.register("before-parameter-build.s3", record)
    return sent


@pytest.fixture
def owner_check(client: Any) -> Iterator[None]:
    """S3's bucket owner condition, for moto: 403 AccessDenied when a request's expected owner (or its copy
    source's) is not the account that owns the buckets."""
    def check(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        headers = params["headers"]
        named = {headers.get("x-amz-expected-bucket-owner"), headers.get("x-amz-source-expected-bucket-owner")}
        if named - {None, MOTO_ACCOUNT}:
            return AWSResponse(params["url"], 403, {}, None), {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    client.meta.events.register_first("before-call.s3", check)
    yield
    client.meta.events.unregister("before-call.s3", check)


def document(source_owner: str = MOTO_ACCOUNT, target_owner: str = MOTO_ACCOUNT, acl: str | None = ACL) -> Any:
    options = {"acl": acl} if acl else {}
    return {"s3_copy_config": {
        "source_s3_config": {"s3_bucket": SRC, "s3_path": "in/", "expected_bucket_owner": source_owner,
                             "request_payer": "requester"},
        "target_s3_config": [{"file_types": ["*"], "s3_bucket": DST, "s3_path": "out/",
                              "expected_bucket_owner": target_owner}],
        "options": options}}


def run_settings(object_acl: str = ACL) -> Settings:
    # One worker: only the payload cap splits objects (a 20 MiB object into chunks of at most 16 MiB).
    return Settings(manifest_bucket=MANIFEST, workers=1, copy_cutoff=5 * MiB, part_size=5 * MiB,
                    max_payload_size_mb=16, worker_threads=2, object_acl=object_acl)


def put_sources(client: Any) -> dict[str, bytes]:
    """A small object (CopyObject), a 7 MiB one (the worker's multipart copy) and a 20 MiB one (split)."""
    bodies = {"in/small.txt": b"hello", "in/medium.bin": data(7 * MiB, seed=2), "in/large.bin": data(20 * MiB, seed=3)}
    for key, body in bodies.items():
        client.put_object(Bucket=SRC, Key=key, Body=body)
    return bodies


def run_everything(gateway: S3Gateway, settings: Settings, doc: Any) -> tuple[PlanPointer, Any]:
    """Plan, copy every payload to the end, finalize: what the state machine does."""
    pointer = plan_run(doc, "cross-1", settings, gateway, NOW)
    for worker, payloads in enumerate(pointer.workers):
        for payload in payloads:
            task = PayloadTask(run_id=pointer.run_id, manifest=pointer.manifest, worker=worker, payload=payload)
            while not task.done:
                task = copy_payload(task, settings, gateway, Deadline.never())
    return pointer, finalize(pointer, settings, gateway)


def bucket_of(operation: str, params: dict[str, Any]) -> str:
    return str(params["Bucket"])


def to(requests: list[Request], bucket: str, where: Callable[[str], bool] = lambda op: True) -> list[Request]:
    return [(op, p) for op, p in requests if bucket_of(op, p) == bucket and where(op)]


# --- every request carries its bucket's conditions, every write the ACL ----------------------------------
def test_every_request_to_a_source_or_target_carries_its_owner_payer_and_acl(client, gateway, requests):
    # GIVEN a source and a target with expected owners, a Requester Pays source, an ACL, and three sizes
    bodies = put_sources(client)
    requests.clear()
    # WHEN the whole run goes through (planner, worker, finalizer) and cleanup looks for leftovers
    pointer, summary = run_everything(gateway, run_settings(), document())
    clean_up(pointer.run_id, {"Error": "Checked"}, run_settings(), gateway)
    sent = list(requests)  # what sfncopy sent (the checks below read too)
    # THEN everything arrived
    assert (summary.copied, summary.failed) == (3, 0)
    for key, body in bodies.items():
        target = client.get_object(Bucket=DST, Key="out/" + key.removeprefix("in/"))
        assert target["Body"].read() == body
    # AND every request to the source named its owner and the payer
    source = to(sent, SRC)
    assert {op for op, _ in source} >= {"ListObjectsV2", "HeadObject", "GetObjectTagging"}
    assert [(op, p.get("ExpectedBucketOwner"), p.get("RequestPayer")) for op, p in source] == [
        (op, MOTO_ACCOUNT, "requester") for op, _ in source]
    # AND every request to the target named its owner, each copy also the source's owner and the payer
    target = to(sent, DST)
    assert {op for op, _ in target} >= {"ListObjectsV2", "CopyObject", "CreateMultipartUpload", "UploadPartCopy",
                                        "CompleteMultipartUpload", "ListParts", "ListMultipartUploads"}
    assert [(op, p.get("ExpectedBucketOwner")) for op, p in target] == [(op, MOTO_ACCOUNT) for op, _ in target]
    copies = to(sent, DST, lambda op: op in ("CopyObject", "UploadPartCopy"))
    assert copies and all((p["ExpectedSourceBucketOwner"], p["RequestPayer"]) == (MOTO_ACCOUNT, "requester")
                          for _, p in copies)
    # AND every write of an object (the copy, and the worker's and the planner's uploads) set the ACL
    writes = to(sent, DST, lambda op: op in ("CopyObject", "CreateMultipartUpload"))
    assert len(writes) == 3 and all(p["ACL"] == ACL for _, p in writes)
    # AND the manifest location, the stack's own, got none of it
    assert not any({"ExpectedBucketOwner", "RequestPayer", "ACL"} & set(p) for _, p in to(sent, MANIFEST))


def test_a_copy_with_acl_leaves_the_bucket_owner_full_control(client, gateway):
    # GIVEN a run with options.acl bucket-owner-full-control over whole, multipart and split copies
    put_sources(client)
    run_everything(gateway, run_settings(), document())
    owner = client.get_bucket_acl(Bucket=DST)["Owner"]["ID"]
    # THEN each target grants the bucket's owner FULL_CONTROL (on moto the writer is the bucket's owner, so
    # the grant is the same as S3's default would give; the test above proves the ACL was asked for)
    for key in ("out/small.txt", "out/medium.bin", "out/large.bin"):
        grants = client.get_object_acl(Bucket=DST, Key=key)["Grants"]
        assert {"Grantee": {"ID": owner, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"} in \
            [{"Grantee": {k: g["Grantee"][k] for k in ("ID", "Type")}, "Permission": g["Permission"]}
             for g in grants], key


# --- the planner refuses what cannot work before anything starts ------------------------------------------
def test_a_target_owned_by_another_account_is_refused_at_planning(client, gateway, owner_check):
    put_sources(client)
    with pytest.raises(errors.ConfigError) as info:
        plan_run(document(target_owner=STRANGER), "cross-2", run_settings(), gateway, NOW)
    (problem,) = info.value.problems
    assert problem.startswith(f"s3_copy_config.target_s3_config[0].s3_bucket: this stack may not write s3://{DST}/out/ "
                              f"(listing it was denied): the bucket is not owned by account {STRANGER} (its "
                              "expected_bucket_owner), or ")
    assert client.list_multipart_uploads(Bucket=DST).get("Uploads", []) == []


def test_a_source_owned_by_another_account_is_refused_at_planning(client, gateway, owner_check):
    put_sources(client)
    with pytest.raises(errors.SourceNotFoundError, match=f"the bucket is not owned by account {STRANGER}"):
        plan_run(document(source_owner=STRANGER), "cross-3", run_settings(), gateway, NOW)


def test_an_acl_the_stack_may_not_set_is_refused_at_planning_naming_the_env_variable(client, gateway):
    put_sources(client)
    with pytest.raises(errors.ConfigError) as info:
        plan_run(document(), "cross-4", run_settings(object_acl=""), gateway, NOW)
    assert info.value.problems == [
        f's3_copy_config.options.acl: this stack may not set object ACLs ("{ACL}"): its roles have no '
        f"s3:PutObjectAcl; set object_acl={ACL} in envs/<ENV>-env.sh and redeploy (it grants the roles "
        's3:PutObjectAcl), or remove "acl"']


# --- a bucket that changed hands after planning: the objects fail, nothing is left open --------------------
@pytest.mark.parametrize("stranger", ["source", "target"])
def test_objects_of_a_bucket_not_owned_by_its_expected_owner_fail_with_access_denied(client, gateway, owner_check,
                                                                                   stranger):
    # GIVEN a planned run (one CopyObject, one multipart copy) whose config expects another owner for one bucket
    client.put_object(Bucket=SRC, Key="small", Body=b"x" * 100)
    client.put_object(Bucket=SRC, Key="big", Body=data(6 * MiB))
    owners = {"source": (STRANGER, ""), "target": ("", STRANGER)}[stranger]
    config = CopyConfig(sources=(SourceConfig(SRC, "", expected_bucket_owner=owners[0]),),
                        targets=(TargetConfig(0, DST, "", ("*",), expected_bucket_owner=owners[1]),),
                        options=CopyOptions(acl=ACL))
    (task,) = write_run(gateway, [[task_for(client, 0, "small"), task_for(client, 1, "big")]], config=config)
    # WHEN the worker copies it
    done = copy_payload(task, settings(), gateway, Deadline.never())
    # THEN both objects failed as AccessDenied, saying which owner was expected, and the payload finished
    assert (done.done, done.copied, done.failed) == (True, 0, 2)
    checkpoint = manifest.read_checkpoint(gateway, task.manifest, task.payload)
    assert checkpoint is not None
    bucket = SRC if stranger == "source" else DST
    for result in checkpoint.results:
        assert result.error.startswith("AccessDenied: "), result.error
        assert result.error.endswith(f"(S3 answers AccessDenied also when a bucket is not owned by its "
                                     f"expected_bucket_owner, {bucket}: {STRANGER})"), result.error
    # AND no multipart upload was left in the target, and nothing was written there
    assert client.list_multipart_uploads(Bucket=DST).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=DST).get("KeyCount") == 0
    # AND the finalizer reports both as failed instead of failing on the bucket it may not list
    pointer = PlanPointer(run_id=task.run_id, manifest=task.manifest, dry_run=False, workers=((0,),), copies=2,
                          bytes=100 + 6 * MiB, skipped=0)
    with pytest.raises(errors.TooManyFailedObjectsError):
        finalize(pointer, Settings(manifest_bucket=MANIFEST), gateway)
    report = gateway.get_json(MANIFEST, manifest.key(task.manifest, manifest.REPORT_JSON))
    assert (report["copied"], report["failed"]) == (0, 2)
    rows = client.get_object(Bucket=MANIFEST, Key=manifest.key(task.manifest, manifest.REPORT_CSV))["Body"].read()
    assert rows.decode().count(f"expected_bucket_owner, {bucket}: {STRANGER}") == 2
