"""The restore stage's look at one archived object (lambdas/restoring/stage.py, ``look``), by value: Intelligent-Tiering
archive tiers, restores in progress before the run, the bound, refusals (the emulator runs them end to end in
tests/e2e/test_restore.py; here each case is one call, with any clock).
A small stand-in for the gateway answers HeadObject and records the RestoreObject requests S3 would receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.errors import SourceChangedError
from lambdas.gateway import ObjectHead
from lambdas.models import CopyOptions, RestoreOptions, SkippedObject
from lambdas.restoring.stage import RestoreItem, _Call, look, to_restore
from lambdas.settings import Settings


@dataclass
class FakeS3:
    head: ObjectHead | Exception
    requests: list[tuple[str, str, str, int | None]] = field(default_factory=list)

    def head_object(self, bucket: str, key: str, if_match: str = "", **_: Any) -> ObjectHead:
        if isinstance(self.head, Exception):
            raise self.head
        return self.head

    def restore_object(self, bucket: str, key: str, tier: str, days: int | None) -> str:
        self.requests.append((bucket, key, tier, days))
        return "accepted"


def call(s3: FakeS3, tier: str = "Bulk", now: float = 1_000_000.0, bound: int | None = None) -> _Call:
    def no_copies(item: RestoreItem) -> Any:
        raise AssertionError("nothing is readable here: no copy may start")
    return _Call(s3, CopyOptions(), RestoreOptions(tier, 3), Settings(manifest_bucket="m", restore_bound_seconds=bound),
                 lambda: now, no_copies)  # type: ignore[arg-type]


def item(storage_class: str = "INTELLIGENT_TIERING") -> RestoreItem:
    return RestoreItem("src", "k", 10, "e1", storage_class, [("dst", "k")])


def test_an_intelligent_tiering_archive_access_object_is_restored_without_days() -> None:
    # GIVEN an INTELLIGENT_TIERING object whose HEAD says it is in the Archive Access tier, no restore asked
    s3 = FakeS3(ObjectHead(size=10, etag="e1", storage_class="INTELLIGENT_TIERING", archive_status="ARCHIVE_ACCESS"))
    it = item()
    # WHEN the stage looks at it
    look(it, 0, call(s3, "Expedited"))
    # THEN S3 receives one restore at the tier, without Days, and the object waits, with its deadline
    assert s3.requests == [("src", "k", "Expedited", None)]
    assert (it.status, it.how, it.archive_status) == ("waiting", "requested", "ARCHIVE_ACCESS")
    assert it.requested_at == "1970-01-12T13:46:40Z" and it.deadline_at == 1_000_000.0 + 5 * 60


def test_a_glacier_object_is_restored_for_the_configured_days() -> None:
    s3 = FakeS3(ObjectHead(size=10, etag="e1", storage_class="GLACIER"))
    look(item("GLACIER"), 0, call(s3, "Standard"))
    assert s3.requests == [("src", "k", "Standard", 3)]


def test_expedited_is_refused_for_the_deep_archive_access_tier_without_a_request() -> None:
    s3 = FakeS3(ObjectHead(size=10, etag="e1", storage_class="INTELLIGENT_TIERING",
                           archive_status="DEEP_ARCHIVE_ACCESS"))
    it = item()
    look(it, 0, call(s3, "Expedited"))
    assert s3.requests == [] and it.status == "settled"
    assert it.error.startswith("RestoreRefused: Expedited retrieval is not available for DEEP_ARCHIVE_ACCESS")


def test_a_restore_already_in_progress_is_recognised_and_not_asked_again() -> None:
    s3 = FakeS3(ObjectHead(size=10, etag="e1", storage_class="GLACIER", restore='ongoing-request="true"'))
    it = item("GLACIER")
    look(it, 0, call(s3))
    assert s3.requests == [] and (it.status, it.how) == ("waiting", "in progress before the run")


@pytest.mark.parametrize(("now", "status", "error"), [
    (1_000_000.0 + 11 * 3600, "waiting", ""),
    (1_000_000.0 + 12 * 3600, "settled", "RestoreTimedOut: restore did not complete within 12 h (Bulk)"),
])
def test_a_restore_still_ongoing_at_its_bound_fails_its_object(now: float, status: str, error: str) -> None:
    # GIVEN a Bulk restore of a GLACIER object requested at t0 (bound 12 h), still ongoing
    s3 = FakeS3(ObjectHead(size=10, etag="e1", storage_class="GLACIER", restore='ongoing-request="true"'))
    it = item("GLACIER")
    it.requested_at, it.deadline_at, it.status, it.how = "t0", 1_000_000.0 + 12 * 3600, "waiting", "requested"
    # WHEN the stage looks later
    look(it, 0, call(s3, now=now))
    # THEN it waits before the bound and fails at it, with the bound and tier in the reason
    assert (it.status, it.error) == (status, error)


def test_a_source_that_changed_since_the_plan_fails_its_object() -> None:
    it = item("GLACIER")
    look(it, 0, call(FakeS3(SourceChangedError("head s3://src/k: PreconditionFailed"))))
    assert it.status == "settled" and it.error.startswith("SourceChanged: ")


def test_the_book_has_one_item_per_source_object_with_its_targets() -> None:
    entries = [SkippedObject("src", "k", 10, "to restore", "d1", "a/k", "e1", "GLACIER"),
               SkippedObject("src", "x", 5, "identical", "d1", "a/x"),
               SkippedObject("src", "k", 10, "to restore", "d2", "b/k", "e1", "GLACIER")]
    book = to_restore(iter(entries))
    assert [(i.key, i.targets, i.etag) for i in book] == [("k", [("d1", "a/k"), ("d2", "b/k")], "e1")]
    assert RestoreItem.from_dict(book[0].to_dict()) == book[0]
