"""Tests for nsac.dsp.mdct and nsac.dsp.mdct_torch: definitions, TDAC, block switching, numpy/torch agreement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nsac.dsp import mdct, mdct_torch
from nsac.errors import ParameterError

PR_TOLERANCE_F64 = 1e-10
PR_TOLERANCE_F32 = 1e-5
DIRECT_TOLERANCE = 1e-12
TORCH_TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
WINDOWS: list[tuple[str, dict[str, Any]]] = [("sine", {}), ("kbd", {}),
                                               ("kbd", {"alpha_long": 2.0, "alpha_short": 3.0})]
SWITCHING: list[mdct.WindowType] = ["long", "start", "short", "stop", "long"]


def _direct_mdct(block: np.ndarray, window: np.ndarray) -> np.ndarray:
    """X[k] = sqrt(2/N) sum_n w[n] x[n] cos(pi/N (n + 1/2 + N/2)(k + 1/2)), O(N^2)."""
    n_bins = block.size // 2
    n, k = np.arange(2 * n_bins)[:, None], np.arange(n_bins)[None, :]
    basis = np.sqrt(2.0 / n_bins) * np.cos(np.pi / n_bins * (n + 0.5 + n_bins / 2) * (k + 0.5))
    return np.asarray((window * block) @ basis)


def _signal(n_samples: int, *, channels: tuple[int, ...] = (), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((*channels, n_samples))


# ---------------------------------------------------------------- definitions


@pytest.mark.parametrize("n", [2, 8, 16, 64])
def test_dct4_matches_its_definition_and_is_its_own_inverse(n: int) -> None:
    values = _signal(n, channels=(3,))
    j = np.arange(n)
    basis = np.sqrt(2.0 / n) * np.cos(np.pi / n * (j[:, None] + 0.5) * (j[None, :] + 0.5))
    np.testing.assert_allclose(mdct.dct4(values), values @ basis, atol=DIRECT_TOLERANCE)
    np.testing.assert_allclose(mdct.dct4(mdct.dct4(values)), values, atol=DIRECT_TOLERANCE)


@pytest.mark.parametrize("n_bins", [2, 4, 8, 16, 32])
@pytest.mark.parametrize("shape", ["sine", "kbd"])
def test_mdct_and_imdct_match_the_direct_definition(n_bins: int, shape: mdct.WindowShape) -> None:
    window = mdct.make_window(2 * n_bins, shape=shape)
    block = _signal(2 * n_bins, seed=n_bins)
    coefficients = mdct.mdct(block, window=window)
    np.testing.assert_allclose(coefficients, _direct_mdct(block, window), atol=DIRECT_TOLERANCE)
    n, k = np.arange(2 * n_bins)[:, None], np.arange(n_bins)[None, :]
    basis = np.sqrt(2.0 / n_bins) * np.cos(np.pi / n_bins * (n + 0.5 + n_bins / 2) * (k + 0.5))
    np.testing.assert_allclose(mdct.imdct(coefficients, window=window), window * (basis @ coefficients),
                               atol=DIRECT_TOLERANCE)


@pytest.mark.parametrize("n_window", [16, 256, 2048])
@pytest.mark.parametrize(("shape", "alpha"), [("sine", 0.0), ("kbd", 4.0), ("kbd", 6.0), ("kbd", 0.5)])
def test_windows_satisfy_the_princen_bradley_condition(n_window: int, shape: mdct.WindowShape,
                                                       alpha: float) -> None:
    window = mdct.make_window(n_window, shape=shape, alpha=alpha)
    half = n_window // 2
    np.testing.assert_allclose(window[:half] ** 2 + window[half:] ** 2, 1.0, atol=1e-14)
    np.testing.assert_allclose(window, window[::-1], atol=1e-15)


@pytest.mark.parametrize(("previous", "following"), [("long", "long"), ("long", "start"), ("start", "short"),
                                                     ("short", "short"), ("short", "stop"), ("stop", "long"),
                                                     ("stop", "start")])
def test_every_allowed_transition_meets_princen_bradley_where_the_frames_overlap(
        previous: mdct.WindowType, following: mdct.WindowType) -> None:
    n_bins = 64
    n_short = n_bins // mdct.N_SHORT_BLOCKS

    def halves(kind: mdct.WindowType) -> tuple[np.ndarray, np.ndarray]:
        """The frame's effective window over its 2N samples (a short frame: its outer block slopes)."""
        if kind != "short":
            window = mdct.frame_window(kind, n_bins=n_bins)
            return window[:n_bins], window[n_bins:]
        short = mdct.frame_window("short", n_bins=n_bins)
        flat = (n_bins - n_short) // 2
        rise = np.concatenate([np.zeros(flat), short[:n_short], np.ones(flat)])
        return rise, rise[::-1]

    right, left = halves(previous)[1], halves(following)[0]
    np.testing.assert_allclose(right ** 2 + left ** 2, 1.0, atol=1e-14)
    np.testing.assert_allclose(right, left[::-1], atol=1e-15)


# ---------------------------------------------------------------- perfect reconstruction


@pytest.mark.parametrize(("shape", "options"), WINDOWS)
@pytest.mark.parametrize("n_bins", [16, 64, 1024])
@pytest.mark.parametrize("n_samples", [1, 999, 4096])
def test_long_blocks_reconstruct_random_signals_perfectly(shape: mdct.WindowShape, options: dict[str, Any],
                                                          n_bins: int, n_samples: int) -> None:
    signal = _signal(n_samples, channels=(2,), seed=n_samples)
    coefficients = mdct.mdct_analysis(signal, n_bins=n_bins, shape=shape, **options)
    assert coefficients.shape == (2, mdct.n_frames(n_samples, n_bins=n_bins), n_bins)
    rebuilt = mdct.mdct_synthesis(coefficients, n_samples=n_samples, shape=shape, **options)
    assert np.max(np.abs(rebuilt - signal)) < PR_TOLERANCE_F64


@pytest.mark.parametrize(("shape", "options"), WINDOWS)
def test_window_switching_long_start_short_stop_long_reconstructs_perfectly(shape: mdct.WindowShape,
                                                                            options: dict[str, Any]) -> None:
    n_bins = 128
    signal = _signal(3 * n_bins + 5)  # 5 frames
    assert mdct.n_frames(signal.size, n_bins=n_bins) == len(SWITCHING)
    coefficients = mdct.mdct_analysis(signal, n_bins=n_bins, sequence=SWITCHING, shape=shape, **options)
    rebuilt = mdct.mdct_synthesis(coefficients, n_samples=signal.size, sequence=SWITCHING, shape=shape,
                                  **options)
    assert np.max(np.abs(rebuilt - signal)) < PR_TOLERANCE_F64


@pytest.mark.parametrize("seed", range(5))
def test_random_switching_sequences_reconstruct_perfectly_and_preserve_energy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_bins = 64
    signal = _signal(40 * n_bins - 7, channels=(2,), seed=seed)
    count = mdct.n_frames(signal.shape[-1], n_bins=n_bins)
    sequence = mdct.window_sequence(rng.random(count) < 0.3)
    coefficients = mdct.mdct_analysis(signal, n_bins=n_bins, sequence=sequence, shape="kbd")
    rebuilt = mdct.mdct_synthesis(coefficients, n_samples=signal.shape[-1], sequence=sequence, shape="kbd")
    assert np.max(np.abs(rebuilt - signal)) < PR_TOLERANCE_F64
    # TDAC with orthonormal blocks is an orthogonal transform: Parseval holds over the whole signal
    np.testing.assert_allclose(np.sum(coefficients ** 2), np.sum(signal ** 2), rtol=1e-12)


def test_float32_reconstructs_within_float32_precision() -> None:
    signal = _signal(5000).astype(np.float32)
    sequence = mdct.window_sequence(np.arange(mdct.n_frames(signal.size, n_bins=256)) == 7)
    coefficients = mdct.mdct_analysis(signal, n_bins=256, sequence=sequence)
    assert coefficients.dtype == np.float32
    rebuilt = mdct.mdct_synthesis(coefficients, n_samples=signal.size, sequence=sequence)
    assert np.max(np.abs(rebuilt - signal)) < PR_TOLERANCE_F32


def test_frame_by_frame_transforms_equal_the_whole_signal_ones() -> None:
    n_bins = 64
    signal = _signal(10 * n_bins)
    sequence = mdct.window_sequence(np.arange(mdct.n_frames(signal.size, n_bins=n_bins)) == 4)
    frames = mdct.frame_signal(signal, n_bins=n_bins)
    one_by_one = np.stack([mdct.mdct_frame(frame, window_type=kind) for frame, kind in zip(frames, sequence)])
    np.testing.assert_allclose(one_by_one, mdct.mdct_analysis(signal, n_bins=n_bins, sequence=sequence),
                               atol=1e-13)
    blocks = np.stack([mdct.imdct_frame(c, window_type=kind) for c, kind in zip(one_by_one, sequence)])
    rebuilt = mdct.overlap_add(blocks)[n_bins:n_bins + signal.size]
    assert np.max(np.abs(rebuilt - signal)) < PR_TOLERANCE_F64


# ---------------------------------------------------------------- what the transform does


@pytest.mark.parametrize("shape", ["sine", "kbd"])
@pytest.mark.parametrize("bin_offset", [0.0, 0.3])
def test_a_tone_compacts_into_a_few_coefficients(shape: mdct.WindowShape, bin_offset: float) -> None:
    n_bins, rate_hz = 256, 48_000
    frequency_hz = (40 + 0.5 + bin_offset) * rate_hz / (2 * n_bins)
    tone = np.sin(2 * np.pi * frequency_hz * np.arange(rate_hz // 4) / rate_hz + 0.3)
    energy = mdct.mdct_analysis(tone, n_bins=n_bins, shape=shape)[2:-2] ** 2  # frames inside the tone
    largest = np.sort(energy, axis=1)[:, ::-1]
    assert np.min(largest[:, :4].sum(axis=1) / energy.sum(axis=1)) > 0.99
    assert np.all(np.abs(np.argmax(energy, axis=1) - 40) <= 1)


def test_short_blocks_keep_an_impulse_in_its_own_blocks() -> None:
    n_bins = 128
    n_short = n_bins // mdct.N_SHORT_BLOCKS
    signal = np.zeros(8 * n_bins)
    frame, block = 4, 3
    # middle of short block 3 of frame 4: signal sample 4 N - N/2 + 3.5 M
    signal[frame * n_bins - n_bins // 2 + int(3.5 * n_short)] = 1.0
    sequence = mdct.window_sequence(np.arange(mdct.n_frames(signal.size, n_bins=n_bins)) == frame)
    coefficients = mdct.mdct_analysis(signal, n_bins=n_bins, sequence=sequence)
    block_energy = (coefficients[frame].reshape(mdct.N_SHORT_BLOCKS, n_short) ** 2).sum(axis=1)
    assert block_energy[block - 1] + block_energy[block] + block_energy[block + 1] == pytest.approx(1.0)
    assert np.all(block_energy[: block - 1] < 1e-25) and np.all(block_energy[block + 2:] < 1e-25)
    other = np.delete(coefficients, frame, axis=0)
    assert np.sum(other ** 2) < 1e-25  # the neighbouring start/stop windows are zero there


def test_window_sequence_follows_the_flags_and_the_transition_rules() -> None:
    flags = [False, False, True, False, False, True, False, True, False, False]
    sequence = mdct.window_sequence(flags)
    assert sequence == ["long", "start", "short", "stop", "start", "short", "short", "short", "stop", "long"]
    mdct.check_window_sequence(sequence)
    assert mdct.window_sequence([True]) == ["short"]
    assert mdct.window_sequence([]) == []
    with pytest.raises(ParameterError, match="frame 1"):
        mdct.check_window_sequence(["long", "short"])


def test_bad_parameters_raise_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="multiple of 16"):
        mdct.mdct_analysis(np.zeros(100), n_bins=40, sequence=["short"] * 4)
    with pytest.raises(ParameterError, match="entries"):
        mdct.mdct_analysis(np.zeros(100), n_bins=32, sequence=["long"])
    with pytest.raises(ParameterError, match="window_type"):
        mdct.frame_window("medium", n_bins=32)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="even"):
        mdct.sine_window(7)
    with pytest.raises(ParameterError, match="frames"):
        mdct.mdct_synthesis(np.zeros((2, 32)), n_samples=100)


# ---------------------------------------------------------------- torch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("shape", "options"), WINDOWS)
def test_torch_agrees_with_numpy(dtype: torch.dtype, shape: mdct.WindowShape, options: dict[str, Any]) -> None:
    n_bins = 64
    signal = _signal(12 * n_bins + 3, channels=(2,))
    sequence = mdct.window_sequence(np.isin(np.arange(mdct.n_frames(signal.shape[-1], n_bins=n_bins)),
                                            [3, 4, 8]))
    expected = mdct.mdct_analysis(signal, n_bins=n_bins, sequence=sequence, shape=shape, **options)
    got = mdct_torch.mdct_analysis(torch.tensor(signal, dtype=dtype), n_bins=n_bins, sequence=sequence,
                                   shape=shape, **options)
    assert got.dtype == dtype
    tolerance = TORCH_TOLERANCE[dtype]
    assert np.max(np.abs(got.numpy() - expected)) < tolerance * max(1.0, np.max(np.abs(expected)))
    rebuilt = mdct_torch.mdct_synthesis(got, n_samples=signal.shape[-1], sequence=sequence, shape=shape,
                                        **options)
    assert np.max(np.abs(rebuilt.numpy() - signal)) < tolerance * np.max(np.abs(signal))
    np.testing.assert_allclose(mdct_torch.dct4(torch.tensor(signal[..., :64], dtype=dtype)).numpy(),
                               mdct.dct4(signal[..., :64]), atol=tolerance * 10)


def test_torch_transforms_pass_gradcheck_in_float64() -> None:
    n_bins = 16
    signal = torch.randn(2, 5 * n_bins, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                         requires_grad=True)
    sequence = mdct.window_sequence([False, False, True, False, False, False])

    def round_trip(x: torch.Tensor) -> torch.Tensor:
        coefficients = mdct_torch.mdct_analysis(x, n_bins=n_bins, sequence=sequence, shape="kbd")
        return mdct_torch.mdct_synthesis(coefficients ** 3, n_samples=x.shape[-1], sequence=sequence,
                                         shape="kbd")

    assert torch.autograd.gradcheck(round_trip, (signal,))


def test_torch_batch_equals_items_one_by_one() -> None:
    batch = torch.randn(3, 700, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sequence = mdct.window_sequence(np.arange(mdct.n_frames(700, n_bins=64)) == 5)
    together = mdct_torch.mdct_analysis(batch, n_bins=64, sequence=sequence)
    for item in range(3):
        alone = mdct_torch.mdct_analysis(batch[item], n_bins=64, sequence=sequence)
        torch.testing.assert_close(together[item], alone, rtol=0, atol=1e-12)
