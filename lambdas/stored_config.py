"""An execution input that names a stored s3_copy_config instead of holding one.

A schedule's target input is fixed JSON written into the stack (EventBridge Scheduler API reference, Target,
Input: "The text, or well-formed JSON, passed to the target"), so a scheduled run names its config by location:

    {"s3_copy_config_location": "s3://my-configs/nightly.json"}

The planner reads that object (its role may read exactly the locations the env's schedules name:
generator/policies.py) and plans it as if it had been the input. Anything else passes through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas.errors import AccessDeniedError, ConfigError, NoSuchKeyError
from lambdas.gateway import S3Gateway

LOCATION_KEY = "s3_copy_config_location"
S3_SCHEME = "s3://"


def stored_location(document: Any) -> tuple[str, str] | None:
    """(bucket, key) when ``document`` is ``{"s3_copy_config_location": "s3://bucket/key"}``; None when the
    document is not a location; ConfigError naming the field when it is a bad one."""
    if not isinstance(document, dict) or LOCATION_KEY not in document:
        return None
    others = sorted(str(k) for k in document if k != LOCATION_KEY)
    if others:
        raise ConfigError([f"{others[0]}: unknown key beside {LOCATION_KEY}; pass either the s3_copy_config or "
                           f"its location, not both"])
    return parse_location(document[LOCATION_KEY], LOCATION_KEY)


def parse_location(value: Any, field: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key), or ConfigError naming ``field``."""
    if not isinstance(value, str) or not value.startswith(S3_SCHEME):
        raise ConfigError([f"{field}: expected \"s3://bucket/key\" (a stored s3_copy_config), got {value!r}"])
    bucket, _, key = value[len(S3_SCHEME):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ConfigError([f"{field}: {value!r} names no object; write s3://bucket/path/config.json"])
    return bucket, key


def resolve_input(document: Any, s3: S3Gateway) -> Any:
    """The execution input to plan: the stored config a location names, or ``document`` itself."""
    location = stored_location(document)
    if location is None:
        return document
    bucket, key = location
    uri = f"{S3_SCHEME}{bucket}/{key}"
    try:
        text = s3.get_text(bucket, key)
    except (AccessDeniedError, NoSuchKeyError) as err:
        # A role that may not list the bucket is told 403 for a missing key too (Amazon S3 API reference,
        # GetObject, Permissions), so both mean the same to the user.
        raise ConfigError([f"{LOCATION_KEY}: cannot read {uri} ({err}); it must exist, and the planner may read "
                           "only the configs the env file's schedule_* settings name (add a schedule for it and "
                           "deploy)"]) from err
    try:
        stored = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError([f"{LOCATION_KEY}: {uri} is not JSON (line {err.lineno}, column {err.colno}: "
                           f"{err.msg})"]) from err
    if stored_location(stored) is not None:
        raise ConfigError([f"{LOCATION_KEY}: {uri} holds another location; store the s3_copy_config itself"])
    return stored
