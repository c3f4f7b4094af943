"""The codec-degradation pipeline for post-filters: a registered codec applied to whole files, cached on disk.

A file is decoded through the same path as `nsac encode` + `nsac decode` (nsac.coding), which resamples to the
codec's rate and back and removes the codec's delay: the degraded signal has the clean file's rate and length
and lines up with it sample for sample. It is stored as float32 .npy (no pickle) under a key made of the
codec, its bitrate, its options and the sha256 of the file's bytes, so editing or replacing a file, or any
codec setting, makes a new entry, and a second run reads what the first one wrote::

    CACHE_DIR/<codec>/<bitrate>/<sha256 of the key>.npy       (samples,) float32, mono, at the file's rate
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsac.errors import ParameterError
from nsac.train.data import AudioItem
from nsac.train.progress import progress_bar

#: bump when the cached content changes meaning (e.g. a different downmix)
CACHE_FORMAT = 1
_HASH_CHUNK_BYTES = 1 << 20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nsac" / "degrade"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Degradation:
    """One codec setting: name, bitrate in bit/s and the codec's other keyword options."""

    codec: str
    bitrate_bps: int
    options: Mapping[str, Any] = field(default_factory=dict)

    def key(self, content_sha256: str) -> str:
        text = json.dumps({"format": CACHE_FORMAT, "codec": self.codec, "bitrate_bps": self.bitrate_bps,
                           "options": dict(self.options), "audio_sha256": content_sha256}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def degrade_audio(audio: np.ndarray, sample_rate_hz: int, degradation: Degradation) -> np.ndarray:
    """Encode and decode mono (samples,) audio; returns (samples,) float32 aligned with the input."""
    from nsac.coding import decode_bytes, encode_audio

    data = encode_audio(audio[None, :], sample_rate_hz, degradation.codec, bitrate=degradation.bitrate_bps,
                        **dict(degradation.options))
    decoded, rate = decode_bytes(data)
    if rate != sample_rate_hz or decoded.shape[1] != audio.size:
        raise ParameterError(f"{degradation.codec} returned {decoded.shape[1]} samples at {rate} Hz for "
                             f"{audio.size} at {sample_rate_hz} Hz")  # coding.decode_file guarantees this
    return decoded[0].astype(np.float32)


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """A whole file as mono float32 (samples,) at its own rate."""
    from nsac.audio import read

    audio, rate = read(path)
    return audio.mean(axis=0).astype(np.float32), rate


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array, allow_pickle=False)
        os.replace(tmp, path)  # concurrent writers of one entry write the same bytes: the last one wins
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class CacheStats:
    """What a `prepare` call did: entries found on disk and entries it had to code."""

    hits: int = 0
    encoded: int = 0


class DegradationCache:
    """Degraded versions of corpus files on disk, one per (file content, codec setting)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()

    def path(self, content_sha256: str, degradation: Degradation) -> Path:
        return (self.directory / degradation.codec / str(degradation.bitrate_bps)
                / f"{degradation.key(content_sha256)}.npy")

    def entry(self, item: AudioItem, degradation: Degradation, *, content_sha256: str | None = None
              ) -> tuple[Path, bool]:
        """(cache path, True if it had to be coded now) for one file and setting."""
        content_sha256 = content_sha256 or file_sha256(item.path)
        path = self.path(content_sha256, degradation)
        if path.is_file():
            return path, False
        audio, rate = read_mono(item.path)
        _atomic_save(path, degrade_audio(audio, rate, degradation))
        return path, True

    def prepare(self, items: Sequence[AudioItem], degradations: Sequence[Degradation], *, workers: int = 1,
                shard: tuple[int, int] = (0, 1), progress: bool = False) -> tuple[dict[tuple[int, int], Path],
                                                                                 CacheStats]:
        """Cache every (item, degradation) pair; returns {(item index, degradation index): path} and stats.

        `shard=(rank, world_size)` codes only every world_size-th pair (the others are left to other
        processes, which must all have finished before the paths are read); `workers` > 1 codes in parallel.
        """
        rank, world = shard
        hashes = [file_sha256(item.path) for item in items]
        pairs = [(i, j) for i in range(len(items)) for j in range(len(degradations))]
        mine = pairs[rank::world]
        stats = CacheStats()
        todo = []
        for i, j in mine:
            if self.path(hashes[i], degradations[j]).is_file():
                stats.hits += 1
            else:
                todo.append((i, j))
        if todo:
            jobs = [(items[i], degradations[j], hashes[i]) for i, j in todo]
            results = _run(self, jobs, workers=workers, progress=progress)
            stats.encoded += sum(results)
            stats.hits += len(results) - sum(results)
        return {(i, j): self.path(hashes[i], degradations[j]) for i, j in pairs}, stats


def _code_one(args: tuple[DegradationCache, AudioItem, Degradation, str]) -> bool:
    cache, item, degradation, content_sha256 = args
    return cache.entry(item, degradation, content_sha256=content_sha256)[1]


def _run(cache: DegradationCache, jobs: list[tuple[AudioItem, Degradation, str]], *, workers: int,
         progress: bool) -> list[bool]:
    args = [(cache, *job) for job in jobs]
    bar = progress_bar(show=progress, total=len(args), desc="degrading", unit="file")
    try:
        if workers <= 1:
            results = []
            for a in args:
                results.append(_code_one(a))
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for done in pool.map(_code_one, args, chunksize=4):
                results.append(done)
                bar.update()
            return results
    finally:
        bar.close()
