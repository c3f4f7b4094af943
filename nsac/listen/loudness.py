"""Programme loudness of mono audio per ITU-R BS.1770-4: K-weighting at any rate, 400 ms blocks, two gates.

The K-weighting filter is a high shelf (about +4 dB above 1.5 kHz, the head's effect) followed by a
second-order high-pass (the RLB curve). BS.1770 tabulates both only at 48 kHz; here each is designed at the
signal's own rate from its analog parameters with the bilinear transform, which reproduces the 48 kHz table
to within 1e-8 (tests/listen/test_listen_loudness.py).
"""

from __future__ import annotations

import math

import numpy as np

from nsac.errors import ParameterError

#: high shelf of the K-weighting: centre frequency, gain and quality factor fitted to the 48 kHz table
SHELF_HZ = 1681.974450955533
SHELF_GAIN_DB = 3.999843853973347
SHELF_Q = 0.7071752369554196
#: exponent that places the shelf's mid-band gain (fitted to the 48 kHz table)
SHELF_MID_EXPONENT = 0.4996667741545416
#: the RLB high-pass: corner frequency and quality factor
HIGHPASS_HZ = 38.13547087602444
HIGHPASS_Q = 0.5003270373238773
#: gating block and hop (75 % overlap), the absolute gate and the relative gate below the ungated level
BLOCK_MS = 400.0
HOP_MS = 100.0
ABSOLUTE_GATE_LKFS = -70.0
RELATIVE_GATE_LU = -10.0
#: the constant of BS.1770's loudness formula, which makes a 997 Hz sine at 0 dBFS read -3.01 LKFS
LOUDNESS_OFFSET_DB = -0.691
_MS_PER_S = 1000.0


def k_weighting(sample_rate_hz: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads (b, a) of the K-weighting filter at `sample_rate_hz`, shelf first."""
    if sample_rate_hz <= 2 * SHELF_HZ:
        raise ParameterError(f"sample_rate_hz={sample_rate_hz} is too low for BS.1770 loudness; "
                             f"it needs more than {2 * SHELF_HZ:.0f} Hz")
    k = math.tan(math.pi * SHELF_HZ / sample_rate_hz)
    v_high = 10.0 ** (SHELF_GAIN_DB / 20.0)
    v_mid = v_high ** SHELF_MID_EXPONENT
    a0 = 1.0 + k / SHELF_Q + k * k
    shelf_b = np.array([v_high + v_mid * k / SHELF_Q + k * k, 2.0 * (k * k - v_high),
                        v_high - v_mid * k / SHELF_Q + k * k]) / a0
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / SHELF_Q + k * k) / a0])
    k = math.tan(math.pi * HIGHPASS_HZ / sample_rate_hz)
    a0 = 1.0 + k / HIGHPASS_Q + k * k
    high_b = np.array([1.0, -2.0, 1.0])
    high_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / HIGHPASS_Q + k * k) / a0])
    return [(shelf_b, shelf_a), (high_b, high_a)]


def loudness_lkfs(audio: np.ndarray, *, sample_rate_hz: int) -> float:
    """Gated programme loudness of mono audio (samples,) in LKFS (= dB LUFS); -inf for (near) silence.

    A signal shorter than one 400 ms block is measured as one block.
    """
    from scipy.signal import lfilter

    signal = np.asarray(audio, dtype=np.float64).reshape(-1)
    if signal.size == 0:
        raise ParameterError("cannot measure the loudness of an empty signal")
    for b, a in k_weighting(sample_rate_hz):
        signal = lfilter(b, a, signal)
    n_block = round(BLOCK_MS * sample_rate_hz / _MS_PER_S)
    n_hop = round(HOP_MS * sample_rate_hz / _MS_PER_S)
    squared = signal * signal
    if signal.size < n_block:
        powers = np.array([squared.mean()])
    else:
        cumulative = np.concatenate([[0.0], np.cumsum(squared)])
        starts = np.arange(0, signal.size - n_block + 1, n_hop)
        powers = (cumulative[starts + n_block] - cumulative[starts]) / n_block
    with np.errstate(divide="ignore"):
        levels = LOUDNESS_OFFSET_DB + 10.0 * np.log10(powers)
    gated = powers[levels > ABSOLUTE_GATE_LKFS]
    if gated.size == 0:
        return -math.inf
    relative_gate = LOUDNESS_OFFSET_DB + 10.0 * math.log10(gated.mean()) + RELATIVE_GATE_LU
    gated = powers[(levels > ABSOLUTE_GATE_LKFS) & (levels > relative_gate)]
    return LOUDNESS_OFFSET_DB + 10.0 * math.log10(gated.mean())


__all__ = ["k_weighting", "loudness_lkfs"]
