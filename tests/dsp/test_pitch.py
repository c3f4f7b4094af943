"""Open-loop pitch on synthetic vowels (known period), noise, and block-by-block consistency."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_vowel import make_vowel

from nsac.dsp.features import compute_features
from nsac.dsp.lpc import lpc, lpc_residual
from nsac.dsp.pitch import (
    PITCH_MIN_PERIOD,
    estimate_pitch,
    penalise_octaves,
    subframe_correlations,
)

PCM_SCALE = 32768.0
PITCH_TOLERANCE = 0.02
SETTLE_SUBFRAMES = 8
"""The first block starts from nothing; judge the track after it."""

SAMPLE_RATE_HZ = 16000
def residual(x: np.ndarray) -> np.ndarray:
    x = x * PCM_SCALE
    e = lpc_residual(x, lpc(x, order=16, window=np.hanning(x.size)))
    return e[: e.size // 80 * 80]


@pytest.mark.parametrize("f0_hz", [120.0, 220.0, 90.0, 300.0])
def test_synthetic_vowel_pitch_is_found(f0_hz):
    track = estimate_pitch(residual(make_vowel(f0_hz)))
    period = 16000.0 / f0_hz
    settled = track.period[SETTLE_SUBFRAMES:]
    assert abs(np.median(settled) - period) <= PITCH_TOLERANCE * period
    assert np.mean(np.abs(settled - period) <= PITCH_TOLERANCE * period) >= 0.95
    assert np.median(track.correlation[SETTLE_SUBFRAMES:]) > 0.9


@pytest.mark.parametrize("f0_hz", [120.0, 220.0])
def test_feature_pitch_of_a_vowel(f0_hz):
    features = compute_features(make_vowel(f0_hz))
    period = 16000.0 / f0_hz
    settled = features.pitch_period[4:-2]
    assert np.all(np.abs(settled - period) <= PITCH_TOLERANCE * period)
    assert np.all(features.pitch_correlation[4:-2] > 0.8)


def test_noise_is_not_periodic():
    noise = np.random.default_rng(0).standard_normal(16000) * 3000.0
    track = estimate_pitch(noise)
    assert np.mean(track.correlation) < 0.3


def test_correlation_is_one_at_the_period_of_a_periodic_signal():
    period = 100
    x = np.tile(np.random.default_rng(1).standard_normal(period) * 1000.0, 40)
    correlation, energy = subframe_correlations(x)
    assert np.all(energy > 0)
    np.testing.assert_allclose(correlation[4:, period - PITCH_MIN_PERIOD], 1.0, atol=1e-3)
    assert np.all(np.abs(correlation) <= 1.0 + 1e-12)


def test_octave_penalty_prefers_the_shorter_period():
    scores = np.zeros((1, 225))
    scores[0, 100 - PITCH_MIN_PERIOD] = 0.9
    scores[0, 200 - PITCH_MIN_PERIOD] = 0.92  # twice the period, hardly better: penalised
    penalised = penalise_octaves(scores)
    assert np.argmax(penalised[0]) == 100 - PITCH_MIN_PERIOD
    scores[0, 200 - PITCH_MIN_PERIOD] = 1.0  # more than 1.1 times better: kept
    assert penalise_octaves(scores)[0, 200 - PITCH_MIN_PERIOD] == scores[0, 200 - PITCH_MIN_PERIOD]


def test_track_of_a_prefix_equals_the_prefix_of_the_track():
    x = residual(np.concatenate([make_vowel(120.0, seconds=0.5), make_vowel(200.0, seconds=0.5)]))
    whole = estimate_pitch(x)
    prefix = estimate_pitch(x[: 3 * 640])  # three whole blocks of 8 sub-frames
    np.testing.assert_array_equal(prefix.period, whole.period[:24])
    np.testing.assert_array_equal(prefix.correlation, whole.correlation[:24])


def test_tracker_in_block_pieces_equals_one_call():
    from nsac.dsp.pitch import PitchTracker, track_pitch

    rng = np.random.default_rng(5)
    score = rng.random((48, 30))
    weight = rng.random(48)
    whole = track_pitch(score, weight, block=8)
    tracker = PitchTracker(30, block=8)
    pieces = np.concatenate([tracker.push(score[i:i + 16], weight[i:i + 16]) for i in range(0, 48, 16)])
    np.testing.assert_array_equal(pieces, whole)
