"""Tests for nsac.losses.spectral: zero on equal signals, batch equals one by one, gradients, mel filters."""

from __future__ import annotations

import pytest
import torch

from nsac.errors import ParameterError
from nsac.losses.spectral import (
    MelSpectrogramLoss,
    MultiResolutionSTFTLoss,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

RATE_HZ = 16000
RESOLUTIONS = ((256, 64, 256), (128, 32, 96))
SCALES = ((256, 20), (128, 10))


def _losses() -> list[torch.nn.Module]:
    return [MultiResolutionSTFTLoss(RESOLUTIONS), MelSpectrogramLoss(sample_rate_hz=RATE_HZ, scales=SCALES)]


@pytest.mark.parametrize("index", [0, 1])
def test_zero_for_equal_signals_and_positive_otherwise(index: int) -> None:
    loss = _losses()[index]
    x = torch.randn(3, 1, 2000, generator=torch.Generator().manual_seed(0))
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(0.5 * x, x)) > 0.1


@pytest.mark.parametrize("index", [0, 1])
def test_a_batch_equals_its_items_one_by_one(index: int) -> None:
    loss = _losses()[index]
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 2000, generator=gen), torch.randn(4, 2000, generator=gen)
    per_item = loss(y, x, reduction="none")
    assert per_item.shape == (4,)
    singles = torch.stack([loss(y[i : i + 1], x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(per_item, singles, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss(y, x), per_item.mean())


@pytest.mark.parametrize("index", [0, 1])
def test_gradients_are_finite_even_on_silence(index: int) -> None:
    loss = _losses()[index]
    y = torch.zeros(2, 1, 1000, requires_grad=True)
    value = loss(y, torch.randn(2, 1, 1000))
    value.backward()
    assert torch.isfinite(y.grad).all()


def test_stft_loss_gradcheck_in_float64() -> None:
    loss = MultiResolutionSTFTLoss(((32, 8, 32),)).double()
    target = torch.randn(1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    output = torch.randn(1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    output.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda o: loss(o, target), (output,), eps=1e-6, atol=1e-4)


def test_mel_scale_round_trips_and_is_linear_below_1khz() -> None:
    hz = torch.tensor([0.0, 200.0, 1000.0, 4000.0, 8000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(hz)), hz)
    assert float(hz_to_mel(torch.tensor(500.0)) * 2) == pytest.approx(float(hz_to_mel(torch.tensor(1000.0))))


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(n_mels=40, n_fft=512, sample_rate_hz=RATE_HZ, f_min_hz=50.0)
    reference = librosa.filters.mel(sr=RATE_HZ, n_fft=512, n_mels=40, fmin=50.0)
    torch.testing.assert_close(ours, torch.from_numpy(reference).float(), atol=1e-6, rtol=1e-4)


def test_mel_filters_are_triangles_of_unit_area_in_hz() -> None:
    filters = mel_filterbank(n_mels=20, n_fft=1024, sample_rate_hz=RATE_HZ).double()
    bin_hz = RATE_HZ / 1024
    # Slaney normalisation: every triangle has area 1 (in filter-weight x Hz)
    areas = filters.sum(dim=1) * bin_hz
    torch.testing.assert_close(areas, torch.ones(20, dtype=torch.float64), atol=0.03, rtol=0)


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError, match="hop <= window <= n_fft"):
        MultiResolutionSTFTLoss(((128, 256, 128),))
    with pytest.raises(ParameterError, match="reduction='sum'"):
        MultiResolutionSTFTLoss(RESOLUTIONS)(torch.zeros(1, 500), torch.zeros(1, 500), reduction="sum")
    with pytest.raises(ParameterError, match="expected \\(batch, time\\)"):
        MelSpectrogramLoss(sample_rate_hz=RATE_HZ, scales=SCALES)(torch.zeros(500), torch.zeros(500))


def test_stft_loss_stays_bounded_on_a_silent_target():
    """A crop of digital silence must not blow the loss up (a training run diverged on one)."""
    from nsac.losses.spectral import MultiResolutionSTFTLoss

    torch.manual_seed(0)
    silent = torch.zeros(2, 1, 8000)
    quiet_noise = 1e-4 * torch.randn(2, 1, 8000)
    loss = MultiResolutionSTFTLoss()(quiet_noise, silent)
    assert torch.isfinite(loss) and float(loss) < 10.0
    speech_like = 0.1 * torch.randn(2, 1, 8000)
    assert float(MultiResolutionSTFTLoss()(speech_like, speech_like)) == 0.0
