"""Pure checks of the finalizer and cleanup: part layout, listing roots, readable causes, upload age."""

import json

from lambdas.cleanup import readable_cause, started_since
from lambdas.finalizer import expected_part_size, listing_roots, number_ranges, part_problems
from lambdas.gateway import PartInfo
from lambdas.models import SplitCopy, TargetConfig

SPLIT = SplitCopy(1, "s", "k", 25, "e", "d", "k", part_size=10, part_count=3, upload_id="u")


def test_parts_are_part_size_except_the_last():
    assert [expected_part_size(SPLIT, n) for n in (1, 2, 3)] == [10, 10, 5]


def test_complete_parts_have_no_problem():
    assert part_problems(SPLIT, [PartInfo(1, "a", 10), PartInfo(2, "b", 10), PartInfo(3, "c", 5)]) == ""


def test_missing_wrong_size_and_unplanned_parts_are_named():
    parts = [PartInfo(2, "b", 9), PartInfo(4, "d", 1)]
    assert part_problems(SPLIT, parts) == (
        "is missing parts 1, 3 of 3; part 2 has 9 bytes, expected 10; has unplanned parts 4")


def test_number_ranges_collapse_runs():
    assert number_ranges([8, 1, 2, 3, 5, 7]) == "1-3, 5, 7-8"


def test_nested_target_prefixes_are_listed_once():
    targets = [TargetConfig(0, "b", "media/", ("mp4",)), TargetConfig(1, "b", "media/img/", ("jpg",)),
               TargetConfig(2, "c", "x/", ("*",)), TargetConfig(3, "b", "media/", ("png",))]
    assert listing_roots(targets) == [("b", "media/"), ("c", "x/")]


def test_lambda_cause_gives_its_error_message():
    cause = json.dumps({"errorMessage": "2 problems in s3_copy_config: a; b", "errorType": "ConfigError",
                        "stackTrace": []})
    assert readable_cause(cause, "ConfigError") == "2 problems in s3_copy_config: a; b"


def test_other_causes_stay_as_they_are():
    assert readable_cause("The task timed out", "States.Timeout") == "The task timed out"
    assert readable_cause('["not", "an object"]', "X") == '["not", "an object"]'
    assert readable_cause("", "States.Timeout") == "States.Timeout"
    assert readable_cause(None, "States.Timeout") == "States.Timeout"


def test_upload_age_compares_times_not_text():
    assert started_since("2026-01-01 00:00:05+00:00", "2026-01-01T00:00:00Z")
    assert started_since("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    assert not started_since("2025-12-31 23:59:59+00:00", "2026-01-01T00:00:00Z")
    assert not started_since("not a time", "2026-01-01T00:00:00Z")
