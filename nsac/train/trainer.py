"""The training loop every recipe runs: one process or many under torchrun, GAN or not, with exact resume.

One step (per process; DDP averages the gradients)::

    output = G(input)
    [GAN, step >= disc_start_step]  D step: loss_D(D(target), D(output.detach())) -> clip -> AdamW
    G step: reconstruction + model aux [+ adversarial + feature matching, D frozen] -> clip -> AdamW -> EMA

then, by the step count: log (train_log.csv), validate (valid_log.csv, plots), save (checkpoints/). A run
folder with a checkpoint is resumed from it: same weights, optimizer moments, RNG states and data position,
so a run stopped and resumed ends where an uninterrupted one does.
"""

from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nsac.errors import ParameterError
from nsac.train import checkpoint as ckpt
from nsac.train.config import OptimConfig, Recipe
from nsac.train.ddp import Distributed, threads_per_process
from nsac.train.log import LOSSES_PLOT, TRAIN_LOG, VALID_LOG, VALID_PLOT, CsvLog, plot_log
from nsac.train.models import build_model
from nsac.train.objective import Objective, build_discriminator, split_output
from nsac.train.progress import progress_bar
from nsac.train.recipes import RESUMABLE_KEYS, differences, recipe_from_dict, recipe_to_dict
from nsac.train.setup_data import TrainingData, prepare_data
from nsac.train.validate import usable_metrics, validate
from nsac.train.warm_start import warm_start

#: per-process seed for training-time randomness (noise, dropout): distinct per rank, fixed by the recipe seed
_PROCESS_SEED_STRIDE = 1_000_003
#: differing keys shown in a resume refusal
_MAX_DIFFERENCES_SHOWN = 4


@dataclass(frozen=True)
class TrainResult:
    """What a call to `train` did."""

    step: int  # the step the run stands at
    steps_run: int  # steps taken by this call
    checkpoint: Path  # last.pt
    seconds: float
    main_process: bool = True  # False on the other processes of a torchrun job (they print nothing)


def learning_rate(step: int, base_lr: float, optim: OptimConfig, *, global_batch: int) -> float:
    """The learning rate of step `step` (0-based): batch scaling, linear warm-up, then the decay schedule."""
    ratio = global_batch / optim.reference_batch
    lr = base_lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[optim.lr_scaling]
    if optim.warmup_steps:
        lr *= min(1.0, (step + 1) / optim.warmup_steps)
    if optim.schedule == "cosine":
        progress = min(1.0, step / optim.decay_steps)
        lr *= optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    elif optim.schedule == "exponential":
        lr *= optim.min_lr_ratio ** (step / optim.decay_steps)
    return lr


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def _adamw(params: Any, lr: float, optim: OptimConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, betas=(optim.beta1, optim.beta2), weight_decay=optim.weight_decay)


def _clip(module: nn.Module, max_norm: float) -> float:
    if max_norm <= 0:
        return math.nan
    return float(torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm))


class Trainer:
    """Builds a recipe's models, data and optimizers in `run_dir`, resumes what is there, and trains."""

    def __init__(self, recipe: Recipe, run_dir: Path, context: Distributed) -> None:
        self.recipe, self.run_dir, self.context = recipe, Path(run_dir), context
        torch.set_num_threads(threads_per_process(recipe.train.threads, context))
        self.config_dict = recipe_to_dict(recipe)
        # a checkpoint of another recipe or other settings is refused before any data is read or coded
        self._saved = self._load_resumable(ckpt.last_path(self.run_dir))
        self.data: TrainingData = prepare_data(recipe, context)
        self.metrics, skipped = usable_metrics(recipe.train.metrics)
        if skipped and context.is_main:
            for name, why in skipped.items():
                print(f"nsac train: validation skips {name}: {why}")
        torch.manual_seed(recipe.seed)  # identical initial weights in every process
        rate = recipe.data.sample_rate_hz
        self.model = build_model(recipe.model.name, recipe.model.config, sample_rate_hz=rate)
        self.model = self.model.to(context.device)
        self.discriminator = build_discriminator(recipe.discriminator)
        if self.discriminator is not None:
            self.discriminator = self.discriminator.to(context.device)
        self.ema = self._new_ema() if recipe.optim.ema_decay > 0 else None
        self.objective = Objective(recipe.loss, sample_rate_hz=rate).to(context.device)
        self.optim_g = _adamw(self.model.parameters(), recipe.optim.lr, recipe.optim)
        self.optim_d = (_adamw(self.discriminator.parameters(), recipe.optim.lr_d, recipe.optim)
                        if self.discriminator is not None else None)
        self.global_batch = recipe.data.batch_size * context.world_size
        self.step = 0
        self._resume_or_seed()
        if context.active:
            ids = [context.device.index] if context.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)
            if self.discriminator is not None:
                self.discriminator = DistributedDataParallel(self.discriminator, device_ids=ids)
        self.train_log = CsvLog(self.run_dir / TRAIN_LOG)
        self.valid_log = CsvLog(self.run_dir / VALID_LOG)
        self._plot_note_shown = False

    # --- state ------------------------------------------------------------------------------------------
    def _new_ema(self) -> nn.Module:
        ema = copy.deepcopy(self.model)
        ema.requires_grad_(False)
        return ema

    def _load_resumable(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        state = ckpt.load(path)
        self._check_resumable(state, path)
        return state

    def _resume_or_seed(self) -> None:
        state, self._saved = self._saved, None
        if state is None:
            if self.recipe.train.init_from:
                report = warm_start(self.model, self.recipe.train.init_from)
                if self.ema is not None:
                    self.ema.load_state_dict(self.model.state_dict())
                if self.context.is_main:
                    print(f"nsac train: started from {self.recipe.train.init_from}: {len(report['copied'])} "
                          f"tensors copied, {len(report['grown'])} grown, {len(report['fresh'])} fresh")
            torch.manual_seed((self.recipe.seed + 1) * _PROCESS_SEED_STRIDE + self.context.rank)
            return
        self.model.load_state_dict(state["model"])
        self.optim_g.load_state_dict(state["optim_g"])
        if self.discriminator is not None and self.optim_d is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.optim_d.load_state_dict(state["optim_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        rng = state["rng"]
        if self.context.rank < len(rng) and state["world_size"] == self.context.world_size:
            ckpt.set_rng_state(rng[self.context.rank], self.context.device)
        else:
            torch.manual_seed((self.recipe.seed + 1) * _PROCESS_SEED_STRIDE + self.context.rank + self.step)
            if self.context.is_main:
                print(f"nsac train: resuming {state['world_size']}-process checkpoint with "
                      f"{self.context.world_size} processes: the data order and noise differ from an "
                      "uninterrupted run")

    def _check_resumable(self, state: dict[str, Any], path: Path) -> None:
        if state["recipe"] != self.recipe.name:
            raise ParameterError(
                f"{path} was written by recipe {state['recipe']!r}, not {self.recipe.name!r}: resume it with "
                f"`nsac train {state['recipe']} --out {self.run_dir}`, or give another --out")
        # the checkpoint's recipe read with today's fields: a field added since then compares at its default
        try:
            saved = recipe_to_dict(recipe_from_dict(state["config"]))
        except ParameterError:
            saved = state["config"]
        changed = [d for d in differences(saved, self.config_dict)
                   if d[0] not in RESUMABLE_KEYS and d[0] != "name"]
        if changed:
            shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changed[:_MAX_DIFFERENCES_SHOWN])
            raise ParameterError(
                f"{path} was trained with other settings ({shown}); a resumed run may change only "
                f"{', '.join(sorted(RESUMABLE_KEYS))}: give another --out to start afresh")

    def save(self) -> Path:
        """Write checkpoints/last.pt (and a step copy if keep_checkpoints > 0); every process calls this."""
        rng = self.context.gather_bytes(ckpt.rng_state(self.context.device))
        path = ckpt.last_path(self.run_dir)
        if self.context.is_main:
            payload = {
                "format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.CHECKPOINT_VERSION,
                "recipe": self.recipe.name, "config": self.config_dict, "step": self.step,
                "git_revision": ckpt.git_revision(), "nsac_version": _nsac_version(),
                "world_size": self.context.world_size,
                "model": _unwrap(self.model).state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "discriminator": (_unwrap(self.discriminator).state_dict()
                                  if self.discriminator is not None else None),
                "optim_g": self.optim_g.state_dict(),
                "optim_d": self.optim_d.state_dict() if self.optim_d is not None else None,
                "rng": rng,
            }
            ckpt.save(payload, path)
            if self.recipe.train.keep_checkpoints > 0:
                ckpt.save(payload, ckpt.step_path(self.run_dir, self.step))
                ckpt.prune(self.run_dir, keep=self.recipe.train.keep_checkpoints)
        self.context.barrier()
        return path

    # --- one step ---------------------------------------------------------------------------------------
    def _set_lr(self) -> float:
        optim = self.recipe.optim
        lr = learning_rate(self.step, optim.lr, optim, global_batch=self.global_batch)
        for group in self.optim_g.param_groups:
            group["lr"] = lr
        if self.optim_d is not None:
            lr_d = learning_rate(self.step, optim.lr_d, optim, global_batch=self.global_batch)
            for group in self.optim_d.param_groups:
                group["lr"] = lr_d
        return lr

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        device = self.context.device
        source = batch["input"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        logged: dict[str, float] = {"lr": self._set_lr()}
        output, aux = split_output(self.model(source))
        discriminator, optim_d = self.discriminator, self.optim_d
        gan = self.step >= self.recipe.loss.disc_start_step
        if gan and discriminator is not None and optim_d is not None:
            loss_d = self.objective.discriminator(discriminator, output, target)
            optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            logged["grad_norm_d"] = _clip(discriminator, self.recipe.optim.grad_clip_norm)
            optim_d.step()
            logged["disc"] = float(loss_d.detach())
        terms = self.objective.reconstruction(output, target)
        loss = terms.pop("total") + sum(aux.values(), output.new_zeros(()))
        if gan and discriminator is not None:
            frozen = _unwrap(discriminator)  # no DDP hooks: its gradients are not wanted here
            frozen.requires_grad_(False)
            adversarial = self.objective.adversarial(frozen, output, target)
            frozen.requires_grad_(True)
            loss = loss + adversarial.pop("total")
            terms.update(adversarial)
        self.optim_g.zero_grad(set_to_none=True)
        loss.backward()
        logged["grad_norm"] = _clip(self.model, self.recipe.optim.grad_clip_norm)
        self.optim_g.step()
        self._update_ema()
        self.step += 1
        logged["loss"] = float(loss.detach())
        logged.update({name: float(value.detach()) for name, value in {**terms, **aux}.items()})
        return logged

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = self.recipe.optim.ema_decay
        model = _unwrap(self.model)
        for averaged, current in zip(self.ema.parameters(), model.parameters(), strict=True):
            averaged.lerp_(current.detach(), 1.0 - decay)
        for averaged_buffer, buffer in zip(self.ema.buffers(), model.buffers(), strict=True):
            averaged_buffer.copy_(buffer)

    # --- the loop ---------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        train = self.recipe.train
        start_step, started = self.step, time.perf_counter()
        if self.context.is_main:
            self.train_log.truncate_after(self.step)
            self.valid_log.truncate_after(self.step)
        if self.step >= train.max_steps:
            if self.context.is_main:
                print(f"nsac train: {self.run_dir} is at step {self.step} >= "
                      f"train.max_steps={train.max_steps}; raise max_steps (--set max_steps=N) to train on")
            return TrainResult(self.step, 0, ckpt.last_path(self.run_dir), 0.0, self.context.is_main)
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        bar = progress_bar(show=self.context.is_main and train.progress, total=train.max_steps,
                           initial=self.step, desc=self.recipe.name, unit="step", dynamic_ncols=True)
        try:
            for batch in self.data.loader(self.step, train.max_steps, self.context):
                for key, value in self.train_step(batch).items():
                    if math.isfinite(value):
                        sums[key] += value
                        counts[key] += 1
                bar.update()
                last = self.step == train.max_steps
                if self.step % train.log_every == 0 or last:
                    row = self.context.mean({k: sums[k] / counts[k] for k in sorted(sums)})
                    if self.context.is_main:
                        self.train_log.append({"step": self.step, **row})
                        bar.set_postfix(loss=f"{row.get('loss', math.nan):.4f}")
                    sums.clear()
                    counts.clear()
                validating = self.step % train.valid_every == 0 or last
                saving = self.step % train.checkpoint_every == 0 or last
                if validating:
                    self.run_validation()
                if (validating or saving) and self.context.is_main:
                    self.plot()
                if saving:
                    self.save()
        finally:
            bar.close()
        return TrainResult(self.step, self.step - start_step, ckpt.last_path(self.run_dir),
                           time.perf_counter() - started, self.context.is_main)

    def run_validation(self) -> dict[str, float]:
        if not self.data.valid_clips:
            return {}
        model = self.ema if self.ema is not None else _unwrap(self.model)
        scores = validate(model, self.data.valid_clips, objective=self.objective, metrics=self.metrics,
                          sample_rate_hz=self.recipe.data.sample_rate_hz, context=self.context)
        if self.context.is_main:
            self.valid_log.append({"step": self.step, **scores})
        return scores

    def plot(self) -> None:
        try:
            plot_log(self.train_log, self.run_dir / LOSSES_PLOT, title=f"{self.recipe.name}: training")
            plot_log(self.valid_log, self.run_dir / VALID_PLOT, title=f"{self.recipe.name}: validation")
        except ImportError:
            if not self._plot_note_shown:
                print("nsac train: no plots without matplotlib (pip install matplotlib); the CSV logs are "
                      "written")
                self._plot_note_shown = True


def _nsac_version() -> str:
    from nsac import __version__

    return __version__
