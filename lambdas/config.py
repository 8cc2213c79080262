"""The s3_copy_config: validated once, at the edge, into typed models; every problem reported at once.

The accepted document (the execution input) is written down as data below: ``SOURCE``, ``TARGET``,
``OPTIONS`` and ``DOCUMENT`` are field specs read by ``lambdas.validation``. Checks that involve more than
one field (min_size <= max_size, a target inside its own source, a source listed twice) are small functions.

Prefixes: a source ``s3_path`` is used as given (minus a leading "/"): it is a listing prefix and may end
mid-name ("logs/2024-"). A non-empty target ``s3_path`` is a folder: a missing trailing "/" is added, so
``"s3_path": "mp4"`` puts ``a.mp4`` at ``mp4/a.mp4`` as ``aws s3 cp`` would.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdas import limits
from lambdas.errors import ConfigError
from lambdas.models import CopyConfig, CopyOptions, RestoreOptions, SourceConfig, SseConfig, TargetConfig
from lambdas.validation import (
    INVALID,
    Field,
    Flag,
    Kind,
    ListOf,
    OneOf,
    OneOrList,
    Parsed,
    Problems,
    Record,
    Text,
    WholeNumber,
    join,
    show,
)

ROOT = "s3_copy_config"
# The storage classes a copy may write (x-amz-storage-class).
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
SSE_ALGORITHMS = ("AES256", "aws:kms")
# The storage classes a listing may name (ListObjectsV2 "StorageClass": Amazon S3 API reference, Object): what
# a source or target rule's storage_classes may select.
LISTED_STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "GLACIER", "STANDARD_IA", "ONEZONE_IA",
                          "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE")
TIMESTAMP_EXAMPLE = "2026-11-30T00:00:00Z"
# A payload holds at least one multipart part, so its byte cap cannot be below the minimum part size.
MIN_PAYLOAD_SIZE_MB = limits.MIN_PART_SIZE // limits.MiB
ALLOWED_BUCKETS_FIX = "add it to {setting} in envs/<ENV>-env.sh and redeploy"
# The canned ACLs a copy into another account's bucket may set (options.acl). Both give the bucket owner
# access to an object another account writes: bucket-owner-full-control FULL_CONTROL, bucket-owner-read
# READ (Amazon S3 user guide, "Access control list (ACL) overview", "Canned ACL"). A bucket whose Object
# Ownership is "bucket owner enforced" accepts bucket-owner-full-control only (Amazon S3 API reference,
# CopyObject, x-amz-acl). The other canned ACLs grant the bucket owner nothing or open the object to others.
OBJECT_ACLS = ("bucket-owner-full-control", "bucket-owner-read")
CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
               *OBJECT_ACLS)
REQUEST_PAYERS = ("requester",)
OBJECT_ACL_FIX = "set object_acl={acl} in envs/<ENV>-env.sh and redeploy (it grants the roles s3:PutObjectAcl)"


# --- Values with rules of their own ------------------------------------------------------------------
# S3's bucket naming rules for general purpose buckets, each (what is wrong, test).
_BUCKET_RULES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("is an s3:// URI, not a bucket name", lambda n: n.startswith("s3://")),
    ("must be 3 to 63 characters long", lambda n: not 3 <= len(n) <= 63),
    ("may contain only lower-case letters, digits, dots and hyphens", lambda n: not re.fullmatch(r"[a-z0-9.-]*", n)),
    # (upper case is the rule above's business, so it is not reported twice)
    ("must start and end with a letter or digit", lambda n: not re.fullmatch(r"[a-zA-Z0-9](.*[a-zA-Z0-9])?", n, re.S)),
    ('must not contain ".."', lambda n: ".." in n),
    ("must not be formatted as an IP address", lambda n: re.fullmatch(r"\d+\.\d+\.\d+\.\d+", n) is not None),
    ('must not start with "xn--" or "sthree-"', lambda n: n.startswith(("xn--", "sthree-"))),
    ('must not end with "-s3alias" or "--ol-s3"', lambda n: n.endswith(("-s3alias", "--ol-s3"))),
)


def bucket_name_problems(name: str) -> list[str]:
    """Which of S3's bucket naming rules ``name`` breaks (empty when it is a valid name)."""
    wrong, uri = _BUCKET_RULES[0]
    if uri(name):
        return [wrong]
    return [wrong for wrong, broken in _BUCKET_RULES[1:] if broken(name)]


def _suggest_bucket(name: str) -> str:
    bare = name.removeprefix("s3://").split("/", 1)[0]
    return re.sub(r"[^a-z0-9.-]+", "-", bare.lower()).strip("-.")


class BucketName(Text):
    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        name = super().__call__(value, path, problems)
        if name is INVALID or not (broken := bucket_name_problems(name)):
            return name
        suggestion = _suggest_bucket(name)
        if name.startswith("s3://") and "/" in name[5:]:
            fix = f'write "{suggestion}" and put the rest in "s3_path"'
        elif suggestion and not bucket_name_problems(suggestion):
            fix = f'write "{suggestion}"'
        else:
            fix = "choose a name that follows S3's bucket naming rules"
        problems.add(path, f"bucket name {show(name)} " + " and ".join(broken), fix)
        return INVALID


@dataclass(frozen=True)
class Prefix(Text):
    """An S3 key prefix; "" is the whole bucket, a leading "/" is dropped (keys do not start with one).
    With ``folder`` a missing trailing "/" is added."""

    allow_empty: bool = True
    folder: bool = False

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        prefix = super().__call__(value, path, problems)
        if prefix is INVALID:
            return prefix
        prefix = prefix.lstrip("/")
        return prefix + "/" if self.folder and prefix and not prefix.endswith("/") else prefix


class AccountId(Text):
    """A 12-digit AWS account id, as a string (a JSON number would lose leading zeros)."""

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        text = super().__call__(value, path, problems)
        if text is INVALID or re.fullmatch(r"\d{12}", text):
            return text
        digits = re.sub(r"[\s-]", "", text)
        fix = (f'write "{digits}"' if re.fullmatch(r"\d{12}", digits)
               else 'write the bucket owner\'s 12-digit account id, e.g. "111122223333"')
        problems.add(path, f"expected a 12-digit AWS account id, got {show(text)}", fix)
        return INVALID


class Timestamp(Text):
    """An ISO 8601 date and time with a time zone, kept as UTC ``isoformat`` (a time without a zone would mean
    a different moment on every machine, so it is refused)."""

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        text = super().__call__(value, path, problems)
        if text is INVALID:
            return text
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            problems.add(path, f"expected an ISO 8601 date and time, got {show(text)}",
                         f'write it like "{TIMESTAMP_EXAMPLE}" (UTC) or "2026-11-30T01:00:00+01:00"')
            return INVALID
        if moment.tzinfo is None:
            problems.add(path, f"{show(text)} has no time zone", f'add one: "{text}Z" for UTC, or "+01:00"')
            return INVALID
        return moment.astimezone(UTC).isoformat()


class ObjectAcl(OneOf):
    """A canned ACL a copy into another account's bucket may set (``OBJECT_ACLS``)."""

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, str) and value in CANNED_ACLS and value not in self.options:
            problems.add(path, f"{show(value)} is not accepted: sfncopy sets only {self.expected} (they give "
                               "the target bucket's owner access to the copies)",
                         'write "bucket-owner-full-control", or remove "acl" for S3\'s default (private to the writer)')
            return INVALID
        return super().__call__(value, path, problems)


class FileType(Text):
    """An extension without its dot, lower case ("JPG", ".jpg" -> "jpg"; "tar.gz" works); "*" for all."""

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        text = super().__call__(value, path, problems)
        if text is INVALID:
            return text
        wanted = text.strip().removeprefix("*.").removeprefix(".").lower()
        if text == "*":
            return text
        if "*" in text or "/" in text or text != text.strip() or not wanted:
            problems.add(path, f"{show(text)} is not a file extension",
                         f'write e.g. "{wanted or "jpg"}" (or "*" for every file; use "include" for patterns)')
            return INVALID
        return wanted


class Sse(Kind):
    """ "AES256", "aws:kms", or {"algorithm": ..., "kms_key_id": ...}; parsed to an SseConfig."""

    record = Record({"algorithm": Field(OneOf(SSE_ALGORITHMS), required=True, example='"aws:kms"'),
                     "kms_key_id": Field(Text())}, example='{"algorithm": "aws:kms", "kms_key_id": "..."}')

    @property
    def expected(self) -> str:
        return '"AES256", "aws:kms" or an object'

    def __call__(self, value: Any, path: str, problems: Problems) -> Any:
        if isinstance(value, str) or not isinstance(value, dict):
            algorithm = OneOf(SSE_ALGORITHMS)(value, path, problems)
            return INVALID if algorithm is INVALID else SseConfig(algorithm)
        parsed = self.record(value, path, problems)
        algorithm, key_id = parsed.values.get("algorithm"), parsed.values.get("kms_key_id", "")
        if algorithm is None:
            return INVALID
        if key_id and algorithm != "aws:kms":
            problems.add(join(path, "kms_key_id"), f"a KMS key applies only to aws:kms, not {algorithm}",
                         'set "algorithm": "aws:kms" or remove "kms_key_id"')
            return INVALID
        return SseConfig(algorithm, key_id)


# --- Checks across fields ----------------------------------------------------------------------------
def _check_sizes(target: Parsed, problems: Problems) -> None:
    low, high = target.values.get("min_size"), target.values.get("max_size")
    if low is not None and high is not None and low > high:
        problems.add(join(target.path, "max_size"), f"max_size {high} is less than min_size {low}",
                     "make max_size at least min_size (both are inclusive byte counts)")


def _check_window(record: Parsed, problems: Problems) -> None:
    after, before = record.values.get("modified_after"), record.values.get("modified_before")
    if after is not None and before is not None and after >= before:
        problems.add(join(record.path, "modified_before"),
                     f"modified_before {before} is not after modified_after {after}: nothing could be selected",
                     "make modified_before later than modified_after (the window is [after, before))")


def _check_target(target: Parsed, problems: Problems) -> None:
    _check_sizes(target, problems)
    _check_window(target, problems)


def _check_document(document: Parsed, problems: Problems) -> None:
    sources = [s for s in document.values.get("source_s3_config", []) if "s3_bucket" in s.values]
    targets = [t for t in document.values.get("target_s3_config", []) if "s3_bucket" in t.values]
    _check_owners([*sources, *targets], problems)
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        where = (source.values["s3_bucket"], source.values.get("s3_path", ""))
        if where in seen:
            problems.add(source.path, f"s3://{where[0]}/{where[1]} is listed twice (also at {seen[where]})",
                         "remove one of them")
        seen.setdefault(where, source.path)
    for inner in sources:
        _check_nested(inner, sources, problems)
    for target in targets:
        for source in sources:
            _check_overlap(source, target, problems)


def _check_owners(places: list[Parsed], problems: Problems) -> None:
    """A bucket has one owner: refuse two different expected_bucket_owner values for one bucket (the value
    is sent with every request to the bucket, whichever source or target names it)."""
    first: dict[str, Parsed] = {}
    for place in places:
        bucket, owner = place.values["s3_bucket"], place.values.get("expected_bucket_owner")
        if owner is None:
            continue
        seen = first.setdefault(bucket, place)
        if seen.values["expected_bucket_owner"] != owner:
            problems.add(join(place.path, "expected_bucket_owner"),
                         f'bucket "{bucket}" is expected to be owned by {owner} here but by '
                         f'{seen.values["expected_bucket_owner"]} at {seen.path}',
                         "a bucket has one owner: write the same account id in both")


def _check_nested(inner: Parsed, sources: list[Parsed], problems: Problems) -> None:
    """Refuse a source inside another source of the same bucket: both would list its objects, and each
    would copy them (to keys relative to its own s3_path)."""
    bucket, path = inner.values["s3_bucket"], inner.values.get("s3_path", "")
    for outer in sources:
        around = outer.values.get("s3_path", "")
        if outer.values["s3_bucket"] == bucket and around != path and path.startswith(around):
            problems.add(join(inner.path, "s3_path"),
                         f"s3://{bucket}/{path} is inside the source s3://{bucket}/{around} ({outer.path}), so "
                         "its objects would be listed and copied twice",
                         "remove this source (the other one lists its objects already), or narrow the other's s3_path")
            return


def _check_overlap(source: Parsed, target: Parsed, problems: Problems) -> None:
    """Refuse a target that could overwrite its own source, or whose copies the source listing would see."""
    bucket = source.values["s3_bucket"]
    if target.values["s3_bucket"] != bucket:
        return
    src, dst = source.values.get("s3_path", ""), target.values.get("s3_path", "")
    if src == dst:
        wrong = "is the source {source} itself, so the copy would overwrite it"
    elif dst.startswith(src):
        wrong = "is inside the source {source}, so the copy would feed itself"
    elif src.startswith(dst):
        wrong = "contains the source {source}, so copies could overwrite source objects"
    else:
        return
    where = f"s3://{bucket}/{src} ({source.path})"
    problems.add(join(target.path, "s3_path"), f"target s3://{bucket}/{dst} " + wrong.format(source=where),
                 f'choose an s3_path outside "{src}", or another bucket')


# --- The document, as data ---------------------------------------------------------------------------
BUCKET = BucketName()
# Incremental selection, on a source (every object of it) or a target rule (the objects it takes): last
# modified in [modified_after, modified_before), in one of storage_classes.
SELECTION = {
    "modified_after": Field(Timestamp()),
    "modified_before": Field(Timestamp()),
    "storage_classes": Field(ListOf(OneOf(LISTED_STORAGE_CLASSES), empty_fix='list at least one, e.g. ["STANDARD"]')),
}
SOURCE = Record({
    "s3_bucket": Field(BUCKET, required=True, example='"my-source"'),
    "s3_path": Field(Prefix()),
    "expected_bucket_owner": Field(AccountId()),
    "request_payer": Field(OneOf(REQUEST_PAYERS)),
    **SELECTION,
}, example='{"s3_bucket": "my-source", "s3_path": "source/"}', check=_check_window)
TARGET = Record({
    "file_types": Field(ListOf(FileType(), empty_fix='list at least one, e.g. ["jpg"], or ["*"] for every file'),
                        required=True, example='["jpg"]'),
    "s3_bucket": Field(BUCKET, required=True, example='"my-target"'),
    "s3_path": Field(Prefix(folder=True)),
    "include": Field(ListOf(Text(), allow_empty=True)),
    "exclude": Field(ListOf(Text(), allow_empty=True)),
    "min_size": Field(WholeNumber(low=0)),
    "max_size": Field(WholeNumber(low=0)),
    "flatten": Field(Flag()),
    "expected_bucket_owner": Field(AccountId()),
    **SELECTION,
}, example='{"file_types": ["jpg"], "s3_bucket": "my-target", "s3_path": "images/"}', check=_check_target)
# options.restore (lambdas/restoring/): the retrieval tiers of RestoreObject (Amazon S3 API Reference,
# "RestoreObject", GlacierJobParameters.Tier: Standard | Bulk | Expedited) and the days the restored copy stays.
RESTORE_TIERS = ("Bulk", "Standard", "Expedited")
RESTORE = Record({
    "tier": Field(OneOf(RESTORE_TIERS), required=True, example='"Bulk"'),
    "days": Field(WholeNumber(low=1), required=True, example="1"),
}, example='{"tier": "Bulk", "days": 1}')
RESTORE_FIX = ("set restore_archived=true in envs/<ENV>-env.sh and redeploy (it adds the restore function and "
               "grants s3:RestoreObject on the sources)")
OPTIONS = Record({  # the keys are CopyOptions' fields, one for one
    "overwrite": Field(OneOf(("if-different", "always", "never"))),
    "max_payload_size_mb": Field(WholeNumber(low=MIN_PAYLOAD_SIZE_MB)),
    "max_objects_per_payload": Field(WholeNumber(low=1)),
    "storage_class": Field(OneOf(STORAGE_CLASSES)),
    "sse": Field(Sse()),
    "preserve_metadata": Field(Flag()),
    "preserve_tags": Field(Flag()),
    "dry_run": Field(Flag()),
    "max_failed_objects": Field(WholeNumber(low=0)),
    "report_unmatched": Field(Flag()),
    "acl": Field(ObjectAcl(OBJECT_ACLS)),
    "restore": Field(RESTORE),
}, example='{"overwrite": "if-different"}')
COPY_CONFIG = Record({
    "source_s3_config": Field(OneOrList(SOURCE), required=True, example=SOURCE.example),
    "target_s3_config": Field(ListOf(TARGET, empty_fix="add at least one target"), required=True,
                              example=f"[{TARGET.example}]"),
    "options": Field(OPTIONS),
}, example='{"source_s3_config": {...}, "target_s3_config": [...]}', check=_check_document)
DOCUMENT = Record({ROOT: Field(COPY_CONFIG, required=True, example=COPY_CONFIG.example)},
                  example='{"s3_copy_config": {...}}')


# --- Entry points ------------------------------------------------------------------------------------
def parse_config(document: Any) -> CopyConfig:
    """The execution input ``{"s3_copy_config": {...}}`` -> CopyConfig, or ConfigError naming every problem."""
    problems = Problems()
    if isinstance(document, dict) and ROOT not in document and set(document) & set(COPY_CONFIG.fields):
        problems.add("", f"expected {DOCUMENT.example}, got an object with keys {', '.join(map(str, document))}",
                     f'put it under "{ROOT}"')
        raise ConfigError(problems.items)
    if isinstance(document, str):
        problems.add("", f"expected {DOCUMENT.example}, got a string", "pass the JSON object itself, not a string")
        raise ConfigError(problems.items)
    parsed = DOCUMENT(document, "", problems)
    if problems:
        raise ConfigError(problems.items)
    return _build(parsed.values[ROOT])


def load_config_text(text: str, origin: str) -> CopyConfig:
    """Parse the JSON text of file ``origin``, then validate it like ``parse_config``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError([_json_problem(text, err, origin)]) from err
    return parse_config(document)


def check_allowed_buckets(config: CopyConfig, source_buckets: tuple[str, ...],
                          target_buckets: tuple[str, ...]) -> list[str]:
    """Problems for buckets this deployed stack may not touch (patterns as in IAM: ``("*",)`` allows all)."""
    problems = Problems()
    many = len(config.sources) > 1
    places = [(join(ROOT + ".source_s3_config", i) if many else ROOT + ".source_s3_config", s.bucket,
               source_buckets, "source_buckets", "read") for i, s in enumerate(config.sources)]
    places += [(join(ROOT + ".target_s3_config", t.index), t.bucket, target_buckets, "target_buckets", "write")
               for t in config.targets]
    for path, bucket, allowed, setting, verb in places:
        if not any(fnmatch.fnmatchcase(bucket, pattern) for pattern in allowed):
            listed = ", ".join(allowed) or "none"
            problems.add(join(path, "s3_bucket"), f'this stack may not {verb} bucket "{bucket}" (allowed: {listed})',
                         ALLOWED_BUCKETS_FIX.format(setting=setting))
    return problems.items


def check_object_acl(config: CopyConfig, allowed: str) -> list[str]:
    """Problems when ``options.acl`` asks for an ACL this deployed stack may not set: ``allowed`` is its
    env's object_acl ("" when its roles have no s3:PutObjectAcl), the one ACL its policies allow."""
    acl = config.options.acl
    if acl is None or acl == allowed:
        return []
    problems = Problems()
    path = ROOT + ".options.acl"
    if not allowed:
        problems.add(path, f'this stack may not set object ACLs ("{acl}"): its roles have no s3:PutObjectAcl',
                     OBJECT_ACL_FIX.format(acl=acl) + ', or remove "acl"')
    else:
        problems.add(path, f'this stack may set only the ACL "{allowed}" (object_acl of its env file), not "{acl}"',
                     f'write "{allowed}", or ' + OBJECT_ACL_FIX.format(acl=acl))
    return problems.items


def check_restore(config: CopyConfig, enabled: bool) -> list[str]:
    """Problems when ``options.restore`` asks a stack deployed without restore_archived=true to restore."""
    if config.options.restore is None or enabled:
        return []
    problems = Problems()
    problems.add(ROOT + ".options.restore", "this stack cannot restore archived objects (its env file does not "
                                            "set restore_archived=true)", RESTORE_FIX + ', or remove "restore"')
    return problems.items


# --- Helpers -----------------------------------------------------------------------------------------
def _build(document: Parsed) -> CopyConfig:
    options = document.values.get("options")
    return CopyConfig(
        sources=tuple(SourceConfig(s.values["s3_bucket"], s.values.get("s3_path", ""),
                                   s.values.get("expected_bucket_owner", ""), s.values.get("request_payer", ""),
                                   **_selection(s.values))
                      for s in document.values["source_s3_config"]),
        targets=tuple(_target(i, t.values) for i, t in enumerate(document.values["target_s3_config"])),
        options=_options(options.values) if options else CopyOptions(),
    )


def _options(values: dict[str, Any]) -> CopyOptions:
    restore = values.get("restore")
    if restore is None:
        return CopyOptions(**values)
    return CopyOptions(**{**values, "restore": RestoreOptions(restore.values["tier"], restore.values["days"])})


def _target(index: int, values: dict[str, Any]) -> TargetConfig:
    return TargetConfig(
        index=index,
        bucket=values["s3_bucket"],
        prefix=values.get("s3_path", ""),
        file_types=tuple(dict.fromkeys(values["file_types"])),
        include=tuple(values.get("include", ())),
        exclude=tuple(values.get("exclude", ())),
        min_size=values.get("min_size"),
        max_size=values.get("max_size"),
        flatten=values.get("flatten", False),
        expected_bucket_owner=values.get("expected_bucket_owner", ""),
        **_selection(values),
    )


def _selection(values: dict[str, Any]) -> dict[str, Any]:
    return {"modified_after": values.get("modified_after", ""), "modified_before": values.get("modified_before", ""),
            "storage_classes": tuple(dict.fromkeys(values.get("storage_classes", ())))}


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"{line}:{index - text.rfind(chr(10), 0, index)}"


def _json_problem(text: str, err: json.JSONDecodeError, origin: str) -> str:
    """One problem naming the file, line and column, with a hint for the usual mistakes."""
    before = text[: err.pos].rstrip()
    if before.endswith(",") and text[err.pos: err.pos + 1] in ("}", "]"):
        at = _line_column(text, len(before) - 1)
        wrong, fix = f'trailing comma before "{text[err.pos]}"', "remove the trailing comma (JSON allows none)"
    elif not text.strip():
        at, wrong, fix = "1:1", "the file is empty", 'write {"s3_copy_config": {...}}'
    else:
        at, wrong = f"{err.lineno}:{err.colno}", f"invalid JSON: {err.msg}"
        fix = ("use double quotes for keys and strings" if text[err.pos: err.pos + 1] == "'"
               else "fix the JSON syntax there")
    return f"{origin}:{at}: {wrong}; {fix}"
