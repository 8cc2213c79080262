"""``sfncopy plan``'s Lambda concurrency check by value: each stage's invocations at once (the workers x
worker_concurrency against what the worker function may use, its reserved concurrency, else the account's
unreserved concurrency; the finalize and planning fan-outs against the account's) and the worst one answers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import boto3
import pytest
from botocore.stub import Stubber

from sfncopy.dry_run import ConcurrencyCheck, PlanReport, check_concurrency, stage_needs
from tests.unit.generator_helpers import settings_for


@pytest.mark.parametrize(("needed", "available", "verdict"), [
    (10, 1000, "ok"), (500, 1000, "ok"), (501, 1000, "warn"), (1000, 1000, "warn"), (1001, 1000, "refuse"),
    (3, None, "warn"),
])
def test_verdicts(needed: int, available: int | None, verdict: str) -> None:
    assert ConcurrencyCheck(needed, available, "the account's unreserved concurrency").verdict == verdict


def test_a_refusal_names_the_figures_and_the_settings_to_change() -> None:
    message = ConcurrencyCheck(1200, 1000, "the account's unreserved concurrency").message()
    assert message.startswith("Lambda concurrency too low: a run invokes up to 1,200 workers at once, but the "
                              "account's unreserved concurrency allows 1,000")
    assert "num_copy_lambda_workers or worker_concurrency" in message


def test_the_account_decides_when_the_worker_reserves_nothing(tmp_path: Path) -> None:
    # GIVEN 4 workers x 50 payloads, a deployed worker without reserved concurrency, an account with 150 free
    env = settings_for(tmp_path, num_copy_lambda_workers="4", worker_concurrency="50")
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam) as stub:
        stub.add_response("get_function_concurrency", {}, {"FunctionName": "sfncopy-test-worker"})
        stub.add_response("get_account_settings", {"AccountLimit": {
            "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 150}})
        check = check_concurrency(lam, env)
    # THEN 200 needed, 150 available: refused
    assert (check.needed, check.available, check.verdict) == (200, 150, "refuse")
    assert check.source == "the account's unreserved concurrency"


def test_unknown_when_neither_answers(tmp_path: Path) -> None:
    env = settings_for(tmp_path)
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam) as stub:
        stub.add_client_error("get_function_concurrency", "ResourceNotFoundException", http_status_code=404)
        stub.add_client_error("get_account_settings", "AccessDeniedException", http_status_code=403)
        check = check_concurrency(lam, env)
    assert (check.available, check.verdict) == (None, "warn")
    assert "GetAccountSettings failed" in check.message() and "1,000 per Region" in check.message()


def _account(lam: object, stub: Stubber, unreserved: int) -> None:
    stub.add_client_error("get_function_concurrency", "ResourceNotFoundException", http_status_code=404)
    stub.add_response("get_account_settings", {"AccountLimit": {
        "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": unreserved}})


def test_each_stage_is_held_to_the_concurrency_and_the_worst_one_answers(tmp_path: Path) -> None:
    # GIVEN 2 workers x 1 payload, 300 finalize shards at once, 250 planning shards at once, an account with 200 free
    env = settings_for(tmp_path, num_copy_lambda_workers="2", finalizer_concurrency="300", planning="sharded",
                       planner_shard_concurrency="250")
    assert stage_needs(env) == [("workers", 2), ("finalize shards", 300), ("planning shards", 250)]
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam) as stub:
        _account(lam, stub, 200)
        check = check_concurrency(lam, env)
    # THEN the finalize fan-out is refused (300 of 200), naming its own setting
    assert (check.stage, check.needed, check.available, check.verdict) == ("finalize shards", 300, 200, "refuse")
    assert "a run invokes up to 300 finalize shards at once" in check.message()
    assert "lower finalizer_concurrency" in check.message()


def test_a_small_run_needs_only_its_own_finalize_shards(tmp_path: Path) -> None:
    # GIVEN finalizer_concurrency 300 but a plan of 10 payloads and 5,000 rows: one payload shard and the skipped one
    env = settings_for(tmp_path, num_copy_lambda_workers="2", finalizer_concurrency="300")
    estimate = SimpleNamespace(copies=4_000, skipped_by_reason=(("exists", 1_000),), payloads=10)
    report = cast(PlanReport, SimpleNamespace(estimate=estimate, sharding=None))
    # THEN the finalize stage needs 2 at once, and the workers (2) answer for the run: ties go to the workers
    assert stage_needs(env, report) == [("workers", 2), ("finalize shards", 2)]
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam) as stub:
        _account(lam, stub, 200)
        check = check_concurrency(lam, env, report)
    assert (check.stage, check.needed, check.verdict) == ("workers", 2, "ok")


def test_the_restore_branch_runs_beside_the_workers(tmp_path: Path) -> None:
    env = settings_for(tmp_path, num_copy_lambda_workers="4", worker_concurrency="3", restore_archived="true")
    assert stage_needs(env)[0] == ("workers", 13)
