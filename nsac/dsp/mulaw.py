"""Mu-law companding and its 256-level quantisation, as used for LPCNet's sample-rate network.

ITU-T G.711's continuous mu-law curve (mu = 255) on signals in [-1, 1]:

    compress(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),        expand(y) = sign(y) ((1 + mu)^|y| - 1) / mu

and a uniform quantiser of ``levels`` points on [-1, 1] in the compressed domain: index ``q`` in
``0 .. levels - 1`` stands for ``y = 2 q / (levels - 1) - 1``. LPCNet's network outputs a softmax over these
256 indices (Valin & Skoglund, ICASSP 2019, section 2.2). The round-trip error of :func:`mulaw_encode` then
:func:`mulaw_decode` is at most :func:`mulaw_error_bound` (relative to |x| + 1/mu, it is about 2 %).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import ParameterError

MULAW_MU = 255.0
"""G.711's mu."""
N_MULAW_LEVELS = 256
"""Quantisation levels of LPCNet's output distribution (8 bits)."""


def mulaw_compress(x: ArrayLike, *, mu: float = MULAW_MU) -> NDArray[np.float64]:
    """Continuous mu-law compression of ``x`` in [-1, 1] (values outside are clipped), shape kept."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def mulaw_expand(y: ArrayLike, *, mu: float = MULAW_MU) -> NDArray[np.float64]:
    """The inverse of :func:`mulaw_compress` for ``y`` in [-1, 1], shape kept."""
    y = np.clip(np.asarray(y, dtype=np.float64), -1.0, 1.0)
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def mulaw_encode(x: ArrayLike, *, levels: int = N_MULAW_LEVELS, mu: float = MULAW_MU) -> NDArray[np.int64]:
    """Quantise ``x`` in [-1, 1] to a mu-law index in ``0 .. levels - 1`` (nearest level), shape kept."""
    _check_levels(levels)
    y = mulaw_compress(x, mu=mu)
    return np.rint((y + 1.0) * (0.5 * (levels - 1))).astype(np.int64)


def mulaw_decode(index: ArrayLike, *, levels: int = N_MULAW_LEVELS,
                 mu: float = MULAW_MU) -> NDArray[np.float64]:
    """The value in [-1, 1] that a mu-law index stands for, shape kept; indices outside the range raise."""
    _check_levels(levels)
    q = np.asarray(index)
    if q.size and (q.min() < 0 or q.max() > levels - 1):
        raise ParameterError(f"mu-law indices must lie in 0..{levels - 1}, got {q.min()}..{q.max()}")
    return mulaw_expand(q * (2.0 / (levels - 1)) - 1.0, mu=mu)


def mulaw_error_bound(x: ArrayLike, *, levels: int = N_MULAW_LEVELS,
                      mu: float = MULAW_MU) -> NDArray[np.float64]:
    """Largest ``|x - decode(encode(x))|`` for ``|x| <= 1``: ``(|x| + 1/mu) ((1 + mu)^(1/(levels-1)) - 1)``.

    The compressed value is off by at most half a step, ``1 / (levels - 1)``, and the expansion's slope grows
    as ``ln(1 + mu) (|x| + 1/mu)``; integrating it over half a step above ``|x|`` gives the bound.
    """
    _check_levels(levels)
    x = np.abs(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0))
    return (x + 1.0 / mu) * np.expm1(np.log1p(mu) / (levels - 1))


def _check_levels(levels: int) -> None:
    if not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ParameterError(f"levels={levels!r} must be an integer >= 2")
