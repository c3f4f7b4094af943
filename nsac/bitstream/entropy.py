"""Range coding for nsac codecs: categorical, quantized Laplace/Gaussian and uniform symbols in one stream.

The coder is constriction's `RangeEncoder`/`RangeDecoder` (a queue: symbols come out in the order they went
in, across any mix of the ``encode_*`` calls). The models are ours: integer frequency tables from
`nsac.bitstream.entropy_models`, handed to constriction without re-quantization.

How the integers reach constriction exactly
-------------------------------------------
constriction 0.5 has no constructor that takes integer frequencies, so we use
``constriction.stream.model.Categorical(weights, perfect=False)`` (and its per-symbol family, which uses the
lazy variant of the same rule). Both quantize float weights ``w`` of n symbols at 24 bits as
``cdf[i] = floor(sum(w[:i]) * (2**24 - n) / sum(w)) + i``. We pass ``w = f * 2**(24 - p) - 1`` for a table
``f`` of precision p: those are integers below 2**24, every partial sum is exact in float64, the scale factor
is exactly 1.0, and so ``cdf[i] = sum(f[:i]) * 2**(24 - p)``, i.e. our table, bit for bit. The golden byte
string in the tests would notice if a future constriction changed that rule.

Escapes (Laplace/Gaussian offsets beyond a table's tail t, so that every integer is codable)::

    ESCAPE symbol | sign (1 bit) | Elias gamma of v = |offset| - t:  L zeros, a one, the L low bits of v

The escape payloads of one call follow all of its table symbols, in the flattened order of the values.
Table symbols themselves are coded grouped by scale index (ascending), which the decoder can mirror
because it knows the scales; this turns N per-symbol models into at most `N_SCALES` i.i.d. runs.

Means are rounded to integers (one table per scale, not per scale and fraction). For integer data with a
fractional predicted mean this costs rate at small scales (measured on Laplace data with uniform fractional
means: +19 % at scale 0.3, +1.8 % at 1, +0.2 % at 3). Latents of a mean-scale hyperprior codec avoid it the
usual way: code ``round(y - mean)`` with ``mean=0`` and add the mean back after decoding.

Bytes are the coder's 32-bit words in little-endian order.
"""

from __future__ import annotations

import functools

import constriction
import numpy as np

from nsac.bitstream.entropy_models import (
    CODER_PRECISION_BITS,
    PARAMETRIC_PRECISION_BITS,
    Family,
    scale_table_set,
)
from nsac.errors import BitstreamError, ParameterError

#: Values and means are bounded so that offsets and escape payloads stay exact in int64 and float64.
VALUE_LIMIT = 2**60
MEAN_LIMIT = 2.0**52
#: Elias-gamma lengths beyond this cannot come from `VALUE_LIMIT`; a decoder seeing one reads garbage.
MAX_ESCAPE_LENGTH_BITS = 61
#: Uniform values wider than this many bits are coded as several digits, most significant first.
UNIFORM_DIGIT_BITS = 16
UNIFORM_MAX_LEVELS = 2**62
_WORD_DTYPE = np.dtype("<u4")
_model = constriction.stream.model


# ----------------------------------------------------------------------------------------------- arguments


def _as_int_array(values: np.ndarray, *, name: str, limit: int) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ParameterError(f"{name} must hold integers; got non-integral or non-finite floats")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ParameterError(f"{name} has dtype {arr.dtype}; expected integers")
    if arr.size and (np.max(np.abs(arr.astype(np.float64))) > limit):
        raise ParameterError(f"{name} has a value {arr.flat[np.argmax(np.abs(arr))]} beyond +-{limit}")
    return arr.astype(np.int64)


def _broadcast(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise ParameterError(f"{name} of shape {arr.shape} does not broadcast to shape {shape}") from None


def _mean_scale(mean, scale, shape) -> tuple[np.ndarray, np.ndarray]:
    mean_arr = np.asarray(mean, dtype=np.float64)
    scale_arr = np.asarray(scale, dtype=np.float64)
    bad_mean = ~(np.abs(mean_arr) <= MEAN_LIMIT)  # also catches NaN
    if np.any(bad_mean):
        raise ParameterError(
            f"mean must be finite and within +-2**52; got mean={float(mean_arr[bad_mean].flat[0])}"
        )
    bad_scale = ~(np.isfinite(scale_arr) & (scale_arr > 0))
    if np.any(bad_scale):
        raise ParameterError(f"scale must be finite and > 0; got scale={float(scale_arr[bad_scale].flat[0])}")
    if shape is None:
        shape = np.broadcast_shapes(mean_arr.shape, scale_arr.shape)
    return _broadcast("mean", mean_arr, shape), _broadcast("scale", scale_arr, shape)


def _check_freq_tables(freq_tables: np.ndarray) -> np.ndarray:
    """Validate integer tables (..., n) and return them as constriction weights (float64, see module doc)."""
    tables = np.asarray(freq_tables)
    if not np.issubdtype(tables.dtype, np.integer) or tables.ndim == 0 or tables.shape[-1] < 2:
        raise ParameterError(
            f"freq_tables must be integer frequencies of shape (..., n >= 2); got {tables.dtype} "
            f"{tables.shape}"
        )
    tables = tables.astype(np.int64)
    if np.any(tables < 1):
        raise ParameterError("freq_tables has a frequency < 1; every symbol needs a count to stay codable")
    totals = tables.sum(axis=-1)
    total = int(totals.flat[0]) if totals.size else 2
    if np.any(totals != total) or total & (total - 1) or total > 2**CODER_PRECISION_BITS:
        raise ParameterError(
            f"freq_tables rows must all sum to one power of two <= 2**{CODER_PRECISION_BITS}; got {total}"
        )
    return (tables * (2**CODER_PRECISION_BITS // total) - 1).astype(np.float64)


def _uniform_digits(n_levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digit layout of uniform values: (n_low_digits (m,), digit sizes (m, 4), digit mask (m, 4))."""
    span = n_levels - 1
    n_low = sum((span >= 2 ** (UNIFORM_DIGIT_BITS * j)).astype(np.int64) for j in (1, 2, 3))
    sizes = np.full((n_levels.size, 4), 2**UNIFORM_DIGIT_BITS, dtype=np.int64)
    sizes[:, 0] = (span >> (UNIFORM_DIGIT_BITS * n_low)) + 1
    mask = (np.arange(4)[None, :] <= n_low[:, None]) & (n_levels[:, None] > 1)
    return n_low, sizes, mask


def _check_n_levels(n_levels, shape) -> np.ndarray:
    levels = np.asarray(n_levels)
    if not np.issubdtype(levels.dtype, np.integer):
        raise ParameterError(f"n_levels has dtype {levels.dtype}; expected integers in 1..2**62")
    bad = (levels < 1) | (levels > UNIFORM_MAX_LEVELS)
    if np.any(bad):
        raise ParameterError(f"n_levels={levels[bad].flat[0]} must lie in 1..2**62")
    return _broadcast("n_levels", levels.astype(np.int64), shape).ravel()


def _parametric_symbols(family: Family, values, mean, scale) -> tuple[np.ndarray, ...]:
    """Flattened (offsets, scale index, tails, escaped mask, table symbols) of values under a family."""
    vals = _as_int_array(values, name="values", limit=VALUE_LIMIT)
    mean_arr, scale_arr = _mean_scale(mean, scale, vals.shape)
    table_set = scale_table_set(family)
    offsets = (vals - np.rint(mean_arr).astype(np.int64)).ravel()
    index = table_set.scale_index(scale_arr).ravel()
    tails = table_set.tails[index]
    escaped = np.abs(offsets) > tails
    symbols = np.where(escaped, 2 * tails + 1, offsets + tails)
    return offsets, index, tails, escaped, symbols


@functools.cache
def _table_model(family: Family, index: int):
    weights = (
        scale_table_set(family).tables[index] * 2 ** (CODER_PRECISION_BITS - PARAMETRIC_PRECISION_BITS) - 1
    )
    return _model.Categorical(weights.astype(np.float64), perfect=False)


# ------------------------------------------------------------------------------------------------- encoder


class RangeEncoder:
    """Append symbols of any model, in any order, to one range-coded byte string.

    Examples
    --------
    >>> enc = RangeEncoder()
    >>> enc.encode_laplace(np.array([0, 3, -2]), mean=0.2, scale=1.5)
    >>> enc.encode_uniform(np.array([5]), n_levels=10)
    >>> dec = RangeDecoder(enc.get_bytes())
    >>> dec.decode_laplace(shape=(3,), mean=0.2, scale=1.5).tolist()
    [0, 3, -2]
    >>> dec.decode_uniform(shape=(1,), n_levels=10).tolist()
    [5]
    """

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode_categorical(self, symbols: np.ndarray, freq_tables: np.ndarray) -> None:
        """Code symbols in 0..n-1 with integer frequency tables (see `entropy_models.pmf_to_freqs`).

        symbols: int array of any shape S. freq_tables: int array (n,) shared by all symbols, or S + (n,) with
        one table per symbol; rows sum to the same power of two <= 2**24, every entry >= 1.
        """
        tables = np.asarray(freq_tables)
        syms = _as_int_array(symbols, name="symbols", limit=VALUE_LIMIT)
        if tables.ndim >= 1 and tables.shape[:-1] not in ((), syms.shape):
            raise ParameterError(
                f"freq_tables shape {tables.shape} fits neither (n,) nor symbols {syms.shape} + (n,)"
            )
        weights = _check_freq_tables(tables)
        if syms.size and (syms.min() < 0 or syms.max() >= weights.shape[-1]):
            raise ParameterError(
                f"symbols must lie in 0..{weights.shape[-1] - 1}; got {syms.min()}..{syms.max()}"
            )
        if syms.size == 0:
            return
        if weights.ndim == 1:
            self._coder.encode(syms.ravel().astype(np.int32), _model.Categorical(weights, perfect=False))
        else:
            rows = weights.reshape(-1, weights.shape[-1])
            self._coder.encode(syms.ravel().astype(np.int32), _model.Categorical(perfect=False), rows)

    def encode_laplace(
        self, values: np.ndarray, *, mean: np.ndarray | float = 0.0, scale: np.ndarray | float
    ) -> None:
        """Code integers under a Laplace(mean, scale) quantized to unit bins; any integer is codable.

        values: int array, shape S (|values| <= 2**60). mean, scale: floats broadcastable to S; scale is the
        diversity b (std = sqrt(2) b), quantized to the nearest of 64 log-spaced scales in [0.1, 256];
        mean is rounded to an integer, the table coding value - rint(mean).
        """
        self._encode_parametric("laplace", values, mean, scale)

    def encode_gaussian(
        self, values: np.ndarray, *, mean: np.ndarray | float = 0.0, scale: np.ndarray | float
    ) -> None:
        """As `encode_laplace`, under a Gaussian whose standard deviation is `scale`."""
        self._encode_parametric("gaussian", values, mean, scale)

    def encode_uniform(self, values: np.ndarray, *, n_levels: np.ndarray | int) -> None:
        """Code integers 0 <= values < n_levels uniformly; n_levels (<= 2**62) broadcasts to values."""
        vals = _as_int_array(values, name="values", limit=UNIFORM_MAX_LEVELS).ravel()
        levels = _check_n_levels(n_levels, np.shape(values))
        if np.any(vals < 0) or np.any(vals >= levels):
            raise ParameterError("values must satisfy 0 <= values < n_levels")
        n_low, sizes, mask = _uniform_digits(levels)
        shifts = UNIFORM_DIGIT_BITS * (n_low[:, None] - np.arange(4)[None, :]).clip(0)
        digits = (vals[:, None] >> shifts) & np.where(np.arange(4) == 0, -1, 2**UNIFORM_DIGIT_BITS - 1)
        self._encode_raw(digits[mask], sizes[mask])

    def get_bytes(self) -> bytes:
        """The stream so far, sealed so that it decodes on its own; encoding may continue afterwards."""
        return self._coder.get_compressed().astype(_WORD_DTYPE).tobytes()

    def _encode_raw(self, digits: np.ndarray, sizes: np.ndarray) -> None:
        if digits.size:
            self._coder.encode(digits.astype(np.int32), _model.Uniform(), sizes.astype(np.int32))

    def _encode_parametric(self, family: Family, values, mean, scale) -> None:
        offsets, index, tails, escaped, symbols = _parametric_symbols(family, values, mean, scale)
        for k in np.unique(index):
            self._coder.encode(symbols[index == k].astype(np.int32), _table_model(family, int(k)))
        digits: list[int] = []
        sizes: list[int] = []
        for offset, tail in zip(offsets[escaped].tolist(), tails[escaped].tolist(), strict=True):
            excess = abs(offset) - tail  # >= 1, the Elias-gamma argument
            length = excess.bit_length() - 1
            digits += [int(offset < 0)] + [0] * length + [1]
            sizes += [2] * (length + 2)
            for shift in range(length - length % UNIFORM_DIGIT_BITS, -1, -UNIFORM_DIGIT_BITS):
                width = min(UNIFORM_DIGIT_BITS, length - shift)
                if width:
                    digits.append((excess >> shift) & ((1 << width) - 1))
                    sizes.append(1 << width)
        self._encode_raw(np.array(digits, dtype=np.int64), np.array(sizes, dtype=np.int64))


# ------------------------------------------------------------------------------------------------- decoder


class RangeDecoder:
    """Read back what a `RangeEncoder` wrote, call for call, with the same models and shapes.

    Garbage or truncated input raises BitstreamError or decodes to garbage values; it never crashes or hangs.
    """

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ParameterError(f"data must be bytes; got {type(data).__name__}")
        if len(data) % _WORD_DTYPE.itemsize:
            raise BitstreamError(
                f"entropy-coded data of {len(data)} bytes is truncated (not whole 32-bit words)"
            )
        words = np.frombuffer(bytes(data), dtype=_WORD_DTYPE).astype(np.uint32)
        self._coder = constriction.stream.queue.RangeDecoder(words)

    def decode_categorical(
        self, freq_tables: np.ndarray, *, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Mirror of `encode_categorical`: int64 symbols of shape `shape` (default freq_tables.shape[:-1])."""
        tables = np.asarray(freq_tables)
        weights = _check_freq_tables(tables)
        if shape is None:
            shape = tables.shape[:-1]
        shape = tuple(shape)
        if weights.ndim > 1 and weights.shape[:-1] != shape:
            raise ParameterError(f"freq_tables shape {tables.shape} does not match shape {shape} + (n,)")
        count = int(np.prod(shape))
        if count == 0:
            return np.zeros(shape, dtype=np.int64)
        if weights.ndim == 1:
            out = self._call(self._coder.decode, _model.Categorical(weights, perfect=False), count)
        else:
            rows = weights.reshape(-1, weights.shape[-1])
            out = self._call(self._coder.decode, _model.Categorical(perfect=False), rows)
        return np.asarray(out, dtype=np.int64).reshape(shape)

    def decode_laplace(
        self,
        *,
        shape: tuple[int, ...] | None = None,
        mean: np.ndarray | float = 0.0,
        scale: np.ndarray | float,
    ) -> np.ndarray:
        """Mirror of `encode_laplace`: int64 values of `shape` (default: broadcast of mean and scale)."""
        return self._decode_parametric("laplace", shape, mean, scale)

    def decode_gaussian(
        self,
        *,
        shape: tuple[int, ...] | None = None,
        mean: np.ndarray | float = 0.0,
        scale: np.ndarray | float,
    ) -> np.ndarray:
        """Mirror of `encode_gaussian`: int64 values of `shape` (default: broadcast of mean and scale)."""
        return self._decode_parametric("gaussian", shape, mean, scale)

    def decode_uniform(self, *, shape: tuple[int, ...], n_levels: np.ndarray | int) -> np.ndarray:
        """Mirror of `encode_uniform`: int64 values of `shape` in 0..n_levels-1."""
        shape = tuple(shape)
        levels = _check_n_levels(n_levels, shape)
        n_low, sizes, mask = _uniform_digits(levels)
        digits = np.zeros(sizes.shape, dtype=np.int64)
        digits[mask] = self._decode_raw(sizes[mask])
        shifts = UNIFORM_DIGIT_BITS * (n_low[:, None] - np.arange(4)[None, :]).clip(0)
        values = np.bitwise_or.reduce(np.where(mask, digits << shifts, 0), axis=1)
        if np.any(values >= levels):
            raise BitstreamError("decoded a uniform value beyond n_levels; the data is corrupt")
        return values.reshape(shape)

    def _call(self, fn, *args):
        # constriction reports invalid data with Python exceptions and, for some states, with a Rust panic
        # (pyo3's PanicException derives from BaseException); both mean the bytes are corrupt.
        try:
            return fn(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            raise BitstreamError(f"entropy-coded data is corrupt or truncated ({exc})") from exc

    def _decode_raw(self, sizes: np.ndarray) -> np.ndarray:
        if sizes.size == 0:
            return np.zeros(0, dtype=np.int64)
        out = self._call(self._coder.decode, _model.Uniform(), sizes.astype(np.int32))
        return np.asarray(out, dtype=np.int64)

    def _decode_bit(self) -> int:
        return int(self._decode_raw(np.array([2]))[0])

    def _decode_parametric(self, family: Family, shape, mean, scale) -> np.ndarray:
        mean_arr, scale_arr = _mean_scale(mean, scale, None if shape is None else tuple(shape))
        table_set = scale_table_set(family)
        index = table_set.scale_index(scale_arr).ravel()
        tails = table_set.tails[index]
        symbols = np.zeros(index.size, dtype=np.int64)
        for k in np.unique(index):
            where = index == k
            count = int(np.count_nonzero(where))
            symbols[where] = self._call(self._coder.decode, _table_model(family, int(k)), count)
        offsets = symbols - tails
        for pos in np.flatnonzero(symbols == 2 * tails + 1).tolist():
            negative = self._decode_bit()
            length = 0
            while self._decode_bit() == 0:
                length += 1
                if length > MAX_ESCAPE_LENGTH_BITS:
                    raise BitstreamError("escape code longer than any encoder writes; the data is corrupt")
            excess = 1
            for shift in range(length - length % UNIFORM_DIGIT_BITS, -1, -UNIFORM_DIGIT_BITS):
                width = min(UNIFORM_DIGIT_BITS, length - shift)
                if width:
                    excess = (excess << width) | int(self._decode_raw(np.array([1 << width]))[0])
            magnitude = int(tails[pos]) + excess
            offsets[pos] = -magnitude if negative else magnitude
        centre = np.rint(mean_arr).astype(np.int64)
        return centre + offsets.reshape(centre.shape)


# ------------------------------------------------------------------------------------------------ estimate


def bits_estimate(
    values: np.ndarray,
    *,
    model: str,
    freq_tables: np.ndarray | None = None,
    mean: np.ndarray | float = 0.0,
    scale: np.ndarray | float | None = None,
    n_levels: np.ndarray | int | None = None,
) -> np.ndarray:
    """Ideal code length in bits of each value under the integer tables the coder uses, for rate control.

    The coder spends this sum plus at most a few words of flush; escapes are counted with their payload.

    Parameters
    ----------
    values : int array, shape S
    model : "categorical" (needs `freq_tables`), "laplace" or "gaussian" (need `scale`, optionally `mean`),
        or "uniform" (needs `n_levels`); the same arguments as the matching ``encode_*`` method.

    Returns
    -------
    np.ndarray of float64, shape S
    """
    shape = np.shape(values)
    if model == "categorical":
        if freq_tables is None:
            raise ParameterError("model='categorical' needs freq_tables")
        tables = np.asarray(freq_tables)
        syms = _as_int_array(values, name="values", limit=VALUE_LIMIT)
        weights = _check_freq_tables(tables)
        if weights.ndim > 1 and weights.shape[:-1] != syms.shape:
            raise ParameterError(
                f"freq_tables shape {tables.shape} fits neither (n,) nor values {shape} + (n,)"
            )
        if syms.size and (syms.min() < 0 or syms.max() >= weights.shape[-1]):
            raise ParameterError(f"values must lie in 0..{weights.shape[-1] - 1}")
        freqs = np.take_along_axis(
            np.broadcast_to(weights, syms.shape + weights.shape[-1:]), syms[..., None], -1
        )
        return CODER_PRECISION_BITS - np.log2(freqs[..., 0] + 1.0)
    if model in ("laplace", "gaussian"):
        if scale is None:
            raise ParameterError(f"model={model!r} needs scale")
        offsets, index, tails, escaped, symbols = _parametric_symbols(model, values, mean, scale)
        tables = scale_table_set(model).tables
        freqs = np.zeros(index.size, dtype=np.float64)
        for k in np.unique(index):
            where = index == k
            freqs[where] = tables[k][symbols[where]]
        bits = PARAMETRIC_PRECISION_BITS - np.log2(freqs)
        excess = np.abs(offsets[escaped]) - tails[escaped]
        gamma_length = np.array([int(e).bit_length() - 1 for e in excess.tolist()], dtype=np.float64)
        bits[escaped] += 1.0 + 2.0 * gamma_length + 1.0  # sign, then Elias gamma
        return bits.reshape(shape)
    if model == "uniform":
        if n_levels is None:
            raise ParameterError("model='uniform' needs n_levels")
        _, sizes, mask = _uniform_digits(_check_n_levels(n_levels, shape))
        return np.where(mask, np.log2(sizes), 0.0).sum(axis=1).reshape(shape)
    raise ParameterError(f"model={model!r} must be 'categorical', 'laplace', 'gaussian' or 'uniform'")
