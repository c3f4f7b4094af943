"""Integer frequency tables for entropy coding: float pmf -> exact integers; the Laplace/Gaussian table sets.

A *frequency table* is the contract between an encoder and a decoder: a 1-D array of integer frequencies,
every one >= 1 (so every symbol stays codable), summing to exactly ``2**precision_bits``. The coder
(`nsac.bitstream.entropy`) uses these integers as they are; only the code that *builds* them touches floats.

Why the tables come out bit-identical on every machine
------------------------------------------------------
`pmf_to_freqs` scales a float64 pmf, floors it, and hands the remaining counts to the largest fractional parts
(ties go to the lower index). Its output is a step function of its input: if two machines compute a pmf that
differs by an ulp (one libm rounds ``exp`` or ``erfc`` differently), the integers differ only when a scaled
value lies within that ulp of an integer (floor) or of another fractional part (the remainder cut-off).
At 24-bit precision a float64 keeps at least 28 bits below the integer part, so the chance per value is
~1e-9, and the golden digests in the tests would notice the day it happens. Everything else is exact:

* the scale grid is rounded onto multiples of ``2**-SCALE_GRID_FRACTION_BITS``, so it is a short list of
  exactly representable numbers; quantizing a scale compares it with geometric midpoints computed with
  ``sqrt`` and ``*``, both correctly rounded by IEEE 754, hence identical everywhere;
* tail widths are ``ceil(scale * integer)``, an exact product;
* the pmfs come from scalar ``math`` functions (no SIMD code path that differs between CPUs) and negative
  offsets mirror positive ones, so a table is symmetric by construction.

Codecs that ship their own tables pin them with `cdf_table_digest` in a test.

Parametric table sets (one table per quantized scale)
-----------------------------------------------------
``offset = value - rint(mean)`` is coded with the table of the nearest of `N_SCALES` log-spaced scales::

    table for tail t:   symbol  0      1     ...   t    ...   2t     2t+1
                        offset  -t    -t+1   ...   0    ...   +t     ESCAPE (|offset| > t, see entropy.py)

The Laplace scale is its diversity b (std = sqrt(2) b); the Gaussian scale is its standard deviation.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nsac.errors import ParameterError

#: Precision of constriction's range coder: every table is coded as integers out of 2**24.
CODER_PRECISION_BITS = 24
#: Default precision of categorical tables: 2**-16 is the smallest probability, 16 bits the largest cost.
TABLE_PRECISION_BITS = 16
#: Parametric tables use the coder's full precision: at scale 256 a table has ~6000 entries, and reserving one
#: count each would take 9 % of the mass out of 2**16 but only 0.04 % out of 2**24.
PARAMETRIC_PRECISION_BITS = CODER_PRECISION_BITS

N_SCALES = 64
SCALE_MIN = 0.1
SCALE_MAX = 256.0
#: Scales are rounded to multiples of 2**-20 so that the grid is exactly representable (see module docstring).
SCALE_GRID_FRACTION_BITS = 20
#: Table half-width in scales: the mass beyond is e**-12 ~ 2**-17 (Laplace), 2 Q(5) ~ 2**-20.7 (Gaussian).
TAIL_WIDTH_IN_SCALES = {"laplace": 12, "gaussian": 5}

Family = Literal["laplace", "gaussian"]


def pmf_to_freqs(pmf: np.ndarray, *, precision_bits: int = TABLE_PRECISION_BITS) -> np.ndarray:
    """Quantize probabilities to integer frequencies that sum to exactly ``2**precision_bits``.

    Every symbol gets one count for free, the remaining ``2**precision_bits - n`` counts are shared in
    proportion to `pmf` (floor, then the largest fractional parts, ties to the lower index).

    Parameters
    ----------
    pmf : array_like, shape (..., n)
        Nonnegative, finite weights along the last axis (need not sum to one), e.g. a softmax; n >= 2.
    precision_bits : int
        Total of each table as a power of two, 1..24; ``2**precision_bits`` must exceed n.

    Returns
    -------
    np.ndarray of int64, shape (..., n)
        Frequencies >= 1, each row summing to ``2**precision_bits``.
    """
    if not isinstance(precision_bits, int | np.integer) or not 1 <= precision_bits <= CODER_PRECISION_BITS:
        raise ParameterError(
            f"precision_bits={precision_bits!r} must be an integer in 1..{CODER_PRECISION_BITS}"
        )
    weights = np.asarray(pmf, dtype=np.float64)
    if weights.ndim == 0 or weights.shape[-1] < 2:
        raise ParameterError(f"pmf has shape {weights.shape}; expected (..., n) with n >= 2 symbols")
    n_symbols = weights.shape[-1]
    total = 1 << int(precision_bits)
    if n_symbols >= total:
        raise ParameterError(
            f"{n_symbols} symbols do not fit precision_bits={precision_bits}; need 2**precision_bits > n"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ParameterError("pmf must be finite and nonnegative")
    norm = weights.sum(axis=-1, keepdims=True)
    if np.any(norm <= 0):
        raise ParameterError("pmf has a row that sums to zero")

    free = total - n_symbols
    scaled = weights / norm * free
    base = np.floor(scaled)
    frac = scaled - base
    remainder = free - base.sum(axis=-1).astype(np.int64)
    # A stable sort of -frac ranks fractional parts largest first and breaks ties by index.
    order = np.argsort(-frac, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(n_symbols), order.shape), axis=-1)
    freqs = 1 + base.astype(np.int64) + (ranks < remainder[..., None])
    if np.any(freqs.sum(axis=-1) != total):  # cannot happen for n * eps * total << 1; kept as a tripwire
        raise RuntimeError("pmf_to_freqs produced a table that does not sum to 2**precision_bits")
    return freqs


def freqs_to_cdf(freqs: np.ndarray) -> np.ndarray:
    """Cumulative table of shape (..., n + 1): 0, f0, f0 + f1, ..., total (int64)."""
    freqs = np.asarray(freqs, dtype=np.int64)
    zero = np.zeros(freqs.shape[:-1] + (1,), dtype=np.int64)
    return np.concatenate([zero, np.cumsum(freqs, axis=-1)], axis=-1)


def cdf_table_digest(tables: np.ndarray | Sequence[np.ndarray]) -> str:
    """SHA-256 (hex) of one integer table or a sequence of tables, to pin shipped tables in a test.

    Each table contributes its number of dimensions, its shape and its values, all as little-endian int64,
    so the digest does not depend on dtype, byte order or how the tables were split.
    """
    items = [tables] if isinstance(tables, np.ndarray) else list(tables)
    sha = hashlib.sha256()
    for table in items:
        arr = np.asarray(table)
        if not np.issubdtype(arr.dtype, np.integer):
            raise ParameterError(f"cdf_table_digest needs integer tables, got dtype {arr.dtype}")
        header = np.array([arr.ndim, *arr.shape], dtype="<i8")
        sha.update(header.tobytes())
        sha.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return sha.hexdigest()


@dataclass(frozen=True, eq=False)
class ScaleTableSet:
    """One frequency table per quantized scale for a Laplace or Gaussian family.

    Attributes
    ----------
    family : "laplace" | "gaussian"
    scales : np.ndarray of float64, shape (N_SCALES,)
        The scale grid, increasing, exactly representable.
    tails : np.ndarray of int64, shape (N_SCALES,)
        Half-width t of each table: offsets -t..t are coded directly, the rest through the escape symbol.
    tables : tuple of np.ndarray of int64, table k of shape (2 * tails[k] + 2,)
        Frequencies out of ``2**PARAMETRIC_PRECISION_BITS``; the last entry is the escape symbol.
    """

    family: Family
    scales: np.ndarray
    tails: np.ndarray
    tables: tuple[np.ndarray, ...]

    def scale_index(self, scale: np.ndarray) -> np.ndarray:
        """Index of the nearest grid scale in the log domain (clipped to the grid), same shape as `scale`."""
        return np.searchsorted(_scale_boundaries(), np.asarray(scale, dtype=np.float64), side="right")

    def digest(self) -> str:
        """SHA-256 of the scale grid (as its integer multiples of the grid step), the tails and the tables."""
        grid_units = np.round(self.scales * 2.0**SCALE_GRID_FRACTION_BITS).astype(np.int64)
        return cdf_table_digest([grid_units, self.tails, *self.tables])


@functools.cache
def scale_grid() -> np.ndarray:
    """The `N_SCALES` log-spaced scales from `SCALE_MIN` to `SCALE_MAX`, on a dyadic grid (read-only)."""
    log_ratio = math.log(SCALE_MAX / SCALE_MIN) / (N_SCALES - 1)
    step = 2.0**SCALE_GRID_FRACTION_BITS
    grid = np.array([round(SCALE_MIN * math.exp(k * log_ratio) * step) / step for k in range(N_SCALES)])
    grid.setflags(write=False)
    return grid


@functools.cache
def _scale_boundaries() -> np.ndarray:
    """Geometric midpoints between neighbouring grid scales, shape (N_SCALES - 1,)."""
    grid = scale_grid()
    bounds = np.sqrt(grid[:-1] * grid[1:])
    bounds.setflags(write=False)
    return bounds


def _laplace_pmf(scale: float, tail: int) -> list[float]:
    """Laplace(0, scale) mass of the integer bins 0..tail, then of |offset| > tail (one side)."""
    # P(0) = 1 - e^(-1/2b); P(d) = sinh(1/2b) e^(-d/b) for d >= 1; P(|d| > t, one side) = e^(-(t+1/2)/b) / 2
    centre = -math.expm1(-0.5 / scale)
    side = math.sinh(0.5 / scale)
    return (
        [centre]
        + [side * math.exp(-d / scale) for d in range(1, tail + 1)]
        + [0.5 * math.exp(-(tail + 0.5) / scale)]
    )


def _gaussian_pmf(scale: float, tail: int) -> list[float]:
    """N(0, scale**2) mass of the integer bins 0..tail, then of |offset| > tail (one side)."""
    inv = 1.0 / (scale * math.sqrt(2.0))
    # Differences of erfc (upper tails) keep their precision far out, where 1 - erf would cancel.
    upper = [math.erfc((d + 0.5) * inv) for d in range(tail + 1)]
    centre = math.erf(0.5 * inv)
    return [centre] + [0.5 * (upper[d - 1] - upper[d]) for d in range(1, tail + 1)] + [0.5 * upper[tail]]


@functools.cache
def scale_table_set(family: Family) -> ScaleTableSet:
    """Build (once per process) a family's table set; identical bits on every machine (see module doc)."""
    if family not in TAIL_WIDTH_IN_SCALES:
        raise ParameterError(f"family={family!r} must be one of {sorted(TAIL_WIDTH_IN_SCALES)}")
    pmf_of = _laplace_pmf if family == "laplace" else _gaussian_pmf
    tails, tables = [], []
    for scale in scale_grid():
        tail = max(1, math.ceil(float(scale) * TAIL_WIDTH_IN_SCALES[family]))
        one_side = pmf_of(float(scale), tail)
        centre, positive, escape = one_side[0], one_side[1 : tail + 1], 2.0 * one_side[tail + 1]
        pmf = np.array(positive[::-1] + [centre] + positive + [escape])
        table = pmf_to_freqs(pmf, precision_bits=PARAMETRIC_PRECISION_BITS)
        table.setflags(write=False)
        tails.append(tail)
        tables.append(table)
    tails_arr = np.array(tails, dtype=np.int64)
    tails_arr.setflags(write=False)
    return ScaleTableSet(family=family, scales=scale_grid(), tails=tails_arr, tables=tuple(tables))
