"""Short human summaries for the terminal: of a validated config, and of a run's report.json (or the
failure report cleanup writes). Pure: data in, lines out."""

from __future__ import annotations

from typing import Any

from lambdas.models import CopyConfig, SourceConfig, TargetConfig
from lambdas.units import format_bytes

FAILED_SHOWN = 5  # failed objects listed on the terminal; the report has them all


def config_lines(config: CopyConfig) -> list[str]:
    lines = [f"{len(config.sources)} source(s), {len(config.targets)} target(s)"]
    lines += [f"source: s3://{s.bucket}/{s.prefix}" + _conditions(s.expected_bucket_owner, s.request_payer)
              + "".join(f"; {word}" for word in _selection(s)) for s in config.sources]
    lines += [f"target {t.index}: s3://{t.bucket}/{t.prefix} <- {_rule(t)}" + _conditions(t.expected_bucket_owner, "")
              for t in config.targets]
    o = config.options
    options = [f"overwrite={o.overwrite}", f"preserve_metadata={_flag(o.preserve_metadata)}",
               f"preserve_tags={_flag(o.preserve_tags)}", f"max_failed_objects={o.max_failed_objects}"]
    if o.max_payload_size_mb is not None:
        options.append(f"max_payload_size_mb={o.max_payload_size_mb}")
    if o.max_objects_per_payload is not None:
        options.append(f"max_objects_per_payload={o.max_objects_per_payload}")
    if o.storage_class:
        options.append(f"storage_class={o.storage_class}")
    if o.sse is not None:
        options.append(f"sse={o.sse.algorithm}" + (f" ({o.sse.kms_key_id})" if o.sse.kms_key_id else ""))
    if o.acl:
        options.append(f"acl={o.acl}")
    if o.dry_run:
        options.append("dry_run")
    if o.report_unmatched:
        options.append("report_unmatched")
    lines.append("options: " + ", ".join(options))
    return lines


def _conditions(owner: str, payer: str) -> str:
    words = ([f"owner {owner}"] if owner else []) + (["requester pays"] if payer else [])
    return f" ({', '.join(words)})" if words else ""


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _rule(target: TargetConfig) -> str:
    words = ["every file" if target.file_types == ("*",) else "*." + ", *.".join(target.file_types)]
    if target.include:
        words.append("include " + ", ".join(target.include))
    if target.exclude:
        words.append("exclude " + ", ".join(target.exclude))
    if target.min_size is not None:
        words.append(f">= {target.min_size:,} B")
    if target.max_size is not None:
        words.append(f"<= {target.max_size:,} B")
    if target.flatten:
        words.append("flattened")
    words += _selection(target)
    return "; ".join(words)


def _selection(rule: SourceConfig | TargetConfig) -> list[str]:
    """Incremental selection as words: the modification window and storage classes."""
    words = []
    if rule.modified_after:
        words.append(f"modified since {rule.modified_after}")
    if rule.modified_before:
        words.append(f"modified before {rule.modified_before}")
    if rule.storage_classes:
        words.append("in " + ", ".join(rule.storage_classes))
    return words


def report_lines(report: dict[str, Any]) -> list[str]:
    """report.json (the finalizer's) or failure.json (cleanup's) as a few lines."""
    lines: list[str] = []
    if "status" in report:
        counts = report.get("counts") or report
        shown = ", ".join(f"{counts[k]:,} {k}" for k in ("copied", "skipped", "failed", "planned")
                          if isinstance(counts.get(k), int) and (counts[k] or k in ("copied", "failed")))
        lines.append(f"run {report.get('run_id', '?')}: {report['status']} ({shown})")
    copied = report.get("bytes_copied", report.get("bytes"))
    if isinstance(copied, int):
        lines.append(f"bytes copied: {format_bytes(copied)} ({copied:,} B)")
    if report.get("retries"):
        lines.append(f"S3 retries: {report['retries']:,}")
    verified = report.get("verified_by")
    if isinstance(verified, dict) and any(verified.values()):
        # How the finalizer proved the copies (report.csv's verified_by column says why, row by row).
        lines.append("verified: " + ", ".join(f"{count:,} by {kind}" for kind, count in verified.items()))
    for reason, count in (report.get("skipped_by_reason") or {}).items():
        lines.append(f"skipped ({reason}): {count:,}")
    if report.get("unmatched"):
        lines.append(f"matched no target: {report['unmatched']:,}")
    failed = report.get("failed_objects") or []
    for item in failed[:FAILED_SHOWN]:
        lines.append(f"failed: {item.get('source')} -> {item.get('target')}: {item.get('error')}")
    more = max(0, len(failed) - FAILED_SHOWN) + int(report.get("failed_objects_not_listed") or 0)
    if more > 0:
        lines.append(f"... and {more:,} more failed (see the report)")
    for name in ("error", "cause"):
        if report.get(name):
            lines.append(f"{name}: {report[name]}")
    nested = report.get("report")
    where: dict[str, Any] = nested if isinstance(nested, dict) else {}
    for label, uri in (("report", where.get("json") or report.get("report_json")),
                       ("report (csv)", where.get("csv") or report.get("report_csv"))):
        if uri:
            lines.append(f"{label}: {uri}")
    parts = report.get("parts")
    if isinstance(parts, dict) and parts.get("manifest"):
        # Reports since the finalizer streams them: CSV parts named by a manifest (sfncopy report --csv joins them).
        count, rows = int(parts.get("count") or 0), int(parts.get("rows") or 0)
        lines.append(f"report (parts): {parts['manifest']} ({count:,} part{'s' if count != 1 else ''}, {rows:,} rows)")
    return lines
