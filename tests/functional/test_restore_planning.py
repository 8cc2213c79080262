"""options.restore in both planners: archived objects go on the restore list (plan/skipped.json, "to restore",
with ETag and storage class), the rest is planned as before; without the env's restore_archived it is refused."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas import manifest, planning
from lambdas.errors import ConfigError
from lambdas.gateway import S3Gateway
from lambdas.planner import plan_run
from lambdas.settings import Settings
from tests.functional import test_sharding_plan as sharded

NOW = "2024-05-01T12:00:00Z"


@pytest.fixture
def source(s3_client: Any) -> Any:
    for name in ("src", "tgt", "plans"):
        s3_client.create_bucket(Bucket=name)
    s3_client.put_object(Bucket="src", Key="a/readable.txt", Body=b"r" * 10)
    s3_client.put_object(Bucket="src", Key="a/cold.txt", Body=b"c" * 20, StorageClass="GLACIER")
    s3_client.put_object(Bucket="src", Key="a/deep.txt", Body=b"d" * 30, StorageClass="DEEP_ARCHIVE")
    s3_client.put_object(Bucket="src", Key="a/tiered.txt", Body=b"t" * 40, StorageClass="INTELLIGENT_TIERING")
    s3_client.put_object(Bucket="src", Key="a/instant.txt", Body=b"i" * 50, StorageClass="GLACIER_IR")
    return s3_client


def document(**options: Any) -> dict[str, Any]:
    return {"s3_copy_config": {"source_s3_config": {"s3_bucket": "src", "s3_path": "a/"},
                               "target_s3_config": [{"file_types": ["txt"], "s3_bucket": "tgt", "s3_path": "b/"}],
                               "options": options}}


def restore_list(skipped: list[Any]) -> dict[str, tuple[str, str]]:
    return {s.source_key: (s.storage_class, s.reason) for s in skipped if s.reason.startswith("restore")
            or s.reason == planning.TO_RESTORE}


def test_the_single_planner_puts_archived_objects_on_the_restore_list(source: Any, gateway: S3Gateway) -> None:
    # GIVEN readable, GLACIER_IR, GLACIER, DEEP_ARCHIVE and INTELLIGENT_TIERING objects, and options.restore
    settings = Settings(manifest_bucket="plans", workers=2, restore_enabled=True)

    # WHEN the planner plans them
    pointer = plan_run(document(restore={"tier": "Bulk", "days": 2}), "r1", settings, gateway, NOW)

    # THEN the readable and GLACIER_IR objects are copies, and the three others are on the restore list with
    # their ETag and storage class (INTELLIGENT_TIERING: only a HEAD tells its tier)
    skipped = manifest.read_skipped(gateway, pointer.manifest)
    assert pointer.copies == 2
    assert restore_list(skipped) == {"a/cold.txt": ("GLACIER", "to restore"),
                                     "a/deep.txt": ("DEEP_ARCHIVE", "to restore"),
                                     "a/tiered.txt": ("INTELLIGENT_TIERING", "to restore")}
    cold = next(s for s in skipped if s.source_key == "a/cold.txt")
    assert cold.etag == source.head_object(Bucket="src", Key="a/cold.txt")["ETag"].strip('"')
    assert (cold.target_bucket, cold.target_key) == ("tgt", "b/cold.txt")


def test_without_restore_archived_objects_are_skipped_and_restore_is_refused(source: Any,
                                                                              gateway: S3Gateway) -> None:
    # GIVEN no options.restore THEN archived objects are skipped as "restore first", as before
    pointer = plan_run(document(), "r2", Settings(manifest_bucket="plans", workers=2), gateway, NOW)
    reasons = {s.source_key: s.reason for s in manifest.read_skipped(gateway, pointer.manifest)}
    assert reasons == {"a/cold.txt": "restore first", "a/deep.txt": "restore first"}
    # AND options.restore on a stack deployed without restore_archived is refused, naming the field and the fix
    with pytest.raises(ConfigError) as caught:
        plan_run(document(restore={"tier": "Bulk", "days": 1}), "r3", Settings(manifest_bucket="plans", workers=2),
                 gateway, NOW)
    assert "s3_copy_config.options.restore: this stack cannot restore archived objects" in str(caught.value)
    assert "restore_archived=true" in str(caught.value)


def test_expedited_is_refused_for_deep_archive_objects_only(source: Any, gateway: S3Gateway) -> None:
    settings = Settings(manifest_bucket="plans", workers=2, restore_enabled=True)
    pointer = plan_run(document(restore={"tier": "Expedited", "days": 1}), "r4", settings, gateway, NOW)
    listed = restore_list(manifest.read_skipped(gateway, pointer.manifest))
    assert listed["a/cold.txt"] == ("GLACIER", "to restore")
    assert listed["a/deep.txt"][1].startswith("restore refused: Expedited retrieval is not available for "
                                              "DEEP_ARCHIVE objects")


def test_the_sharded_planner_puts_the_same_objects_on_the_restore_list(source: Any, gateway: S3Gateway,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the same buckets, planned in shards
    monkeypatch.setattr(sharded, "settings", lambda workers=3: Settings(manifest_bucket="plans", workers=workers,
                                                                         restore_enabled=True))
    _, plan, _ = sharded.run(gateway, document(restore={"tier": "Standard", "days": 1}), shards=2)

    # THEN the assembled plan lists exactly what the single planner lists
    tasks, skipped, _, _ = sharded.read_plan(gateway, plan)
    assert sorted(t.source_key for t in tasks) == ["a/instant.txt", "a/readable.txt"]
    assert restore_list(skipped) == {"a/cold.txt": ("GLACIER", "to restore"),
                                     "a/deep.txt": ("DEEP_ARCHIVE", "to restore"),
                                     "a/tiered.txt": ("INTELLIGENT_TIERING", "to restore")}
    assert all(s.etag for s in skipped if s.reason == planning.TO_RESTORE)
