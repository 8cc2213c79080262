"""What a plan's restores will cost and how long they will take (``sfncopy plan``). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lambdas import limits
from lambdas.models import SkippedObject
from lambdas.planning import TO_RESTORE
from lambdas.restoring import tiers

# Typical restore times by (tier, family) (Amazon S3 User Guide, "Understanding archive retrieval options").
TYPICAL = {
    ("Expedited", tiers.FLEXIBLE): "1-5 minutes",
    ("Standard", tiers.FLEXIBLE): "3-5 hours",
    ("Bulk", tiers.FLEXIBLE): "5-12 hours",
    ("Standard", tiers.DEEP): "within 12 hours",
    ("Bulk", tiers.DEEP): "within 48 hours",
}


@dataclass(frozen=True)
class RestoreEstimate:
    tier: str
    objects: int  # source objects to restore (one restore each, whatever their targets)
    bytes: int
    by_storage_class: tuple[tuple[str, int, int], ...]  # (class, objects, bytes)
    dollars: float  # retrieval requests and GB, GLACIER and DEEP_ARCHIVE only
    prices_verified: bool
    expected_wait: str
    bound_seconds: int  # the longest a restore may take before its object fails

    def to_dict(self) -> dict[str, Any]:
        classes = [{"storage_class": c, "objects": n, "bytes": b} for c, n, b in self.by_storage_class]
        return {"tier": self.tier, "objects": self.objects, "bytes": self.bytes, "by_storage_class": classes,
                "retrieval_dollars": round(self.dollars, 4), "prices_verified": self.prices_verified,
                "expected_wait": self.expected_wait, "bound_seconds": self.bound_seconds}

    def lines(self) -> list[str]:
        lines = [f"restore ({self.tier}): {self.objects:,} archived object(s), {self.bytes:,} bytes"]
        lines += [f"  {storage_class}: {n:,} object(s), {b:,} bytes" for storage_class, n, b in self.by_storage_class]
        note = "" if self.prices_verified else " (Deep Archive prices unverified)"
        lines.append(f"  retrieval cost: ${self.dollars:,.4f}{note}; INTELLIGENT_TIERING objects are restored "
                     "only if a HEAD finds them in an archive tier (Standard and Bulk retrievals of them are free)")
        lines.append(f"  expected wait: {self.expected_wait}; a restore not complete within "
                     f"{tiers.describe_bound(self.bound_seconds)} fails its object; everything else copies at once")
        return lines


def estimate_restores(entries: Iterable[SkippedObject], tier: str) -> RestoreEstimate | None:
    """The restores of a plan's ``to restore`` entries at ``tier``; None when there are none."""
    seen: dict[tuple[str, str], SkippedObject] = {}
    for entry in entries:
        if entry.reason == TO_RESTORE:
            seen.setdefault((entry.source_bucket, entry.source_key), entry)
    if not seen:
        return None
    classes: dict[str, list[int]] = {}
    for entry in seen.values():
        counts = classes.setdefault(entry.storage_class, [0, 0])
        counts[0] += 1
        counts[1] += entry.size
    dollars, verified, waits, bound = 0.0, True, [], 0
    for storage_class, (count, nbytes) in sorted(classes.items()):
        family = tiers.family(storage_class)
        if storage_class == limits.INTELLIGENT_TIERING or not family:
            continue
        cost, known = tiers.retrieval_cost(tier, family, count, nbytes)
        dollars, verified = dollars + cost, verified and known
        waits.append(f"{TYPICAL.get((tier, family), '?')} ({storage_class})")
        bound = max(bound, tiers.bound_seconds(tier, storage_class))
    if not waits:
        waits.append(f"{TYPICAL[tier, tiers.FLEXIBLE]} for an Archive Access tier")
        bound = tiers.bound_seconds(tier, "GLACIER")
    return RestoreEstimate(tier=tier, objects=len(seen), bytes=sum(e.size for e in seen.values()),
                           by_storage_class=tuple((c, n, b) for c, (n, b) in sorted(classes.items())),
                           dollars=dollars, prices_verified=verified, expected_wait=", ".join(waits),
                           bound_seconds=bound)
