"""Which stage binds (sfncopy/headroom.py), by value: constructed figures, no AWS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lambdas import limits
from sfncopy.headroom import Loads, finalizer_rows_per_invocation, headroom, percent, planner_seconds

SMALL = Loads(objects_listed=1_000, report_rows=1_000, parent_events=48, largest_child_events=31,
              most_payloads_per_worker=1, workers=3, worker_concurrency=1, concurrency_available=1_000,
              planner_memory_mb=1_024, planner_timeout_seconds=900, finalizer_timeout_seconds=900,
              max_payload_size_mb=10_240, max_objects_per_payload=1_000)


def shares(loads: Loads) -> dict[str, float]:
    return {stage.name: stage.share for stage in headroom(loads).stages}


def test_a_small_run_is_bound_by_lambda_concurrency_with_every_stage_far_from_its_ceiling():
    room = headroom(SMALL)
    # THEN the stage closest to its ceiling is named first, with the setting that relieves it
    assert room.binding.name == "Lambda concurrency" and room.binding.share == pytest.approx(0.003)
    assert room.lines()[0] == ("binding stage: Lambda concurrency: 0.3% of 1,000 invocations: lower "
                               "worker_concurrency (now 1) or num_copy_lambda_workers in the env file, or ask AWS "
                               "to raise the account's Lambda concurrency quota")
    # AND every stage is listed, closest first
    assert [s.name for s in room.stages][:2] == ["Lambda concurrency", "run's history"]
    assert len(room.stages) == 7 and all(s.share < 0.01 for s in room.stages)
    assert sorted(s.share for s in room.stages) == [s.share for s in room.stages][::-1]


def test_the_planners_memory_binds_a_half_million_object_listing_on_1024_mb():
    # GIVEN 506,173 objects listed: 0.41 GB at 0.81 GB per million, on a 1,024 MB planner
    room = headroom(replace(SMALL, objects_listed=506_173))
    # THEN planner memory binds at 41%, naming planner_memory_mb
    assert room.binding.name == "planner memory"
    assert room.binding.line() == "planner memory: 41% of 1,024 MB"
    assert room.binding.fix == "raise planner_memory_mb in the env file (now 1,024; Lambda allows 10,240)"
    assert room.binding.source.startswith("measured: bench/README.md")
    # AND past the ceiling the share says by how much (two million objects: 1.62 GB)
    assert shares(replace(SMALL, objects_listed=2_000_000))["planner memory"] == pytest.approx(1.62)


def test_planner_time_binds_a_short_planner_timeout():
    # GIVEN 300,000 objects (300 pages of 0.2375 s and 20 us an object: 77.25 s) and a 60 s planner
    loads = replace(SMALL, objects_listed=300_000, planner_timeout_seconds=60)
    assert planner_seconds(300_000) == pytest.approx(300 * 0.2375 + 300_000 * 20e-6)
    room = headroom(loads)
    assert room.binding.name == "planner time" and room.binding.share == pytest.approx(77.25 / 60)
    assert room.binding.fix.startswith("raise planner_timeout_seconds in the env file (now 60")


def test_a_payload_with_many_continuations_binds_its_child_history():
    room = headroom(replace(SMALL, largest_child_events=20_000))
    assert (room.binding.name, room.binding.line()) == ("largest child history",
                                                        "largest child history: 80% of 25,000 events")
    assert "lower options.max_payload_size_mb" in room.binding.fix


def test_a_crowded_worker_binds_its_maps_result_and_names_the_payload_caps():
    room = headroom(replace(SMALL, most_payloads_per_worker=45_000))
    assert room.binding.name == "payloads of the busiest worker" and room.binding.share == pytest.approx(0.9)
    assert "raise options.max_objects_per_payload (the env's default: 1,000)" in room.binding.fix


def test_reserved_concurrency_below_the_workers_binds_past_100_percent():
    room = headroom(replace(SMALL, workers=3, worker_concurrency=2, concurrency_available=5))
    assert room.binding.line() == "Lambda concurrency: 120% of 5 invocations"
    # AND unknown concurrency is set against a new account's quota
    unknown = headroom(replace(SMALL, concurrency_available=None)).binding
    assert unknown.ceiling == limits.DEFAULT_LAMBDA_ACCOUNT_CONCURRENCY and "unknown here" in unknown.source


def test_the_finalizer_binds_by_one_shards_rows_not_the_runs():
    # GIVEN a 900 s finalizer: 840 s before its deadline margin at 1.44 ms a row
    per_invocation = finalizer_rows_per_invocation(900)
    assert per_invocation == int(840 / 0.00144) == 583_333
    # WHEN the run has 2,000,000 rows THEN they go to 10 finalize shards of 200,000, each within one invocation
    room = headroom(replace(SMALL, report_rows=2_000_000))
    stage = {s.name: s for s in room.stages}["finalize shard rows per invocation"]
    assert stage.line() == "finalize shard rows per invocation: 34% of 583,333 rows (about 10 finalize shards)"
    # AND shards of 2,000,000 rows would bind, continuing in their own children, and the fix names the setting
    room = headroom(replace(SMALL, report_rows=20_000_000, finalizer_shard_rows=2_000_000))
    assert room.binding.line() == ("finalize shard rows per invocation: 343% of 583,333 rows (about 10 finalize "
                                   "shards, a shard continues in 4 invocations)")
    assert room.binding.fix.startswith("lower finalizer_shard_rows (now 2,000,000) or raise finalizer_timeout_seconds")


def test_percentages_keep_a_decimal_below_ten_percent():
    assert [percent(x) for x in (0.41, 0.1, 0.0994, 0.003, 1.2)] == ["41%", "10%", "9.9%", "0.3%", "120%"]


def test_to_dict_names_the_binding_stage_and_every_stage_with_its_source():
    data = headroom(replace(SMALL, objects_listed=506_173)).to_dict()
    assert data["binding"] == "planner memory" and data["fix"].startswith("raise planner_memory_mb")
    first = data["stages"][0]
    assert (first["name"], first["ceiling"], first["unit"], first["share"]) == ("planner memory", 1024, "MB", 0.41)
    assert all(stage["source"] for stage in data["stages"])


def test_a_sharded_plan_is_held_to_its_shards_its_largest_shard_and_its_assembler():
    from sfncopy.headroom import ShardLoads, assemble_mb, shard_seconds

    # GIVEN 100M objects planned in 400 shards: the largest shard listed 300,000 objects in 1,500 requests, and
    # the assembler binned 100,200 payloads, on 1,024 MB / 900 s Lambdas
    shards = ShardLoads(shards=400, max_shards=10_000, largest_shard_listed=300_000, largest_shard_requests=1_500,
                        payloads=100_200)
    room = headroom(replace(SMALL, objects_listed=100_000_000, sharding=shards))
    by_name = {stage.name: stage for stage in room.stages}
    # THEN the single planner's stages are not applied (100M objects would be ~80 GB of one planner)
    assert "planner memory" not in by_name and "planner time" not in by_name
    # AND the sharded stages are: 400 of 10,000 shards; the largest shard's time (every request a list page:
    # 1,500 x 237.5 ms + 300,000 decisions); the assembler's memory (50 MB + 700 bytes a payload)
    assert by_name["shards"].share == pytest.approx(0.04)
    assert shard_seconds(300_000, 1_500) == pytest.approx(1_500 * 0.2375 + 300_000 * 20e-6)
    assert by_name["largest shard's time"].used == pytest.approx(362.25) and not by_name["largest shard's time"].note
    assert by_name["assembler memory"].used == pytest.approx(assemble_mb(100_200)) == pytest.approx(120.14)
    # AND its finalizer verifies key ranges by listing: more rows an invocation than a HEAD a row allows
    rows = by_name["finalize shard rows per invocation"].ceiling
    assert rows == finalizer_rows_per_invocation(900, listed=True) == int(840 / 0.000328)
    assert rows > finalizer_rows_per_invocation(900) * 4
    # AND a shard past the timeout continues (it hands on its range), named in its note, and binds
    slow = headroom(replace(SMALL, sharding=replace(shards, largest_shard_requests=6_000)))
    assert slow.binding.name == "largest shard's time" and "continues in 2 invocations" in slow.binding.note
    assert "raise planner_shards" in slow.binding.fix
