"""Training checkpoints: plain tensors and dicts saved with torch.save, loaded with weights_only=True.

A checkpoint holds everything an exact resume needs and everything export needs::

    format, version        "nsac-train-checkpoint", CHECKPOINT_VERSION
    recipe, config         the recipe's name and its full resolved dict (nsac.train.recipes.recipe_to_dict)
    step                   optimizer steps taken
    git_revision, nsac_version, world_size
    model, ema             generator state dicts (ema: None without EMA)
    discriminator          state dict or None
    optim_g, optim_d       optimizer state dicts (optim_d: None)
    rng                    one uint8 tensor per process: torch's CPU RNG state (+ CUDA's on a GPU)

Files are written to a temporary name and renamed, so a crash never leaves half a checkpoint. Run folders keep
`checkpoints/step_XXXXXXXX.pt` and `checkpoints/last.pt`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from nsac.errors import WeightsError

CHECKPOINT_FORMAT = "nsac-train-checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.pt"
_STEP_PREFIX = "step_"
_GIT_TIMEOUT_S = 10.0


def git_revision() -> str:
    """The commit nsac runs from, "-dirty" when tracked files changed; "unknown" outside a git checkout."""
    folder = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=_GIT_TIMEOUT_S,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def rng_state(device: torch.device) -> torch.Tensor:
    """This process's torch RNG state (CPU, then the device's CUDA generator) as one uint8 tensor."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return torch.cat(states)


def set_rng_state(state: torch.Tensor, device: torch.device) -> None:
    cpu_size = torch.get_rng_state().numel()
    torch.set_rng_state(state[:cpu_size].clone())
    if device.type == "cuda" and state.numel() > cpu_size:
        torch.cuda.set_rng_state(state[cpu_size:].clone(), device)


def step_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{_STEP_PREFIX}{step:08d}.pt"


def last_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / LAST


def save(payload: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint (tensors to the CPU) and check that it is one; WeightsError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  # torch raises many types for a file that is no checkpoint
        raise WeightsError(f"{path}: not a readable nsac training checkpoint ({type(exc).__name__} from "
                           "torch.load with weights_only=True)") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not an nsac training checkpoint (no {CHECKPOINT_FORMAT!r} format tag)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: checkpoint version {payload.get('version')} is not "
                           f"{CHECKPOINT_VERSION}; use the nsac version that wrote it")
    return payload


def prune(run_dir: Path, *, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (last.pt stays)."""
    folder = Path(run_dir) / "checkpoints"
    steps = sorted(folder.glob(f"{_STEP_PREFIX}*.pt"))
    for old in steps[: max(0, len(steps) - keep)]:
        old.unlink(missing_ok=True)
