"""Fan-out on the embedded emulator: one run of many payloads on few workers, end to end.

    python -m bench.fanout --payloads 5000 --workers 2        # prints one JSON line
    python -m bench.fanout --payloads 100 --objects-per-payload 1000 --workers 4   # 100,000 objects

Each payload is one child execution of its worker's Distributed Map, so this is the shape that used to end in
moto's recursion limit (a Map whose items one worker runs in turn recursed once per item and died after ~970;
bridge 11 runs them as a loop). The real stack is deployed on a fresh emulator (``envs/local-env.sh``, overridden
from the process environment as the W1 contender does: N workers, one object per payload, the run's own
buckets), ``--payloads`` tiny objects are copied, and the run is checked: it succeeded, every object is at the
target, each worker's Map Run counts its payloads as succeeded, and the run's own history stayed small.

Timed: from StartExecution to the end of the execution (planning, copying, finalizing); the upload of the
source objects and the deployment are not timed. On this machine moto does every S3 request and runs the
interpreter in one Python process, so the figure measures orchestration, not copy speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

SOURCE, TARGET = "fanout-src", "fanout-dst"
SOURCE_PREFIX, TARGET_PREFIX = "in/", "out/"
STACK = "sfncopy-fanout"
POLL_SECONDS = 2.0


def overrides(endpoint: str, workers: int, concurrency: int, per_payload: int = 1) -> dict[str, str]:
    """What the run's env changes in envs/local-env.sh (generator/settings.py: the process environment wins)."""
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "stack_name": STACK, "package_bucket": "sfncopy-fanout-packages",
        "num_copy_lambda_workers": str(workers), "worker_concurrency": str(concurrency),
        # One payload per object by default (as many child executions as objects); more to copy many objects.
        "max_objects_per_payload": str(per_payload),
        "source_buckets": f"{SOURCE}/{SOURCE_PREFIX}", "target_buckets": f"{TARGET}/{TARGET_PREFIX}",
        # The finalizer reads every payload and checkpoint: more time than the demo's 120 s at 5,000 payloads.
        "finalizer_timeout_seconds": "900",
    }


def config() -> dict[str, Any]:
    return {"s3_copy_config": {"source_s3_config": {"s3_bucket": SOURCE, "s3_path": SOURCE_PREFIX},
                               "target_s3_config": [{"file_types": ["*"], "s3_bucket": TARGET,
                                                     "s3_path": TARGET_PREFIX}]}}


def upload(s3: Any, count: int) -> None:
    """``count`` objects of 16 bytes under the source prefix (keys sort in upload order)."""
    for bucket in (SOURCE, TARGET):
        s3.create_bucket(Bucket=bucket)

    def put(index: int) -> None:
        s3.put_object(Bucket=SOURCE, Key=f"{SOURCE_PREFIX}{index:06d}.bin", Body=f"object {index:08d}\n".encode())

    with ThreadPoolExecutor(max_workers=16) as pool:
        for _ in pool.map(put, range(count)):
            pass


def count_keys(s3: Any, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


def run(payloads: int, workers: int, concurrency: int, timeout: float, per_payload: int = 1) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    from generator.settings import load_env
    from sfncopy.deploy import deploy
    from sfncopy.emulator import Emulator
    from sfncopy.emulator.server import free_port

    objects = payloads * per_payload
    result: dict[str, Any] = {"payloads": payloads, "objects": objects, "objects_per_payload": per_payload,
                              "workers": workers, "worker_concurrency": concurrency}
    with Emulator(port=free_port()) as emulator:
        env = overrides(emulator.endpoint, workers, concurrency, per_payload)
        os.environ.update(env)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name="us-east-1")
        config_ = Config(s3={"addressing_style": "path"}, max_pool_connections=16, retries={"max_attempts": 10})
        s3 = session.client("s3", endpoint_url=emulator.endpoint, config=config_)
        sfn = session.client("stepfunctions", endpoint_url=emulator.endpoint)
        started = time.monotonic()
        upload(s3, objects)
        result["upload_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        outputs = deploy(load_env("local"))
        result["deploy_seconds"] = round(time.monotonic() - started, 1)
        emulator.reset_counts()

        started = time.monotonic()
        arn = sfn.start_execution(stateMachineArn=outputs["StateMachineArn"], name=f"fanout-{payloads}",
                                  input=json.dumps(config()))["executionArn"]
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING" or time.monotonic() - started > timeout:
                break
            time.sleep(POLL_SECONDS)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["status"] = described["status"]
        if described["status"] != "SUCCEEDED":
            result["error"] = f"{described.get('error', 'still running')}: {str(described.get('cause', ''))[:500]}"
        runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
        result["map_runs"] = [sfn.describe_map_run(mapRunArn=r["mapRunArn"])["itemCounts"] for r in runs]
        events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                  for e in page["events"]]
        result["parent_history_events"] = len(events)
        result["phases"] = phases(events)
        result["copied"] = count_keys(s3, TARGET, TARGET_PREFIX)
        stats = emulator.stats.snapshot()
        result["lambda_invocations"] = stats["lambda_invocations"]
        result["s3_requests"] = sum(stats["s3_requests"].values())
        succeeded = sum(counts.get("succeeded", 0) for counts in result["map_runs"])
        # One payload per object gives exactly ``payloads`` children; with more per payload the planner decides
        # how many payloads (balance), so every child the Map Runs count must have succeeded.
        expected = payloads if per_payload == 1 else sum(c.get("total", 0) for c in result["map_runs"])
        result["children"] = succeeded
        result["verified"] = (described["status"] == "SUCCEEDED" and result["copied"] == objects
                              and succeeded == expected > 0 and len(runs) == workers)
    return result


def phases(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds in each top-level state of the run (Plan, Copy, Finalize, ...), from its history."""
    from bench.contenders import state_durations

    return state_durations(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="payloads each worker copies at once")
    parser.add_argument("--objects-per-payload", type=int, default=1,
                        help="objects in each payload (the env's max_objects_per_payload); objects = payloads x this")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the execution may take")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.payloads, args.workers, args.concurrency, args.timeout,
                                args.objects_per_payload), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
