"""Linear prediction: pre-emphasis, autocorrelation, lag window, Levinson-Durbin, stability, LSFs.

Conventions (as in Makhoul, "Linear prediction: a tutorial review", Proc. IEEE 63(4), 1975, and Markel &
Gray, "Linear Prediction of Speech", 1976): an LPC filter is the *prediction-error* polynomial

    A(z) = 1 + a[1] z^-1 + ... + a[p] z^-p,       stored as ``a = [1, a[1], ..., a[p]]``, shape (..., p + 1)

so the prediction of ``x[n]`` is ``-sum_k a[k] x[n - k]``, the residual is ``scipy.signal.lfilter(a, [1], x)``
and synthesis is ``lfilter([1], a, e)``. Reflection coefficients ``k[i]`` follow the same sign
(``a[i] == k[i]`` at step ``i`` of the recursion); the filter ``1 / A(z)`` is stable iff every ``|k[i]| < 1``.
Every function takes a leading batch shape ``(...)`` and works on the last axis.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

from nsac.errors import ParameterError

PREEMPHASIS_COEFFICIENT = 0.85
"""LPCNet's pre-emphasis ``1 - 0.85 z^-1`` (Valin & Skoglund 2019): flattens the spectral tilt of speech."""


class LevinsonResult(NamedTuple):
    """The output of :func:`levinson_durbin`."""

    a: NDArray[np.float64]
    """Prediction-error filter ``[1, a1, ..., ap]``, shape (..., order + 1)."""
    reflection: NDArray[np.float64]
    """Reflection coefficients, shape (..., order); ``|k| < 1`` for a positive definite autocorrelation."""
    error: NDArray[np.float64]
    """Prediction-error power (the final ``E_p = r0 prod (1 - k_i^2)``), shape (...)."""


def preemphasis(x: ArrayLike, *, coefficient: float = PREEMPHASIS_COEFFICIENT,
                previous: ArrayLike = 0.0) -> NDArray[np.float64]:
    """First-order pre-emphasis ``y[n] = x[n] - coefficient x[n - 1]``.

    Parameters
    ----------
    x : signal, shape (..., samples)
    coefficient : the zero of ``1 - c z^-1``; LPCNet uses 0.85
    previous : ``x[-1]``, the sample before the block (for streaming), shape (...) or scalar

    Returns
    -------
    y : shape (..., samples), float64
    """
    x = np.asarray(x, dtype=np.float64)
    before = np.broadcast_to(np.asarray(previous, dtype=np.float64), x.shape[:-1])[..., None]
    shifted = np.concatenate([before, x[..., :-1]], axis=-1)
    return x - coefficient * shifted


def deemphasis(y: ArrayLike, *, coefficient: float = PREEMPHASIS_COEFFICIENT,
               previous: ArrayLike = 0.0) -> NDArray[np.float64]:
    """The inverse of :func:`preemphasis`: ``x[n] = y[n] + coefficient x[n - 1]``.

    Parameters
    ----------
    y : pre-emphasised signal, shape (..., samples)
    coefficient : the pole of ``1 / (1 - c z^-1)``
    previous : ``x[-1]``, the last *output* sample of the previous block, shape (...) or scalar

    Returns
    -------
    x : shape (..., samples), float64
    """
    y = np.asarray(y, dtype=np.float64)
    state = coefficient * np.broadcast_to(np.asarray(previous, dtype=np.float64), y.shape[:-1])[..., None]
    x, _ = lfilter([1.0], [1.0, -coefficient], y, axis=-1, zi=state)
    return x


def autocorrelation(x: ArrayLike, *, order: int) -> NDArray[np.float64]:
    """Biased autocorrelation ``r[k] = sum_n x[n] x[n - k]``, k = 0..order (the "autocorrelation method").

    Window the frame before calling this when it is a slice of a longer signal.

    Parameters
    ----------
    x : frames, shape (..., samples)
    order : largest lag

    Returns
    -------
    r : shape (..., order + 1), float64
    """
    _check_order(order)
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    n_fft = 1 << int(np.ceil(np.log2(max(2, n + order))))
    spectrum = np.fft.rfft(x, n=n_fft, axis=-1)
    r = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, axis=-1)[..., : order + 1]
    if order >= n:  # lags past the frame are zero; the FFT leaves rounding noise there
        r[..., n:] = 0.0
    return r


def lag_window(r: ArrayLike, *, bandwidth_hz: float, sample_rate_hz: float,
               white_noise_db: float | None = None) -> NDArray[np.float64]:
    """Gaussian lag window and optional white-noise correction of an autocorrelation.

    ``r[k] *= exp(-0.5 (2 pi bandwidth_hz k / sample_rate_hz)^2)`` widens every spectral peak to about
    ``bandwidth_hz`` (it convolves the spectrum with a Gaussian), which keeps formant bandwidths finite and
    the recursion well conditioned; ``white_noise_db`` adds a white floor that many dB below ``r[0]``
    (``r[0] *= 1 + 10^(white_noise_db / 10)``). Chen et al. 1994 (G.728) and ITU-T G.729 use both.

    Parameters
    ----------
    r : autocorrelation, shape (..., order + 1)
    bandwidth_hz : standard deviation of the Gaussian, Hz
    sample_rate_hz : sample rate, Hz
    white_noise_db : negative number of dB (e.g. -40), or None for no correction

    Returns
    -------
    windowed autocorrelation, shape (..., order + 1), float64
    """
    r = np.array(r, dtype=np.float64)
    lags = np.arange(r.shape[-1])
    r *= np.exp(-0.5 * (2.0 * np.pi * bandwidth_hz * lags / sample_rate_hz) ** 2)
    if white_noise_db is not None:
        r[..., 0] *= 1.0 + 10.0 ** (white_noise_db / 10.0)
    return r


def levinson_durbin(r: ArrayLike, *, order: int | None = None) -> LevinsonResult:
    """Solve the normal equations of the autocorrelation method with the Levinson-Durbin recursion.

    For ``i = 1..p``: ``k_i = -(r_i + sum_{j<i} a_j r_{i-j}) / E_{i-1}``, ``a_j += k_i a_{i-j}``,
    ``a_i = k_i``, ``E_i = (1 - k_i^2) E_{i-1}`` with ``E_0 = r_0`` (Makhoul 1975, eqs. 38-40). ``O(p^2)``
    per frame, vectorised over the batch. A frame with ``r_0 == 0`` (digital silence) gives ``A(z) = 1`` and
    zero error; the recursion stops growing a frame's filter (leaves its remaining ``k`` at zero) if its
    error would become non-positive, which only happens for an autocorrelation that is not positive
    definite.

    Parameters
    ----------
    r : autocorrelation, shape (..., n_lags) with n_lags >= order + 1
    order : predictor order p; default ``n_lags - 1``

    Returns
    -------
    LevinsonResult(a (..., p + 1), reflection (..., p), error (...))
    """
    r = np.asarray(r, dtype=np.float64)
    order = r.shape[-1] - 1 if order is None else order
    _check_order(order)
    if r.shape[-1] < order + 1:
        raise ParameterError(f"order={order} needs {order + 1} autocorrelation lags, got {r.shape[-1]}")
    batch = r.shape[:-1]
    a = np.zeros(batch + (order + 1,))
    a[..., 0] = 1.0
    k = np.zeros(batch + (order,))
    error = r[..., 0].copy()
    active = error > 0.0
    safe_error = np.where(active, error, 1.0)
    for i in range(1, order + 1):
        acc = r[..., i] + np.einsum("...j,...j->...", a[..., 1:i], r[..., i - 1:0:-1])
        ki = np.where(active, -acc / safe_error, 0.0)
        new_error = error * (1.0 - ki * ki)
        ok = active & (new_error > 0.0)
        ki = np.where(ok, ki, 0.0)
        a[..., 1:i] = a[..., 1:i] + ki[..., None] * a[..., i - 1:0:-1]
        a[..., i] = ki
        k[..., i - 1] = ki
        error = np.where(ok, new_error, error)
        active = ok
        safe_error = np.where(active, error, 1.0)
    return LevinsonResult(a, k, error)


def lpc(x: ArrayLike, *, order: int, window: ArrayLike | None = None) -> NDArray[np.float64]:
    """LPC of frames by the autocorrelation method: optional window, autocorrelation, Levinson-Durbin.

    Parameters
    ----------
    x : frames, shape (..., samples)
    order : predictor order p
    window : shape (samples,), applied before the autocorrelation; None for none

    Returns
    -------
    a : ``[1, a1, ..., ap]``, shape (..., p + 1)
    """
    x = np.asarray(x, dtype=np.float64)
    if window is not None:
        x = x * np.asarray(window, dtype=np.float64)
    return levinson_durbin(autocorrelation(x, order=order), order=order).a


def reflection_coefficients(a: ArrayLike) -> NDArray[np.float64]:
    """Reflection coefficients of a prediction-error filter by the step-down (backward Levinson) recursion.

    ``k_p = a_p``; ``a'_j = (a_j - k_p a_{p-j}) / (1 - k_p^2)``; repeat on the order-(p-1) filter. A filter
    with some ``|k_i| >= 1`` gets ``k`` values of magnitude >= 1 from that step on (the recursion is not
    continued through a unit-magnitude coefficient).

    Parameters
    ----------
    a : ``[1, a1, ..., ap]``, shape (..., p + 1)

    Returns
    -------
    k : shape (..., p)
    """
    a = np.array(a, dtype=np.float64)
    order = a.shape[-1] - 1
    k = np.zeros(a.shape[:-1] + (order,))
    current = a[..., 1:].copy()
    for i in range(order, 0, -1):
        ki = current[..., i - 1]
        k[..., i - 1] = ki
        denominator = 1.0 - ki * ki
        degenerate = np.abs(denominator) < 1e-12
        denominator = np.where(degenerate, 1.0, denominator)
        head = current[..., : i - 1]
        current = (head - ki[..., None] * head[..., ::-1]) / denominator[..., None]
        if degenerate.any():
            k[degenerate, : i - 1] = 1.0
            current[degenerate] = 0.0
    return k


def is_stable(a: ArrayLike) -> NDArray[np.bool_]:
    """Whether ``1 / A(z)`` is stable (all poles inside the unit circle): every ``|k_i| < 1``.

    Parameters
    ----------
    a : ``[1, a1, ..., ap]``, shape (..., p + 1)

    Returns
    -------
    shape (...), bool
    """
    return np.all(np.abs(reflection_coefficients(a)) < 1.0, axis=-1)


def bandwidth_expansion(a: ArrayLike, *, gamma: float) -> NDArray[np.float64]:
    """``A(z / gamma)``: ``a[k] *= gamma^k``; moves every pole towards the origin by the factor gamma (< 1).

    Parameters
    ----------
    a : shape (..., p + 1)
    gamma : radius factor in (0, 1]

    Returns
    -------
    shape (..., p + 1)
    """
    a = np.asarray(a, dtype=np.float64)
    return a * gamma ** np.arange(a.shape[-1])


def lpc_power_spectrum(a: ArrayLike, *, error: ArrayLike = 1.0, n_fft: int = 512) -> NDArray[np.float64]:
    """The LPC model's power spectrum ``error / |A(e^{jw})|^2`` on ``n_fft // 2 + 1`` bins from 0 to Nyquist.

    Parameters
    ----------
    a : shape (..., p + 1)
    error : prediction-error power, shape (...) or scalar
    n_fft : FFT size

    Returns
    -------
    shape (..., n_fft // 2 + 1)
    """
    response = np.fft.rfft(np.asarray(a, dtype=np.float64), n=n_fft, axis=-1)
    return np.asarray(error, dtype=np.float64)[..., None] / (response.real**2 + response.imag**2)


def lpc_to_lsf(a: ArrayLike) -> NDArray[np.float64]:
    """Line spectral frequencies of a stable prediction-error filter (Itakura 1975; Soong & Juang 1984).

    ``P(z) = A(z) + z^-(p+1) A(1/z)`` and ``Q(z) = A(z) - z^-(p+1) A(1/z)`` have their roots on the unit
    circle, interlaced; their angles in (0, pi), sorted, are the LSFs. Roots are found with ``numpy.roots``
    (fine for the orders of speech coding, p <= 20). The order p must be even.

    Parameters
    ----------
    a : ``[1, a1, ..., ap]``, shape (..., p + 1), p even

    Returns
    -------
    lsf : radians in (0, pi), increasing, shape (..., p)
    """
    a = np.asarray(a, dtype=np.float64)
    order = a.shape[-1] - 1
    if order % 2:
        raise ParameterError(f"lpc_to_lsf needs an even order, got {order}")
    flat = a.reshape(-1, order + 1)
    out = np.empty((flat.shape[0], order))
    for row, coefficients in enumerate(flat):
        extended = np.concatenate([coefficients, [0.0]])
        p_poly = extended + extended[::-1]
        q_poly = extended - extended[::-1]
        # Remove the trivial roots: z = -1 from P and z = +1 from Q (p even).
        p_reduced, _ = np.polydiv(p_poly, [1.0, 1.0])
        q_reduced, _ = np.polydiv(q_poly, [1.0, -1.0])
        angles = np.concatenate([np.angle(np.roots(p_reduced)), np.angle(np.roots(q_reduced))])
        positive = np.sort(angles[angles > 0.0])
        if positive.size != order:
            raise ParameterError("lpc_to_lsf needs a minimum-phase filter (all |k| < 1); see is_stable")
        out[row] = positive
    return out.reshape(a.shape[:-1] + (order,))


def lsf_to_lpc(lsf: ArrayLike) -> NDArray[np.float64]:
    """The prediction-error filter of sorted line spectral frequencies (the inverse of :func:`lpc_to_lsf`).

    ``P(z) = (1 + z^-1) prod_{odd i} (1 - 2 cos w_i z^-1 + z^-2)`` over w_1, w_3, ...,
    ``Q(z) = (1 - z^-1) prod_{even i} (...)`` over w_2, w_4, ..., and ``A = (P + Q) / 2`` without its last
    term.

    Parameters
    ----------
    lsf : radians, increasing, shape (..., p), p even

    Returns
    -------
    a : shape (..., p + 1)
    """
    lsf = np.asarray(lsf, dtype=np.float64)
    order = lsf.shape[-1]
    if order % 2:
        raise ParameterError(f"lsf_to_lpc needs an even order, got {order}")
    flat = lsf.reshape(-1, order)
    out = np.empty((flat.shape[0], order + 1))
    for row, w in enumerate(flat):
        p_poly = np.array([1.0, 1.0])
        q_poly = np.array([1.0, -1.0])
        for omega in w[0::2]:
            p_poly = np.convolve(p_poly, [1.0, -2.0 * np.cos(omega), 1.0])
        for omega in w[1::2]:
            q_poly = np.convolve(q_poly, [1.0, -2.0 * np.cos(omega), 1.0])
        out[row] = 0.5 * (p_poly + q_poly)[: order + 1]
    return out.reshape(lsf.shape[:-1] + (order + 1,))


def lpc_residual(x: ArrayLike, a: ArrayLike) -> NDArray[np.float64]:
    """The prediction residual ``e = A(z) x`` with one filter for the whole signal (zero initial state).

    Parameters
    ----------
    x : shape (samples,)
    a : shape (p + 1,)

    Returns
    -------
    e : shape (samples,)
    """
    return lfilter(np.asarray(a, dtype=np.float64), [1.0], np.asarray(x, dtype=np.float64))


def _check_order(order: int) -> None:
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ParameterError(f"order={order!r} must be a positive integer")
