"""nsac.audio: reading, resampling and writing, and the errors for bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from nsac.audio import read, resample, write
from nsac.errors import AudioError, ParameterError


def test_round_trip_16bit_is_exact_to_one_lsb(tmp_path, speech_16k):
    path = tmp_path / "x.wav"
    write(path, speech_16k, 16000)
    back, rate = read(path)
    assert rate == 16000 and back.shape == speech_16k.shape and back.dtype == np.float32
    assert np.max(np.abs(back - speech_16k)) <= 1 / 32768


@pytest.mark.parametrize("bits, tol", [("24", 2**-23), ("float", 0.0)])
def test_round_trip_deeper_formats(tmp_path, speech_16k, bits, tol):
    path = tmp_path / "x.wav"
    write(path, speech_16k * 0.5, 16000, bits=bits)
    back, _ = read(path)
    assert np.max(np.abs(back - speech_16k * 0.5)) <= tol


def test_flac_and_stream(tmp_path, speech_16k):
    stream = io.BytesIO()
    write(stream, speech_16k, 16000, file_format="FLAC")
    stream.seek(0)
    back, rate = read(stream)
    assert rate == 16000 and back.shape == speech_16k.shape


def test_stereo_is_channels_first(tmp_path):
    stereo = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)]).astype(np.float32)
    write(tmp_path / "s.flac", stereo, 44100, bits="24")
    back, _ = read(tmp_path / "s.flac")
    assert back.shape == (2, 1000)
    np.testing.assert_allclose(back, stereo, atol=2**-22)


def test_clipping_is_counted_and_applied(tmp_path):
    loud = np.array([[0.0, 1.5, -2.0, 0.5]], dtype=np.float32)
    report = write(tmp_path / "c.wav", loud, 8000)
    assert report.n_clipped == 2
    back, _ = read(tmp_path / "c.wav")
    assert back.max() <= 1.0 and back.min() >= -1.0


def test_resample_length_and_band_limited_tone():
    rate_in, rate_out = 16000, 8000
    t = np.arange(rate_in) / rate_in
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)[None]
    out = resample(tone, from_hz=rate_in, to_hz=rate_out)
    assert out.shape == (1, rate_out)
    expected = np.sin(2 * np.pi * 440 * np.arange(rate_out) / rate_out)
    # away from the edges the VHQ filter reproduces a tone to better than -60 dB
    assert np.max(np.abs(out[0, 500:-500] - expected[500:-500])) < 1e-3


def test_missing_empty_nan_and_garbage_files(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read(tmp_path / "missing.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    with pytest.raises(AudioError, match="no samples"):
        read(tmp_path / "empty.wav")
    soundfile.write(tmp_path / "nan.wav", np.array([[0.0], [np.nan]]), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        read(tmp_path / "nan.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match="cannot read"):
        read(tmp_path / "junk.wav")
    with pytest.raises(AudioError, match="folder"):
        read(tmp_path)


def test_write_refuses_bad_requests(tmp_path):
    with pytest.raises(ParameterError):
        write(tmp_path / "x.mp4", np.zeros((1, 10), np.float32), 16000)
    with pytest.raises(ParameterError, match="FLAC cannot hold float"):
        write(tmp_path / "x.flac", np.zeros((1, 10), np.float32), 16000, bits="float")
    with pytest.raises(AudioError, match="NaN"):
        write(tmp_path / "x.wav", np.full((1, 10), np.nan, np.float32), 16000)
