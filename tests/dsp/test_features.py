"""LPCNet features: band layout, cepstrum to LPC on known spectra, framing, and real speech."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_vowel import make_vowel

from nsac.dsp import lpcnet_bands
from nsac.dsp.features import (
    FRAME_SIZE,
    N_NETWORK_FEATURES,
    cepstral_distance_db,
    cepstrum_from_power,
    compute_features,
    lpc_from_cepstrum,
    network_input,
    pitch_embedding_index,
)
from nsac.dsp.lpc import is_stable, lpc_power_spectrum
from nsac.errors import AudioError, ParameterError

SAMPLE_RATE_HZ = 16000
SHAPE_RMS_DB = 1.5
SHAPE_MAX_DB = 4.5
COMPARED_RANGE_DB = 30.0

def formant_filter(formants_hz: tuple[tuple[float, float], ...]) -> np.ndarray:
    a = np.array([1.0])
    for centre, bandwidth in formants_hz:
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE_HZ)
        a = np.convolve(a, [1.0, -2 * radius * np.cos(2 * np.pi * centre / SAMPLE_RATE_HZ), radius**2])
    return a


def test_band_layout():
    centres = lpcnet_bands.band_centre_bins()
    assert len(centres) == lpcnet_bands.N_BANDS == 18
    assert centres[0] == 0 and centres[-1] == 160 and np.all(np.diff(centres) > 0)
    weights = lpcnet_bands.band_weights()
    coverage = weights.sum(axis=0)
    # Triangles sum to one on every bin; the half bands at both ends count twice; Nyquist is in no band.
    np.testing.assert_allclose(coverage[4:136], 1.0)
    assert coverage[-1] == 0
    compensation = lpcnet_bands.band_compensation()
    np.testing.assert_allclose(compensation[[0, 1, 8, 12, 17]], [0.8, 1.0, 2 / 3, 1 / 3, 4 / 23])


def test_band_cepstrum_is_an_orthonormal_transform():
    log_bands = np.random.default_rng(0).normal(size=(5, 18))
    cepstrum = lpcnet_bands.cepstrum_from_log_bands(log_bands)
    np.testing.assert_allclose(lpcnet_bands.log_bands_from_cepstrum(cepstrum), log_bands, atol=1e-12)
    np.testing.assert_allclose(np.sum(cepstrum**2, axis=-1), np.sum(log_bands**2, axis=-1))
    # So the cepstral distance is the RMS band-level difference in dB.
    np.testing.assert_allclose(cepstral_distance_db(cepstrum, cepstrum + lpcnet_bands.cepstrum_from_log_bands(
        np.full(18, 0.1))), 1.0)


@pytest.mark.parametrize("formants_hz", [((800.0, 500.0), (2000.0, 600.0)),
                                         ((500.0, 400.0), (1500.0, 500.0), (2800.0, 700.0)),
                                         ((400.0, 300.0), (1200.0, 400.0), (2500.0, 600.0), (3500.0, 800.0))])
def test_lpc_from_cepstrum_matches_a_known_spectrum(formants_hz):
    # A formant envelope as the features see it: pre-emphasised. Formants are wider than the 200-400 Hz bands.
    tilt = np.abs(np.fft.rfft([1.0, -0.85], 320)) ** 2
    power = lpc_power_spectrum(formant_filter(formants_hz), error=1e4, n_fft=320) * tilt
    a, error = lpc_from_cepstrum(cepstrum_from_power(power))
    assert a.shape == (17,) and is_stable(a)
    model = lpc_power_spectrum(a, error=error, n_fft=320)
    # The -40 dB white-noise correction fills what lies far below the peak: compare within 30 dB of it, up to
    # 7.6 kHz (the last band is a half triangle).
    compared = (power > power.max() * 10 ** (-COMPARED_RANGE_DB / 10)) & (np.arange(161) < 152)
    difference = 10 * np.log10(model[compared] / power[compared])
    shape = difference - difference.mean()
    assert np.sqrt(np.mean(shape**2)) < SHAPE_RMS_DB
    assert np.max(np.abs(shape)) < SHAPE_MAX_DB


def test_lpc_from_any_cepstrum_is_stable():
    cepstra = np.random.default_rng(1).normal(scale=[4.0] + [1.5] * 17, size=(500, 18))
    a, error = lpc_from_cepstrum(cepstra)
    assert np.all(is_stable(a)) and np.all(error > 0)


def test_framing_and_lookahead():
    x = np.zeros(10 * FRAME_SIZE + 7)
    x[5 * FRAME_SIZE + 40] = 0.5  # a click in frame 5
    features = compute_features(x)
    assert features.n_frames == 11
    assert features.lpc.shape == (11, 17) and features.cepstrum.shape == (11, 18)
    c0 = features.cepstrum[:, 0]
    silent = c0.min()
    # Frame k's window is [160 k - 80, 160 k + 240): the click is seen by frames 4 (look-ahead) and 5 only.
    assert np.all(c0[[4, 5]] > silent + 1) and np.allclose(c0[[0, 1, 2, 3, 6, 7, 8, 9, 10]], silent)


def test_prefix_features_equal_whole_signal_features(speech_16k):
    x = speech_16k[0]
    whole = compute_features(x)
    n_blocks = 5
    prefix = compute_features(x[: n_blocks * 4 * FRAME_SIZE + 80])  # whole 40 ms blocks and the look-ahead
    frames = n_blocks * 4
    np.testing.assert_array_equal(prefix.cepstrum[:frames], whole.cepstrum[:frames])
    np.testing.assert_array_equal(prefix.pitch_period[:frames], whole.pitch_period[:frames])
    np.testing.assert_array_equal(prefix.pitch_correlation[:frames], whole.pitch_correlation[:frames])


def test_real_speech_features(speech_16k):
    features = compute_features(speech_16k)
    assert np.all(is_stable(features.lpc))
    np.testing.assert_array_equal(features.lpc, lpc_from_cepstrum(features.cepstrum)[0])
    assert np.all((32 <= features.pitch_period) & (features.pitch_period <= 256))
    assert 0.2 < np.mean(features.pitch_correlation > 0.5) < 0.9  # speech is partly voiced
    inputs = network_input(features.cepstrum, features.pitch_period, features.pitch_correlation)
    assert inputs.shape == (features.n_frames, N_NETWORK_FEATURES) and inputs.dtype == np.float32
    assert np.all(np.abs(inputs) < 30)
    index = pitch_embedding_index(features.pitch_period)
    assert index.min() >= 32 and index.max() <= 256


def test_louder_speech_shifts_c0_only(speech_16k):
    quiet = compute_features(speech_16k * 0.5)
    loud = compute_features(speech_16k)
    loud_frames = loud.cepstrum[:, 0] > 2
    shift = (loud.cepstrum[loud_frames, 0] - quiet.cepstrum[loud_frames, 0]) / np.sqrt(18)
    # 6 dB in every band, except where a band of the quieter signal nears the 1e-2 energy floor
    assert np.median(np.abs(shift - np.log10(4.0))) < 0.001
    np.testing.assert_allclose(shift, np.log10(4.0), atol=0.05)
    np.testing.assert_allclose(loud.cepstrum[loud_frames, 1:], quiet.cepstrum[loud_frames, 1:], atol=0.1)


def test_bad_input_raises():
    with pytest.raises(ParameterError):
        compute_features(np.zeros(1000), sample_rate_hz=8000)
    with pytest.raises(AudioError):
        compute_features(np.full(1000, np.nan))
    with pytest.raises(AudioError):
        compute_features(np.zeros((2, 1000)))


def test_vowel_spectrum_shows_its_first_formant():
    features = compute_features(make_vowel(120.0))
    a = features.lpc[20]
    response = lpc_power_spectrum(a, n_fft=320)
    # The /a/'s first formant (700 Hz) is a peak of the envelope (pre-emphasis tilts, so look at 0-1 kHz).
    assert 500 <= 50 * np.argmax(response[:20]) <= 900
