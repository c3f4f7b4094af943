"""Shared by the speed benchmarks: one thread everywhere, and the best CPU time of a few runs.

Import this module before numpy or torch: it limits their thread pools through the environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
for _name in THREAD_VARIABLES:  # one core: set before numpy starts its thread pools
    os.environ[_name] = "1"


def best_cpu_seconds(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(the fewest CPU seconds of `repeats` calls of function, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result
