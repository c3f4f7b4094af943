"""The `nsac` command: encode, decode, info and codecs end to end, in separate processes, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nsac.audio import read, write
from nsac.codecs import codec_class

pytestmark = pytest.mark.skipif(not codec_class("opus").availability()[0], reason="PyAV with libopus missing")


def nsac_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsac", *args], input=stdin, capture_output=True, timeout=120)


def lag_of_peak(reference: np.ndarray, degraded: np.ndarray, max_lag: int) -> int:
    corr = [np.dot(reference[max_lag:-max_lag], np.roll(degraded, -lag)[max_lag:-max_lag])
            for lag in range(-max_lag, max_lag + 1)]
    return int(np.argmax(corr)) - max_lag


@pytest.fixture
def speech_wav(tmp_path, speech_16k):
    path = tmp_path / "x.wav"
    write(path, speech_16k, 16000)
    return path


def test_opus_6k_round_trip_in_separate_processes(tmp_path, speech_wav):
    coded, decoded = tmp_path / "y.nsac", tmp_path / "z.wav"
    assert nsac_cli("encode", str(speech_wav), str(coded), "--codec", "opus", "--bitrate", "6000").returncode == 0
    assert nsac_cli("decode", str(coded), str(decoded)).returncode == 0
    x, rate_x = read(speech_wav)
    z, rate_z = read(decoded)
    assert rate_z == rate_x == 16000 and z.shape == x.shape
    duration_s = x.shape[1] / rate_x
    assert coded.stat().st_size <= 6000 * duration_s / 8 * 1.05
    assert abs(lag_of_peak(x[0], z[0], 80)) <= 2
    pesq = pytest.importorskip("pesq")
    assert pesq.pesq(16000, x[0], z[0], "wb") > 2.0


def test_info_reports_header_and_packets(tmp_path, speech_wav):
    coded = tmp_path / "y.nsac"
    nsac_cli("encode", str(speech_wav), str(coded), "--codec", "opus", "--bitrate", "12000", "-q")
    result = nsac_cli("info", str(coded))
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert info["codec"] == "opus" and info["config"]["bitrate"] == 12000
    assert info["sample_rate_hz"] == 16000 and info["num_samples"] == 48000
    assert info["packets"]["count"] >= 150 and info["packets"]["lost"] == 0
    assert info["file_bytes"] == coded.stat().st_size
    assert info["payload_bytes"] + info["overhead_bytes"] == info["file_bytes"]


def test_stdin_and_stdout(speech_wav):
    coded = nsac_cli("encode", "-", "-", "--codec", "opus", "--bitrate", "12000", stdin=speech_wav.read_bytes())
    assert coded.returncode == 0 and coded.stdout[:4] == b"NSAC"
    decoded = nsac_cli("decode", "-", "-", stdin=coded.stdout)
    assert decoded.returncode == 0 and decoded.stdout[:4] == b"RIFF"


def test_input_at_another_rate_comes_back_at_that_rate(tmp_path, speech_16k):
    from nsac.audio import resample

    path = tmp_path / "x44.wav"
    write(path, resample(speech_16k, from_hz=16000, to_hz=44100), 44100)
    coded, decoded = tmp_path / "y.nsac", tmp_path / "z.flac"
    assert nsac_cli("encode", str(path), str(coded), "--codec", "opus", "--bitrate", "24000").returncode == 0
    assert nsac_cli("decode", str(coded), str(decoded)).returncode == 0
    x, _ = read(path)
    z, rate = read(decoded)
    assert rate == 44100 and z.shape == x.shape


def test_codecs_table_lists_every_codec():
    result = nsac_cli("codecs")
    assert result.returncode == 0
    for name in ("opus", "aac", "mp3", "codec2", "lc3", "amrwb", "lpcnet-freedv"):
        assert name in result.stdout.decode()
    listed = json.loads(nsac_cli("codecs", "--json").stdout)
    assert all(("available" in row and "reason" in row) for row in listed)


def _assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    assert fragment in stderr, stderr


def test_bad_files_give_one_line_and_leave_no_output(tmp_path, speech_wav):
    coded = tmp_path / "y.nsac"
    nsac_cli("encode", str(speech_wav), str(coded), "--codec", "opus", "--bitrate", "6000", "-q")
    data = coded.read_bytes()
    cases = {
        "corrupt.nsac": (data[:30] + bytes([data[30] ^ 0xFF]) + data[31:], "checksum"),
        "truncated.nsac": (data[: len(data) // 2], "checksum"),
        "foreign.nsac": (speech_wav.read_bytes(), "not an .nsac file"),
        "empty.nsac": (b"", "not an .nsac file"),
    }
    for name, (content, fragment) in cases.items():
        (tmp_path / name).write_bytes(content)
        out = tmp_path / f"{name}.wav"
        _assert_one_line_error(nsac_cli("decode", str(tmp_path / name), str(out)), fragment)
        assert not out.exists()


def test_bad_requests_give_one_line(tmp_path, speech_wav):
    _assert_one_line_error(nsac_cli("decode", str(tmp_path / "missing.nsac"), "z.wav"), "no such file")
    _assert_one_line_error(nsac_cli("encode", str(tmp_path / "missing.wav"), "y.nsac", "--codec", "opus"),
                           "no such file")
    _assert_one_line_error(nsac_cli("encode", str(speech_wav), str(tmp_path / "y.nsac"), "--codec", "nope"),
                           "unknown codec")
    _assert_one_line_error(nsac_cli("encode", str(speech_wav), str(tmp_path / "y.nsac"), "--codec", "opus",
                                    "--bitrate", "1"), "bitrate")
    _assert_one_line_error(nsac_cli("encode", str(speech_wav), str(tmp_path / "y.nsac"), "--codec", "opus",
                                    "-o", "frobnicate=3"), "frobnicate")
