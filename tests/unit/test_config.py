"""The s3_copy_config is validated once, at the edge: every problem named, with its JSON path and the fix."""

import copy
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.config import (
    OPTIONS,
    bucket_name_problems,
    check_allowed_buckets,
    load_config_text,
    parse_config,
)
from lambdas.errors import ConfigError
from lambdas.models import CopyConfig, CopyOptions, SourceConfig, SseConfig, TargetConfig

ORIGINAL = {"s3_copy_config": {
    "source_s3_config": {"s3_bucket": "my-source", "s3_path": "source/"},
    "target_s3_config": [
        {"file_types": ["mp4"], "s3_bucket": "my-target", "s3_path": "mp4/"},
        {"file_types": ["jpg", "png"], "s3_bucket": "my-target", "s3_path": "images/"}]}}


def document(**changes):
    """The original example with keys of s3_copy_config replaced (None removes a key)."""
    doc = copy.deepcopy(ORIGINAL)
    for key, value in changes.items():
        if value is None:
            doc["s3_copy_config"].pop(key, None)
        else:
            doc["s3_copy_config"][key] = value
    return doc


def with_target(**changes):
    target = {"file_types": ["jpg"], "s3_bucket": "my-target", "s3_path": "out/", **changes}
    return document(target_s3_config=[target])


def problems_of(doc):
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    return info.value.problems


def only_problem(doc):
    problems = problems_of(doc)
    assert len(problems) == 1, problems
    return problems[0]


# --- the original format ------------------------------------------------------------------------------
def test_original_format_is_accepted_unchanged():
    # GIVEN the original project's README example  WHEN it is parsed  THEN it becomes the typed config
    assert parse_config(ORIGINAL) == CopyConfig(
        sources=(SourceConfig("my-source", "source/"),),
        targets=(TargetConfig(0, "my-target", "mp4/", ("mp4",)),
                 TargetConfig(1, "my-target", "images/", ("jpg", "png"))),
        options=CopyOptions(),
    )


def test_parsed_config_survives_the_plan_file_round_trip():
    config = parse_config(with_target(include=["*.jpg"], min_size=1, flatten=True))
    assert CopyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_list_of_sources_is_accepted():
    doc = document(source_s3_config=[{"s3_bucket": "src-a", "s3_path": "in/"}, {"s3_bucket": "src-b"}])
    assert parse_config(doc).sources == (SourceConfig("src-a", "in/"), SourceConfig("src-b", ""))


def test_paths_lose_a_leading_slash_and_target_paths_become_folders():
    doc = document(source_s3_config={"s3_bucket": "my-source", "s3_path": "/logs/2024-"},
                   target_s3_config=[{"file_types": ["*"], "s3_bucket": "my-target", "s3_path": "/mp4"},
                                     {"file_types": ["*"], "s3_bucket": "other"}])
    config = parse_config(doc)
    assert config.sources[0].prefix == "logs/2024-"  # a listing prefix, used as given
    assert [t.prefix for t in config.targets] == ["mp4/", ""]


def test_file_types_are_normalised():
    config = parse_config(with_target(file_types=[".JPG", "Tar.GZ", "jpg", "*"]))
    assert config.targets[0].file_types == ("jpg", "tar.gz", "*")


def test_every_target_field_is_read():
    config = parse_config(with_target(include=["raw/*"], exclude=["*.tmp"], min_size=0, max_size=10, flatten=True))
    assert config.targets[0] == TargetConfig(0, "my-target", "out/", ("jpg",), ("raw/*",), ("*.tmp",), 0, 10, True)


def test_every_option_is_read():
    options = {"overwrite": "never", "max_payload_size_mb": 5, "max_objects_per_payload": 1,
               "storage_class": "GLACIER_IR", "sse": {"algorithm": "aws:kms", "kms_key_id": "key-1"},
               "preserve_metadata": False, "preserve_tags": False, "dry_run": True, "max_failed_objects": 3,
               "report_unmatched": True}
    assert parse_config(document(options=options)).options == CopyOptions(
        "never", 5, 1, "GLACIER_IR", SseConfig("aws:kms", "key-1"), False, False, True, 3, True)


@pytest.mark.parametrize(("sse", "expected"), [
    ("AES256", SseConfig("AES256")),
    ("aws:kms", SseConfig("aws:kms")),
    ({"algorithm": "AES256"}, SseConfig("AES256")),
])
def test_sse_as_a_string_or_an_object(sse, expected):
    assert parse_config(document(options={"sse": sse})).options.sse == expected


def test_option_keys_are_exactly_copy_options_fields():
    assert set(OPTIONS.fields) == {f.name for f in fields(CopyOptions)}


# --- every problem, at once ----------------------------------------------------------------------------
def test_every_problem_is_reported_at_once():
    # GIVEN a document with five independent mistakes
    doc = document(
        source_s3_config={"s3_bucket": "My_Bucket", "s3_pth": "x/"},
        target_s3_config=[{"file_types": ["mp4"], "s3_bucket": "my-target", "flatten": "true"},
                          {"file_types": "jpg", "s3_bucket": "my-target", "s3_path": "images/"}],
        options={"overwrite": "Always"},
    )
    # WHEN it is parsed  THEN all five are named, in document order
    assert problems_of(doc) == [
        's3_copy_config.source_s3_config.s3_bucket: bucket name "My_Bucket" may contain only lower-case letters, '
        'digits, dots and hyphens; write "my-bucket"',
        's3_copy_config.source_s3_config.s3_pth: unknown key; did you mean "s3_path"?',
        's3_copy_config.target_s3_config[0].flatten: expected true or false, got "true"; write true without quotes',
        's3_copy_config.target_s3_config[1].file_types: expected a list of strings, got "jpg"; write ["jpg"]',
        's3_copy_config.options.overwrite: expected one of "if-different", "always", "never", got "Always"; '
        'did you mean "always"?',
    ]


def test_the_error_message_counts_and_lists_the_problems():
    with pytest.raises(ConfigError, match=r"^2 problems in s3_copy_config: .*min_size.*; .*max_size"):
        parse_config(with_target(min_size=-1, max_size=1.5))


@pytest.mark.parametrize(("target", "expected"), [
    ({"min_size": True}, "min_size: expected a whole number, got true; write a whole number such as 5"),
    ({"min_size": "5"}, 'min_size: expected a whole number, got "5"; write 5 without quotes'),
    ({"max_size": 5.0}, "max_size: expected a whole number, got 5.0; write 5"),
    ({"min_size": -1}, "min_size: must be at least 0, got -1; write 0 or more"),
    ({"flatten": 1}, "flatten: expected true or false, got 1; write true or false"),
    ({"s3_bucket": 5}, 's3_bucket: expected a string, got 5; write it in double quotes: "5"'),
    ({"s3_path": None}, "s3_path: expected a string, got null; write a string or remove the key"),
    ({"include": "*.jpg"}, 'include: expected a list of strings, got "*.jpg"; write ["*.jpg"]'),
    ({"exclude": [""]}, 'exclude[0]: expected a non-empty string, got ""; write a value or remove the key'),
    ({"file_types": []}, 'file_types: expected a list of strings, got []; list at least one, e.g. ["jpg"], or '
                         '["*"] for every file'),
    ({"file_types": ["*.jpg"]}, 'file_types[0]: "*.jpg" is not a file extension; write e.g. "jpg" '
                                '(or "*" for every file; use "include" for patterns)'),
    ({"file_types": ["."]}, 'file_types[0]: "." is not a file extension; write e.g. "jpg"'),
    ({"file_types": [" jpg"]}, 'file_types[0]: " jpg" is not a file extension; write e.g. "jpg"'),
    ({"min_size": 10, "max_size": 9}, "max_size: max_size 9 is less than min_size 10; make max_size at least"),
    ({"flaten": True}, 'flaten: unknown key; did you mean "flatten"?'),
    ({"colour": "red"}, "colour: unknown key; remove it (known keys: file_types, s3_bucket, s3_path, include, "
                        "exclude, min_size, max_size, flatten, expected_bucket_owner, modified_after, modified_before, "
                        "storage_classes)"),
    ({"modified_after": "2026-11-30T00:00:00"}, 'modified_after: "2026-11-30T00:00:00" has no time zone; add one: '
                                                '"2026-11-30T00:00:00Z" for UTC'),
    ({"modified_after": "yesterday"}, 'modified_after: expected an ISO 8601 date and time, got "yesterday"; write '
                                      'it like "2026-11-30T00:00:00Z"'),
    ({"modified_after": "2026-12-01T00:00:00Z", "modified_before": "2026-12-01T00:00:00+00:00"},
     "modified_before: modified_before 2026-12-01T00:00:00+00:00 is not after modified_after "
     "2026-12-01T00:00:00+00:00"),
    ({"storage_classes": ["STANDARD", "GLACEIR"]}, 'storage_classes[1]: expected one of "STANDARD"'),
    ({"storage_classes": []}, 'storage_classes: expected a list of strings, got []; list at least one'),
])
def test_target_problems(target, expected):
    problem = only_problem(with_target(**target))
    assert problem.startswith("s3_copy_config.target_s3_config[0]." + expected), problem


@pytest.mark.parametrize(("options", "expected"), [
    ({"overwrite": "sometimes"}, 'overwrite: expected one of "if-different", "always", "never", got "sometimes"; '
                                 "use one of them"),
    ({"max_payload_size_mb": 4}, "max_payload_size_mb: must be at least 5, got 4; write 5 or more"),
    ({"max_objects_per_payload": 0}, "max_objects_per_payload: must be at least 1, got 0"),
    ({"max_failed_objects": False}, "max_failed_objects: expected a whole number, got false"),
    ({"storage_class": "glacier"}, 'storage_class: expected one of "STANDARD", '),
    ({"storage_class": "OUTPOSTS"}, 'storage_class: expected one of "STANDARD"'),
    ({"sse": "aes256"}, 'sse: expected one of "AES256", "aws:kms", got "aes256"; did you mean "AES256"?'),
    ({"sse": True}, 'sse: expected one of "AES256", "aws:kms", got true'),
    ({"sse": {"algorithm": "AES256", "kms_key_id": "k"}},
     'sse.kms_key_id: a KMS key applies only to aws:kms, not AES256; set "algorithm": "aws:kms" or remove'),
    ({"sse": {"kms_key_id": "k"}}, 'sse.algorithm: required key is missing; add "algorithm": "aws:kms"'),
    ({"sse": {"algorithm": "aws:kms", "key": "k"}}, 'sse.key: unknown key; remove it (known keys: algorithm'),
    ({"dryrun": True}, 'dryrun: unknown key; did you mean "dry_run"?'),
    ({"preserve_tags": "false"}, 'preserve_tags: expected true or false, got "false"; write false without quotes'),
])
def test_option_problems(options, expected):
    problem = only_problem(document(options=options))
    assert problem.startswith("s3_copy_config.options." + expected), problem


def test_storage_class_hint_names_the_right_spelling():
    assert only_problem(document(options={"storage_class": "glacier"})).endswith('did you mean "GLACIER"?')


@pytest.mark.parametrize(("doc", "expected"), [
    (ORIGINAL["s3_copy_config"], '(top level): expected {"s3_copy_config": {...}}, got an object with keys '
                                 'source_s3_config, target_s3_config; put it under "s3_copy_config"'),
    ([], '(top level): expected an object, got []; write an object such as {"s3_copy_config": {...}}'),
    (None, "(top level): expected an object, got null"),
    (json.dumps(ORIGINAL), "(top level): expected {\"s3_copy_config\": {...}}, got a string; pass the JSON object"),
    ({"s3_copy_confg": {}}, 's3_copy_confg: unknown key; did you mean "s3_copy_config"?'),
    ({"s3_copy_config": []}, "s3_copy_config: expected an object, got []"),
])
def test_top_level_problems(doc, expected):
    assert expected in problems_of(doc)[0]


def test_missing_keys_say_what_to_add():
    assert problems_of({"s3_copy_config": {}}) == [
        's3_copy_config.source_s3_config: required key is missing; add "source_s3_config": '
        '{"s3_bucket": "my-source", "s3_path": "source/"}',
        's3_copy_config.target_s3_config: required key is missing; add "target_s3_config": '
        '[{"file_types": ["jpg"], "s3_bucket": "my-target", "s3_path": "images/"}]',
    ]


def test_a_single_target_object_is_told_to_be_wrapped_in_a_list():
    problem = only_problem(document(target_s3_config={"file_types": ["jpg"], "s3_bucket": "my-target"}))
    assert problem == ("s3_copy_config.target_s3_config: expected a list of objects, got an object; write [{...}]")


def test_sources_must_not_be_an_empty_list():
    assert only_problem(document(source_s3_config=[])).startswith(
        "s3_copy_config.source_s3_config: expected a list of objects, got []")


def test_a_problem_in_the_second_of_many_sources_names_its_index():
    doc = document(source_s3_config=[{"s3_bucket": "src-a"}, {"s3_bucket": "a"}])
    assert only_problem(doc).startswith('s3_copy_config.source_s3_config[1].s3_bucket: bucket name "a" must be 3')


# --- bucket names --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "rule"), [
    ("ab", "must be 3 to 63 characters long"),
    ("a" * 64, "must be 3 to 63 characters long"),
    ("My-Bucket", "may contain only lower-case letters, digits, dots and hyphens"),
    ("my_bucket", "may contain only lower-case letters, digits, dots and hyphens"),
    ("-bucket", "must start and end with a letter or digit"),
    ("bucket.", "must start and end with a letter or digit"),
    ("my..bucket", 'must not contain ".."'),
    ("192.168.5.4", "must not be formatted as an IP address"),
    ("xn--bucket", 'must not start with "xn--" or "sthree-"'),
    ("bucket-s3alias", 'must not end with "-s3alias" or "--ol-s3"'),
    ("s3://bucket/key", "is an s3:// URI, not a bucket name"),
])
def test_each_bucket_naming_rule_is_named(name, rule):
    assert bucket_name_problems(name) == [rule]


@pytest.mark.parametrize("name", ["abc", "my-bucket", "my.bucket.2024", "a" * 63, "1bucket", "192.168.5.bucket"])
def test_valid_bucket_names_pass(name):
    assert bucket_name_problems(name) == []


def test_an_s3_uri_in_the_bucket_field_gets_split_in_the_fix():
    problem = only_problem(document(source_s3_config={"s3_bucket": "s3://my-source/videos/"}))
    assert problem == ('s3_copy_config.source_s3_config.s3_bucket: bucket name "s3://my-source/videos/" is an s3:// '
                       'URI, not a bucket name; write "my-source" and put the rest in "s3_path"')


@given(st.text(alphabet="abcXYZ019.-_/: ", max_size=70))
def test_bucket_names_passing_our_rules_match_s3s_grammar(name):
    if not bucket_name_problems(name):
        assert 3 <= len(name) <= 63 and name == name.lower() and ".." not in name
        assert name[0].isalnum() and name[-1].isalnum() and set(name) <= set("abc019.-")


# --- a target must not feed or overwrite its own source ------------------------------------------------
@pytest.mark.parametrize(("source_path", "target_path", "wrong"), [
    ("data/", "data/", "is the source s3://shared/data/ (s3_copy_config.source_s3_config) itself"),
    ("data/", "data/copy/", "is inside the source s3://shared/data/ (s3_copy_config.source_s3_config), so the copy "
                            "would feed itself"),
    ("data/in/", "data/", "contains the source s3://shared/data/in/ (s3_copy_config.source_s3_config), so copies "
                          "could overwrite source objects"),
    ("", "backup/", "is inside the source s3://shared/"),
    ("data/", "", "contains the source s3://shared/data/"),
    ("data", "data-copy/", "is inside the source s3://shared/data "),
])
def test_a_target_overlapping_its_source_is_refused_both_ways(source_path, target_path, wrong):
    doc = document(source_s3_config={"s3_bucket": "shared", "s3_path": source_path},
                   target_s3_config=[{"file_types": ["*"], "s3_bucket": "shared", "s3_path": target_path}])
    problem = only_problem(doc)
    assert problem.startswith(f"s3_copy_config.target_s3_config[0].s3_path: target s3://shared/{target_path} {wrong}")
    assert problem.endswith(f'choose an s3_path outside "{source_path}", or another bucket')


def test_sibling_prefixes_in_one_bucket_are_fine():
    doc = document(source_s3_config={"s3_bucket": "shared", "s3_path": "data/"},
                   target_s3_config=[{"file_types": ["*"], "s3_bucket": "shared", "s3_path": "data-copy/"}])
    assert parse_config(doc).targets[0].prefix == "data-copy/"


def test_overlap_is_checked_against_every_source_of_a_list():
    doc = document(source_s3_config=[{"s3_bucket": "a-src"}, {"s3_bucket": "shared", "s3_path": "in/"}],
                   target_s3_config=[{"file_types": ["*"], "s3_bucket": "shared", "s3_path": "in/out"}])
    assert "(s3_copy_config.source_s3_config[1])" in only_problem(doc)


def test_overlap_is_reported_alongside_other_problems():
    doc = document(source_s3_config={"s3_bucket": "shared", "s3_path": "in/"},
                   target_s3_config=[{"file_types": "jpg", "s3_bucket": "shared", "s3_path": "in/"}])
    assert [p.split(":")[0] for p in problems_of(doc)] == [
        "s3_copy_config.target_s3_config[0].file_types", "s3_copy_config.target_s3_config[0].s3_path"]


def test_the_same_source_listed_twice_is_refused():
    doc = document(source_s3_config=[{"s3_bucket": "src", "s3_path": "in/"}, {"s3_bucket": "src", "s3_path": "/in/"}])
    assert only_problem(doc) == ("s3_copy_config.source_s3_config[1]: s3://src/in/ is listed twice "
                                 "(also at s3_copy_config.source_s3_config[0]); remove one of them")


@pytest.mark.parametrize(("outer", "inner"), [("in/", "in/raw/"), ("", "in/"), ("in", "in/raw/")])
def test_a_source_inside_another_source_of_the_bucket_is_refused(outer, inner):
    # GIVEN two sources of one bucket, one inside the other (in either order)
    at_outer, at_inner = {"s3_bucket": "src", "s3_path": outer}, {"s3_bucket": "src", "s3_path": inner}
    for sources, inner_at, outer_at in (([at_outer, at_inner], 1, 0), ([at_inner, at_outer], 0, 1)):
        # THEN the inner one is named, with the outer one and the fix
        assert only_problem(document(source_s3_config=sources)) == (
            f"s3_copy_config.source_s3_config[{inner_at}].s3_path: s3://src/{inner} is inside the source "
            f"s3://src/{outer} (s3_copy_config.source_s3_config[{outer_at}]), so its objects would be listed and "
            "copied twice; remove this source (the other one lists its objects already), or narrow the other's "
            "s3_path")


def test_sources_side_by_side_or_in_other_buckets_are_fine():
    doc = document(source_s3_config=[{"s3_bucket": "src", "s3_path": "in/a/"}, {"s3_bucket": "src", "s3_path": "in/b/"},
                                     {"s3_bucket": "other", "s3_path": "in/a/x/"}])
    assert [(s.bucket, s.prefix) for s in parse_config(doc).sources] == [("src", "in/a/"), ("src", "in/b/"),
                                                                         ("other", "in/a/x/")]


# --- JSON text -----------------------------------------------------------------------------------------
README_WITH_TRAILING_COMMA = """{
  "s3_copy_config": {
    "source_s3_config": {"s3_bucket": "my-source", "s3_path": "source/"},
    "target_s3_config": [
      {"file_types": ["mp4"], "s3_bucket": "my-target", "s3_path": "mp4/"},
      {"file_types": ["jpg", "png"], "s3_bucket": "my-target", "s3_path": "images/"},
    ]
  }
}
"""


def test_json_text_is_parsed_and_validated():
    assert load_config_text(json.dumps(ORIGINAL), "config.json") == parse_config(ORIGINAL)
    with pytest.raises(ConfigError, match=re.escape("s3_copy_config.source_s3_config: required key is missing")):
        load_config_text('{"s3_copy_config": {"target_s3_config": []}}', "config.json")


def test_trailing_comma_is_pointed_at_with_line_and_column():
    with pytest.raises(ConfigError) as info:
        load_config_text(README_WITH_TRAILING_COMMA, "envs/dev-copy.json")
    assert info.value.problems == [
        'envs/dev-copy.json:6:85: trailing comma before "]"; remove the trailing comma (JSON allows none)']


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1,}', 'c.json:1:8: trailing comma before "}"; remove the trailing comma'),
    ("", "c.json:1:1: the file is empty"),
    ("{'s3_copy_config': {}}", "c.json:1:2: invalid JSON: Expecting property name enclosed in double quotes; "
                               "use double quotes for keys and strings"),
    ('{\n  "a": }', "c.json:2:8: invalid JSON: Expecting value; fix the JSON syntax there"),
])
def test_bad_json_names_file_line_and_column(text, expected):
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.json")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(expected)


# --- buckets the deployed stack may touch -------------------------------------------------------------
def test_every_bucket_is_allowed_by_default():
    assert check_allowed_buckets(parse_config(ORIGINAL), ("*",), ("*",)) == []


def test_buckets_outside_the_allowed_lists_are_named_with_the_fix():
    config = parse_config(document(source_s3_config=[{"s3_bucket": "my-source"}, {"s3_bucket": "other-src"}]))
    assert check_allowed_buckets(config, ("my-source",), ("their-*",)) == [
        's3_copy_config.source_s3_config[1].s3_bucket: this stack may not read bucket "other-src" '
        "(allowed: my-source); add it to source_buckets in envs/<ENV>-env.sh and redeploy",
        's3_copy_config.target_s3_config[0].s3_bucket: this stack may not write bucket "my-target" '
        "(allowed: their-*); add it to target_buckets in envs/<ENV>-env.sh and redeploy",
        's3_copy_config.target_s3_config[1].s3_bucket: this stack may not write bucket "my-target" '
        "(allowed: their-*); add it to target_buckets in envs/<ENV>-env.sh and redeploy",
    ]


def test_bucket_patterns_allow_matching_names():
    assert check_allowed_buckets(parse_config(ORIGINAL), ("my-*",), ("my-target", "x")) == []


# --- the examples we ship ------------------------------------------------------------------------------
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_are_valid(path):
    config = load_config_text(path.read_text(encoding="utf-8"), str(path))
    assert config.sources and config.targets


def test_incremental_selection_is_kept_in_utc_on_sources_and_targets():
    # GIVEN a window in another time zone and storage classes, on a source and on a target
    doc = with_target(modified_after="2026-12-01T01:00:00+01:00", storage_classes=["STANDARD_IA", "STANDARD"])
    doc["s3_copy_config"]["source_s3_config"]["modified_before"] = "2026-12-02T00:00:00Z"
    # WHEN validated  THEN both are normalised to UTC and kept
    config = parse_config(doc)
    assert config.targets[0].modified_after == "2026-12-01T00:00:00+00:00"
    assert config.targets[0].storage_classes == ("STANDARD_IA", "STANDARD")
    assert config.sources[0].modified_before == "2026-12-02T00:00:00+00:00"
    # AND they survive the plan file (CopyConfig.to_dict / from_dict)
    assert CopyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config

