"""``sfncopy plan``'s Lambda concurrency check by value: workers x worker_concurrency against what the worker
function may use (its reserved concurrency, else the account's unreserved concurrency)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from sfncopy.dry_run import ConcurrencyCheck, check_concurrency
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
