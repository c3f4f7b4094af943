"""The batched training-target pitch estimator (nsac.dsp.pitch_torch) on signals of known pitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsac.dsp.pitch_torch import frame_pitch, span_pitch, span_samples
from nsac.errors import ParameterError

RATE_HZ = 16000


def pulse_train(f0_hz: np.ndarray) -> torch.Tensor:
    """A band-limited wave (29 harmonics falling 6 dB/octave) whose pitch follows f0_hz, sample by sample."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / RATE_HZ
    harmonics = np.arange(1, 30)
    x = (np.sin(np.outer(phase, harmonics) + harmonics) / harmonics).sum(1)
    return torch.from_numpy(0.1 * x).float()


@pytest.mark.parametrize("f0_hz", [80.0, 123.4, 210.0, 270.0])
def test_a_steady_pitch_is_found_within_half_a_percent(f0_hz: float) -> None:
    x = pulse_train(np.full(RATE_HZ, f0_hz))[None]
    estimate, periodicity = frame_pitch(x, sample_rate_hz=RATE_HZ, hop_samples=80)
    assert estimate.shape == periodicity.shape == (1, 200)
    inner = slice(10, 190)  # away from the zeros before and after the signal
    assert np.abs(estimate[0, inner].numpy() / f0_hz - 1).max() < 0.005
    assert periodicity[0, inner].min() > 0.95


def test_a_glide_is_followed_and_noise_is_not_periodic() -> None:
    glide = np.linspace(100.0, 200.0, RATE_HZ)
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(RATE_HZ) * 0.1).float()
    estimate, periodicity = frame_pitch(torch.stack([pulse_train(glide), noise]), sample_rate_hz=RATE_HZ,
                                        hop_samples=80)
    centres = glide[np.arange(200) * 80 + 40]
    assert np.abs(estimate[0, 10:190].numpy() / centres[10:190] - 1).max() < 0.02
    assert periodicity[1].mean() < 0.3
    silence, silent_periodicity = frame_pitch(torch.zeros(1, 800), sample_rate_hz=RATE_HZ, hop_samples=80)
    assert torch.isfinite(silence).all() and float(silent_periodicity.max()) == 0.0


def test_a_span_cut_by_hand_gives_the_frame_estimate() -> None:
    """span_pitch reads only its span: what a streaming encoder relies on."""
    x = pulse_train(np.linspace(120.0, 180.0, RATE_HZ))[None]
    estimate, periodicity = frame_pitch(x, sample_rate_hz=RATE_HZ, hop_samples=80)
    span = span_samples(sample_rate_hz=RATE_HZ)
    for frame in (0, 3, 57, 199):
        end = frame * 80 + 40 + 160  # the frame's window is centred on sample 80 frame + 40
        cut = torch.nn.functional.pad(x, (span, span))[:, end : end + span]
        f0_hz, r = span_pitch(cut, sample_rate_hz=RATE_HZ)
        assert torch.allclose(f0_hz, estimate[:, frame], rtol=1e-5)
        assert torch.allclose(r, periodicity[:, frame], atol=1e-5)
    with pytest.raises(ParameterError, match="spans of"):
        span_pitch(torch.zeros(1, span - 1), sample_rate_hz=RATE_HZ)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ParameterError, match="batch, samples"):
        frame_pitch(torch.zeros(800), sample_rate_hz=RATE_HZ, hop_samples=80)
    with pytest.raises(ParameterError, match="pitch range"):
        frame_pitch(torch.zeros(1, 800), sample_rate_hz=RATE_HZ, hop_samples=80, min_hz=600, max_hz=500)
