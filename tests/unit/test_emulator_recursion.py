"""Bridge 11 by value: moto's Map iterations recurse once per item; ``_iterative`` runs the same calls as a loop."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from typing import Any

import pytest

from sfncopy.emulator.bridges import _iterative, map_iteration_patches, map_iteration_workers


def _depth() -> int:
    frame, depth = sys._getframe(1), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


class TailRecursivePool:
    """moto's shape: evaluate a job, then call ``_eval_pool`` again for the next one as the last statement."""

    def __init__(self, jobs: int) -> None:
        self.todo = list(range(jobs))
        self.done: list[tuple[int, str]] = []
        self.depths: set[int] = set()  # stack depths the jobs ran at

    def _eval_pool(self, job: int | None, worker_frame: str) -> None:
        if job is None:
            return
        self.done.append((job, worker_frame))
        self.depths.add(_depth())
        next_job = self.todo.pop(0) if self.todo else None
        self._eval_pool(job=next_job, worker_frame=worker_frame)

    def eval(self) -> None:
        self._eval_pool(job=self.todo.pop(0), worker_frame="frame")


def test_a_tail_recursive_pool_dies_past_the_recursion_limit() -> None:
    # GIVEN more jobs than Python's recursion limit allows frames
    pool = TailRecursivePool(sys.getrecursionlimit() + 10)
    # WHEN it runs as moto runs it  THEN it dies of RecursionError (moto's executions hang or fail there)
    with pytest.raises(RecursionError):
        pool.eval()


def test_the_loop_runs_every_job_in_the_same_order_at_a_constant_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the same pool, its _eval_pool run as a loop (bridge 11)
    jobs = 20 * sys.getrecursionlimit()
    monkeypatch.setattr(TailRecursivePool, "_eval_pool", _iterative(TailRecursivePool.__dict__["_eval_pool"]))
    pool = TailRecursivePool(jobs)
    # WHEN it runs  THEN every job ran once, in order, with the same frame, at one depth
    pool.eval()
    assert [job for job, _ in pool.done] == list(range(jobs))
    assert {frame for _, frame in pool.done} == {"frame"}
    assert len(pool.depths) == 1
    # AND the pool can run again (the queue of tail calls is gone once the loop ends)
    assert "_sfncopy_tail_calls" not in pool.__dict__


def _calls_to_eval_pool(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "_eval_pool"]


@pytest.mark.parametrize("owner", map_iteration_workers(), ids=lambda owner: owner.__name__)
def test_motos_eval_pool_calls_itself_only_as_its_last_statement(owner: type[Any]) -> None:
    # The loop is the same program only if the recursive call is a tail call: nothing may follow it. A moto
    # upgrade that changes that must fail here, not silently reorder a Map's work.
    source = textwrap.dedent(inspect.getsource(owner.__dict__["_eval_pool"]))
    (function,) = ast.parse(source).body
    assert isinstance(function, ast.FunctionDef)
    last = function.body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and _calls_to_eval_pool(last) == [
        last.value], f"{owner.__name__}._eval_pool no longer ends with its recursive call"
    assert len(_calls_to_eval_pool(function)) == 1, f"{owner.__name__}._eval_pool calls itself elsewhere too"


def test_the_bridge_patches_each_of_motos_iteration_workers() -> None:
    assert [(owner, name) for owner, name, _ in map_iteration_patches()] == [
        (owner, "_eval_pool") for owner in map_iteration_workers()]
