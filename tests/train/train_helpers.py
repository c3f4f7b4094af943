"""Helpers the training tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

#: the shared training corpus (absent on machines without ../shared/data)
SHARED_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "train"
#: the smoke recipe on the tiny corpus: one validation speaker of four, no progress bar, one thread
SMOKE_SETTINGS = ("valid_fraction=0.25", "progress=false", "threads=1")


def copy_run(run_dir: Path, target: Path) -> Path:
    """A copy of a run folder, to resume or tamper with without touching the shared one."""
    shutil.copytree(run_dir, target)
    return target
