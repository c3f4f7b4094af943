"""Tests for nsac.losses.adversarial: the hinge and LS-GAN values, feature matching, batching."""

from __future__ import annotations

import pytest
import torch

from nsac.errors import ParameterError
from nsac.losses.adversarial import discriminator_loss, feature_matching_loss, generator_loss


def _logits(value: float, shape: tuple[int, ...] = (2, 5)) -> list[torch.Tensor]:
    return [torch.full(shape, value), torch.full((shape[0], 3, 4), value)]


@pytest.mark.parametrize("kind,real,fake,expected", [
    ("hinge", 1.0, -1.0, 0.0),  # confident and right: nothing to learn
    ("hinge", 0.0, 0.0, 2.0),
    ("hinge", 2.0, 0.5, 1.5),
    ("lsgan", 1.0, 0.0, 0.0),
    ("lsgan", 0.0, 1.0, 2.0),
    ("lsgan", 0.5, 0.5, 0.5),
])
def test_discriminator_loss_values(kind: str, real: float, fake: float, expected: float) -> None:
    assert float(discriminator_loss(_logits(real), _logits(fake), kind=kind)) == pytest.approx(expected)


@pytest.mark.parametrize("kind,fake,expected", [
    ("hinge", 1.0, 0.0), ("hinge", -1.0, 2.0), ("lsgan", 0.0, 1.0), ("lsgan", 1.0, 0.0)])
def test_generator_loss_values(kind: str, fake: float, expected: float) -> None:
    assert float(generator_loss(_logits(fake), kind=kind)) == pytest.approx(expected)


def test_per_item_reduction_equals_items_one_by_one() -> None:
    gen = torch.Generator().manual_seed(0)
    real = [torch.randn(3, 7, generator=gen), torch.randn(3, 2, 5, generator=gen)]
    fake = [torch.randn(3, 7, generator=gen), torch.randn(3, 2, 5, generator=gen)]
    for kind in ("hinge", "lsgan"):
        per_item = discriminator_loss(real, fake, kind=kind, reduction="none")
        singles = [discriminator_loss([r[i : i + 1] for r in real], [f[i : i + 1] for f in fake], kind=kind)
                   for i in range(3)]
        torch.testing.assert_close(per_item, torch.stack(singles))
        torch.testing.assert_close(generator_loss(fake, kind=kind, reduction="none").mean(),
                                   generator_loss(fake, kind=kind))


def test_feature_matching_is_l1_and_optionally_relative() -> None:
    real = [[torch.ones(2, 4), torch.full((2, 3), 2.0)]]
    fake = [[torch.zeros(2, 4, requires_grad=True), torch.full((2, 3), 1.0, requires_grad=True)]]
    assert float(feature_matching_loss(real, fake).detach()) == pytest.approx(1.0)  # mean of |1-0| and |2-1|
    relative = float(feature_matching_loss(real, fake, relative=True).detach())
    assert relative == pytest.approx((1.0 + 0.5) / 2, rel=1e-6)
    feature_matching_loss(real, fake).backward()
    assert fake[0][0].grad is not None and real[0][0].grad is None


def test_mismatched_inputs_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(ParameterError, match="kind='wgan'"):
        generator_loss(_logits(0.0), kind="wgan")
    with pytest.raises(ParameterError, match="2 real but 1 fake"):
        discriminator_loss(_logits(0.0), _logits(0.0)[:1])
    with pytest.raises(ParameterError, match="empty"):
        generator_loss([])
