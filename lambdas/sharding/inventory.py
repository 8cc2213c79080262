"""A listing given as input, as S3 Batch Operations takes one: an S3 Inventory report or a CSV of keys.

``source_s3_config.manifest`` names, instead of listing the source:

- an S3 Inventory ``manifest.json`` (``s3://inventory-bucket/.../manifest.json``). Its ``fileFormat`` must be
  "CSV", its ``fileSchema`` names the columns of its files, and ``files`` lists them (``key``, ``size``,
  ``MD5checksum``) in the inventory's destination bucket (``destinationBucket``, an ARN): Amazon S3 user
  guide, "Locating your inventory list" ("Inventory manifest": the manifest gives the source and destination
  bucket, the version, the creation timestamp, "the format and schema of the inventory files" and "a list of
  the inventory files"). CSV inventory files are gzip-compressed (same page: "example-file-name.csv.gz").
  ORC and Parquet inventories are refused (Batch Operations also takes only CSV inventories: API reference,
  JobManifestSpec, ``S3InventoryReport_CSV_20161130``).
- a CSV of ``bucket,key[,version_id]`` rows, the S3 Batch Operations manifest format
  (``S3BatchOperations_CSV_20180820``, API reference, JobManifestSpec), plain text.

Keys in both are URL-encoded: "The contents of the manifest must be URL encoded" (Amazon S3 user guide,
"S3 Batch Operations basics", "Specifying a manifest"); an inventory's CSV key column is URL-encoded too
(Amazon S3 user guide, "Amazon S3 Inventory", inventory list contents, Key: unverified wording). They are
decoded with ``urllib.parse.unquote_plus`` ("+" is a space, "%2B" a plus sign: form encoding, which is what
inventory reports are understood to use; unverified).

The object's ``s3_bucket`` and ``s3_path`` still apply: rows of other buckets, or outside the prefix, are
left out (and counted in the log), and target keys are relative to ``s3_path`` as for a listing.

Rows are read as streams (one gzip file, or one byte range of the CSV, at a time) into SourceObjects. A CSV
row has no size or ETag: each row costs a HEAD, sent ``threads`` at a time for a batch of ``HEAD_BATCH``
rows (so one shard sends at most ``threads`` requests at once, and the Distributed Map's concurrency bounds
the shards; S3 serves at least 5,500 GET/HEAD per second per prefix: Amazon S3 user guide, "Best practices
design patterns: optimizing Amazon S3 performance", as lambdas/limits.py notes). An inventory
without the Size or ETag column is read the same way. What already exists at each target key is asked
with a HEAD per row too (an inventory is not in the targets' key order), unless ``overwrite`` is "always".

A manifest shard is a set of whole inventory files (gzip cannot be entered mid-stream), or one byte range
of the CSV (a row belongs to the range where it starts). Its cursor is the position of the last row done.
Target-key collisions are caught within one batch of rows; a configuration whose targets gather keys from
anywhere (``partition.order_problems``: flatten, nested target prefixes) reads every manifest in one shard,
which keeps the claimed target keys across batches, as a listed run does. A row listed twice in one
manifest, in two different batches, is planned twice (the same bytes copied twice).
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
import math
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from lambdas import binning, limits
from lambdas.config import bucket_name_problems
from lambdas.errors import ConfigError, NoSuchKeyError, ObjectError
from lambdas.gateway import S3Gateway, error_code, strip_etag, translate
from lambdas.logs import get_logger
from lambdas.models import CopyConfig, ExistingTarget, SkippedObject, SourceObject, TargetConfig
from lambdas.planning import FAILED_AT_PLAN
from lambdas.sharding.keyspace import KeyRange
from lambdas.sharding.layout import ShardingContext, ShardSummary
from lambdas.sharding.listing import RequestCount, access_args
from lambdas.sharding.partition import PartitionParams, ShardSpec

log = get_logger("inventory")

FIELD = "manifest"
UNITS = "units.json"
ManifestKind = Literal["inventory", "csv"]
INVENTORY: ManifestKind = "inventory"
CSV_MANIFEST: ManifestKind = "csv"
# Rows looked up (HEAD) together; bytes of plain CSV per shard; compressed inventory bytes per shard.
HEAD_BATCH = 512
CSV_BYTES_PER_SHARD = 64 * limits.MiB
INVENTORY_BYTES_PER_SHARD = 32 * limits.MiB
_READ_CHUNK = 1 * limits.MiB


# --- the config field --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestRef:
    bucket: str
    key: str
    kind: ManifestKind

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestRef:
        kind: ManifestKind = INVENTORY if data["kind"] == INVENTORY else CSV_MANIFEST
        return cls(bucket=data["bucket"], key=data["key"], kind=kind)


def _source_entries(document: Any) -> tuple[list[Any], bool]:
    copy_config = document.get("s3_copy_config") if isinstance(document, dict) else None
    sources = copy_config.get("source_s3_config") if isinstance(copy_config, dict) else None
    if isinstance(sources, list):
        return sources, True
    return ([sources] if isinstance(sources, dict) else []), False


def manifest_sources(document: Any) -> list[ManifestRef | None]:
    """Each source's ``manifest`` (None without one), validated: ConfigError names every problem with its
    path and fix, as lambdas/config.py does."""
    entries, many = _source_entries(document)
    refs: list[ManifestRef | None] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        path = f"s3_copy_config.source_s3_config{f'[{index}]' if many else ''}.{FIELD}"
        value = entry.get(FIELD) if isinstance(entry, dict) else None
        if value is None:
            refs.append(None)
            continue
        ref, problem = parse_manifest_uri(value)
        if problem:
            problems.append(f"{path}: {problem}")
        refs.append(ref)
    if problems:
        raise ConfigError(problems)
    return refs


def parse_manifest_uri(value: Any) -> tuple[ManifestRef | None, str]:
    """``s3://bucket/key`` of a manifest.json or a .csv; the problem ("" when none) says how to fix it."""
    example = 'write e.g. "s3://my-inventory/source/daily/2024-01-01T00-00Z/manifest.json" or "s3://my-lists/keys.csv"'
    if not isinstance(value, str):
        return None, f"expected an s3:// URI string, got {type(value).__name__}; {example}"
    if not value.startswith("s3://") or "/" not in value[5:]:
        return None, f"expected s3://bucket/key, got {value!r}; {example}"
    bucket, key = value[5:].split("/", 1)
    broken = bucket_name_problems(bucket)
    if broken:
        return None, f"bucket name {bucket!r} " + " and ".join(broken)
    if key.endswith("manifest.json"):
        return ManifestRef(bucket, key, INVENTORY), ""
    if key.lower().endswith(".csv"):
        return ManifestRef(bucket, key, CSV_MANIFEST), ""
    return None, (f"{value!r} is neither an S3 Inventory manifest.json nor a .csv of bucket,key[,version_id] rows; "
                  + example)


def without_manifests(document: Any) -> Any:
    """The document without the ``manifest`` fields, for lambdas/config.py (which does not know the field yet)."""
    entries, _ = _source_entries(document)
    if not any(isinstance(e, dict) and FIELD in e for e in entries):
        return document
    clean = copy.deepcopy(document)
    for entry in _source_entries(clean)[0]:
        if isinstance(entry, dict):
            entry.pop(FIELD, None)
    return clean


# --- formats (pure) ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InventoryFile:
    key: str
    size: int


@dataclass(frozen=True)
class InventoryManifest:
    source_bucket: str
    bucket: str  # where the files are (the inventory's destination bucket)
    columns: tuple[str, ...]
    files: tuple[InventoryFile, ...]


def parse_inventory_manifest(data: Any, where: str) -> InventoryManifest:
    """A manifest.json's fields, or ValueError naming what is wrong with ``where`` (its URI)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object (an S3 Inventory manifest.json)")
    fmt = str(data.get("fileFormat", ""))
    if fmt.upper() != "CSV":
        raise ValueError(f"{where}: fileFormat is {fmt!r}; only CSV inventories can be read (configure the "
                         "inventory with the CSV output format)")
    columns = tuple(c.strip() for c in str(data.get("fileSchema", "")).split(",") if c.strip())
    missing = [c for c in ("Bucket", "Key") if c not in columns]
    if missing:
        raise ValueError(f"{where}: fileSchema {data.get('fileSchema')!r} has no {' or '.join(missing)} column")
    destination = str(data.get("destinationBucket", ""))
    bucket = destination.removeprefix("arn:aws:s3:::")
    files = data.get("files")
    if not bucket or not isinstance(files, list):
        raise ValueError(f"{where}: expected destinationBucket and a list of files")
    return InventoryManifest(source_bucket=str(data.get("sourceBucket", "")), bucket=bucket, columns=columns,
                             files=tuple(InventoryFile(str(f["key"]), int(f.get("size", 0))) for f in files))


def decode_key(raw: str) -> str:
    return urllib.parse.unquote_plus(raw)


def inventory_objects(rows: Iterable[Sequence[str]], columns: Sequence[str]) -> Iterator[SourceObject | None]:
    """One SourceObject per current object row (size -1 and etag "" when the schema has no Size or ETag
    column: a HEAD must tell them); None for rows of older versions and delete markers."""
    at = {name: i for i, name in enumerate(columns)}

    def column(row: Sequence[str], name: str) -> str:
        i = at.get(name)
        return row[i] if i is not None and i < len(row) else ""

    for row in rows:
        if not row:
            continue
        if column(row, "IsLatest").lower() == "false" or column(row, "IsDeleteMarker").lower() == "true":
            yield None
            continue
        size = column(row, "Size")
        yield SourceObject(bucket=column(row, "Bucket"), key=decode_key(column(row, "Key")),
                           size=int(size) if size else -1, etag=strip_etag(column(row, "ETag")),
                           storage_class=column(row, "StorageClass") or "STANDARD",
                           last_modified=column(row, "LastModifiedDate"),
                           checksum_algorithm=column(row, "ChecksumAlgorithm"))


def csv_objects(rows: Iterable[Sequence[str]]) -> Iterator[SourceObject | None]:
    """``bucket,key[,version_id]`` rows as SourceObjects without size or ETag (size -1: a HEAD tells)."""
    for row in rows:
        if len(row) < 2 or not row[0]:
            yield None
            continue
        yield SourceObject(bucket=row[0].strip(), key=decode_key(row[1]), size=-1, etag="")


def lines_in_range(chunks: Iterable[bytes], first: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """The lines (with their offsets) that *start* in ``[start, end)`` of a stream read from offset ``first``
    (``start - 1`` when ``start > 0``: a line that starts exactly at ``start`` follows the newline read
    first, and a line begun before ``start`` is read to its end and dropped). The last line may run past
    ``end``; reading stops at the first line that starts at or after ``end``."""
    offset = first
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        newline = buffer.find(b"\n")
        while newline >= 0:
            line, buffer = buffer[:newline + 1], buffer[newline + 1:]
            begin, offset = offset, offset + newline + 1
            if begin >= end:
                return
            if begin >= start:
                yield begin, line
            newline = buffer.find(b"\n")
    if buffer and start <= offset < end:
        yield offset, buffer


# --- units: what one manifest shard reads ------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """Part of one source's manifest: whole inventory files, or a byte range of a CSV manifest."""

    source: int
    kind: ManifestKind
    bucket: str
    keys: tuple[str, ...]  # inventory files, or the one CSV
    start: int = 0  # CSV byte range [start, end)
    end: int = 0
    columns: tuple[str, ...] = ()  # the inventory's fileSchema

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "bucket": self.bucket, "keys": list(self.keys),
                "start": self.start, "end": self.end, "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        kind: ManifestKind = INVENTORY if data["kind"] == INVENTORY else CSV_MANIFEST
        return cls(source=int(data["source"]), kind=kind, bucket=data["bucket"], keys=tuple(data["keys"]),
                   start=int(data.get("start", 0)), end=int(data.get("end", 0)), columns=tuple(data.get("columns", ())))


@dataclass(frozen=True)
class Units:
    shards: tuple[ShardSpec, ...]
    by_shard: tuple[tuple[Unit, ...], ...]
    estimated_objects: int

    def to_dict(self) -> dict[str, Any]:
        return {"estimated_objects": self.estimated_objects,
                "shards": [[u.to_dict() for u in units] for units in self.by_shard]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Units:
        by_shard = tuple(tuple(Unit.from_dict(u) for u in units) for units in data["shards"])
        return cls(shards=tuple(ShardSpec(i, KeyRange(), 0) for i in range(len(by_shard))), by_shard=by_shard,
                   estimated_objects=int(data.get("estimated_objects", -1)))


def assign_units(units: Sequence[tuple[Unit, int]], bytes_per_shard: int, max_shards: int) -> list[list[Unit]]:
    """Units (with their bytes) onto shards, largest first onto the lightest (binning.assign)."""
    total = sum(size for _, size in units)
    count = max(1, min(max_shards, len(units), math.ceil(total / max(1, bytes_per_shard))))
    shares, _ = binning.assign([size for _, size in units], count)
    return [[units[i][0] for i in sorted(share)] for share in shares if share]


def plan_units(sources: Sequence[ManifestRef | None], config: CopyConfig, s3: S3Gateway, params: PartitionParams,
               count: RequestCount, one_shard: bool = False) -> Units:
    """Cut every source's manifest into shards (all into one with ``one_shard``). Every source must have one (a
    run lists, or reads manifests)."""
    if not all(sources):
        raise ConfigError(["s3_copy_config.source_s3_config: give every source a manifest, or none (a run either "
                           "lists its sources or reads their manifests)"])
    weighed: list[tuple[Unit, int]] = []
    rows = 0.0
    for index, ref in enumerate(sources):
        assert ref is not None
        if ref.kind == INVENTORY:
            data = _get_json(s3, ref.bucket, ref.key, count)
            found = parse_inventory_manifest(data, ref.uri)
            weighed += [(Unit(index, INVENTORY, found.bucket, (f.key,), columns=found.columns), f.size)
                        for f in found.files]
            rows += sum(f.size for f in found.files) / 10.0  # ~10 compressed bytes a row (an estimate)
        else:
            size = _size_of(s3, ref.bucket, ref.key, count)
            pieces = max(1, math.ceil(size / CSV_BYTES_PER_SHARD))
            step = math.ceil(size / pieces) if size else 0
            weighed += [(Unit(index, CSV_MANIFEST, ref.bucket, (ref.key,), start=i * step,
                              end=min(size, (i + 1) * step)), min(size, (i + 1) * step) - i * step)
                        for i in range(pieces)]
            rows += size / 64.0  # ~64 bytes a row (an estimate)
    inventory_bytes = INVENTORY_BYTES_PER_SHARD
    groups: list[list[Unit]] = []
    inventories = [(u, n) for u, n in weighed if u.kind == INVENTORY]
    if inventories:
        groups += assign_units(inventories, inventory_bytes, params.max_shards)
    groups += [[u] for u, _ in weighed if u.kind == CSV_MANIFEST]
    if one_shard:
        groups = [[u for group in groups for u in group]]
    return Units(shards=tuple(ShardSpec(i, KeyRange(), 0) for i in range(len(groups))),
                 by_shard=tuple(tuple(g) for g in groups), estimated_objects=int(rows))


def _get_json(s3: S3Gateway, bucket: str, key: str, count: RequestCount) -> Any:
    count.add()
    try:
        body = s3.client.get_object(Bucket=bucket, Key=key, **access_args(s3, bucket))["Body"].read()
    except ClientError as err:
        raise ConfigError([f"s3_copy_config.source_s3_config.{FIELD}: cannot read s3://{bucket}/{key}: "
                           f"{error_code(err)}"]) from err
    return json.loads(body)


def _size_of(s3: S3Gateway, bucket: str, key: str, count: RequestCount) -> int:
    count.add()
    try:
        return s3.head_object(bucket, key).size
    except ObjectError as err:
        raise ConfigError([f"s3_copy_config.source_s3_config.{FIELD}: cannot read s3://{bucket}/{key}: {err}"]) from err


# --- reading a shard's units -------------------------------------------------------------------------
def _stream(s3: S3Gateway, bucket: str, key: str, first: int, count: RequestCount) -> Iterator[bytes]:
    """The object's bytes from ``first`` on, chunk by chunk (never the whole object in memory)."""
    count.add()
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **access_args(s3, bucket)}
    if first:
        kwargs["Range"] = f"bytes={first}-"
    try:
        body = s3.client.get_object(**kwargs)["Body"]
    except ClientError as err:
        raise translate(err, f"read manifest s3://{bucket}/{key}") from err
    try:
        yield from iter(lambda: body.read(_READ_CHUNK), b"")
    finally:
        body.close()


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (for gzip and the csv module)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.rest:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.rest = chunk
        n = min(len(buffer), len(self.rest))
        buffer[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n


def unit_rows(s3: S3Gateway, unit: Unit, count: RequestCount) -> Iterator[tuple[str, SourceObject | None]]:
    """(position, object or None) for each row of the unit, in order; positions sort as the rows do."""
    if unit.kind == INVENTORY:
        for number, key in enumerate(unit.keys):
            raw = io.BufferedReader(_Chunks(_stream(s3, unit.bucket, key, 0, count)), _READ_CHUNK)
            text = io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="")
            for row, obj in enumerate(inventory_objects(csv.reader(text), unit.columns)):
                yield f"{number:06d}:{row:012d}", obj
        return
    first = max(0, unit.start - 1)
    lines = lines_in_range(_stream(s3, unit.bucket, unit.keys[0], first, count), first, unit.start, unit.end)
    for offset, line in lines:
        for obj in csv_objects(csv.reader([line.decode("utf-8")])):
            yield f"{offset:015d}", obj


def unit_items(s3: S3Gateway, context: ShardingContext, units: Sequence[Unit], summary: ShardSummary,
               count: RequestCount, threads: int) -> Iterator[tuple[str, int, SourceObject | SkippedObject]]:
    """The shard's objects, after its cursor: rows of the source's bucket under its prefix, completed by a
    HEAD when the manifest has no size or ETag (``threads`` at once, HEAD_BATCH rows at a time)."""
    outside = 0
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for number, unit in enumerate(units):
            source = context.config.sources[unit.source]
            batch: list[tuple[str, SourceObject]] = []
            for position, obj in unit_rows(s3, unit, count):
                where = f"{number:04d}/{position}"
                if summary.cursor is not None and where <= summary.cursor:
                    continue
                if obj is None:
                    continue
                if obj.bucket != source.bucket or not obj.key.startswith(source.prefix):
                    outside += 1
                    continue
                batch.append((where, obj))
                if len(batch) >= HEAD_BATCH:
                    yield from _completed(s3, batch, unit.source, pool, count)
                    batch = []
            yield from _completed(s3, batch, unit.source, pool, count)
    if outside:
        log.info("manifest rows outside the source left out", extra={"rows": outside})


def _completed(s3: S3Gateway, batch: list[tuple[str, SourceObject]], source: int, pool: ThreadPoolExecutor,
               count: RequestCount) -> Iterator[tuple[str, int, SourceObject | SkippedObject]]:
    def complete(obj: SourceObject) -> SourceObject | SkippedObject:
        if obj.size >= 0 and obj.etag:
            return obj
        count.add()
        try:
            head = s3.head_object(obj.bucket, obj.key)
        except ObjectError as error:
            return SkippedObject(obj.bucket, obj.key, 0, f"{FAILED_AT_PLAN}: {error}")
        return SourceObject(bucket=obj.bucket, key=obj.key, size=head.size, etag=head.etag,
                            storage_class=head.storage_class, last_modified=obj.last_modified)

    needs = any(obj.size < 0 or not obj.etag for _, obj in batch)
    done = pool.map(complete, [obj for _, obj in batch]) if needs else (obj for _, obj in batch)
    for (where, _), obj in zip(batch, done, strict=True):
        yield where, source, obj


class HeadTargets:
    """What exists at each target key, asked with one HEAD per row, ``threads`` at a time (a manifest is not
    in the targets' key order, so the targets cannot be listed alongside it)."""

    def __init__(self, s3: S3Gateway, context: ShardingContext, count: RequestCount, pool: ThreadPoolExecutor) -> None:
        self.s3, self.count, self.pool = s3, count, pool
        self.skip_lookup = context.config.options.overwrite == "always"

    def existing(self, rows: Sequence[tuple[SourceObject, TargetConfig, str]]) -> list[ExistingTarget | None]:
        if self.skip_lookup:
            return [None] * len(rows)

        def head(row: tuple[SourceObject, TargetConfig, str]) -> ExistingTarget | None:
            _, target, key = row
            self.count.add()
            try:
                found = self.s3.head_object(target.bucket, key, checksums=True)
            except NoSuchKeyError:
                return None
            return ExistingTarget(found.size, found.etag, next(iter(found.checksums), ""))

        return list(self.pool.map(head, rows))
