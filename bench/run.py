"""``python -m bench``: run every benchmark, write bench/results/latest.json, print the table.

Pure benchmarks first (balance, planner scale and its profile, finalizer scale, sharded planning scale on a
simulated S3: no network), then W1 on one local S3: start it, upload the data set once, and run each
contender against it in turn. Last, the fan-out run (bench/fanout.py): thousands of payloads on two workers,
on an emulator of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import balance, contenders, planning_scale, scale, workloads
from bench.json_subprocess import run_json
from bench.local_s3 import open_local_aws
from lambdas.limits import MiB

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("balance", "planner", "finalizer", "planning", "scale", "w1", "fanout")
REFERENCE_LOOP = "5,000,000 additions in a Python for loop"
GB = 1_000_000_000
# Issue 13's target for the finalizer: at most 1 GB of memory at 10,000,000 report rows.
FINALIZER_TARGET_ROWS = 10_000_000
FINALIZER_TARGET_BYTES = 1 * GB


# --- the pure benchmarks -----------------------------------------------------------------------------
def run_planner(objects: int, workers: int, timeout: float, profile_to: Path | None, rounds: int = 1) -> dict[str, Any]:
    """Time and peak memory of plan_run on ``objects`` synthetic entries, each run in a fresh subprocess;
    the run with the median time is reported, with every run's time and the machine's reference loop."""
    command = [sys.executable, "-m", "bench.planner_scale", "--objects", str(objects), "--workers", str(workers)]
    runs = [run_json(command, timeout) for _ in range(rounds)]
    failed = [r for r in runs if "error" in r]
    if failed:
        result = failed[0]
    else:
        result = sorted(runs, key=lambda r: float(r["seconds"]))[len(runs) // 2]
        result["runs_seconds"] = [r["seconds"] for r in runs]
        result["runs_reference_seconds"] = [r["reference_seconds"] for r in runs]
        result["target_met"] = result["seconds"] <= 10.0 and result["peak_rss_bytes"] <= 1.5 * GB
    if profile_to is not None:
        result["profile"] = run_json([*command, "--profile", str(profile_to)], timeout)
    return result


def run_finalizer(sizes: list[int], timeout: float) -> dict[str, Any]:
    """Peak memory and time of the real finalizer over ``sizes`` synthetic copied rows, each in a fresh
    subprocess (bench/finalizer_scale.py), plus one run of a million skipped objects."""
    runs = [run_json([sys.executable, "-m", "bench.finalizer_scale", "--rows", str(rows)], timeout)
            for rows in sizes]
    skipped = max(sizes, default=0) // 10 or 1
    runs.append(run_json([sys.executable, "-m", "bench.finalizer_scale", "--rows", "0", "--skipped",
                                  str(min(1_000_000, max(skipped, 1_000)))], timeout))
    return {"runs": runs}


def run_fanout(payloads: int, workers: int, timeout: float) -> dict[str, Any]:
    """One run of ``payloads`` one-object payloads on ``workers`` workers on a fresh emulator, in a subprocess
    (bench/fanout.py): each payload a child execution of its worker's Distributed Map."""
    return run_json([sys.executable, "-m", "bench.fanout", "--payloads", str(payloads), "--workers",
                             str(workers), "--timeout", str(timeout)], timeout + 600)


# --- W1 ----------------------------------------------------------------------------------------------
def run_w1(workload: workloads.Workload, names: list[str], timeout: float, fallback: bool,
           workdir: Path, rounds: int) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    kind, local = open_local_aws(fallback=fallback)
    with local as aws:
        client = boto3.session.Session().client(
            "s3", endpoint_url=aws.endpoint, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
        started = time.monotonic()
        contenders.ensure_bucket(client, workload.source_bucket)
        workloads.populate(client, workload)
        populated = time.monotonic() - started
        ctx = contenders.Context(workload=workload, endpoint=aws.endpoint, workdir=workdir, timeout=timeout)
        chosen = [c for c in contenders.all_contenders() if c.name in names]
        outcomes = {c.name: contenders.prepare(c, ctx) for c in chosen}
        for round_number in range(rounds):
            # Rotate the order every round, so no contender always runs first (or right after another).
            order = chosen[round_number % len(chosen):] + chosen[:round_number % len(chosen)] if chosen else []
            for contender in order:
                outcome = outcomes[contender.name]
                if outcome.status != "ok":
                    continue
                contenders.run_once(contender, outcome, ctx, client, aws.request_counts)
                print(f"  W1 round {round_number + 1}/{rounds}: {contender.name}: {outcome.status} "
                      f"{outcome.runs[-1] if outcome.runs else '-'} s {outcome.detail}", file=sys.stderr, flush=True)
    return {
        "local_s3": kind,
        "objects": len(workload.objects),
        "copies": len(workloads.routed(workload)),
        "bytes": workload.total_bytes,
        "populate_seconds": round(populated, 2),
        "rounds": rounds,
        "contenders": {name: o.to_dict() for name, o in outcomes.items()},
    }


# --- targets and the table ---------------------------------------------------------------------------
def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 with its measured value and whether it was met (None: not measured)."""
    rows: list[dict[str, Any]] = []
    w1 = results.get("w1", {}).get("contenders", {})
    seconds = {n: o["seconds"] for n, o in w1.items() if o.get("status") == "ok"}
    sfn = seconds.get("sfncopy")
    for other, factor in (("rclone", 1.0), ("aws-cli", 0.5)):
        value = round(sfn / seconds[other], 3) if sfn and other in seconds else None
        rows.append({"target": f"W1 wall time: sfncopy <= {factor} x {other}", "value": value,
                     "met": None if value is None else value <= factor})
    reqs = w1.get("sfncopy", {}).get("requests", {})
    value = reqs.get("ratio_total") if w1.get("sfncopy", {}).get("status") == "ok" else None
    rows.append({"target": "Requests: sfncopy <= 1.1 x the minimum (all S3 requests)", "value": value,
                 "met": None if value is None else value <= 1.1})
    planner = results.get("planner", {})
    if "seconds" in planner:
        rows.append({"target": f"Planner: {planner['objects']:,} objects in <= 10 s", "value": planner["seconds"],
                     "met": planner["seconds"] <= 10.0})
        peak = round(planner["peak_rss_bytes"] / GB, 3)
        rows.append({"target": "Planner: peak memory <= 1.5 GB", "value": peak, "met": peak <= 1.5})
    for run_ in results.get("finalizer", {}).get("runs", []):
        if "peak_rss_bytes" in run_ and run_.get("rows"):
            peak = round(run_["peak_rss_bytes"] / GB, 3)
            # The limit is 1 GB at 10M rows: a smaller run is held to it too (memory must not grow with rows).
            rows.append({"target": f"Finalizer: {run_['rows']:,} rows in <= 1 GB peak memory", "value": peak,
                         "met": run_["peak_rss_bytes"] <= FINALIZER_TARGET_BYTES})
    for row in results.get("balance", {}).get("rows", []):
        rows.append({"target": f"Balance N={row['workers']}: sfncopy <= 1.05 x ideal (2018: {row['baseline2018']})",
                     "value": row["sfncopy"], "met": row["sfncopy"] <= 1.05})
    fanout = results.get("fanout", {})
    if "payloads" in fanout:
        rows.append({"target": f"Fan-out: {fanout['payloads']:,} payloads on {fanout['workers']} workers run and "
                               "verify on the emulator", "value": fanout.get("seconds"),
                     "met": bool(fanout.get("verified"))})
    rows += planning_scale.targets(results.get("planning", {}))
    rows += scale.all_targets(results.get("scale", {}))
    return rows


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    w1 = results.get("w1")
    if w1:
        lines += [f"W1 mixed: {w1['objects']:,} objects, {w1['copies']:,} copies, {w1['bytes'] / MiB:,.0f} MiB, "
                  f"local S3: {w1['local_s3']}", "",
                  "| contender | status | wall s | MiB/s | x sfncopy | requests | per object | x minimum "
                  "| copy-only x min |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        base = w1["contenders"].get("sfncopy", {}).get("seconds")
        for name, o in _ordered(w1["contenders"]):
            seconds = o.get("seconds")
            reqs = o.get("requests", {})
            rate = f"{w1['bytes'] / MiB / seconds:,.1f}" if seconds and o["status"] == "ok" else "-"
            ratio = f"{seconds / base:.2f}" if seconds and base and o["status"] == "ok" else "-"
            lines.append(f"| {name} | {o['status']} | {_num(seconds)} | {rate} | {ratio} | {reqs.get('total', '-')} "
                         f"| {reqs.get('per_object', '-')} | {reqs.get('ratio_total', '-')} "
                         f"| {reqs.get('ratio_copy', '-')} |")
        lines.append("")
        for name, o in _ordered(w1["contenders"]):
            if o.get("runs"):
                lines.append(f"- {name}: runs {', '.join(f'{s:.1f}' for s in o['runs'])} s"
                             + (f"; setup (untimed) {o['setup_seconds']:.1f} s" if o.get("setup_seconds") else ""))
            for number, phases in enumerate(o.get("phases", []), start=1):
                lines.append(f"  - run {number} states: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
        lines.append("")
        lines.append("Requests by category (copy / inspect / listing / manifest / other):")
        for name, o in _ordered(w1["contenders"]):
            cats = o.get("requests", {}).get("by_category")
            if cats:
                lines.append(f"- {name}: " + " / ".join(str(cats[c]) for c in cats)
                             + f"  ({', '.join(f'{k} {v}' for k, v in o['requests']['operations'].items())})")
        lines.append("")
    planner = results.get("planner")
    if planner:
        if "seconds" in planner:
            lines.append(f"Planner scale: {planner['objects']:,} objects, {planner['workers']} workers: "
                         f"{planner['seconds']:.2f} s wall ({planner.get('cpu_seconds', 0):.2f} s CPU), "
                         f"peak RSS {planner['peak_rss_bytes'] / GB:.2f} GB "
                         f"(before planning {planner['rss_before_bytes'] / GB:.2f} GB), "
                         f"{planner['payloads']} payloads, "
                         f"{planner['bytes_written'] / 1e6:.0f} MB of plan files, state payload "
                         f"{planner['state_payload_bytes']:,} bytes")
            if "runs_seconds" in planner:
                lines.append(f"- runs {', '.join(f'{x:.1f}' for x in planner['runs_seconds'])} s; this machine's "
                             f"reference loop ({REFERENCE_LOOP}) took "
                             f"{', '.join(f'{x:.2f}' for x in planner['runs_reference_seconds'])} s in those runs "
                             "(the same loop's time moves with the host's load: compare runs with it)")
        else:
            lines.append(f"Planner scale: {planner.get('error')}")
        lines.append("")
    fin = results.get("finalizer")
    if fin:
        lines += ["Finalizer scale: the real finalizer, one invocation, stand-in S3 (payloads of 1,000 keys spread "
                  "over the target)", "",
                  "| copied rows | skipped | peak RSS GB | before GB | wall s | CPU s | parts | report.csv | HEADs "
                  "| list pages |",
                  "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for r in fin["runs"]:
            if "error" in r:
                lines.append(f"| - | - | {r['error']} | | | | | | | |")
                continue
            lines.append(f"| {r['rows']:,} | {r['skipped']:,} | {r['peak_rss_bytes'] / GB:.3f} "
                         f"| {r['rss_before_bytes'] / GB:.3f} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} "
                         f"| {r['parts']} | {'yes' if r['report_csv'] else 'no'} | {r['verification']['heads']:,} "
                         f"| {r['verification']['list_pages']:,} |")
        lines.append("")
    fanout = results.get("fanout")
    if fanout:
        if "payloads" in fanout:
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in fanout.get("phases", {}).items()
                               if k in ("Plan", "Copy", "Finalize"))
            lines += [f"Fan-out: {fanout['payloads']:,} payloads of one object on {fanout['workers']} workers "
                      f"(Distributed Maps, MaxConcurrency {fanout['worker_concurrency']}) on the emulator: "
                      f"{fanout['status']} in {fanout.get('seconds', 0):.1f} s ({phases}); "
                      f"{'verified' if fanout.get('verified') else 'NOT verified'}: {fanout.get('copied', 0):,} "
                      f"copied, Map Runs {[r.get('succeeded') for r in fanout.get('map_runs', [])]} succeeded; the "
                      f"run's history {fanout.get('parent_history_events')} events; "
                      f"{sum(fanout.get('lambda_invocations', {}).values()):,} invocations, "
                      f"{fanout.get('s3_requests', 0):,} S3 requests", ""]
        else:
            lines += [f"Fan-out: {fanout.get('error')}", ""]
    bal = results.get("balance")
    if bal:
        lines += [f"Balance: {bal['objects']:,} lognormal objects, the largest holds {bal['largest_share']:.0%} of "
                  f"{bal['total_bytes'] / 2**40:.2f} TiB; predicted makespan / ideal",
                  "", "| workers | sfncopy | 2018 algorithm |", "|---:|---:|---:|"]
        lines += [f"| {r['workers']} | {r['sfncopy']:.3f} | {r['baseline2018']:.3f} |" for r in bal["rows"]]
        lines.append("")
    lines += planning_scale.table_lines(results.get("planning"))
    lines += scale.table_lines(results.get("scale"))
    lines += ["Targets:", "", "| target | value | met |", "|---|---:|---|"]
    for row in results.get("targets", []):
        met = {True: "yes", False: "NO", None: "not measured"}[row["met"]]
        lines.append(f"| {row['target']} | {_num(row['value'])} | {met} |")
    return "\n".join(lines)


def _ordered(outcomes: dict[str, Any]) -> list[tuple[str, Any]]:
    """Contenders in their usual order (sfncopy first), whatever order the JSON kept them in."""
    order = [c.name for c in contenders.all_contenders()]
    return sorted(outcomes.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    info["cpus"] = os.cpu_count()
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]  # other work on the machine adds noise
    for tool, args in (("rclone", ["rclone", "version"]), ("aws", [contenders._tool("aws") or "aws", "--version"])):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
            info[tool] = (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            info[tool] = "not installed"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--contenders", default="sfncopy,rclone,aws-cli,baseline-2018")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks the harness in a minute")
    parser.add_argument("--planner-objects", type=int, default=None)
    parser.add_argument("--finalizer-rows", default=None,
                        help="comma-separated copied-row counts for the finalizer (default 1000000,10000000)")
    parser.add_argument("--fanout-payloads", type=int, default=None,
                        help="payloads of the fan-out run on 2 workers (default 5000; --quick 300)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="W1 runs per contender and planner runs (the median is reported)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for one contender or one subprocess")
    parser.add_argument("--fallback-s3", action="store_true", help="use a bare moto server even if the emulator exists")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown section(s) {unknown}; choose from {SECTIONS}")

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results: dict[str, Any] = {"generated_at": now, "quick": args.quick, "machine": machine()}
    out = Path(args.out)
    if set(sections) != set(SECTIONS) and out.is_file():
        # A partial run keeps the other sections of the last results (each section says when it ran).
        previous = json.loads(out.read_text(encoding="utf-8"))
        if previous.get("quick") == args.quick:
            results.update({s: previous[s] for s in SECTIONS if s in previous and s not in sections})
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "balance" in sections:
        print("balance ...", file=sys.stderr, flush=True)
        results["balance"] = balance.run(count=2_000 if args.quick else 10_000)
    if "planner" in sections:
        objects = args.planner_objects or (20_000 if args.quick else 1_000_000)
        print(f"planner scale: {objects:,} objects ...", file=sys.stderr, flush=True)
        results["planner"] = run_planner(objects, 16, args.timeout, RESULTS / "planner_profile.txt",
                                         max(1, args.rounds))
    if "finalizer" in sections:
        sizes = [int(x) for x in (args.finalizer_rows or ("20000" if args.quick else "1000000,10000000")).split(",")]
        print(f"finalizer scale: {', '.join(f'{n:,}' for n in sizes)} rows ...", file=sys.stderr, flush=True)
        results["finalizer"] = run_finalizer(sizes, max(args.timeout, 1800.0))
    if "planning" in sections:
        print("planning scale (sharded, simulated S3) ...", file=sys.stderr, flush=True)
        results["planning"] = planning_scale.run(quick=args.quick, timeout=max(args.timeout, 1800.0))
    if "scale" in sections:
        # The whole run at 10M, 100M and 1B: reuses this run's planning and largest finalizer run (of the segments
        # layout) when they ran
        # (a kept earlier result may be of other code), else runs them (planning ~1-4 min, finalizer at 1M ~1 min).
        print("scale: the whole run at 10M, 100M, 1B objects ...", file=sys.stderr, flush=True)
        # Only a finalizer run of the layout sharded runs have (their payloads are segments) stands for them.
        finalized = [r for r in results.get("finalizer", {}).get("runs", [])
                     if r.get("rows") and "error" not in r and r.get("layout") == scale.FINALIZER_LAYOUT]
        results["scale"] = scale.run(
            quick=args.quick, planning=results["planning"] if "planning" in sections else None,
            finalizer=max(finalized, key=lambda r: r["rows"]) if "finalizer" in sections and finalized else None,
            timeout=max(args.timeout, 1800.0))
    if "w1" in sections:
        workload = (workloads.mixed_workload(small_count=60, big_sizes=(6 * MiB, 12 * MiB)) if args.quick
                    else workloads.mixed_workload())
        print(f"W1: {len(workload.objects):,} objects, {workload.total_bytes / MiB:,.0f} MiB ...", file=sys.stderr,
              flush=True)
        # Kept after the run: each contender's log (commands and their output) is there.
        workdir = Path(tempfile.mkdtemp(prefix="sfncopy-bench-"))
        results["w1"] = run_w1(workload, args.contenders.split(","), args.timeout, args.fallback_s3, workdir,
                               max(1, args.rounds))
        results["w1"]["logs"] = str(workdir)
    if "fanout" in sections:
        payloads = args.fanout_payloads or (300 if args.quick else 5_000)
        print(f"fan-out: {payloads:,} payloads on 2 workers ...", file=sys.stderr, flush=True)
        results["fanout"] = run_fanout(payloads, 2, max(args.timeout, 3600.0))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for section in sections:
        if isinstance(results.get(section), dict):
            results[section]["generated_at"] = now
            results[section]["load_average_at_end"] = results["machine"]["load_average_at_end"]
    results["targets"] = targets(results)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    text = table(results)
    out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
