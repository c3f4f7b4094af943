"""How far could a post-filter lift a legacy codec? Scores of decoded speech with parts of the truth put back.

On the validation clips of a post-filter recipe's speaker split (never the test split), the codec's decoded
speech is scored (PESQ-WB, ViSQOL, DNSMOS OVRL) as it is and with oracle repairs in the STFT domain
(512-sample Hann frames, hop 128), each an upper bound for one kind of enhancer:

* ``true high band``: the clean spectrum above ``--split-hz`` (magnitude and phase) in place of the decoded;
* ``true high-band magnitudes, random phases``: the most a noise-excited bandwidth extension could do;
* ``true magnitudes, decoded phases``: every bin at the clean magnitude, with the decoded phase below
  ``--split-hz`` and random phases above: the most an enhancer that reshapes the spectrum could do;
* ``clean``: the reference itself (the scale's top for these clips).

With ``--enhancer NAME`` it also scores those weights and compares the level of their band above
``--split-hz`` with the clean one, frame by frame (frames within 40 dB of the clip's loudest)::

    python scripts/postfilter_oracle.py postfilter-codec2-3200 --clips 16 --enhancer postfilter-codec2-3200
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

N_FFT, HOP = 512, 128
RATE_HZ = 16000
ACTIVE_RANGE_DB = 40.0


def _stft(x: np.ndarray) -> torch.Tensor:
    return torch.stft(torch.from_numpy(x.astype(np.float32)), N_FFT, HOP, window=torch.hann_window(N_FFT),
                      return_complex=True)


def _istft(spectrum: torch.Tensor, n: int) -> np.ndarray:
    return torch.istft(spectrum, N_FFT, HOP, window=torch.hann_window(N_FFT), length=n).numpy()


def _aligned_clean(clean: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """The clean signal moved onto the decoded one's time axis (the codec's delay taken out)."""
    from nsac.eval.align import find_delay

    delay = int(find_delay(clean, decoded, sample_rate=RATE_HZ)[0])
    moved = np.zeros_like(decoded)
    if delay >= 0:
        kept = clean[: len(decoded) - delay]
        moved[delay: delay + len(kept)] = kept
    else:
        kept = clean[-delay: -delay + len(decoded)]
        moved[: len(kept)] = kept
    return moved


def main() -> None:
    from nsac.train.recipes import raw_recipe, recipe_from_dict
    from postfilter_calibrate import enhance, score_table, validation_pairs  # the script beside this one

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a post-filter recipe: its validation split and codec")
    parser.add_argument("--data", default="../shared/data/speech/train", help="the recipe's training data")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--split-hz", type=float, default=4000.0, help="where the regenerated band starts")
    parser.add_argument("--enhancer", help="shipped weights to score beside the oracles")
    parser.add_argument("--seed", type=int, default=0, help="of the random phases")
    args = parser.parse_args()
    torch.set_num_threads(1)

    recipe = recipe_from_dict(raw_recipe(args.recipe))
    if recipe.data.sample_rate_hz != RATE_HZ:
        raise SystemExit(f"{args.recipe} runs at {recipe.data.sample_rate_hz} Hz; this script is for 16 kHz")
    print(f"{args.recipe}: ", end="")
    pairs = validation_pairs(recipe, args.clips, data=args.data)
    references = [clean for clean, _ in pairs]
    report = score_table(references, RATE_HZ)

    split_bin = round(args.split_hz / RATE_HZ * N_FFT)
    generator = torch.Generator().manual_seed(args.seed)
    high_band, high_magnitudes, magnitudes = [], [], []
    for clean, decoded in pairs:
        c, d = _stft(_aligned_clean(clean, decoded)), _stft(decoded)
        phases = torch.polar(torch.ones(c.shape), 2 * np.pi * torch.rand(c.shape, generator=generator))
        y = d.clone()
        y[split_bin:] = c[split_bin:]
        high_band.append(_istft(y, len(decoded)))
        y = d.clone()
        y[split_bin:] = c[split_bin:].abs() * phases[split_bin:]
        high_magnitudes.append(_istft(y, len(decoded)))
        y = c.abs() * torch.where(d.abs() > 0, d / d.abs().clamp_min(1e-12), phases)
        y[split_bin:] = c[split_bin:].abs() * phases[split_bin:]
        magnitudes.append(_istft(y, len(decoded)))
    report("decoded", [decoded for _, decoded in pairs])
    report("true high band", high_band)
    report("true high-band magnitudes, random phases", high_magnitudes)
    report("true magnitudes, decoded phases below the split", magnitudes)
    report("clean", references)
    if args.enhancer:
        from nsac.codecs.postfilter.registry import load_enhancer

        outputs = enhance(load_enhancer(args.enhancer), [decoded for _, decoded in pairs])
        report(f"enhanced ({args.enhancer})", outputs)
        true_db, enhanced_db = [], []
        for clean, out in zip(references, outputs):
            c, e = _stft(_aligned_clean(clean, out)).abs() ** 2, _stft(out).abs() ** 2
            low = 10 * np.log10(c[:split_bin].sum(0).numpy() + 1e-10)
            active = low > low.max() - ACTIVE_RANGE_DB
            true_db.append(10 * np.log10(c[split_bin:].sum(0).numpy() + 1e-10)[active])
            enhanced_db.append(10 * np.log10(e[split_bin:].sum(0).numpy() + 1e-10)[active])
        t, e = np.concatenate(true_db), np.concatenate(enhanced_db)
        print(f"band above {args.split_hz:g} Hz, {t.size} active frames of {N_FFT} samples (hop {HOP}): "
              f"level correlation {np.corrcoef(t, e)[0, 1]:.2f}, mean error {np.mean(np.abs(e - t)):.1f} dB, "
              f"bias {np.mean(e - t):+.1f} dB")


if __name__ == "__main__":
    main()
