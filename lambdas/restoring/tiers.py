"""The retrieval tiers as data: how long a restore may take, what it costs, when to look again. Pure.

Restore times (Amazon S3 User Guide, "Understanding archive retrieval options"): Expedited typically within
1-5 minutes (S3 Glacier Flexible Retrieval and the Intelligent-Tiering Archive Access tier only; objects under
250 MB), Standard within 3-5 hours (Flexible Retrieval, Archive Access) or within 12 hours (Deep Archive, Deep
Archive Access), Bulk within 5-12 hours (Flexible Retrieval, Archive Access) or within 48 hours (Deep Archive,
Deep Archive Access). The upper figure of each is the stage's bound: a restore not complete by then fails its
object, not the run.

The poll schedule: the first look after ``first_wait`` seconds (the lower end of the tier's typical time:
nothing is expected sooner), then waits that start at a sixteenth of the bound and double, capped at a quarter of
the bound and at the time left before the earliest pending deadline. So a tier's looks stay few whatever its bound
(``max_polls``: at most 8), and each costs one Wait, one Task and one Choice in the run's history.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lambdas import limits

MINUTE, HOUR = 60, 3600
FLEXIBLE, DEEP = "flexible", "deep"
# Storage class or Intelligent-Tiering archive tier (HeadObject's ArchiveStatus) -> its family.
FAMILIES = {"GLACIER": FLEXIBLE, "ARCHIVE_ACCESS": FLEXIBLE, "DEEP_ARCHIVE": DEEP, "DEEP_ARCHIVE_ACCESS": DEEP}
# (tier, family) -> seconds within which S3 says a restore typically finishes (see the module docstring).
# Expedited has no Deep Archive entry: it is not offered there.
BOUND_SECONDS: dict[tuple[str, str], int] = {
    ("Expedited", FLEXIBLE): 5 * MINUTE,
    ("Standard", FLEXIBLE): 5 * HOUR,
    ("Bulk", FLEXIBLE): 12 * HOUR,
    ("Standard", DEEP): 12 * HOUR,
    ("Bulk", DEEP): 48 * HOUR,
}
# The first look after a request: the lower end of the tier's typical time (Expedited 1 minute, Standard 3
# hours and Bulk 5 hours on Flexible Retrieval; Deep Archive's lower ends are not documented, so the same).
FIRST_WAIT_SECONDS = {"Expedited": MINUTE, "Standard": 3 * HOUR, "Bulk": 5 * HOUR}
# After the first look: the first wait and the longest, as shares of the bound.
WAIT_STEP_SHARE = 16
WAIT_CAP_SHARE = 4

# Retrieval prices in US East (N. Virginia), per 1,000 restore requests and per GB restored (Amazon S3
# pricing page, as quoted by AWS re:Post, "How do I manage data retrieval costs ... S3 Glacier": Standard
# $0.05 per 1,000 and $0.01 per GB, Expedited $10 per 1,000 and $0.03 per GB, for Flexible Retrieval; Bulk is
# free for Flexible Retrieval and Intelligent-Tiering, and Standard for Intelligent-Tiering (User Guide,
# "Understanding archive retrieval options")). Deep Archive's prices are not on the stored pages: unverified.
PRICES: dict[tuple[str, str], tuple[float, float, bool]] = {  # -> (per 1,000 requests, per GB, verified)
    ("Expedited", FLEXIBLE): (10.0, 0.03, True),
    ("Standard", FLEXIBLE): (0.05, 0.01, True),
    ("Bulk", FLEXIBLE): (0.0, 0.0, True),
    ("Standard", DEEP): (0.10, 0.02, False),
    ("Bulk", DEEP): (0.025, 0.0025, False),
}
_ONGOING = re.compile(r'ongoing-request\s*=\s*"(true|false)"')


def family(storage_class: str, archive_status: str = "") -> str:
    """FLEXIBLE or DEEP for an archived object; "" for one readable as it is."""
    if storage_class == limits.INTELLIGENT_TIERING:
        return FAMILIES.get(archive_status, "")
    return FAMILIES.get(storage_class, "")


def refused(tier: str, storage_class: str, archive_status: str = "") -> str:
    """Why ``tier`` cannot restore this object ("" when it can): Expedited has no Deep Archive option."""
    if (tier, family(storage_class, archive_status)) in BOUND_SECONDS or not family(storage_class, archive_status):
        return ""
    where = archive_status if storage_class == limits.INTELLIGENT_TIERING else storage_class
    return (f"{tier} retrieval is not available for {where} objects (S3 User Guide, \"Understanding archive "
            "retrieval options\"); set options.restore.tier to \"Standard\" or \"Bulk\"")


def bound_seconds(tier: str, storage_class: str, archive_status: str = "", override: int | None = None) -> int:
    """How long a restore of this object may take before its copy fails."""
    if override is not None:
        return override
    return BOUND_SECONDS[tier, family(storage_class, archive_status) or FLEXIBLE]


def restore_state(header: str) -> str:
    """HeadObject's Restore header -> "none" (no restore asked), "ongoing" or "done" (restored copy readable)."""
    match = _ONGOING.search(header or "")
    if match is None:
        return "none"
    return "ongoing" if match.group(1) == "true" else "done"


@dataclass(frozen=True)
class Schedule:
    first_wait: int
    bound: int

    @property
    def step(self) -> int:
        return max(1, self.bound // WAIT_STEP_SHARE)

    @property
    def cap(self) -> int:
        return max(1, self.bound // WAIT_CAP_SHARE)

    def wait(self, looks: int, seconds_to_deadline: float) -> int:
        """Seconds to wait before the next look, ``looks`` looks having been made since the requests."""
        grown: int = self.first_wait if looks == 0 else min(self.cap, self.step * 2 ** min(looks - 1, 32))
        return max(1, min(grown, math.ceil(seconds_to_deadline)))

    def max_polls(self) -> int:
        """The most looks before the bound has passed: the doubling waits, then capped ones."""
        polls, waited = 0, 0
        while waited < self.bound:
            waited += self.wait(polls, self.bound - waited)
            polls += 1
        return polls + 1


def schedule(tier: str, bound: int, first_wait_override: int | None = None) -> Schedule:
    first = first_wait_override if first_wait_override is not None else FIRST_WAIT_SECONDS[tier]
    return Schedule(first_wait=min(first, bound), bound=bound)


def retrieval_cost(tier: str, fam: str, objects: int, nbytes: int) -> tuple[float, bool]:
    """Dollars to restore ``objects`` of ``nbytes`` in all at ``tier``, and whether the prices are verified."""
    per_thousand, per_gb, verified = PRICES.get((tier, fam), (0.0, 0.0, False))
    return objects / 1000 * per_thousand + nbytes / limits.GiB * per_gb, verified


def describe_bound(seconds: int) -> str:
    """"12 h", "5 min", "90 s"."""
    if seconds % HOUR == 0:
        return f"{seconds // HOUR} h"
    if seconds % MINUTE == 0:
        return f"{seconds // MINUTE} min"
    return f"{seconds} s"
