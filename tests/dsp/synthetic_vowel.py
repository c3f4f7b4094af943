"""A synthetic vowel for the pitch and feature tests: a pulse train through the formants of an /a/."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE_HZ = 16000
VOWEL_FORMANTS_HZ = ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0))
"""Centre and bandwidth of the formants of an /a/ (Peterson & Barney 1952, adult male)."""


def make_vowel(f0_hz: float, *, seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    """A pulse train at f0 through three second-order formant resonators, peak ``level``, shape (samples,)."""
    n = int(seconds * SAMPLE_RATE_HZ)
    pulses = np.zeros(n)
    positions = np.round(np.arange(0.0, n, SAMPLE_RATE_HZ / f0_hz)).astype(int)
    pulses[positions[positions < n]] = 1.0
    x = pulses
    for centre, bandwidth in VOWEL_FORMANTS_HZ:
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE_HZ)
        x = lfilter([1.0], [1.0, -2 * radius * np.cos(2 * np.pi * centre / SAMPLE_RATE_HZ), radius**2], x)
    return level * x / np.abs(x).max()
