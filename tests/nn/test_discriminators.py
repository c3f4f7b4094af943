"""Tests for nsac.nn.discriminators: output structure, batch independence, gradients."""

from __future__ import annotations

import pytest
import torch

from nsac.errors import ParameterError
from nsac.nn.discriminators import (
    CombinedDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleSTFTDiscriminator,
)

N_SAMPLES = 4000


def _small() -> list[torch.nn.Module]:
    return [MultiPeriodDiscriminator((2, 3, 5), channels=4, max_channels=16, n_layers=3),
            MultiScaleSTFTDiscriminator((256, 128), channels=4)]


@pytest.mark.parametrize("index", [0, 1])
def test_logits_and_features_per_sub_discriminator(index: int) -> None:
    torch.manual_seed(0)
    disc = _small()[index]
    x = torch.randn(3, 1, N_SAMPLES)
    logits, features = disc(x)
    assert len(logits) == len(features) == len(disc.discriminators)
    for logit, layers in zip(logits, features):
        assert logit.shape[0] == 3 and logit.ndim == 2
        assert all(layer.shape[0] == 3 for layer in layers)
        assert torch.equal(layers[-1].flatten(1), logit)


@pytest.mark.parametrize("index", [0, 1])
def test_batch_equals_items_one_by_one(index: int) -> None:
    torch.manual_seed(0)
    disc = _small()[index]
    x = torch.randn(3, 1, N_SAMPLES)
    batch_logits, _ = disc(x)
    for i in range(3):
        item_logits, _ = disc(x[i : i + 1])
        for batched, single in zip(batch_logits, item_logits):
            torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)


def test_combined_concatenates_and_passes_gradients() -> None:
    torch.manual_seed(0)
    parts = _small()
    disc = CombinedDiscriminator(parts)
    x = torch.randn(2, 1, N_SAMPLES, requires_grad=True)
    logits, features = disc(x)
    assert len(logits) == 3 + 2 and len(features) == 5
    sum(logit.mean() for logit in logits).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_period_discriminator_handles_lengths_not_a_multiple_of_the_period() -> None:
    disc = MultiPeriodDiscriminator((7,), channels=2, n_layers=2)
    logits, _ = disc(torch.randn(1, 1, 1001))
    assert logits[0].numel() > 0


def test_bad_input_shape_is_refused() -> None:
    with pytest.raises(ParameterError, match="expected \\(batch, 1, time\\)"):
        MultiScaleSTFTDiscriminator((128,), channels=2)(torch.zeros(2, 100))
