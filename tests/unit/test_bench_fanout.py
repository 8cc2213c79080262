"""bench/fanout.py's pure parts and its place in bench/run.py's table (the run itself is a benchmark, never a test)."""

from __future__ import annotations

from bench import fanout
from bench.run import table, targets
from generator.settings import load_env
from tests.unit.test_generator_template import ROOT


def test_the_fanout_env_is_local_env_with_one_object_per_payload_on_n_workers() -> None:
    env = fanout.overrides("http://127.0.0.1:1", workers=2, concurrency=1)
    settings = load_env("local", ROOT / "envs", environ=env)
    assert (settings.workers, settings.worker_concurrency, settings.max_objects_per_payload) == (2, 1, 1)
    assert settings.endpoint_url == "http://127.0.0.1:1" and settings.stack_name == fanout.STACK
    assert [str(s) for s in settings.source_buckets] == ["fanout-src/in/"]
    assert [str(t) for t in settings.target_buckets] == ["fanout-dst/out/"]
    assert fanout.config()["s3_copy_config"]["target_s3_config"][0]["file_types"] == ["*"]


def test_a_fanout_result_is_a_target_and_a_line_of_the_table() -> None:
    result = {"payloads": 5000, "workers": 2, "worker_concurrency": 1, "status": "SUCCEEDED", "seconds": 812.4,
              "phases": {"Plan": 3.0, "Copy": 800.0, "Finalize": 9.0}, "verified": True, "copied": 5000,
              "map_runs": [{"succeeded": 2500}, {"succeeded": 2500}], "parent_history_events": 34,
              "lambda_invocations": {"worker": 5000, "planner": 1, "finalizer": 1}, "s3_requests": 60000}
    (row,) = [r for r in targets({"fanout": result}) if r["target"].startswith("Fan-out")]
    assert row == {"target": "Fan-out: 5,000 payloads on 2 workers run and verify on the emulator",
                   "value": 812.4, "met": True}
    text = table({"fanout": result})
    assert "Fan-out: 5,000 payloads of one object on 2 workers" in text
    assert "SUCCEEDED in 812.4 s (Plan 3.0 s, Copy 800.0 s, Finalize 9.0 s); verified" in text
