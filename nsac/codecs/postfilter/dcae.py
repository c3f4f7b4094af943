"""The DCAE-style GAN enhancer: a causal generator fed the decoded signal and a noise channel.

After Biswas & Jia, "Audio codec enhancement with generative adversarial networks" (ICASSP 2020), the deep
coded audio enhancer: a generator G(x_hat, z) conditioned on the decoded signal x_hat, with noise z drawn from
a standard normal distribution to make it generative, trained against a discriminator plus a reconstruction
loss. The generator here is the time-domain network of `time_cnn` with a second input channel::

    [x_hat ; z] (B, 2, T) --strided conv--> residual units --transposed conv--> c;  y = x_hat + c

so it keeps that model's causality, zero delay and identity start (the synthesis layer is zero). Training
uses the trainer's own discriminators (recipe `discriminator.kinds`), which judge y alone; the paper's
discriminator also sees x_hat (a conditional GAN): that pairing is not built here.

The noise is a function of (seed, sample position) only: a 32-bit integer hash of both, turned into a
standard normal sample by Box-Muller. So streaming in any chunks gives the samples of the whole-signal call,
and decoding is deterministic. In training mode every example draws its seed from torch's generator (the
trainer seeds it), so the generator sees fresh noise each step; in eval mode the seed is `noise_seed`.
Streaming is for eval mode (decoding): in training mode every chunk would draw new seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nsac.codecs.postfilter.time_cnn import TimeCnnConfig, TimeCnnEnhancer
from nsac.errors import ParameterError

_MASK_32 = 0xFFFFFFFF
_LOW_16 = 0xFFFF
#: multipliers of the "lowbias32" integer hash (C. Wellons, hash-prospector): good avalanche in 32 bits
_HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)
#: keys the seed and the two uniforms of a Box-Muller pair apart (the hash maps 0 to 0: no zero key)
_SEED_KEY, _FIRST_KEY, _SECOND_KEY = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35
_TWO_TO_32 = 2.0**32


@dataclass(frozen=True)
class DcaeConfig(TimeCnnConfig):
    noise_seed: int = 0  # the noise stream used in eval mode (decoding)
    noise_std: float = 1.0  # scale of the noise channel

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.noise_seed <= _MASK_32:
            raise ParameterError(f"model.noise_seed={self.noise_seed} must be in [0, 2**32)")
        if self.noise_std < 0:
            raise ParameterError(f"model.noise_std={self.noise_std} must be >= 0")


def _multiply_32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2**32 for int64 x in [0, 2**32), without overflowing int64."""
    low, high = constant & _LOW_16, constant >> 16
    return (x * low + (((x * high) & _LOW_16) << 16)) & _MASK_32


def _hash_32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _multiply_32(x, _HASH_MULTIPLIERS[0])
    x = x ^ (x >> 15)
    x = _multiply_32(x, _HASH_MULTIPLIERS[1])
    return x ^ (x >> 16)


def position_noise(seeds: torch.Tensor, start_sample: int, n_samples: int) -> torch.Tensor:
    """Standard normal noise (B, 1, n_samples) for stream samples start_sample ..., one stream per seed.

    `seeds` is an int64 tensor (B,) of values in [0, 2**32). Sample n of stream s depends on (s, n) only.
    """
    positions = torch.arange(start_sample, start_sample + n_samples, dtype=torch.int64,
                             device=seeds.device) & _MASK_32
    keys = _hash_32((seeds[:, None] & _MASK_32) ^ _SEED_KEY) ^ positions  # (B, n)
    first = _hash_32(keys ^ _FIRST_KEY)
    second = _hash_32(keys ^ _SECOND_KEY)
    u1 = (first.double() + 0.5) / _TWO_TO_32  # in (0, 1): the log is finite
    u2 = (second.double() + 0.5) / _TWO_TO_32
    normal = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return normal.float()[:, None, :]


class DcaeEnhancer(TimeCnnEnhancer):
    """GAN generator G(decoded, noise): see the module docstring. (B, 1, T) -> (B, 1, T), no delay."""

    Config = DcaeConfig
    extra_input_channels = 1

    def network_input(self, x: torch.Tensor, start_sample: int) -> torch.Tensor:
        batch = x.shape[0]
        if self.training:
            seeds = torch.randint(0, _MASK_32 + 1, (batch,), dtype=torch.int64).to(x.device)
        else:
            seeds = torch.full((batch,), self.config.noise_seed, dtype=torch.int64, device=x.device)
        noise = position_noise(seeds, start_sample, x.shape[-1]).to(x.dtype) * self.config.noise_std
        return torch.cat([x, noise], dim=1)
