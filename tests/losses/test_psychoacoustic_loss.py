"""Tests for nsac.losses.psychoacoustic: priority weighting and noise modulation (Zhen et al. 2020)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsac.dsp import psychoacoustic
from nsac.dsp.masking import noise_at_threshold
from nsac.errors import ParameterError
from nsac.losses.psychoacoustic import NoiseModulationLoss, PriorityWeightingLoss, frame_signal

RATE_HZ = 16_000
NOISE_CEILING_DB = 60.0


def _reference(n_samples: int, *, seed: int = 0, rate_hz: int = RATE_HZ) -> np.ndarray:
    """A tone over quiet noise: one tonal masker and a noise floor, stationary."""
    rng = np.random.default_rng(seed)
    n = np.arange(n_samples)
    return 0.3 * np.sin(2 * np.pi * 1000 * n / rate_hz + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(n.size)


def _all_losses(**options: object) -> list[torch.nn.Module]:
    return [PriorityWeightingLoss(sample_rate=RATE_HZ, domain="magnitude", **options),  # type: ignore[arg-type]
            PriorityWeightingLoss(sample_rate=RATE_HZ, domain="db", **options),  # type: ignore[arg-type]
            NoiseModulationLoss(sample_rate=RATE_HZ, reduce="band", **options),  # type: ignore[arg-type]
            NoiseModulationLoss(sample_rate=RATE_HZ, reduce="bin", **options)]  # type: ignore[arg-type]


def test_identical_signals_cost_nothing() -> None:
    reference = torch.tensor(np.stack([_reference(4000, seed=s) for s in range(2)]))
    for loss in [*_all_losses(), *_all_losses(level="frame_peak")]:
        assert loss(reference, reference.clone()).item() == 0.0
    silence = torch.zeros(1, 2000)
    for loss in _all_losses():
        assert loss(silence, silence).item() == 0.0


@pytest.mark.parametrize("index", range(4))
def test_losses_pass_gradcheck_in_float64(index: int) -> None:
    generator = torch.Generator().manual_seed(index)
    reference = torch.tensor(_reference(512, seed=index)).unsqueeze(0)
    estimate = (reference + 0.05 * torch.randn(reference.shape, dtype=torch.float64, generator=generator))
    estimate.requires_grad_(True)
    loss = _all_losses(n_fft=256)[index]
    # the masks come from the detached reference: gradients flow through the estimate's spectrum only
    assert torch.autograd.gradcheck(lambda e: loss(reference, e), (estimate,))


def test_a_batch_costs_the_mean_of_its_items() -> None:
    reference = torch.tensor(np.stack([_reference(3000, seed=s) for s in range(3)]))
    estimate = reference + 0.02 * torch.randn(reference.shape, dtype=torch.float64,
                                              generator=torch.Generator().manual_seed(3))
    for loss in _all_losses():
        together = loss(reference, estimate)
        one_by_one = torch.stack([loss(reference[i:i + 1], estimate[i:i + 1]) for i in range(3)]).mean()
        torch.testing.assert_close(together, one_by_one, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("reduce", ["band", "bin"])
def test_noise_under_the_mask_costs_nothing_and_over_it_costs(reduce: str) -> None:
    reference = _reference(RATE_HZ)
    masking = psychoacoustic.masking_threshold(reference, sample_rate=RATE_HZ)
    lowest = np.minimum(masking.threshold_db.min(axis=0), NOISE_CEILING_DB)
    rng = np.random.default_rng(5)
    # per-bin periodogram values scatter (exponentially) around the PSD: 20 dB under keeps every bin masked
    under = noise_at_threshold(lowest, n_samples=reference.size, offset_db=-20.0, rng=rng)
    over = noise_at_threshold(lowest, n_samples=reference.size, offset_db=10.0, rng=rng)
    loss = NoiseModulationLoss(sample_rate=RATE_HZ, reduce=reduce)  # type: ignore[arg-type]
    ref = torch.tensor(reference).unsqueeze(0)
    assert loss(ref, ref + torch.tensor(under)).item() == 0.0
    assert loss(ref, ref + torch.tensor(over)).item() > 1.0


def test_priority_weighting_weighs_a_band_with_high_smr_more() -> None:
    reference = _reference(RATE_HZ)
    loss = PriorityWeightingLoss(sample_rate=RATE_HZ)
    ref = torch.tensor(reference).unsqueeze(0)
    weights = loss.weights(ref)[0, 2:-2]
    tone_bin = round(1000 * psychoacoustic.N_FFT / RATE_HZ)
    # the tone's bin stands 6.6 dB over its mask (masking index 6.025 + 0.275 z, less the 1.8 dB its two
    # neighbouring bins add to the masker's level): w = log10(10^0.66 + 1) = 0.75; a bin the tone masks
    # has p < m and w = log10(1 + 10^((p - m) / 10)) near 0
    assert torch.all(weights[:, tone_bin] > 0.7)
    assert torch.median(weights[:, tone_bin]) > 10 * torch.median(weights[:, tone_bin + 40])
    # the same error at the tone (high SMR) costs more than at a frequency the tone masks (low SMR)
    n = np.arange(reference.size)
    costs = {}
    for name, frequency_hz in (("tone", 1000.0), ("masked", 1000.0 + 40 * RATE_HZ / psychoacoustic.N_FFT)):
        error = 0.003 * np.sin(2 * np.pi * frequency_hz * n / RATE_HZ)
        costs[name] = loss(ref, ref + torch.tensor(error)).item()
    assert costs["tone"] > 10 * costs["masked"]


def test_losses_run_in_float32_on_any_leading_shape() -> None:
    reference = torch.tensor(np.stack([_reference(2000, seed=s) for s in range(4)]), dtype=torch.float32)
    estimate = reference + 0.01
    for loss in _all_losses():
        flat = loss(reference, estimate)
        assert flat.dtype == torch.float32 and flat.ndim == 0
        torch.testing.assert_close(loss(reference.reshape(2, 2, -1), estimate.reshape(2, 2, -1)), flat)


def test_frames_match_the_numpy_model_framing() -> None:
    signal = np.random.default_rng(1).standard_normal(1000)
    for hop in (128, 256, 333):
        centres = psychoacoustic.frame_centres(signal.size, hop=hop)
        expected = psychoacoustic.frames_at(signal, centres=centres, n_fft=512)
        got = frame_signal(torch.tensor(signal).unsqueeze(0), n_fft=512, hop=hop)[0]
        np.testing.assert_array_equal(got.numpy(), expected)


def test_bad_options_raise_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="domain"):
        PriorityWeightingLoss(sample_rate=RATE_HZ, domain="log")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="reduce"):
        NoiseModulationLoss(sample_rate=RATE_HZ, reduce="frame")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="sample_rate"):
        NoiseModulationLoss(sample_rate=4000)
    with pytest.raises(ParameterError, match="same shape"):
        NoiseModulationLoss(sample_rate=RATE_HZ)(torch.zeros(1, 100), torch.zeros(1, 101))
