"""The MUSHRA anchors and the loudness matching of stimuli (BS.1770 itself is tested in tests/dsp)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from nsac.dsp.loudness import loudness_lufs
from nsac.errors import ParameterError
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
    target = loudness_lufs(out_reference, sample_rate_hz=rate)
    for audio in out.values():
        assert loudness_lufs(audio, sample_rate_hz=rate) == pytest.approx(target, abs=MATCH_TOLERANCE_LU)
    peak = max(np.abs(a).max() for a in [out_reference, *out.values()])
    assert peak <= 10 ** (PEAK_LIMIT_DBFS / 20) + 1e-6
    # the common attenuation applies to the reference too, so a hidden reference stays identical to it
    np.testing.assert_allclose(out_reference, reference * 10 ** (gains["reference"] / 20), rtol=1e-5)
    assert gains["quiet"] == pytest.approx(20 + gains["reference"], abs=MATCH_TOLERANCE_LU)
