"""Tests for nsac.train.degrade: the cache is keyed and reused; degraded audio lines up with the clean one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from nsac.audio import read
from nsac.codecs import list_codecs
from nsac.coding import build_codec
from nsac.train import degrade
from nsac.train.data import scan_folder
from nsac.train.degrade import Degradation, DegradationCache, degrade_audio

AVAILABLE = {info.name for info in list_codecs() if info.available}
RATE_HZ = 16000


def _needs(codec: str) -> None:
    if codec not in AVAILABLE:
        pytest.skip(f"codec {codec} is not available here")


def test_second_prepare_codes_nothing(tiny_corpus: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _needs("opus")
    calls: list[tuple[str, int]] = []
    real = degrade.degrade_audio

    def counting(audio: np.ndarray, rate: int, setting: Degradation) -> np.ndarray:
        calls.append((setting.codec, setting.bitrate_bps))
        return real(audio, rate, setting)

    monkeypatch.setattr(degrade, "degrade_audio", counting)
    items = scan_folder(tiny_corpus)[:3]
    settings = [Degradation("opus", 6000), Degradation("opus", 12000)]
    cache = DegradationCache(tmp_path)
    paths, stats = cache.prepare(items, settings)
    assert (stats.encoded, stats.hits) == (6, 0) and len(calls) == 6
    again, stats = DegradationCache(tmp_path).prepare(items, settings)
    assert (stats.encoded, stats.hits) == (0, 6) and len(calls) == 6
    assert again == paths and all(p.is_file() for p in paths.values())
    # another option or another file content makes a new entry
    _, stats = cache.prepare(items[:1], [Degradation("opus", 6000, {"application": "audio"})])
    assert stats.encoded == 1


def test_prepare_shards_split_the_work(tiny_corpus: Path, tmp_path: Path) -> None:
    _needs("opus")
    items = scan_folder(tiny_corpus)[:3]
    cache = DegradationCache(tmp_path)
    _, first = cache.prepare(items, [Degradation("opus", 6000)], shard=(0, 2))
    _, second = cache.prepare(items, [Degradation("opus", 6000)], shard=(1, 2))
    assert (first.encoded, second.encoded) == (2, 1)


def test_cached_audio_is_the_codec_output_at_the_files_rate_and_length(tiny_corpus: Path,
                                                                       tmp_path: Path) -> None:
    _needs("amrwb")
    (item,) = scan_folder(tiny_corpus)[:1]
    path, coded = DegradationCache(tmp_path).entry(item, Degradation("amrwb", 12650))
    cached = np.load(path, allow_pickle=False)
    clean, _ = read(item.path)
    assert coded and cached.dtype == np.float32 and cached.shape == (clean.shape[1],)
    codec = build_codec("amrwb", source_rate_hz=RATE_HZ, channels=1, bitrate=12650)
    direct = codec.decode(codec.encode(clean), clean.shape[1])[0]  # Codec.decode removes the codec delay
    np.testing.assert_array_equal(cached, direct)


def _fractional_delay(clean: np.ndarray, coded: np.ndarray, *, low_hz: float = 300.0, high_hz: float = 3400.0
                      ) -> float:
    """Samples by which `coded` lags `clean`: the cross-spectrum's phase slope where speech is strong."""
    f, cross = scipy.signal.csd(clean, coded, fs=RATE_HZ, nperseg=1024)
    band = (f > low_hz) & (f < high_hz)
    phase = np.unwrap(np.angle(cross[band]))
    weight = np.abs(cross[band])
    design = np.stack([2 * np.pi * f[band] / RATE_HZ, np.ones(band.sum())], axis=1)
    slope = np.linalg.lstsq(design * weight[:, None], phase * weight, rcond=None)[0][0]
    return -float(slope)


@pytest.mark.parametrize("codec,bitrate,tolerance", [
    ("mp3", 64000, 0.1), ("aac", 48000, 0.1), ("lc3", 64000, 0.1),
    # Opus's own filters shift the phase by a fraction of a sample (-0.3 measured); its frames line up
    ("opus", 24000, 0.6),
    ("amrwb", 23850, 0.6),
])
def test_degraded_speech_lines_up_with_the_clean_signal(codec: str, bitrate: int, tolerance: float,
                                                        speech_16k: np.ndarray) -> None:
    _needs(codec)
    clean = speech_16k[0]
    coded = degrade_audio(clean, RATE_HZ, Degradation(codec, bitrate))
    assert coded.shape == clean.shape
    assert abs(_fractional_delay(clean, coded)) < tolerance
