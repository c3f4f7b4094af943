"""MDCT and IMDCT (numpy): sine and KBD windows, AAC-style block switching, whole-signal analysis and synthesis.

The transform is the orthonormal MDCT (Princen & Bradley, IEEE TASSP 1986; Princen, Johnson & Bradley,
ICASSP 1987) computed through a DCT-IV of half its input length, itself computed with an FFT of a quarter of
the input length (O(N log N)). With a window ``w`` of length ``2N`` that satisfies the Princen-Bradley
condition ``w[n]**2 + w[n + N]**2 == 1``, windowing at analysis and at synthesis and overlap-adding frames
that advance by ``N`` samples reconstructs the input exactly (time-domain aliasing cancellation, TDAC), and
the lapped transform is orthogonal: quantisation noise energy in the coefficients equals its energy in time.

Block switching follows MPEG-2/4 AAC (ISO/IEC 13818-7, 14496-3): a frame has ``2N`` input samples and ``N``
coefficients; it is one long block, or eight short blocks of ``2M`` samples (``M = N / 8``), or one of the
two transition windows that join them::

    long   /‾‾‾‾‾‾‾‾‾‾‾‾\\            frame t covers padded samples [t N, t N + 2 N)
    start  /‾‾‾‾‾‾‾‾‾‾\\___           (long rise, flat, short fall, zeros)
    short  ___/\\/\\/\\/\\___ x 8        short block j starts at (N - M) / 2 + j M
    stop   ___/‾‾‾‾‾‾‾‾‾‾\\           (zeros, short rise, flat, long fall)

The left half of each frame must match the right half of the one before (:func:`window_sequence` builds
a valid sequence from per-frame transient flags). A short frame's ``N`` coefficients are its eight blocks
of ``M`` coefficients one after the other (``coefficients.reshape(..., 8, M)`` splits them).

Whole-signal framing (:func:`mdct_analysis`, :func:`mdct_synthesis`)::

    padded = [N zeros | signal (L samples) | zeros up to (n_frames + 1) N]
    frame t = padded[t N : t N + 2 N],   t = 0 .. n_frames - 1,   n_frames = ceil(L / N) + 1

so every signal sample lies in exactly two frames and the output is the input, delayed by nothing once the
``N`` leading zeros are dropped (a streaming coder has an algorithmic delay of ``N`` samples plus its
look-ahead for block switching). The torch twin with the same API is :mod:`nsac.dsp.mdct_torch`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import ParameterError

WindowType = Literal["long", "start", "short", "stop"]
"""Frame types of AAC block switching (ONLY_LONG, LONG_START, EIGHT_SHORT, LONG_STOP)."""
WindowShape = Literal["sine", "kbd"]
"""Window families: the sine window and the Kaiser-Bessel-derived window."""

WINDOW_TYPES: tuple[WindowType, ...] = ("long", "start", "short", "stop")
N_SHORT_BLOCKS = 8
"""Short blocks per short frame; a short block has ``N / N_SHORT_BLOCKS`` coefficients."""
KBD_ALPHA_LONG = 4.0
"""Kaiser alpha of AAC's long KBD window (ISO/IEC 14496-3, 4.6.11)."""
KBD_ALPHA_SHORT = 6.0
"""Kaiser alpha of AAC's short KBD window."""
N_BINS_MULTIPLE = 2 * N_SHORT_BLOCKS
"""``n_bins`` must be a multiple of this for short frames ((N - M) / 2 whole samples, M even)."""

# The halves of each frame type: "long" (of length N) or "short" (a short slope of length M inside a
# half of length N, padded with ones on the frame's inner side and zeros on its outer side).
_LEFT_SHAPE: dict[str, str] = {"long": "long", "start": "long", "short": "short", "stop": "short"}
_RIGHT_SHAPE: dict[str, str] = {"long": "long", "start": "short", "short": "short", "stop": "long"}


# ---------------------------------------------------------------- windows

def sine_window(n_window: int) -> NDArray[np.float64]:
    """The sine window ``w[n] = sin(pi (n + 1/2) / n_window)``, shape (n_window,), n_window even.

    It satisfies the Princen-Bradley condition for an MDCT of ``n_window / 2`` coefficients.
    """
    _check_even(n_window, name="n_window")
    return np.sin(np.pi * (np.arange(n_window) + 0.5) / n_window)


def kbd_window(n_window: int, *, alpha: float) -> NDArray[np.float64]:
    """The Kaiser-Bessel-derived window of length ``n_window`` (even), shape (n_window,).

    ``w[n] = sqrt(sum_{j<=n} v[j] / sum_{j<=N} v[j])`` for ``n < N = n_window / 2``, mirrored for the
    second half, with ``v`` the Kaiser window of length ``N + 1`` and ``beta = pi alpha``
    (ISO/IEC 14496-3, 4.6.11.3.2). Larger ``alpha`` gives more stop-band rejection and a wider main lobe;
    AAC uses ``KBD_ALPHA_LONG`` and ``KBD_ALPHA_SHORT``.
    """
    _check_even(n_window, name="n_window")
    if not math.isfinite(alpha) or alpha < 0:
        raise ParameterError(f"alpha={alpha!r} must be a finite number >= 0")
    half = n_window // 2
    kaiser = np.kaiser(half + 1, np.pi * alpha)
    cumulative = np.cumsum(kaiser)
    rise = np.sqrt(cumulative[:half] / cumulative[half])
    return np.concatenate([rise, rise[::-1]])


def make_window(n_window: int, *, shape: WindowShape = "sine", alpha: float = KBD_ALPHA_LONG
                ) -> NDArray[np.float64]:
    """A window of the given family and length: :func:`sine_window` or :func:`kbd_window` (``alpha``)."""
    if shape == "sine":
        return sine_window(n_window)
    if shape == "kbd":
        return kbd_window(n_window, alpha=alpha)
    raise ParameterError(f"shape={shape!r} must be 'sine' or 'kbd'")


def frame_window(window_type: WindowType, *, n_bins: int, shape: WindowShape = "sine",
                 alpha_long: float = KBD_ALPHA_LONG, alpha_short: float = KBD_ALPHA_SHORT
                 ) -> NDArray[np.float64]:
    """The window of one frame of ``2 n_bins`` samples for a long, start or stop frame.

    For ``window_type="short"`` this is the window of one short block (``2 n_bins / 8`` samples), applied
    to each of the eight blocks. Start and stop windows use the long window's slope on their long side
    and the short window's slope, flanked by ones and zeros, on their short side.

    Returns
    -------
    array, shape (2 n_bins,) or (2 n_bins / 8,) for short frames
    """
    return _frame_window(window_type, n_bins, shape, float(alpha_long), float(alpha_short)).copy()


@functools.lru_cache(maxsize=64)
def _frame_window(window_type: WindowType, n_bins: int, shape: WindowShape, alpha_long: float,
                  alpha_short: float) -> NDArray[np.float64]:
    """:func:`frame_window`, cached and read-only."""
    _check_type(window_type)
    _check_n_bins(n_bins, short=window_type != "long")
    long_window = make_window(2 * n_bins, shape=shape, alpha=alpha_long)
    if window_type == "long":
        window = long_window
    else:
        n_short = n_bins // N_SHORT_BLOCKS
        short_window = make_window(2 * n_short, shape=shape, alpha=alpha_short)
        if window_type == "short":
            window = short_window
        else:
            n_flat = (n_bins - n_short) // 2
            rise = np.concatenate([np.zeros(n_flat), short_window[:n_short], np.ones(n_flat)])
            fall = np.concatenate([np.ones(n_flat), short_window[n_short:], np.zeros(n_flat)])
            window = np.concatenate([long_window[:n_bins] if _LEFT_SHAPE[window_type] == "long" else rise,
                                     long_window[n_bins:] if _RIGHT_SHAPE[window_type] == "long" else fall])
    window.setflags(write=False)
    return window


# ---------------------------------------------------------------- transforms

@functools.lru_cache(maxsize=32)
def _dct4_twiddles(n: int) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    """Pre- and post-twiddles of the FFT-based DCT-IV of length n (n even)."""
    index = np.arange(n // 2)
    pre = np.exp(-1j * np.pi * (index + 0.25) / n)
    post = np.exp(-1j * np.pi * index / n) * math.sqrt(2.0 / n)
    pre.setflags(write=False)
    post.setflags(write=False)
    return pre, post


def dct4(values: ArrayLike) -> NDArray[np.floating]:
    """Orthonormal DCT-IV along the last axis, ``C[k] = sqrt(2/n) sum_j v[j] cos(pi/n (j + 1/2)(k + 1/2))``.

    Computed with a complex FFT of length ``n / 2`` (Britanak, Yip & Rao, "Discrete Cosine and Sine
    Transforms", 2007, ch. 4); ``n`` must be even. The transform is its own inverse.

    Parameters
    ----------
    values : array, shape (..., n)

    Returns
    -------
    array, shape (..., n), float64 (float32 for float32 input)
    """
    v = _as_float(values)
    n = v.shape[-1]
    _check_even(n, name="transform length")
    pre, post = _dct4_twiddles(n)
    z = (v[..., 0::2] + 1j * v[..., ::-1][..., 0::2]) * pre
    y = np.fft.fft(z, axis=-1) * post
    out = np.empty(v.shape, dtype=v.dtype)
    out[..., 0::2] = y.real
    out[..., ::-1][..., 0::2] = -y.imag
    return out


def mdct(blocks: ArrayLike, *, window: ArrayLike | None = None) -> NDArray[np.floating]:
    """Orthonormal MDCT of windowed blocks along the last axis.

    ``X[k] = sqrt(2/N) sum_{n=0}^{2N-1} w[n] x[n] cos(pi/N (n + 1/2 + N/2)(k + 1/2))``, evaluated as the
    DCT-IV of the folded block ``(-c_r - d, a - b_r)`` (``x = (a, b, c, d)`` in quarters, ``_r``
    reversed).

    Parameters
    ----------
    blocks : array, shape (..., 2N)
        Time samples; N even.
    window : array, shape (2N,), optional
        Analysis window; default :func:`sine_window`. Pass ``np.ones(2 * N)`` for none.

    Returns
    -------
    array, shape (..., N)
        float64 (float32 for float32 input).
    """
    x = _as_float(blocks)
    n_window = x.shape[-1]
    _check_even(n_window // 2, name="MDCT size N")
    w = sine_window(n_window) if window is None else _check_window(window, n_window)
    x = x * w.astype(x.dtype, copy=False)
    quarter = n_window // 4
    a, b, c, d = (x[..., i * quarter:(i + 1) * quarter] for i in range(4))
    folded = np.concatenate([-c[..., ::-1] - d, a - b[..., ::-1]], axis=-1)
    return dct4(folded)


def imdct(coefficients: ArrayLike, *, window: ArrayLike | None = None) -> NDArray[np.floating]:
    """Inverse of :func:`mdct` up to time-domain aliasing, windowed for overlap-add.

    ``y[n] = w[n] sqrt(2/N) sum_k X[k] cos(pi/N (n + 1/2 + N/2)(k + 1/2))``. Overlap-adding consecutive
    outputs (hop N) cancels the aliasing when the windows meet the Princen-Bradley condition.

    Parameters
    ----------
    coefficients : array, shape (..., N)
    window : array, shape (2N,), optional
        Synthesis window; default :func:`sine_window`.

    Returns
    -------
    array, shape (..., 2N)
    """
    v = dct4(coefficients)
    n = v.shape[-1]
    w = sine_window(2 * n) if window is None else _check_window(window, 2 * n)
    half = n // 2
    first, second = v[..., :half], v[..., half:]
    unfolded = np.concatenate([second, -second[..., ::-1], -first[..., ::-1], -first], axis=-1)
    return unfolded * w.astype(unfolded.dtype, copy=False)


def mdct_frame(frame: ArrayLike, *, window_type: WindowType = "long", shape: WindowShape = "sine",
               alpha_long: float = KBD_ALPHA_LONG, alpha_short: float = KBD_ALPHA_SHORT
               ) -> NDArray[np.floating]:
    """MDCT of frames of ``2N`` samples of one window type (the streaming building block).

    Parameters
    ----------
    frame : array, shape (..., 2N)
    window_type : {"long", "start", "short", "stop"}
        For "short", eight blocks of ``2N/8`` samples starting at ``(N - N/8)/2 + j N/8``.

    Returns
    -------
    array, shape (..., N)
        Short frames: the eight blocks' ``N/8`` coefficients one after the other.
    """
    x = _as_float(frame)
    n_bins = x.shape[-1] // 2
    window = _frame_window(window_type, n_bins, shape, float(alpha_long), float(alpha_short))
    if window_type != "short":
        return mdct(x, window=window)
    blocks = _short_blocks(x, n_bins=n_bins)
    return mdct(blocks, window=window).reshape(*x.shape[:-1], n_bins)


def imdct_frame(coefficients: ArrayLike, *, window_type: WindowType = "long", shape: WindowShape = "sine",
                alpha_long: float = KBD_ALPHA_LONG, alpha_short: float = KBD_ALPHA_SHORT
                ) -> NDArray[np.floating]:
    """Windowed IMDCT of one frame type, shape (..., N) -> (..., 2N), to be overlap-added with hop N."""
    v = _as_float(coefficients)
    n_bins = v.shape[-1]
    window = _frame_window(window_type, n_bins, shape, float(alpha_long), float(alpha_short))
    if window_type != "short":
        return imdct(v, window=window)
    n_short = n_bins // N_SHORT_BLOCKS
    blocks = imdct(v.reshape(*v.shape[:-1], N_SHORT_BLOCKS, n_short), window=window)
    offset = (n_bins - n_short) // 2
    out = np.zeros((*v.shape[:-1], 2 * n_bins), dtype=blocks.dtype)
    out[..., offset:offset + (N_SHORT_BLOCKS + 1) * n_short] = overlap_add(blocks)
    return out


# ---------------------------------------------------------------- sequences and whole signals

def window_sequence(transient: Sequence[bool] | ArrayLike) -> list[WindowType]:
    """A valid AAC window sequence from per-frame "needs short blocks" flags.

    A flagged frame is short. An unflagged frame takes a short left half if the frame before is flagged
    and a short right half if the frame after is flagged: long, start, stop, or short when both
    neighbours are flagged. Every frame's left half then matches the right half of the one before.

    Parameters
    ----------
    transient : sequence of bool, length n_frames

    Returns
    -------
    list of {"long", "start", "short", "stop"}, length n_frames
    """
    flags = np.asarray(transient, dtype=bool).reshape(-1)
    sequence: list[WindowType] = []
    for t, flagged in enumerate(flags):
        short_left = t > 0 and bool(flags[t - 1])
        short_right = t + 1 < flags.size and bool(flags[t + 1])
        if flagged or (short_left and short_right):
            sequence.append("short")
        elif short_left:
            sequence.append("stop")
        elif short_right:
            sequence.append("start")
        else:
            sequence.append("long")
    return sequence


def check_window_sequence(sequence: Sequence[str]) -> None:
    """Raise ParameterError unless every frame's left half matches the previous frame's right half."""
    for t, window_type in enumerate(sequence):
        _check_type(window_type)
        if t > 0 and _LEFT_SHAPE[window_type] != _RIGHT_SHAPE[sequence[t - 1]]:
            raise ParameterError(f"window sequence: frame {t} is {window_type!r} after {sequence[t - 1]!r}; "
                                 f"a {_RIGHT_SHAPE[sequence[t - 1]]} right half must be followed by a "
                                 f"{_RIGHT_SHAPE[sequence[t - 1]]} left half (use window_sequence())")


def n_frames(n_samples: int, *, n_bins: int) -> int:
    """Frames :func:`mdct_analysis` makes of ``n_samples`` samples: ``ceil(n_samples / n_bins) + 1``."""
    if n_samples < 0:
        raise ParameterError(f"n_samples={n_samples} must be >= 0")
    return -(-n_samples // n_bins) + 1


def frame_signal(signal: ArrayLike, *, n_bins: int) -> NDArray[np.floating]:
    """The frames :func:`mdct_analysis` transforms: shape (..., n_frames, 2 n_bins), a read-only view.

    Frame t holds signal samples ``[(t - 1) n_bins, (t + 1) n_bins)``, zeros outside the signal.
    """
    x = _as_float(signal)
    _check_n_bins(n_bins, short=False)
    count = n_frames(x.shape[-1], n_bins=n_bins)
    padded = np.zeros((*x.shape[:-1], (count + 1) * n_bins), dtype=x.dtype)
    padded[..., n_bins:n_bins + x.shape[-1]] = x
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * n_bins, axis=-1)[..., ::n_bins, :]


def mdct_analysis(signal: ArrayLike, *, n_bins: int, sequence: Sequence[WindowType] | None = None,
                  shape: WindowShape = "sine", alpha_long: float = KBD_ALPHA_LONG,
                  alpha_short: float = KBD_ALPHA_SHORT) -> NDArray[np.floating]:
    """MDCT of a whole signal, frame by frame with the given window sequence (see the module's framing).

    Parameters
    ----------
    signal : array, shape (..., samples)
        Channels share the sequence.
    n_bins : int
        Coefficients per frame N = hop in samples; long windows have 2N samples. Even; a multiple of
        ``N_BINS_MULTIPLE`` if the sequence has short frames.
    sequence : sequence of window types, length ``n_frames(samples, n_bins=n_bins)``, optional
        Default: all long. Checked with :func:`check_window_sequence`.
    shape, alpha_long, alpha_short
        Window family and KBD alphas (ignored for sine).

    Returns
    -------
    array, shape (..., n_frames, N)
        Short frames hold their eight blocks of N/8 coefficients one after the other.
    """
    frames = frame_signal(signal, n_bins=n_bins)
    types = _resolve_sequence(sequence, count=frames.shape[-2], n_bins=n_bins)
    out = np.empty((*frames.shape[:-1], n_bins), dtype=frames.dtype)
    for window_type in WINDOW_TYPES:
        index = [t for t, kind in enumerate(types) if kind == window_type]
        if index:
            out[..., index, :] = mdct_frame(frames[..., index, :], window_type=window_type, shape=shape,
                                            alpha_long=alpha_long, alpha_short=alpha_short)
    return out


def mdct_synthesis(coefficients: ArrayLike, *, n_samples: int, sequence: Sequence[WindowType] | None = None,
                   shape: WindowShape = "sine", alpha_long: float = KBD_ALPHA_LONG,
                   alpha_short: float = KBD_ALPHA_SHORT) -> NDArray[np.floating]:
    """Inverse of :func:`mdct_analysis`: IMDCT of each frame, overlap-add with hop N, padding removed.

    Parameters
    ----------
    coefficients : array, shape (..., n_frames, N)
    n_samples : int
        Length of the signal to return (the analysed signal's length).
    sequence, shape, alpha_long, alpha_short
        As given to :func:`mdct_analysis`.

    Returns
    -------
    array, shape (..., n_samples)
    """
    v = _as_float(coefficients)
    count, n_bins = v.shape[-2], v.shape[-1]
    types = _resolve_sequence(sequence, count=count, n_bins=n_bins)
    if n_samples > (count - 1) * n_bins:
        raise ParameterError(f"n_samples={n_samples} needs at least {n_frames(n_samples, n_bins=n_bins)} "
                             f"frames of {n_bins}; got {count}")
    blocks = np.empty((*v.shape[:-1], 2 * n_bins), dtype=v.dtype)
    for window_type in WINDOW_TYPES:
        index = [t for t, kind in enumerate(types) if kind == window_type]
        if index:
            blocks[..., index, :] = imdct_frame(v[..., index, :], window_type=window_type, shape=shape,
                                                alpha_long=alpha_long, alpha_short=alpha_short)
    return overlap_add(blocks)[..., n_bins:n_bins + n_samples]


def overlap_add(blocks: ArrayLike) -> NDArray[np.floating]:
    """Overlap-add blocks of ``2H`` samples with hop ``H``: (..., n_blocks, 2H) -> (..., (n_blocks + 1) H)."""
    b = _as_float(blocks)
    count, hop = b.shape[-2], b.shape[-1] // 2
    out = np.zeros((*b.shape[:-2], count + 1, hop), dtype=b.dtype)
    out[..., :-1, :] += b[..., :hop]
    out[..., 1:, :] += b[..., hop:]
    return out.reshape(*b.shape[:-2], (count + 1) * hop)


# ---------------------------------------------------------------- helpers

def _short_blocks(frames: NDArray[np.floating], *, n_bins: int) -> NDArray[np.floating]:
    """The eight short blocks of each frame: (..., 2N) -> (..., 8, 2N/8), a view."""
    n_short = n_bins // N_SHORT_BLOCKS
    offset = (n_bins - n_short) // 2
    span = frames[..., offset:offset + (N_SHORT_BLOCKS + 1) * n_short]
    return np.lib.stride_tricks.sliding_window_view(span, 2 * n_short, axis=-1)[..., ::n_short, :]


def _resolve_sequence(sequence: Sequence[WindowType] | None, *, count: int, n_bins: int) -> list[WindowType]:
    if sequence is None:
        return ["long"] * count
    types = list(sequence)
    if len(types) != count:
        raise ParameterError(f"the window sequence has {len(types)} entries for {count} frames")
    check_window_sequence(types)
    if any(kind != "long" for kind in types):
        _check_n_bins(n_bins, short=True)
    return types


def _as_float(values: ArrayLike) -> NDArray[np.floating]:
    array = np.asarray(values)
    if array.dtype == np.float32 or array.dtype == np.float64:
        return array
    return array.astype(np.float64)


def _check_even(n: int, *, name: str) -> None:
    if n <= 0 or n % 2:
        raise ParameterError(f"{name}={n} must be a positive even number")


def _check_n_bins(n_bins: int, *, short: bool) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins <= 0 or n_bins % 2:
        raise ParameterError(f"n_bins={n_bins!r} must be a positive even integer")
    if short and n_bins % N_BINS_MULTIPLE:
        raise ParameterError(f"n_bins={n_bins} must be a multiple of {N_BINS_MULTIPLE} for short blocks "
                             f"(eight blocks of an even size, centred in the frame)")


def _check_type(window_type: str) -> None:
    if window_type not in WINDOW_TYPES:
        raise ParameterError(f"window_type={window_type!r} must be one of {', '.join(WINDOW_TYPES)}")


def _check_window(window: ArrayLike, n_window: int) -> NDArray[np.float64]:
    w = np.asarray(window, dtype=np.float64)
    if w.shape != (n_window,):
        raise ParameterError(f"window has shape {w.shape}; the blocks need ({n_window},)")
    return w


__all__ = ["KBD_ALPHA_LONG", "KBD_ALPHA_SHORT", "N_BINS_MULTIPLE", "N_SHORT_BLOCKS", "WINDOW_TYPES",
           "WindowShape", "WindowType", "check_window_sequence", "dct4", "frame_signal", "frame_window",
           "imdct", "imdct_frame", "kbd_window", "make_window", "mdct", "mdct_analysis", "mdct_frame",
           "mdct_synthesis", "n_frames", "overlap_add", "sine_window", "window_sequence"]
