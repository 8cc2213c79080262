"""Binning: spread copy tasks over N workers by a cost model, then cut each worker's share into payloads.

Pure functions of tasks and numbers. The cost model counts bytes *and* requests: a task costs its bytes
plus ``limits.REQUEST_COST_BYTES`` per S3 request, so ten thousand 1 KiB files are not free. Tasks go
largest cost first to the least-loaded worker (LPT scheduling: the makespan exceeds the ideal, total
cost / N, by at most the cost of one task, and by far less when many small tasks come last).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import TypeVar

from lambdas import limits
from lambdas.models import CopyTask
from lambdas.parts import choose_part_size, part_count

# Requests a whole-object multipart copy needs besides its parts: HEAD (headers, tags), create, complete.
MULTIPART_EXTRA_REQUESTS = 3

T = TypeVar("T")


def request_count(task: CopyTask, part_size: int) -> int:
    """S3 requests the worker sends for ``task`` (``part_size``: the preferred size for a multipart copy)."""
    if task.method == "copy":
        return 1
    if task.method == "chunk":
        return task.last_part - task.first_part + 1
    return part_count(task.size, choose_part_size(task.size, part_size)) + MULTIPART_EXTRA_REQUESTS


def task_cost(task: CopyTask, part_size: int) -> int:
    """Worker time of ``task`` in byte-equivalents: its bytes plus a fixed price per request."""
    return task.nbytes + limits.REQUEST_COST_BYTES * request_count(task, part_size)


def measure(tasks: Sequence[CopyTask], part_size: int) -> tuple[list[int], list[int]]:
    """Bytes and S3 requests of every task (whole-object CopyObject, by far the most common, inline)."""
    nbytes = [t.size if t.method != "chunk" else t.nbytes for t in tasks]
    requests = [1 if t.method == "copy" else request_count(t, part_size) for t in tasks]
    return nbytes, requests


def costs_of(nbytes: Sequence[int], requests: Sequence[int]) -> list[int]:
    one = limits.REQUEST_COST_BYTES
    return [b + one * r for b, r in zip(nbytes, requests, strict=True)]


def assign(costs: Sequence[int], workers: int) -> tuple[list[list[int]], list[int]]:
    """Assign task indexes to workers, largest cost first onto the least-loaded worker.

    Tasks of equal cost keep their input order (the sort is stable), so the same input gives the same
    assignment. Returns each worker's task indexes in assignment order and each worker's load.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    order = sorted(range(len(costs)), key=costs.__getitem__, reverse=True)
    # A heap entry is load * workers + worker: one int orders by load, then by worker index, and is
    # cheaper to compare and build than a (load, worker) tuple (this loop runs once per task).
    heap = list(range(workers))
    shares: list[list[int]] = [[] for _ in range(workers)]
    for i in order:
        entry = heap[0]
        shares[entry % workers].append(i)
        heapq.heapreplace(heap, entry + costs[i] * workers)
    loads = [0] * workers
    for entry in heap:
        loads[entry % workers] = entry // workers
    return shares, loads


def cut_payloads(tasks: Sequence[T], nbytes: Sequence[int], max_bytes: int,
                 max_objects: int) -> tuple[list[list[T]], list[int]]:
    """Cut one worker's tasks (``nbytes`` each) into payloads of at most ``max_bytes`` and ``max_objects``.
    Returns the payloads and the bytes of each.

    A task goes into the payload filled last if it fits there, else into the open payload with the
    least room that holds it (best fit), else into a new payload: as tasks arrive largest first, small
    tasks fill the gaps the large ones left. A task larger than ``max_bytes`` (possible only when one
    part is larger than the cap) gets a payload of its own.
    """
    payloads: list[list[T]] = []
    used: list[int] = []  # bytes of each payload
    room: list[tuple[int, int]] = []  # (bytes left, index) of open payloads but the current one; sorted
    current, left = -1, -1  # the payload filled last and its bytes left
    filling: list[T] = []  # payloads[current]
    for task, need in zip(tasks, nbytes, strict=True):
        takes_more = current >= 0 and len(filling) < max_objects
        if takes_more and need <= left:
            filling.append(task)
            used[current] += need
            left -= need
            continue
        if takes_more and left >= 0:
            insort(room, (left, current))
        pos = bisect_left(room, (need, -1))
        if pos < len(room):
            left, current = room.pop(pos)
        else:
            payloads.append([])
            used.append(0)
            current, left = len(payloads) - 1, max_bytes
        filling = payloads[current]
        filling.append(task)
        used[current] += need
        left -= need
    return payloads, used


def predicted_makespan(worker_loads: Sequence[int]) -> int:
    """The load of the busiest worker: the run ends when it does."""
    return max(worker_loads, default=0)


def balance(worker_loads: Sequence[int]) -> float:
    """Predicted makespan / ideal (total / N): 1.0 is perfect, 2.0 means twice as long as needed."""
    total = sum(worker_loads)
    if total == 0:
        return 1.0
    return predicted_makespan(worker_loads) * len(worker_loads) / total
