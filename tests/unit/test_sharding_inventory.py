"""Manifest sources (lambdas/sharding/inventory.py), by value: the config field, the formats, the byte ranges."""

import csv
import io
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.errors import ConfigError
from lambdas.models import SourceObject
from lambdas.sharding import inventory
from lambdas.sharding.inventory import (
    ManifestRef,
    Unit,
    assign_units,
    csv_objects,
    inventory_objects,
    lines_in_range,
    manifest_sources,
    parse_inventory_manifest,
    parse_manifest_uri,
    without_manifests,
)


def document(*sources):
    return {"s3_copy_config": {"source_s3_config": list(sources) if len(sources) > 1 else sources[0],
                               "target_s3_config": [{"file_types": ["*"], "s3_bucket": "tgt"}]}}


# --- the config field ----------------------------------------------------------------------------------
def test_manifest_uri_names_its_kind():
    assert parse_manifest_uri("s3://inv/src/daily/2024-01-01T00-00Z/manifest.json") == (
        ManifestRef("inv", "src/daily/2024-01-01T00-00Z/manifest.json", "inventory"), "")
    assert parse_manifest_uri("s3://lists/keys.CSV") == (ManifestRef("lists", "keys.CSV", "csv"), "")


@pytest.mark.parametrize(("value", "problem"), [
    (42, "expected an s3:// URI string, got int"),
    ("inv/manifest.json", "expected s3://bucket/key"),
    ("s3://Inv_Bucket/manifest.json", "bucket name 'Inv_Bucket' may contain only"),
    ("s3://inv/list.txt", "is neither an S3 Inventory manifest.json nor a .csv"),
])
def test_bad_manifest_uris_say_what_to_write(value, problem):
    ref, found = parse_manifest_uri(value)
    assert ref is None
    assert problem in found


def test_manifest_sources_name_every_problem_with_its_path():
    doc = document({"s3_bucket": "a", "manifest": "s3://inv/m.json"}, {"s3_bucket": "b"},
                   {"s3_bucket": "c", "manifest": 3})
    with pytest.raises(ConfigError) as caught:
        manifest_sources(doc)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "s3_copy_config.source_s3_config[0].manifest", "s3_copy_config.source_s3_config[2].manifest"]


def test_manifest_sources_and_the_document_config_py_reads():
    doc = document({"s3_bucket": "src", "s3_path": "data/", "manifest": "s3://inv/keys.csv"})
    assert manifest_sources(doc) == [ManifestRef("inv", "keys.csv", "csv")]
    clean = without_manifests(doc)
    assert clean["s3_copy_config"]["source_s3_config"] == {"s3_bucket": "src", "s3_path": "data/"}
    assert doc["s3_copy_config"]["source_s3_config"]["manifest"] == "s3://inv/keys.csv"  # the input is untouched
    plain = document({"s3_bucket": "src"})
    assert manifest_sources(plain) == [None] and without_manifests(plain) is plain


# --- S3 Inventory ----------------------------------------------------------------------------------------
MANIFEST = {
    "sourceBucket": "src",
    "destinationBucket": "arn:aws:s3:::inv",
    "version": "2016-11-30",
    "creationTimestamp": "1514944800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass",
    "files": [{"key": "src/daily/data/a.csv.gz", "size": 2048, "MD5checksum": "f1"}],
}


def test_inventory_manifest_gives_the_files_and_their_columns():
    found = parse_inventory_manifest(MANIFEST, "s3://inv/m.json")
    assert found.bucket == "inv" and found.source_bucket == "src"
    assert found.columns[:3] == ("Bucket", "Key", "VersionId") and found.files[0].key == "src/daily/data/a.csv.gz"


@pytest.mark.parametrize(("change", "problem"), [
    ({"fileFormat": "Parquet"}, "only CSV inventories"),
    ({"fileSchema": "Bucket, Size"}, "has no Key column"),
    ({"files": None}, "a list of files"),
])
def test_inventory_manifest_problems(change, problem):
    with pytest.raises(ValueError, match=problem):
        parse_inventory_manifest({**MANIFEST, **change}, "s3://inv/m.json")


def test_inventory_rows_decode_keys_and_keep_current_versions_only():
    rows = list(csv.reader(io.StringIO(
        'src,a%2Bb+c%C3%A9.jpg,v1,true,false,12,2024-01-01T00:00:00.000Z,0cc1,STANDARD\n'
        'src,old.jpg,v0,false,false,5,2024-01-01T00:00:00.000Z,e1,STANDARD\n'
        'src,gone.jpg,v2,true,true,0,2024-01-01T00:00:00.000Z,,STANDARD\n'
        'src,cold.jpg,v3,true,false,7,2024-01-01T00:00:00.000Z,"e2",GLACIER\n')))
    columns = parse_inventory_manifest(MANIFEST, "x").columns
    found = list(inventory_objects(rows, columns))
    assert found[0] == SourceObject("src", "a+b cé.jpg", 12, "0cc1", "STANDARD", "2024-01-01T00:00:00.000Z")
    assert found[1] is None and found[2] is None
    assert found[3].storage_class == "GLACIER" and found[3].etag == "e2"


def test_inventory_without_size_or_etag_asks_for_a_head():
    found = list(inventory_objects([["src", "a.jpg"]], ("Bucket", "Key")))
    assert found == [SourceObject("src", "a.jpg", -1, "")]


def test_csv_manifest_rows():
    rows = csv.reader(io.StringIO("src,dir/a%20b.jpg\nsrc,c.jpg,3HL4kqtJlcpXroDTDmJ\n\n,\n"))
    assert list(csv_objects(rows)) == [SourceObject("src", "dir/a b.jpg", -1, ""), SourceObject("src", "c.jpg", -1, ""),
                                       None, None]


# --- byte ranges of a CSV --------------------------------------------------------------------------------
@given(st.lists(st.text(alphabet="ab,é", max_size=8), max_size=40), st.lists(st.integers(0, 400), max_size=6),
       st.integers(1, 7), st.booleans())
def test_byte_ranges_hold_every_line_exactly_once(lines, cuts, chunk, trailing_newline):
    # GIVEN a CSV cut at any byte offsets  WHEN each range is read from the byte before it
    body = "\n".join(lines).encode() + (b"\n" if trailing_newline and lines else b"")
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    found = []
    for start, end in itertools.pairwise(bounds):
        first = max(0, start - 1)
        stream = [body[i:i + chunk] for i in range(first, len(body), chunk)]
        found += [line for _, line in lines_in_range(stream, first, start, end)]
    # THEN every line is read once, in order
    expected = [line + b"\n" for line in body.split(b"\n")[:-1]] + ([body.split(b"\n")[-1]] if body.split(b"\n")[-1]
                                                                  else [])
    assert found == expected


def test_units_go_to_shards_by_size():
    units = [(Unit(0, "inventory", "inv", (f"f{i}",)), size) for i, size in enumerate([90, 10, 50, 50, 40])]
    groups = assign_units(units, bytes_per_shard=100, max_shards=10)
    assert sorted(sorted(u.keys[0] for u in g) for g in groups) == [["f0"], ["f1", "f3"], ["f2", "f4"]]
    assert inventory.Unit.from_dict(units[0][0].to_dict()) == units[0][0]
