"""Linear prediction checked against its properties and against scipy's direct Toeplitz solve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from nsac.dsp.lpc import (
    autocorrelation,
    bandwidth_expansion,
    deemphasis,
    is_stable,
    lag_window,
    levinson_durbin,
    lpc,
    lpc_power_spectrum,
    lpc_to_lsf,
    lsf_to_lpc,
    preemphasis,
    reflection_coefficients,
)
from nsac.errors import ParameterError

N_SAMPLES = 20_000
AR_TOLERANCE = 0.05


def step_up(reflection: np.ndarray) -> np.ndarray:
    """The prediction-error filter with the given reflection coefficients (a stable one when all |k| < 1)."""
    a = np.array([1.0])
    for k in reflection:
        extended = np.concatenate([a, [0.0]])
        a = extended + k * extended[::-1]
    return a


def ar_process(a: np.ndarray, n: int, seed: int) -> np.ndarray:
    return lfilter([1.0], a, np.random.default_rng(seed).standard_normal(n))


def test_ar2_coefficients_are_recovered():
    a_true = np.array([1.0, -1.3, 0.7])
    estimate = lpc(ar_process(a_true, N_SAMPLES, seed=1), order=2)
    np.testing.assert_allclose(estimate, a_true, atol=AR_TOLERANCE)


def test_ar16_coefficients_are_recovered():
    reflection = np.random.default_rng(2).uniform(-0.6, 0.6, size=16)
    a_true = step_up(reflection)
    estimate = lpc(ar_process(a_true, N_SAMPLES, seed=3), order=16)
    np.testing.assert_allclose(estimate, a_true, atol=AR_TOLERANCE)


@pytest.mark.parametrize("order", [1, 2, 10, 16, 24])
def test_levinson_equals_the_direct_toeplitz_solve(order):
    x = ar_process(step_up(np.full(6, 0.5)), 4000, seed=order)
    r = autocorrelation(x, order=order)
    result = levinson_durbin(r)
    direct = solve_toeplitz(r[:order], -r[1: order + 1])
    direct_error = r[0] + direct @ r[1: order + 1]
    np.testing.assert_allclose(result.a[1:], direct, rtol=0, atol=1e-10)
    assert abs(result.error - direct_error) <= 1e-10 * r[0]
    np.testing.assert_allclose(result.error, r[0] * np.prod(1 - result.reflection**2), rtol=1e-12)


def test_autocorrelation_matches_the_direct_sum():
    x = np.random.default_rng(4).standard_normal((3, 50))
    r = autocorrelation(x, order=60)
    for row, frame in zip(r, x):
        full = np.correlate(frame, frame, mode="full")[49:]
        np.testing.assert_allclose(row[:50], full, atol=1e-10)
        assert np.all(row[50:] == 0)


def test_batched_levinson_equals_one_by_one():
    r = autocorrelation(np.random.default_rng(5).standard_normal((4, 2, 300)), order=12)
    batched = levinson_durbin(r)
    for i in range(4):
        for j in range(2):
            single = levinson_durbin(r[i, j])
            np.testing.assert_allclose(batched.a[i, j], single.a, rtol=0, atol=1e-14)
            np.testing.assert_allclose(batched.error[i, j], single.error, rtol=1e-14)


def test_reflection_coefficients_and_stability():
    rng = np.random.default_rng(6)
    r = autocorrelation(rng.standard_normal((20, 320)) * np.hanning(320), order=16)
    result = levinson_durbin(r)
    np.testing.assert_allclose(reflection_coefficients(result.a), result.reflection, atol=1e-10)
    assert np.all(is_stable(result.a))
    k = rng.uniform(-0.9, 0.9, size=8)
    np.testing.assert_allclose(reflection_coefficients(step_up(k)), k, atol=1e-12)
    assert not is_stable(step_up(np.array([0.5, 1.2, -0.3])))
    assert not is_stable(np.array([1.0, -2.1, 1.2]))  # poles at |z| > 1


def test_silence_gives_the_identity_filter():
    result = levinson_durbin(np.zeros(17))
    np.testing.assert_array_equal(result.a, np.eye(1, 17)[0])
    assert result.error == 0


def test_lsf_round_trip_and_order():
    a = step_up(np.random.default_rng(7).uniform(-0.8, 0.8, size=16))
    lsf = lpc_to_lsf(a)
    assert np.all(np.diff(lsf) > 0) and 0 < lsf[0] and lsf[-1] < np.pi
    np.testing.assert_allclose(lsf_to_lpc(lsf), a, atol=1e-9)
    with pytest.raises(ParameterError):
        lpc_to_lsf(np.ones(4))  # odd order


def test_preemphasis_inverts_and_streams():
    x = np.random.default_rng(8).standard_normal(1000)
    y = preemphasis(x, coefficient=0.85)
    np.testing.assert_allclose(deemphasis(y, coefficient=0.85), x, atol=1e-12)
    halves = np.concatenate([preemphasis(x[:400]), preemphasis(x[400:], previous=x[399])])
    np.testing.assert_allclose(halves, y, atol=1e-12)
    back = np.concatenate([deemphasis(y[:400]), deemphasis(y[400:], previous=x[399])])
    np.testing.assert_allclose(back, x, atol=1e-12)


def test_lag_window_widens_and_adds_a_floor():
    r = np.ones(5)
    windowed = lag_window(r, bandwidth_hz=50.0, sample_rate_hz=16000.0, white_noise_db=-40.0)
    assert windowed[0] == pytest.approx(1.0001)
    assert np.all(np.diff(windowed[1:]) < 0)


def test_bandwidth_expansion_lowers_the_peak():
    a = np.array([1.0, -1.8, 0.95])
    peak = lpc_power_spectrum(a).max()
    assert lpc_power_spectrum(bandwidth_expansion(a, gamma=0.9)).max() < peak / 10
    assert is_stable(bandwidth_expansion(a, gamma=0.9))
