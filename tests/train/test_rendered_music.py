"""Tests for nsac.train.rendered_music: the MIDI it composes, FluidSynth's render, the corpus on disk.

The render tests are skipped where fluidsynth or a General MIDI soundfont is missing; they write one small
corpus (20 pieces of 1 s: two groups are the fewest a corpus may have) and share it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from nsac.errors import DependencyError
from nsac.train import rendered_music
from nsac.train.rendered_music import (
    DRUM_CHANNEL,
    FORMAT_VERSION,
    PEAK_MAX,
    PROVENANCE_FILE,
    RENDERED_MUSIC,
    SAMPLE_RATE_HZ,
    TARGET_RMS_DBFS,
    compose_piece,
    ensure_rendered_music,
    find_renderer,
    find_soundfont,
    piece_path,
    render_piece,
)


def _can_render() -> bool:
    try:
        find_renderer()
        import mido  # noqa: F401
    except (DependencyError, ImportError):
        return False
    return True


needs_fluidsynth = pytest.mark.skipif(not _can_render(), reason="rendering needs fluidsynth, mido and a "
                                      "General MIDI soundfont: apt-get install fluidsynth fluid-soundfont-gm")
needs_mido = pytest.mark.skipif(importlib.util.find_spec("mido") is None,
                                reason="composing needs mido: pip install mido")

SEED = 3
N_PIECES = 20
PIECE_S = 1.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The corpus of SEED, written to the default cache root under a temporary XDG_CACHE_HOME."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        folder = ensure_rendered_music(seed=SEED, n_pieces=N_PIECES, piece_s=PIECE_S)
        assert folder == cache / "nsac" / RENDERED_MUSIC / f"v{FORMAT_VERSION}-seed{SEED}-{N_PIECES}x1s"
        yield folder


@needs_fluidsynth
def test_the_corpus_is_laid_out_in_groups_of_48k_mono_flac(corpus: Path) -> None:
    files = sorted(corpus.rglob("*.flac"))
    assert files == sorted(corpus / piece_path(i) for i in range(N_PIECES))
    assert sorted({f.parent.name for f in files}) == ["group-000", "group-001"]  # the validation "speakers"
    assert "fluidsynth" in (corpus / PROVENANCE_FILE).read_text().lower()
    for path in files:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (SAMPLE_RATE_HZ, 1)
        assert info.frames == round(PIECE_S * SAMPLE_RATE_HZ)
        assert info.format == "FLAC" and info.subtype == "PCM_24"
    assert not list(corpus.parent.glob(".*"))  # no staging folder left behind
    stamp = files[0].stat().st_mtime_ns
    assert ensure_rendered_music(corpus.parent, seed=SEED, n_pieces=N_PIECES, piece_s=PIECE_S) == corpus
    assert files[0].stat().st_mtime_ns == stamp  # found, not rendered again


@needs_fluidsynth
def test_pieces_have_the_target_level_and_real_treble(corpus: Path) -> None:
    treble = []
    for index in range(N_PIECES):
        x, _ = soundfile.read(str(corpus / piece_path(index)), dtype="float64")
        rms_db = 20 * np.log10(np.sqrt(np.mean(x**2)))
        peak = np.abs(x).max()
        assert peak <= PEAK_MAX + 1e-6
        # at the target, or below it only where the peak limit applied
        assert abs(rms_db - TARGET_RMS_DBFS) <= 0.5 or (peak >= PEAK_MAX - 1e-3 and rms_db < TARGET_RMS_DBFS)
        assert rms_db > TARGET_RMS_DBFS - 12  # not silent: most of it is music, not a lone transient
        power = np.abs(np.fft.rfft(x)) ** 2
        treble.append(power[np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE_HZ) > 8000].sum() / power.sum())
    assert max(treble) > 1e-2  # cymbals and hats: sampled, reaching far above 8 kHz


@needs_fluidsynth
def test_a_piece_is_the_same_when_rendered_again_and_pieces_differ(corpus: Path) -> None:
    renderer = find_renderer()
    again = render_piece(seed=SEED, index=4, duration_s=PIECE_S, renderer=renderer)
    np.testing.assert_array_equal(again, render_piece(seed=SEED, index=4, duration_s=PIECE_S,
                                                      renderer=renderer))
    stored, _ = soundfile.read(str(corpus / piece_path(4)), dtype="float32")
    np.testing.assert_allclose(stored, again, atol=2.0**-22)  # the same up to 24-bit rounding
    first, _ = soundfile.read(str(corpus / piece_path(0)), dtype="float32")
    assert not np.allclose(first, stored, atol=1e-3)


@needs_mido
def test_the_midi_has_a_drum_track_on_channel_10_exactly_when_drums_were_chosen() -> None:
    seen = set()
    for index in range(12):
        arrangement = compose_piece(seed=SEED, index=index, duration_s=2.0)
        drum_tracks = [track for track in arrangement.midi.tracks
                       if any(m.type == "note_on" and m.channel == DRUM_CHANNEL for m in track)]
        assert len(drum_tracks) == int(arrangement.has_drums)
        for track in drum_tracks:  # a track of its own, on channel 10 only
            assert {m.channel for m in track if not m.is_meta} == {DRUM_CHANNEL}
        seen.add(arrangement.has_drums)
        assert compose_piece(seed=SEED, index=index, duration_s=2.0).parts == arrangement.parts
    assert seen == {True, False}


def test_a_missing_soundfont_is_a_dependency_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.sf2"
    monkeypatch.setattr(rendered_music, "SOUNDFONT_CANDIDATES", (missing,))  # no fallback either
    monkeypatch.setenv("NSAC_SOUNDFONT", str(missing))
    with pytest.raises(DependencyError, match="NSAC_SOUNDFONT"):
        find_soundfont()
    monkeypatch.delenv("NSAC_SOUNDFONT")
    with pytest.raises(DependencyError, match="apt-get install"):
        find_soundfont()
    with pytest.raises(DependencyError):
        ensure_rendered_music(tmp_path, n_pieces=N_PIECES, piece_s=PIECE_S)
    assert not list(tmp_path.glob("v*"))
    font = tmp_path / "font.sf2"
    font.write_bytes(b"")
    monkeypatch.setenv("NSAC_SOUNDFONT", str(font))
    assert find_soundfont() == font


def test_a_missing_fluidsynth_is_a_dependency_error_unless_the_corpus_is_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DependencyError, match="apt-get install fluidsynth"):
        ensure_rendered_music(tmp_path, seed=1, n_pieces=N_PIECES, piece_s=PIECE_S)
    cached = tmp_path / f"v{FORMAT_VERSION}-seed1-{N_PIECES}x1s"
    cached.mkdir()
    assert ensure_rendered_music(tmp_path, seed=1, n_pieces=N_PIECES, piece_s=PIECE_S) == cached


def test_the_rendered_music_source_is_named_not_resolved_as_a_folder() -> None:
    from nsac.train.run import resolve
    from nsac.train.setup_data import GENERATED_CORPORA

    assert resolve("postfilter-aac-32k", data=RENDERED_MUSIC).data.path == RENDERED_MUSIC
    assert GENERATED_CORPORA[RENDERED_MUSIC] is ensure_rendered_music
