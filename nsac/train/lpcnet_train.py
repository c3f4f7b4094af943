"""Train LPCNet (teacher forcing, noise injection, adaptation to quantized features); resumable; export.

    python -m nsac.train.lpcnet_data --data ../shared/data/manifest.csv --out runs/lpcnet-data
    python -m nsac.train.lpcnet_train --data runs/lpcnet-data --out runs/lpcnet [--set gru_a_units=384 ...]
    python -m nsac.train.lpcnet_train --data runs/lpcnet-data --out runs/lpcnet --export lpcnet

A step draws ``batch`` sequences of ``sequence_frames`` frames (with two frames of features on each side
for the frame-rate network's convolutions) from random places of the training files, and

* injects noise into the signal the network is fed (``s_hat``), at a per-sequence level uniform in
  0..``noise_levels`` mu-law quantisation steps, Gaussian per sample. With ``noise_domain: excitation`` (the
  default, as LPCNet) the noise is added to the excitation's mu-law value and ``s_hat`` is re-synthesised
  through the frame's all-pole filter ``1 / A(z)``, so the fed-back errors have the spectrum a decoder's
  sampling errors have; with ``signal`` it is added to the signal's mu-law value directly. The LPC
  prediction ``p_t`` and the previous excitation are computed from ``s_hat``; the target is the mu-law code
  of ``s_t - p_t`` with the clean ``s_t``: the excitation that brings the noisy past back to the true
  signal. Decoding, the network is fed its own (imperfect) samples; trained this way it learns to correct
  them instead of drifting;
* takes the quantized features (``decode(encode(...))`` of the 1.6 kb/s quantizer) with probability
  ``quantized_p`` before ``adapt_step`` and ``quantized_p_adapt`` after it (the paper trains on clean features
  and adapts to quantized ones at the end).

Cross-entropy on the excitation's code, Adam with LPCNet's ``lr / (1 + decay * step)`` schedule, gradient
clipping. A checkpoint (model, optimiser, step, generator state) is written every ``checkpoint_every`` steps
and at the end; starting again with the same ``--out`` resumes from it. Runs on CPU or CUDA alike
(``--device``); on a GPU the paper's sizes fit (``--set gru_a_units=384 batch=64``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numba
import numpy as np
import torch
import torch.nn.functional as F

from nsac.codecs.lpcnet.model import FEATURE_CONTEXT_FRAMES, LPCNetConfig, LPCNetModel
from nsac.dsp.features import FRAME_SIZE, LPC_ORDER
from nsac.dsp.mulaw import MULAW_MU, N_MULAW_LEVELS
from nsac.errors import ParameterError
from nsac.train.lpcnet_data import LPCNetData

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "nsac-lpcnet-checkpoint"
DATA_FOLDER = "data"
"""A run folder's feature cache (nsac.train.lpcnet_data), built on the first run of a recipe."""
HISTORY = LPC_ORDER + 1
"""Signal samples needed before a sequence: 16 for the first prediction, one more for the one before it."""


@dataclass(frozen=True)
class TrainSettings:
    batch: int = 32
    sequence_frames: int = 15
    steps: int = 60000
    lr: float = 1e-3
    lr_decay: float = 5e-5
    grad_clip: float = 1.0
    noise_levels: float = 1.0
    noise_domain: str = "excitation"
    quantized_p: float = 0.3
    quantized_p_adapt: float = 1.0
    adapt_step: int = 45000
    checkpoint_every: int = 250
    valid_every: int = 1000
    valid_batches: int = 8
    log_every: int = 50
    threads: int = 2
    seed: int = 0
    init_from: str = ""
    """A new run (no checkpoint in the run folder) starts from these weights: ``pretrained:NAME`` or another
    run's checkpoint. Its step and hours carry over (the learning-rate schedule and the adaptation go on
    where they were); the optimiser starts afresh, its learning rate ramped up over ``init_warmup`` steps."""
    init_warmup: int = 200
    # model sizes (LPCNetConfig)
    pitch_embedding: int = 64
    conditioning: int = 128
    sample_embedding: int = 64
    gru_a_units: int = 192
    gru_b_units: int = 16

    def model_config(self) -> LPCNetConfig:
        names = {f.name for f in fields(LPCNetConfig)} - {"levels"}
        return LPCNetConfig(**{name: getattr(self, name) for name in names})


def parse_overrides(settings: TrainSettings, pairs: list[str]) -> TrainSettings:
    types = {f.name: f.type for f in fields(TrainSettings)}
    values = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise ParameterError(f"unknown setting {key!r}; known: {', '.join(sorted(types))}")
        kind = types[key]
        values[key] = float(value) if kind in (float, "float") else int(value) if kind in (int, "int") else value
    if values.get("noise_domain", "excitation") not in ("excitation", "signal"):
        raise ParameterError(f"noise_domain={values['noise_domain']!r}: use excitation or signal")
    return replace(settings, **values)


def mulaw_code(x: torch.Tensor) -> torch.Tensor:
    """Code 0..255 of ``x`` (full scale 1), as :func:`nsac.dsp.mulaw.mulaw_encode`."""
    x = x.clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(MULAW_MU * x.abs()) / math.log1p(MULAW_MU)
    return torch.round((y + 1.0) * (N_MULAW_LEVELS - 1) / 2.0).long().clamp(0, N_MULAW_LEVELS - 1)


def add_mulaw_noise(x: torch.Tensor, steps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``x`` with Gaussian noise of ``steps`` (B, 1) quantisation steps added in the mu-law domain."""
    x = x.clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(MULAW_MU * x.abs()) / math.log1p(MULAW_MU)
    y = y + steps * (2.0 / (N_MULAW_LEVELS - 1)) * torch.randn(x.shape, generator=generator)
    y = y.clamp(-1.0, 1.0)
    return torch.sign(y) * ((1.0 + MULAW_MU) ** y.abs() - 1.0) / MULAW_MU


@numba.njit(cache=True)
def _all_pole(excitation: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``y_t = x_t - sum_i a[t, i] y_{t-1-i}`` per row (zero before the first sample): x (B, T), a (B, T, 16)."""
    out = np.zeros_like(excitation)
    for b in range(excitation.shape[0]):
        for t in range(excitation.shape[1]):
            acc = excitation[b, t]
            for i in range(min(a.shape[2], t)):
                acc -= a[b, t, i] * out[b, t - 1 - i]
            out[b, t] = acc
    return out


def mulaw_noise(x: torch.Tensor, steps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The change that Gaussian noise of ``steps`` (B, 1) mu-law quantisation steps makes to ``x``."""
    return add_mulaw_noise(x, steps, generator) - x.clamp(-1.0, 1.0)


class SequenceSampler:
    """Random training sequences of one :class:`LPCNetData` as teacher-forcing tensors."""

    def __init__(self, data: LPCNetData, settings: TrainSettings) -> None:
        self.data = data
        self.settings = settings
        n = settings.sequence_frames
        starts = []
        for first, end in zip(data.file_start_frame[:-1], data.file_start_frame[1:]):
            lo, hi = first + FEATURE_CONTEXT_FRAMES, end - n - FEATURE_CONTEXT_FRAMES
            if hi > lo:
                starts.append(np.arange(lo, hi + 1))
        if not starts:
            raise ParameterError(f"no training file is longer than {n + 2 * FEATURE_CONTEXT_FRAMES} frames")
        self.starts = np.concatenate(starts)

    def batch(self, rng: np.random.Generator, generator: torch.Generator, *, quantized_p: float
              ) -> dict[str, torch.Tensor]:
        s = self.settings
        n, c = s.sequence_frames, FEATURE_CONTEXT_FRAMES
        k0 = rng.choice(self.starts, size=s.batch)
        which = (rng.random(s.batch) < quantized_p).astype(np.int64)
        frames = k0[:, None] + np.arange(-c, n + c)[None, :]
        samples = FRAME_SIZE * k0[:, None] + np.arange(-HISTORY, FRAME_SIZE * n)[None, :]
        features = self.data.features[which[:, None], frames]
        pitch = self.data.pitch_index[which[:, None], frames].astype(np.int64)
        lpc = self.data.lpc[which[:, None], frames[:, c:c + n]]
        signal = torch.from_numpy(self.data.signal[samples])
        noise_steps = torch.rand((s.batch, 1), generator=generator) * s.noise_levels
        # p_t for t = -1 .. T-1: lags 1..16, with the coefficients of t's frame
        a = torch.from_numpy(lpc[..., 1:]).repeat_interleave(FRAME_SIZE, dim=1)
        a = torch.cat([a[:, :1], a], dim=1)  # the sample before the sequence uses its first frame's LPC

        def predict(x: torch.Tensor) -> torch.Tensor:
            return -(x.unfold(1, LPC_ORDER, 1)[:, : FRAME_SIZE * n + 1].flip(-1) * a).sum(-1)

        if s.noise_domain == "excitation":
            excitation = signal[:, HISTORY - 1:] - predict(signal)
            change = mulaw_noise(excitation, noise_steps, generator)
            shaped = torch.from_numpy(_all_pole(change.numpy(), a.numpy()))
            noisy = torch.cat([signal[:, :HISTORY - 1], signal[:, HISTORY - 1:] + shaped], dim=1)
        else:
            noisy = add_mulaw_noise(signal, noise_steps, generator)
        prediction = predict(noisy)
        clean = signal[:, HISTORY - 1:]
        previous = noisy[:, HISTORY - 2:-1]
        return {
            "features": torch.from_numpy(features), "pitch_index": torch.from_numpy(pitch),
            "signal_code": mulaw_code(previous[:, 1:]), "prediction_code": mulaw_code(prediction[:, 1:]),
            "excitation_code": mulaw_code(previous[:, 1:] - prediction[:, :-1]),
            "target": mulaw_code(clean[:, 1:] - prediction[:, 1:]),
        }


def warm_start_lpcnet(model: LPCNetModel, source: str) -> tuple[int, float]:
    """Load `source` (``pretrained:NAME`` or an LPCNet checkpoint) into model; returns its (step, seconds)."""
    from nsac.train.warm_start import PRETRAINED_PREFIX

    if source.startswith(PRETRAINED_PREFIX):
        from nsac.pretrained import load_config, load_weights

        name = source[len(PRETRAINED_PREFIX):]
        weights, training = load_weights(name), load_config(name).get("training", {})
        step, seconds = int(training.get("step", 0)), 3600.0 * float(training.get("hours", 0.0))
    else:
        if not is_lpcnet_checkpoint(Path(source)):
            raise ParameterError(f"init_from={source!r} is neither pretrained:NAME nor an LPCNet checkpoint")
        state = torch.load(source, map_location="cpu", weights_only=True)
        weights, step, seconds = state["model"], int(state["step"]), float(state["elapsed_s"])
    try:
        model.load_state_dict({k: torch.as_tensor(v).float() for k, v in weights.items()})
    except RuntimeError as exc:
        raise ParameterError(f"init_from={source!r} does not fit this model's sizes: {exc}") from None
    return step, seconds


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def loss_of(model: LPCNetModel, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    batch = {k: v.to(device) for k, v in batch.items()}
    logits = model(batch["features"], batch["pitch_index"], batch["signal_code"], batch["prediction_code"],
                   batch["excitation_code"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["target"].reshape(-1))


def train(data_dir: Path, out: Path, settings: TrainSettings, *, device: str = "cpu") -> Path:
    """Train (or resume) in `out` up to ``settings.steps``; returns the checkpoint's path."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(data_dir, out, settings, device=device)
    finally:
        torch.set_num_threads(threads)


def _train(data_dir: Path, out: Path, settings: TrainSettings, *, device: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    train_sampler = SequenceSampler(LPCNetData.load(data_dir / "train.npz"), settings)
    valid_sampler = SequenceSampler(LPCNetData.load(data_dir / "valid.npz"), settings)
    model = LPCNetModel(settings.model_config()).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.9, 0.999), eps=1e-7)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    step, elapsed_s = 0, 0.0
    warmup_start = warmup_end = 0
    path = out / CHECKPOINT
    if path.exists():
        state = torch.load(path, map_location=dev, weights_only=True)
        if state["settings"] != asdict(settings):
            print(f"note: resuming with settings that differ from the checkpoint's: "
                  f"{ {k: v for k, v in asdict(settings).items() if state['settings'].get(k) != v} }")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_s = state["step"], state["elapsed_s"]
        rng.bit_generator.state = state["numpy_rng"]
        generator.set_state(state["torch_rng"])
        print(f"resumed at step {step} ({elapsed_s / 3600:.2f} h trained)", flush=True)
    elif settings.init_from:
        step, elapsed_s = warm_start_lpcnet(model, settings.init_from)
        print(f"started from {settings.init_from} at step {step} ({elapsed_s / 3600:.2f} h trained)",
              flush=True)
        warmup_start, warmup_end = step, step + settings.init_warmup
    valid_rng = np.random.default_rng(12345)
    valid_generator = torch.Generator().manual_seed(12345)
    valid_set = [valid_sampler.batch(valid_rng, valid_generator, quantized_p=1.0)
                 for _ in range(settings.valid_batches)]

    def save() -> None:
        state = {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "step": step,
                 "elapsed_s": elapsed_s, "settings": asdict(settings), "numpy_rng": rng.bit_generator.state,
                 "torch_rng": generator.get_state(), "git_revision": git_revision()}
        torch.save(state, out / (CHECKPOINT + ".tmp"))
        os.replace(out / (CHECKPOINT + ".tmp"), path)

    log = (out / "log.jsonl").open("a")
    running, t0 = [], time.time()
    while step < settings.steps:
        lr = settings.lr / (1.0 + settings.lr_decay * step)
        if step < warmup_end:
            lr *= (step + 1 - warmup_start) / settings.init_warmup
        for group in optimizer.param_groups:
            group["lr"] = lr
        quantized_p = settings.quantized_p if step < settings.adapt_step else settings.quantized_p_adapt
        model.train()
        loss = loss_of(model, train_sampler.batch(rng, generator, quantized_p=quantized_p), dev)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        step += 1
        running.append(loss.item())
        now = time.time()
        elapsed_s += now - t0
        t0 = now
        record = None
        if step % settings.log_every == 0:
            record = {"step": step, "loss": round(float(np.mean(running)), 4), "lr": lr,
                      "hours": round(elapsed_s / 3600, 3)}
            running = []
        if step % settings.valid_every == 0 or step == settings.steps:
            model.eval()
            with torch.no_grad():
                valid = float(np.mean([float(loss_of(model, b, dev)) for b in valid_set]))
            record = {**(record or {"step": step}), "valid_loss": round(valid, 4)}
            t0 = time.time()
        if record:
            print(json.dumps(record), flush=True)
            log.write(json.dumps(record) + "\n")
            log.flush()
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            save()
    return path


def is_lpcnet_checkpoint(path: Path) -> bool:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  # not a torch file at all: the generic loader says so
        return False
    return isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT


def export_checkpoint(checkpoint: Path, name: str, *, data_dir: Path | None = None,
                      directory: str | None = None) -> Path:
    """Register the checkpoint's model as pretrained NAME (safetensors + JSON with its provenance)."""
    from nsac.codecs.lpcnet.codebooks import CODEBOOKS_SHA256
    from nsac.pretrained import register

    checkpoint = Path(checkpoint)
    data_dir = data_dir or checkpoint.parent / DATA_FOLDER
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    settings = TrainSettings(**state["settings"])
    model = LPCNetModel(settings.model_config())
    model.load_state_dict(state["model"])
    summary = json.loads((data_dir / "data.json").read_text()) if (data_dir / "data.json").exists() else {}
    config = {
        "format": "nsac-pretrained", "version": 1, "name": name, "task": "lpcnet", "sample_rate_hz": 16000,
        "model": {"name": "lpcnet", **settings.model_config().to_dict()},
        "codebooks_sha256": CODEBOOKS_SHA256,
        "training": {"settings": state["settings"], "step": state["step"],
                     "hours": round(state["elapsed_s"] / 3600, 2), "data": summary},
        "git_revision": state["git_revision"],
    }
    return register(name, model.state_dict(), config, directory=directory)


def run_recipe(raw: dict, *, data: str | Path | None, out: str | Path | None, overrides: list[str]):
    """`nsac train lpcnet`: the feature cache in OUT/data (built once from --data), then train or resume.

    The recipe's ``lpcnet:`` section sets :class:`TrainSettings`; ``--set key=value`` (or
    ``lpcnet.key=value``) overrides them.
    """
    from nsac.train.trainer import TrainResult

    settings = TrainSettings(**(raw.get("lpcnet") or {}))
    settings = parse_overrides(settings, [o.removeprefix("lpcnet.") for o in overrides])
    run_dir = Path(out) if out is not None else Path("runs") / raw["name"]
    cache = run_dir / DATA_FOLDER
    if not (cache / "train.npz").exists():
        source = data or (raw.get("data") or {}).get("path")
        if not source:
            raise ParameterError("no training data: give --data FOLDER (or a manifest .csv)")
        from nsac.train.lpcnet_data import prepare

        prepare(source, cache, seed=settings.seed, log=lambda message: print(message, flush=True))
    start = time.time()
    state_before = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)["step"] \
        if (run_dir / CHECKPOINT).exists() else 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = train(cache, run_dir, settings, device=device)
    return TrainResult(step=settings.steps, steps_run=settings.steps - state_before, checkpoint=path,
                       seconds=time.time() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder written by nsac.train.lpcnet_data")
    parser.add_argument("--out", required=True, help="run folder (checkpoint, log); resumed if it exists")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a setting; defaults: {asdict(TrainSettings())}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--export", metavar="NAME", help="export the run's checkpoint as pretrained NAME")
    parser.add_argument("--export-dir", help="pretrained folder (default: the package's)")
    args = parser.parse_args(argv)
    if args.export:
        print(export_checkpoint(Path(args.out) / CHECKPOINT, args.export, data_dir=Path(args.data),
                                directory=args.export_dir))
        return 0
    train(Path(args.data), Path(args.out), parse_overrides(TrainSettings(), args.set), device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
