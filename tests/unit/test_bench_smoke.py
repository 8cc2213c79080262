"""Smoke test of the benchmark harness (bench/): its pure parts on toy sizes. The benchmarks never run here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import baseline2018, contenders, requests, run, workloads
from bench.local_s3 import CountingApp, is_s3_request
from lambdas.limits import GiB, MiB

S3_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host"


def test_largest_first_gives_whole_files_to_the_least_loaded_worker() -> None:
    # GIVEN sizes whose largest-first greedy assignment is known  WHEN assigned to 2 workers
    sizes = [1, 10, 8, 9, 1]
    assignment = baseline2018.assign_largest_first(sizes, 2)
    # THEN 10 -> w0, 9 -> w1, 8 -> w1 (9 < 10), 1 -> w0, 1 -> w0 (11 < 17), each index exactly once
    assert assignment == [[1, 0, 4], [3, 2]]
    assert baseline2018.worker_loads(sizes, assignment) == [12, 17]


def test_largest_first_refuses_zero_workers() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        baseline2018.assign_largest_first([1], 0)


def test_baseline_routes_by_extension_relative_to_the_source_prefix() -> None:
    targets = [{"bucket": "m", "prefix": "copy/", "file_types": ["mp4", "mov"]},
               {"bucket": "i", "prefix": "", "file_types": ["jpg"]}]
    assert baseline2018.route("data/a/x.MOV", "data/", targets) == [("m", "copy/a/x.MOV")]
    assert baseline2018.route("data/b.jpg", "data/", targets) == [("i", "b.jpg")]
    assert baseline2018.route("data/no-extension", "data/", targets) == []


def test_mixed_workload_routes_every_object_to_exactly_one_target() -> None:
    # GIVEN a small W1  WHEN routed
    workload = workloads.mixed_workload(small_count=30, big_sizes=(6 * MiB, 7 * MiB))
    expected = workloads.expected_targets(workload)
    # THEN every object lands once, under the target prefix, with its size; sizes stay in bounds
    assert sum(len(v) for v in expected.values()) == 32
    assert sum(sum(v.values()) for v in expected.values()) == workload.total_bytes
    assert all(k.startswith("copy/") for v in expected.values() for k in v)
    assert all(workloads.SMALL_MIN <= o.size <= workloads.SMALL_MAX for o in workload.objects[:30])
    assert workload == workloads.mixed_workload(small_count=30, big_sizes=(6 * MiB, 7 * MiB))  # seeded


def test_copy_config_asks_sfncopy_for_the_same_routing() -> None:
    workload = workloads.mixed_workload(small_count=1, big_sizes=())
    doc = workloads.copy_config(workload)["s3_copy_config"]
    assert doc["source_s3_config"] == {"s3_bucket": "bench-src", "s3_path": "data/"}
    assert [t["file_types"] for t in doc["target_s3_config"]] == [["mp4", "mov"], ["jpg", "png"], ["pdf", "csv"]]


def test_object_body_is_deterministic_and_sized() -> None:
    spec = workloads.ObjectSpec("data/x.jpg", 3000, "jpg")
    block = workloads.pattern_block(size=1024)
    body = workloads.object_body(spec, block)
    assert len(body) == 3000 and body.startswith(b"data/x.jpg\n") and body == workloads.object_body(spec, block)


def test_heavy_tailed_sizes_give_the_giant_its_share() -> None:
    sizes = workloads.heavy_tailed_sizes(count=500)
    assert len(sizes) == 500
    assert sizes[0] / sum(sizes) == pytest.approx(0.4, abs=1e-6)


def test_synthetic_pages_are_paginated_and_complete() -> None:
    pages = list(workloads.synthetic_pages(2500, page_size=1000))
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert len({o.key for p in pages for o in p}) == 2500


@pytest.mark.parametrize(("method", "path", "query", "headers", "operation"), [
    ("GET", "/b", {"list-type": "2"}, {}, "ListObjectsV2"),
    ("GET", "/b", {}, {}, "ListObjects"),
    ("GET", "/b", {"uploads": ""}, {}, "ListMultipartUploads"),
    ("HEAD", "/b", {}, {}, "HeadBucket"),
    ("HEAD", "/b/k", {}, {}, "HeadObject"),
    ("GET", "/b/k", {}, {}, "GetObject"),
    ("GET", "/b/k", {"tagging": ""}, {}, "GetObjectTagging"),
    ("PUT", "/b/a/k", {}, {"x-amz-copy-source": "s/k"}, "CopyObject"),
    ("PUT", "/b/k", {}, {}, "PutObject"),
    ("PUT", "/b/k", {"partNumber": "1", "uploadId": "u"}, {"x-amz-copy-source": "s/k"}, "UploadPartCopy"),
    ("PUT", "/b/k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart"),
    ("POST", "/b/k", {"uploads": ""}, {}, "CreateMultipartUpload"),
    ("POST", "/b/k", {"uploadId": "u"}, {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/k", {"uploadId": "u"}, {}, "AbortMultipartUpload"),
    ("POST", "/b", {"delete": ""}, {}, "DeleteObjects"),
])
def test_operation_of_names_path_style_requests(method: str, path: str, query: dict[str, str],
                                                headers: dict[str, str], operation: str) -> None:
    assert requests.operation_of(method, path, query, headers) == operation


def test_breakdown_separates_copy_requests_from_listing_and_manifest() -> None:
    # GIVEN 10 copies that took 10 CopyObject, 1 listing and 2 manifest writes
    counts = {"CopyObject": 10, "ListObjectsV2": 1, "PutObject": 2}
    result = requests.breakdown(counts, copies=10, minimum=requests.minimum_requests([MiB] * 10))
    # THEN the ratios are against one CopyObject per object
    assert result["by_category"] == {"copy": 10, "inspect": 0, "listing": 1, "manifest": 2, "other": 0}
    assert (result["ratio_total"], result["ratio_copy"], result["ratio_excl_manifest"]) == (1.3, 1.0, 1.1)


def test_minimum_requests_counts_multipart_above_5_gib() -> None:
    # 5 GiB: one CopyObject; 12 GiB: create + 3 parts of <= 5 GiB + complete
    assert requests.minimum_requests([5 * GiB, 12 * GiB]) == 1 + 5


def test_diff_keeps_only_what_happened_between_snapshots() -> None:
    assert requests.diff({"A": 2, "B": 1}, {"A": 5, "B": 1, "C": 1}) == {"A": 3, "C": 1}


def test_counting_app_counts_s3_requests_only() -> None:
    # GIVEN the counting middleware around a do-nothing app
    app = CountingApp(lambda environ, start_response: [b""])
    s3 = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/k", "QUERY_STRING": "", "HTTP_AUTHORIZATION": S3_AUTH,
          "HTTP_X_AMZ_COPY_SOURCE": "src/k"}
    lam = {"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations", "QUERY_STRING": "",
           "HTTP_AUTHORIZATION": S3_AUTH.replace("/s3/", "/lambda/")}
    # WHEN a copy and a Lambda invoke pass through
    for environ in (s3, lam):
        app(environ, lambda *a: None)
    # THEN only the S3 copy is counted
    assert app.snapshot() == {"CopyObject": 1}
    assert not is_s3_request(lam)


def test_compare_catches_missing_extra_and_wrong_sizes() -> None:
    expected = {"t": {"a": 1, "b": 2, "c": 3}}
    result = contenders.compare(expected, {"t": {"a": 1, "b": 5, "d": 1}})
    assert not result["ok"]
    assert (result["targets"]["t"]["missing"], result["targets"]["t"]["extra"],
            result["targets"]["t"]["wrong_size"]) == (["c"], ["d"], ["b"])
    assert contenders.compare(expected, expected)["ok"]


def test_cli_contenders_route_with_include_filters(tmp_path: Path) -> None:
    ctx = contenders.Context(workload=workloads.mixed_workload(small_count=1, big_sizes=()),
                             endpoint="http://127.0.0.1:1", workdir=tmp_path, timeout=1)
    rclone = contenders.Rclone().commands(ctx)
    aws = contenders.AwsCli().commands(ctx)
    assert rclone[0][:4] == ["rclone", "copy", "bench:bench-src/data", "bench:bench-dst-media/copy"]
    assert rclone[0][4:] == ["--include", "*.mp4", "--include", "*.mov"]
    assert aws[2][2:5] == ["cp", "s3://bench-src/data/", "s3://bench-dst-docs/copy/"]
    assert aws[2][-6:] == ["--exclude", "*", "--include", "*.pdf", "--include", "*.csv"]
    env = ctx.env()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1" and "AWS_CA_BUNDLE" not in env
    assert env["RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE"] == "true"


def test_targets_and_table_report_met_and_unmet_honestly() -> None:
    # GIVEN results where sfncopy beats rclone but not half the AWS CLI
    ok: dict[str, Any] = {"status": "ok", "requests": {"ratio_total": 1.2, "by_category": {}, "operations": {}}}
    results: dict[str, Any] = {"w1": {"objects": 2, "copies": 2, "bytes": MiB, "local_s3": "x", "contenders": {
        "sfncopy": {**ok, "seconds": 3.0}, "rclone": {**ok, "seconds": 4.0}, "aws-cli": {**ok, "seconds": 5.0}}}}
    rows = {r["target"]: r for r in run.targets(results)}
    assert rows["W1 wall time: sfncopy <= 1.0 x rclone"]["met"] is True
    assert rows["W1 wall time: sfncopy <= 0.5 x aws-cli"]["met"] is False
    assert rows["Requests: sfncopy <= 1.1 x the minimum (all S3 requests)"]["met"] is False
    results["targets"] = list(rows.values())
    assert "| W1 wall time: sfncopy <= 0.5 x aws-cli | 0.600 | NO |" in run.table(results)


def test_balance_of_the_2018_algorithm_is_bound_by_the_giant() -> None:
    from bench import balance

    sizes = workloads.heavy_tailed_sizes(count=300)
    # the giant alone is 40% of the bytes: with 4 workers its worker holds 1.6 x ideal, with 16 it is 6.4 x
    assert balance.ratio(balance.baseline_loads(sizes, 4)) == pytest.approx(1.6, abs=1e-6)
    assert balance.ratio(balance.baseline_loads(sizes, 16)) == pytest.approx(6.4, abs=1e-6)


def test_sfncopy_balance_and_planner_scale_on_toy_sizes() -> None:
    pytest.importorskip("lambdas.planner")
    from bench import balance, planner_scale

    # GIVEN the real planner with the stand-in gateway  WHEN it plans toy listings
    loads = balance.sfncopy_loads(workloads.heavy_tailed_sizes(count=200), 4)
    figures = planner_scale.measure(2000, workers=4)
    # THEN every byte is in some payload, and the planner wrote a plan for every W1-type object
    assert sum(loads) == sum(workloads.heavy_tailed_sizes(count=200)) and balance.ratio(loads) >= 1.0
    assert figures["copies"] == 2000 and figures["files_written"] >= 3
    assert figures["state_payload_bytes"] < 256 * 1024


def test_finalizer_scale_runs_the_real_finalizer_on_toy_sizes_and_reports_its_target() -> None:
    from bench import finalizer_scale

    # GIVEN 3 payloads of spread keys, split copies and a skipped list  WHEN the real finalizer reports them
    figures = finalizer_scale.measure(3000, 500)
    # THEN every row is in the report (450 skipped, 50 unmatched are counted, not rows), all verified
    assert figures["report_rows"] == 3000 + finalizer_scale.SPLITS + 450
    assert (figures["copied"], figures["failed"]) == (3000 + finalizer_scale.SPLITS, 0)
    assert figures["verification"]["heads"] + figures["verification"]["keys_listed"] >= 3000
    assert figures["report_csv"] is True and figures["parts"] == 1
    # AND the table and the targets show it against the 1 GB bound
    results: dict[str, Any] = {"finalizer": {"runs": [figures]}}
    rows = [r for r in run.targets(results) if r["target"].startswith("Finalizer")]
    assert rows == [{"target": "Finalizer: 3,000 rows in <= 1 GB peak memory",
                     "value": round(figures["peak_rss_bytes"] / 1e9, 3), "met": figures["peak_rss_bytes"] <= 1e9}]
    assert "| 3,000 | 500 |" in run.table({**results, "targets": rows})


def test_scale_composes_planning_copy_and_finalizer_figures_into_targets() -> None:
    from bench import finalizer_scale, scale
    from lambdas import history

    # GIVEN one size's planning figures (as planning_scale.run reports them) and a real finalizer run on toy rows
    stage = {"objects": 2_000_000, "concurrency": 1_000, "shards": 2, "wall_seconds": 300.0, "prepare_seconds": 5.0,
             "assemble_seconds": 1.0, "invocations": 4, "cost_total_usd": 0.03,
             "passes": [{"invocations": 2, "longest_invocation_seconds": 250.0}],
             "peak_rss_bytes": {"prepare": 40_000_000, "shard": 50_000_000, "assemble": 60_000_000}}
    assembled = {"objects": 2_000_000, "payloads": 2_004, "split_objects": 2, "copies": 2_000_000, "balance": 1.0}
    planning = {"stages": [stage], "assemble": [assembled]}
    fin = finalizer_scale.measure(3000, 0)
    # WHEN composed into the whole run
    result = scale.run(planning=planning, finalizer=fin)
    row = result["rows"][0]
    # THEN the copy stage runs one child per payload; the finalizer runs in a fan-out of shards of about
    # 200,000 rows (11 of payloads, 1 of skipped objects), each a child of its own
    assert row["invocations"]["copy"] == 2_004 and row["payloads_per_worker"] == 21
    assert row["finalize"]["shards"] == 12 and row["finalize"]["largest_shard_rows"] <= 200_000
    assert row["largest_child_events"] == history.child_events(0) >= row["finalize"]["aws"]["child_events"]
    # AND the parent holds its fixed states and the Maps, whatever the finalizer's work: no continuation of it
    assert row["parent_events"] == history.parent_events(scale.WORKERS)
    assert row["finalize"]["aws"]["parent_events"] == 0
    # AND the fan-out's wall time is the largest shard's (12 shards run at once), not the one chain's
    assert row["wall_seconds"]["finalize"] * 5 < row["wall_seconds"]["finalize_one_chain"]
    assert row["wall_seconds"]["planning"] == 300.0 and row["cost_total_usd"] > row["cost_usd"]["planning"]
    # AND every target has a verdict, shown in the table and in bench/run.py's targets
    verdicts = {t["target"]: t["met"] for t in row["targets"]}
    assert verdicts["planned in <= 15 min (issue: at 100M)"] is True
    assert verdicts["every child <= 5,000 events"] is True
    text = "\n".join(scale.table_lines(result))
    assert "| figure | 2,000,000 |" in text and "PASS" in text
    assert any(r["target"].startswith("Scale 2,000,000: ") for r in run.targets({"scale": result}))


def test_finalizer_scale_of_segments_verifies_by_listing_and_scale_models_its_pages() -> None:
    from bench import finalizer_scale, scale

    # GIVEN 3,000 rows in payloads of 1,000, laid out as sharded planning lays them out (each a contiguous range)
    # and as the single planner does (spread over the whole target)
    segments = finalizer_scale.measure(3000, 0, layout="segments")
    spread = finalizer_scale.measure(3000, 0, layout="spread")
    # THEN the segments are verified with about a page per payload and no HEAD but the split copies'
    assert segments["verification"]["list_pages"] <= 3 + 1
    assert segments["verification"]["heads"] == finalizer_scale.SPLITS
    assert segments["copied"] == spread["copied"] == 3000 + finalizer_scale.SPLITS
    # AND the scale model charges each page its CPU and latency, each HEAD its CPU, per row
    rates = scale.finalizer_rates(segments)
    pages, heads = rates["list_pages_per_row"], rates["heads_per_row"]
    assert rates["layout"] == "segments" and pages == segments["verification"]["list_pages"] / 3000
    assert rates["aws_seconds_per_row"] == pytest.approx(
        rates["standin_seconds_per_row"] + heads * scale.HEAD_CPU_S
        + pages * (scale.LIST_PAGE_CPU_S + scale.LIST_PAGE_LATENCY_S))
    # AND at a million rows a HEAD per row (the spread layout past its probe page) costs more than a page per
    # thousand rows
    assert 1e-3 * (scale.LIST_PAGE_CPU_S + scale.LIST_PAGE_LATENCY_S) < 0.999 * scale.HEAD_CPU_S
