"""Tests for `nsac bench`: conditions, data, costs, statistics, resuming, the files written, the report."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from nsac.audio import read, write
from nsac.errors import AudioError, NsacError, ParameterError
from nsac.eval.bench import check_conditions
from nsac.eval.bench_cli import add_bench_arguments, run_bench_from_args
from nsac.eval.bench_inputs import Condition, find_audio, parse_condition
from nsac.eval.complexity import bitrate_from_bytes, measure, measure_decode, measure_encode
from nsac.eval.results import ResultsFile, result_columns
from nsac.eval.summary import mean_ci
from nsac.eval.workers import run_in_workers
from nsac.examples import example_path

SHARED_SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "test"
CLIP_S = 1.5
N_CLIPS = 3
#: fast metrics for the default tests; the slow test runs the default set
FAST_METRICS = "si_sdr,log_spectral_distance"
OUTPUTS = ("results.csv", "summary.csv", "summary.md", "summary.json", "rd.png", "report.html")
CHROMIUM = Path("/usr/bin/chromium")


def _codec_available(name: str) -> bool:
    from nsac.codecs import codec_class

    try:
        return codec_class(name).availability()[0]
    except (ImportError, NsacError):
        return False


needs_codecs = pytest.mark.skipif(
    not (_codec_available("opus") and _codec_available("codec2")),
    reason="the bench tests need the opus and codec2 adapters and their libraries",
)


def _speech_clips(n: int) -> list[tuple[np.ndarray, int]]:
    """n clips of CLIP_S seconds: the first test-speech files, or pieces of the shipped example."""
    files = sorted(SHARED_SPEECH.rglob("*.flac"))[:n] if SHARED_SPEECH.exists() else []
    if len(files) == n:
        clips = [read(f) for f in files]
        return [(audio[:, : round(CLIP_S * rate)], rate) for audio, rate in clips]
    audio, rate = read(example_path("speech"))
    step = round(CLIP_S * rate)
    return [(audio[:, i * step : (i + 1) * step], rate) for i in range(n)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short speech files in a nested folder, a corrupt .wav after them and a text file to ignore."""
    folder = tmp_path_factory.mktemp("bench_data")
    (folder / "sub").mkdir()
    for i, (audio, rate) in enumerate(_speech_clips(N_CLIPS)):
        write(folder / ("sub" if i == 2 else "") / f"clip{i}.wav", audio, rate)
    (folder / "zz_corrupt.wav").write_bytes(b"RIFF" + b"\x00not audio" * 20)
    (folder / "notes.txt").write_text("not audio")
    return folder


def _bench(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return run_bench_from_args(parser.parse_args([*argv, "--quiet"]))


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


# --- conditions and data ---------------------------------------------------------------------------------
def test_parse_condition() -> None:
    assert parse_condition("opus@6000") == Condition("opus", 6000)
    assert parse_condition("lpcnet-freedv") == Condition("lpcnet-freedv", None)
    assert parse_condition("amrwb@12.65k").bitrate_bps == 12650
    voip = parse_condition("opus@6000:application=voip:complexity=5")
    assert voip.options == (("application", "voip"), ("complexity", 5))
    assert voip.label == "opus@6000:application=voip:complexity=5"
    assert voip.family == "opus:application=voip:complexity=5"
    assert "/" not in voip.slug and ":" not in voip.slug and "@" not in voip.slug
    for bad in ("@6000", "opus@", "opus@-5", "opus@6.5", "opus@6000:voip", "opus:bitrate=6000"):
        with pytest.raises(ParameterError):
            parse_condition(bad)


def test_find_audio_folder_and_manifest(data_dir: Path, tmp_path: Path) -> None:
    names = [item.name for item in find_audio(data_dir)]
    assert names == ["clip0.wav", "clip1.wav", "sub/clip2.wav", "zz_corrupt.wav"]
    assert [item.name for item in find_audio(data_dir, limit=2)] == ["clip0.wav", "clip1.wav"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,split,kind\n{data_dir}/clip1.wav,test,speech\n{data_dir}/clip0.wav,train,speech\n")
    (item,) = find_audio(manifest, split="test")
    assert item.path == data_dir / "clip1.wav" and item.kind == "speech"
    relative = tmp_path / "sub" / "m.csv"
    relative.parent.mkdir()
    relative.write_text("path\n../a.wav\n")
    assert find_audio(relative)[0].path == relative.parent / "../a.wav"
    with pytest.raises(ParameterError, match="no audio files"):
        find_audio(manifest, split="dev")
    with pytest.raises(ParameterError, match="no such"):
        find_audio(tmp_path / "missing")
    with pytest.raises(ParameterError, match="positive"):
        find_audio(data_dir, limit=0)


# --- costs and statistics --------------------------------------------------------------------------------
@needs_codecs
def test_measure_encode_decode_costs() -> None:
    (audio, rate), = _speech_clips(1)
    encoded = measure_encode(audio, rate, "opus", {"bitrate": 6000})
    rates = bitrate_from_bytes(encoded.payload)
    assert 0 < rates["payload_kbps"] <= 6.0 < rates["file_kbps"]
    assert encoded.info["delay_ms"] > 0 and encoded.info["macs_per_second"] == 0
    assert 0 < encoded.cpu_s < CLIP_S and encoded.peak_mib >= 0
    decoded, decoded_rate, decoding = measure_decode(encoded.payload)
    assert decoded.shape == audio.shape and decoded_rate == rate and decoding.peak_mib >= 0
    _, _, in_process = measure_decode(encoded.payload, isolate=False)
    assert math.isnan(in_process.peak_mib)
    with pytest.raises(ParameterError, match="bitrate"):
        measure_encode(audio, rate, "opus", {"bitrate": 1})


def test_measure_reports_memory_errors_and_crashes() -> None:
    n_bytes = 64 * 2**20

    def allocate():
        return lambda: ({}, np.ones(n_bytes // 8).tobytes()[:1])

    assert measure(allocate).peak_mib >= 0.9 * n_bytes / 2**20

    def fail():
        def run():
            raise AudioError("bad audio")
        return run

    with pytest.raises(AudioError, match="bad audio"):
        measure(fail)

    def crash():
        return lambda: os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(NsacError, match="crashed"):
        measure(crash)


def _double_or_die(n: int) -> int:
    """A task function for the worker tests: task 3 kills its worker, as a segfault in a library would."""
    if n == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return 2 * n


def test_a_dead_worker_costs_its_task_only() -> None:
    results = list(run_in_workers(_double_or_die, range(6), jobs=2, on_crash=lambda n: -n))
    assert sorted(results) == [-3, 0, 2, 4, 8, 10]


def test_mean_ci_matches_student_t() -> None:
    stats = mean_ci([1.0, 2.0, 3.0, math.nan])
    assert stats["n"] == 3 and stats["mean"] == 2.0
    assert stats["ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)  # t(0.975, 2) * s / sqrt(n)
    assert math.isnan(mean_ci([5.0])["ci95"]) and mean_ci([])["n"] == 0


def test_results_file_drops_a_cut_row_and_refuses_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    columns = result_columns(["si_sdr"])
    with ResultsFile(path, columns) as results:
        results.append({"file": "a.wav", "condition": "opus@6000", "si_sdr": 1.5, "error": ""})
    with path.open("a") as stream:
        stream.write("b.wav,opus@6000,op")  # killed in the middle of a row
    with ResultsFile(path, columns) as results:
        assert results.done() == {("a.wav", "opus@6000")}
        assert results.rows[0]["si_sdr"] == 1.5
    assert path.read_text().endswith("\n")
    with pytest.raises(ParameterError, match="--metrics"):
        ResultsFile(path, result_columns(["stoi"]))


# --- the bench -------------------------------------------------------------------------------------------
class _Links(HTMLParser):
    """Every src and href of a page, and whether it parsed to the end."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def _check_report(out: Path) -> list[str]:
    parser = _Links()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    parser.close()
    assert {"table", "audio", "img"} <= parser.tags
    for link in parser.links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (out / unquote(parsed.path)).is_file(), link
    return parser.links


@needs_codecs
def test_bench_writes_everything_skips_bad_files_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("--codec", "opus@6000", "--codec", "codec2@3200", "--data", str(data_dir), "--out", str(out),
            "--metrics", FAST_METRICS, "--listen", "2")
    # an interrupted bench: only the first two files, then the whole folder
    assert _bench(*args, "--limit", "2") == 0
    first = _rows(out)
    assert len(first) == 4 and not any(row["error"] for row in first)
    decoded_times = {row["decoded"]: (out / row["decoded"]).stat().st_mtime_ns for row in first}
    assert _bench(*args) == 0
    rows = _rows(out)
    assert rows[:4] == first and len(rows) == 8  # the first rows were not redone
    assert all((out / name).stat().st_mtime_ns == t for name, t in decoded_times.items())
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    bad = [row for row in rows if row["file"] == "zz_corrupt.wav"]
    assert len(bad) == 2 and all("cannot read" in row["error"] for row in bad)
    good = [row for row in rows if row["file"] != "zz_corrupt.wav"]
    for row in good:
        assert not row["error"] and (out / row["decoded"]).is_file()
        decoded, rate = read(out / row["decoded"])
        assert rate == 16000 and abs(decoded.shape[1] / rate - float(row["duration_s"])) < 1e-3
        assert float(row["rtf_encode"]) > 0 and float(row["rtf_decode"]) > 0 and row["si_sdr"]
    assert {row["decoded"].split("/")[1] for row in good} == {"opus-6000", "codec2-3200"}

    summary = json.loads((out / "summary.json").read_text())
    for label, bitrate in (("opus@6000", 6.0), ("codec2@3200", 3.2)):
        entry = summary["conditions"][label]
        assert entry["n_files"] == 4 and entry["n_errors"] == 1
        values = entry["values"]
        assert 0.5 * bitrate < values["payload_kbps"]["mean"] <= values["file_kbps"]["mean"]
        assert values["si_sdr"]["n"] == N_CLIPS and values["rtf_encode"]["mean"] > 0
        assert values["delay_ms"]["mean"] > 0
        assert values["log_spectral_distance"]["ci95"] > 0
    with (out / "summary.csv").open() as stream:
        assert [row["condition"] for row in csv.DictReader(stream)] == ["opus@6000", "codec2@3200"]
    assert "opus@6000" in (out / "summary.md").read_text()

    links = _check_report(out)
    assert sum(link.startswith("decoded/") for link in links) == 4  # 2 files x 2 conditions
    assert "rd.png" in links and "zz_corrupt.wav" in (out / "report.html").read_text()

    before = (out / "results.csv").read_text()
    assert _bench(*args) == 0  # nothing left to do
    assert (out / "results.csv").read_text() == before


def test_bench_refuses_bad_arguments_before_working(data_dir: Path, tmp_path: Path) -> None:
    base = ("--data", str(data_dir), "--out", str(tmp_path / "out"), "--metrics", FAST_METRICS)
    with pytest.raises(ParameterError, match="unknown codec"):
        _bench("--codec", "nosuch@6000", *base)
    with pytest.raises(ParameterError, match="twice"):
        _bench("--codec", "opus@6000", "--codec", "opus@6k", *base)
    with pytest.raises(ParameterError, match="unknown metric"):
        _bench("--codec", "opus@6000", "--data", str(data_dir), "--out", str(tmp_path / "o"),
               "--metrics", "nope")
    if _codec_available("opus"):
        with pytest.raises(ParameterError, match="opus@1"):
            _bench("--codec", "opus@1", *base)
    if _codec_available("aac"):  # too much for 16 kHz, fine at 48 kHz: checked file by file, not refused
        check_conditions([parse_condition("aac@64000")])
    assert not (tmp_path / "out").exists()


@needs_codecs
@pytest.mark.slow
def test_bench_default_metrics_must_show(data_dir: Path, tmp_path: Path) -> None:
    """The issue's must-show, scaled down: default metrics, both conditions, in summary.json."""
    out = tmp_path / "out"
    assert _bench("--codec", "opus@6000", "--codec", "codec2@3200", "--data", str(data_dir),
                  "--out", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    for entry in summary["conditions"].values():
        for column in ("pesq_wb", "stoi", "visqol_speech", "dnsmos_ovrl", "payload_kbps", "file_kbps",
                       "rtf_encode", "rtf_decode", "delay_ms", "macs_per_second"):
            assert entry["values"][column]["n"] == N_CLIPS, column
    _check_report(out)


@needs_codecs
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_report_loads_in_headless_chromium(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _bench("--codec", "opus@6000", "--data", str(data_dir), "--out", str(out), "--metrics", FAST_METRICS)
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "<h1>nsac bench</h1>" in dom and "opus@6000" in dom and "<audio" in dom
