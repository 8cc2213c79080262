"""Case 10 of the failure suite: two executions with different configs run at the same time on one stack
without touching each other's plans, results or objects."""

from __future__ import annotations

import time

import pytest

from tests.e2e import support
from tests.e2e.conftest import World
from tests.e2e.support import MiB, Stack, rich, uri

pytestmark = pytest.mark.e2e


def test_two_concurrent_executions_keep_to_their_own_plans_results_and_objects(
        world: World, main_stack: Stack) -> None:
    # GIVEN two sources with the same keys but other bytes (one with a split object), and one shared target
    # bucket that both configs write to, under different prefixes
    keys = [f"in/k/{i:02d}.dat" for i in range(30)]
    objects_a = [rich(k, 200 + i) for i, k in enumerate(keys)] + [rich("in/k/large.dat", 21 * MiB)]
    objects_b = [rich(k, 300 + i).with_body(support.body("b:" + k, 300 + i)) for i, k in enumerate(keys)]
    source_a, source_b, target = world.source(*objects_a), world.source(*objects_b), world.target()
    runs = {
        "a": support.config_document({"s3_bucket": source_a, "s3_path": "in/k/"},
                                     [{"file_types": ["dat"], "s3_bucket": target, "s3_path": "out/from-a/"}]),
        "b": support.config_document({"s3_bucket": source_b, "s3_path": "in/k/"},
                                     [{"file_types": ["dat"], "s3_bucket": target, "s3_path": "out/from-b/"}]),
    }

    # WHEN both start at the same time with the CLI
    names = {label: support.execution_name(f"iso-{label}") for label in runs}
    started = time.monotonic()
    processes = {label: support.start_cli(world.endpoint, main_stack, document, names[label], world.work_dir)
                 for label, document in runs.items()}
    done = {label: support.finish_cli(p, main_stack, names[label], started) for label, p in processes.items()}

    # THEN both succeed, and their lifetimes overlapped
    for label, run in done.items():
        assert run.returncode == 0, f"run {label} failed:\n{run.stdout}\n{run.stderr}"
    described = {label: world.sfn.describe_execution(executionArn=run.arn) for label, run in done.items()}
    assert described["a"]["startDate"] < described["b"]["stopDate"]
    assert described["b"]["startDate"] < described["a"]["stopDate"]
    # AND each prefix holds exactly its own run's objects, byte for byte
    expected = {**{(target, "out/from-a/" + o.key[len("in/k/"):]): o for o in objects_a},
                **{(target, "out/from-b/" + o.key[len("in/k/"):]): o for o in objects_b}}
    support.assert_targets(world.s3, expected, [target])
    support.assert_no_incomplete_uploads(world.s3, main_stack, target)
    # AND each run's plan, payloads, results and report name only its own source and targets
    for label, source in (("a", source_a), ("b", source_b)):
        prefix = main_stack.run_prefix(names[label])
        files = support.list_keys(world.s3, main_stack.manifest_bucket, prefix)
        assert any(f.endswith("plan/index.json") for f in files) and any("/result-chunks/" in f for f in files), files
        for key in files:
            run_file = ("/plan/payloads/", "/results/", "/result-chunks/")
            if key.endswith(".json") and any(part in key for part in run_file):
                text = support.read_text(world.s3, f"s3://{main_stack.manifest_bucket}/{key}")
                other = source_b if label == "a" else source_a
                assert other not in text and f"from-{'b' if label == 'a' else 'a'}/" not in text, key
        report = support.read_report(world.s3, main_stack, names[label])
        own = {uri(b, k) for b, k in expected if k.startswith(f"out/from-{label}/")}
        assert set(report.statuses()) == own
        assert set(report.statuses().values()) == {"copied"}
        assert {r["source"].split("/")[2] for r in report.rows} == {source}
