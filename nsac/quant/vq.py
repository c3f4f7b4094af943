"""Vector quantisation: nearest and M-best search, LBG training, multi-stage and switched-predictor VQ.

* LBG (Linde, Buzo & Gray, IEEE Trans. Commun. 28(1), 1980): grow a codebook from the data's centroid by
  splitting codewords and running Lloyd iterations (k-means) after each split. A split keeps the codeword and
  adds a perturbed copy, so the codebook only ever gains codewords and the training distortion never rises.
* Multi-stage VQ (Juang & Gray, ICASSP 1982): stage ``s`` quantises what stages ``0..s-1`` left; the search
  keeps the M best partial paths per stage (LeBlanc et al., IEEE Trans. SAP 1(4), 1993) rather than only
  the best.
* Switched-predictor VQ: the vector to code is one of T prediction residuals ``x - pred_t``; entry ``k`` of
  the codebook of target ``t`` (optionally with a sign) codes residual ``t``. The search picks the target, the
  entry and the sign together.

Codebooks are stored as safetensors with string metadata, and identified by the file's SHA-256, which the
loader checks. Distances are squared Euclidean; training data is float (N, D).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import ParameterError, WeightsError

SEARCH_CHUNK = 8192
"""Vectors per block of the distance matrix (bounds memory at SEARCH_CHUNK x codebook size)."""
SPLIT_PERTURBATION = 0.01
"""A split copy is moved by this fraction of the data's per-dimension standard deviation, random sign."""


class TrainingResult(NamedTuple):
    codebook: NDArray[np.float64]
    """Shape (K, D)."""
    history: NDArray[np.float64]
    """Mean squared error per vector after every assignment step, in order (non-increasing)."""


class SwitchedResult(NamedTuple):
    target: NDArray[np.int64]
    """Which prediction target each vector uses, shape (N,)."""
    index: NDArray[np.int64]
    """Entry within that target's codebook, shape (N,)."""
    sign: NDArray[np.int64]
    """+1 or -1, shape (N,)."""
    squared_error: NDArray[np.float64]
    """Shape (N,)."""


def _as_2d(x: ArrayLike, name: str) -> NDArray:
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ParameterError(f"{name} must have shape (N, D) with N > 0, got {array.shape}")
    return array


def squared_distances(x: ArrayLike, codebook: ArrayLike) -> NDArray[np.float64]:
    """``||x_n - c_k||^2`` for every pair, shape (N, K) from x (N, D) and codebook (K, D)."""
    x = np.asarray(x)
    codebook = np.asarray(codebook)
    dot = x @ codebook.T
    norms = np.sum(x * x, axis=1)[:, None] + np.sum(codebook * codebook, axis=1)[None, :]
    return np.maximum(norms - 2.0 * dot, 0.0)


def nearest(x: ArrayLike, codebook: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Index of the nearest codeword and the squared error, each of shape (N,), for x (N, D)."""
    x = _as_2d(x, "x")
    codebook = _as_2d(codebook, "codebook")
    index = np.empty(x.shape[0], dtype=np.int64)
    error = np.empty(x.shape[0])
    for start in range(0, x.shape[0], SEARCH_CHUNK):
        d = squared_distances(x[start: start + SEARCH_CHUNK], codebook)
        best = np.argmin(d, axis=1)
        index[start: start + SEARCH_CHUNK] = best
        error[start: start + SEARCH_CHUNK] = d[np.arange(best.size), best]
    return index, error


def m_best(x: ArrayLike, codebook: ArrayLike, *, m: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The m nearest codewords of each vector, nearest first: indices and squared errors, shape (N, m)."""
    x = _as_2d(x, "x")
    codebook = _as_2d(codebook, "codebook")
    if not 1 <= m <= codebook.shape[0]:
        raise ParameterError(f"m={m} must lie in 1..{codebook.shape[0]} (the codebook size)")
    d = squared_distances(x, codebook)
    part = np.argpartition(d, m - 1, axis=1)[:, :m] if m < d.shape[1] else np.tile(np.arange(m), (len(d), 1))
    part_d = np.take_along_axis(d, part, axis=1)
    order = np.argsort(part_d, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_d, order, axis=1)


def _centroids(data: NDArray, index: NDArray[np.int64], size: int) -> tuple[NDArray[np.float64], NDArray]:
    counts = np.bincount(index, minlength=size)
    sums = np.stack([np.bincount(index, weights=data[:, d], minlength=size) for d in range(data.shape[1])],
                    axis=1)
    return sums / np.maximum(counts, 1)[:, None], counts


def kmeans(data: ArrayLike, codebook: ArrayLike, *, iterations: int,
           tolerance: float = 1e-4) -> TrainingResult:
    """Lloyd iterations from a given codebook (the generalised Lloyd algorithm).

    Each iteration assigns every vector to its nearest codeword and moves each codeword to the centroid of its
    cell. A codeword whose cell is empty is moved onto the vector that is worst coded at that point, which
    can only lower the distortion. Stops after ``iterations`` or when the relative improvement falls below
    ``tolerance``.

    Parameters
    ----------
    data : training vectors, shape (N, D)
    codebook : initial codewords, shape (K, D)

    Returns
    -------
    TrainingResult(codebook (K, D) float64, history of the mean squared error after each assignment)
    """
    data = _as_2d(data, "data")
    codebook = np.array(_as_2d(codebook, "codebook"), dtype=np.float64)
    history: list[float] = []
    for _ in range(iterations):
        index, error = nearest(data, codebook)
        history.append(float(error.mean()))
        if len(history) > 1 and history[-2] - history[-1] <= tolerance * history[-2]:
            break
        updated, counts = _centroids(data, index, codebook.shape[0])
        empty = np.flatnonzero(counts == 0)
        codebook = np.where((counts > 0)[:, None], updated, codebook)
        if empty.size:
            worst = np.argsort(error, kind="stable")[::-1][: empty.size]
            codebook[empty[: worst.size]] = data[worst]
    return TrainingResult(codebook, np.asarray(history))


def lbg(data: ArrayLike, *, size: int, iterations: int = 20, seed: int = 0,
        tolerance: float = 1e-4) -> TrainingResult:
    """Train a codebook of ``size`` codewords with LBG splitting.

    Start from the centroid; while the codebook is smaller than ``size``, split the codewords whose cells
    carry the most distortion (all of them until the last round) into the codeword and a copy moved by
    ``SPLIT_PERTURBATION`` standard deviations in a random direction, then run :func:`kmeans`.

    Parameters
    ----------
    data : training vectors, shape (N, D), N >= size
    size : number of codewords
    iterations : Lloyd iterations per split at most
    seed : seed of the perturbation directions

    Returns
    -------
    TrainingResult(codebook (size, D), history: MSE after every assignment step over the whole training)
    """
    data = _as_2d(data, "data")
    if not 1 <= size <= data.shape[0]:
        raise ParameterError(f"size={size} must lie in 1..{data.shape[0]} (the number of training vectors)")
    rng = np.random.default_rng(seed)
    scale = SPLIT_PERTURBATION * np.maximum(np.std(data, axis=0), 1e-12)
    codebook = np.mean(data, axis=0, dtype=np.float64)[None, :]
    history = [float(np.mean(np.sum((data - codebook) ** 2, axis=1)))]
    while codebook.shape[0] < size:
        index, error = nearest(data, codebook)
        cell_error = np.bincount(index, weights=error, minlength=codebook.shape[0])
        n_split = min(codebook.shape[0], size - codebook.shape[0])
        chosen = np.argsort(cell_error, kind="stable")[::-1][:n_split]
        directions = rng.choice([-1.0, 1.0], size=(n_split, data.shape[1]))
        codebook = np.concatenate([codebook, codebook[chosen] + directions * scale], axis=0)
        result = kmeans(data, codebook, iterations=iterations, tolerance=tolerance)
        codebook = result.codebook
        history.extend(result.history.tolist())
    return TrainingResult(codebook, np.asarray(history))


def msvq_train(data: ArrayLike, *, stage_sizes: Sequence[int], iterations: int = 20,
               seed: int = 0) -> list[NDArray[np.float64]]:
    """Train a multi-stage VQ stage by stage with :func:`lbg`, each stage on the residual of the ones before.

    Parameters
    ----------
    data : training vectors, shape (N, D)
    stage_sizes : codewords per stage

    Returns
    -------
    one codebook per stage, shapes (K_s, D)
    """
    residual = np.array(_as_2d(data, "data"), dtype=np.float64)
    codebooks = []
    for stage, size in enumerate(stage_sizes):
        codebook = lbg(residual, size=size, iterations=iterations, seed=seed + stage).codebook
        index, _ = nearest(residual, codebook)
        residual -= codebook[index]
        codebooks.append(codebook)
    return codebooks


def msvq_search(x: ArrayLike, codebooks: Sequence[ArrayLike], *,
                m: int = 1) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Multi-stage search keeping the ``m`` best partial paths after every stage (``m = 1``: greedy).

    Parameters
    ----------
    x : vectors, shape (N, D)
    codebooks : one per stage, shapes (K_s, D)
    m : survivors per stage

    Returns
    -------
    indices : shape (N, n_stages)
    squared_error : of the reconstruction ``sum_s codebooks[s][indices[:, s]]``, shape (N,)
    """
    x = np.asarray(_as_2d(x, "x"), dtype=np.float64)
    books = [np.asarray(c, dtype=np.float64) for c in codebooks]
    if m < 1:
        raise ParameterError(f"m={m} must be a positive number of survivors")
    block = max(1, SEARCH_CHUNK // m)
    indices = np.concatenate([_msvq_block(x[start: start + block], books, m)
                              for start in range(0, x.shape[0], block)], axis=0)
    error = np.sum((x - msvq_decode(indices, books)) ** 2, axis=1)
    return indices, error


def _msvq_block(x: NDArray[np.float64], books: list[NDArray[np.float64]], m: int) -> NDArray[np.int64]:
    n = x.shape[0]
    paths = np.zeros((n, 1, 0), dtype=np.int64)
    residual = x[:, None, :]
    for book in books:
        survivors = residual.shape[1]
        keep = min(m, survivors * book.shape[0])
        flat = residual.reshape(n * survivors, -1)
        d = squared_distances(flat, book).reshape(n, survivors * book.shape[0])
        if keep < d.shape[1]:
            choice = np.argpartition(d, keep - 1, axis=1)[:, :keep]
        else:
            choice = np.tile(np.arange(d.shape[1]), (n, 1))
        order = np.argsort(np.take_along_axis(d, choice, axis=1), axis=1, kind="stable")
        choice = np.take_along_axis(choice, order, axis=1)
        parent, entry = np.divmod(choice, book.shape[0])
        kept = np.take_along_axis(paths, parent[:, :, None], axis=1)
        paths = np.concatenate([kept, entry[:, :, None]], axis=2)
        residual = np.take_along_axis(residual, parent[:, :, None], axis=1) - book[entry]
    return paths[:, 0, :]


def msvq_decode(indices: ArrayLike, codebooks: Sequence[ArrayLike]) -> NDArray[np.float64]:
    """The sum of each stage's codeword, shape (N, D) from indices (N, n_stages)."""
    indices = np.asarray(indices)
    out = np.zeros(indices.shape[:-1] + (np.asarray(codebooks[0]).shape[1],))
    for stage, book in enumerate(codebooks):
        out += np.asarray(book, dtype=np.float64)[indices[..., stage]]
    return out


def switched_search(targets: ArrayLike, codebooks: Sequence[ArrayLike], *, signed: bool) -> SwitchedResult:
    """Nearest (target, entry, sign) for vectors that may code any of T prediction residuals.

    Parameters
    ----------
    targets : the T residuals of each vector, shape (N, T, D)
    codebooks : one per target, shapes (K_t, D)
    signed : also try the negated entries

    Returns
    -------
    SwitchedResult(target, index, sign, squared_error), each of shape (N,); ties go to the lower target, then
    the lower index, then the positive sign
    """
    targets = np.asarray(targets, dtype=np.float64)
    n = targets.shape[0]
    best_error = np.full(n, np.inf)
    best_target = np.zeros(n, dtype=np.int64)
    best_index = np.zeros(n, dtype=np.int64)
    best_sign = np.ones(n, dtype=np.int64)
    for t, book in enumerate(codebooks):
        for sign in ((1, -1) if signed else (1,)):
            index, error = nearest(targets[:, t, :], sign * np.asarray(book, dtype=np.float64))
            better = error < best_error
            best_error = np.where(better, error, best_error)
            best_target = np.where(better, t, best_target)
            best_index = np.where(better, index, best_index)
            best_sign = np.where(better, sign, best_sign)
    return SwitchedResult(best_target, best_index, best_sign, best_error)


def switched_train(targets: ArrayLike, *, sizes: Sequence[int], iterations: int = 20, seed: int = 0,
                   signed: bool = True, tolerance: float = 1e-4) -> tuple[list[NDArray[np.float64]], NDArray]:
    """Lloyd training of a switched-predictor VQ (see :func:`switched_search`).

    Initial entries of target ``t`` are random training residuals of that target; each iteration assigns every
    vector to its best (target, entry, sign) and moves each entry to the mean of ``sign * residual`` over the
    vectors assigned to it. The distortion never rises (an entry with no vectors keeps its value).

    Parameters
    ----------
    targets : shape (N, T, D)
    sizes : entries per target, length T

    Returns
    -------
    (codebooks, history): one (K_t, D) codebook per target, and the mean squared error after each assignment
    """
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[1] != len(sizes):
        raise ParameterError(f"targets must have shape (N, {len(sizes)}, D), got {targets.shape}")
    rng = np.random.default_rng(seed)
    books = [targets[rng.choice(targets.shape[0], size=k, replace=False), t].copy()
             for t, k in enumerate(sizes)]
    history: list[float] = []
    for _ in range(iterations):
        found = switched_search(targets, books, signed=signed)
        history.append(float(found.squared_error.mean()))
        if len(history) > 1 and history[-2] - history[-1] <= tolerance * history[-2]:
            break
        for t, size in enumerate(sizes):
            mine = found.target == t
            signed_residual = targets[mine, t] * found.sign[mine, None]
            means, counts = _centroids(signed_residual, found.index[mine], size)
            books[t] = np.where((counts > 0)[:, None], means, books[t])
    return books, np.asarray(history)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_codebooks(path: str | Path, codebooks: Mapping[str, ArrayLike], *,
                   metadata: Mapping[str, object] | None = None, dtype: str = "float32") -> str:
    """Write named codebooks to a safetensors file; returns the file's SHA-256 (its identity).

    Parameters
    ----------
    path : destination
    codebooks : name -> array
    metadata : stored as one JSON string under the key ``"nsac"`` (safetensors metadata are strings)
    dtype : storage type, ``"float32"`` or ``"float16"`` (half the size; the loader returns what is stored)
    """
    from safetensors.numpy import save_file

    if dtype not in ("float32", "float16"):
        raise ParameterError(f"dtype={dtype!r} must be 'float32' or 'float16'")
    tensors = {name: np.ascontiguousarray(np.asarray(value, dtype=dtype))
               for name, value in codebooks.items()}
    header = {"nsac": json.dumps(dict(metadata or {}), sort_keys=True)}
    save_file(tensors, str(path), metadata=header)
    return file_sha256(path)


def load_codebooks(path: str | Path, *, sha256: str | None = None) -> tuple[dict[str, NDArray], dict]:
    """Read codebooks written by :func:`save_codebooks`, checking the file's SHA-256 when one is given.

    Returns
    -------
    (name -> array as stored, metadata dict)

    Raises
    ------
    WeightsError : the file is missing, unreadable or does not have the expected hash
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"codebook file {path} is missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise WeightsError(f"codebook file {path} does not have the expected sha256 {sha256[:12]}...: "
                           "it was modified or belongs to another version")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = json.loads((handle.metadata() or {}).get("nsac", "{}"))
            names = handle.keys()
            tensors = {name: handle.get_tensor(name) for name in names}
    except Exception as error:  # safetensors raises its own types for corrupt files
        raise WeightsError(f"codebook file {path} cannot be read: {error}") from error
    return tensors, metadata
