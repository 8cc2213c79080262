"""Save a run's whole report as one CSV file, whichever form the finalizer wrote it in:

- report.csv, one object with the header and every row (every run up to lambdas.report.SINGLE_CSV_MAX_ROWS
  rows, and every run of a version before the parts);
- report/part-*.csv, named in order by report/manifest.json with each part's rows and MD5 (the form of every
  run since; the only one past SINGLE_CSV_MAX_ROWS): the header, then each part.

Both are streamed to the file a chunk at a time (memory holds one chunk, whatever the report's size), and the
file appears only when complete: a part whose bytes do not match its MD5 stops the copy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from lambdas.errors import ManifestConflictError
from lambdas.gateway import S3Gateway
from lambdas.report import csv_header
from sfncopy.execution import ExecutionError, split_uri


def parts_manifest_uri(report: Mapping[str, Any]) -> str:
    """report.json's pointer to the parts' manifest ("" in a report written before parts existed)."""
    parts = report.get("parts")
    return str(parts.get("manifest") or "") if isinstance(parts, Mapping) else ""


def save_csv(s3: S3Gateway, report: Mapping[str, Any], csv_uri: str, path: Path) -> str:
    """Write the report's CSV to ``path``: report.csv when it exists, else the header and the parts.
    Returns what was read (for the user); ExecutionError when neither exists or a part is not intact."""
    manifest_uri = parts_manifest_uri(report)
    temporary = path.with_name(path.name + ".partial")
    try:
        with temporary.open("wb") as out:
            source = _copy(s3, csv_uri, manifest_uri, out)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return source


def _copy(s3: S3Gateway, csv_uri: str, manifest_uri: str, out: IO[bytes]) -> str:
    if csv_uri:
        try:
            _write(out, s3.read_chunks(*split_uri(csv_uri)))
            return csv_uri
        except ManifestConflictError:  # not there: a report too large for one file has only its parts
            out.seek(0)
            out.truncate()
            if not manifest_uri:
                raise ExecutionError(f"{csv_uri} does not exist (the run may not have reached its report)") from None
    if not manifest_uri:
        raise ExecutionError("the run has no report.csv (it ended before its report was written)")
    try:
        parts = s3.get_json(*split_uri(manifest_uri))
    except ManifestConflictError as err:
        raise ExecutionError(f"{manifest_uri} does not exist (the run may not have finished its report)") from err
    # The manifest names the columns its parts were written with (a report of an older version has fewer).
    header = parts.get("Header")
    out.write(header.encode() if isinstance(header, str) and header else csv_header())
    for entry in parts.get("Results", ()):
        _copy_part(s3, entry, out)
    return f"{manifest_uri} ({len(parts.get('Results', ()))} parts, {parts.get('Rows', 0):,} rows)"


def _copy_part(s3: S3Gateway, entry: Mapping[str, Any], out: IO[bytes]) -> None:
    uri = f"s3://{entry['Bucket']}/{entry['Key']}"
    digest = hashlib.md5(usedforsecurity=False)  # the manifest's integrity check (S3 Batch Operations' MD5Checksum)
    try:
        for chunk in s3.read_chunks(entry["Bucket"], entry["Key"]):
            digest.update(chunk)
            out.write(chunk)
    except ManifestConflictError as err:
        raise ExecutionError(f"{uri}, listed in the report's manifest, does not exist") from err
    if digest.hexdigest() != entry["MD5Checksum"]:
        raise ExecutionError(f"{uri} does not match the MD5 the report's manifest gives ({entry['MD5Checksum']}): "
                             "it changed after the run")


def _write(out: IO[bytes], chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        out.write(chunk)
