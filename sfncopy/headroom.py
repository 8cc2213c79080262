"""Which stage of a run binds: each stage's load against its ceiling, and the setting that moves the ceiling.

``sfncopy plan`` computes a plan's figures (sfncopy/dry_run.py, lambdas/estimate.py); this module sets them
against the limits each stage runs into, so a user sees which one a larger run would hit first and what to
change. Pure: numbers in, stages out. Each ceiling is a named constant with its source (lambdas/limits.py),
each cost a measured figure (bench/README.md) or, where AWS documents none, a stated model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lambdas import finalize_shards, limits
from lambdas.estimate import PLANNER_SECONDS_PER_OBJECT


@dataclass(frozen=True)
class Stage:
    """One stage's load (``used``) against its ceiling, both in ``unit``."""

    name: str
    used: float
    ceiling: float
    unit: str
    fix: str  # the setting that raises the ceiling or lowers the load
    source: str  # where the ceiling and the cost come from
    note: str = ""  # what happens past the ceiling, when it is not a failure

    @property
    def share(self) -> float:
        return self.used / self.ceiling if self.ceiling > 0 else math.inf

    def line(self) -> str:
        text = f"{self.name}: {percent(self.share)} of {self.ceiling:,.0f} {self.unit}"
        return text + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "used": round(self.used, 3), "ceiling": self.ceiling, "unit": self.unit,
                "share": round(self.share, 4), "fix": self.fix, "source": self.source, "note": self.note}


def percent(share: float) -> str:
    """41%, or 0.3% below 10% (small shares still tell two plans apart)."""
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


@dataclass(frozen=True)
class ShardLoads:
    """What a sharded plan (env planning=sharded) shows of its planning stages, run in-process by the dry run."""

    shards: int  # every shard planned, hand-ons included
    max_shards: int  # the most the env allows (generator/settings.py, MAX_PLANNER_SHARDS)
    largest_shard_listed: int  # source keys the largest shard listed
    largest_shard_requests: int  # S3 requests it sent (its sources' and targets' listings, heads, writes)
    payloads: int  # what the assembler bins and writes references to


@dataclass(frozen=True)
class Loads:
    """What ``sfncopy plan`` knows of a run and its environment, as the stages need it."""

    objects_listed: int
    report_rows: int  # copies and skipped objects: the finalizer's rows
    parent_events: int
    largest_child_events: int
    most_payloads_per_worker: int
    workers: int
    worker_concurrency: int
    concurrency_available: int | None  # what the worker function may use at once; None: unknown
    planner_memory_mb: int
    planner_timeout_seconds: int
    finalizer_timeout_seconds: int
    max_payload_size_mb: int
    max_objects_per_payload: int
    sharding: ShardLoads | None = None  # planning=sharded: its stages replace the single planner's
    # The report rows a finalize shard aims at (env finalizer_shard_rows): each shard is a child execution of its
    # own (lambdas/finalize_shards.py), so what one finalizer invocation must get through is one shard's rows.
    finalizer_shard_rows: int = finalize_shards.DEFAULT_SHARD_ROWS


@dataclass(frozen=True)
class Headroom:
    stages: tuple[Stage, ...]  # closest to its ceiling first

    @property
    def binding(self) -> Stage:
        return self.stages[0]

    def lines(self) -> list[str]:
        binding = self.binding
        return [f"binding stage: {binding.line()}: {binding.fix}",
                "headroom (closest to its ceiling first):", *(f"  {stage.line()}" for stage in self.stages)]

    def to_dict(self) -> dict[str, Any]:
        return {"binding": self.binding.name, "fix": self.binding.fix,
                "stages": [stage.to_dict() for stage in self.stages]}


def planner_seconds(objects_listed: int) -> float:
    """The planner's listing, one page after another (S3's latency and botocore's parse), and its decisions."""
    pages = max(1, math.ceil(objects_listed / limits.LIST_PAGE_SIZE))
    return (pages * (limits.LIST_PAGE_LATENCY_SECONDS + limits.LIST_PAGE_PARSE_SECONDS)
            + objects_listed * PLANNER_SECONDS_PER_OBJECT)


def shard_seconds(listed: int, requests: int) -> float:
    """A shard's time: every request it sent taken as a list page (its sources' and targets' listings
    dominate; a write or HEAD costs less, so this errs long), plus its decisions per object."""
    return (requests * (limits.LIST_PAGE_LATENCY_SECONDS + limits.LIST_PAGE_PARSE_SECONDS)
            + listed * PLANNER_SECONDS_PER_OBJECT)


def assemble_mb(payloads: int) -> float:
    """The assembler's peak memory for ``payloads`` payloads (measured: lambdas/limits.py)."""
    return limits.ASSEMBLE_BASE_MB + payloads * limits.ASSEMBLE_BYTES_PER_PAYLOAD / 1e6


def sharded_stages(loads: Loads, shards: ShardLoads) -> list[Stage]:
    """Sharded planning's stages: the shard count, the largest shard's time, the assembler's memory. Its
    Lambdas are sized as the planner (planner_memory_mb, planner_timeout_seconds)."""
    seconds = shard_seconds(shards.largest_shard_listed, shards.largest_shard_requests)
    invocations = max(1, math.ceil(seconds / max(1, loads.planner_timeout_seconds)))
    return [
        Stage("shards", shards.shards, shards.max_shards, "shards",
              "lower planner_shards in the env file, or split the s3_copy_config into several runs",
              "the env's bound on planner_shards (generator/settings.py, MAX_PLANNER_SHARDS)"),
        Stage("largest shard's time", seconds, loads.planner_timeout_seconds, "s",
              "raise planner_shards in the env file (smaller key ranges), or planner_timeout_seconds (Lambda allows "
              f"{limits.MAX_LAMBDA_TIMEOUT_SECONDS})",
              f"its {shards.largest_shard_requests:,} requests at a list page's latency and parse each "
              "(lambdas/limits.py) and its objects' decisions",
              note=(f"continues in {invocations} invocations and hands on the rest of its range"
                    if invocations > 1 else "")),
        Stage("assembler memory", assemble_mb(shards.payloads), loads.planner_memory_mb, "MB",
              f"raise planner_memory_mb in the env file (now {loads.planner_memory_mb:,}; Lambda allows "
              f"{limits.MAX_LAMBDA_MEMORY_MB:,}), or options.max_objects_per_payload (fewer payloads)",
              f"measured: bench/README.md ({limits.ASSEMBLE_BYTES_PER_PAYLOAD} bytes a payload over "
              f"{limits.ASSEMBLE_BASE_MB} MB)"),
    ]


def finalizer_rows_per_invocation(timeout_seconds: int, listed: bool = False) -> int:
    """Rows one finalizer invocation reports before its deadline margin; ``listed``: a sharded run's, whose
    payloads are key ranges verified by listing pages instead of a HEAD a row."""
    seconds = max(0.0, timeout_seconds - limits.DEFAULT_DEADLINE_MARGIN_SECONDS)
    per_row = limits.FINALIZER_SECONDS_PER_ROW_LISTED if listed else limits.FINALIZER_SECONDS_PER_ROW
    return max(1, int(seconds / per_row))


def headroom(loads: Loads) -> Headroom:
    """Every stage against its ceiling, the closest first (ties keep this order)."""
    budget = f"{limits.MAX_HISTORY_EVENTS:,} events per execution (Step Functions quotas)"
    concurrency = loads.concurrency_available
    concurrency_source = ("the worker function's or the account's concurrency (Lambda GetAccountSettings)"
                          if concurrency is not None else
                          f"unknown here: a new account's {limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY:,} per Region "
                          "(Lambda developer guide, \"Lambda quotas\")")
    listed = loads.sharding is not None
    per_invocation = finalizer_rows_per_invocation(loads.finalizer_timeout_seconds, listed)
    per_row_ms = (limits.FINALIZER_SECONDS_PER_ROW_LISTED if listed else limits.FINALIZER_SECONDS_PER_ROW) * 1000
    shard_rows = min(loads.report_rows, loads.finalizer_shard_rows)
    shard_invocations = max(1, math.ceil(shard_rows / per_invocation))
    shards = max(1, math.ceil(loads.report_rows / max(1, loads.finalizer_shard_rows)))
    planners = [
        Stage("planner memory", loads.objects_listed / 1e6 * limits.PLANNER_GB_PER_MILLION_OBJECTS * 1024,
              loads.planner_memory_mb, "MB",
              f"raise planner_memory_mb in the env file (now {loads.planner_memory_mb:,}; Lambda allows "
              f"{limits.MAX_LAMBDA_MEMORY_MB:,})",
              f"measured: bench/README.md ({limits.PLANNER_GB_PER_MILLION_OBJECTS} GB per 1,000,000 objects listed)"),
        Stage("planner time", planner_seconds(loads.objects_listed), loads.planner_timeout_seconds, "s",
              f"raise planner_timeout_seconds in the env file (now {loads.planner_timeout_seconds}; Lambda allows "
              f"{limits.MAX_LAMBDA_TIMEOUT_SECONDS}), or split the s3_copy_config into several runs",
              "measured: bench/README.md (a list page's parse) and its simulated S3 (a list page's latency)"),
    ]
    stages = [
        *(sharded_stages(loads, loads.sharding) if loads.sharding is not None else planners),
        Stage("run's history", loads.parent_events, limits.MAX_HISTORY_EVENTS, "events",
              f"lower num_copy_lambda_workers in the env file (now {loads.workers})", budget),
        Stage("largest child history", loads.largest_child_events, limits.MAX_HISTORY_EVENTS, "events",
              f"lower options.max_payload_size_mb (the env's default: {loads.max_payload_size_mb:,})", budget),
        Stage("payloads of the busiest worker", loads.most_payloads_per_worker, limits.MAX_PAYLOADS_PER_WORKER,
              "payloads",
              f"raise options.max_objects_per_payload (the env's default: {loads.max_objects_per_payload:,}) or "
              f"options.max_payload_size_mb (the env's default: {loads.max_payload_size_mb:,}), or add workers "
              "(num_copy_lambda_workers)",
              "a Distributed Map's result must fit 256 KiB (lambdas/limits.py, MAX_PAYLOADS_PER_WORKER)"),
        Stage("Lambda concurrency", loads.workers * loads.worker_concurrency,
              concurrency if concurrency is not None else limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY,
              "invocations",
              f"lower worker_concurrency (now {loads.worker_concurrency}) or num_copy_lambda_workers in the env "
              "file, or ask AWS to raise the account's Lambda concurrency quota", concurrency_source),
        Stage("finalize shard rows per invocation", shard_rows, per_invocation, "rows",
              f"lower finalizer_shard_rows (now {loads.finalizer_shard_rows:,}) or raise finalizer_timeout_seconds "
              f"in the env file (now {loads.finalizer_timeout_seconds}; Lambda allows "
              f"{limits.MAX_LAMBDA_TIMEOUT_SECONDS})",
              f"measured: bench/README.md ({per_row_ms:.2f} ms a row on AWS)",
              note=", ".join(n for n in (f"about {shards:,} finalize shards" if shards > 1 else "",
                                         f"a shard continues in {shard_invocations} invocations"
                                         if shard_invocations > 1 else "") if n)),
    ]
    return Headroom(tuple(sorted(stages, key=lambda stage: -stage.share)))
