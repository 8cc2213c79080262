"""The retrieval tiers as data (lambdas/restoring/tiers.py) and options.restore's validation."""

from __future__ import annotations

import pytest

from lambdas.config import parse_config
from lambdas.errors import ConfigError
from lambdas.models import RestoreOptions
from lambdas.restoring import tiers

HOUR = 3600


@pytest.mark.parametrize(("tier", "storage_class", "archive_status", "bound"), [
    ("Expedited", "GLACIER", "", 5 * 60),
    ("Standard", "GLACIER", "", 5 * HOUR),
    ("Bulk", "GLACIER", "", 12 * HOUR),
    ("Standard", "DEEP_ARCHIVE", "", 12 * HOUR),
    ("Bulk", "DEEP_ARCHIVE", "", 48 * HOUR),
    ("Expedited", "INTELLIGENT_TIERING", "ARCHIVE_ACCESS", 5 * 60),
    ("Bulk", "INTELLIGENT_TIERING", "DEEP_ARCHIVE_ACCESS", 48 * HOUR),
])
def test_bounds_are_the_documented_upper_restore_times(tier: str, storage_class: str, archive_status: str,
                                                      bound: int) -> None:
    assert tiers.bound_seconds(tier, storage_class, archive_status) == bound
    assert tiers.bound_seconds(tier, storage_class, archive_status, override=20) == 20


def test_expedited_is_refused_for_deep_archive_and_deep_archive_access_only() -> None:
    assert "DEEP_ARCHIVE objects" in tiers.refused("Expedited", "DEEP_ARCHIVE")
    assert "DEEP_ARCHIVE_ACCESS objects" in tiers.refused("Expedited", "INTELLIGENT_TIERING", "DEEP_ARCHIVE_ACCESS")
    assert tiers.refused("Expedited", "GLACIER") == ""
    assert tiers.refused("Expedited", "INTELLIGENT_TIERING", "ARCHIVE_ACCESS") == ""
    assert tiers.refused("Bulk", "DEEP_ARCHIVE") == ""
    assert tiers.refused("Expedited", "STANDARD") == ""  # readable: nothing to refuse


@pytest.mark.parametrize(("header", "state"), [
    ("", "none"),
    ('ongoing-request="true"', "ongoing"),
    ('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"', "done"),
])
def test_the_restore_header_is_read(header: str, state: str) -> None:
    assert tiers.restore_state(header) == state


def test_an_intelligent_tiering_object_is_archived_only_in_its_archive_tiers() -> None:
    assert tiers.family("INTELLIGENT_TIERING") == ""
    assert tiers.family("INTELLIGENT_TIERING", "ARCHIVE_ACCESS") == tiers.FLEXIBLE
    assert tiers.family("GLACIER_IR") == ""
    assert tiers.family("DEEP_ARCHIVE") == tiers.DEEP


@pytest.mark.parametrize(("tier", "storage_class"), [
    ("Expedited", "GLACIER"), ("Standard", "GLACIER"), ("Bulk", "GLACIER"),
    ("Standard", "DEEP_ARCHIVE"), ("Bulk", "DEEP_ARCHIVE")])
def test_the_wait_grows_is_capped_and_the_polls_are_few(tier: str, storage_class: str) -> None:
    bound = tiers.bound_seconds(tier, storage_class)
    schedule = tiers.schedule(tier, bound)
    waits = [schedule.wait(n, 10**9) for n in range(6)]
    # the first look at the lower end of the tier's typical time, then growing waits up to a quarter of the bound
    assert waits[0] == min(tiers.FIRST_WAIT_SECONDS[tier], bound)
    assert waits[1:] == sorted(waits[1:]) and waits[1] < waits[3] and max(waits[1:]) == bound // 4
    # each look costs 9 history events (Wait, Task, Choice): a tier's looks stay far below 25,000 events
    assert schedule.max_polls() <= 8
    # a wait never outlasts the time left before the earliest pending deadline
    assert schedule.wait(5, 42.2) == 43
    assert schedule.wait(5, 0.0) == 1


def test_retrieval_cost_per_10000_objects() -> None:
    cost, verified = tiers.retrieval_cost("Standard", tiers.FLEXIBLE, 10_000, 10_000 * 2**30 // 10_000)
    assert verified and cost == pytest.approx(0.5 + 0.01)
    assert tiers.retrieval_cost("Bulk", tiers.FLEXIBLE, 10_000, 2**40) == (0.0, True)
    assert tiers.retrieval_cost("Bulk", tiers.DEEP, 10_000, 0)[1] is False  # Deep Archive prices: unverified


def _doc(restore: object) -> dict[str, object]:
    return {"s3_copy_config": {"source_s3_config": {"s3_bucket": "src"},
                               "target_s3_config": [{"file_types": ["*"], "s3_bucket": "dst"}],
                               "options": {"restore": restore}}}


def test_options_restore_is_parsed() -> None:
    config = parse_config(_doc({"tier": "Expedited", "days": 3}))
    assert config.options.restore == RestoreOptions("Expedited", 3)
    assert type(config).from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("restore", "problem"), [
    ({"tier": "Fast", "days": 1}, 's3_copy_config.options.restore.tier: expected one of "Bulk", "Standard", '
                                  '"Expedited", got "Fast"'),
    ({"tier": "Bulk", "days": 0}, "s3_copy_config.options.restore.days: must be at least 1, got 0"),
    ({"tier": "Bulk"}, 's3_copy_config.options.restore.days: required key is missing; add "days": 1'),
    ({"tier": "Bulk", "days": 1, "dayz": 2}, "s3_copy_config.options.restore.dayz: unknown key"),
    ("Bulk", 's3_copy_config.options.restore: expected an object, got "Bulk"'),
])
def test_a_bad_options_restore_names_the_field_and_the_fix(restore: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(restore))
    assert problem in str(caught.value)
