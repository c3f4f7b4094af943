"""Figures the README quotes about LPCNet's training, from a checkpoint and the feature cache.

    python scripts/lpcnet_validation.py crossentropy runs/lpcnet/checkpoint.pt --data runs/lpcnet-data
    python scripts/lpcnet_validation.py sampling runs/lpcnet/checkpoint.pt --manifest ../shared/data/manifest.csv
    python scripts/lpcnet_validation.py speed --data runs/lpcnet-data --units 128 192 384 --threads 2

* crossentropy: teacher-forced cross-entropy without injected noise on 8 fixed batches (8 x 2400 samples,
  quantized features) of the validation speakers held out in the cache (valid.npz).
* sampling: the `lpcnet` codec with the checkpoint's weights on 4 s of 10 validation files (one per speaker,
  speakers held out of the manifest's train split as nsac.train.lpcnet_data holds them out), for several
  sampling settings: level of the output against the input, ViSQOL and DNSMOS.
* speed: forward + backward samples per second of the teacher-forced model at batch 32 x 2400.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

VALID_FILES = 10
CLIP_S = 4.0


def _model(checkpoint: Path):
    from nsac.train.lpcnet_train import LPCNetModel, TrainSettings

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    settings = TrainSettings(**state["settings"])
    model = LPCNetModel(settings.model_config())
    model.load_state_dict(state["model"])
    return model.eval(), settings, int(state["step"])


def crossentropy(checkpoint: Path, data: Path) -> None:
    from dataclasses import replace

    from nsac.train.lpcnet_data import LPCNetData
    from nsac.train.lpcnet_train import SequenceSampler, loss_of

    model, settings, step = _model(checkpoint)
    sampler = SequenceSampler(LPCNetData.load(data / "valid.npz"), replace(settings, batch=8, noise_levels=0.0))
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    with torch.no_grad():
        losses = [float(loss_of(model, sampler.batch(rng, generator, quantized_p=1.0), torch.device("cpu")))
                  for _ in range(8)]
    print(f"step {step}: teacher-forced cross-entropy without noise {np.mean(losses):.3f} nats")


def _validation_files(manifest: str) -> list[Path]:
    from nsac.train.data import load_corpus, speaker_split

    _, valid = speaker_split(load_corpus(manifest, split="train"), valid_fraction=0.03, seed=0)
    files, speakers = [], set()
    for item in valid:
        if item.speaker not in speakers and item.duration_s >= 2.5:
            speakers.add(item.speaker)
            files.append(item.path)
    return files[:VALID_FILES]


def sampling(checkpoint: Path, manifest: str) -> None:
    from nsac.train.lpcnet_train import export_checkpoint

    folder = tempfile.mkdtemp(prefix="nsac-lpcnet-")
    export_checkpoint(checkpoint, "lpcnet", data_dir=Path(folder), directory=folder)
    os.environ["NSAC_PRETRAINED_DIR"] = folder
    from nsac.audio import read
    from nsac.codecs import load_codec
    from nsac.codecs.lpcnet.synthesis import Sampling
    from nsac.codecs.lpcnet.vocoder_stream import load_vocoder
    from nsac.eval.metrics import evaluate

    codec, vocoder = load_codec("lpcnet"), load_vocoder()
    clips = [read(path, sample_rate=16000)[0][:, : round(CLIP_S * 16000)] for path in _validation_files(manifest)]
    packets = [codec.encode(clip) for clip in clips]
    for setting in (Sampling(), Sampling(voiced_slope=0.0), Sampling(floor=0.001, voiced_slope=0.0),
                    Sampling(floor=0.001)):
        vocoder.sampling = setting
        levels, scores = [], []
        for clip, coded in zip(clips, packets):
            decoded = codec.decode(coded, clip.shape[1])
            levels.append(np.sqrt(np.mean(decoded ** 2) / np.mean(clip ** 2)))
            scores.append(evaluate(clip[0], decoded[0], sample_rate=16000, metrics=["visqol_speech", "dnsmos"]))
        print(f"{setting}: level {20 * np.log10(np.mean(levels)):+.1f} dB, "
              f"ViSQOL {np.mean([s['visqol_speech'] for s in scores]):.3f}, "
              f"DNSMOS {np.mean([s['dnsmos_ovrl'] for s in scores]):.3f} ({len(clips)} files)")


def speed(data: Path, units: list[int], threads: int) -> None:
    from nsac.train.lpcnet_data import LPCNetData
    from nsac.train.lpcnet_train import LPCNetModel, SequenceSampler, TrainSettings, loss_of

    torch.set_num_threads(threads)
    cache = LPCNetData.load(data / "valid.npz")
    for size in units:
        settings = TrainSettings(gru_a_units=size, batch=32)
        sampler = SequenceSampler(cache, settings)
        model = LPCNetModel(settings.model_config())
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
        for i in range(6):
            if i == 2:
                start = time.time()
            loss = loss_of(model, sampler.batch(rng, generator, quantized_p=0.5), torch.device("cpu"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = (time.time() - start) / 4
        print(f"GRU_A {size}, {threads} thread(s): {settings.batch * 2400 / seconds / 1000:.1f} k samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["crossentropy", "sampling", "speed"])
    parser.add_argument("checkpoint", nargs="?", type=Path)
    parser.add_argument("--data", type=Path, default=Path("runs/lpcnet-data"))
    parser.add_argument("--manifest", default="../shared/data/manifest.csv")
    parser.add_argument("--units", type=int, nargs="+", default=[128, 192, 384])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.data, args.units, args.threads)
    elif args.checkpoint is None:
        parser.error(f"{args.what} needs a checkpoint")
    elif args.what == "crossentropy":
        crossentropy(args.checkpoint, args.data)
    else:
        sampling(args.checkpoint, args.manifest)


if __name__ == "__main__":
    main()
