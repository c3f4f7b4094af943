"""The trainer's objective with the psychoacoustic terms: on only when weighted, differentiable, as the losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nsac.errors import ParameterError
from nsac.losses.psychoacoustic import NoiseModulationLoss, PriorityWeightingLoss
from nsac.train.config import LossConfig
from nsac.train.objective import Objective

RATE_HZ = 16_000
N_SAMPLES = 4000
PSYCHOACOUSTIC_TERMS = ("priority_weighting", "noise_modulation")
#: the objective adds float32 terms; a direct call on the same tensors agrees to rounding
RELATIVE_TOLERANCE = 1e-6


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, output), each (2, 1, N_SAMPLES) float32: speech-like tones over noise, and a noisy copy."""
    rng = np.random.default_rng(seed)
    n = np.arange(N_SAMPLES) / RATE_HZ
    target = np.stack([0.2 * np.sin(2 * np.pi * f * n) * (1 + np.sin(2 * np.pi * 3 * n))
                       + 0.01 * rng.standard_normal(N_SAMPLES) for f in (220.0, 1300.0)])
    output = target + 0.03 * rng.standard_normal(target.shape)
    return (torch.tensor(target, dtype=torch.float32)[:, None],
            torch.tensor(output, dtype=torch.float32)[:, None])


def _config(**weights: float | str) -> LossConfig:
    return LossConfig(**{"stft_weight": 1.0, "mel_weight": 1.0, **weights})  # type: ignore[arg-type]


def test_terms_are_present_only_when_weighted() -> None:
    target, output = _pair()
    cases = {(): _config(),
             ("priority_weighting",): _config(priority_weight=2.0),
             ("noise_modulation",): _config(noise_modulation_weight=0.5),
             PSYCHOACOUSTIC_TERMS: _config(priority_weight=2.0, noise_modulation_weight=0.5)}
    for expected, config in cases.items():
        objective = Objective(config, sample_rate_hz=RATE_HZ)
        terms = objective.reconstruction(output, target)
        assert {name for name in PSYCHOACOUSTIC_TERMS if name in terms} == set(expected)
        assert (objective.priority is not None) == ("priority_weighting" in expected)
        assert (objective.noise_modulation is not None) == ("noise_modulation" in expected)


@pytest.mark.parametrize(("domain", "reduce", "level", "hop"),
                         [("magnitude", "band", "full_scale", 0), ("db", "bin", "frame_peak", 128)])
def test_values_match_the_loss_modules_called_directly(domain: str, reduce: str, level: str, hop: int) -> None:
    target, output = _pair(seed=1)
    config = _config(priority_weight=3.0, noise_modulation_weight=0.25, priority_domain=domain,
                     noise_modulation_reduce=reduce, psychoacoustic_level=level, psychoacoustic_hop_samples=hop)
    terms = Objective(config, sample_rate_hz=RATE_HZ).reconstruction(output, target)
    options = {"sample_rate": RATE_HZ, "hop": hop or None, "level": level}
    priority = PriorityWeightingLoss(domain=domain, **options)(target, output)  # type: ignore[arg-type]
    noise = NoiseModulationLoss(reduce=reduce, **options)(target, output)  # type: ignore[arg-type]
    torch.testing.assert_close(terms["priority_weighting"], priority, rtol=RELATIVE_TOLERANCE, atol=0.0)
    torch.testing.assert_close(terms["noise_modulation"], noise, rtol=RELATIVE_TOLERANCE, atol=0.0)
    assert float(priority) > 0 and float(noise) > 0
    expected_total = terms["stft"] + terms["mel"] + 3.0 * priority + 0.25 * noise
    torch.testing.assert_close(terms["total"], expected_total, rtol=RELATIVE_TOLERANCE, atol=0.0)


@pytest.mark.parametrize("term", PSYCHOACOUSTIC_TERMS)
def test_gradients_flow_through_each_term_to_the_output(term: str) -> None:
    target, output = _pair(seed=2)
    output.requires_grad_(True)
    weights = {"priority_weighting": {"priority_weight": 1.0},
               "noise_modulation": {"noise_modulation_weight": 1.0}}[term]
    config = LossConfig(stft_weight=0.0, mel_weight=0.0, **weights)  # only this term
    terms = Objective(config, sample_rate_hz=RATE_HZ).reconstruction(output, target)
    assert set(terms) == {term, "total"}
    terms["total"].backward()
    assert output.grad is not None
    assert torch.isfinite(output.grad).all() and float(output.grad.abs().sum()) > 0
    assert target.grad is None  # the masks come from the detached target


def test_a_model_in_front_gets_gradients_from_the_terms() -> None:
    target, _ = _pair(seed=3)
    model = torch.nn.Conv1d(1, 1, 5, padding=2)
    config = LossConfig(stft_weight=0.0, mel_weight=0.0, priority_weight=1.0, priority_domain="db",
                        noise_modulation_weight=1.0)
    Objective(config, sample_rate_hz=RATE_HZ).reconstruction(model(target), target)["total"].backward()
    assert model.weight.grad is not None and math.isfinite(float(model.weight.grad.norm()))
    assert float(model.weight.grad.norm()) > 0


@pytest.mark.parametrize(("settings", "key"), [
    ({"priority_weight": -1.0}, "loss.priority_weight"),
    ({"noise_modulation_weight": -0.1}, "loss.noise_modulation_weight"),
    ({"priority_domain": "log"}, "loss.priority_domain"),
    ({"noise_modulation_reduce": "mean"}, "loss.noise_modulation_reduce"),
    ({"psychoacoustic_level": "spl"}, "loss.psychoacoustic_level"),
    ({"psychoacoustic_hop_samples": -1}, "loss.psychoacoustic_hop_samples"),
])
def test_bad_settings_are_refused_naming_the_key(settings: dict[str, object], key: str) -> None:
    with pytest.raises(ParameterError, match=key):
        LossConfig(**settings)  # type: ignore[arg-type]
