"""How much each phase rule of the inverse-STFT autoencoder can give, with the true magnitudes (no model).

The autoencoder's head (nsac/codecs/autoencoder/stft_model.py) turns per-frame magnitudes and a phase rule
into audio: Hann window, 320-sample frames, 80-sample hop at 16 kHz. This script takes real speech, computes
its causal STFT (as the model's LogSpectrum frames it), keeps the true magnitudes and resynthesises them
with each rule, then scores PESQ-WB, ViSQOL and DNSMOS against the original:

- true phase (the ceiling of the framing itself);
- true advances, summed per bin from zero (what `phase: advance` could reach);
- centre advances: every bin advances at its centre frequency's rate (`phase: centre`, no phase input);
- harmonic: the `phase: harmonic` head (HarmonicStftHead) given the true magnitudes, or their envelope (a
  9-bin mean), the pitch of nsac.dsp.pitch_torch and a voicing of 1 where its periodicity reaches 0.7;
- zero phase in every frame (a bad rule, for scale).

The centre rule makes every output a sum of the bins' centre frequencies, multiples of fs / N = 50 Hz, with
phases fixed to the output's sample grid: a 20 ms periodicity whatever the speech does. Where that grid
falls relative to the speech depends on the codec's delay, so each rule is measured with the signal
delayed by each of `--delays` samples before analysis (0: the analysis grid; 559: where the autoencoder's
decoder puts it) and the delay taken out after.

Usage (training speakers: this measures a signal-processing rule, nothing is fitted)::

    python scripts/stft_phase_oracle.py --data ../shared/data/speech/train --files 8 --delays 0 559
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

N_FFT, HOP = 320, 80
#: periodic Hann analysis and synthesis windows at a quarter-window hop sum (squared) to this constant
HANN_SQUARED_OLA = 1.5


def causal_stft(x: np.ndarray) -> torch.Tensor:
    """Complex STFT (bins, frames) of x, frame j ending on sample HOP * j (the model's framing)."""
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    padded = torch.nn.functional.pad(torch.from_numpy(x).double(), (N_FFT - 1, 0))
    return torch.fft.rfft(padded.unfold(0, N_FFT, HOP) * window, dim=1).T


def resynthesise(magnitude: torch.Tensor, phase: torch.Tensor, n_samples: int) -> np.ndarray:
    """Inverse FFT, Hann synthesis window, overlap-add; aligned with the analysed signal."""
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    frames = torch.fft.irfft(torch.polar(magnitude, phase), n=N_FFT, dim=0) * window[:, None]
    n_frames = frames.shape[1]
    y = torch.nn.functional.fold(frames[None], output_size=(1, (n_frames - 1) * HOP + N_FFT),
                                 kernel_size=(1, N_FFT), stride=(1, HOP)).flatten()
    return (y[N_FFT - 1 : N_FFT - 1 + n_samples] / HANN_SQUARED_OLA).float().numpy()


def harmonic_frames(x: np.ndarray, log_magnitude: torch.Tensor) -> torch.Tensor:
    """The harmonic head's frames (N, frames) for log-magnitudes (bins, frames) of the causal STFT of x."""
    from nsac.codecs.autoencoder.stft_model import F0_MAX_HZ, F0_MIN_HZ, VOICED_PERIODICITY, HarmonicStftHead
    from nsac.dsp.pitch_torch import frame_pitch

    head = HarmonicStftHead(N_FFT, HOP, sample_rate_hz=16000)
    n_frames = log_magnitude.shape[1]
    padded = torch.nn.functional.pad(torch.from_numpy(x).float(), (0, HOP * n_frames))[None, : HOP * n_frames]
    f0_hz, periodicity = frame_pitch(padded, sample_rate_hz=16000, hop_samples=HOP, window_samples=N_FFT,
                                     min_hz=F0_MIN_HZ, max_hz=F0_MAX_HZ)
    # causal frame j ends on sample H j, centred H j - N / 2; pitch frame i is centred on H i + H / 2
    lag = round((N_FFT / 2 + HOP / 2) / HOP)
    f0_hz = torch.cat([f0_hz[:, :1].expand(-1, lag), f0_hz[:, :-lag]], dim=-1)
    periodicity = torch.cat([periodicity.new_zeros(1, lag), periodicity[:, :-lag]], dim=-1)
    voicing = torch.where(periodicity >= VOICED_PERIODICITY, 30.0, -30.0).expand(log_magnitude.shape[0], -1)
    head.given_f0_hz = f0_hz.clamp(F0_MIN_HZ, F0_MAX_HZ)
    inputs = torch.cat([log_magnitude.float(), voicing, torch.zeros(1, n_frames)])[None]
    return head(inputs)[0].double()


def overlap_add(frames: torch.Tensor, n_samples: int) -> np.ndarray:
    """Hann-windowed frames (N, frames) overlap-added, aligned with the analysed signal as resynthesise's."""
    n_frames = frames.shape[1]
    y = torch.nn.functional.fold(frames[None], output_size=(1, (n_frames - 1) * HOP + N_FFT),
                                 kernel_size=(1, N_FFT), stride=(1, HOP)).flatten()
    return (y[N_FFT - 1 : N_FFT - 1 + n_samples] / HANN_SQUARED_OLA).float().numpy()


def envelope(magnitude: torch.Tensor, bins: int = 9) -> torch.Tensor:
    """Magnitudes (bins, frames) averaged over `bins` neighbouring bins: the harmonics smoothed away."""
    return torch.nn.functional.avg_pool1d(magnitude.T[None], bins, 1, bins // 2, count_include_pad=False)[0].T


def phase_rules(spectrum: torch.Tensor) -> dict[str, torch.Tensor]:
    phase = torch.angle(spectrum)
    bins = torch.arange(spectrum.shape[0], dtype=torch.float64)[:, None]
    centre = 2 * math.pi * bins * HOP / N_FFT
    # true advances: the wrapped phase difference, unwrapped around the bin centre's advance
    advance = torch.remainder(phase[:, 1:] - phase[:, :-1] - centre + math.pi, 2 * math.pi) - math.pi + centre
    first = torch.zeros(spectrum.shape[0], 1, dtype=torch.float64)
    return {
        "true phase": phase,
        "true advances, summed per bin": torch.cat([first, torch.cumsum(advance, 1)], 1),
        "centre advances (phase: centre)": torch.cumsum(centre.expand_as(phase), 1),
        "zero phase": torch.zeros_like(phase),
    }


def main() -> None:
    from nsac.eval.metrics import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of 16 kHz speech (searched recursively)")
    parser.add_argument("--files", type=int, default=8, help="files, spread evenly over the sorted folder")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of each file")
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 559],
                        help="samples of silence put before each file (where the output grid falls)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in (".flac", ".wav"))
    if not paths:
        raise SystemExit(f"no .flac or .wav files under {args.data}")
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, min(args.files, len(paths))).astype(int)]
    scores: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for path in chosen:
        x, rate = sf.read(path, dtype="float32")
        if rate != 16000 or x.ndim != 1:
            raise SystemExit(f"{path}: {rate} Hz, {x.ndim} dims; give 16 kHz mono speech")
        x = x[: round(args.seconds * rate)]
        for delay in args.delays:
            delayed = np.concatenate([np.zeros(delay, np.float32), x])
            spectrum = causal_stft(delayed)
            outputs = {name: resynthesise(spectrum.abs(), phase, len(delayed))
                       for name, phase in phase_rules(spectrum).items()}
            smooth = envelope(spectrum.abs())
            outputs["centre advances, envelope"] = resynthesise(
                smooth, phase_rules(spectrum)["centre advances (phase: centre)"], len(delayed))
            outputs["harmonic (phase: harmonic)"] = overlap_add(
                harmonic_frames(delayed, torch.log(spectrum.abs() + 1e-9)), len(delayed))
            outputs["harmonic, envelope"] = overlap_add(harmonic_frames(delayed, torch.log(smooth + 1e-9)),
                                                        len(delayed))
            for name, y in outputs.items():
                r = evaluate(x, y[delay:], sample_rate=rate, metrics=["pesq_wb", "visqol_speech", "dnsmos"])
                scores.setdefault((name, delay), []).append(
                    (r["pesq_wb"], r["visqol_speech"], r["dnsmos_ovrl"]))
    print(f"{len(chosen)} files of {args.data}, {args.seconds:g} s each, true STFT magnitudes")
    print("| phase rule | delay (samples) | PESQ-WB | ViSQOL | DNSMOS OVRL |")
    print("|---|---|---|---|---|")
    rules = list(dict.fromkeys(name for name, _ in scores))
    for (name, delay), values in sorted(scores.items(), key=lambda kv: (rules.index(kv[0][0]), kv[0][1])):
        pesq, visqol, dnsmos = np.mean(values, axis=0)
        print(f"| {name} | {delay} | {pesq:.2f} | {visqol:.2f} | {dnsmos:.2f} |")


if __name__ == "__main__":
    main()
