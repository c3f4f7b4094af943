"""Score autoencoder weights on validation clips of training speakers (never the test split).

The clips are every 75th file of the sorted training folder (20 files of speech/train). Each is coded and
decoded by the `autoencoder` codec at --bitrate, and DNSMOS (OVRL, SIG, BAK) and ViSQOL are averaged. With
--true-pitch the weights' harmonic head (phase: harmonic) is driven by the input's pitch instead of the
decoded one (the model's whole-signal forward at its eval codebooks, not the codec), which measures how
much the decoded pitch costs, and by the input's pitch as the `autoencoder-16k-pitch` codec sends it
(SENT_PITCH_BITS per 20 ms, one codebook fewer than --bitrate spends on codes alone); the median and the
share of voiced frames off by more than half an octave are printed too. Weights that send the pitch (model.pitch_bits) are scored as the codec runs them. This is
how the README's validation figures were taken::

    python scripts/autoencoder_validation.py autoencoder-16k-pitch --opus
    python scripts/autoencoder_validation.py autoencoder-16k-harmonic --true-pitch
    nsac export RUN/checkpoints/step_00003750.pt --name h3750 --pretrained-dir W
    python scripts/autoencoder_validation.py h3750 --pretrained-dir W --true-pitch
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import numpy as np

EVERY_NTH_FILE = 75
#: the pitch code of the --true-pitch "sent" row (as model.pitch_bits of the default weights)
SENT_PITCH_BITS = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="registered autoencoder weights")
    parser.add_argument("--pretrained-dir", type=Path, help="where the weights are (default: the package's)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/speech/train"))
    parser.add_argument("--bitrate", type=int, default=6000)
    parser.add_argument("--true-pitch", action="store_true", help="also decode with the input's pitch")
    parser.add_argument("--opus", action="store_true", help="also score Opus at the same bitrate")
    args = parser.parse_args()
    if args.pretrained_dir:
        os.environ["NSAC_PRETRAINED_DIR"] = str(args.pretrained_dir)
    import soundfile as sf
    import torch

    from nsac.codecs import load_codec
    from nsac.eval.perceptual import dnsmos, visqol_speech

    torch.set_num_threads(1)
    paths = sorted(args.data.rglob("*.flac"))[EVERY_NTH_FILE - 1 :: EVERY_NTH_FILE]
    if not paths:
        raise SystemExit(f"no .flac files under {args.data}")
    codec = load_codec("autoencoder", bitrate=args.bitrate, weights=args.weights)
    opus = load_codec("opus", bitrate=args.bitrate) if args.opus else None
    scores: dict[str, list[tuple[float, float, float, float]]] = {}
    pitch_errors: list[float] = []

    def score(name: str, x: np.ndarray, y: np.ndarray) -> None:
        d = dnsmos(y, sample_rate=16000)
        scores.setdefault(name, []).append((d["ovrl"], d["sig"], d["bak"], visqol_speech(x, y, sample_rate=16000)))

    for path in paths:
        x, rate = sf.read(path, dtype="float32")
        if rate != 16000 or x.ndim != 1:
            raise SystemExit(f"{path}: {rate} Hz, {x.ndim} dims; give 16 kHz mono speech")
        score("codec", x, codec.decode(codec.encode(x), num_samples=len(x)))
        if opus is not None:
            score(f"opus@{args.bitrate}", x, opus.decode(opus.encode(x), num_samples=len(x)))
        if args.true_pitch:
            decoded, true_pitch, sent_pitch, errors = _pitch_forwards(args.weights, x, args.bitrate)
            score("model, decoded pitch", x, decoded)
            score("model, true pitch", x, true_pitch)
            score(f"model, pitch sent ({SENT_PITCH_BITS} bits)", x, sent_pitch)
            pitch_errors.extend(errors)
    print(f"{args.weights} at {args.bitrate} b/s on {len(paths)} clips of {args.data}")
    print("| decoding | DNSMOS OVRL | SIG | BAK | ViSQOL |")
    print("|---|---|---|---|---|")
    for name, values in scores.items():
        ovrl, sig, bak, visqol = np.mean(values, axis=0)
        print(f"| {name} | {ovrl:.3f} | {sig:.3f} | {bak:.3f} | {visqol:.3f} |")
    if pitch_errors:
        e = np.asarray(pitch_errors)
        print(f"decoded pitch on voiced frames: median error {np.median(e):.3f} octave, "
              f"{100 * np.mean(e > 0.5):.1f} % off by more than half an octave")


def _pitch_forwards(weights: str, x: np.ndarray,
                    bitrate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """The model's eval forward with its decoded pitch and with the input's; the codes of the codebooks that
    fit beside a sent pitch at `bitrate`, decoded with that pitch; the voiced frames' pitch errors."""
    import torch

    from nsac.codecs.autoencoder.codec import load_autoencoder
    from nsac.codecs.autoencoder.stft_model import VOICED_PERIODICITY, HarmonicStftHead

    model = load_autoencoder(weights)
    head = model.decoder[-2]
    if not isinstance(head, HarmonicStftHead):
        raise SystemExit(f"{weights} has no harmonic head (phase: harmonic); leave out --true-pitch")
    if model.pitch_quantizer is not None:
        raise SystemExit(f"{weights} sends the input's pitch (model.pitch_bits); leave out --true-pitch")
    signal = torch.from_numpy(x)[None, None]
    f0_hz, periodicity = model.pitch_targets(signal)
    with torch.no_grad():
        decoded, _ = model(signal)
        errors = (head.log2_f0 - torch.log2(f0_hz)).abs()[periodicity >= VOICED_PERIODICITY].tolist()
        head.given_f0_hz = f0_hz
        try:
            true_pitch, _ = model(signal)
        finally:
            head.given_f0_hz = None
        sending = _sending(weights)
        bps_per_codebook = model.quantizer.bits_per_code * model.frame_rate_hz
        n_q = int((bitrate - SENT_PITCH_BITS * model.frame_rate_hz) // bps_per_codebook)
        sent = sending.decode_with_pitch(sending.encode(signal, n_q), sending.pitch_codes(signal), x.size)
    return decoded[0, 0].numpy(), true_pitch[0, 0].numpy(), sent[0, 0].numpy(), errors


@functools.lru_cache(maxsize=1)
def _sending(weights: str):
    """A copy of the weights' model that sends SENT_PITCH_BITS of the input's pitch (made once per run)."""
    import copy
    import dataclasses

    from nsac.codecs.autoencoder.codec import load_autoencoder

    model = copy.deepcopy(load_autoencoder(weights))
    model.config = dataclasses.replace(model.config, pitch_bits=SENT_PITCH_BITS)
    return model


if __name__ == "__main__":
    main()
