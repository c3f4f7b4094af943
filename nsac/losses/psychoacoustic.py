"""Psychoacoustic training losses: priority weighting and noise modulation (Zhen et al., IEEE SPL 2020).

Both compare an estimate with its reference frame by frame in the domain of psychoacoustic model 1
(:mod:`nsac.dsp.psychoacoustic`): frames of ``n_fft`` samples centred every ``hop`` samples from sample 0
(zeros beyond the ends), Hann window, the model's calibrated PSD. The masking threshold ``m`` and the
reference PSD ``p`` come from the numpy model run on the *detached* reference: no gradient flows through
the model (it is piecewise constant in the maskers anyway), only through the spectra of the signals.
This costs about 0.1 ms of CPU per frame and per batch item, at any device the tensors live on.

- Priority weighting (eqs. 22-23): ``w_f = log10(10^(p_f / 10) / 10^(m_f / 10) + 1)``, large where the
  reference stands far above its mask, and ``L_PW = mean_f w_f (X_f - X^_f)^2`` on spectral magnitudes
  (``domain="magnitude"``, the paper, normalised so a full-scale sine peaks at 1) or on the dB PSD
  (``domain="db"``, the authors' code). The mean over bins (not the paper's sum) keeps the scale
  independent of ``n_fft``.
- Noise modulation (eq. 24): with the noise ``x^ - x`` and its calibrated PSD ``N_f``, ``L_NM =
  max_b ReLU(N_b / M_b - 1)`` over critical bands b (integer Bark; ``reduce="band"``, the paper) or over
  FFT bins (``reduce="bin"``, the authors' code); ``M`` is the mask power ``10^(m / 10)``. Zero while the
  noise stays under the mask everywhere.

Each loss is the mean over frames and batch items, so a batch gives the mean of its items' losses.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from nsac.dsp import psychoacoustic as _pam
from nsac.errors import ParameterError

Domain = Literal["magnitude", "db"]
Reduce = Literal["band", "bin"]

N_FFT = _pam.N_FFT
"""Frame length of both losses (the model's FFT size)."""
PSD_FLOOR_DB = -20.0
"""Power added to every bin of the dB PSD, in dB SPL (well under the threshold in quiet, about -5 dB at its
lowest), so the log and its gradient stay finite in silence."""


def frame_signal(signal: torch.Tensor, *, n_fft: int, hop: int) -> torch.Tensor:
    """Frames centred at samples 0, hop, 2 hop, ... (as :func:`nsac.dsp.psychoacoustic.frame_centres`).

    (batch, samples) -> (batch, n_frames, n_fft), zeros beyond the signal; differentiable.
    """
    n_samples = signal.shape[-1]
    count = len(range(0, max(n_samples, 1), hop))
    half = n_fft // 2
    right = max(0, (count - 1) * hop + n_fft - half - n_samples)
    padded = torch.nn.functional.pad(signal, [half, right])
    return padded.unfold(-1, n_fft, hop)[..., :count, :]


class _ModelLoss(torch.nn.Module):
    """Shared set-up: rate, framing, calibration and the masks from the numpy model on the reference."""

    window: torch.Tensor

    def __init__(self, *, sample_rate: int, n_fft: int = N_FFT, hop: int | None = None,
                 level: _pam.Level = "full_scale") -> None:
        super().__init__()
        self.tables = _pam.model_tables(sample_rate=sample_rate, n_fft=n_fft)
        self.sample_rate = int(sample_rate)
        self.n_fft = n_fft
        self.hop = n_fft // 2 if hop is None else int(hop)
        if self.hop <= 0:
            raise ParameterError(f"hop={hop} must be a positive number of samples")
        if level not in ("full_scale", "frame_peak"):
            raise ParameterError(f"level={level!r} must be 'full_scale' or 'frame_peak'")
        self.level: _pam.Level = level
        self.register_buffer("window", torch.as_tensor(np.array(self.tables.window)), persistent=False)

    def _spectrum(self, signal: torch.Tensor) -> torch.Tensor:
        """Complex spectrum of the Hann-windowed frames, (batch, frames, n_fft // 2 + 1)."""
        frames = frame_signal(signal, n_fft=self.n_fft, hop=self.hop)
        return torch.fft.rfft(frames * self.window.to(signal.dtype), dim=-1)

    def _power_spl(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Calibrated PSD as power (10^(P / 10)), same units as the mask power."""
        return (spectrum.real ** 2 + spectrum.imag ** 2) * 10.0 ** (self.tables.psd_offset_db / 10.0)

    def _masking(self, reference: torch.Tensor) -> _pam.Masking:
        ref = reference.detach().to("cpu", torch.float64).numpy()
        centres = _pam.frame_centres(ref.shape[-1], hop=self.hop)
        frames = _pam.frames_at(ref, centres=centres, n_fft=self.n_fft)
        masking = _pam.analyze(frames, sample_rate=self.sample_rate, level=self.level)
        if self.level == "frame_peak":
            # the model's PSD was shifted per frame; shift its threshold back to the signal's own scale
            shift = masking.psd_db - _pam.power_spectrum_db(frames, sample_rate=self.sample_rate)
            return _pam.Masking(psd_db=masking.psd_db - shift, threshold_db=masking.threshold_db - shift,
                                tonal_db=masking.tonal_db - shift, noise_db=masking.noise_db - shift,
                                tables=masking.tables)
        return masking

    @staticmethod
    def _pair(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if reference.shape != estimate.shape:
            raise ParameterError(f"reference {tuple(reference.shape)} and estimate {tuple(estimate.shape)} "
                                 f"must have the same shape (batch, samples)")
        if reference.ndim == 0 or reference.shape[-1] == 0:
            raise ParameterError("the signals are empty; expected shape (batch, samples)")
        return reference.reshape(-1, reference.shape[-1]), estimate.reshape(-1, estimate.shape[-1])


class PriorityWeightingLoss(_ModelLoss):
    """Spectral error weighted by how far the reference stands above its masking threshold (eqs. 22-23).

    Parameters
    ----------
    sample_rate : int
        Hz, 8 to 48 kHz.
    n_fft, hop : int
        Frame length and hop in samples (default 512 and n_fft / 2).
    domain : {"magnitude", "db"}
        Squared error of normalised magnitudes (paper) or of dB PSDs (authors' code).
    level : {"full_scale", "frame_peak"}
        Calibration of the model (:mod:`nsac.dsp.psychoacoustic`).

    ``forward(reference, estimate)``: tensors of shape (batch, samples) (or (samples,), or any leading
    dims), same dtype; returns the scalar loss, 0 for identical signals.
    """

    def __init__(self, *, sample_rate: int, n_fft: int = N_FFT, hop: int | None = None,
                 domain: Domain = "magnitude", level: _pam.Level = "full_scale") -> None:
        super().__init__(sample_rate=sample_rate, n_fft=n_fft, hop=hop, level=level)
        if domain not in ("magnitude", "db"):
            raise ParameterError(f"domain={domain!r} must be 'magnitude' or 'db'")
        self.domain: Domain = domain

    def weights(self, reference: torch.Tensor) -> torch.Tensor:
        """``w_f = log10(10^((p_f - m_f) / 10) + 1)`` of the reference, (batch, frames, bins), no gradient."""
        ref, _ = self._pair(reference, reference)
        masking = self._masking(ref)
        excess = (masking.psd_db - masking.threshold_db) * (math.log(10.0) / 10.0)
        weights = np.logaddexp(0.0, excess) / math.log(10.0)
        return torch.as_tensor(weights, dtype=ref.dtype, device=ref.device)

    def forward(self, reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        ref, est = self._pair(reference, estimate)
        weights = self.weights(ref)
        ref_power, est_power = self._power_spl(self._spectrum(ref)), self._power_spl(self._spectrum(est))
        if self.domain == "magnitude":
            full_scale = 10.0 ** (_pam.FULL_SCALE_SPL_DB / 10.0)  # full-scale sine peak -> magnitude 1
            tiny = torch.finfo(ref.dtype).tiny
            difference = torch.sqrt(ref_power / full_scale + tiny) - torch.sqrt(est_power / full_scale + tiny)
        else:
            floor = 10.0 ** (PSD_FLOOR_DB / 10.0)
            difference = 10.0 * (torch.log10(ref_power + floor) - torch.log10(est_power + floor))
        return torch.mean(weights * difference ** 2)


class NoiseModulationLoss(_ModelLoss):
    """How far the coding noise rises above the reference's masking threshold, worst band per frame (eq. 24).

    Parameters
    ----------
    sample_rate : int
        Hz, 8 to 48 kHz.
    n_fft, hop : int
        Frame length and hop in samples (default 512 and n_fft / 2).
    reduce : {"band", "bin"}
        Maximum over critical bands (paper) or over FFT bins (authors' code).
    level : {"full_scale", "frame_peak"}
        Calibration of the model.

    ``forward(reference, estimate)``: tensors of shape (batch, samples); returns the scalar loss, 0 when
    the noise ``estimate - reference`` is under the mask in every band (bin) of every frame.
    """

    band_matrix: torch.Tensor

    def __init__(self, *, sample_rate: int, n_fft: int = N_FFT, hop: int | None = None,
                 reduce: Reduce = "band", level: _pam.Level = "full_scale") -> None:
        super().__init__(sample_rate=sample_rate, n_fft=n_fft, hop=hop, level=level)
        if reduce not in ("band", "bin"):
            raise ParameterError(f"reduce={reduce!r} must be 'band' or 'bin'")
        self.reduce: Reduce = reduce
        band_of_bin = self.tables.band_of_bin - self.tables.band_of_bin[0]
        membership = np.eye(int(band_of_bin[-1]) + 1)[band_of_bin]  # (bins, bands) 0/1
        self.register_buffer("band_matrix", torch.as_tensor(membership), persistent=False)

    def mask_power(self, reference: torch.Tensor) -> torch.Tensor:
        """Mask power ``10^(m / 10)`` per bin of the reference, (batch, frames, bins), no gradient."""
        ref, _ = self._pair(reference, reference)
        threshold = self._masking(ref).threshold_db
        return torch.as_tensor(10.0 ** (threshold / 10.0), dtype=ref.dtype, device=ref.device)

    def forward(self, reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        ref, est = self._pair(reference, estimate)
        mask = self.mask_power(ref)
        noise = self._power_spl(self._spectrum(est - ref))
        if self.reduce == "band":
            bands = self.band_matrix.to(ref.dtype)
            noise, mask = noise @ bands, mask @ bands
        excess = torch.relu(noise / mask - 1.0)
        return torch.mean(excess.amax(dim=-1))


__all__ = ["N_FFT", "PSD_FLOOR_DB", "NoiseModulationLoss", "PriorityWeightingLoss", "frame_signal"]
