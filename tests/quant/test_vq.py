"""VQ: LBG distortion never rises, searches agree with brute force, M-best beats greedy, files are checked."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nsac.errors import ParameterError, WeightsError
from nsac.quant import vq


def correlated_data(n: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dims)) @ rng.standard_normal((dims, dims))


def test_lbg_distortion_never_rises():
    result = vq.lbg(correlated_data(4000, 6, seed=0), size=64, iterations=8, seed=1)
    assert result.codebook.shape == (64, 6)
    history = result.history
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])
    assert history[-1] < 0.25 * history[0]


def test_lbg_reaches_any_size_and_beats_random_codebooks():
    data = correlated_data(3000, 4, seed=2)
    result = vq.lbg(data, size=48, iterations=10, seed=0)
    assert result.codebook.shape == (48, 4)
    random_codebook = data[np.random.default_rng(0).choice(len(data), 48, replace=False)]
    assert result.history[-1] < vq.nearest(data, random_codebook)[1].mean()


def test_kmeans_fills_empty_cells_without_raising_distortion():
    data = correlated_data(1000, 3, seed=3)
    duplicated = np.repeat(data[:4], 4, axis=0)  # 16 codewords, 12 of them duplicates with empty cells
    result = vq.kmeans(data, duplicated, iterations=10)
    assert np.all(np.isfinite(result.codebook))
    assert np.all(np.diff(result.history) <= 1e-12 * result.history[:-1])
    assert len(np.unique(result.codebook, axis=0)) == 16


def test_nearest_and_m_best_agree_with_brute_force():
    rng = np.random.default_rng(4)
    x, codebook = rng.standard_normal((300, 5)), rng.standard_normal((40, 5))
    brute = np.sum((x[:, None, :] - codebook[None]) ** 2, axis=-1)
    index, error = vq.nearest(x, codebook)
    np.testing.assert_array_equal(index, np.argmin(brute, axis=1))
    np.testing.assert_allclose(error, brute.min(axis=1), atol=1e-10)
    best, best_error = vq.m_best(x, codebook, m=5)
    np.testing.assert_array_equal(best, np.argsort(brute, axis=1)[:, :5])
    np.testing.assert_allclose(best_error, np.sort(brute, axis=1)[:, :5], atol=1e-10)


def test_msvq_m_best_is_at_least_as_good_as_greedy():
    data = correlated_data(6000, 8, seed=5)
    codebooks = vq.msvq_train(data, stage_sizes=(32, 32, 32), iterations=8, seed=0)
    held_out = correlated_data(2000, 8, seed=6)
    _, greedy = vq.msvq_search(held_out, codebooks, m=1)
    _, best5 = vq.msvq_search(held_out, codebooks, m=5)
    assert best5.mean() <= greedy.mean()
    assert np.mean(best5 <= greedy + 1e-12) >= 0.98  # per vector, M-best is almost never worse
    _, best32 = vq.msvq_search(held_out, codebooks, m=32)
    assert best32.mean() <= best5.mean()


def test_msvq_with_all_survivors_is_the_exhaustive_search():
    rng = np.random.default_rng(7)
    codebooks = [rng.standard_normal((6, 3)), rng.standard_normal((5, 3))]
    x = rng.standard_normal((50, 3))
    indices, error = vq.msvq_search(x, codebooks, m=30)
    pairs = np.array(list(itertools.product(range(6), range(5))))
    sums = codebooks[0][pairs[:, 0]] + codebooks[1][pairs[:, 1]]
    brute = np.sum((x[:, None, :] - sums[None]) ** 2, axis=-1)
    np.testing.assert_allclose(error, brute.min(axis=1), atol=1e-10)
    np.testing.assert_allclose(vq.msvq_decode(indices, codebooks), sums[np.argmin(brute, axis=1)], atol=1e-12)


def test_switched_search_agrees_with_brute_force_and_training_never_rises():
    rng = np.random.default_rng(8)
    targets = rng.standard_normal((400, 3, 4))
    books = [rng.standard_normal((k, 4)) for k in (8, 4, 4)]
    found = vq.switched_search(targets, books, signed=True)
    for n in range(0, 400, 37):
        candidates = [(np.sum((targets[n, t] - s * c) ** 2), t, i, s)
                      for t, book in enumerate(books) for i, c in enumerate(book) for s in (1, -1)]
        best = min(candidates, key=lambda item: item[0])
        assert (found.target[n], found.index[n], found.sign[n]) == best[1:]
        assert found.squared_error[n] == pytest.approx(best[0], abs=1e-10)
    trained, history = vq.switched_train(targets, sizes=(8, 4, 4), iterations=10, seed=0)
    assert [b.shape for b in trained] == [(8, 4), (4, 4), (4, 4)]
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])


def test_codebook_files_round_trip_and_are_checked(tmp_path):
    books = {"a": np.arange(12.0).reshape(3, 4), "b": np.ones((2, 2))}
    path = tmp_path / "books.safetensors"
    sha = vq.save_codebooks(path, books, metadata={"seed": 3})
    loaded, metadata = vq.load_codebooks(path, sha256=sha)
    assert metadata == {"seed": 3}
    for name, value in books.items():
        np.testing.assert_array_equal(loaded[name], value)
    again = vq.save_codebooks(tmp_path / "again.safetensors", books, metadata={"seed": 3})
    assert again == sha  # the same tables and metadata give the same file
    with pytest.raises(WeightsError):
        vq.load_codebooks(path, sha256="0" * 64)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        vq.load_codebooks(path, sha256=sha)
    with pytest.raises(WeightsError):
        vq.load_codebooks(tmp_path / "missing.safetensors")


def test_bad_arguments_raise():
    with pytest.raises(ParameterError):
        vq.lbg(np.zeros((3, 2)), size=4)
    with pytest.raises(ParameterError):
        vq.m_best(np.zeros((3, 2)), np.zeros((2, 2)), m=3)
    with pytest.raises(ParameterError):
        vq.nearest(np.zeros(3), np.zeros((2, 3)))
