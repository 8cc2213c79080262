"""The finalizer's fan-out as data (lambdas/finalize_shards.py): shard sizes and the merge of shard summaries,
tested by value. A shard's chunk results of a split copy, merged with another shard's, must make the row one
join of all of them makes."""

from __future__ import annotations

from lambdas import finalize_shards
from lambdas.finalize_shards import ShardSummary
from lambdas.models import ObjectResult, SplitCopy
from lambdas.report import MAX_FAILED_LISTED, ChunkJoin, ReportRow, Tally
from lambdas.verification import VerifyStats

SPLIT = SplitCopy(copy_id=7, source_bucket="s", source_key="big", size=30, etag="e", target_bucket="t",
                  target_key="out/big", part_size=10, part_count=3, upload_id="u")


def chunk(part: int, status: str = "copied", seconds: float = 1.0) -> ObjectResult:
    return ObjectResult(task_id=f"c7.p{part}", copy_id=7, source_bucket="s", source_key="big", target_bucket="t",
                        target_key="out/big", bytes=10 if status == "copied" else 0, status=status,
                        method="chunk", parts=1, attempts=2, retries=1, seconds=seconds,
                        error="" if status == "copied" else "SlowDown: no")


def test_a_payload_shard_takes_about_its_rows_and_never_less_than_one_payload():
    # 1,000 rows a payload: 200,000 rows are 200 payloads; a shard of 10 rows still takes one payload
    assert finalize_shards.payloads_per_shard(1_000, 1_000_000, 200_000) == 200
    assert finalize_shards.payloads_per_shard(1_000, 1_000_000, 10) == 1
    # and past max_shards the shards grow so there are no more than that
    assert finalize_shards.payloads_per_shard(1_000_000, 10**9, 1_000, max_shards=100) == 10_000


def test_split_chunks_seen_by_two_shards_merge_into_the_row_one_join_makes():
    # GIVEN a split copy whose chunks 1-2 one shard saw and chunk 3 (failed) another
    first, second = ChunkJoin(SPLIT), ChunkJoin(SPLIT)
    for result in (chunk(1, seconds=3.0), chunk(2)):
        first.add(result)
    second.add(chunk(3, "failed"))
    # WHEN the merge adds both shards' saved joins to a fresh one
    merged = ChunkJoin(SPLIT)
    for saved in (first.to_state(), second.to_state()):
        finalize_shards.merge_join(merged, saved)
    # THEN it is the join of all three chunks: the same row, failed with the chunk's error
    whole = ChunkJoin(SPLIT)
    for result in (chunk(1, seconds=3.0), chunk(2), chunk(3, "failed")):
        whole.add(result)
    assert merged.row() == whole.row()
    assert merged.row().status == "failed" and merged.seconds == 3.0 and merged.chunks == 3


def test_tallies_add_up_and_the_failed_objects_listed_stay_bounded():
    # GIVEN two shards' tallies, each with more failed objects than the report lists
    def failed(n: int) -> ReportRow:
        return ReportRow(f"s3://s/{n}", f"s3://t/{n}", 0, "failed", "copy", 0, 1, 0, 0.0, "AccessDenied: no")

    one, two = Tally(), Tally()
    for n in range(MAX_FAILED_LISTED):
        one.add(failed(n))
        two.add(failed(MAX_FAILED_LISTED + n))
    two.add(ReportRow("s3://s/ok", "s3://t/ok", 5, "copied", "copy", 0, 1, 2, 0.1, ""))
    # WHEN merged THEN counts, bytes and retries add up, and the first MAX_FAILED_LISTED failures are listed
    merged = finalize_shards.merge_tallies([one, two])
    assert (merged.failed, merged.counts["copied"], merged.bytes_copied, merged.retries) == (
        2 * MAX_FAILED_LISTED, 1, 5, 2)
    assert merged.failed_objects == one.failed_objects
    assert merged.as_dict()["failed_objects_not_listed"] == MAX_FAILED_LISTED


def test_a_summary_reads_back_as_it_was_written():
    summary = ShardSummary(index=3, kind="payloads", rows=2, entries=[{"Key": "k", "Rows": 2}], tally=Tally(),
                           joins={7: ChunkJoin(SPLIT).to_state()}, unmatched=["s3://s/x"], unmatched_count=4,
                           verification=VerifyStats(1, 2, 3), started="2026-01-01T00:00:00Z", invocations=2,
                           seconds={"payloads": 1.5})
    assert ShardSummary.from_dict(summary.to_dict()) == summary
    assert finalize_shards.merge_unmatched([summary, summary]) == (["s3://s/x", "s3://s/x"], 8)
