"""Cut the sources' key space into shards that list and plan independently (lambdas/sharding/shard.py).

Pure: every S3 request goes through ``probe``, a function that answers a batch of listing requests (run
concurrently by its caller, lambdas/sharding/listing.py; tests answer them from a synthetic listing).

A shard is one range of *relative* keys (the key minus its source's prefix), shared by every source and
every target: it lists ``prefix + range`` in each of them. Sharing the range keeps each target key's
candidates in one shard, so a target key two sources would both write is still caught by
``planning.decide`` (the first source in the config wins, as in the single planner), and the targets can
be listed in the same order as the sources and joined with them page by page.

How the ranges are found (s3-fast-list and S3P both split a key space by ``StartAfter``, since S3 lists in
UTF-8 binary order: see keyspace.py; s3-fast-list cuts it at prefix hints counted by an earlier listing or an
inventory, S3P bisects a range between two keys by string interpolation and splits again while listing).
Here, without earlier counts:

1. One probe (a page of PROBE_KEYS keys) from the start of each source. A page that holds every key of an
   interval makes its count exact; a full page leaves the rest of the interval open, with an estimate: the
   page's density times the rest's width, widths measured in the mixed radix of the characters seen at
   each position (per folder: ``keyspace.Alphabet``). Estimates are made again every round, as the
   alphabet learns the key space.
2. Rounds of concurrent probes, at most ``concurrency`` requests each, until the budget (PROBES_PER_SHARD
   per wanted shard, at least MIN_PROBES, at most MAX_PROBES):
   - every new estimate is first *checked* by probing the two coarsest rungs of the ladder from its page
     (``keyspace.ladder``: the end of the block of keys sharing the last key's first 1, 2, ... characters):
     a folder whose counter runs past every digit seen so far would otherwise look small;
   - an interval with an open end is cut at its coarse ladder, at points spread up to the last first
     character seen, and at doubling distances past it (``keyspace.gallop``): one round finds where the keys
     stop and how dense they are at every level, for a long common prefix ("logs/2024/01/01/server-0001/...")
     and flat names alike;
   - then the intervals with the largest estimates are cut at points spread evenly between their ends
     (``keyspace.split_points``) plus their coarse ladder: a dense folder gets cut again and again, a sparse
     one stops being probed as soon as its estimate is small.
3. The intervals of all sources are merged into one list of boundaries, each interval's estimate shared
   out by width; intervals larger than a quarter of a shard are cut blind, by interpolation; then the list
   is cut where the running total crosses each multiple of the target shard size.

Estimates can be wrong by several times on heavy-tailed key spaces (measured in bench/README.md), so the
shard count is best given (``PartitionParams.shards``) rather than derived from them, and a shard that finds
itself too large hands the rest of its range on at run time (``split_range``, used by shard.py).

Some configurations cannot be cut this way, and plan in one shard (``Partition.ordered`` False): see
``order_problems``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdas.models import CopyConfig, SourceConfig
from lambdas.sharding.keyspace import (
    Alphabet,
    KeyRange,
    fits,
    gallop,
    ladder,
    span_ratio,
    split_points,
)

# Probes a partition may send per wanted shard, and in all; requests in flight at once (one thread each).
PROBES_PER_SHARD = 16
MAX_PROBES = 20_000
MIN_PROBES = 512
PROBE_CONCURRENCY = 128
# Keys a probe asks for. Enough to measure a density; a tenth of a full page, because botocore spends
# ~37 ms of CPU parsing a 1,000-key page (/work/shared/NOTES.md) and a partition sends thousands of probes.
PROBE_KEYS = 100
# Pieces one open interval is cut into in one round, and ladder points for an open end.
MAX_FANOUT = 16
LADDER_POINTS = 16
# Rungs probed to check an extrapolated estimate (see _Interval.checked).
CHECK_RUNGS = 2
# Points past the last first character seen, at doubling distances (keyspace.gallop).
GALLOP_POINTS = 8
# Every this many keys of a probe's page teach the alphabet its characters (keyspace.Alphabet).
ALPHABET_SAMPLE = 50
# Intervals are refined until none holds more than this share of a shard (so shards come out within
# about this share of their target size, as far as the estimates are right).
REFINE_BELOW = 0.25


@dataclass(frozen=True)
class ProbeRequest:
    """One ListObjectsV2 page of source ``source``: keys after ``start_after`` (relative; None: from the
    start) that begin with ``prefix + under``."""

    source: int
    start_after: str | None
    under: str = ""
    max_keys: int = PROBE_KEYS


@dataclass(frozen=True)
class ProbePage:
    keys: tuple[str, ...]  # relative keys, ascending
    truncated: bool  # more keys follow the last one


ProbeBatch = Callable[[Sequence[ProbeRequest]], Sequence[ProbePage]]


@dataclass(frozen=True)
class PartitionParams:
    objects_per_shard: int = 1_000_000
    max_shards: int = 10_000
    shards: int | None = None  # the wanted count (an order of magnitude of the objects is enough); None: estimated
    max_probes: int | None = None  # None: PROBES_PER_SHARD per shard, at least MIN_PROBES, at most MAX_PROBES
    concurrency: int = PROBE_CONCURRENCY

    def probe_budget(self, shards: int) -> int:
        if self.max_probes is not None:
            return self.max_probes
        return min(MAX_PROBES, max(MIN_PROBES, PROBES_PER_SHARD * shards))


@dataclass(frozen=True)
class ShardSpec:
    index: int
    range: KeyRange
    estimate: int  # objects expected in the range, all sources together (-1: unknown)
    generation: int = 0  # 0: cut by the partition; n: handed on by a shard of generation n - 1 (shard.py)

    def to_item(self) -> dict[str, Any]:
        """The shard as an item of the Distributed Map that runs the shards."""
        return {"shard": self.index, **self.range.to_dict(), "estimate": self.estimate,
                "generation": self.generation}

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> ShardSpec:
        return cls(index=int(data["shard"]), range=KeyRange.from_dict(data), estimate=int(data.get("estimate", 0)),
                   generation=int(data.get("generation", 0)))


@dataclass(frozen=True)
class Partition:
    shards: tuple[ShardSpec, ...]
    ordered: bool  # False: the configuration plans in one shard (``reasons`` says why)
    reasons: tuple[str, ...] = ()
    probes: int = 0
    rounds: int = 0
    estimated_objects: int = 0
    exact: bool = False  # the probes listed every key: the estimate is the count


def order_problems(config: CopyConfig) -> list[str]:
    """Why this configuration's target keys do not follow its source keys' order, so that it must plan in
    one shard (empty: it can be cut). A target with ``flatten`` keeps only base names, so keys from
    anywhere in the source meet in it; two targets in one bucket where one prefix holds the other give the
    same target key to different relative keys ("a/x" under "t/" and "x" under "t/a/")."""
    problems = [f"s3_copy_config.target_s3_config[{t.index}].flatten: flattened keys do not follow the "
                "source's order, so the copy plans in one shard" for t in config.targets if t.flatten]
    places = sorted({(t.bucket, t.prefix) for t in config.targets})
    for (bucket, outer), (other, inner) in itertools.pairwise(places):
        if bucket == other and inner.startswith(outer):
            problems.append(f"s3_copy_config.target_s3_config: s3://{bucket}/{inner} lies inside the target "
                            f"s3://{bucket}/{outer}, so one target key can come from two relative keys: the "
                            "copy plans in one shard")
    return problems


def plain_prefix(source: SourceConfig) -> bool:
    """A prefix that is empty or ends in "/": the relative key is the rest of the key, in the key's order.
    Another prefix ("logs/2024-") is plain too unless a key equals it or continues it with "/" (routing
    drops that "/"): the partition probes for both."""
    return source.prefix == "" or source.prefix.endswith("/")


def single_shard(reasons: Sequence[str], probes: int = 0, rounds: int = 0) -> Partition:
    return Partition(shards=(ShardSpec(0, KeyRange(), 0),), ordered=False, reasons=tuple(reasons), probes=probes,
                     rounds=rounds)


@dataclass
class _Interval:
    lo: str | None
    hi: str | None
    estimate: float
    exact: bool = False
    stuck: bool = False  # no point fits between its ends: it cannot be cut further
    # The page that the estimate extrapolates (its first and last key, and how many keys it held): the
    # estimate is made again each round, as the alphabet learns the characters of the key space.
    page: tuple[str, str, int] | None = None
    # Whether the coarse end of the ladder from its start has been probed. An estimate extrapolates the
    # characters seen so far: a folder whose counter runs past every digit any page showed ("0001000000"
    # when pages showed only "0000xxxxxx") looks small. The ladder's coarse rungs look exactly there.
    checked: bool = False

    def reestimate(self, alphabet: Alphabet) -> None:
        if self.page is not None and not self.exact:
            first, last, n = self.page
            self.estimate = (n - 1) * span_ratio(first, last, self.hi, alphabet)


@dataclass
class _Probing:
    """The state of one partition: every source's intervals (sorted, covering its whole key space)."""

    params: PartitionParams
    probe: ProbeBatch
    longest_prefix: int
    alphabet: Alphabet = field(default_factory=Alphabet)
    intervals: list[list[_Interval]] = field(default_factory=list)
    probes: int = 0
    rounds: int = 0

    def send(self, requests: Sequence[ProbeRequest]) -> Sequence[ProbePage]:
        pages = self.probe(requests)
        if len(pages) != len(requests):
            raise ValueError(f"probe answered {len(pages)} pages for {len(requests)} requests")
        self.probes += len(requests)
        self.rounds += 1
        for page in pages:  # a sample of each page shows its characters (all 1,000 keys would cost 40x)
            self.alphabet.add(page.keys[::ALPHABET_SAMPLE])
            self.alphabet.add(page.keys[-1:])
        return pages

    def learn(self, lo: str | None, hi: str | None, page: ProbePage) -> list[_Interval]:
        """What one page from ``lo`` tells about ``(lo, hi]``: its exact count, or the count up to the page's
        last key and an estimate of the rest."""
        inside = [k for k in page.keys if hi is None or k <= hi]
        if len(inside) < len(page.keys) or not page.truncated:
            return [_Interval(lo, hi, float(len(inside)), exact=True)]
        last = page.keys[-1]
        known = _Interval(lo, last, float(len(page.keys)), exact=True)
        if len(page.keys) < 2:
            return [known, _Interval(last, hi, math.inf)]
        rest = _Interval(last, hi, 0.0, page=(page.keys[0], last, len(page.keys)))
        rest.reestimate(self.alphabet)
        return [known, rest]

    def total(self) -> float:
        return sum(iv.estimate for ivs in self.intervals for iv in ivs)

    def cut_points(self, iv: _Interval, target: float, room: int) -> list[str]:
        """Where to cut open interval ``iv`` this round (at most ``room - 1`` points)."""
        if iv.hi is None:
            assert iv.lo is not None  # only the first interval starts at None, and round 0 probed it
            # The coarse half of the ladder finds where the keys stop; points up to the last first character
            # seen cut what lies before it.
            top = self.alphabet.top()
            points = set(ladder(iv.lo, None, LADDER_POINTS)[-LADDER_POINTS // 2:])
            points.update(split_points(iv.lo, top, MAX_FANOUT, self.alphabet))
            points.update(gallop(top, GALLOP_POINTS))
            chosen = sorted(p for p in points if p > iv.lo)
            if len(chosen) > room - 1:  # spread what fits
                step = len(chosen) / max(room - 1, 1)
                chosen = [chosen[min(len(chosen) - 1, int(i * step))] for i in range(room - 1)]
        else:
            wanted = math.ceil(iv.estimate / max(REFINE_BELOW * target, 1.0)) if math.isfinite(target) else MAX_FANOUT
            pieces = max(2, min(MAX_FANOUT, room, wanted))
            # Points spread evenly, and the coarse half of the ladder from the interval's start: a counter
            # zero-padded wider than it runs ("folder/0000012345") looks sparse to interpolation, while the
            # ladder finds in one round where its keys stop.
            chosen = split_points(iv.lo, iv.hi, pieces, self.alphabet)
            if iv.lo is not None:
                rungs = ladder(iv.lo, iv.hi, LADDER_POINTS)
                chosen = sorted(set(chosen) | set(rungs[-max(1, pieces // 2):]))
            if len(chosen) > room - 1:
                step = len(chosen) / max(room - 1, 1)
                chosen = [chosen[min(len(chosen) - 1, int(i * step))] for i in range(room - 1)]
        return sorted({p for p in chosen if fits(p, self.longest_prefix)})

    def refine(self, shards_wanted: Callable[[float], int]) -> None:
        def budget() -> int:
            return self.params.probe_budget(shards_wanted(self.total())) - self.probes

        while budget() >= 2:
            for ivs in self.intervals:
                for iv in ivs:
                    iv.reestimate(self.alphabet)
            total = self.total()
            target = total / shards_wanted(total)
            open_ivs = [(s, iv) for s, ivs in enumerate(self.intervals) for iv in ivs
                        if not iv.exact and not iv.stuck and (iv.hi is None or iv.estimate > REFINE_BELOW * target)]
            if not open_ivs:
                return
            open_ivs.sort(key=lambda item: (item[1].hi is not None, -item[1].estimate))
            room = min(self.params.concurrency, budget())
            plans: list[tuple[int, _Interval, list[_Interval]]] = []
            requests: list[ProbeRequest] = []
            # First, intervals whose estimate nothing has checked yet: two probes each, at the two coarsest
            # ladder rungs below their end (cheap: most answer at once that nothing is there).
            for source, iv in [(s, iv) for s, ivs in enumerate(self.intervals) for iv in ivs
                               if iv.page is not None and not iv.checked and not iv.exact and iv.hi is not None]:
                if room < CHECK_RUNGS + 1:
                    break
                assert iv.lo is not None
                rungs = [r for r in ladder(iv.lo, iv.hi, LADDER_POINTS)[-CHECK_RUNGS:] if fits(r, self.longest_prefix)]
                iv.checked = True
                if not rungs:
                    continue
                rung_bounds: list[str | None] = [iv.lo, *rungs, iv.hi]
                pieces = [_Interval(a, b, 0.0) for a, b in itertools.pairwise(rung_bounds)]
                # The first piece keeps the page's estimate (and needs no probe): it lies within what the
                # page showed, up to the first rung.
                pieces[0] = _Interval(iv.lo, rungs[0], 0.0, page=iv.page, checked=True)
                plans.append((source, iv, pieces))
                requests.extend(ProbeRequest(source, piece.lo) for piece in pieces[1:])
                room -= len(pieces) - 1
            for source, iv in open_ivs:
                if any(iv is planned for _, planned, _ in plans):
                    continue
                if room < 2:
                    break
                points = self.cut_points(iv, target, room)
                if not points:
                    iv.stuck = True
                    continue
                bounds: list[str | None] = [iv.lo, *points, iv.hi]
                pieces = [_Interval(a, b, 0.0) for a, b in itertools.pairwise(bounds)]
                plans.append((source, iv, pieces))
                requests.extend(ProbeRequest(source, piece.lo) for piece in pieces)
                room -= len(pieces)
            if not plans:
                return
            if not requests:
                return
            pages = iter(self.send(requests))
            for source, iv, pieces in plans:
                learned = [part for piece in pieces for part in (
                    [piece] if piece.page is not None else self.learn(piece.lo, piece.hi, next(pages)))]
                ivs = self.intervals[source]
                at = next(i for i, other in enumerate(ivs) if other is iv)
                ivs[at:at + 1] = learned


def partition(config: CopyConfig, params: PartitionParams, probe: ProbeBatch) -> Partition:
    """The shards of ``config``'s sources: disjoint relative key ranges that together hold every key."""
    problems = order_problems(config)
    if problems:
        return single_shard(problems)
    longest = max(len(p.encode()) for p in [*(s.prefix for s in config.sources), *(t.prefix for t in config.targets)])
    state = _Probing(params, probe, longest)
    first: list[ProbeRequest] = [ProbeRequest(i, None) for i in range(len(config.sources))]
    # A prefix that does not end in "/" ("logs/2024-"): a key continuing it with "/" loses that "/" in its
    # target key (routing.relative_key), which breaks the order; so does a key equal to the prefix.
    checks = [ProbeRequest(i, None, under="/", max_keys=1) for i, s in enumerate(config.sources)
              if not plain_prefix(s)]
    pages = state.send([*first, *checks])
    for index, source in enumerate(config.sources):
        page = pages[index]
        if not plain_prefix(source) and page.keys and page.keys[0] == "":
            problems.append(f"{_source_path(config, index)}.s3_path: s3://{source.bucket}/{source.prefix} is "
                            "itself an object, whose target key is its base name: the copy plans in one shard")
        state.intervals.append(state.learn(None, None, page))
    for request, page in zip(checks, pages[len(first):], strict=True):
        if page.keys:
            source = config.sources[request.source]
            problems.append(f"{_source_path(config, request.source)}.s3_path: keys under "
                            f"s3://{source.bucket}/{source.prefix}/ lose that \"/\" in their target keys, so "
                            "they do not follow the source's order: the copy plans in one shard (end s3_path "
                            "with \"/\" to cut it)")
    if problems:
        return single_shard(problems, state.probes, state.rounds)

    def shards_wanted(total: float) -> int:
        if params.shards is not None:
            return max(1, params.shards)
        if not math.isfinite(total):
            return params.max_shards
        return max(1, min(params.max_shards, math.ceil(total / params.objects_per_shard)))

    state.refine(shards_wanted)
    for ivs in state.intervals:
        for iv in ivs:
            iv.reestimate(state.alphabet)
    return _cut(state, shards_wanted)


def _source_path(config: CopyConfig, index: int) -> str:
    return f"s3_copy_config.source_s3_config[{index}]" if len(config.sources) > 1 else "s3_copy_config.source_s3_config"


def split_range(config: CopyConfig, keys: KeyRange, pieces: int, probe: ProbeBatch, max_probes: int) -> list[KeyRange]:
    """``keys`` (what is left of a shard) cut into at most ``pieces`` ranges of about equal estimated size,
    with at most ``max_probes`` probes: how a shard that finds itself too large hands work on (shard.py)."""
    longest = max(len(p.encode()) for p in [*(s.prefix for s in config.sources), *(t.prefix for t in config.targets)])
    state = _Probing(PartitionParams(shards=pieces, max_probes=max_probes), probe, longest)
    pages = state.send([ProbeRequest(i, keys.start_after) for i in range(len(config.sources))])
    for page in pages:
        state.intervals.append(state.learn(keys.start_after, keys.end, page))
    state.refine(lambda _total: pieces)
    for ivs in state.intervals:
        for iv in ivs:
            iv.reestimate(state.alphabet)
    return [shard.range for shard in _cut(state, lambda _total: pieces, keys).shards]


def _cut(state: _Probing, shards_wanted: Callable[[float], int], outer: KeyRange | None = None) -> Partition:
    outer = outer or KeyRange()
    boundaries, estimates = _merge(state, outer.start_after)
    total = sum(estimates)
    count = shards_wanted(total) if math.isfinite(total) else shards_wanted(math.inf)
    target = total / count if math.isfinite(total) and total > 0 else math.inf
    # Pieces larger than a quarter of a shard are cut blind (no probe), evenly in the alphabet's order, so
    # that the cuts below can land within a quarter of a shard of each target.
    fine: list[tuple[str | None, float]] = []  # (end, estimate) of each fine interval, in order
    start: str | None = outer.start_after
    for end, estimate in zip([*boundaries, outer.end], estimates, strict=True):
        # The last interval is open: cut up to the last first character seen, past which no key was.
        upper = end if end is not None else state.alphabet.top()
        grain = REFINE_BELOW * target
        if math.isfinite(target) and estimate > grain and (start is None or start < upper):
            points = [p for p in split_points(start, upper, min(MAX_FANOUT * 4, math.ceil(estimate / grain)),
                                              state.alphabet) if fits(p, state.longest_prefix)]
            share = estimate / (len(points) + 1)
            fine.extend((p, share) for p in points)
            fine.append((end, share))
        else:
            fine.append((end, estimate))
        start = end
    cuts: list[str] = []
    running = 0.0
    for end, estimate in fine[:-1]:
        running += estimate
        assert end is not None
        if math.isfinite(target) and running >= target * (len(cuts) + 1) and len(cuts) < count - 1:
            cuts.append(end)
    ranges = [KeyRange(a, b) for a, b in itertools.pairwise([outer.start_after, *cuts, outer.end])]
    shard_estimates = _sum_by_range(fine, cuts)
    shards = tuple(ShardSpec(i, r, round(e) if math.isfinite(e) else -1)
                   for i, (r, e) in enumerate(zip(ranges, shard_estimates, strict=True)))
    exact = all(iv.exact for ivs in state.intervals for iv in ivs)
    return Partition(shards=shards, ordered=True, probes=state.probes, rounds=state.rounds,
                     estimated_objects=int(total) if math.isfinite(total) else -1, exact=exact)


def _sum_by_range(fine: list[tuple[str | None, float]], cuts: list[str]) -> list[float]:
    sums = [0.0] * (len(cuts) + 1)
    shard = 0
    for end, estimate in fine:
        sums[shard] += estimate
        if shard < len(cuts) and end == cuts[shard]:
            shard += 1
    return sums


def _merge(state: _Probing, start: str | None = None) -> tuple[list[str], list[float]]:
    """Every source's interval ends as one sorted list of boundaries (the last interval's end, the range's,
    left out), and each fine interval's estimate: a source interval that other sources' boundaries cut
    shares its estimate out by width."""
    ends = {iv.hi for ivs in state.intervals for iv in ivs[:-1] if iv.hi is not None}
    boundaries = sorted(ends)
    position = {b: i for i, b in enumerate(boundaries)}
    estimates = [0.0] * (len(boundaries) + 1)
    for ivs in state.intervals:
        for iv in ivs:
            first = 0 if iv.lo is None or iv.lo == start else position[iv.lo] + 1
            last = position[iv.hi] if iv.hi is not None and iv.hi in position else len(boundaries)
            if first == last or iv.estimate == 0:
                estimates[first] += iv.estimate
                continue
            if not math.isfinite(iv.estimate):
                estimates[last] += iv.estimate
                continue
            # Shares by width: the part of (lo, hi] up to each inner boundary.
            done = 0.0
            for k in range(first, last):
                ratio = span_ratio(iv.lo, boundaries[k], iv.hi, state.alphabet)
                upto = 1.0 / (1.0 + ratio) if math.isfinite(ratio) else 0.0
                estimates[k] += max(0.0, upto - done) * iv.estimate
                done = max(done, upto)
            estimates[last] += max(0.0, 1.0 - done) * iv.estimate
    return boundaries, estimates
