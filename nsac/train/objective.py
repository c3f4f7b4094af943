"""What the trainer minimises: a recipe's reconstruction losses, discriminators and adversarial terms."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nsac.losses.adversarial import discriminator_loss, feature_matching_loss, generator_loss
from nsac.losses.psychoacoustic import NoiseModulationLoss, PriorityWeightingLoss
from nsac.losses.spectral import MelSpectrogramLoss, MultiResolutionSTFTLoss
from nsac.nn.discriminators import (
    CombinedDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleSTFTDiscriminator,
)
from nsac.train.config import DiscriminatorConfig, LossConfig


def build_discriminator(config: DiscriminatorConfig) -> nn.Module | None:
    """The recipe's discriminators as one module, or None when the recipe trains without a GAN."""
    parts: list[nn.Module] = []
    for kind in config.kinds:
        if kind == "mpd":
            parts.append(MultiPeriodDiscriminator(config.mpd_periods, channels=config.mpd_channels,
                                                  max_channels=config.mpd_max_channels,
                                                  n_layers=config.mpd_layers))
        elif kind == "msstft":
            parts.append(MultiScaleSTFTDiscriminator(config.msstft_n_ffts, channels=config.msstft_channels))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else CombinedDiscriminator(parts)


def split_output(output: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A model returns audio, or (audio, {name: weighted auxiliary loss})."""
    if isinstance(output, tuple):
        audio, aux = output
        return audio, dict(aux)
    return output, {}


class Objective(nn.Module):
    """The recipe's losses; every method returns {name: scalar tensor} with the weighted sum under "total"."""

    def __init__(self, config: LossConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.stft = MultiResolutionSTFTLoss(config.stft_resolutions) if config.stft_weight > 0 else None
        self.mel = (MelSpectrogramLoss(sample_rate_hz=sample_rate_hz, scales=config.mel_scales)
                    if config.mel_weight > 0 else None)
        hop = config.psychoacoustic_hop_samples or None  # None: the losses' default, half a frame
        self.priority = (PriorityWeightingLoss(sample_rate=sample_rate_hz, hop=hop, domain=config.priority_domain,
                                               level=config.psychoacoustic_level)
                         if config.priority_weight > 0 else None)
        self.noise_modulation = (NoiseModulationLoss(sample_rate=sample_rate_hz, hop=hop,
                                                     reduce=config.noise_modulation_reduce,
                                                     level=config.psychoacoustic_level)
                                 if config.noise_modulation_weight > 0 else None)

    def reconstruction(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        terms: dict[str, torch.Tensor] = {}
        total = output.new_zeros(())
        if c.l1_weight > 0:
            terms["l1"] = F.l1_loss(output, target)
            total = total + c.l1_weight * terms["l1"]
        if self.stft is not None:
            terms["stft"] = self.stft(output, target)
            total = total + c.stft_weight * terms["stft"]
        if self.mel is not None:
            terms["mel"] = self.mel(output, target)
            total = total + c.mel_weight * terms["mel"]
        # the psychoacoustic terms take (reference, estimate); their masks come from the detached target
        if self.priority is not None:
            terms["priority_weighting"] = self.priority(target, output)
            total = total + c.priority_weight * terms["priority_weighting"]
        if self.noise_modulation is not None:
            terms["noise_modulation"] = self.noise_modulation(target, output)
            total = total + c.noise_modulation_weight * terms["noise_modulation"]
        terms["total"] = total
        return terms

    def discriminator(self, discriminator: nn.Module, output: torch.Tensor, target: torch.Tensor
                      ) -> torch.Tensor:
        """The discriminator's loss on real `target` and generated `output` (detached), one forward pass."""
        batch = target.shape[0]
        logits, _ = discriminator(torch.cat([target, output.detach()]))
        return discriminator_loss([x[:batch] for x in logits], [x[batch:] for x in logits],
                                  kind=self.config.adversarial)

    def adversarial(self, discriminator: nn.Module, output: torch.Tensor, target: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
        """The generator's adversarial and feature-matching terms; the caller freezes `discriminator`."""
        fake_logits, fake_features = discriminator(output)
        with torch.no_grad():
            _, real_features = discriminator(target)
        c = self.config
        terms = {"adv": generator_loss(fake_logits, kind=c.adversarial),
                 "fm": feature_matching_loss(real_features, fake_features, relative=c.feature_relative)}
        terms["total"] = c.adversarial_weight * terms["adv"] + c.feature_weight * terms["fm"]
        return terms
