"""Scale: the whole run (plan, copy, finalize) at 10M, 100M and 1B objects, composed from what is measured.

Nothing here re-implements a stage; each figure comes from one of three places, and the table says which:

- **planning, measured then computed** (bench/planning_scale.py, ``planning_scale.run``): the real
  ``prepare_run``, one real ~1M-object shard and the real ``assemble`` at every size, each in its own process
  against a simulated S3 with latency (list page 100-300 ms, PUT/GET 20-60 ms); wall time, invocations,
  requests, peak memory per Lambda and cost per size as that module computes them;
- **copy stage, modelled** from the assembled plan's figures (payloads, copies, split objects, balance) with
  lambdas/history.py (parent and child history, continuations) and lambdas/estimate.py (transitions, prices,
  throughput, invocation overhead), at WORKER_CONCURRENCY payloads per worker at once. Nothing is copied;
  the worker's memory is not measured here (its configured size is shown);
- **finalizer, measured at 1M rows and extrapolated** (bench/finalizer_scale.py, the real streamed
  finalizer, one process, payloads laid out as sharded planning lays them out: each a shard's segment, a
  contiguous key range, ``--layout segments``): peak memory (flat in the rows: README's 10M run,
  FINALIZER_10M) and time per row. Two times per row are shown: the stand-in's (its listings and HEADs are
  free) and AWS's, adding for each verification request the finalizer sent what it costs on AWS: botocore's
  CPU for a HEAD (HEAD_CPU_S; HEADs go out concurrently, so their latency overlaps), and for a listing page
  its CPU and S3's latency (LIST_PAGE_CPU_S + LIST_PAGE_LATENCY_S: a payload's pages are sent one after
  another). The targets are held to the AWS figure. The Finalize stage is the fan-out the state machine runs
  (lambdas/finalize_shards.py, its real ``plan_shards``): finalize shards of about DEFAULT_SHARD_ROWS rows,
  FINALIZER_CONCURRENCY at once, each a child execution whose invocations are its rows over rows per
  invocation (840 s each), then the merge; the parent records a fixed number of events (lambdas/history.py)
  plus 7 per merge continuation.

    python -m bench.scale [--quick]        # the table, then every figure as JSON on the last line
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench import planning_scale
from bench.json_subprocess import run_json
from lambdas import estimate, finalize_shards, history, limits

GB = 1_000_000_000
WORKERS = planning_scale.WORKERS  # the assembled plan's workers (100)
# Payloads each worker copies at once (its Distributed Map's MaxConcurrency): 100 workers x 10 = 1,000
# concurrent worker invocations, a new account's Lambda concurrency (limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY).
WORKER_CONCURRENCY = limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY // WORKERS
# Configured memory, envs/prod-env.sh: worker_memory_mb=1024, finalizer_memory_mb=2048.
WORKER_MEMORY_MB = 1024
FINALIZER_MEMORY_MB = 2048
# Copy throughput of one worker invocation (its threads together), estimate.py's conservative 250 MB/s; a
# request costs as much worker time as REQUEST_COST_BYTES (limits.py, the binning cost model).
THROUGHPUT_MB_S = estimate.DEFAULT_THROUGHPUT_MB_S
# An invocation stops DEADLINE_MARGIN before Lambda's 900 s (limits.DEFAULT_DEADLINE_MARGIN_SECONDS).
INVOCATION_BUDGET_S = limits.MAX_LAMBDA_TIMEOUT_SECONDS - limits.DEFAULT_DEADLINE_MARGIN_SECONDS
# The finalizer's verification sends one HEAD per copied row when payloads spread their keys over the target
# (bench/README.md, "Reading it", Finalizer: botocore spends ~1.4 ms of CPU on a HEAD against a local S3).
HEAD_CPU_S = 0.0014
# A listing page of 1,000 keys: ~80 ms of botocore CPU to parse (lambdas/verification.py, measured on this machine;
# NOTES.md measured 35-40 ms on another) and S3's latency, the middle of issue 13's 100-300 ms a page, paid in
# full: verification sends a payload's pages one after another, and the finalizer verifies one payload at a time.
LIST_PAGE_CPU_S = 0.080
LIST_PAGE_LATENCY_S = limits.LIST_PAGE_LATENCY_SECONDS
# The layout of the measured finalizer's payloads (bench/finalizer_scale.py --layout): every row here is a
# sharded run, whose payloads are shards' segments.
FINALIZER_LAYOUT = "segments"
# bench/README.md, "Finalizer scale" table, 47b9b12: 10,000,000 copied rows, peak RSS 0.100 GB, 470.8 s wall,
# 396.8 s CPU, 9,990,008 HEADs (re-running it takes ~8 minutes; --finalizer-rows runs it instead).
FINALIZER_10M = {"rows": 10_000_000, "peak_rss_bytes": 100_000_000, "seconds": 470.8, "cpu_seconds": 396.8,
                 "heads": 9_990_008, "source": "bench/README.md (47b9b12), not re-run"}
# Step Functions transitions of a finalizer loop (a shard's child, or the merge): the Task + the done Choice per
# extra invocation; its history events: a Task's 5 + a Choice's 2 (limits.EVENTS_PER_CONTINUATION's shape).
FINALIZER_TRANSITIONS_PER_CONTINUATION = estimate.TRANSITIONS_PER_CONTINUATION
FINALIZER_EVENTS_PER_CONTINUATION = limits.EVENTS_PER_CONTINUATION
# Finalize shards finalized at once (env finalizer_concurrency, the FinalizeShards Map's MaxConcurrency): the
# workers are done by then, so the copy stage's 1,000 concurrent invocations (a new account's Lambda
# concurrency) are free for the finalizer. The env's default is 100.
FINALIZER_CONCURRENCY = WORKERS * WORKER_CONCURRENCY
# The merge reads one summary per shard (a GET of the simulated S3's 20-60 ms, 16 at a time: manifest.READ_THREADS)
# and settles each split copy with a ListParts, a CompleteMultipartUpload and a HEAD (64 at a time between two
# deadline checks, on the finalizer's 16 threads).
GET_LATENCY_S = 0.04
READ_THREADS = 16
SPLIT_REQUESTS = 3
# The stages of a run, in order (the JSON's keys are sorted: the table names them in this order).
STAGES = ("planning", "copy", "finalize")
# Issue 13's targets.
PLANNING_TARGET_S = 15 * 60
LAMBDA_TARGET_BYTES = 2 * GB
PARENT_TARGET_EVENTS = 1_000
CHILD_TARGET_EVENTS = 5_000


def mean_object_bytes(samples: int = 200_000) -> float:
    """The simulated bucket's mean object size (planning_scale.KeySpace.size), the 20 GiB ones left out."""
    step = planning_scale.HUGE_EVERY // samples * 7 + 1
    sizes = [planning_scale.KeySpace.size(i * step) for i in range(samples)
             if (i * step) % planning_scale.HUGE_EVERY != planning_scale.HUGE_EVERY // 2]
    return sum(sizes) / len(sizes)


def copy_stage(objects: int, assembled: dict[str, Any], mean_bytes: float) -> dict[str, Any]:
    """The copy stage of the assembled plan (its payloads, copies and split objects), modelled."""
    payloads, splits = assembled["payloads"], assembled["split_objects"]
    whole = assembled["copies"] - splits
    split_bytes = splits * planning_scale.HUGE_SIZE
    total_bytes = whole * mean_bytes + split_bytes
    parts = splits * math.ceil(planning_scale.HUGE_SIZE / limits.DEFAULT_PART_SIZE)
    copy_requests = whole + parts  # one CopyObject per object under the 5 GiB cutoff; UploadPartCopy per part
    # The assembler caps every payload (segment or chunk payload) at max_payload_bytes: the largest child.
    largest_payload = limits.DEFAULT_MAX_PAYLOAD_SIZE_MB * limits.MiB
    extra = payloads * history.continuations_of(int(total_bytes / payloads))  # mean payload: 0 at these sizes
    most = history.continuations_of(largest_payload)
    cost_bytes = total_bytes + copy_requests * limits.REQUEST_COST_BYTES
    invocations = payloads + extra
    worker_seconds = cost_bytes / (THROUGHPUT_MB_S * 1e6) + invocations * estimate.INVOCATION_OVERHEAD_SECONDS
    largest_invocation = min(INVOCATION_BUDGET_S, (largest_payload + limits.DEFAULT_MAX_OBJECTS_PER_PAYLOAD
                                                   * limits.REQUEST_COST_BYTES) / (THROUGHPUT_MB_S * 1e6)
                             + estimate.INVOCATION_OVERHEAD_SECONDS)
    concurrency = WORKERS * WORKER_CONCURRENCY
    # Each worker runs its share WORKER_CONCURRENCY at a time; the busiest holds balance x the mean share.
    wall = worker_seconds / concurrency * assembled["balance"]
    transitions = estimate.state_transitions(WORKERS, payloads, extra)
    gb_seconds = worker_seconds * WORKER_MEMORY_MB / 1024
    writes = copy_requests + 2 * splits + invocations  # + create/complete per split, a checkpoint per invocation
    reads = 2 * invocations + WORKERS + 2 * splits  # payload + checkpoint per invocation, worker lists, HEAD+tags
    cost = {"s3": writes * estimate.S3_WRITE_OR_LIST_PER_1000 / 1000 + reads * estimate.S3_READ_PER_1000 / 1000,
            "lambda": gb_seconds * estimate.LAMBDA_PER_GB_SECOND + invocations * estimate.LAMBDA_PER_REQUEST,
            "step_functions": transitions * estimate.SFN_PER_1000_TRANSITIONS / 1000}
    return {"objects": objects, "payloads": payloads, "payloads_per_worker": math.ceil(payloads / WORKERS),
            "copies": assembled["copies"], "split_objects": splits, "bytes": int(total_bytes),
            "copy_requests": copy_requests, "continuations": extra, "largest_payload_bytes": largest_payload,
            "largest_child_continuations": most, "child_events": history.child_events(most),
            "worker_map_events": history.parent_events(WORKERS), "transitions": transitions,
            "invocations": invocations, "worker_seconds": round(worker_seconds), "gb_seconds": round(gb_seconds),
            "longest_invocation_seconds": round(largest_invocation, 1), "concurrency": concurrency,
            "per_map_concurrency": WORKER_CONCURRENCY, "wall_seconds": round(wall, 1),
            "copies_per_second": round(assembled["copies"] / wall) if wall else 0,
            "cost_usd": {k: round(v, 2) for k, v in cost.items()}, "cost_total_usd": round(sum(cost.values()), 2)}


def finalizer_rates(measured: dict[str, Any]) -> dict[str, Any]:
    """Seconds per row (the stand-in's own file making left out), HEADs and listing pages per row of a measured
    run, and the seconds per row on AWS (each verification request's CPU, and a page's latency)."""
    rows = measured["rows"]
    own = (measured["seconds"] - measured.get("fake_generation_cpu_seconds", 0.0)) / rows
    heads = measured["verification"]["heads"] / rows
    pages = measured["verification"]["list_pages"] / rows
    return {"rows": rows, "layout": measured.get("layout", "spread"), "standin_seconds_per_row": own,
            "heads_per_row": heads, "list_pages_per_row": pages,
            "aws_seconds_per_row": own + heads * HEAD_CPU_S + pages * (LIST_PAGE_CPU_S + LIST_PAGE_LATENCY_S),
            "peak_rss_bytes": max(measured["peak_rss_bytes"], FINALIZER_10M["peak_rss_bytes"]),
            "measured_peak_rss_bytes": measured["peak_rss_bytes"]}


def finalize_stage(rows: int, rates: dict[str, Any], payloads: int = 0, splits: int = 0) -> dict[str, Any]:
    """The Finalize stage over ``rows`` copied rows in ``payloads`` payloads, as the fan-out runs it: finalize
    shards (lambdas/finalize_shards.plan_shards), FINALIZER_CONCURRENCY at once, each a chain of invocations in
    its own child execution, then the merge (summaries read, ``splits`` split copies settled)."""
    shards = finalize_shards.plan_shards(max(1, payloads), rows, ("skipped",))
    payload_shards = [s for s in shards if s.kind == "payloads"]
    rows_per_payload = rows / max(1, payloads)
    largest_rows = max(round(s.count * rows_per_payload) for s in payload_shards)
    rounds = math.ceil(len(payload_shards) / FINALIZER_CONCURRENCY)
    out: dict[str, Any] = {"rows": rows, "peak_rss_bytes": rates["peak_rss_bytes"], "shards": len(shards),
                           "largest_shard_rows": largest_rows, "concurrency": min(FINALIZER_CONCURRENCY, len(shards))}
    merge_seconds = (len(shards) * GET_LATENCY_S + splits * SPLIT_REQUESTS * GET_LATENCY_S) / READ_THREADS
    for model in ("standin", "aws"):
        per_row = rates[f"{model}_seconds_per_row"]
        shard_seconds = largest_rows * per_row  # every payload shard holds about as many rows
        shard_calls = max(1, math.ceil(shard_seconds / INVOCATION_BUDGET_S))
        lambda_seconds = rows * per_row + merge_seconds
        out[model] = {"seconds": round(rounds * shard_seconds + merge_seconds), "lambda_seconds": round(lambda_seconds),
                      "chain_seconds": round(lambda_seconds),  # one chain of invocations, as before the fan-out
                      "invocations": len(payload_shards) * shard_calls + 1 + 2,  # + the skipped shard, start, merge
                      "shard_invocations": shard_calls, "longest_invocation_seconds": min(shard_seconds,
                                                                                          INVOCATION_BUDGET_S),
                      "rows_per_invocation": int(INVOCATION_BUDGET_S / per_row)}
    heads = int(rows * rates["heads_per_row"])
    pages = int(rows * rates.get("list_pages_per_row", 0.0))
    aws = out["aws"]
    merge_calls = max(1, math.ceil(merge_seconds / INVOCATION_BUDGET_S))
    extra = aws["shard_invocations"] - 1
    # A shard's child: its start, the Task, the Choice, the Succeed; 2 more per continuation (estimate.py).
    aws["transitions"] = (2 + len(shards) * estimate.TRANSITIONS_PER_FINALIZE_SHARD
                          + len(payload_shards) * extra * FINALIZER_TRANSITIONS_PER_CONTINUATION
                          + (merge_calls - 1) * FINALIZER_TRANSITIONS_PER_CONTINUATION)
    # The largest child (a finalize shard) records what a payload's child does (measured on moto's interpreter:
    # tests/functional/test_state_machine.py); the run's own history only the merge's continuations.
    aws["child_events"] = history.child_events(extra)
    aws["parent_events"] = (merge_calls - 1) * FINALIZER_EVENTS_PER_CONTINUATION
    gb_seconds = aws["lambda_seconds"] * FINALIZER_MEMORY_MB / 1024
    cost = {"s3": heads * estimate.S3_READ_PER_1000 / 1000 + pages * estimate.S3_WRITE_OR_LIST_PER_1000 / 1000,
            "lambda": gb_seconds * estimate.LAMBDA_PER_GB_SECOND + aws["invocations"] * estimate.LAMBDA_PER_REQUEST,
            "step_functions": aws["transitions"] * estimate.SFN_PER_1000_TRANSITIONS / 1000}
    out.update(heads=heads, list_pages=pages, gb_seconds=round(gb_seconds),
               cost_usd={k: round(v, 2) for k, v in cost.items()}, cost_total_usd=round(sum(cost.values()), 2))
    return out


def planning_transitions(row: dict[str, Any]) -> int:
    """planning_scale.stage's count (it reports only their cost): 12 + 2 per shard + 3 per shard invocation."""
    return 12 + row["shards"] * 2 + sum(p["invocations"] for p in row["passes"]) * 3


def whole_run(plan: dict[str, Any], copy: dict[str, Any], fin: dict[str, Any]) -> dict[str, Any]:
    peaks = {f"plan {k}": v for k, v in plan["peak_rss_bytes"].items()}
    peaks["finalizer"] = fin["peak_rss_bytes"]
    parent = copy["worker_map_events"] + fin["aws"]["parent_events"]
    longest = {"prepare": plan["prepare_seconds"],
               "shard": max(p["longest_invocation_seconds"] for p in plan["passes"]),
               "assemble": plan["assemble_seconds"], "worker": copy["longest_invocation_seconds"],
               "finalizer": fin["aws"]["longest_invocation_seconds"]}
    cost = {"planning": plan["cost_total_usd"], "copy": copy["cost_total_usd"], "finalize": fin["cost_total_usd"]}
    return {
        "objects": plan["objects"],
        "wall_seconds": {"planning": plan["wall_seconds"], "copy": copy["wall_seconds"],
                         "finalize": fin["aws"]["seconds"], "finalize_standin": fin["standin"]["seconds"],
                         "finalize_one_chain": fin["aws"]["chain_seconds"]},
        "peak_rss_bytes": peaks, "largest_peak_bytes": max(peaks.values()),
        "invocations": {"planning": plan["invocations"], "copy": copy["invocations"],
                        "finalize": fin["aws"]["invocations"]},
        "transitions": {"planning": planning_transitions(plan), "copy": copy["transitions"],
                        "finalize": fin["aws"]["transitions"]},
        "parent_events": parent, "largest_child_events": max(copy["child_events"], fin["aws"]["child_events"]),
        "concurrency": copy["concurrency"], "per_map_concurrency": copy["per_map_concurrency"],
        "finalize_map_concurrency": fin["concurrency"],
        "planning_map_concurrency": plan["concurrency"], "longest_invocation_seconds": longest,
        "payloads_per_worker": copy["payloads_per_worker"], "cost_usd": cost,
        "cost_total_usd": round(sum(cost.values()), 2), "copy": copy, "finalize": fin,
    }


def targets(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets for one size, each with its value and PASS/FAIL (None: the target is not for it)."""
    n = row["objects"]
    longest = max(row["longest_invocation_seconds"].values())
    children = max(row["per_map_concurrency"], row["planning_map_concurrency"], row["finalize_map_concurrency"])
    out = [
        ("planned in <= 15 min (issue: at 100M)", round(row["wall_seconds"]["planning"] / 60, 1),
         row["wall_seconds"]["planning"] <= PLANNING_TARGET_S if n <= 100_000_000 else None),
        ("no Lambda above 2 GB (measured peak GB; worker not measured)", round(row["largest_peak_bytes"] / GB, 2),
         row["largest_peak_bytes"] <= LAMBDA_TARGET_BYTES),
        ("parent history <= 1,000 events", row["parent_events"], row["parent_events"] <= PARENT_TARGET_EVENTS),
        ("every child <= 5,000 events", row["largest_child_events"],
         row["largest_child_events"] <= CHILD_TARGET_EVENTS),
        ("AWS: every history <= 25,000 events", max(row["parent_events"], row["largest_child_events"]),
         max(row["parent_events"], row["largest_child_events"]) <= limits.MAX_HISTORY_EVENTS),
        ("AWS: <= 10,000 parallel children per Map (largest Map's)", children,
         children <= limits.MAX_MAP_CONCURRENCY),
        ("AWS: workers x worker_concurrency <= 10,000", row["concurrency"],
         row["concurrency"] <= limits.MAX_MAP_CONCURRENCY),
        ("AWS: payloads per worker <= 50,000 (Map result size)", row["payloads_per_worker"],
         row["payloads_per_worker"] <= limits.MAX_PAYLOADS_PER_WORKER),
        ("AWS: every invocation <= 900 s (longest s)", round(longest, 1), longest <= limits.MAX_LAMBDA_TIMEOUT_SECONDS),
        ("AWS: every Lambda <= 10 GB (peak GB)", round(row["largest_peak_bytes"] / GB, 2),
         row["largest_peak_bytes"] <= limits.MAX_LAMBDA_MEMORY_MB * 1024 * 1024),
    ]
    return [{"target": t, "value": v, "met": m} for t, v, m in out]


def run(quick: bool = False, planning: dict[str, Any] | None = None, finalizer: dict[str, Any] | None = None,
        timeout: float = 1800.0) -> dict[str, Any]:
    """Planning (run, unless ``planning`` is the result of planning_scale.run), the finalizer at 1M rows
    (unless given a measured run), then each size's whole run and its targets."""
    if planning is None or "stages" not in planning:
        planning = planning_scale.run(quick=quick, timeout=timeout)
    if "error" in planning:
        return {"error": f"planning: {planning['error']}"}
    if finalizer is None:
        finalizer = run_json([sys.executable, "-m", "bench.finalizer_scale", "--rows",
                              str(20_000 if quick else 1_000_000), "--layout", FINALIZER_LAYOUT], timeout)
    if "error" in finalizer:
        return {"error": f"finalizer: {finalizer['error']}"}
    rates = finalizer_rates(finalizer)
    mean_bytes = mean_object_bytes()
    assembled = {a["objects"]: a for a in planning["assemble"]}
    rows = []
    for plan in planning["stages"]:
        if plan["concurrency"] != planning_scale.CONCURRENCY[0]:
            continue
        copy = copy_stage(plan["objects"], assembled[plan["objects"]], mean_bytes)
        row = whole_run(plan, copy, finalize_stage(copy["copies"], rates, copy["payloads"], copy["split_objects"]))
        row["targets"] = targets(row)
        rows.append(row)
    return {"quick": quick, "workers": WORKERS, "worker_concurrency": WORKER_CONCURRENCY,
            "throughput_mb_s": THROUGHPUT_MB_S, "mean_object_bytes": round(mean_bytes),
            "worker_memory_mb": WORKER_MEMORY_MB, "finalizer_memory_mb": FINALIZER_MEMORY_MB,
            "head_cpu_seconds": HEAD_CPU_S, "list_page_cpu_seconds": LIST_PAGE_CPU_S,
            "list_page_latency_seconds": LIST_PAGE_LATENCY_S, "finalizer_concurrency": FINALIZER_CONCURRENCY,
            "finalizer_measured": finalizer, "finalizer_recorded": FINALIZER_10M,
            "finalizer_rates": rates, "planning": planning, "rows": rows}


# --- the table ---------------------------------------------------------------------------------------
def _met(value: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[value]


def table_lines(results: dict[str, Any] | None) -> list[str]:
    if not results:
        return []
    if "error" in results:
        return [f"Scale (whole run): {results['error']}", ""]
    rates = results["finalizer_rates"]
    rows = results["rows"]
    lines = [f"Scale (whole run; planning measured on a simulated S3, copy modelled, finalizer measured at "
             f"{rates['rows']:,} rows and extrapolated): {results['workers']} workers x "
             f"{results['worker_concurrency']} payloads at once, {results['throughput_mb_s']:.0f} MB/s per worker "
             f"invocation, mean object {results['mean_object_bytes'] / 1e6:.2f} MB; finalizer "
             f"{rates['standin_seconds_per_row'] * 1e6:.0f} us a row on the stand-in, "
             f"{rates['aws_seconds_per_row'] * 1e6:.0f} us with verification's requests on AWS (payloads laid "
             f"out as {rates.get('layout', 'spread')}: {rates['heads_per_row']:.4f} HEADs a row at "
             f"{results['head_cpu_seconds'] * 1000:.1f} ms of CPU, {rates.get('list_pages_per_row', 0.0):.4f} "
             f"listing pages a row at {results.get('list_page_cpu_seconds', 0.0) * 1000:.0f} ms of CPU + "
             f"{results.get('list_page_latency_seconds', 0.0) * 1000:.0f} ms of latency); finalizer "
             f"peak: the larger of {rates['measured_peak_rss_bytes'] / GB:.3f} GB measured and "
             f"{FINALIZER_10M['peak_rss_bytes'] / GB:.3f} GB at 10M rows ({FINALIZER_10M['source']})", "",
             "| figure | " + " | ".join(f"{r['objects']:,}" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]

    def add(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in rows) + " |")

    add("wall: planning (computed from measured roles)", lambda r: f"{r['wall_seconds']['planning'] / 60:.1f} min")
    add("wall: copy (modelled)", lambda r: _duration(r["wall_seconds"]["copy"]))
    add("wall: finalize in the fan-out, AWS (stand-in)", lambda r: f"{_duration(r['wall_seconds']['finalize'])} "
        f"({_duration(r['wall_seconds']['finalize_standin'])})")
    add("wall: finalize as one chain before the fan-out, AWS",
        lambda r: _duration(r["wall_seconds"]["finalize_one_chain"]))
    add("finalize shards (rows of the largest) x at once",
        lambda r: f"{r['finalize']['shards']:,} ({r['finalize']['largest_shard_rows']:,}) x "
                  f"{r['finalize']['concurrency']:,}")
    add("peak GB: prepare / shard / assemble / finalizer", lambda r: " / ".join(
        f"{r['peak_rss_bytes'][k] / GB:.2f}" for k in ("plan prepare", "plan shard", "plan assemble", "finalizer")))
    add("peak GB: worker", lambda r: f"not measured ({results['worker_memory_mb']} MB configured)")
    add("payloads (per worker)", lambda r: f"{r['copy']['payloads']:,} ({r['payloads_per_worker']:,})")
    add("invocations: planning / copy / finalize", lambda r: " / ".join(f"{r['invocations'][k]:,}" for k in STAGES))
    add("finalizer invocations on the stand-in", lambda r: f"{r['finalize']['standin']['invocations']:,}")
    add("state transitions: planning / copy / finalize", lambda r: " / ".join(
        f"{r['transitions'][k]:,}" for k in STAGES))
    add("parent history events (fixed + Maps, + merge continuations)",
        lambda r: f"{r['copy']['worker_map_events']:,} + {r['finalize']['aws']['parent_events']:,} = "
                  f"{r['parent_events']:,}")
    add("largest child history events: payload / finalize shard",
        lambda r: f"{r['copy']['child_events']:,} / {r['finalize']['aws']['child_events']:,}")
    add("concurrency: workers x per Map = all (planning Map, finalize Map)",
        lambda r: f"{r['concurrency'] // r['per_map_concurrency']} x {r['per_map_concurrency']} = "
                  f"{r['concurrency']:,} ({r['planning_map_concurrency']:,}, {r['finalize_map_concurrency']:,})")
    add("longest invocation s: shard / worker / finalizer", lambda r: " / ".join(
        f"{r['longest_invocation_seconds'][k]:.0f}" for k in ("shard", "worker", "finalizer")))
    prefixes = len(planning_scale.document()["s3_copy_config"]["target_s3_config"])
    add(f"copy: copies a second (S3 takes {limits.COPY_REQUESTS_PER_SECOND_PER_PREFIX:,} a second per prefix; "
        f"{prefixes} target prefixes)", lambda r: f"{r['copy']['copies_per_second']:,}")
    add("finalizer verification: listing pages / HEADs", lambda r: f"{r['finalize'].get('list_pages', 0):,} / "
        f"{r['finalize']['heads']:,}")
    add("copy: requests, worker GB-s", lambda r: f"{r['copy']['copy_requests']:,}, {r['copy']['gb_seconds']:,}")
    add("cost USD: planning / copy / finalize", lambda r: " / ".join(f"{r['cost_usd'][k]:,.2f}" for k in STAGES))
    add("**cost USD, whole run**", lambda r: f"**{r['cost_total_usd']:,.0f}**")
    for i, target in enumerate(rows[0]["targets"] if rows else []):
        add(target["target"], lambda r, i=i: f"{_num(r['targets'][i]['value'])} {_met(r['targets'][i]['met'])}")
    lines.append("")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} days"


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def all_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every size's targets, for bench/run.py's table of targets."""
    return [{**t, "target": f"Scale {r['objects']:,}: {t['target']}"} for r in results.get("rows", [])
            for t in r["targets"] if t["met"] is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--planning", default="", help="a JSON file of planning_scale.run's result to reuse")
    args = parser.parse_args(argv)
    planning = json.loads(Path(args.planning).read_text(encoding="utf-8")) if args.planning else None
    result = run(quick=args.quick, planning=planning)
    print("\n".join(table_lines(result)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
