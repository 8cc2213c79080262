"""Bridge 14: restores of archived objects that take time, as on S3, and finish when a test says so.

moto 5.2.5 completes a RestoreObject at once (the key's restore status moves straight to RESTORED and
HeadObject answers ``ongoing-request="false"`` at the first look) and lets UploadPartCopy read a GLACIER /
DEEP_ARCHIVE source that was never restored. S3 restores in minutes to hours (Amazon S3 User Guide,
"Understanding archive retrieval options"), answers HeadObject with ``x-amz-restore: ongoing-request="true"``
meanwhile (Amazon S3 API Reference, "HeadObject", Restore), answers a second RestoreObject of a restore in
progress with ``409 RestoreAlreadyInProgress`` (Amazon S3 API Reference, "RestoreObject", Special errors), and
refuses to read an archived object that is not restored: GetObject answers ``403 InvalidObjectState``
(Amazon S3 API Reference, "GetObject": "If the object you are retrieving is stored in the S3 Glacier Flexible
Retrieval storage class ... before you can retrieve the object you must first restore a copy ... Otherwise,
this operation returns an InvalidObjectState error"), CopyObject ``403 ObjectNotInActiveTierError`` (API
Reference, "CopyObject", Errors). UploadPartCopy reads the source's bytes as CopyObject does; its error for
this case is not on the stored pages (unverified): we answer CopyObject's.

So the emulator holds each requested restore as ongoing until it is completed through the control endpoint
(``POST /_sfncopy/restores``), or after a configured delay, and never in ``never`` mode or for keys listed
as never completing:

    {"complete": "all"}                                   every ongoing restore completes now
    {"complete": [{"bucket": "b", "key": "k"}]}           these complete now
    {"mode": "manual"}                                    restores stay ongoing until completed (default)
    {"mode": {"after_seconds": 5}}                        each completes 5 s after its request
    {"mode": "never"}                                     no restore ever completes (until "complete")
    {"never": [{"bucket": "b", "key": "k"}]}              these never complete, whatever the mode

    {"archive": [{"bucket": "b", "key": "k", "tier": "ARCHIVE_ACCESS"}]}   put an INTELLIGENT_TIERING object
                                                          into an archive tier (DEEP_ARCHIVE_ACCESS too)

moto keeps no Intelligent-Tiering access tier, so ``archive`` gives one: HeadObject then answers
``x-amz-archive-status`` (Amazon S3 API Reference, "HeadObject", ArchiveStatus), reads and copies are refused as
for GLACIER (the middleware answers them: S3's codes for this case are not on the stored pages, unverified; we
answer GLACIER's), RestoreObject is accepted without ``Days`` and refused with it (the stricter reading of API
Reference, "S3InitiateRestoreObjectOperation": ExpirationInDays for these tiers "results in restore request
failure"), and once the restore completes the object is back in an access tier (no archive status).

``GET /_sfncopy/restores`` lists the ongoing and completed restores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[str, str]


class RestoreControlError(ValueError):
    """A control request the emulator does not understand (answered 400)."""


@dataclass
class _Restore:
    days: int
    requested: float
    completed: float = 0.0
    applied: bool = False  # the key's restored copy was made (moto's key.restore)


@dataclass
class RestoreState:
    """Every restore requested since the emulator started (process-wide: moto's backends are too)."""

    restores: dict[Pair, _Restore] = field(default_factory=dict)
    mode: str = "manual"  # "manual", "never" or "after"
    after_seconds: float = 0.0
    never: set[Pair] = field(default_factory=set)
    archived: dict[Pair, str] = field(default_factory=dict)  # INTELLIGENT_TIERING pair -> its archive tier
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.restores.clear()
            self.never.clear()
            self.archived.clear()
            self.mode, self.after_seconds = "manual", 0.0

    def request(self, pair: Pair, days: int) -> str:
        """A RestoreObject: "accepted" (new), "in progress" (ongoing) or "restored" (a restored copy exists)."""
        with self.lock:
            known = self.restores.get(pair)
            if known is not None and not self._done(pair, known):
                return "in progress"
            if known is not None:
                return "restored"
            self.restores[pair] = _Restore(days=days, requested=time.time())
            return "accepted"

    def ongoing(self, pair: Pair) -> _Restore | None:
        """The pair's restore if one was requested and has not completed; completes it when its delay passed."""
        with self.lock:
            known = self.restores.get(pair)
            if known is None:
                return None
            return None if self._done(pair, known) else known

    def archive_tier(self, pair: Pair) -> str:
        """The Intelligent-Tiering archive tier ``pair`` is in ("" when readable: never archived, or restored)."""
        with self.lock:
            tier = self.archived.get(pair, "")
            known = self.restores.get(pair)
            if tier and known is not None and self._done(pair, known):
                del self.archived[pair]  # restored: back in the Frequent Access tier
                return ""
            return tier

    def completed(self, pair: Pair) -> _Restore | None:
        with self.lock:
            known = self.restores.get(pair)
            return known if known is not None and self._done(pair, known) else None

    def _done(self, pair: Pair, known: _Restore) -> bool:
        if known.completed:
            return True
        if self.mode == "after" and pair not in self.never and time.time() >= known.requested + self.after_seconds:
            known.completed = time.time()
        return bool(known.completed)

    def control(self, document: Any) -> dict[str, Any]:
        """Apply a ``POST /_sfncopy/restores`` body (module docstring); answer ``snapshot``."""
        if not isinstance(document, dict) or not set(document) <= {"complete", "mode", "never", "archive"}:
            raise RestoreControlError('expected {"complete": "all" | [{"bucket", "key"}], "mode": "manual" | "never" '
                                      '| {"after_seconds": N}, "never": [{"bucket", "key"}]}')
        mode = document.get("mode")
        never = [_pair(p) for p in document.get("never", [])]
        archive = {_pair(p): _tier(p) for p in document.get("archive", [])}
        complete = document.get("complete")
        with self.lock:
            if mode is not None:
                self.mode, self.after_seconds = _mode(mode)
            self.never.update(never)
            self.archived.update(archive)
            if complete == "all":
                chosen: list[Pair] = list(self.restores)
            elif complete is not None:
                if not isinstance(complete, list):
                    raise RestoreControlError('"complete" must be "all" or a list of {"bucket", "key"}')
                chosen = [_pair(p) for p in complete]
            else:
                chosen = []
            now = time.time()
            for pair in chosen:
                known = self.restores.get(pair)
                if known is not None and not known.completed:
                    known.completed = now
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            rows = [{"bucket": b, "key": k, "days": r.days, "requested": r.requested, "completed": r.completed}
                    for (b, k), r in sorted(self.restores.items())]
            return {"mode": self.mode if self.mode != "after" else {"after_seconds": self.after_seconds},
                    "restores": rows, "never": [{"bucket": b, "key": k} for b, k in sorted(self.never)],
                    "archived": [{"bucket": b, "key": k, "tier": t} for (b, k), t in sorted(self.archived.items())]}


def _pair(value: Any) -> Pair:
    if isinstance(value, Mapping) and isinstance(value.get("bucket"), str) and isinstance(value.get("key"), str):
        return value["bucket"], value["key"]
    raise RestoreControlError(f"expected {{\"bucket\": ..., \"key\": ...}}, got {value!r}")


ARCHIVE_TIERS = ("ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS")


def _tier(value: Any) -> str:
    tier = value.get("tier") if isinstance(value, Mapping) else None
    if tier not in ARCHIVE_TIERS:
        raise RestoreControlError(f'"archive" entries need "tier": one of {", ".join(ARCHIVE_TIERS)}, got {tier!r}')
    return str(tier)


def unreadable(bucket: str, key: str) -> bool:
    """Whether the middleware must refuse to read or copy this key: an Intelligent-Tiering object in an archive
    tier (GLACIER and DEEP_ARCHIVE keys are refused by moto itself, through the patched restore header)."""
    return bool(RESTORES.archive_tier((bucket, key)))


def _mode(value: Any) -> tuple[str, float]:
    if value in ("manual", "never"):
        return str(value), 0.0
    if isinstance(value, Mapping) and isinstance(value.get("after_seconds"), int | float) \
            and value["after_seconds"] >= 0:
        return "after", float(value["after_seconds"])
    raise RestoreControlError(f'"mode" must be "manual", "never" or {{"after_seconds": N}}, got {value!r}')


RESTORES = RestoreState()


# --- the patches ------------------------------------------------------------------------------------------------
def restore_patches() -> Iterator[tuple[Any, str, Any]]:
    """(owner, attribute, replacement) for Bridges._set."""
    from moto.s3.exceptions import (
        InvalidArgumentError,
        InvalidObjectState,
        MissingKey,
        ObjectNotInActiveTierError,
        S3ClientError,
    )
    from moto.s3.models import FakeKey, S3Backend
    from moto.s3.utils import ARCHIVE_STORAGE_CLASSES

    class RestoreAlreadyInProgress(S3ClientError):
        def __init__(self) -> None:
            super().__init__("RestoreAlreadyInProgress", "Object restore is already in progress")

    original_response_dict: Callable[[Any], dict[str, Any]] = FakeKey.response_dict.fget  # type: ignore[attr-defined]
    original_part_copy = S3Backend.upload_part_copy

    def restore_object(self: Any, bucket_name: str, key_name: str, days: str | None, type_: str | None) -> bool:
        key = self.get_object(bucket_name, key_name)
        if not key:
            raise MissingKey
        pair = (bucket_name, key_name)
        tiered = key.storage_class == "INTELLIGENT_TIERING" and bool(RESTORES.archive_tier(pair))
        if key.storage_class not in ARCHIVE_STORAGE_CLASSES and not tiered:
            raise InvalidObjectState(storage_class=key.storage_class)
        if tiered and days:
            raise InvalidArgumentError("Days is not accepted for an object in an Intelligent-Tiering archive tier",
                                       "Days", str(days))
        answer = RESTORES.request(pair, int(days or 1))
        if answer == "in progress":
            raise RestoreAlreadyInProgress()
        return answer == "restored"  # moto's responder: True -> 200, False -> 202 Accepted

    def response_dict(self: Any) -> dict[str, Any]:
        pair = (self.bucket_name, self.name)
        if self.storage_class == "INTELLIGENT_TIERING":
            tier = RESTORES.archive_tier(pair)
            answer = original_response_dict(self)
            if tier:
                answer["x-amz-archive-status"] = tier
                if RESTORES.ongoing(pair) is not None:
                    answer["x-amz-restore"] = 'ongoing-request="true"'
            return answer
        if self.storage_class in ARCHIVE_STORAGE_CLASSES:
            if RESTORES.ongoing(pair) is not None:
                answer = original_response_dict(self)
                answer["x-amz-restore"] = 'ongoing-request="true"'
                return answer
            done = RESTORES.completed(pair)
            if done is not None and not done.applied:
                done.applied = True
                self.restore(done.days)  # moto's restored copy: x-amz-restore ongoing-request="false", expiry
        return original_response_dict(self)

    def upload_part_copy(self: Any, dest_bucket_name: str, multipart_id: str, part_id: int, src_bucket_name: str,
                         src_key_name: str, src_version_id: str | None, start_byte: int, end_byte: int) -> Any:
        source = self.get_object(src_bucket_name, src_key_name, version_id=src_version_id)
        if source is not None and source.storage_class in ARCHIVE_STORAGE_CLASSES:
            header = source.response_dict.get("x-amz-restore") or ""
            if 'ongoing-request="false"' not in header:
                raise ObjectNotInActiveTierError(source)
        return original_part_copy(self, dest_bucket_name, multipart_id, part_id, src_bucket_name, src_key_name,
                                  src_version_id, start_byte, end_byte)

    yield S3Backend, "restore_object", restore_object
    yield FakeKey, "response_dict", property(response_dict)
    yield S3Backend, "upload_part_copy", upload_part_copy
