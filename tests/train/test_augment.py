"""Tests for nsac.train.augment: each augmentation checked by the property it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from nsac.train.augment import (
    add_noise,
    apply_gain,
    augment,
    change_speed,
    coloured_noise,
    peaking_biquad,
    reverberate,
    synthetic_room,
)
from nsac.train.config import AugmentConfig

RATE_HZ = 16000


def _speechlike(n: int = RATE_HZ, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(n) * np.hanning(n)).astype(np.float32)


def _power_db(x: np.ndarray) -> float:
    return 10 * math.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def test_gain_is_exact() -> None:
    x = _speechlike()
    assert _power_db(apply_gain(x, gain_db=-6.0)) - _power_db(x) == pytest.approx(-6.0, abs=1e-4)


@pytest.mark.parametrize("gain_db", [-9.0, 4.0])
def test_peaking_filter_has_its_gain_at_the_centre_and_unity_far_away(gain_db: float) -> None:
    b, a = peaking_biquad(centre_hz=1000.0, gain_db=gain_db, q=1.0, sample_rate_hz=RATE_HZ)
    _, response = scipy.signal.freqz(b, a, worN=[1000.0, 20.0, 7900.0], fs=RATE_HZ)
    db = 20 * np.log10(np.abs(response))
    assert db[0] == pytest.approx(gain_db, abs=1e-6)
    assert abs(db[1]) < 0.05 and abs(db[2]) < 0.5


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_scales_length_and_frequency(factor: float) -> None:
    n = RATE_HZ
    tone = np.sin(2 * np.pi * 1000 * np.arange(n) / RATE_HZ).astype(np.float32)
    faster = change_speed(tone, factor=factor, sample_rate_hz=RATE_HZ)
    assert faster.size == pytest.approx(n / factor, abs=2)
    spectrum = np.abs(np.fft.rfft(faster[1000:-1000] * np.hanning(faster.size - 2000)))
    peak_hz = np.argmax(spectrum) * RATE_HZ / (faster.size - 2000)
    assert peak_hz == pytest.approx(1000 * factor, rel=0.01)


@pytest.mark.parametrize("slope,octave_drop_db", [(0.0, 0.0), (1.0, 3.0), (2.0, 6.0)])
def test_coloured_noise_has_unit_power_and_its_slope(slope: float, octave_drop_db: float) -> None:
    noise = coloured_noise(1 << 16, slope=slope, rng=np.random.default_rng(1))
    assert np.mean(noise.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    f, psd = scipy.signal.welch(noise, fs=RATE_HZ, nperseg=4096)
    def band(lo: float) -> float:
        return float(psd[(f >= lo) & (f < 2 * lo)].mean())

    # average power density per octave: white stays flat, pink falls 3 dB, brown 6 dB
    assert 10 * math.log10(band(500) / band(1000)) == pytest.approx(octave_drop_db, abs=0.5)


def test_noise_is_added_at_the_snr() -> None:
    x = _speechlike()
    noisy = add_noise(x, snr_db=12.0, slope=1.0, rng=np.random.default_rng(2))
    assert _power_db(x) - _power_db(noisy - x) == pytest.approx(12.0, abs=1e-3)
    silent = np.zeros(100, dtype=np.float32)
    assert np.array_equal(add_noise(silent, snr_db=12.0, slope=0.0, rng=np.random.default_rng(0)), silent)


def test_synthetic_room_direct_path_drr_and_decay() -> None:
    rt60_s, drr_db = 0.4, 6.0
    room = synthetic_room(rt60_s=rt60_s, drr_db=drr_db, sample_rate_hz=RATE_HZ, rng=np.random.default_rng(3))
    assert room[0] == 1.0
    tail = room[1:].astype(np.float64)
    assert 10 * math.log10(1.0 / np.sum(tail**2)) == pytest.approx(drr_db, abs=1e-3)
    # energy decay: 60 dB over rt60, so the second 100 ms is 15 dB below the first
    n = round(0.1 * RATE_HZ)
    start = round(2e-3 * RATE_HZ)
    first, second = np.sum(tail[start : start + n] ** 2), np.sum(tail[start + n : start + 2 * n] ** 2)
    assert 10 * math.log10(first / second) == pytest.approx(60 * 0.1 / rt60_s, abs=1.5)
    x = _speechlike()
    wet = reverberate(x, room)
    assert wet.shape == x.shape and wet.dtype == np.float32
    np.testing.assert_allclose(wet[: start], x[: start], atol=1e-6)  # causal: only the direct path so far


def test_augment_is_a_function_of_its_generator() -> None:
    config = AugmentConfig(eq_p=1.0, reverb_p=1.0, noise_p=1.0)
    x = _speechlike()
    one = augment(x, sample_rate_hz=RATE_HZ, rng=np.random.default_rng(7), config=config)
    two = augment(x, sample_rate_hz=RATE_HZ, rng=np.random.default_rng(7), config=config)
    assert np.array_equal(one, two) and not np.array_equal(one, x) and one.shape == x.shape
    off = AugmentConfig(eq_p=0.0, reverb_p=0.0, noise_p=0.0)
    assert np.array_equal(augment(x, sample_rate_hz=RATE_HZ, rng=np.random.default_rng(7), config=off), x)
