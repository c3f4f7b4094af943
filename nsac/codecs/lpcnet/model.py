"""LPCNet's networks in torch: the frame-rate network, and the sample-rate network run with teacher forcing.

Valin & Skoglund, ICASSP 2019 (REFERENCE.md). Per 10 ms frame the frame-rate network turns the features
(:func:`nsac.dsp.features.network_input`) and a pitch embedding into a conditioning vector ``f``; per sample
the sample-rate network predicts the distribution of the excitation's mu-law code from the previous signal
sample, the LPC prediction and the previous excitation::

    features (n+4, 20) + pitch embedding ─ conv 1x3 ─ conv 1x3 ─ FC ─ FC ──> f (n, cond)
                                                  (valid convolutions: two frames on each side)
    [E_s(s_{t-1}), E_p(p_t), E_e(e_{t-1}), f] ─ GRU_A ─┐
                                                   f ──┴─ GRU_B ─ dual FC ─ softmax over 256 codes of e_t

The module trains with the whole signal known (teacher forcing, the GRUs as cuDNN-style sequence layers);
decoding runs the same weights sample by sample in :mod:`nsac.codecs.lpcnet.synthesis` (numba), which reads
them through :meth:`LPCNetModel.export_arrays`. Sizes are in :class:`LPCNetConfig`; the shipped model's
choice and its reasons are in ``nsac/train/recipes/lpcnet.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from nsac.dsp.features import N_NETWORK_FEATURES
from nsac.dsp.mulaw import N_MULAW_LEVELS
from nsac.dsp.pitch import PITCH_MAX_PERIOD
from nsac.errors import ParameterError

FEATURE_CONTEXT_FRAMES = 2
"""The two 1x3 convolutions see two frames on each side of the frame they condition."""


@dataclass(frozen=True)
class LPCNetConfig:
    """Sizes of the networks (the paper's values in comments)."""

    pitch_embedding: int = 64
    conditioning: int = 128          # 128
    sample_embedding: int = 64       # 128
    gru_a_units: int = 192           # 384 (block-sparse, 10 % dense)
    gru_b_units: int = 16            # 16
    levels: int = N_MULAW_LEVELS

    @classmethod
    def from_dict(cls, values: dict) -> LPCNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown LPCNet config key(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


class FrameRateNetwork(nn.Module):
    """Features (B, n + 4, 20) and pitch indices (B, n + 4) -> conditioning (B, n, cond)."""

    def __init__(self, config: LPCNetConfig) -> None:
        super().__init__()
        self.pitch_embedding = nn.Embedding(PITCH_MAX_PERIOD + 1, config.pitch_embedding)
        width = N_NETWORK_FEATURES + config.pitch_embedding
        self.conv1 = nn.Conv1d(width, config.conditioning, 3)
        self.conv2 = nn.Conv1d(config.conditioning, config.conditioning, 3)
        self.dense1 = nn.Linear(config.conditioning, config.conditioning)
        self.dense2 = nn.Linear(config.conditioning, config.conditioning)

    def forward(self, features: torch.Tensor, pitch_index: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, self.pitch_embedding(pitch_index)], dim=-1).transpose(1, 2)
        x = torch.tanh(self.conv2(torch.tanh(self.conv1(x)))).transpose(1, 2)
        return torch.tanh(self.dense2(torch.tanh(self.dense1(x))))


class DualFC(nn.Module):
    """LPCNet's output layer: ``sum_c a_c * tanh(W_c h + b_c)`` over two channels, then logits."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, 2 * outputs)
        self.factor = nn.Parameter(torch.ones(2, outputs))
        self.outputs = outputs

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.linear(h)).unflatten(-1, (2, self.outputs))
        return (y * self.factor).sum(dim=-2)


class LPCNetModel(nn.Module):
    """The whole vocoder; :meth:`forward` gives the excitation logits for teacher-forced inputs."""

    def __init__(self, config: LPCNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LPCNetConfig()
        self.frame_rate = FrameRateNetwork(config)
        self.embed_signal = nn.Embedding(config.levels, config.sample_embedding)
        self.embed_prediction = nn.Embedding(config.levels, config.sample_embedding)
        self.embed_excitation = nn.Embedding(config.levels, config.sample_embedding)
        self.gru_a = nn.GRU(3 * config.sample_embedding + config.conditioning, config.gru_a_units,
                            batch_first=True)
        self.gru_b = nn.GRU(config.gru_a_units + config.conditioning, config.gru_b_units, batch_first=True)
        self.output = DualFC(config.gru_b_units, config.levels)

    def forward(self, features: torch.Tensor, pitch_index: torch.Tensor, signal_code: torch.Tensor,
                prediction_code: torch.Tensor, excitation_code: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, 256) of ``e_t`` for T = 160 n samples.

        features (B, n + 4, 20), pitch_index (B, n + 4); signal_code = code of s_{t-1}, prediction_code =
        code of p_t, excitation_code = code of e_{t-1}, each (B, T) int64.
        """
        conditioning = self.frame_rate(features, pitch_index)
        samples_per_frame = signal_code.shape[1] // conditioning.shape[1]
        f = conditioning.repeat_interleave(samples_per_frame, dim=1)
        x = torch.cat([self.embed_signal(signal_code), self.embed_prediction(prediction_code),
                       self.embed_excitation(excitation_code), f], dim=-1)
        a, _ = self.gru_a(x)
        b, _ = self.gru_b(torch.cat([a, f], dim=-1))
        return self.output(b)

    def export_arrays(self) -> dict[str, np.ndarray]:
        """Every weight the sample-by-sample decoder needs, float32, named as in :mod:`.synthesis`.

        The embeddings are folded into GRU_A's input weights (the paper's precomputed tables): the
        contribution of code ``q`` of input ``i`` is ``table_i[q]``, shape (256, 3 H).
        """
        with torch.no_grad():
            e = self.config.sample_embedding
            w_ih_a = self.gru_a.weight_ih_l0  # (3H, 3E + cond), gates r, z, n
            embeddings = (self.embed_signal, self.embed_prediction, self.embed_excitation)
            tables = [emb.weight @ w_ih_a[:, i * e:(i + 1) * e].T for i, emb in enumerate(embeddings)]
            h_a = self.config.gru_a_units
            w_ih_b = self.gru_b.weight_ih_l0
            arrays = {
                "gru_a_table_signal": tables[0], "gru_a_table_prediction": tables[1],
                "gru_a_table_excitation": tables[2],
                "gru_a_w_cond": w_ih_a[:, 3 * e:], "gru_a_b_ih": self.gru_a.bias_ih_l0,
                "gru_a_w_hh": self.gru_a.weight_hh_l0, "gru_a_b_hh": self.gru_a.bias_hh_l0,
                "gru_b_w_a": w_ih_b[:, :h_a], "gru_b_w_cond": w_ih_b[:, h_a:],
                "gru_b_b_ih": self.gru_b.bias_ih_l0,
                "gru_b_w_hh": self.gru_b.weight_hh_l0, "gru_b_b_hh": self.gru_b.bias_hh_l0,
                "dual_w": self.output.linear.weight, "dual_b": self.output.linear.bias,
                "dual_factor": self.output.factor,
            }
            return {name: np.ascontiguousarray(value.detach().cpu().numpy(), dtype=np.float32)
                    for name, value in arrays.items()}
