"""BS.1770 loudness against the recommendation's own numbers; the anchors and loudness matching of stimuli."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from nsac.errors import ParameterError
from nsac.listen.loudness import k_weighting, loudness_lkfs
from nsac.listen.stimuli import (
    LOW_ANCHOR_HZ,
    MID_ANCHOR_HZ,
    PEAK_LIMIT_DBFS,
    anchor_applies,
    lowpass_anchor,
    match_loudness,
)

#: ITU-R BS.1770-4, tables 1 and 2: the K-weighting biquads at 48 kHz
BS1770_SHELF_B = (1.53512485958697, -2.69169618940638, 1.19839281085285)
BS1770_SHELF_A = (1.0, -1.69065929318241, 0.73248077421585)
BS1770_HIGHPASS_B = (1.0, -2.0, 1.0)
BS1770_HIGHPASS_A = (1.0, -1.99004745483398, 0.99007225036621)
COEFFICIENT_TOLERANCE = 1e-8
#: BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS
SINE_HZ = 997.0
SINE_LKFS = -3.01
LKFS_TOLERANCE = 0.01
MATCH_TOLERANCE_LU = 0.05
#: a low-passed anchor keeps at most this much power an octave above its cut-off, relative to the pass band
STOP_BAND_MAX_DB = -60.0
WELCH_SEGMENT = 1024


def _sine(rate_hz: int, seconds: float, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return amplitude * np.sin(2 * np.pi * SINE_HZ * t)


def test_k_weighting_reproduces_the_48k_table() -> None:
    (shelf_b, shelf_a), (high_b, high_a) = k_weighting(48000)
    np.testing.assert_allclose(shelf_b, BS1770_SHELF_B, atol=COEFFICIENT_TOLERANCE)
    np.testing.assert_allclose(shelf_a, BS1770_SHELF_A, atol=COEFFICIENT_TOLERANCE)
    np.testing.assert_allclose(high_b, BS1770_HIGHPASS_B, atol=COEFFICIENT_TOLERANCE)
    np.testing.assert_allclose(high_a, BS1770_HIGHPASS_A, atol=COEFFICIENT_TOLERANCE)


def test_full_scale_sine_reads_minus_3_01_lkfs() -> None:
    loudness = loudness_lkfs(_sine(48000, 5.0), sample_rate_hz=48000)
    assert loudness == pytest.approx(SINE_LKFS, abs=LKFS_TOLERANCE)


def test_loudness_follows_gain_and_ignores_silence() -> None:
    rate = 16000
    base = loudness_lkfs(_sine(rate, 3.0, 0.5), sample_rate_hz=rate)
    half = loudness_lkfs(_sine(rate, 3.0, 0.25), sample_rate_hz=rate)
    assert half == pytest.approx(base - 6.0206, abs=1e-3)  # 20 log10(2) dB
    # the gates leave silence out: ungated, 4 s of silence around 10 s of tone would read 1.46 dB lower
    long_tone = _sine(rate, 10.0, 0.5)
    padded = np.concatenate([np.zeros(2 * rate), long_tone, np.zeros(2 * rate)])
    assert loudness_lkfs(padded, sample_rate_hz=rate) == pytest.approx(
        loudness_lkfs(long_tone, sample_rate_hz=rate), abs=0.2)
    assert loudness_lkfs(np.zeros(rate), sample_rate_hz=rate) == -np.inf
    with pytest.raises(ParameterError, match="too low"):
        loudness_lkfs(np.ones(100), sample_rate_hz=2000)


@pytest.mark.parametrize("cutoff_hz", [LOW_ANCHOR_HZ, MID_ANCHOR_HZ])
def test_anchor_is_a_zero_phase_lowpass(cutoff_hz: float) -> None:
    rate = 32000
    noise = np.random.default_rng(1).standard_normal(rate * 2).astype(np.float32)
    anchor = lowpass_anchor(noise, sample_rate_hz=rate, cutoff_hz=cutoff_hz)
    assert anchor.shape == noise.shape and anchor.dtype == np.float32
    # a low-leakage window: a plain FFT would measure its own leakage (about -55 dB), not the filter
    freqs, power = welch(anchor, fs=rate, nperseg=WELCH_SEGMENT, window="blackmanharris")
    pass_band = power[freqs < cutoff_hz / 2].mean()
    stop_band = power[freqs > 2 * cutoff_hz].mean()
    assert 10 * np.log10(stop_band / pass_band) < STOP_BAND_MAX_DB
    # zero phase: the anchor lines up with its source (the cross-correlation peaks at lag 0)
    lags = np.arange(-20, 21)
    correlation = [np.dot(np.roll(anchor, lag), noise) for lag in lags]
    assert lags[int(np.argmax(correlation))] == 0


def test_anchor_left_out_near_nyquist() -> None:
    assert anchor_applies(MID_ANCHOR_HZ, sample_rate_hz=16000)
    assert not anchor_applies(MID_ANCHOR_HZ, sample_rate_hz=8000)
    with pytest.raises(ParameterError, match="Nyquist"):
        lowpass_anchor(np.zeros(100), sample_rate_hz=8000, cutoff_hz=MID_ANCHOR_HZ)


def test_match_loudness_equalises_and_respects_the_peak_limit() -> None:
    rate = 16000
    reference = np.random.default_rng(2).standard_normal(rate * 2).astype(np.float32) * 0.3
    stimuli = {"quiet": reference * 0.1, "loud": reference * 2.0,
               "dull": lowpass_anchor(reference, sample_rate_hz=rate, cutoff_hz=LOW_ANCHOR_HZ)}
    out_reference, out, gains = match_loudness(reference, stimuli, sample_rate_hz=rate)
    target = loudness_lkfs(out_reference, sample_rate_hz=rate)
    for audio in out.values():
        assert loudness_lkfs(audio, sample_rate_hz=rate) == pytest.approx(target, abs=MATCH_TOLERANCE_LU)
    peak = max(np.abs(a).max() for a in [out_reference, *out.values()])
    assert peak <= 10 ** (PEAK_LIMIT_DBFS / 20) + 1e-6
    # the common attenuation applies to the reference too, so a hidden reference stays identical to it
    np.testing.assert_allclose(out_reference, reference * 10 ** (gains["reference"] / 20), rtol=1e-5)
    assert gains["quiet"] == pytest.approx(20 + gains["reference"], abs=MATCH_TOLERANCE_LU)
