"""Tests of the range coder and its integer tables: round trips, exactness, efficiency, golden bits."""

from __future__ import annotations

import math

import constriction
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsac.bitstream.entropy import RangeDecoder, RangeEncoder, bits_estimate
from nsac.bitstream.entropy_models import (
    N_SCALES,
    PARAMETRIC_PRECISION_BITS,
    cdf_table_digest,
    freqs_to_cdf,
    pmf_to_freqs,
    scale_grid,
    scale_table_set,
)
from nsac.errors import BitstreamError, ParameterError

# Pinned: a change here changes every bitstream an nsac codec writes, so it needs a format version bump.
GOLDEN_TABLE_DIGESTS = {
    "laplace": "0f7243d3345bd78b9ff36a0763d3293e152875ae0e6444dec45d6f50f15eba3f",
    "gaussian": "0b3509e9575fc9019264a2807db7d1eb1553b360f4d6a8f5c51264b7d26465af",
}
GOLDEN_STREAM_HEX = (
    "20ead305d0a36db6458d6bcd600e546e87d778640b34ddc88bd75dc5ddf91adbc0cbd09963379a56"
    "5079c8b8058952d92b3dc8ff00000077fffff706be11f2ff2941269fdd479105d8be00360080e9f7"
)
# Coded size may exceed the ideal by this fraction plus the coder's final flush.
EFFICIENCY_SLACK_FRACTION = 0.01
FLUSH_SLACK_BYTES = 8

PROPERTY_SETTINGS = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _golden_inputs() -> dict[str, dict[str, np.ndarray]]:
    """A fixed mix of every model, built from arithmetic sequences (no RNG whose stream could change)."""
    index = np.arange(40)
    return {
        "categorical": {"symbols": index * 7 % 5, "freq_tables": pmf_to_freqs(np.arange(1.0, 6.0))},
        "laplace": {"values": (index * 13 % 21) - 10, "mean": index * 0.37 - 3.0, "scale": 0.5 + index * 0.8},
        "gaussian": {
            "values": np.array([0, 5, -1000, 2**40]),
            "mean": np.array([0.4, 4.6, 0.0, -2.5]),
            "scale": np.array(0.7),
        },
        "uniform": {
            "values": np.append(index[:8] * 977 % 1000, 2**40 + 12345),
            "n_levels": np.append(np.full(8, 1000), 2**41),
        },
    }


def _golden_stream() -> bytes:
    enc = RangeEncoder()
    inputs = _golden_inputs()
    enc.encode_categorical(inputs["categorical"]["symbols"], inputs["categorical"]["freq_tables"])
    for model in ("laplace", "gaussian", "uniform"):
        args = dict(inputs[model])
        getattr(enc, f"encode_{model}")(args.pop("values"), **args)
    return enc.get_bytes()


# --------------------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("family", ["laplace", "gaussian"])
def test_parametric_tables_are_valid_cdfs(family):
    table_set = scale_table_set(family)
    assert len(table_set.tables) == N_SCALES == len(table_set.tails)
    for table, tail in zip(table_set.tables, table_set.tails, strict=True):
        assert table.shape == (2 * tail + 2,)
        assert table.min() >= 1
        cdf = freqs_to_cdf(table)
        assert cdf[0] == 0 and cdf[-1] == 2**PARAMETRIC_PRECISION_BITS
        assert np.all(np.diff(cdf) > 0)
        # Symmetric and unimodal around offset 0, as the distribution is.
        body = table[:-1]
        assert np.array_equal(body, body[::-1]) or np.abs(body - body[::-1]).max() <= 1
        assert np.all(np.diff(body[tail:]) <= 0)


@pytest.mark.parametrize("family", sorted(GOLDEN_TABLE_DIGESTS))
def test_parametric_tables_match_golden_digest(family):
    assert scale_table_set(family).digest() == GOLDEN_TABLE_DIGESTS[family]


def test_scale_grid_is_exactly_representable_and_increasing():
    grid = scale_grid()
    assert grid.shape == (N_SCALES,)
    assert np.all(np.diff(grid) > 0)
    assert np.all(grid * 2.0**20 == np.round(grid * 2.0**20))
    # Nearest in the log domain: a scale on the grid maps to itself, between two grid points to the closer.
    table_set = scale_table_set("laplace")
    assert np.array_equal(table_set.scale_index(grid), np.arange(N_SCALES))
    assert table_set.scale_index(np.array([1e-6, 1e6])).tolist() == [0, N_SCALES - 1]


@PROPERTY_SETTINGS
@given(
    pmf=st.lists(
        st.floats(min_value=0.0, max_value=1e6, allow_subnormal=True), min_size=2, max_size=300
    ).filter(lambda p: sum(p) > 0),
    precision_bits=st.integers(min_value=9, max_value=24),
)
def test_pmf_to_freqs_gives_valid_tables(pmf, precision_bits):
    freqs = pmf_to_freqs(np.array(pmf), precision_bits=precision_bits)
    assert freqs.min() >= 1
    assert freqs.sum() == 2**precision_bits
    # Each frequency is within one count of its share of the counts left after the free one per symbol.
    free = 2**precision_bits - len(pmf)
    share = np.array(pmf) / np.sum(pmf) * free
    assert np.all(np.abs(freqs - 1 - share) < 1.0 + 1e-6)


def test_pmf_to_freqs_is_batched_row_by_row():
    rng = np.random.default_rng(3)
    pmfs = rng.dirichlet(np.ones(7), size=(4, 5))
    batched = pmf_to_freqs(pmfs, precision_bits=12)
    for i in range(4):
        for j in range(5):
            assert np.array_equal(batched[i, j], pmf_to_freqs(pmfs[i, j], precision_bits=12))


def test_pmf_to_freqs_breaks_ties_by_index():
    assert pmf_to_freqs(np.ones(3), precision_bits=4).tolist() == [6, 5, 5]


def test_table_digest_ignores_dtype_but_not_values():
    table = pmf_to_freqs(np.array([0.2, 0.3, 0.5]))
    assert cdf_table_digest(table) == cdf_table_digest(table.astype(np.uint32))
    assert cdf_table_digest(table) != cdf_table_digest(table[::-1])
    assert cdf_table_digest([table, table]) != cdf_table_digest(np.concatenate([table, table]))


def test_integer_tables_reach_constriction_exactly():
    """A table equal to constriction's own Uniform(size) quantization must code to the same words."""
    size = 7
    per_bin = 2**24 // size
    table = np.array([per_bin] * (size - 1) + [2**24 - (size - 1) * per_bin])
    symbols = np.arange(200) * 5 % size
    ours = RangeEncoder()
    ours.encode_categorical(symbols, table)
    reference = constriction.stream.queue.RangeEncoder()
    reference.encode(symbols.astype(np.int32), constriction.stream.model.Uniform(size))
    assert ours.get_bytes() == reference.get_compressed().astype("<u4").tobytes()
    # One table per symbol goes through constriction's lazy model; it must agree bit for bit.
    batched = RangeEncoder()
    batched.encode_categorical(symbols, np.tile(table, (symbols.size, 1)))
    assert batched.get_bytes() == ours.get_bytes()


# ------------------------------------------------------------------------------------------ round trips

_scales = st.floats(min_value=1e-3, max_value=1e4)
_means = st.floats(min_value=-1e3, max_value=1e3)
# Mostly near the mean, sometimes far into the escape range, sometimes at the limit.
_values = st.one_of(
    st.integers(-20, 20),
    st.integers(-(10**6), 10**6),
    st.integers(-(2**60), 2**60),
    st.sampled_from([-(2**60), 2**60]),
)


@PROPERTY_SETTINGS
@given(
    family=st.sampled_from(["laplace", "gaussian"]),
    items=st.lists(st.tuples(_values, _means, _scales), min_size=0, max_size=50),
)
def test_parametric_round_trip(family, items):
    values = np.array([v for v, _, _ in items], dtype=np.int64)
    mean = np.array([m for _, m, _ in items])
    scale = np.array([s for _, _, s in items])
    enc = RangeEncoder()
    getattr(enc, f"encode_{family}")(values, mean=mean, scale=scale)
    decoded = getattr(RangeDecoder(enc.get_bytes()), f"decode_{family}")(mean=mean, scale=scale)
    assert decoded.dtype == np.int64
    assert np.array_equal(decoded, values)


@PROPERTY_SETTINGS
@given(
    n_symbols=st.integers(2, 40),
    precision_bits=st.integers(8, 24),
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from([(), (0,), (9,), (3, 4)]),
    per_symbol=st.booleans(),
)
def test_categorical_round_trip(n_symbols, precision_bits, seed, shape, per_symbol):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=4.0, size=(shape if per_symbol else ()) + (n_symbols,))
    pmf = np.exp(logits - logits.max(axis=-1, keepdims=True))
    tables = pmf_to_freqs(pmf, precision_bits=precision_bits)
    symbols = rng.integers(0, n_symbols, size=shape)
    enc = RangeEncoder()
    enc.encode_categorical(symbols, tables)
    decoded = RangeDecoder(enc.get_bytes()).decode_categorical(tables, shape=shape)
    assert decoded.shape == shape and np.array_equal(decoded, symbols)


@PROPERTY_SETTINGS
@given(
    items=st.lists(
        st.integers(1, 2**62).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))), max_size=30
    )
)
def test_uniform_round_trip(items):
    values = np.array([v for v, _ in items], dtype=np.int64)
    n_levels = np.array([n for _, n in items], dtype=np.int64)
    enc = RangeEncoder()
    enc.encode_uniform(values, n_levels=n_levels)
    decoded = RangeDecoder(enc.get_bytes()).decode_uniform(shape=values.shape, n_levels=n_levels)
    assert np.array_equal(decoded, values)


def test_interleaved_models_decode_in_order():
    rng = np.random.default_rng(11)
    table = pmf_to_freqs(np.array([0.7, 0.2, 0.1]))
    cat = rng.integers(0, 3, size=50)
    lap = rng.integers(-30, 30, size=(4, 5))
    lap_scale = rng.uniform(0.2, 20.0, size=(4, 5))
    uni = rng.integers(0, 1000, size=17)
    gau = np.array([3, -4000, 12])
    enc = RangeEncoder()
    enc.encode_categorical(cat, table)
    enc.encode_laplace(lap, mean=1.3, scale=lap_scale)
    enc.encode_uniform(uni, n_levels=1000)
    enc.encode_gaussian(gau, scale=2.0)
    enc.encode_categorical(cat[::-1], table)
    dec = RangeDecoder(enc.get_bytes())
    assert np.array_equal(dec.decode_categorical(table, shape=cat.shape), cat)
    assert np.array_equal(dec.decode_laplace(mean=1.3, scale=lap_scale), lap)
    assert np.array_equal(dec.decode_uniform(shape=uni.shape, n_levels=1000), uni)
    assert np.array_equal(dec.decode_gaussian(shape=(3,), scale=2.0), gau)
    assert np.array_equal(dec.decode_categorical(table, shape=cat.shape), cat[::-1])


def test_golden_stream():
    """The bits for a fixed input are pinned: a change in tables, escapes or the coder shows up here."""
    data = _golden_stream()
    assert data.hex() == GOLDEN_STREAM_HEX
    dec = RangeDecoder(data)
    inputs = _golden_inputs()
    cat = inputs["categorical"]
    assert np.array_equal(
        dec.decode_categorical(cat["freq_tables"], shape=cat["symbols"].shape), cat["symbols"]
    )
    for model in ("laplace", "gaussian", "uniform"):
        args = dict(inputs[model])
        expected = args.pop("values")
        assert np.array_equal(getattr(dec, f"decode_{model}")(shape=expected.shape, **args), expected)


# ------------------------------------------------------------------------------------------ efficiency


def _discrete_laplace_entropy_bits(scale: float) -> float:
    """Entropy of round(Laplace(0, scale)) in bits per symbol (the tail past 60 scales is negligible)."""
    d = np.arange(1, int(60 * scale) + 2)
    p0 = -math.expm1(-0.5 / scale)
    p = math.sinh(0.5 / scale) * np.exp(-d / scale)
    return float(-p0 * math.log2(p0) - 2.0 * np.sum(p * np.log2(p)))


@pytest.mark.parametrize("scale", [0.3, 3.0, 40.0])
def test_laplace_coded_size_is_near_entropy(scale):
    rng = np.random.default_rng(5)
    n_values = 100_000
    values = np.rint(rng.laplace(scale=scale, size=n_values)).astype(np.int64)
    enc = RangeEncoder()
    enc.encode_laplace(values, scale=scale)
    coded_bits = 8 * len(enc.get_bytes())
    ideal_bits = n_values * _discrete_laplace_entropy_bits(scale)
    assert coded_bits <= ideal_bits * (1 + EFFICIENCY_SLACK_FRACTION) + 8 * FLUSH_SLACK_BYTES
    # The estimate is what the coder spends, up to the flush.
    estimate = bits_estimate(values, model="laplace", scale=scale).sum()
    assert estimate <= coded_bits <= estimate + 8 * FLUSH_SLACK_BYTES


def test_bits_estimate_matches_coder_for_every_model():
    rng = np.random.default_rng(9)
    pmf = rng.dirichlet(np.ones(6), size=2000)
    tables = pmf_to_freqs(pmf)
    symbols = np.array([rng.choice(6, p=row) for row in pmf])
    values = np.array([0, 1, -700, 2**50])
    for encode, estimate in [
        (
            lambda e: e.encode_categorical(symbols, tables),
            bits_estimate(symbols, model="categorical", freq_tables=tables),
        ),
        (lambda e: e.encode_gaussian(values, scale=0.5), bits_estimate(values, model="gaussian", scale=0.5)),
        (
            lambda e: e.encode_uniform(symbols, n_levels=2**20),
            bits_estimate(symbols, model="uniform", n_levels=2**20),
        ),
    ]:
        enc = RangeEncoder()
        encode(enc)
        assert estimate.sum() <= 8 * len(enc.get_bytes()) <= estimate.sum() + 8 * FLUSH_SLACK_BYTES


# ------------------------------------------------------------------------------------- garbage and errors


def _decode_everything(data: bytes) -> None:
    dec = RangeDecoder(data)
    dec.decode_categorical(pmf_to_freqs(np.array([0.5, 0.25, 0.25])), shape=(20,))
    dec.decode_laplace(mean=np.linspace(-5, 5, 30), scale=0.1)  # tiny scale: garbage often escapes
    dec.decode_uniform(shape=(5,), n_levels=np.array([3, 2**20, 3 * 2**31, 2**62, 1]))
    dec.decode_gaussian(shape=(10,), scale=100.0)


@settings(max_examples=200, deadline=2000)
@given(data=st.binary(max_size=200))
def test_garbage_raises_bitstream_error_or_decodes(data):
    try:
        _decode_everything(data)
    except BitstreamError:
        pass


@settings(max_examples=40, deadline=2000)
@given(cut=st.integers(0, 400))
def test_truncated_stream_raises_bitstream_error_or_decodes(cut):
    data = _golden_stream()
    try:
        _decode_everything(data[: min(cut, len(data) - 1)])
    except BitstreamError:
        pass


def test_odd_length_is_truncated():
    with pytest.raises(BitstreamError, match="truncated"):
        RangeDecoder(b"\x00\x01\x02")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.encode_laplace(np.array([1]), scale=0.0), "scale=0.0"),
        (lambda e: e.encode_gaussian(np.array([1]), scale=np.nan), "scale=nan"),
        (lambda e: e.encode_laplace(np.array([1, 2]), scale=np.ones(3)), "broadcast"),
        (lambda e: e.encode_laplace(np.array([0.5]), scale=1.0), "integers"),
        (lambda e: e.encode_laplace(np.array([2**61]), scale=1.0), "beyond"),
        (lambda e: e.encode_laplace(np.array([1]), mean=np.inf, scale=1.0), "mean=inf"),
        (lambda e: e.encode_categorical(np.array([3]), np.array([2, 2])), "0..1"),
        (lambda e: e.encode_categorical(np.array([0]), np.array([0, 4])), "< 1"),
        (lambda e: e.encode_categorical(np.array([0]), np.array([2, 3])), "power of two"),
        (lambda e: e.encode_categorical(np.array([0, 1]), np.array([[2, 2]] * 3)), "fits neither"),
        (lambda e: e.encode_uniform(np.array([5]), n_levels=5), "n_levels"),
        (lambda e: e.encode_uniform(np.array([0]), n_levels=0), "n_levels=0"),
    ],
)
def test_bad_arguments_raise_parameter_error(call, message):
    with pytest.raises(ParameterError, match=message):
        call(RangeEncoder())


def test_pmf_to_freqs_rejects_bad_input():
    with pytest.raises(ParameterError, match="n >= 2"):
        pmf_to_freqs(np.array([1.0]))
    with pytest.raises(ParameterError, match="nonnegative"):
        pmf_to_freqs(np.array([0.5, -0.1]))
    with pytest.raises(ParameterError, match="do not fit"):
        pmf_to_freqs(np.ones(300), precision_bits=8)
    with pytest.raises(ParameterError, match="precision_bits=25"):
        pmf_to_freqs(np.ones(3), precision_bits=25)
