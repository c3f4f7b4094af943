"""Mu-law: the 256-level round trip stays within its analytic error bound; companding inverts exactly."""

from __future__ import annotations

import numpy as np
import pytest

from nsac.dsp.mulaw import (
    N_MULAW_LEVELS,
    mulaw_compress,
    mulaw_decode,
    mulaw_encode,
    mulaw_error_bound,
    mulaw_expand,
)
from nsac.errors import ParameterError


def test_round_trip_error_is_within_the_bound():
    x = np.concatenate([np.linspace(-1, 1, 200_001), np.random.default_rng(0).uniform(-1, 1, 10_000)])
    error = np.abs(mulaw_decode(mulaw_encode(x)) - x)
    assert np.all(error <= mulaw_error_bound(x) * (1 + 1e-9))
    assert np.max(error) <= 0.022  # the bound at full scale: 2.2 % of full scale
    assert np.max(error[np.abs(x) < 1e-3]) < 1.5e-4  # fine steps near zero, where speech spends its time


def test_codes_cover_the_levels_and_are_monotonic():
    x = np.linspace(-1, 1, 100_000)
    codes = mulaw_encode(x)
    assert codes.min() == 0 and codes.max() == N_MULAW_LEVELS - 1
    assert np.all(np.diff(codes) >= 0)
    assert len(np.unique(codes)) == N_MULAW_LEVELS
    np.testing.assert_array_equal(mulaw_encode(mulaw_decode(np.arange(256))), np.arange(256))


def test_companding_inverts_and_is_odd():
    x = np.linspace(-1, 1, 1001)
    np.testing.assert_allclose(mulaw_expand(mulaw_compress(x)), x, atol=1e-12)
    np.testing.assert_allclose(mulaw_compress(-x), -mulaw_compress(x), atol=1e-15)
    assert mulaw_compress(1.0) == pytest.approx(1.0) and mulaw_compress(0.0) == 0.0


def test_out_of_range_codes_raise():
    with pytest.raises(ParameterError):
        mulaw_decode(np.array([0, 256]))
