"""Train the codebooks of the 1.6 kb/s LPCNet quantizer on a folder of 16 kHz speech and ship them.

    python -m nsac.train.lpcnet_vq --data ../shared/data/speech/train --seed 0 \\
        --out nsac/codecs/lpcnet/data

Steps: LPCNet features of every file (padded to whole 40 ms packets), then (1) the three 1024-entry stages
of the end frame's c1..c17 by LBG, stage after stage, on a random subset of frames; (2) the middle frame's
switched-predictor codebooks (2048 + 1024 + 1024 signed entries) by Lloyd iterations on the residuals left by
the three predictors, computed from the *quantized* end frames exactly as the encoder will see them;
(3) statistics: the training distortion, how often each interpolation pair is best (the rarest pair is the
one the quantizer leaves out), how often the energy code clips. Writes ``lpcnet_vq_<sha8>.safetensors``
(float16) and a JSON note of how it was made next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from nsac.audio import read
from nsac.dsp.features import FRAME_SIZE, cepstral_distance_db, compute_features
from nsac.quant import lpcnet_quantizer as lq
from nsac.quant import vq

AUDIO_SUFFIXES = (".flac", ".wav", ".aiff", ".aif")
SILENCE_C0 = -12.0
"""Frames with c0 below this (digital silence, c0 = -12.5) are left out of the codebook training."""
PACKET_SAMPLES = FRAME_SIZE * lq.FRAMES_PER_PACKET


def file_features(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cepstrum (n, 18), period (n,), correlation (n,) of one file, n a multiple of 4 (zero-padded)."""
    audio, _ = read(path, sample_rate=16000)
    x = audio.mean(axis=0)
    padded = np.zeros(-(-x.size // PACKET_SAMPLES) * PACKET_SAMPLES, dtype=np.float64)
    padded[: x.size] = x
    f = compute_features(padded)
    return (f.cepstrum.astype(np.float32), f.pitch_period.astype(np.float32),
            f.pitch_correlation.astype(np.float32))


def all_features(files: list[str], workers: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(file_features, files, chunksize=8))


def end_and_delta_targets(features, codebooks: lq.LPCNetCodebooks, survivors: int):
    """Per packet of every file: end frame, quantized end frame, middle frame and the 3 delta targets."""
    targets, middles = [], []
    for cepstrum, _, _ in features:
        frames = cepstrum.astype(np.float64).reshape(-1, lq.FRAMES_PER_PACKET, lq.N_BANDS)
        end = frames[:, 3]
        energy = np.clip(np.rint((end[:, 0] - lq.ENERGY_MIN) / lq.ENERGY_STEP), 0, 127).astype(np.int64)
        stages, _ = vq.msvq_search(end[:, 1:], codebooks.stages, m=survivors)
        q_end = lq._end_frames(energy, stages, codebooks)
        left = np.concatenate([lq.INITIAL_MEMORY[None, :], q_end[:-1]], axis=0)
        targets.append(frames[:, 1][:, None, :] - lq._middle_predictions(left, q_end))
        middles.append(frames[:, 1])
    return np.concatenate(targets), np.concatenate(middles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of 16 kHz training speech (recursive)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "codecs/lpcnet/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage-frames", type=int, default=200_000, help="frames for the cepstrum stages")
    parser.add_argument("--delta-packets", type=int, default=120_000, help="packets for the middle frame")
    parser.add_argument("--iterations", type=int, default=12, help="Lloyd iterations per LBG split")
    parser.add_argument("--delta-iterations", type=int, default=20)
    parser.add_argument("--survivors", type=int, default=lq.DEFAULT_SURVIVORS)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    log = lambda message: print(f"[{time.time() - start:7.1f} s] {message}", flush=True)

    files = sorted(str(p) for p in Path(args.data).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        parser.error(f"no audio files under {args.data}")
    features = all_features(files, args.workers)
    cepstra = np.concatenate([f[0] for f in features]).astype(np.float64)
    n_frames = cepstra.shape[0]
    log(f"features of {len(files)} files: {n_frames} frames ({n_frames / 100 / 3600:.2f} h)")
    timings = {"features_s": round(time.time() - start, 1)}

    speech = cepstra[cepstra[:, 0] > SILENCE_C0]
    subset = speech[rng.choice(speech.shape[0], size=min(args.stage_frames, speech.shape[0]), replace=False)]
    stage_start = time.time()
    stages = vq.msvq_train(subset[:, 1:], stage_sizes=lq.STAGE_SIZES, iterations=args.iterations,
                           seed=args.seed)
    stages = [s.astype(np.float16).astype(np.float64) for s in stages]
    timings["stages_s"] = round(time.time() - stage_start, 1)
    log(f"cepstrum stages trained on {subset.shape[0]} frames")

    placeholder = tuple(np.zeros((k, lq.N_BANDS)) for k in lq.DELTA_SIZES)
    books = lq.LPCNetCodebooks(tuple(stages), placeholder)
    targets, _ = end_and_delta_targets(features, books, args.survivors)
    keep = rng.choice(targets.shape[0], size=min(args.delta_packets, targets.shape[0]), replace=False)
    delta_start = time.time()
    delta, delta_history = vq.switched_train(targets[keep], sizes=lq.DELTA_SIZES,
                                             iterations=args.delta_iterations, seed=args.seed, signed=True)
    delta = [d.astype(np.float16).astype(np.float64) for d in delta]
    timings["delta_s"] = round(time.time() - delta_start, 1)
    log(f"middle-frame codebooks trained on {keep.size} packets; MSE {np.round(delta_history, 4)}")
    books = lq.LPCNetCodebooks(tuple(stages), tuple(delta))

    # Statistics on the whole training set with the final (float16) tables.
    pair_counts = np.zeros((3, 3), dtype=np.int64)
    distances = {"end": [], "middle": [], "interpolated": []}
    clipped = 0
    for cepstrum, period, correlation in features:
        fields = lq.quantize_packets(cepstrum, period, correlation, codebooks=books, survivors=args.survivors)
        decoded = lq.dequantize_packets(fields, codebooks=books)
        d = cepstral_distance_db(cepstrum, decoded.cepstrum).reshape(-1, 4)
        distances["end"].append(d[:, 3])
        distances["middle"].append(d[:, 1])
        distances["interpolated"].append(d[:, [0, 2]].ravel())
        clipped += int(np.sum((fields[:, 0] == 0) | (fields[:, 0] == 127)))
        frames = cepstrum.astype(np.float64).reshape(-1, 4, lq.N_BANDS)
        q = decoded.cepstrum.reshape(-1, 4, lq.N_BANDS)
        left = np.concatenate([lq.INITIAL_MEMORY[None, :], q[:-1, 3]], axis=0)
        first, third = lq._interpolation_candidates(left, q[:, 1], q[:, 3])
        e0 = np.sum((first - frames[:, 0][:, None]) ** 2, axis=-1)
        e2 = np.sum((third - frames[:, 2][:, None]) ** 2, axis=-1)
        joint = (e0[:, :, None] + e2[:, None, :]).reshape(len(frames), 9).argmin(axis=1)
        np.add.at(pair_counts, np.divmod(joint, 3), 1)
    summary = {name: round(float(np.mean(np.concatenate(v))), 3) for name, v in distances.items()}
    log(f"training-set cepstral distance (dB): {summary}; interpolation pairs {pair_counts.tolist()}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()
    note = {
        "what": "codebooks of the LPCNet 1.6 kb/s quantizer (nsac.quant.lpcnet_quantizer)",
        "data": {"folder": str(args.data), "files": len(files), "frames": int(n_frames),
                 "hours": round(n_frames / 100 / 3600, 3), "speech_frames": int(speech.shape[0])},
        "stages": {"sizes": list(lq.STAGE_SIZES), "dims": lq.N_BANDS - 1,
                   "training_frames": int(subset.shape[0]), "algorithm": "LBG splitting, sequential stages",
                   "lloyd_iterations_per_split": args.iterations},
        "delta": {"sizes": list(lq.DELTA_SIZES), "dims": lq.N_BANDS, "training_packets": int(keep.size),
                  "algorithm": "switched-predictor Lloyd, signed", "iterations": int(delta_history.size),
                  "mse_history": [round(float(v), 5) for v in delta_history]},
        "survivors": args.survivors,
        "storage": "float16 safetensors",
        "seed": args.seed,
        "timings_s": {**timings, "total_s": round(time.time() - start, 1)},
        "machine": f"{os.cpu_count()} CPU cores visible, {args.workers} feature workers, "
                   f"numpy {np.__version__}",
        "git_revision": revision,
        "train_cepstral_distance_db": summary,
        "energy_codes_clipped": clipped,
        "interpolation_pair_counts": pair_counts.tolist(),
        "command": "python -m nsac.train.lpcnet_vq " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    tmp = out / "lpcnet_vq.tmp.safetensors"
    sha = vq.save_codebooks(tmp, books.to_tensors(), metadata={"seed": args.seed, "git_revision": revision},
                            dtype="float16")
    final = out / f"lpcnet_vq_{sha[:8]}.safetensors"
    tmp.replace(final)
    note["file"] = final.name
    note["sha256"] = sha
    (out / f"lpcnet_vq_{sha[:8]}.json").write_text(json.dumps(note, indent=2) + "\n")
    log(f"wrote {final} ({final.stat().st_size} bytes), sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
