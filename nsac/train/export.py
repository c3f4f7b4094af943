"""`nsac export`: a checkpoint's weights (the EMA's when kept) into nsac/pretrained, hashed and registered.

NAME.json records what rebuilds the model without the checkpoint: the model family and its hyperparameters,
the sample rate, the task (and the codec a post-filter follows), and where the weights came from (recipe,
step, git revision, nsac version). Before anything is written the weights are loaded strictly into a freshly
built model, so an export that would not load is refused.

`model_overrides` ("model.KEY=VALUE", as `nsac train --set`) change inference-only hyperparameters of the
model section, for example a post-filter's ``high_band_gain_db`` calibrated on validation clips;
`calibration` says in NAME.json how they were chosen.

Models that range-code with learned code frequencies (the soft-to-hard autoencoder) have them counted again
with the exported weights on training audio (`nsac.train.code_counts`); NAME.json's `code_counts` says how.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nsac.errors import ParameterError, WeightsError
from nsac.pretrained import check_name, load_config, load_into, register
from nsac.train import checkpoint as ckpt
from nsac.train.code_counts import recount_code_frequencies
from nsac.train.models import build_model, model_class
from nsac.train.recipes import apply_overrides, build_dataclass, recipe_from_dict

PRETRAINED_FORMAT = "nsac-pretrained"
PRETRAINED_VERSION = 1


def export_checkpoint(checkpoint: str | Path, name: str, *, directory: str | Path | None = None,
                      use_ema: bool = True, model_overrides: Sequence[str] = (),
                      calibration: str | None = None, float16: bool = False) -> Path:
    """Write NAME.safetensors and NAME.json for `checkpoint` and register them; returns the weights' path."""
    check_name(name)
    from nsac.train import lpcnet_train

    if lpcnet_train.is_lpcnet_checkpoint(Path(checkpoint)):
        if model_overrides or calibration:
            raise ParameterError("an LPCNet checkpoint exports as trained; --set and --calibration do not apply")
        return lpcnet_train.export_checkpoint(Path(checkpoint), name, directory=directory)
    state = ckpt.load(Path(checkpoint))
    for text in model_overrides:
        if not text.startswith("model."):
            raise ParameterError(f"export override {text!r}: only model.KEY=VALUE settings can change at export")
    recipe_dict = apply_overrides(state["config"], model_overrides)
    recipe = recipe_from_dict(recipe_dict)  # checks the overrides against the model's config
    ema = use_ema and state.get("ema") is not None
    weights = state["ema"] if ema else state["model"]
    model = build_model(recipe.model.name, recipe.model.config, sample_rate_hz=recipe.data.sample_rate_hz)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{checkpoint}: its weights do not fit model {recipe.model.name!r} "
                           f"({' '.join(str(exc).split())[:200]})") from None
    code_counts = recount_code_frequencies(model, recipe)  # models with learned code tables only
    config: dict[str, Any] = {
        "format": PRETRAINED_FORMAT, "version": PRETRAINED_VERSION, "name": name,
        "model": recipe_dict["model"], "sample_rate_hz": recipe.data.sample_rate_hz, "task": recipe.task,
        "recipe": recipe.name, "step": int(state["step"]), "ema": ema,
        "git_revision": state["git_revision"], "nsac_version": state["nsac_version"],
    }
    if calibration:
        config["calibration"] = calibration
    if code_counts is not None:
        config["code_counts"] = code_counts
    if recipe.task == "postfilter":
        config["degrade"] = {"codec": recipe.degrade.codec, "bitrates_bps": list(recipe.degrade.bitrates_bps),
                             "options": dict(recipe.degrade.options)}
    if float16:
        config["stored_dtype"] = "float16"
    return register(name, shipped_state(model, float16=float16), config, directory=directory)


def shipped_state(model: nn.Module, *, float16: bool = False) -> dict[str, torch.Tensor]:
    """The state dict to ship: without the buffers that only training reads (a module's
    TRAINING_ONLY_BUFFERS), floating-point tensors stored as float16 when asked (they load back into the
    model's float32 tensors; about half the file)."""
    state = model.state_dict()
    for prefix, module in model.named_modules():
        for buffer in getattr(module, "TRAINING_ONLY_BUFFERS", ()):
            state.pop(f"{prefix}.{buffer}" if prefix else buffer, None)
    if float16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return state


def load_exported(name: str, *, directory: str | Path | None = None) -> nn.Module:
    """Rebuild an exported model from NAME.json and load its verified weights strictly (eval mode)."""
    config = load_config(name, directory=directory)
    model_section = dict(config["model"])
    model_name = model_section.pop("name")
    model_config = build_dataclass(model_class(model_name).Config, model_section, "model")
    model = build_model(model_name, model_config, sample_rate_hz=int(config["sample_rate_hz"]))
    load_into(model, name, directory=directory)
    return model.eval()
