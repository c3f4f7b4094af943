"""Building a MUSHRA test from a bench folder: selection, stimuli, opaque names, reuse, and refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nsac.audio import read
from nsac.cli import main
from nsac.dsp.loudness import loudness_lufs
from nsac.errors import NsacError, ParameterError
from nsac.listen.builder import MAX_STIMULI, build_test
from nsac.listen.spec import AUDIO_DIR, AUDIO_FILE, DB_NAME, HIDDEN_REFERENCE, read_spec
from nsac.listen.store import RatingStore

MATCH_TOLERANCE_LU = 0.1
SHARED_SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "test"


def _audio(folder: Path, name: str) -> tuple[np.ndarray, int]:
    audio, rate = read(folder / AUDIO_DIR / name)
    return audio[0], rate


def test_build_makes_every_stimulus(built_template: Path) -> None:
    folder = built_template / "listening"
    spec = read_spec(folder)
    assert [c.id for c in spec.conditions] == ["c01", "c02", "ref", "lp70", "lp35"]
    assert [c.label for c in spec.conditions][:2] == ["opus@6000", "codec2@3200"]
    assert len(spec.items) == 3
    labels = [c.label for c in spec.conditions]
    for item in spec.items:
        reference, rate = _audio(folder, item.reference)
        target = loudness_lufs(reference, sample_rate_hz=rate)
        for name in item.stimuli.values():
            # an opaque name: a random hex digest that says nothing of the condition (a digest may contain
            # "c01" by chance, so only the readable labels are checked against it)
            assert AUDIO_FILE.fullmatch(name) and not any(label in name for label in labels)
            audio, stimulus_rate = _audio(folder, name)
            assert stimulus_rate == rate == item.sample_rate_hz
            assert audio.size == reference.size  # same length: switching keeps the position
            assert loudness_lufs(audio, sample_rate_hz=rate) == pytest.approx(target, abs=MATCH_TOLERANCE_LU)
        hidden, _ = _audio(folder, item.stimuli[HIDDEN_REFERENCE])
        np.testing.assert_array_equal(hidden, reference)
    names = [name for item in spec.items for name in (item.reference, *item.stimuli.values())]
    assert len(set(names)) == len(names)
    assert {p.name for p in (folder / AUDIO_DIR).iterdir()} == set(names)


def test_build_again_reuses_the_test_and_keeps_ratings(built_bench: Path) -> None:
    folder = built_bench / "listening"
    first = read_spec(folder)
    store = RatingStore(folder / DB_NAME)
    store.listener("ann", first)
    store.save_page("ann", first.items[0].id, dict.fromkeys(first.items[0].stimuli, 50))
    assert build_test(built_bench).test_id == first.test_id
    assert store.count_ratings() == len(first.items[0].stimuli)
    with pytest.raises(NsacError, match="ratings of a test with other items"):
        build_test(built_bench, n_items=2)


def test_build_again_without_ratings_replaces_the_test(built_bench: Path) -> None:
    first = read_spec(built_bench / "listening")
    second = build_test(built_bench, n_items=2, conditions=["codec2@3.2k"])
    assert second.test_id != first.test_id
    assert len(second.items) == 2 and second.conditions[0].label == "codec2@3200"
    assert {p.name for p in (built_bench / "listening" / AUDIO_DIR).iterdir()} == second.audio_files()


def test_refusals(bench_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="not in this bench; it has opus@6000, codec2@3200"):
        build_test(bench_dir, conditions=["aac@64000"])
    with pytest.raises(ParameterError, match="positive"):
        build_test(bench_dir, n_items=0)
    with pytest.raises(NsacError, match="holds no results.csv"):
        build_test(tmp_path)


def test_too_many_conditions_refused(bench_factory, tmp_path: Path) -> None:
    labels = tuple(f"opus@{6000 + 1000 * i}" for i in range(MAX_STIMULI - 2))
    bench = bench_factory(tmp_path / "wide", n_files=1, conditions=labels)
    with pytest.raises(ParameterError, match="at most 9 with --conditions"):
        build_test(bench)
    assert len(build_test(bench, conditions=list(labels[:3])).conditions) == 6


def test_reference_falls_back_to_the_report_copy(bench_dir: Path) -> None:
    """A bench whose data folder moved still builds from the mono copies report.html keeps in reference/."""
    data = bench_dir / "data"
    for wav in sorted(data.rglob("*.wav")):
        copy = bench_dir / "reference" / wav.relative_to(data)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, copy)
    shutil.rmtree(data)
    assert len(build_test(bench_dir).items) == 3
    shutil.rmtree(bench_dir / "reference")
    shutil.rmtree(bench_dir / "listening")
    with pytest.raises(NsacError, match="cannot find the reference of spk/f0.wav"):
        build_test(bench_dir)


def test_cli_build_only(bench_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", str(bench_dir), "--items", "2", "--conditions", "opus@6000", "--build-only"]) == 0
    assert "2 items x 4 stimuli" in capsys.readouterr().out
    assert main(["listen", "--port", "80000", str(bench_dir)]) == 1
    assert "--port 80000" in capsys.readouterr().err
    assert main(["listen"]) == 1


def _codecs_available() -> bool:
    from nsac.codecs import codec_class

    try:
        return all(codec_class(name).availability()[0] for name in ("opus", "codec2"))
    except (ImportError, NsacError):
        return False


@pytest.mark.skipif(not _codecs_available(), reason="needs the opus and codec2 adapters and their libraries")
def test_build_from_a_real_bench(tmp_path: Path) -> None:
    """opus@6000 and codec2@3200 on three shared test files, through `nsac bench`'s own code."""
    from nsac.eval.bench import BenchConfig, run_bench
    from nsac.eval.bench_inputs import parse_condition

    data = SHARED_SPEECH if SHARED_SPEECH.exists() else None
    if data is None:
        pytest.skip("the shared speech test set is not here")
    out = tmp_path / "bench"
    conditions = (parse_condition("opus@6000"), parse_condition("codec2@3200"))
    run_bench(BenchConfig(conditions=conditions, data=data, out=out, limit=3, metrics=(), progress=False,
                          measure_memory=False, jobs=1, listen_files=0))
    spec = build_test(out)
    assert len(spec.items) == 3 and [c.label for c in spec.conditions][:2] == ["opus@6000", "codec2@3200"]
    for item in spec.items:
        reference, rate = _audio(out / "listening", item.reference)
        codec2, _ = _audio(out / "listening", item.stimuli["c02"])
        assert codec2.size == reference.size and rate == item.sample_rate_hz
