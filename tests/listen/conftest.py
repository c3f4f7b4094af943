"""Fixtures for the listening-test tests: a small bench folder of real speech, a built test, a live server."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nsac.audio import read, write
from nsac.eval.results import ResultsFile, result_columns
from nsac.listen.builder import build_test
from nsac.listen.server import ListeningServer, make_server

SHARED_SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "test"
CLIP_S = 1.5
N_FILES = 3
CONDITIONS = ("opus@6000", "codec2@3200")
#: what the synthetic "codecs" do to the speech: noise at this SNR, and a gain so loudness matching has work
NOISE_SNR_DB = 15.0
CONDITION_GAINS = {"opus@6000": 0.5, "codec2@3200": 1.4}
#: the server's threads stop within this long after shutdown()
SERVER_POLL_S = 0.05
SERVER_JOIN_S = 5.0


def speech_clips(n: int) -> list[tuple[np.ndarray, int]]:
    """n mono clips of CLIP_S seconds of real speech: the first shared test files, or the shipped example."""
    from nsac.examples import example_path

    files = sorted(SHARED_SPEECH.rglob("*.flac"))[:n] if SHARED_SPEECH.exists() else []
    if len(files) == n:
        clips = [read(f) for f in files]
        return [(audio.mean(axis=0)[: round(CLIP_S * rate)], rate) for audio, rate in clips]
    audio, rate = read(example_path("speech"))
    step = round(CLIP_S * rate)
    return [(audio.mean(axis=0)[i * step:(i + 1) * step], rate) for i in range(n)]


def make_bench(folder: Path, *, n_files: int = N_FILES, conditions: tuple[str, ...] = CONDITIONS) -> Path:
    """A bench output folder as `nsac bench` leaves it (results.csv, summary.json, decoded/), with synthetic
    degradations of real speech standing in for the codecs so that no codec library is needed."""
    from nsac.eval.bench_inputs import safe_name

    rng = np.random.default_rng(0)
    data = folder / "data"
    (data / "spk").mkdir(parents=True)
    with ResultsFile(folder / "results.csv", result_columns([])) as results:
        for index, (clip, rate) in enumerate(speech_clips(n_files)):
            name = f"spk/f{index}.wav"
            write(data / name, clip[None, :], rate)
            for label in conditions:
                rms = np.sqrt(np.mean(clip**2))
                noise = rng.standard_normal(clip.size) * rms * 10 ** (-NOISE_SNR_DB / 20)
                degraded = CONDITION_GAINS.get(label, 1.0) * (clip + noise)
                relative = f"decoded/{safe_name(label.replace('@', '-'))}/{name}"
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                write(folder / relative, degraded[None, :], rate)
                results.append({"file": name, "condition": label, "codec": label.split("@")[0],
                                "decoded": relative, "error": ""})
    meta = {"data": str(data), "split": None, "conditions": list(conditions)}
    (folder / "summary.json").write_text(json.dumps({"meta": meta}), encoding="utf-8")
    (folder / "report.html").write_text("<!DOCTYPE html><html><body><h1>nsac bench</h1>\n<h2>Errors</h2>\n"
                                        "<p>None</p></body></html>\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def bench_factory() -> object:
    """make_bench itself, for tests that need a bench of another shape."""
    return make_bench


@pytest.fixture(scope="session")
def bench_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bench(tmp_path_factory.mktemp("bench"))


def copy_bench(source: Path, target: Path) -> Path:
    """A copy of a bench folder whose summary.json points at the copy's own data."""
    shutil.copytree(source, target)
    summary = json.loads((target / "summary.json").read_text(encoding="utf-8"))
    summary["meta"]["data"] = str(target / "data")
    (target / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return target


@pytest.fixture
def bench_dir(bench_template: Path, tmp_path: Path) -> Path:
    """A private copy of the bench folder (tests may add a test folder or results to it)."""
    return copy_bench(bench_template, tmp_path / "bench")


@pytest.fixture(scope="session")
def built_template(tmp_path_factory: pytest.TempPathFactory, bench_template: Path) -> Path:
    """A bench folder with its test built in listening/ (ratings database still empty)."""
    folder = copy_bench(bench_template, tmp_path_factory.mktemp("built") / "bench")
    build_test(folder)
    return folder


@pytest.fixture
def built_bench(built_template: Path, tmp_path: Path) -> Path:
    return copy_bench(built_template, tmp_path / "bench")


@pytest.fixture
def live_server(built_bench: Path) -> Iterator[ListeningServer]:
    """The test of `built_bench` served on 127.0.0.1 at a free port, stopped after the test."""
    server = make_server(built_bench / "listening", host="127.0.0.1", port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL_S},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=SERVER_JOIN_S)
