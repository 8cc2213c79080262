"""Which targets an object goes to, and its key there. Pure functions: no I/O, no state.

Keys pass through byte for byte (spaces, "+", "%", unicode): nothing here encodes or decodes them.

Matching a target's rule, on the key relative to the source prefix:
- ``file_types``: the base name ends with "." + the type, case-insensitively, after a non-empty stem, so
  "tar.gz" matches "a.TAR.GZ", while "jpg" matches neither "a.jpgx" nor "jpg" (no extension) nor ".jpg"
  (a hidden file without an extension). "*" matches every key.
- ``include`` / ``exclude``: shell-style globs matched case-sensitively (``fnmatch.fnmatchcase``) against the
  whole relative key. Unlike a shell, ``*`` also crosses "/": "*.jpg" matches "a/b/c.jpg", and "raw/*"
  matches everything under "raw/". With include patterns at least one must match; no exclude may match.
- ``min_size`` / ``max_size``: inclusive byte bounds.
- ``modified_after`` / ``modified_before``: the object's LastModified is in [after, before) (after inclusive,
  before exclusive, so consecutive windows never overlap nor leave a gap); an object whose time is unknown is
  not selected. ``storage_classes``: its listed storage class is one of them (an unnamed class is STANDARD,
  as ListObjectsV2 reports it). On a source the same rules select the objects any target may take: an
  object outside them counts as matching no target.
"""

from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatchcase
from functools import lru_cache

from lambdas.models import SourceConfig, SourceObject, TargetConfig

ALL_FILES = "*"
# Distinct extensions one Router remembers: a listing has a handful; a cap keeps odd listings (a unique
# "extension" per key, such as "log.1", "log.2", ...) from growing it without end.
EXTENSION_CACHE_SIZE = 4096


def is_folder_marker(key: str) -> bool:
    """A key ending in "/" is a console "folder", not a file: it is never copied."""
    return key.endswith("/")


def base_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def relative_key(key: str, source_prefix: str) -> str:
    """The key below the source prefix: what the target prefix is joined to.

    A prefix that names a folder without its "/" ("source" for "source/a.jpg") does not leave a leading
    "/" behind; a prefix that names one object ("source/a.jpg" itself) leaves its base name.
    """
    if not key.startswith(source_prefix):
        raise ValueError(f"key {key!r} is not under the source prefix {source_prefix!r}")
    rel = key[len(source_prefix):]
    if not rel:
        return base_name(key)
    if source_prefix and not source_prefix.endswith("/") and rel.startswith("/"):
        return rel[1:]
    return rel


def has_file_type(name: str, file_type: str) -> bool:
    """Whether base name ``name`` has extension ``file_type`` (lower case, no dot), case-insensitively."""
    return file_type == ALL_FILES or file_type in extensions(name)


def extensions(name: str) -> frozenset[str]:
    """Every extension base name ``name`` has, lower case: "a.TAR.GZ" -> {"tar.gz", "gz"}; "" has none,
    and neither has ".jpg" (a hidden file: no stem before its dot)."""
    parts = name.lower().split(".")
    found = (".".join(parts[i:]) for i in range(1, len(parts)) if i > 1 or parts[0])
    return frozenset(ext for ext in found if ext)


def last_extension(name: str) -> str:
    """The extension after the last dot, lower case ("" without one): all a dot-free file type can match."""
    dot = name.rfind(".")
    return name[dot + 1:].lower() if 0 < dot < len(name) - 1 else ""


@lru_cache(maxsize=1024)
def _type_set(file_types: tuple[str, ...]) -> frozenset[str]:
    return frozenset(file_types)


def matches(target: TargetConfig, rel_key: str, size: int, exts: frozenset[str] | None = None,
            last_modified: str = "", storage_class: str = "STANDARD") -> bool:
    """Whether the object at ``rel_key`` (relative to its source prefix) of ``size`` bytes, last modified at
    ``last_modified`` (ISO 8601), goes to ``target``.

    ``exts`` (the key's ``extensions``) may be passed in when one key is matched against many targets.
    """
    types = _type_set(target.file_types)
    if ALL_FILES not in types and types.isdisjoint(extensions(base_name(rel_key)) if exts is None else exts):
        return False
    return _other_rules_match(target, rel_key, size, last_modified, storage_class)


def selected(rule: SourceConfig | TargetConfig, last_modified: str, storage_class: str) -> bool:
    """Whether an object passes a source's or a target's incremental selection (see the module docstring)."""
    if rule.storage_classes and (storage_class or "STANDARD") not in rule.storage_classes:
        return False
    if not (rule.modified_after or rule.modified_before):
        return True
    if not last_modified:
        return False
    moment = datetime.fromisoformat(last_modified)
    if rule.modified_after and moment < _moment(rule.modified_after):
        return False
    return not (rule.modified_before and moment >= _moment(rule.modified_before))


@lru_cache(maxsize=64)
def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _has_selection(rule: SourceConfig | TargetConfig) -> bool:
    return bool(rule.modified_after or rule.modified_before or rule.storage_classes)


def target_key(target: TargetConfig, rel_key: str) -> str:
    """The key in the target bucket: the target prefix + the relative key (or only its base name with flatten)."""
    return target.prefix + (base_name(rel_key) if target.flatten else rel_key)


def route(obj: SourceObject, source: SourceConfig, targets: tuple[TargetConfig, ...]) -> list[tuple[TargetConfig, str]]:
    """Every target whose rule matches ``obj`` (an object may go to several), each with its target key.

    Folder markers and objects no rule matches give [].
    """
    if obj.bucket != source.bucket:
        raise ValueError(f"object s3://{obj.bucket}/{obj.key} is not from source bucket {source.bucket!r}")
    if is_folder_marker(obj.key) or not selected(source, obj.last_modified, obj.storage_class):
        return []
    rel = relative_key(obj.key, source.prefix)
    exts = extensions(base_name(rel))
    return [(target, target_key(target, rel)) for target in targets
            if matches(target, rel, obj.size, exts, obj.last_modified, obj.storage_class)]


class Router:
    """``route`` for one source and its targets, with the per-target work done once: the planner routes
    every listed object, so this is its hottest path (a million calls in a big run).

    Which targets an object's file type selects depends on its base name's extension alone, and a listing
    has few of them, so that choice is made once per extension and kept (``_by_extension``): the common
    object costs one dict lookup. The other rules (sizes, globs) read the whole key and the size, so they
    still run for every object, for the targets that have them."""

    def __init__(self, source: SourceConfig, targets: tuple[TargetConfig, ...]) -> None:
        self.source = source
        self._prefix = source.prefix
        # With no prefix or one ending in "/", the relative key is simply the rest of the key.
        self._plain_prefix = source.prefix == "" or source.prefix.endswith("/")
        self._cut = len(source.prefix)
        self._every = tuple(t for t in targets if ALL_FILES in t.file_types)
        types = {ft for t in targets for ft in t.file_types} - {ALL_FILES}
        # file type -> its targets and the "*" ones, each once, in config order
        self._by_type = {ft: tuple(t for t in targets if ft in t.file_types or ALL_FILES in t.file_types)
                         for ft in types}
        self._dotted = any("." in file_type for file_type in types)
        self._ruled = frozenset(id(t) for t in targets if _has_other_rules(t))
        self._position = {id(t): i for i, t in enumerate(targets)}
        self._select_source = _has_selection(source)
        # extension part of a base name (see _extension_part) -> (its targets, whether any has other rules)
        self._by_extension: dict[str, tuple[tuple[TargetConfig, ...], bool]] = {}

    def route(self, obj: SourceObject) -> list[tuple[TargetConfig, str]]:
        key = obj.key
        if key[-1:] == "/":
            return []
        if self._select_source and not selected(self.source, obj.last_modified, obj.storage_class):
            return []
        cut = self._cut
        if self._plain_prefix and key.startswith(self._prefix) and len(key) > cut:
            rel = key[cut:]  # the common case, without relative_key's special cases
        else:
            rel = relative_key(key, self._prefix)
        name = rel[rel.rfind("/") + 1:]
        if self._dotted:
            part = self._extension_part(name)
        else:  # only the last extension can match: the part after the last dot, inline
            dot = name.rfind(".")
            part = name[dot + 1:] if 0 < dot < len(name) - 1 else ""
        chosen = self._by_extension.get(part)
        if chosen is None:
            chosen = self._choose(part, name)
        found, ruled = chosen
        if not ruled:
            if len(found) == 1:
                only = found[0]
                return [(only, only.prefix + (name if only.flatten else rel))]
            return [(t, t.prefix + (name if t.flatten else rel)) for t in found]
        return [(t, t.prefix + (name if t.flatten else rel)) for t in found
                if id(t) not in self._ruled
                or _other_rules_match(t, rel, obj.size, obj.last_modified, obj.storage_class)]

    def _extension_part(self, name: str) -> str:
        """What of base name ``name`` its ``extensions`` depend on: "" without a dot, else everything from
        the first dot, marked with a leading "/" (never in a base name) when there is no stem before it."""
        dot = name.find(".")
        if dot < 0:
            return ""
        return name[dot:] if dot > 0 else "/" + name

    def _choose(self, part: str, name: str) -> tuple[tuple[TargetConfig, ...], bool]:
        """The targets ``name``'s file type selects, in config order, and whether any has other rules;
        kept for ``part`` (its extension part) unless the cache is full (a listing of unique extensions)."""
        if self._dotted:
            found = self._targets_of(extensions(name))
        else:
            found = self._by_type.get(part.lower(), self._every) if part else self._every
        chosen = found, any(id(t) in self._ruled for t in found)
        if len(self._by_extension) < EXTENSION_CACHE_SIZE:
            self._by_extension[part] = chosen
        return chosen

    def _targets_of(self, exts: frozenset[str]) -> tuple[TargetConfig, ...]:
        chosen = {id(t): t for ext in exts for t in self._by_type.get(ext, ())}
        return tuple(sorted(chosen.values(), key=lambda t: self._position[id(t)])) if chosen else self._every


def _has_other_rules(target: TargetConfig) -> bool:
    return bool(target.min_size is not None or target.max_size is not None or target.include or target.exclude
                or _has_selection(target))


def _other_rules_match(target: TargetConfig, rel_key: str, size: int, last_modified: str = "",
                       storage_class: str = "STANDARD") -> bool:
    """The rules besides the file type: sizes, include and exclude globs, incremental selection."""
    if target.min_size is not None and size < target.min_size:
        return False
    if _has_selection(target) and not selected(target, last_modified, storage_class):
        return False
    if target.max_size is not None and size > target.max_size:
        return False
    if target.include and not any(fnmatchcase(rel_key, pattern) for pattern in target.include):
        return False
    return not any(fnmatchcase(rel_key, pattern) for pattern in target.exclude)
