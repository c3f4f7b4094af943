"""Measure the psychoacoustic terms' scale against the mel and STFT terms, to choose their recipe weights.

The weights in autoencoder-16k-ablation-psy.yaml come from this: on CROPS training crops (0.5 s, at the
recipe's loudness), it evaluates every reconstruction term of the recipe's objective, unweighted, at two
operating points: the recipe's model (at initialisation, or a checkpoint of it, in eval mode) and Opus at
OPUS_BPS standing in for a trained codec. It prints each term's value and the norm of its gradient with
respect to the coded audio, and the weights that make each psychoacoustic term as large as the mel term
(the paper's mel 5 : priority 5 : noise modulation 5) at the geometric mean of the operating points::

    python scripts/psychoacoustic_loss_scale.py autoencoder-16k-ablation-psy --data ../shared/data/speech/train \\
        --checkpoint runs/ablation-base-200/checkpoints/last.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

CROP_S = 0.5
PSYCHOACOUSTIC = {"priority_weighting": "priority_weight", "noise_modulation": "noise_modulation_weight"}


def training_crops(data: str, *, n_crops: int, sample_rate_hz: int, loudness_lufs: float | None,
                   max_gain_db: float, seed: int) -> torch.Tensor:
    """(n_crops, 1, samples) float32 crops of random files, loudness-normalised as training does."""
    from nsac.dsp.loudness import normalization_gain_db
    from nsac.train.data import load_corpus
    from nsac.train.dataset import read_crop

    items = load_corpus(data)
    rng = np.random.default_rng(seed)
    n = round(CROP_S * sample_rate_hz)
    crops = []
    for index in rng.choice(len(items), size=min(n_crops, len(items)), replace=False):
        item = items[int(index)]
        crop = read_crop(item, start_s=rng.uniform(0.0, max(0.0, item.duration_s - CROP_S)), n=n,
                         sample_rate_hz=sample_rate_hz)
        if loudness_lufs is not None:
            crop = crop * 10 ** (normalization_gain_db(crop, sample_rate_hz=sample_rate_hz,
                                                       target_lufs=loudness_lufs, max_gain_db=max_gain_db) / 20)
        crops.append(crop)
    return torch.tensor(np.stack(crops), dtype=torch.float32)[:, None]


def opus_coded(target: torch.Tensor, *, bitrate_bps: int, sample_rate_hz: int) -> torch.Tensor:
    from nsac.codecs import load_codec

    codec = load_codec("opus", bitrate=bitrate_bps, sample_rate=sample_rate_hz, channels=1)
    coded = [codec.decode(codec.encode(x.numpy()), x.shape[-1])[0] for x in target[:, 0:1]]
    return torch.tensor(np.stack(coded), dtype=torch.float32)[:, None]


def measure(objective: torch.nn.Module, output: torch.Tensor, target: torch.Tensor) -> dict[str, tuple[float, float]]:
    """{term: (unweighted value, norm of its gradient with respect to `output`)}."""
    estimate = output.detach().clone().requires_grad_(True)
    terms = objective.reconstruction(estimate, target)
    result = {}
    for name, value in terms.items():
        if name == "total":
            continue
        (gradient,) = torch.autograd.grad(value, estimate, retain_graph=True)
        result[name] = (float(value.detach()), float(gradient.norm()))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    from nsac.train import checkpoint as ckpt
    from nsac.train.models import build_model
    from nsac.train.objective import Objective
    from nsac.train.recipes import load_recipe, recipe_from_dict

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("recipe", help="a recipe name or .yaml (its model and loss settings are used)")
    parser.add_argument("--data", required=True, help="the training data (folder or manifest)")
    parser.add_argument("--checkpoint", help="a checkpoint of the recipe's model (default: initial weights)")
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--opus-bps", type=int, default=6000, help="Opus bitrate standing in for a trained codec")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    recipe = load_recipe(args.recipe)
    rate = recipe.data.sample_rate_hz
    target = training_crops(args.data, n_crops=args.crops, sample_rate_hz=rate,
                            loudness_lufs=recipe.data.loudness_lufs, max_gain_db=recipe.data.max_gain_db,
                            seed=args.seed)
    loss = dataclasses.replace(recipe.loss, priority_weight=1.0, noise_modulation_weight=1.0)
    objective = Objective(loss, sample_rate_hz=rate)
    torch.manual_seed(recipe.seed)
    model = build_model(recipe.model.name, recipe.model.config, sample_rate_hz=rate)
    where = "initial weights"
    if args.checkpoint:
        state = ckpt.load(args.checkpoint)
        saved = recipe_from_dict(state["config"])
        model = build_model(saved.model.name, saved.model.config, sample_rate_hz=rate)
        model.load_state_dict(state["model"])
        where = f"{args.checkpoint}, step {state['step']}"
    model.eval()
    with torch.no_grad():
        output = model(target)
        output = output[0] if isinstance(output, tuple) else output
    points = {f"model ({where})": measure(objective, output, target),
              f"Opus {args.opus_bps} bit/s": measure(objective, opus_coded(target, bitrate_bps=args.opus_bps,
                                                                             sample_rate_hz=rate), target)}
    names = list(next(iter(points.values())))
    print(f"{len(target)} crops of {CROP_S} s; unweighted value (gradient norm with respect to the output)")
    print("| term | " + " | ".join(points) + " | geometric mean |")
    print("|---|" + "---|" * (len(points) + 1))
    typical = {}
    for name in names:
        values = [point[name][0] for point in points.values()]
        typical[name] = math.exp(sum(math.log(max(v, 1e-30)) for v in values) / len(values))
        cells = [f"{point[name][0]:.3g} ({point[name][1]:.3g})" for point in points.values()]
        print(f"| {name} | " + " | ".join(cells) + f" | {typical[name]:.3g} |")
    if "mel" not in typical:
        print("the recipe has no mel term (loss.mel_weight = 0): no weights to match")
        return
    mel_weighted = recipe.loss.mel_weight * typical["mel"]
    for name, key in PSYCHOACOUSTIC.items():
        print(f"loss.{key}: {mel_weighted / typical[name]:.3g} (mel_weight x typical mel / typical {name}); "
              f"the recipe has {getattr(recipe.loss, key):g}")


if __name__ == "__main__":
    main()
