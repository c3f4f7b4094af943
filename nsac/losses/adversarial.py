"""Adversarial losses over lists of discriminator outputs: hinge and least-squares GAN, and feature matching.

Inputs are what :mod:`nsac.nn.discriminators` returns: a list of logits tensors (one per sub-discriminator,
batch first) and, for feature matching, a list of lists of activations. Each loss averages within every
sub-discriminator and then over them, so adding a discriminator does not rescale the others; with
``reduction="none"`` it returns one value per batch item.

References: Lim & Ye, "Geometric GAN", 2017 (hinge); Mao et al., "Least Squares GAN", ICCV 2017;
Larsen et al., 2016 and Kumar et al., "MelGAN", NeurIPS 2019 (feature matching); Defossez et al., EnCodec,
2022 (feature matching relative to the real activations' magnitude).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from nsac.errors import ParameterError

#: GAN objectives by name
KINDS = ("hinge", "lsgan")
REDUCTIONS = ("mean", "none")
#: keeps the relative feature-matching loss finite where real activations are all zero
_RELATIVE_FLOOR = 1e-8


def _per_item(value: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the batch."""
    return value.reshape(value.shape[0], -1).mean(dim=1)


def _average(terms: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ParameterError(f"reduction={reduction!r} is not supported; use one of {', '.join(REDUCTIONS)}")
    if not terms:
        raise ParameterError("no discriminator outputs: the lists of logits or features are empty")
    per_item = torch.stack(list(terms)).mean(dim=0)
    return per_item.mean() if reduction == "mean" else per_item


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError(f"adversarial loss kind={kind!r} is not supported; use one of "
                             f"{', '.join(KINDS)}")


def discriminator_loss(real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor], *,
                       kind: str = "hinge", reduction: str = "mean") -> torch.Tensor:
    """What the discriminator minimises: push real logits up and fake ones down.

    hinge: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))); lsgan: mean((1 - D(x))^2) + mean(D(G(z))^2).
    """
    _check_kind(kind)
    if len(real_logits) != len(fake_logits):
        raise ParameterError(f"{len(real_logits)} real but {len(fake_logits)} fake logits tensors")
    terms = []
    for real, fake in zip(real_logits, fake_logits):
        if kind == "hinge":
            terms.append(_per_item(F.relu(1.0 - real)) + _per_item(F.relu(1.0 + fake)))
        else:
            terms.append(_per_item((1.0 - real) ** 2) + _per_item(fake**2))
    return _average(terms, reduction)


def generator_loss(fake_logits: Sequence[torch.Tensor], *, kind: str = "hinge",
                   reduction: str = "mean") -> torch.Tensor:
    """What the generator minimises: hinge mean(relu(1 - D(G(z)))) (EnCodec), lsgan mean((1 - D(G(z)))^2)."""
    _check_kind(kind)
    transform: Callable[[torch.Tensor], torch.Tensor] = (
        (lambda f: F.relu(1.0 - f)) if kind == "hinge" else (lambda f: (1.0 - f) ** 2))
    return _average([_per_item(transform(fake)) for fake in fake_logits], reduction)


def feature_matching_loss(real_features: Sequence[Sequence[torch.Tensor]],
                          fake_features: Sequence[Sequence[torch.Tensor]], *, relative: bool = False,
                          reduction: str = "mean") -> torch.Tensor:
    """Mean L1 distance between the discriminators' activations on real and generated audio.

    ``relative=True`` divides each layer's distance by the mean |activation| on real audio (EnCodec), which
    weighs layers of different scale alike. Real activations are treated as constants (detached).
    """
    if len(real_features) != len(fake_features):
        raise ParameterError(f"{len(real_features)} real but {len(fake_features)} fake feature lists")
    terms = []
    for real_layers, fake_layers in zip(real_features, fake_features):
        if len(real_layers) != len(fake_layers):
            raise ParameterError(f"a discriminator gave {len(real_layers)} real but {len(fake_layers)} fake "
                                 "layers")
        for real, fake in zip(real_layers, fake_layers):
            real = real.detach()
            distance = _per_item((real - fake).abs())
            if relative:
                distance = distance / (_per_item(real.abs()) + _RELATIVE_FLOOR)
            terms.append(distance)
    return _average(terms, reduction)
