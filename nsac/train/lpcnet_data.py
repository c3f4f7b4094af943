"""LPCNet's training set: every file's pre-emphasised signal with its clean and its 1.6 kb/s features.

    python -m nsac.train.lpcnet_data --data ../shared/data/manifest.csv --out runs/lpcnet-data

Each file is resampled to 16 kHz, given a random level (the network must work at any level, and the features
carry the level in c0), padded to whole 40 ms packets, and analysed once: the clean features
(:func:`nsac.dsp.features.compute_features`) and the features the decoder will see, ``decode(encode(...))``
with the shipped codebooks. Both are stored as the frame-rate network's input, pitch index and LPC, so that
training draws sequences by slicing arrays; nothing is computed per step but the noise injection.

The output is one ``.npz`` per split (``train``, ``valid``: speakers held out of the train split, never the
test split) with the arrays described in :class:`LPCNetData`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsac.audio import read
from nsac.dsp.features import (
    FRAME_SIZE,
    compute_features,
    lpc_from_cepstrum,
    network_input,
    pitch_embedding_index,
)
from nsac.dsp.lpc import PREEMPHASIS_COEFFICIENT, preemphasis
from nsac.quant import lpcnet_quantizer as lq
from nsac.train.data import load_corpus, speaker_split

PACKET_SAMPLES = FRAME_SIZE * lq.FRAMES_PER_PACKET
LEVEL_RANGE_DB = (-12.0, 6.0)
"""Random gain drawn per file, relative to a peak-normalised level of -6 dBFS."""


@dataclass(frozen=True)
class LPCNetData:
    """Concatenated files; frame ``k`` of the whole owns ``signal[160 k : 160 k + 160]``."""

    signal: np.ndarray
    """Pre-emphasised signal, full scale 1, float32, shape (160 n,)."""
    file_start_frame: np.ndarray
    """First frame of each file, int64, shape (files + 1,) (the last entry is n)."""
    features: np.ndarray
    """Frame-rate network input, float32, shape (2, n, 20): [0] clean, [1] quantized."""
    pitch_index: np.ndarray
    """Pitch embedding index, int16, shape (2, n)."""
    lpc: np.ndarray
    """``[1, a1..a16]`` per frame, float32, shape (2, n, 17)."""

    @property
    def n_frames(self) -> int:
        return int(self.features.shape[1])

    def save(self, path: Path) -> None:
        np.savez(path, signal=self.signal, file_start_frame=self.file_start_frame, features=self.features,
                 pitch_index=self.pitch_index, lpc=self.lpc)

    @classmethod
    def load(cls, path: Path) -> LPCNetData:
        with np.load(path) as arrays:
            return cls(**{name: arrays[name] for name in ("signal", "file_start_frame", "features",
                                                          "pitch_index", "lpc")})


def file_arrays(task: tuple[str, int]) -> dict[str, np.ndarray]:
    """The arrays of one file (path, seed): signal, features, pitch index and LPC, clean and quantized."""
    from nsac.codecs.lpcnet.codebooks import shipped_codebooks

    path, seed = task
    rng = np.random.default_rng(seed)
    audio, _ = read(path, sample_rate=16000)
    x = audio.mean(axis=0).astype(np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    gain_db = rng.uniform(*LEVEL_RANGE_DB)
    x = x * (10 ** ((gain_db - 6.0) / 20) / peak if peak > 0 else 1.0)
    padded = np.zeros(-(-x.size // PACKET_SAMPLES) * PACKET_SAMPLES)
    padded[: x.size] = x
    clean = compute_features(padded)
    decoded = lq.decode(lq.encode(clean.cepstrum, clean.pitch_period, clean.pitch_correlation,
                                  codebooks=shipped_codebooks()), codebooks=shipped_codebooks())
    quantized_lpc, _ = lpc_from_cepstrum(decoded.cepstrum)
    return {
        "signal": preemphasis(padded, coefficient=PREEMPHASIS_COEFFICIENT).astype(np.float32),
        "features": np.stack([
            network_input(clean.cepstrum, clean.pitch_period, clean.pitch_correlation),
            network_input(decoded.cepstrum, decoded.pitch_period, decoded.pitch_correlation)]),
        "pitch_index": np.stack([pitch_embedding_index(clean.pitch_period),
                                 pitch_embedding_index(decoded.pitch_period)]).astype(np.int16),
        "lpc": np.stack([clean.lpc, quantized_lpc]).astype(np.float32),
    }


def build(paths: list[str], *, seed: int, workers: int) -> LPCNetData:
    tasks = [(path, seed * 1_000_003 + i) for i, path in enumerate(paths)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(file_arrays, tasks, chunksize=4))
    frames = np.cumsum([0] + [p["features"].shape[1] for p in parts])
    return LPCNetData(signal=np.concatenate([p["signal"] for p in parts]),
                      file_start_frame=frames.astype(np.int64),
                      features=np.concatenate([p["features"] for p in parts], axis=1),
                      pitch_index=np.concatenate([p["pitch_index"] for p in parts], axis=1),
                      lpc=np.concatenate([p["lpc"] for p in parts], axis=1))


def prepare(source: str | Path, out: Path, *, seed: int = 0, valid_fraction: float = 0.03, limit: int = 0,
            workers: int | None = None, log=print) -> dict:
    """Write ``train.npz``, ``valid.npz`` and ``data.json`` for the corpus `source` into `out`."""
    start = time.time()
    workers = workers or min(2, os.cpu_count() or 1)
    items = load_corpus(source, split="train")
    train, valid = speaker_split(items, valid_fraction=valid_fraction, seed=seed)
    if limit:
        train, valid = train[:limit], valid[: max(1, limit // 8)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"source": str(source), "seed": seed}
    for name, subset in (("train", train), ("valid", valid)):
        data = build([str(item.path) for item in subset], seed=seed + (name == "valid"), workers=workers)
        data.save(out / f"{name}.npz")
        summary[name] = {"files": len(subset), "speakers": len({item.speaker for item in subset}),
                         "hours": round(data.n_frames / 100 / 3600, 3)}
        log(f"[{time.time() - start:6.1f} s] {name}: {summary[name]}")
    summary["seconds"] = round(time.time() - start, 1)
    (out / "data.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of speech, or a manifest CSV (its train split)")
    parser.add_argument("--out", required=True, help="folder for train.npz, valid.npz and data.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--valid-fraction", type=float, default=0.03, help="of the speakers, held out")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training files (tests)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    prepare(args.data, Path(args.out), seed=args.seed, valid_fraction=args.valid_fraction, limit=args.limit,
            workers=args.workers, log=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
