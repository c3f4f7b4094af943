"""Soft-to-hard scalar quantisation in torch: L sorted learnable centres, annealed softmax, histogram entropy.

Every latent value z is coded as the index of its nearest centre (Agustsson et al., "Soft-to-Hard Vector
Quantization for End-to-End Learning Compressible Representations", NeurIPS 2017; used for speech by
Kankanahalli, ICASSP 2018)::

    centres   c_0 < c_1 < ... < c_{L-1}        c_0 and the gaps softplus(g_i) + a small floor are the
                                               parameters, so the centres stay sorted and distinct
                                               whatever the optimiser does
    soft      p_l(z) = softmax_l(-sigma (z - c_l)^2),   z_soft = sum_l p_l(z) c_l
    hard      code(z) = argmin_l |z - c_l|,             z_hard = c_code(z)
    sigma     1 / (T * spacing)^2, spacing = (c_{L-1} - c_0) / (L - 1) (detached); the temperature T (in
              centre spacings) falls geometrically from `temperature_start` to `temperature_end` over
              `anneal_steps` training calls

While annealing, the forward pass uses z_soft (differentiable); from `anneal_steps` on it uses z_hard with
the straight-through estimator ``z_soft + (z_hard - z_soft).detach()`` (hard values forward, the soft
assignment's gradient backward, to the encoder and to the centres). Eval mode is always hard.

The backward pass keeps the soft assignment at `temperature_end`, so that temperature must stay moderate:
dz_soft/dz is about 2 sigma Var_p(c), which near a centre is ~0.3 at 0.5 spacings but ~0 at 0.05, where
only values near a decision boundary get any gradient. On speech (the recipe, annealed over 150 steps to
try it) a schedule from 1 to 0.05 spacings starved the encoder: the STFT loss rose from 2.5 to 9.9 as the
temperature fell, while 2 to 0.5 trained on through the switch to hard values (2.2 before, 2.6-3.1 after:
the quantisation noise the decoder had not yet seen).

Entropy estimate: the soft assignment histogram of a batch, per channel, q_{c,l} = mean over batch and
frames of p_l, is a differentiable estimate of the code distribution; H_c = -sum_l q_{c,l} log2 q_{c,l} bits
per code, and sum_c H_c times the frame rate is the estimated bit rate the model's rate penalty acts on.

Code counts for entropy coding: each training call adds the hard codes' histogram to ``code_counts``
(an EMA per channel, decay `counts_decay`), and ``code_frequencies`` holds them frozen as integer tables
(`nsac.bitstream.entropy_models.pmf_to_freqs`, 16-bit, every code >= 1 count), refreshed on every training
call. Both are buffers: saved, resumed and exported with the weights, so a codec reads the integers as they
are (identical on every machine) and never recomputes them from floats. All zeros means "never trained":
no tables. Under DDP, buffers follow rank 0 (DistributedDataParallel broadcasts them before each forward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nsac.bitstream.entropy_models import TABLE_PRECISION_BITS, pmf_to_freqs
from nsac.errors import ParameterError

#: the smallest gap between neighbouring centres, as a fraction of the initial spacing: the centres never
#: merge, so the spacing that scales the softmax never reaches zero
MIN_GAP_FRACTION = 1e-3
#: probabilities are floored here before log2, so an unused centre costs nothing and gives no NaN gradient
_PROBABILITY_FLOOR = 1e-12


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


def histogram_entropy_bits(histogram: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each row of a (..., L) histogram (rows need not sum to one): shape (...)."""
    q = histogram / histogram.sum(-1, keepdim=True).clamp_min(_PROBABILITY_FLOOR)
    return -(q * torch.log2(q.clamp_min(_PROBABILITY_FLOOR))).sum(-1)


class SoftToHardQuantizer(nn.Module):
    """Scalar quantiser of C channels with L shared learnable centres; see the module docstring.

    Shapes: latents (batch, channels, frames) -> (quantised latents of the same shape, soft assignment
    histogram (channels, L)); `encode` gives codes int64 (batch, channels, frames) in 0..L-1.

    Parameters
    ----------
    channels : C, latent channels (each has its own code counts and frequency table)
    n_centres : L, number of centres (log2 L bits per code in a fixed-length packet)
    centre_range : the centres start evenly spaced over [-centre_range, centre_range]
    temperature_start, temperature_end : softmax temperature in centre spacings, at the first training call
        and from `anneal_steps` on
    anneal_steps : training calls over which the temperature falls; from then on the forward is hard
        (straight-through)
    counts_decay : EMA decay of `code_counts` per training call
    """

    def __init__(self, *, channels: int, n_centres: int = 32, centre_range: float = 2.0,
                 temperature_start: float = 2.0, temperature_end: float = 0.5, anneal_steps: int = 2000,
                 counts_decay: float = 0.999) -> None:
        super().__init__()
        if channels < 1 or n_centres < 2:
            raise ParameterError(f"channels={channels} must be >= 1 and n_centres={n_centres} >= 2")
        if not centre_range > 0 or not temperature_start >= temperature_end > 0:
            raise ParameterError(f"centre_range={centre_range} must be > 0 and temperature_start="
                                 f"{temperature_start} >= temperature_end={temperature_end} > 0")
        if anneal_steps < 0 or not 0.0 < counts_decay < 1.0:
            raise ParameterError(f"anneal_steps={anneal_steps} must be >= 0 and counts_decay={counts_decay} "
                                 "in (0, 1)")
        self.channels, self.n_centres = int(channels), int(n_centres)
        self.temperature_start, self.temperature_end = float(temperature_start), float(temperature_end)
        self.anneal_steps, self.counts_decay = int(anneal_steps), float(counts_decay)
        gap = 2.0 * centre_range / (n_centres - 1)
        self.min_gap = MIN_GAP_FRACTION * gap
        self.first_centre = nn.Parameter(torch.tensor(-float(centre_range)))
        self.gap_logits = nn.Parameter(_inverse_softplus(torch.full((n_centres - 1,), gap - self.min_gap)))
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))
        self.register_buffer("code_counts", torch.zeros(channels, n_centres, dtype=torch.float64))
        self.register_buffer("code_frequencies", torch.zeros(channels, n_centres, dtype=torch.long))

    # --- the centres and the schedule -----------------------------------------------------------------
    def centres(self) -> torch.Tensor:
        """The L centres, strictly increasing: (L,)."""
        gaps = F.softplus(self.gap_logits) + self.min_gap
        return torch.cat([self.first_centre[None], self.first_centre + torch.cumsum(gaps, 0)])

    @property
    def bits_per_code(self) -> float:
        """Bits of one code in a fixed-length packet (log2 L)."""
        return math.log2(self.n_centres)

    def temperature(self) -> float:
        """The softmax temperature (centre spacings) at the current `anneal_step`."""
        if self.anneal_steps == 0:
            return self.temperature_end
        progress = min(1.0, int(self.anneal_step) / self.anneal_steps)
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** progress

    @property
    def annealed(self) -> bool:
        """True once the training forward pass is hard (straight-through)."""
        return int(self.anneal_step) >= self.anneal_steps

    def _check(self, z: torch.Tensor) -> None:
        if z.ndim != 3 or z.shape[1] != self.channels:
            raise ParameterError(f"latents of shape {tuple(z.shape)}; expected (batch, {self.channels}, "
                                 "frames)")

    # --- soft and hard assignment ---------------------------------------------------------------------
    def soft_assignment(self, z: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """p (batch, channels, frames, L): softmax over centres of -sigma (z - c)^2 (module docstring)."""
        centres = self.centres()
        temperature = self.temperature() if temperature is None else float(temperature)
        spacing = (centres[-1] - centres[0]).detach() / (self.n_centres - 1)
        sigma = 1.0 / (temperature * spacing) ** 2
        return torch.softmax(-sigma * (z[..., None] - centres) ** 2, dim=-1)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest centre of every value: int64 (batch, channels, frames)."""
        self._check(z)
        with torch.no_grad():
            return (z[..., None] - self.centres()).abs().argmin(-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The centres of codes (batch, channels, frames) in 0..L-1: float latents of the same shape."""
        if codes.ndim != 3 or codes.shape[1] != self.channels:
            raise ParameterError(f"codes of shape {tuple(codes.shape)}; expected (batch, {self.channels}, "
                                 "frames)")
        return self.centres()[codes]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantised latents, soft assignment histogram (channels, L): the batch's mean of p) of (B, C, T).

        Training mode advances the annealing step and the code counts; it returns the soft values while
        annealing and straight-through hard values after. Eval mode returns the hard values.
        """
        self._check(z)
        p = self.soft_assignment(z)
        histogram = p.mean(dim=(0, 2))
        codes = self.encode(z)
        hard = self.decode(codes)
        if not self.training:
            return hard, histogram
        soft = (p * self.centres()).sum(-1)
        quantised = soft + (hard - soft).detach() if self.annealed else soft
        self._update_counts(codes)
        self.anneal_step += 1
        return quantised, histogram

    # --- code counts ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _update_counts(self, codes: torch.Tensor) -> None:
        one_hot = F.one_hot(codes, self.n_centres).to(torch.float64)  # (B, C, T, L)
        batch = one_hot.sum(dim=(0, 2))
        batch = batch / batch.sum(-1, keepdim=True).clamp_min(1.0)
        self.code_counts.mul_(self.counts_decay).add_(batch, alpha=1.0 - self.counts_decay)
        self.code_frequencies.copy_(torch.from_numpy(self.frozen_frequencies(self.code_counts.cpu().numpy())))

    @torch.no_grad()
    def freeze_counts(self, counts: torch.Tensor) -> None:
        """Replace the code counts by `counts` (C, L) (e.g. the final weights' codes over training audio) and
        freeze them into `code_frequencies`."""
        counts = torch.as_tensor(counts, dtype=torch.float64)
        bad = not torch.all(torch.isfinite(counts)) or bool(torch.any(counts < 0))
        if counts.shape != self.code_counts.shape or bad:
            raise ParameterError(f"code counts must be finite and nonnegative of shape "
                                 f"{tuple(self.code_counts.shape)}; got {tuple(counts.shape)}")
        self.code_counts.copy_(counts / counts.sum(-1, keepdim=True).clamp_min(1.0))
        self.code_frequencies.copy_(torch.from_numpy(self.frozen_frequencies(self.code_counts.cpu().numpy())))

    @staticmethod
    def frozen_frequencies(counts: np.ndarray) -> np.ndarray:
        """Integer tables (C, L) summing to 2**16 from code counts (C, L); zeros where a row has no counts."""
        counts = np.asarray(counts, dtype=np.float64)
        tables = np.zeros(counts.shape, dtype=np.int64)
        filled = counts.sum(-1) > 0
        if np.any(filled):
            tables[filled] = pmf_to_freqs(counts[filled], precision_bits=TABLE_PRECISION_BITS)
        return tables

    def frequency_tables(self) -> np.ndarray | None:
        """The frozen integer tables (C, L) for range coding, or None when the quantiser never trained."""
        tables = self.code_frequencies.cpu().numpy().astype(np.int64)
        return None if np.any(tables.sum(-1) == 0) else tables

    def expected_bits_per_code(self) -> np.ndarray | None:
        """Per channel, the entropy (bits) of the frozen code distribution: (C,), or None when untrained."""
        tables = self.frequency_tables()
        return None if tables is None else histogram_entropy_bits(torch.from_numpy(tables).double()).numpy()
