"""Plans as data: lambdas/planning.py, lambdas/binning.py and lambdas/history.py, tested by value."""

import heapq
import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas import binning, history, limits, planning
from lambdas.errors import PlanTooLargeError
from lambdas.limits import GiB, MiB, TiB
from lambdas.models import CopyOptions, CopyTask, ExistingTarget, SourceObject
from lambdas.parts import choose_part_size
from lambdas.planning import Candidate, PlanParams
from lambdas.settings import Settings

ETAG = "0cc175b9c0f1b6a831c399e269772661"
PARAMS = PlanParams(workers=4, max_payload_bytes=1 * GiB, max_objects_per_payload=100)


def obj(key: str, size: int = 100, etag: str = ETAG, storage_class: str = "STANDARD", bucket: str = "src"):
    return SourceObject(bucket, key, size, etag, storage_class)


def cand(source: SourceObject, key: str = "", existing: ExistingTarget | None = None, bucket: str = "tgt"):
    return Candidate(source, bucket, key or "out/" + source.key, existing)


def preferred(params: PlanParams):
    return lambda task: choose_part_size(task.size, params.part_size)


def reasons(decisions) -> list[str]:
    return [s.reason for s in decisions.skipped]


# --- decisions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("overwrite", "existing", "reason"), [
    ("if-different", None, ""),
    ("if-different", ExistingTarget(100, ETAG), "identical"),
    ("if-different", ExistingTarget(100, "ffffffffffffffffffffffffffffffff"), ""),  # same size alone proves nothing
    ("if-different", ExistingTarget(100, ""), ""),  # no ETag to compare: copy
    ("if-different", ExistingTarget(99, ETAG), ""),
    ("never", ExistingTarget(1, "other"), "exists"),
    ("never", None, ""),
    ("always", ExistingTarget(100, ETAG), ""),
])
def test_overwrite_decisions(overwrite, existing, reason):
    # GIVEN an object and what the target listing says  WHEN deciding  THEN copy ("") or skip with the reason
    params = PlanParams(workers=1, max_payload_bytes=GiB, max_objects_per_payload=10, overwrite=overwrite)
    decisions = planning.decide([cand(obj("a.jpg"), existing=existing)], params)
    assert reasons(decisions) == ([reason] if reason else [])
    assert len(decisions.copies) == (0 if reason else 1)


CRC = "CRC32"
MULTIPART_ETAG = "9b2cf535f27731c974343645a3985328-3"


@pytest.mark.parametrize(("source", "existing", "overwrite", "compare"), [
    # a multipart source copied in one request: other ETag, same size, same algorithm -> compare checksums
    (SourceObject("src", "a.jpg", 100, MULTIPART_ETAG, checksum_algorithm=CRC), ExistingTarget(100, ETAG, CRC),
     "if-different", CRC),
    # an SSE-KMS target: ETags of two single-part objects differ although the bytes may not
    (SourceObject("src", "a.jpg", 100, ETAG, checksum_algorithm="SHA256"),
     ExistingTarget(100, "f" * 32, "SHA256"), "if-different", "SHA256"),
    (SourceObject("src", "a.jpg", 100, MULTIPART_ETAG, checksum_algorithm=CRC), ExistingTarget(99, ETAG, CRC),
     "if-different", ""),  # other size: different, copy
    (SourceObject("src", "a.jpg", 100, MULTIPART_ETAG, checksum_algorithm=CRC),
     ExistingTarget(100, ETAG, "CRC32C"), "if-different", ""),  # checksums of two algorithms prove nothing
    (SourceObject("src", "a.jpg", 100, MULTIPART_ETAG), ExistingTarget(100, ETAG, CRC), "if-different", ""),
    (SourceObject("src", "a.jpg", 100, MULTIPART_ETAG, checksum_algorithm=CRC), ExistingTarget(100, ETAG, CRC),
     "always", ""),  # copied whatever is there
])
def test_a_target_whose_etag_cannot_be_compared_is_copied_with_checksums_to_compare(source, existing, overwrite,
                                                                                      compare):
    # GIVEN a target of the same size whose ETag differs  WHEN deciding  THEN a copy, carrying the algorithm
    # whose checksums the worker compares first ("" when no comparison could prove anything)
    params = PlanParams(workers=1, max_payload_bytes=GiB, max_objects_per_payload=10, overwrite=overwrite)
    [task] = planning.decide([cand(source, existing=existing)], params).copies
    assert task.compare_checksum == compare


def test_a_decided_copy_is_the_task_its_fields_name():
    # GIVEN two objects, one above the copy cutoff  WHEN deciding  THEN each task equals the CopyTask built
    # by keyword, every field set (decide builds them positionally, through tuple's constructor)
    small, large = obj("a.jpg", 100), obj("b.mov", 6 * GiB)
    copies = planning.decide([cand(small), cand(large, key="big/b.mov")], PARAMS).copies
    assert copies == [
        CopyTask(task_id="c0", copy_id=0, source_bucket="src", source_key="a.jpg", size=100, etag=ETAG,
                 target_bucket="tgt", target_key="out/a.jpg", method="copy"),
        CopyTask(task_id="c1", copy_id=1, source_bucket="src", source_key="b.mov", size=6 * GiB, etag=ETAG,
                 target_bucket="tgt", target_key="big/b.mov", method="multipart"),
    ]
    assert all(type(t) is CopyTask and len(t) == len(CopyTask._fields) for t in copies)


def test_equal_etags_skip_without_asking_for_checksums():
    source = SourceObject("src", "a.jpg", 100, ETAG, checksum_algorithm=CRC)
    decisions = planning.decide([cand(source, existing=ExistingTarget(100, ETAG, CRC))], PARAMS)
    assert (decisions.copies, reasons(decisions)) == ([], ["identical"])


@pytest.mark.parametrize(("source", "target", "reason"), [
    ({CRC: "xIXc0Q=="}, {CRC: "xIXc0Q=="}, "identical: equal CRC32 checksums"),
    ({CRC: "xIXc0Q=="}, {CRC: "NhCmhg=="}, ""),
    ({CRC: "xIXc0Q=="}, {}, ""),  # the target keeps none (any more): copy
    ({}, {}, ""),  # two missing values are not equal values
    ({"SHA256": "x"}, {"SHA256": "x"}, ""),  # not the algorithm the plan named
])
def test_only_present_equal_checksums_of_the_named_algorithm_prove_identity(source, target, reason):
    assert planning.checksums_prove_identical(CRC, source, target) == reason


def test_chunks_of_a_split_copy_carry_no_comparison():
    task = planning.decide([cand(SourceObject("src", "a.mp4", 40 * MiB, MULTIPART_ETAG, checksum_algorithm=CRC),
                                 existing=ExistingTarget(40 * MiB, ETAG, CRC))], PARAMS).copies[0]
    assert task.compare_checksum == CRC
    assert {c.compare_checksum for c in planning.chunk_tasks(task, 8 * MiB, 2)} == {""}


def test_archived_objects_are_skipped_restore_first_but_glacier_ir_is_copied():
    # GIVEN objects in GLACIER, DEEP_ARCHIVE and GLACIER_IR
    candidates = [cand(obj("g", storage_class="GLACIER")), cand(obj("d", storage_class="DEEP_ARCHIVE")),
                  cand(obj("ir", storage_class="GLACIER_IR"))]
    # WHEN deciding
    decisions = planning.decide(candidates, PARAMS)
    # THEN the archived two are skipped "restore first", with their targets, and the instant one is copied
    assert [(s.source_key, s.reason, s.target_key) for s in decisions.skipped] == [
        ("g", "restore first", "out/g"), ("d", "restore first", "out/d")]
    assert [t.source_key for t in decisions.copies] == ["ir"]


def test_later_claims_on_one_target_key_are_collisions():
    # GIVEN two sources flattened onto the same target key, and one object routed twice to the same place
    first, second = obj("a/x.jpg"), obj("b/x.jpg", bucket="src2")
    candidates = [cand(first, "flat/x.jpg"), cand(second, "flat/x.jpg"), cand(first, "flat/x.jpg")]
    # WHEN deciding
    decisions = planning.decide(candidates, PARAMS)
    # THEN the first wins and the later ones name the target and the winner
    assert [t.source_key for t in decisions.copies] == ["a/x.jpg"]
    assert reasons(decisions) == ["target collision with s3://tgt/flat/x.jpg of s3://src/a/x.jpg"] * 2


def test_objects_over_the_s3_limit_fail_at_plan_and_are_counted_by_kind():
    big = obj("huge.bin", size=limits.MAX_OBJECT_SIZE + 1)
    result = planning.plan([cand(big), cand(obj("ok"))], PARAMS, preferred(PARAMS))
    assert reasons(result.decisions)[0].startswith("too large: 5497558138881 bytes")
    totals = planning.totals(result.decisions.copies, result.decisions.skipped, result.work, 2, 0)
    assert totals.skipped_by_reason == (("too large", 1),)
    assert (totals.copies, totals.skipped, totals.objects_listed) == (1, 1, 2)


def test_skipped_by_reason_is_sorted_and_leaves_unmatched_out():
    skipped = [planning.skip(obj(k), r) for k, r in
               [("a", "identical"), ("b", "exists"), ("c", "identical"), ("d", "unmatched"), ("e", "folder marker")]]
    work = planning.build_work([], {}, PARAMS)
    totals = planning.totals([], skipped, work, objects_listed=5, unmatched=1)
    assert totals.skipped_by_reason == (("exists", 1), ("folder marker", 1), ("identical", 2))
    assert (totals.skipped, totals.unmatched) == (4, 1)


def test_copy_method_follows_the_cutoff():
    params = PlanParams(workers=1, max_payload_bytes=100 * GiB, max_objects_per_payload=10, copy_cutoff=5 * GiB)
    decisions = planning.decide([cand(obj("small", 5 * GiB)), cand(obj("large", 5 * GiB + 1))], params)
    assert [(t.task_id, t.method) for t in decisions.copies] == [("c0", "copy"), ("c1", "multipart")]


def test_params_options_beat_settings():
    settings_ = Settings(manifest_bucket="m", workers=3, max_payload_size_mb=100, max_objects_per_payload=7)
    assert PlanParams.from_settings(settings_, CopyOptions()) == PlanParams(
        workers=3, max_payload_bytes=100 * MiB, max_objects_per_payload=7)
    options = CopyOptions(max_payload_size_mb=20, max_objects_per_payload=2, overwrite="never")
    assert PlanParams.from_settings(settings_, options) == PlanParams(
        workers=3, max_payload_bytes=20 * MiB, max_objects_per_payload=2, overwrite="never")


# --- splitting ----------------------------------------------------------------------------------------
def test_chunks_are_even_runs_of_whole_parts():
    task = planning.decide([cand(obj("big", 12 * 5 * MiB))], PARAMS).copies[0]
    chunks = planning.chunk_tasks(task, part_size=5 * MiB, limit=25 * MiB)  # at most 5 parts each
    assert [(c.task_id, c.first_part, c.last_part, c.nbytes) for c in chunks] == [
        ("c0.p1", 1, 4, 20 * MiB), ("c0.p5", 5, 8, 20 * MiB), ("c0.p9", 9, 12, 20 * MiB)]
    assert {c.method for c in chunks} == {"chunk"} and {c.upload_id for c in chunks} == {""}


def test_an_object_over_the_payload_cap_is_split_into_chunks_under_it():
    # GIVEN a 1 GiB cap and a 2.5 GiB object uploaded in one piece (below the copy cutoff)
    params = PlanParams(workers=1, max_payload_bytes=GiB, max_objects_per_payload=100, part_size=64 * MiB)
    result = planning.plan([cand(obj("big", 5 * GiB // 2))], params, preferred(params))
    # THEN it is split (one upload the planner creates) into chunks of at most 1 GiB covering 40 parts
    (split,) = result.work.splits
    assert (split.part_size, split.part_count, split.upload_id) == (64 * MiB, 40, "")
    chunks = [t for p in result.work.payloads for t in p.tasks]
    assert all(c.nbytes <= GiB for c in chunks) and sum(c.nbytes for c in chunks) == 5 * GiB // 2
    assert all(p.nbytes <= GiB for p in result.work.payloads)


def test_only_objects_copied_in_parts_anyway_are_split_for_balance():
    # GIVEN 4 workers, many small objects and two large ones that unbalance the run when copied whole: one
    # uploaded in one piece (a plain ETag, below the cutoff), one uploaded in parts (an ETag "<md5>-<n>")
    params = PlanParams(workers=4, max_payload_bytes=10 * GiB, max_objects_per_payload=1000, part_size=8 * MiB)
    small = [cand(obj(f"s{i}", 10 * MiB)) for i in range(400)]
    plain, parts = obj("plain", 4 * GiB), obj("parts", 4 * GiB, etag=ETAG + "-512")
    # WHEN planning
    to_split = planning.split_candidates(planning.decide([cand(plain), cand(parts), *small], params).copies, params)
    # THEN only the multipart upload is split: splitting the other would change its ETag's form, and a
    # re-run could no longer prove the copy identical
    assert [t.source_key for t in to_split] == ["parts"]
    assert planning.is_multipart_etag(ETAG + "-384") and not planning.is_multipart_etag(ETAG)


def test_nothing_is_split_for_balance_when_whole_copies_already_balance():
    # GIVEN 4 workers, 2,000 small objects and eight 32-256 MiB objects uploaded in parts (the W1 benchmark's
    # shape): the largest is well under a worker's fair share
    params = PlanParams(workers=4, max_payload_bytes=10 * GiB, max_objects_per_payload=1000, part_size=8 * MiB)
    small = [cand(obj(f"s{i}", 500 * 1024)) for i in range(2000)]
    large = [cand(obj(f"l{i}", (32 << i % 4) * MiB, etag=ETAG + "-4")) for i in range(8)]
    copies = planning.decide([*large, *small], params).copies
    # WHEN planning  THEN binning them whole is within the target, so no copy pays for chunks and a completion
    assert planning.whole_balance(copies, params, planning.ideal_load(copies, params)) <= planning.BALANCE_TARGET
    assert planning.split_candidates(copies, params) == []


def test_one_worker_splits_only_for_the_cap():
    params = PlanParams(workers=1, max_payload_bytes=10 * GiB, max_objects_per_payload=1000)
    copies = planning.decide([cand(obj("parts", 3 * GiB, etag=ETAG + "-3")), cand(obj("s", MiB))], params).copies
    assert planning.split_candidates(copies, params) == []


def test_split_part_size_mirrors_the_source_layout_when_it_fits_the_cap():
    assert planning.split_part_size(100 * MiB, 64 * MiB, GiB, source_parts=13, source_first_part=8 * MiB) == 8 * MiB
    # the source's 2 GiB parts would not fit a 1 GiB payload: the preferred size instead
    assert planning.split_part_size(6 * GiB, 64 * MiB, GiB, source_parts=3, source_first_part=2 * GiB) == 64 * MiB


def test_upload_ids_are_filled_into_splits_and_their_chunks():
    params = PlanParams(workers=2, max_payload_bytes=GiB, max_objects_per_payload=100)
    work = planning.plan([cand(obj("big", 3 * GiB)), cand(obj("s"))], params, preferred(params)).work
    filled = planning.with_uploads(work, {0: planning.StartedUpload("upload-0", (("k", "v"),), "CRC32", "COMPOSITE",
                                                                    "AAAAAA==-3")})
    assert [(s.upload_id, s.tags) for s in filled.splits] == [("upload-0", (("k", "v"),))]
    assert [(s.checksum_algorithm, s.checksum_type, s.checksum_expected) for s in filled.splits] == [
        ("CRC32", "COMPOSITE", "AAAAAA==-3")]
    tasks = [t for p in filled.payloads for t in p.tasks]
    assert {t.upload_id for t in tasks if t.method == "chunk"} == {"upload-0"}
    assert {t.upload_id for t in tasks if t.method != "chunk"} == {""}


# --- binning ------------------------------------------------------------------------------------------
def test_cost_counts_requests():
    task, = planning.decide([cand(obj("tiny", 1))], PARAMS).copies
    assert binning.task_cost(task, PARAMS.part_size) == 1 + limits.REQUEST_COST_BYTES
    big, = planning.decide([cand(obj("big", 6 * GiB))], PARAMS).copies  # multipart: 96 parts + 3
    assert binning.request_count(big, 64 * MiB) == 99


def test_largest_first_onto_the_least_loaded_worker():
    shares, loads = binning.assign([5, 1, 4, 3, 3], workers=2)
    assert shares == [[0, 4], [2, 3, 1]] and loads == [8, 8]


def test_payload_cuts_respect_both_caps_and_fill_gaps():
    tasks = planning.decide([cand(obj(f"k{i}", size)) for i, size in enumerate([6, 6, 4, 3, 1, 1, 1])], PARAMS).copies
    payloads, sizes = binning.cut_payloads(tasks, [t.size for t in tasks], max_bytes=10, max_objects=3)
    assert [[t.size for t in p] for p in payloads] == [[6, 3, 1], [6, 4], [1, 1]]
    assert sizes == [10, 10, 2]


def test_balance_of_loads():
    assert binning.balance([10, 10]) == 1.0
    assert binning.balance([30, 10]) == 1.5
    assert binning.balance([]) == 1.0 and binning.predicted_makespan([3, 9, 4]) == 9


# --- the whole plan: properties -------------------------------------------------------------------------
objects = st.lists(
    st.tuples(st.integers(0, 60 * MiB), st.booleans(), st.integers(0, 3)),  # size, uploaded in parts, key group
    min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(items=objects, workers=st.integers(1, 6), cap_mib=st.integers(5, 40), max_objects=st.integers(1, 8))
def test_every_copy_is_planned_exactly_once_within_the_caps(items, workers, cap_mib, max_objects):
    # GIVEN random objects (some colliding on a target key), workers and caps; parts of 5 MiB
    params = PlanParams(workers=workers, max_payload_bytes=cap_mib * MiB, max_objects_per_payload=max_objects,
                        copy_cutoff=8 * MiB, part_size=5 * MiB)
    candidates = [cand(obj(f"k{i}", size, ETAG + "-2" if parts else ETAG), key=f"out/{i % 7 if group else i}")
                  for i, (size, parts, group) in enumerate(items)]
    # WHEN planning
    result = planning.plan(candidates, params, lambda task: 5 * MiB)
    work, copies = result.work, result.decisions.copies
    tasks = [t for p in work.payloads for t in p.tasks]
    # THEN every candidate is copied or skipped, and each whole copy is in exactly one payload
    assert len(copies) + len(result.decisions.skipped) == len(candidates)
    split_ids = {s.copy_id for s in work.splits}
    whole = Counter(t.copy_id for t in tasks if t.method != "chunk")
    assert set(whole) | split_ids == {t.copy_id for t in copies} and set(whole).isdisjoint(split_ids)
    assert set(whole.values()) <= {1}
    # AND the chunks of each split object cover its parts 1..count, and so its bytes, exactly once
    for split in work.splits:
        chunks = sorted((t for t in tasks if t.copy_id == split.copy_id), key=lambda t: t.first_part)
        numbers = [n for c in chunks for n in range(c.first_part, c.last_part + 1)]
        assert numbers == list(range(1, split.part_count + 1))
        assert sum(c.nbytes for c in chunks) == split.size
    # AND every payload respects both caps and belongs to the worker that lists it; ids are dense
    assert all(p.nbytes <= params.max_payload_bytes and len(p.tasks) <= max_objects for p in work.payloads)
    assert [p.payload_id for p in work.payloads] == list(range(len(work.payloads)))
    assert len(work.worker_payloads) == workers
    for worker, ids in enumerate(work.worker_payloads):
        assert all(work.payloads[i].worker == worker for i in ids)
    assert sorted(i for ids in work.worker_payloads for i in ids) == list(range(len(work.payloads)))
    # AND the same input gives the same plan
    assert planning.plan(candidates, params, lambda task: 5 * MiB) == result


def test_plan_is_deterministic_for_ties():
    # GIVEN many objects of equal size  WHEN planned twice  THEN the payloads are identical, task for task
    candidates = [cand(obj(f"k{i:03d}", 1000)) for i in range(300)]
    params = PlanParams(workers=3, max_payload_bytes=GiB, max_objects_per_payload=40)
    first = planning.plan(candidates, params, preferred(params))
    assert first == planning.plan(list(candidates), params, preferred(params))
    assert [t.source_key for t in first.work.payloads[0].tasks][:3] == ["k000", "k003", "k006"]


# --- the history budget -----------------------------------------------------------------------------------
def test_payload_count_no_longer_limits_a_run():
    # GIVEN 2,100 objects and one object per payload: 2,100 payloads (the previous shape's history could hold
    # about 1,990 of them in its one execution)
    params = PlanParams(workers=4, max_payload_bytes=1024 * MiB, max_objects_per_payload=1)
    candidates = [cand(obj(f"k{i}", 10)) for i in range(2100)]
    # WHEN planning  THEN it is planned: each payload's events are in its own child execution's history
    work = planning.plan(candidates, params, preferred(params)).work
    assert len(work.payloads) == 2100
    assert planning.check_history_budget(work, params) == limits.EVENTS_PARENT_FIXED + 4 * limits.EVENTS_PER_WORKER


def test_a_worker_with_more_payloads_than_its_map_may_return_is_refused_saying_what_to_change():
    # GIVEN one worker with one payload more than its Distributed Map may run
    payloads = limits.MAX_PAYLOADS_PER_WORKER + 1
    # WHEN the planner checks the plan  THEN it is refused before anything is written, with the figures and fixes
    with pytest.raises(PlanTooLargeError) as caught:
        history.check_history_budget([10] * payloads, 2, 1024 * MiB, 1, payloads_per_worker=[payloads, 0])
    message = str(caught.value)
    assert f"worker 0 has {payloads} payloads, more than the {limits.MAX_PAYLOADS_PER_WORKER}" in message
    assert "options.max_payload_size_mb (now 1024)" in message and "options.max_objects_per_payload (now 1)" in message
    assert "num_copy_lambda_workers" in message and "split the s3_copy_config" in message
    # AND exactly the limit passes
    assert history.check_history_budget([10] * (payloads - 1), 1, 1024 * MiB, 1, payloads_per_worker=[payloads - 1])


def test_a_payload_whose_continuations_overflow_its_child_history_is_refused():
    # GIVEN one payload needing more continuations than a child's history holds
    continuations = ((limits.HISTORY_EVENT_BUDGET - limits.EVENTS_PER_CHILD - history.FAILED_CHILD_TAIL)
                     // limits.EVENTS_PER_CONTINUATION + 1)
    nbytes = (continuations + 1) * limits.EXPECTED_BYTES_PER_INVOCATION
    assert history.continuations_of(nbytes) == continuations
    # THEN it is refused, naming the payload cap to lower
    with pytest.raises(PlanTooLargeError, match=r"child execution .* lower options.max_payload_size_mb \(now 64\)"):
        history.check_history_budget([nbytes], 1, 64 * MiB, 10)


def test_history_counts_continuations_of_payloads_larger_than_one_invocation():
    params = PlanParams(workers=1, max_payload_bytes=limits.MAX_OBJECT_SIZE, max_objects_per_payload=10)
    work = planning.plan([cand(obj("a", 450 * GiB))], params, preferred(params)).work
    assert history.continuations(p.nbytes for p in work.payloads) == 2  # 450 GiB at 200 GiB per invocation
    # the parent records its fixed states and one worker's Map; the child the payload and its two continuations
    assert history.estimate(work.payload_bytes, 1) == history.HistoryEstimate(
        parent=limits.EVENTS_PARENT_FIXED + limits.EVENTS_PER_WORKER,
        largest_child=limits.EVENTS_PER_CHILD + 2 * limits.EVENTS_PER_CONTINUATION + history.FAILED_CHILD_TAIL)
    # the busiest execution: here the child (its continuations, and the failure path it may take)
    assert planning.check_history_budget(work, params) == max(limits.EVENTS_PARENT_FIXED + limits.EVENTS_PER_WORKER,
                                                              history.child_events(2))


# --- the balance target (issue 6): heavy tail plus one object holding 40% of the bytes ----------------------
def heavy_tailed_sizes(count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    sizes = [max(1, int(rng.lognormvariate(math.log(8 * MiB), 2.0))) for _ in range(count - 1)]
    return [int(sum(sizes) * 0.4 / 0.6), *sizes]


def loads_2018(sizes: list[int], workers: int) -> list[int]:
    """The 2018 design: whole files, largest first, onto the least loaded worker."""
    heap = [(0, w) for w in range(workers)]
    loads = [0] * workers
    for size in sorted(sizes, reverse=True):
        load, worker = heapq.heappop(heap)
        loads[worker] = load + size
        heapq.heappush(heap, (load + size, worker))
    return loads


@pytest.mark.parametrize("workers", [4, 16, 64])
def test_balance_target_holds_where_the_2018_design_does_not(workers):
    # GIVEN 3,000 objects uploaded in one piece (plain ETags), lognormal sizes, one holding 40% of the bytes
    sizes = heavy_tailed_sizes(3000)
    assert sizes[0] > 100 * GiB  # above the copy cutoff: copied in parts anyway, so it may be split
    params = PlanParams(workers=workers, max_payload_bytes=10 * GiB, max_objects_per_payload=1000)
    candidates = [cand(obj(f"k{i:05d}", size, etag=f"{i:032x}")) for i, size in enumerate(sizes)]
    # WHEN planning
    work = planning.plan(candidates, params, preferred(params)).work
    # THEN the busiest worker's cost, and its bytes, are within 5% of the ideal
    byte_loads = [0] * workers
    for payload in work.payloads:
        byte_loads[payload.worker] += payload.nbytes
    assert sum(byte_loads) == sum(sizes)
    assert binning.balance(work.worker_loads) <= 1.05
    assert binning.balance(byte_loads) <= 1.05
    # AND the 2018 design is at least 2x off (1.6x at 4 workers: the giant alone is 40% of the bytes)
    assert binning.balance(loads_2018(sizes, workers)) >= (1.5 if workers == 4 else 2.0)


def test_size_limits_stay_within_s3():
    # a 5 TiB object (S3's maximum) splits into parts S3 accepts
    params = PlanParams(workers=8, max_payload_bytes=10 * GiB, max_objects_per_payload=1000)
    work = planning.plan([cand(obj("max", 5 * TiB, etag=ETAG + "-10000"))], params, preferred(params)).work
    (split,) = work.splits
    assert split.part_count <= limits.MAX_PARTS and split.part_size <= limits.MAX_PART_SIZE
    assert all(p.nbytes <= 10 * GiB for p in work.payloads)
