"""Choose a post-filter's regenerated-band gain on validation speakers, never on the test split.

The STFT enhancer regenerates the band above ``shift_bins`` from a translated copy; how loud to leave that
guess is an inference setting (``model.high_band_gain_db``) that the export records. This script codes the
first CLIPS files of the run's own validation speakers (the same speaker split as training: the recipe's
data path, valid_fraction and seed) with the run's legacy codec, enhances them at each candidate gain, and
prints PESQ-WB, ViSQOL and DNSMOS OVRL means (for a 48 kHz music run: ViSQOL in audio mode, the mel distance
and the noise-to-mask ratio), so the choice can be repeated::

    python scripts/postfilter_calibrate.py runs/postfilter-codec2-3200/checkpoints/last.pt --gains 0 -12 -18 -24

then ``nsac export CHECKPOINT --name NAME --set model.high_band_gain_db=G --calibration "..."``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

#: the metrics scored (and the columns printed) for 16 kHz speech and for 48 kHz music
METRICS = {"speech": ("pesq_wb", "visqol_speech", "dnsmos"), "music": ("visqol_audio", "mel_distance", "nmr")}
COLUMNS = {"speech": ("pesq_wb", "visqol_speech", "dnsmos_ovrl"),
           "music": ("visqol_audio", "mel_distance", "nmr")}


def validation_pairs(recipe, clips: int, *, data: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, decoded) for the first `clips` files of the recipe's held-out validation speakers (the
    training run's own split: data path, valid_fraction, seed), coded with its first degradation.
    `data` stands in for the recipe's data path (a recipe file leaves it to --data)."""
    from nsac.train.data import load_corpus, speaker_split
    from nsac.train.degrade import Degradation, degrade_audio, read_mono
    from nsac.train.setup_data import GENERATED_CORPORA

    rate = recipe.data.sample_rate_hz
    source = data or recipe.data.path
    if source in GENERATED_CORPORA:  # a generated corpus (rendered or synthetic music) by its name
        source = str(GENERATED_CORPORA[source]())
    _, valid = speaker_split(load_corpus(source, split=recipe.data.split or None),
                             valid_fraction=recipe.data.valid_fraction, seed=recipe.seed)
    degradation = Degradation(recipe.degrade.codec, recipe.degrade.bitrates_bps[0], recipe.degrade.options)
    pairs = []
    for item in valid[:clips]:
        clean, file_rate = read_mono(item.path)
        if file_rate != rate:
            raise SystemExit(f"{item.path} is at {file_rate} Hz; the recipe runs at {rate} Hz")
        pairs.append((clean, degrade_audio(clean, rate, degradation)))
    print(f"{len(pairs)} validation clips, {degradation.codec} at {degradation.bitrate_bps} bit/s")
    return pairs


def score_table(references: list[np.ndarray], rate: int) -> Callable[[str, list[np.ndarray]], None]:
    """Prints a markdown table's header; the returned function prints one row: the mean scores of outputs
    against `references` (speech metrics at 16 kHz, music metrics at 48 kHz)."""
    from nsac.eval.metrics import evaluate

    kind = "music" if rate == 48000 else "speech"
    metrics, columns = METRICS[kind], COLUMNS[kind]
    print("| condition | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))

    def report(label: str, outputs: list[np.ndarray]) -> None:
        scores = [evaluate(clean, out, sample_rate=rate, metrics=metrics)
                  for clean, out in zip(references, outputs)]
        means = [np.nanmean([s[c] for s in scores]) for c in columns]
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in means) + " |", flush=True)

    return report


def enhance(model: torch.nn.Module, decoded: list[np.ndarray]) -> list[np.ndarray]:
    """A whole-signal enhancer over each decoded clip, limited to full scale."""
    with torch.inference_mode():
        return [np.clip(model(torch.from_numpy(d)[None, None])[0, 0].numpy(), -1, 1) for d in decoded]


def main() -> None:
    from nsac.train import checkpoint as ckpt
    from nsac.train.export import export_checkpoint, load_exported
    from nsac.train.recipes import recipe_from_dict

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--gains", type=float, nargs="*", default=[0.0, -12.0, -18.0, -24.0],
                        help="candidate high-band gains in dB (none: score the model as trained, any model)")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recipe = recipe_from_dict(ckpt.load(args.checkpoint)["config"])
    print(f"{args.checkpoint}: ", end="")
    pairs = validation_pairs(recipe, args.clips)
    report = score_table([clean for clean, _ in pairs], recipe.data.sample_rate_hz)
    decoded = [d for _, d in pairs]
    report("decoded", decoded)
    with tempfile.TemporaryDirectory() as folder:
        for gain in args.gains or [None]:
            overrides = [] if gain is None else [f"model.high_band_gain_db={gain}"]
            export_checkpoint(args.checkpoint, "calibration", directory=folder, model_overrides=overrides)
            outputs = enhance(load_exported("calibration", directory=folder), decoded)
            report("enhanced" if gain is None else f"enhanced, high band {gain:+.0f} dB", outputs)


if __name__ == "__main__":
    main()
