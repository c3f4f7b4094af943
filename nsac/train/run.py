"""`nsac train`'s library entry: resolve the recipe, join the process group if torchrun started us, train."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nsac.train.config import Recipe
from nsac.train.recipes import apply_overrides, raw_recipe, recipe_from_dict, recipe_to_dict
from nsac.train.setup_data import GENERATED_CORPORA
from nsac.train.trainer import Trainer, TrainResult

#: run folders go here unless --out says otherwise
DEFAULT_RUNS_DIR = Path("runs")
RECIPE_FILE = "recipe.yaml"


def _resolve_data_path(path: str | Path) -> str:
    """A folder or manifest as an absolute path; a generated corpus's name (GENERATED_CORPORA) as it is."""
    if str(path) in GENERATED_CORPORA:
        return str(path)
    return str(Path(path).expanduser().resolve())


def resolve(recipe: str, *, data: str | Path | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe `recipe` with `overrides` applied and, when given, its data path replaced by `data`."""
    raw = apply_overrides(raw_recipe(recipe), overrides)
    if data is not None:
        raw.setdefault("data", {})
        raw["data"] = {**raw["data"], "path": _resolve_data_path(data)}
    elif (raw.get("data") or {}).get("path"):
        raw["data"] = {**raw["data"], "path": _resolve_data_path(raw["data"]["path"])}
    return recipe_from_dict(raw)


def train(recipe: str, *, data: str | Path | None = None, out: str | Path | None = None,
          overrides: Sequence[str] = ()) -> TrainResult:
    """Train (or resume) `recipe` in the run folder `out` (default runs/RECIPE); see nsac.train.trainer."""
    import torch
    import yaml

    from nsac.train import ddp

    raw = raw_recipe(recipe)
    if raw.get("task") == "lpcnet":  # LPCNet trains on its own feature cache and loop
        from nsac.train.lpcnet_train import run_recipe

        return run_recipe(raw, data=data, out=out, overrides=list(overrides))
    resolved = resolve(recipe, data=data, overrides=overrides)
    run_dir = Path(out) if out is not None else DEFAULT_RUNS_DIR / resolved.name
    context = ddp.setup(resolved.train.device)
    threads = torch.get_num_threads()  # the trainer sets its own; the caller gets theirs back
    try:
        trainer = Trainer(resolved, run_dir, context)
        if context.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / RECIPE_FILE).write_text(yaml.safe_dump(recipe_to_dict(resolved), sort_keys=False))
        return trainer.run()
    finally:
        torch.set_num_threads(threads)
        ddp.teardown(context)
