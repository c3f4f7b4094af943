"""Tests for nsac.dsp.loudness against ITU-R BS.1770-4: its filter table, calibration tone and gating."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nsac.dsp.loudness import PEAK_LIMIT, k_weighting, loudness_lufs, normalization_gain_db

#: BS.1770-4 Table 1 and 2: the K-weighting coefficients at 48 kHz
STAGE1_B = (1.53512485958697, -2.69169618940638, 1.19839281085285)
STAGE1_A = (1.0, -1.69065929318241, 0.73248077421585)
STAGE2_B = (1.0, -2.0, 1.0)
STAGE2_A = (1.0, -1.99004745483398, 0.99007225036621)
#: a full-scale 997 Hz sine reads -3.01 LUFS (BS.1770-4, 2.1)
TONE_HZ = 997.0
TONE_LUFS = -3.01


def _tone(rate: int, *, seconds: float = 3.0, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * TONE_HZ * np.arange(round(seconds * rate)) / rate)


def test_coefficients_at_48k_are_the_standards() -> None:
    (b1, a1), (b2, a2) = k_weighting(48000)
    np.testing.assert_allclose(b1, STAGE1_B, atol=1e-8)
    np.testing.assert_allclose(a1, STAGE1_A, atol=1e-8)
    np.testing.assert_allclose(b2, STAGE2_B, atol=1e-12)
    np.testing.assert_allclose(a2, STAGE2_A, atol=1e-8)


@pytest.mark.parametrize("rate,tolerance", [(48000, 0.01), (44100, 0.01), (16000, 0.05)])
def test_calibration_tone(rate: int, tolerance: float) -> None:
    assert loudness_lufs(_tone(rate), sample_rate_hz=rate) == pytest.approx(TONE_LUFS, abs=tolerance)
    assert loudness_lufs(_tone(rate, amplitude=0.1), sample_rate_hz=rate) == pytest.approx(TONE_LUFS - 20,
                                                                                           abs=tolerance)


def test_gating_ignores_silence_and_short_signals_are_one_block() -> None:
    rate = 48000
    tone = _tone(rate, seconds=2.0, amplitude=0.1)
    # blocks of pure silence fall under the absolute gate: how much silence surrounds the tone does not matter
    # (blocks that straddle an edge count, as BS.1770 says; they are the same in both signals)
    short_pause = np.concatenate([np.zeros(rate), tone, np.zeros(rate)])
    long_pause = np.concatenate([np.zeros(5 * rate), tone, np.zeros(5 * rate)])
    assert loudness_lufs(long_pause, sample_rate_hz=rate) == pytest.approx(
        loudness_lufs(short_pause, sample_rate_hz=rate), abs=1e-6)
    assert loudness_lufs(short_pause, sample_rate_hz=rate) < loudness_lufs(tone, sample_rate_hz=rate)
    assert loudness_lufs(tone[: rate // 10], sample_rate_hz=rate) == pytest.approx(TONE_LUFS - 20, abs=0.05)
    assert loudness_lufs(np.zeros(rate), sample_rate_hz=rate) == -math.inf


def test_normalization_gain_reaches_the_target_within_limits() -> None:
    rate = 16000
    quiet = _tone(rate, amplitude=0.01)
    gain = normalization_gain_db(quiet, sample_rate_hz=rate, target_lufs=-26.0, max_gain_db=40.0)
    scaled = quiet * 10 ** (gain / 20)
    assert loudness_lufs(scaled, sample_rate_hz=rate) == pytest.approx(-26.0, abs=1e-6)
    assert normalization_gain_db(quiet, sample_rate_hz=rate, target_lufs=-26.0, max_gain_db=10.0) == 10.0
    loud_gain = normalization_gain_db(_tone(rate, amplitude=0.5), sample_rate_hz=rate, target_lufs=0.0,
                                      max_gain_db=40.0)
    assert 0.5 * 10 ** (loud_gain / 20) == pytest.approx(PEAK_LIMIT)
    silent = normalization_gain_db(np.zeros(rate), sample_rate_hz=rate, target_lufs=-26.0, max_gain_db=40.0)
    assert silent == 0.0
