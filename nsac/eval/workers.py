"""Worker processes for the bench: results as they finish, and a worker that dies costs one task, not the run.

`multiprocessing.Pool` waits forever for a task whose worker was killed (a segfault in a C library, the
out-of-memory killer). Here a dead worker breaks the executor; the tasks it was running are run again one
at a time in a fresh worker, and a task whose worker dies alone is reported through `on_crash`. Workers are
spawned, not forked, so that they do not inherit the caller's thread pools (torch, onnxruntime), which
a forked child cannot use safely.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from nsac.errors import NsacError

T = TypeVar("T")
R = TypeVar("R")

START_HINT = ("the bench's worker processes die as they start; a script that runs a bench must do so under "
              "`if __name__ == '__main__':` (worker processes import the main module)")


def _ready() -> bool:
    return True


def _start(n_workers: int, initializer: Callable[[], None] | None) -> ProcessPoolExecutor:
    """An executor whose workers are known to start (a dead start is an error, not a retry loop)."""
    executor = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=initializer)
    try:
        executor.submit(_ready).result()
    except BrokenProcessPool:
        executor.shutdown(wait=False, cancel_futures=True)
        raise NsacError(START_HINT) from None
    return executor


def _run_alone(function: Callable[[T], R], task: T, on_crash: Callable[[T], R],
               initializer: Callable[[], None] | None) -> R:
    executor = _start(1, initializer)
    try:
        return executor.submit(function, task).result()
    except BrokenProcessPool:
        return on_crash(task)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def run_in_workers(function: Callable[[T], R], tasks: Iterable[T], *, jobs: int,
                   on_crash: Callable[[T], R], initializer: Callable[[], None] | None = None) -> Iterator[R]:
    """Yield `function(task)` for every task, in the order they finish, from `jobs` spawned workers.

    `function`, the tasks and the results must be picklable (module-level functions, plain data).
    At most `jobs` tasks are in flight, so a dead worker points at a few suspects, which run alone next.
    """
    pending = deque(tasks)
    while pending:
        executor = _start(min(jobs, len(pending)), initializer)
        in_flight: dict[Future[R], T] = {}
        suspects: list[T] = []
        try:
            while (pending or in_flight) and not suspects:
                while pending and len(in_flight) < jobs:
                    task = pending.popleft()
                    in_flight[executor.submit(function, task)] = task
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        suspects.append(task)
                        continue
                    yield result
            suspects += in_flight.values()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        for task in suspects:
            yield _run_alone(function, task, on_crash, initializer)


__all__ = ["START_HINT", "run_in_workers"]
