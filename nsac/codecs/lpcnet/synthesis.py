"""LPCNet's decoder: the frame-rate network in numpy, the sample-by-sample loop compiled with numba.

Per 10 ms frame (numpy): the frame-rate network gives the conditioning ``f``; its contributions to GRU_A's
and GRU_B's gates, ``W_f f + b``, are computed once for the frame's 160 samples. Per sample (numba, one
core, float32): GRU_A's input gates are three rows of precomputed tables (the embeddings of the three
mu-law codes folded into the input weights, as in the paper) plus the frame's part, so the only matrix
products left per sample are GRU_A's recurrent one (3H x H), GRU_B's (48 x H and 48 x 16) and the dual FC
(512 x 16). Sampling (:class:`Sampling`): the softmax is sharpened on voiced frames,
``p^(1 + max(0, 1.5 r - 0.5))`` with the frame's pitch correlation ``r``, and probabilities below 0.2 % are
cut (LPCNet's sampling), then one
uniform draw from a per-stream generator (xorshift64*) picks the code: the same features and seed give the
same samples in any process.

All state (GRU states, the last 16 signal samples, the last codes, the generator) lives in
:class:`VocoderState`, so decoding a file in pieces gives the same samples as decoding it at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from nsac.codecs.lpcnet.model import FEATURE_CONTEXT_FRAMES, LPCNetModel
from nsac.dsp.features import FRAME_SIZE, LPC_ORDER
from nsac.dsp.mulaw import MULAW_MU, N_MULAW_LEVELS

DEFAULT_SEED = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class Sampling:
    """How a code is drawn from the network's distribution.

    The distribution is raised to ``1 + max(0, voiced_slope * r - voiced_offset)`` for a frame of pitch
    correlation ``r`` (sharper, less noisy, on voiced frames), then probabilities below ``floor`` are cut.
    LPCNet's values; the decoded bitstream does not depend on them, only the samples do.
    """

    floor: float = 0.002
    voiced_slope: float = 1.5
    voiced_offset: float = 0.5

    def power(self, correlation: float) -> float:
        return 1.0 + max(0.0, self.voiced_slope * float(correlation) - self.voiced_offset)


@numba.njit(cache=True, fastmath=True)
def _mulaw_code(x):
    if x > 1.0:
        x = 1.0
    elif x < -1.0:
        x = -1.0
    y = np.log1p(MULAW_MU * abs(x)) / np.log1p(MULAW_MU)
    if x < 0:
        y = -y
    q = int(np.rint((y + 1.0) * (N_MULAW_LEVELS - 1) / 2.0))
    return min(max(q, 0), N_MULAW_LEVELS - 1)


@numba.njit(cache=True, fastmath=True)
def _mulaw_value(q):
    y = 2.0 * q / (N_MULAW_LEVELS - 1) - 1.0
    x = ((1.0 + MULAW_MU) ** abs(y) - 1.0) / MULAW_MU
    return -x if y < 0 else x


@numba.njit(cache=True)
def _uniform(rng):
    """xorshift64* step on rng[0]; a float in [0, 1)."""
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return ((x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, fastmath=True)
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@numba.njit(cache=True, fastmath=True)
def _gru_update(h, gates, recurrent):
    """One GRU step in place (torch's gate order r, z, n): ``gates`` = input part, ``recurrent`` = W_hh h + b."""
    units = h.shape[0]
    for j in range(units):
        r = _sigmoid(gates[j] + recurrent[j])
        z = _sigmoid(gates[units + j] + recurrent[units + j])
        n = np.tanh(gates[2 * units + j] + r * recurrent[2 * units + j])
        h[j] = (1.0 - z) * n + z * h[j]


@numba.njit(cache=True, fastmath=True)
def _synthesize_frame(out, a, cond_a, cond_b, power, floor, h_a, h_b, history, codes, rng,
                      table_s, table_p, table_e, w_hh_a, b_hh_a, w_b_a, w_hh_b, b_hh_b, dual_w, dual_b,
                      dual_factor, logits_out):
    """Fill ``out`` (160 pre-emphasised samples); updates the state arrays in place.

    history[i] = s_{t-1-i}; codes = [code of s_{t-1}, code of e_{t-1}]. When ``logits_out`` has rows, it
    receives the network's logits of every sample (before sharpening: tests compare them with torch).
    """
    units_a = h_a.shape[0]
    units_b = h_b.shape[0]
    levels = dual_factor.shape[1]
    gates_a = np.empty(3 * units_a, dtype=np.float32)
    rec_a = np.empty(3 * units_a, dtype=np.float32)
    gates_b = np.empty(3 * units_b, dtype=np.float32)
    rec_b = np.empty(3 * units_b, dtype=np.float32)
    logits = np.empty(levels, dtype=np.float32)
    for t in range(out.shape[0]):
        prediction = 0.0
        for i in range(history.shape[0]):
            prediction -= a[i + 1] * history[i]
        code_p = _mulaw_code(prediction)
        cs, ce = codes[0], codes[1]
        for j in range(3 * units_a):
            gates_a[j] = table_s[cs, j] + table_p[code_p, j] + table_e[ce, j] + cond_a[j]
            acc = b_hh_a[j]
            for k in range(units_a):
                acc += w_hh_a[j, k] * h_a[k]
            rec_a[j] = acc
        _gru_update(h_a, gates_a, rec_a)
        for j in range(3 * units_b):
            acc = cond_b[j]
            for k in range(units_a):
                acc += w_b_a[j, k] * h_a[k]
            gates_b[j] = acc
            acc = b_hh_b[j]
            for k in range(units_b):
                acc += w_hh_b[j, k] * h_b[k]
            rec_b[j] = acc
        _gru_update(h_b, gates_b, rec_b)
        top = -1e30
        for j in range(levels):
            y = 0.0
            for c in range(2):
                row = c * levels + j
                acc = dual_b[row]
                for k in range(units_b):
                    acc += dual_w[row, k] * h_b[k]
                y += dual_factor[c, j] * np.tanh(acc)
            if logits_out.shape[0] > 0:
                logits_out[t, j] = y
            y *= power
            logits[j] = y
            top = max(top, y)
        total = 0.0
        for j in range(levels):
            logits[j] = np.exp(logits[j] - top)
            total += logits[j]
        kept = 0.0
        for j in range(levels):
            p = logits[j] / total - floor
            p = max(0.0, p)
            logits[j] = p
            kept += p
        u = _uniform(rng) * kept
        code_e = levels - 1
        acc = 0.0
        for j in range(levels):
            acc += logits[j]
            if u < acc:
                code_e = j
                break
        s = prediction + _mulaw_value(code_e)
        for i in range(history.shape[0] - 1, 0, -1):
            history[i] = history[i - 1]
        history[0] = s
        codes[0] = _mulaw_code(s)
        codes[1] = code_e
        out[t] = s


@dataclass
class VocoderState:
    """What the sample-rate network carries from one frame to the next."""

    gru_a: np.ndarray
    gru_b: np.ndarray
    history: np.ndarray = field(default_factory=lambda: np.zeros(LPC_ORDER, dtype=np.float32))
    codes: np.ndarray = field(default_factory=lambda: np.full(2, N_MULAW_LEVELS // 2, dtype=np.int64))
    rng: np.ndarray = field(default_factory=lambda: np.array([DEFAULT_SEED], dtype=np.uint64))


class Vocoder:
    """The decoder of one trained :class:`LPCNetModel` (its weights copied to float32 arrays)."""

    def __init__(self, model: LPCNetModel, sampling: Sampling | None = None) -> None:
        self.config = model.config
        self.sampling = sampling or Sampling()
        self.weights = model.export_arrays()
        with torch.no_grad():
            net = model.frame_rate
            self._pitch_embedding = net.pitch_embedding.weight.numpy().astype(np.float32)
            self._conv = [(c.weight.numpy().astype(np.float32), c.bias.numpy().astype(np.float32))
                          for c in (net.conv1, net.conv2)]
            self._dense = [(d.weight.numpy().astype(np.float32), d.bias.numpy().astype(np.float32))
                           for d in (net.dense1, net.dense2)]

    def new_state(self, seed: int = DEFAULT_SEED) -> VocoderState:
        return VocoderState(gru_a=np.zeros(self.config.gru_a_units, dtype=np.float32),
                            gru_b=np.zeros(self.config.gru_b_units, dtype=np.float32),
                            rng=np.array([seed or DEFAULT_SEED], dtype=np.uint64))

    def conditioning(self, features: np.ndarray, pitch_index: np.ndarray) -> np.ndarray:
        """Frame-rate network: features (n + 4, 20), pitch index (n + 4,) -> conditioning (n, cond)."""
        x = np.concatenate([np.asarray(features, dtype=np.float32),
                            self._pitch_embedding[np.asarray(pitch_index, dtype=np.int64)]], axis=1)
        for weight, bias in self._conv:
            windows = np.stack([x[i: x.shape[0] - 2 + i] for i in range(3)], axis=2)  # (n, in, 3)
            x = np.tanh(np.einsum("nik,oik->no", windows, weight) + bias)
        for weight, bias in self._dense:
            x = np.tanh(x @ weight.T + bias)
        return x.astype(np.float32)

    def synthesize(self, state: VocoderState, conditioning: np.ndarray, lpc: np.ndarray,
                   correlation: np.ndarray, *, logits: np.ndarray | None = None) -> np.ndarray:
        """Pre-emphasised samples (160 n,) float32 for n frames: conditioning (n, cond), lpc (n, 17),
        correlation (n,) (the frame's pitch correlation, for the sampling sharpness). ``logits`` (160 n, 256)
        float32, when given, receives the network's output logits (for tests)."""
        w = self.weights
        n = conditioning.shape[0]
        cond_a = conditioning @ w["gru_a_w_cond"].T + w["gru_a_b_ih"]
        cond_b = conditioning @ w["gru_b_w_cond"].T + w["gru_b_b_ih"]
        out = np.empty(n * FRAME_SIZE, dtype=np.float32)
        lpc = np.asarray(lpc, dtype=np.float32)
        no_logits = np.zeros((0, self.config.levels), dtype=np.float32)
        for k in range(n):
            frame_logits = no_logits if logits is None else logits[k * FRAME_SIZE:(k + 1) * FRAME_SIZE]
            _synthesize_frame(out[k * FRAME_SIZE:(k + 1) * FRAME_SIZE], lpc[k],
                              np.ascontiguousarray(cond_a[k], dtype=np.float32),
                              np.ascontiguousarray(cond_b[k], dtype=np.float32),
                              np.float32(self.sampling.power(correlation[k])),
                              np.float32(self.sampling.floor), state.gru_a, state.gru_b,
                              state.history, state.codes, state.rng,
                              w["gru_a_table_signal"], w["gru_a_table_prediction"],
                              w["gru_a_table_excitation"], w["gru_a_w_hh"], w["gru_a_b_hh"], w["gru_b_w_a"],
                              w["gru_b_w_hh"], w["gru_b_b_hh"],
                              w["dual_w"], w["dual_b"], w["dual_factor"], frame_logits)
        return out


__all__ = ["FEATURE_CONTEXT_FRAMES", "Sampling", "Vocoder", "VocoderState"]
