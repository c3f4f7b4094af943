"""Open-loop pitch: normalised cross-correlation over 32..256 samples, octave checks and a smoothing path.

The estimator follows the one LPCNet's encoder uses (Valin & Skoglund 2019, section 3.1; it comes from
Opus/CELT): work on the LPC residual, score every lag of every 5 ms sub-frame by a normalised
cross-correlation, discourage a lag that is not clearly better than its half, third or quarter (the
usual cause of period doubling), then pick the path through the sub-frames that maximises the
energy-weighted correlation minus a cost for period changes (a Viterbi search). The path is decided block
by block (a block is one 40 ms packet of 8 sub-frames): the forward scores carry over from block to block,
the back-trace stays inside the block, so processing a signal whole or block by block gives the same
periods.

The correlation of sub-frame ``x`` (``subframe_size`` samples) with the segment ``y`` that lies ``lag``
samples earlier is ``2 <x, y> / (1 + <x, x> + <y, y>)``: equal to the normalised cross-correlation when the
two segments have the same energy, smaller when they do not (a pitch period repeats at the same level), and
bounded by 1 in magnitude. The 1 in the denominator is an energy floor of one squared unit: pass signals on
the 16-bit PCM scale (full scale 32768), as LPCNet's features do, so that it stands for digital silence.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from nsac.errors import ParameterError

PITCH_MIN_PERIOD = 32
"""Shortest period searched, samples at 16 kHz (500 Hz)."""
PITCH_MAX_PERIOD = 256
"""Longest period searched, samples at 16 kHz (62.5 Hz)."""
SUBFRAME_SIZE = 80
"""5 ms at 16 kHz: the resolution of the pitch track."""
SUBFRAMES_PER_BLOCK = 8
"""The path is decided per 40 ms (one LPCNet packet)."""
OCTAVE_MARGIN = 1.1
"""A lag must correlate this many times better than its sub-multiples to keep its full score..."""
OCTAVE_PENALTY = 0.8
"""...otherwise its score is scaled by this, which favours the shorter of two octave-related periods."""
MAX_SUBMULTIPLE = 4
"""Sub-multiples checked: a half, a third and a quarter of each lag."""
STEP_MAX_LAGS = 4
"""Largest change of the lag between neighbouring sub-frames that is a step rather than a jump."""
STEP_COST_PER_LAG2 = 0.02
"""Cost of a step of d lags: ``STEP_COST_PER_LAG2 * d^2`` (in units of weighted correlation)."""
JUMP_COST = 2.0
"""Cost of any larger change of the lag (a new voiced segment, or a real octave jump)."""


class PitchTrack(NamedTuple):
    """The result of :func:`estimate_pitch`, one value per sub-frame."""

    period: NDArray[np.int64]
    """Pitch period in samples, ``min_period .. max_period``, shape (n_subframes,)."""
    correlation: NDArray[np.float64]
    """Normalised correlation at that period (before the octave penalty), in [-1, 1], shape (n_subframes,)."""
    energy: NDArray[np.float64]
    """Energy of each sub-frame of the analysed signal, shape (n_subframes,)."""


def subframe_correlations(x: ArrayLike, *, subframe_size: int = SUBFRAME_SIZE,
                          min_period: int = PITCH_MIN_PERIOD, max_period: int = PITCH_MAX_PERIOD,
                          history: ArrayLike | None = None,
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Correlation of every sub-frame with the segment ``lag`` samples earlier, for every lag.

    Parameters
    ----------
    x : signal, shape (samples,), samples a multiple of subframe_size
    subframe_size : samples per sub-frame
    min_period, max_period : lag range, samples (inclusive)
    history : the ``max_period`` samples before ``x`` (zeros when None)

    Returns
    -------
    correlation : shape (n_subframes, max_period - min_period + 1); column ``i`` is lag ``min_period + i``
    energy : ``<x, x>`` of each sub-frame, shape (n_subframes,)
    """
    if not 0 < min_period <= max_period:
        raise ParameterError(f"need 0 < min_period <= max_period, got {min_period}, {max_period}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size % subframe_size:
        raise ParameterError(f"x must be 1-D with a multiple of {subframe_size} samples, got shape {x.shape}")
    before = np.zeros(max_period) if history is None else np.asarray(history, dtype=np.float64)
    if before.shape != (max_period,):
        raise ParameterError(f"history must have shape ({max_period},), got {before.shape}")
    padded = np.concatenate([before, x])
    n_sub = x.size // subframe_size
    # windows[j] = padded[j L : j L + max_period + L]: sub-frame j is its tail; lag tau starts at
    # max_period - tau.
    windows = sliding_window_view(padded, max_period + subframe_size)[::subframe_size][:n_sub]
    current = windows[:, max_period:]
    energy = np.einsum("jn,jn->j", current, current)
    squares = np.concatenate([np.zeros((n_sub, 1)), np.cumsum(windows**2, axis=1)], axis=1)
    lags = np.arange(min_period, max_period + 1)
    correlation = np.empty((n_sub, lags.size))
    for column, lag in enumerate(lags):
        start = max_period - lag
        earlier = windows[:, start: start + subframe_size]
        cross = np.einsum("jn,jn->j", current, earlier)
        earlier_energy = squares[:, start + subframe_size] - squares[:, start]
        correlation[:, column] = 2.0 * cross / (1.0 + energy + earlier_energy)
    return correlation, energy


def penalise_octaves(correlation: ArrayLike, *, min_period: int = PITCH_MIN_PERIOD) -> NDArray[np.float64]:
    """Scale by ``OCTAVE_PENALTY`` every lag that does not correlate ``OCTAVE_MARGIN`` times better than a
    sub-multiple of itself (its half, third or quarter).

    A periodic signal correlates as well at two or three periods as at one; only the shortest is the pitch.
    A sub-multiple's correlation is the best over the lags ``floor(lag / k) - 1 .. ceil(lag / k) + 1`` (it is
    rarely a whole number of samples); sub-multiples shorter than ``min_period`` are not considered.

    Parameters
    ----------
    correlation : shape (..., n_lags), column ``i`` is lag ``min_period + i``

    Returns
    -------
    shape (..., n_lags)
    """
    c = np.asarray(correlation, dtype=np.float64)
    n_lags = c.shape[-1]
    lags = np.arange(min_period, min_period + n_lags)
    best_submultiple = np.full(c.shape, -np.inf)
    for divisor in range(2, MAX_SUBMULTIPLE + 1):
        has = lags >= divisor * min_period
        for offset in (-1, 0, 1, 2):
            index = np.clip(lags[has] // divisor + offset - min_period, 0, n_lags - 1)
            best_submultiple[..., has] = np.maximum(best_submultiple[..., has], c[..., index])
    weak = c < OCTAVE_MARGIN * best_submultiple
    return np.where(weak, OCTAVE_PENALTY * c, c)


class PitchTracker:
    """:func:`track_pitch` in pieces: the forward scores carry from one block to the next.

    Feeding a signal's blocks one push at a time gives the path that one call on the whole signal gives.
    """

    def __init__(self, n_lags: int, *, block: int = SUBFRAMES_PER_BLOCK) -> None:
        self.block = block
        self.total = np.zeros(n_lags)

    def push(self, score: ArrayLike, weight: ArrayLike) -> NDArray[np.int64]:
        """Lag indices of these sub-frames (score (n, n_lags), weight (n,)); ``n`` a multiple of the block
        except in a stream's last push."""
        score = np.asarray(score, dtype=np.float64)
        weight = np.asarray(weight, dtype=np.float64)
        n_sub, n_lags = score.shape
        if n_lags != self.total.size:
            raise ParameterError(f"score has {n_lags} lags, the tracker {self.total.size}")
        steps = np.arange(-STEP_MAX_LAGS, STEP_MAX_LAGS + 1)
        columns = np.arange(n_lags)
        path = np.zeros(n_sub, dtype=np.int64)
        total = self.total
        for start in range(0, n_sub, self.block):
            stop = min(start + self.block, n_sub)
            back = np.zeros((stop - start, n_lags), dtype=np.int64)
            for j in range(start, stop):
                best_previous = int(np.argmax(total))
                carried = np.full(n_lags, total[best_previous] - JUMP_COST)
                origin = np.full(n_lags, best_previous, dtype=np.int64)
                for d in steps:
                    source = columns + d
                    valid = (source >= 0) & (source < n_lags)
                    candidate = np.full(n_lags, -np.inf)
                    candidate[valid] = total[source[valid]] - STEP_COST_PER_LAG2 * d * d
                    better = candidate > carried
                    carried = np.where(better, candidate, carried)
                    origin = np.where(better, source, origin)
                total = carried + weight[j] * score[j]
                total -= total.max()
                back[j - start] = origin
            lag = int(np.argmax(total))
            for j in range(stop - 1, start - 1, -1):
                path[j] = lag
                lag = int(back[j - start, lag])
        self.total = total
        return path


def track_pitch(score: ArrayLike, weight: ArrayLike, *,
                block: int = SUBFRAMES_PER_BLOCK) -> NDArray[np.int64]:
    """The lag path that maximises ``sum_j weight[j] score[j, lag_j]`` minus the cost of lag changes.

    A change of ``d <= STEP_MAX_LAGS`` lags costs ``STEP_COST_PER_LAG2 d^2``; any larger one ``JUMP_COST``.
    Forward scores carry across blocks of ``block`` sub-frames; each block's path is back-traced from its best
    final lag, so the result is the same whatever the signal is cut into, as long as cuts fall on blocks
    and the scores are carried (:class:`PitchTracker`).

    Parameters
    ----------
    score : per sub-frame and lag, shape (n_subframes, n_lags)
    weight : per sub-frame, shape (n_subframes,), >= 0

    Returns
    -------
    lag index (column of ``score``) per sub-frame, shape (n_subframes,)
    """
    score = np.asarray(score, dtype=np.float64)
    return PitchTracker(score.shape[1], block=block).push(score, weight)


def estimate_pitch(x: ArrayLike, *, subframe_size: int = SUBFRAME_SIZE, min_period: int = PITCH_MIN_PERIOD,
                   max_period: int = PITCH_MAX_PERIOD, block: int = SUBFRAMES_PER_BLOCK,
                   history: ArrayLike | None = None, tracker: PitchTracker | None = None,
                   tracked: tuple[int, int] | None = None) -> PitchTrack:
    """Pitch period and correlation per sub-frame of a (preferably whitened) signal.

    Sub-frame weights are their energies normalised to a mean of one within each block, so loud sub-frames
    steer the path and silence does not.

    Parameters
    ----------
    x : signal at 16 kHz (the LPC residual works best), shape (samples,), a multiple of subframe_size
    subframe_size, min_period, max_period : as in :func:`subframe_correlations`
    block : sub-frames per block (see :func:`track_pitch`)
    history : the ``max_period`` samples before ``x``
    tracker : a :class:`PitchTracker` that carries the path's scores from earlier calls (streaming)
    tracked : (first, stop) sub-frames whose path is tracked (default all); the others only serve as
        history for the correlations and get lag index 0. ``first`` a multiple of ``block``

    Returns
    -------
    PitchTrack(period, correlation, energy), each of shape (samples // subframe_size,)
    """
    correlation, energy = subframe_correlations(x, subframe_size=subframe_size, min_period=min_period,
                                                max_period=max_period, history=history)
    n_sub = energy.size
    weight = np.empty(n_sub)
    for start in range(0, n_sub, block):
        chunk = energy[start: start + block]
        weight[start: start + block] = chunk.size * chunk / (1e-9 + chunk.sum())
    score = penalise_octaves(correlation, min_period=min_period)
    tracker = tracker or PitchTracker(score.shape[1], block=block)
    first, stop = tracked or (0, n_sub)
    path = np.zeros(n_sub, dtype=np.int64)
    path[first:stop] = tracker.push(score[first:stop], weight[first:stop])
    rows = np.arange(n_sub)
    return PitchTrack(path + min_period, correlation[rows, path], energy)
