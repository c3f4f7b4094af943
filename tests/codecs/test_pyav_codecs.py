"""Tests of the PyAV-backed legacy codecs (opus, aac, mp3): alignment, rate, streaming, loss, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nsac.codecs import codec_class, load_codec
from nsac.codecs.base import Codec
from nsac.errors import BitstreamError, ParameterError

pytest.importorskip("av")
soundfile = pytest.importorskip("soundfile")
from scipy.signal import correlate, resample_poly

DATA_DIR = Path(os.environ.get("NSAC_TEST_DATA", "/work/shared/data"))
SPEECH_FILES = sorted((DATA_DIR / "speech" / "test").rglob("*.flac"))
MUSIC_FILE = DATA_DIR / "music" / "test" / "hydrogen" / "BJA_Pacific" / "BL_01.aiff"
if not SPEECH_FILES or not MUSIC_FILE.exists():
    pytest.skip(f"test audio not found under {DATA_DIR} (set NSAC_TEST_DATA)", allow_module_level=True)

SPEECH_RATE_HZ = 16000
CLIP_S = 3.0
#: cross-correlation peak between input and output, in samples
MAX_LAG_SAMPLES = 2
#: what "the file never exceeds the nominal rate" allows for the delay padding and rate control
OPUS_RATE_MARGIN = 0.05
MP3_RATE_TOLERANCE = 0.05
#: FFmpeg's AAC encoder aims at an average, not a constant, rate
AAC_RATE_TOLERANCE = 0.08
PESQ_FLOOR = 2.0

# (codec, sample_rate, bitrate, options) for the round trips: each listed bitrate, two or three rates
ROUND_TRIPS = (
    [("opus", 16000, b, {}) for b in codec_class("opus").bitrates_bps]
    + [("opus", 48000, b, {"application": "audio"}) for b in (32000, 128000)]
    + [("opus", 8000, 12000, {}), ("opus", 24000, 32000, {"application": "lowdelay"})]
    + [("aac", 48000, b, {}) for b in codec_class("aac").bitrates_bps]
    + [("aac", 16000, 32000, {}), ("aac", 22050, 64000, {})]
    + [("mp3", 48000, b, {}) for b in codec_class("mp3").bitrates_bps]
    + [("mp3", 16000, b, {}) for b in codec_class("mp3").bitrates_bps]
    + [("mp3", 44100, 128000, {}), ("mp3", 22050, 64000, {})]
)
# one configuration per codec for the properties that do not depend on the rate
ONE_EACH = [("opus", 16000, 16000, {}), ("aac", 44100, 64000, {}), ("mp3", 22050, 64000, {})]


def _ids(case: tuple) -> str:
    name, rate, bitrate, options = case
    return f"{name}-{rate}Hz-{bitrate // 1000}k" + "".join(f"-{v}" for v in options.values())


def _read(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return audio[: int(seconds * rate)].T, rate


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """(1, 48000) speech at 16 kHz."""
    audio, rate = _read(SPEECH_FILES[0], CLIP_S)
    assert rate == SPEECH_RATE_HZ and audio.shape[1] == int(CLIP_S * rate)
    return audio


def _at_rate(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    if from_hz == to_hz:
        return audio
    g = np.gcd(from_hz, to_hz)
    return resample_poly(audio, to_hz // g, from_hz // g, axis=1).astype(np.float32)


def _codec(case: tuple) -> Codec:
    name, rate, bitrate, options = case
    return load_codec(name, sample_rate=rate, bitrate=bitrate, **options)


def _lag(reference: np.ndarray, degraded: np.ndarray) -> int:
    """Samples by which `degraded` lags `reference` (negative: it leads), from the cross-correlation peak."""
    c = correlate(degraded, reference, mode="full", method="fft")
    return int(np.argmax(c)) - (reference.size - 1)


def _bits_per_second(packets: list[bytes], seconds: float) -> float:
    return sum(len(p) for p in packets) * 8 / seconds


# --- 1. round trip: shape and alignment ---------------------------------------------------------------------
@pytest.mark.parametrize("case", ROUND_TRIPS, ids=_ids)
def test_round_trip_keeps_shape_and_time_alignment(case: tuple, speech: np.ndarray) -> None:
    codec = _codec(case)
    audio = _at_rate(speech, SPEECH_RATE_HZ, codec.sample_rate)
    packets = codec.encode(audio)
    out = codec.decode(packets, audio.shape[1])
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert len(packets) == -(-(audio.shape[1] + codec.algorithmic_delay) // codec.frame_size)
    # SILK (opus below 32 kb/s, and at 48 kHz) keeps the spectrum, not the phase: its peak wanders a few
    # samples, so alignment is checked where the codec preserves the waveform
    waveform_coder = not (
        case[0] == "opus" and case[3].get("application", "voip") == "voip" and case[2] < 32000
    )
    if waveform_coder:
        assert abs(_lag(audio[0], out[0])) <= MAX_LAG_SAMPLES


@pytest.mark.parametrize("name,rate", [("opus", 48000), ("aac", 44100), ("mp3", 48000)])
def test_stereo_music_round_trip_is_aligned_per_channel(name: str, rate: int) -> None:
    music, music_rate = _read(MUSIC_FILE, CLIP_S)
    audio = _at_rate(music, music_rate, rate)
    codec = load_codec(name, sample_rate=rate, bitrate=128000, channels=2)
    out = codec.decode(codec.encode(audio), audio.shape[1])
    assert out.shape == audio.shape
    for channel in range(2):
        assert abs(_lag(audio[channel], out[channel])) <= MAX_LAG_SAMPLES


def test_opus_delay_is_the_lookahead_plus_the_decimator() -> None:
    """A click through CELT at a high rate comes back where it went in, at 16 and 48 kHz."""
    for rate, expected in [(16000, 104 + 16), (48000, 312)]:
        codec = load_codec("opus", sample_rate=rate, bitrate=128000, application="audio")
        assert codec.algorithmic_delay == expected
        clicks = np.zeros((1, rate), dtype=np.float32)
        clicks[0, rate // 4 :: rate // 4] = 0.5
        out = codec.decode(codec.encode(clicks), rate)
        assert abs(_lag(clicks[0], out[0])) <= 1


# --- 2. bitrate from the bytes ------------------------------------------------------------------------------
@pytest.mark.parametrize("bitrate", codec_class("opus").bitrates_bps)
def test_opus_file_is_never_much_above_the_nominal_rate(bitrate: int, speech: np.ndarray) -> None:
    for application in ("voip", "lowdelay"):
        codec = load_codec("opus", sample_rate=SPEECH_RATE_HZ, bitrate=bitrate, application=application)
        measured = _bits_per_second(codec.encode(speech), CLIP_S)
        assert measured <= bitrate * (1 + OPUS_RATE_MARGIN), (application, measured)


def test_opus_lowdelay_is_cbr_at_the_nominal_rate(speech: np.ndarray) -> None:
    codec = load_codec("opus", sample_rate=SPEECH_RATE_HZ, bitrate=24000, application="lowdelay")
    sizes = {len(p) for p in codec.encode(speech)}
    assert sizes == {24000 * 20 // 1000 // 8}


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("bitrate", codec_class("mp3").bitrates_bps)
def test_mp3_is_cbr_at_the_nominal_rate(rate: int, bitrate: int, speech: np.ndarray) -> None:
    audio = _at_rate(speech, SPEECH_RATE_HZ, rate)
    codec = load_codec("mp3", sample_rate=rate, bitrate=bitrate)
    packets = codec.encode(audio)
    assert {len(p) for p in packets} == {codec.packet_bytes}
    assert _bits_per_second(packets, len(packets) * codec.frame_size / rate) == pytest.approx(bitrate)
    assert abs(_bits_per_second(packets, CLIP_S) / bitrate - 1) <= MP3_RATE_TOLERANCE


@pytest.mark.parametrize("bitrate", codec_class("aac").bitrates_bps)
def test_aac_average_rate_is_near_nominal(bitrate: int, speech: np.ndarray) -> None:
    audio = _at_rate(speech, SPEECH_RATE_HZ, 48000)
    codec = load_codec("aac", sample_rate=48000, bitrate=bitrate)
    packets = codec.encode(audio)
    coded_s = len(packets) * codec.frame_size / codec.sample_rate
    assert abs(_bits_per_second(packets, coded_s) / bitrate - 1) <= AAC_RATE_TOLERANCE


# --- 3. streaming equals whole-file -------------------------------------------------------------------------
@pytest.mark.parametrize("case", ONE_EACH, ids=_ids)
def test_streaming_in_random_chunks_equals_whole_file(case: tuple, speech: np.ndarray) -> None:
    codec = _codec(case)
    audio = _at_rate(speech, SPEECH_RATE_HZ, codec.sample_rate)
    packets = codec.encode(audio)

    rng = np.random.default_rng(7)
    encoder = codec.stream_encoder()
    streamed: list[bytes] = []
    start = 0
    while start < audio.shape[1]:
        stop = start + int(rng.integers(1, 3 * codec.frame_size))
        streamed += encoder.push(audio[:, start:stop])
        start = stop
    streamed += encoder.flush()
    assert streamed == packets

    decoder = codec.stream_decoder()
    pieces = [decoder.push(p) for p in packets]
    assert all(piece.shape == (codec.channels, codec.frame_size) for piece in pieces)
    pieces.append(decoder.flush())
    out = np.concatenate(pieces, axis=1)[
        :, codec.algorithmic_delay : codec.algorithmic_delay + audio.shape[1]
    ]
    np.testing.assert_array_equal(out, codec.decode(packets, audio.shape[1]))


# --- 4. determinism across processes ------------------------------------------------------------------------
_CHILD = """
import json, sys
import numpy as np
from nsac.codecs import load_codec
jobs = json.load(open(sys.argv[1]))
for i, job in enumerate(jobs):
    codec = load_codec(job["name"], **job["config"])
    audio = np.load(sys.argv[2] + f"/audio{i}.npy")
    out = codec.decode([bytes.fromhex(p) for p in job["packets"]], audio.shape[1])
    np.save(sys.argv[2] + f"/decoded{i}.npy", out)
    job["packets"] = [p.hex() for p in codec.encode(audio)]
json.dump(jobs, open(sys.argv[2] + "/reencoded.json", "w"))
"""


def test_another_process_decodes_and_encodes_identically(speech: np.ndarray, tmp_path: Path) -> None:
    jobs, decoded = [], []
    for i, case in enumerate(ONE_EACH):
        codec = _codec(case)
        audio = _at_rate(speech, SPEECH_RATE_HZ, codec.sample_rate)
        packets = codec.encode(audio)
        np.save(tmp_path / f"audio{i}.npy", audio)
        decoded.append(codec.decode(packets, audio.shape[1]))
        jobs.append({"name": codec.name, "config": codec.config(), "packets": [p.hex() for p in packets]})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "jobs.json"), str(tmp_path)], check=True)
    for i, job in enumerate(jobs):
        np.testing.assert_array_equal(np.load(tmp_path / f"decoded{i}.npy"), decoded[i])
    assert json.loads((tmp_path / "reencoded.json").read_text()) == jobs


# --- 5. lost packets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ONE_EACH, ids=_ids)
def test_lost_packets_decode_to_the_right_length(case: tuple, speech: np.ndarray) -> None:
    codec = _codec(case)
    audio = _at_rate(speech, SPEECH_RATE_HZ, codec.sample_rate)
    packets: list[bytes | None] = list(codec.encode(audio))
    clean = codec.decode(packets, audio.shape[1])
    middle = len(packets) // 2
    packets[middle] = None
    out = codec.decode(packets, audio.shape[1])
    assert out.shape == audio.shape and np.all(np.isfinite(out))
    # the lost frame, in the aligned output
    lost = slice(
        middle * codec.frame_size - codec.algorithmic_delay,
        (middle + 1) * codec.frame_size - codec.algorithmic_delay,
    )
    if codec.name == "opus":
        # libopus PLC continues the signal rather than muting it
        assert np.sqrt(np.mean(out[:, lost] ** 2)) > 0.1 * np.sqrt(np.mean(clean[:, lost] ** 2)) > 0
    # a few frames after the loss the decoder is back on track
    after = slice(lost.stop + 4 * codec.frame_size, None)
    assert np.corrcoef(out[0, after], clean[0, after])[0, 1] > 0.99

    # a first packet lost, and a burst, are concealed too
    packets[0] = packets[middle + 1] = packets[middle + 2] = None
    assert codec.decode(packets, audio.shape[1]).shape == audio.shape


@pytest.mark.parametrize("name", ["aac", "mp3"])
def test_aac_and_mp3_output_a_frame_of_silence_for_a_lost_packet(name: str, speech: np.ndarray) -> None:
    codec = load_codec(name, sample_rate=SPEECH_RATE_HZ, bitrate=32000)
    packets = codec.encode(speech)
    decoder = codec.stream_decoder()
    for packet in packets[:5]:
        decoder.push(packet)
    np.testing.assert_array_equal(decoder.push(None), np.zeros((1, codec.frame_size), dtype=np.float32))
    assert np.any(decoder.push(packets[8]))


# --- 6. bad parameters and corrupt packets ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,options,message",
    [
        ("opus", {"sample_rate": 44100}, "44100 Hz is not supported"),
        ("opus", {"bitrate": 5000}, "5000 bit/s is outside"),
        ("opus", {"bitrate": 600000, "channels": 2}, "600000 bit/s is outside"),
        ("opus", {"bitrate": 300000}, "the most libopus codes"),
        ("opus", {"application": "music"}, "application='music' is unknown"),
        ("opus", {"channels": 3}, "channels=3"),
        ("opus", {"frame_ms": 10}, "frame_ms"),
        ("aac", {"sample_rate": 8000}, "8000 Hz is not supported"),
        ("aac", {"bitrate": 8000}, "8000 bit/s is outside"),
        ("aac", {"sample_rate": 16000, "bitrate": 96000}, "lower it or raise the sample rate"),
        ("mp3", {"sample_rate": 11025}, "11025 Hz is not supported"),
        ("mp3", {"bitrate": 100000}, "not a Layer III rate at 48000 Hz"),
        ("mp3", {"sample_rate": 48000, "bitrate": 8000}, "not a Layer III rate"),
    ],
)
def test_bad_parameters_raise_parameter_error(name: str, options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        load_codec(name, **options)


@pytest.mark.parametrize("case", ONE_EACH, ids=_ids)
def test_corrupt_packets_raise_bitstream_error(case: tuple, speech: np.ndarray) -> None:
    codec = _codec(case)
    packets = codec.encode(_at_rate(speech, SPEECH_RATE_HZ, codec.sample_rate))
    middle = len(packets) // 2
    with pytest.raises(BitstreamError, match="empty packet"):
        codec.decode(packets[:middle] + [b""])
    flipped = bytes([packets[middle][0] ^ 0xFF]) + packets[middle][1:]
    with pytest.raises(BitstreamError):
        codec.decode(packets[:middle] + [flipped])

    rng = np.random.default_rng(3)
    n_random = 50
    n_refused = 0
    for _ in range(n_random):
        garbage = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        try:
            out = codec.decode([garbage])
        except BitstreamError:
            n_refused += 1
        else:  # a well-formed packet by chance: noise of the right length, never a crash
            assert out.shape == (codec.channels, codec.frame_size - codec.algorithmic_delay)
            assert np.all(np.isfinite(out))
    # about one random string in six is a valid 20 ms Opus packet; AAC and MP3 refuse them all
    assert n_refused >= (0.7 if codec.name == "opus" else 1.0) * n_random


def test_truncated_mp3_frame_is_refused(speech: np.ndarray) -> None:
    codec = load_codec("mp3", sample_rate=SPEECH_RATE_HZ, bitrate=32000)
    packets = codec.encode(speech)
    with pytest.raises(BitstreamError, match="Layer III frame"):
        codec.decode(packets[:5] + [packets[5][:-1]])


# --- 7. quality sanity --------------------------------------------------------------------------------------
def test_opus_at_6_kbps_has_reasonable_wideband_pesq() -> None:
    pesq = pytest.importorskip("pesq").pesq
    codec = load_codec("opus", sample_rate=SPEECH_RATE_HZ, bitrate=6000)
    scores = []
    for path in SPEECH_FILES[::25][:8]:
        reference, _ = _read(path, 10.0)
        degraded = codec.decode(codec.encode(reference), reference.shape[1])
        scores.append(pesq(SPEECH_RATE_HZ, reference[0], degraded[0], "wb"))
    assert np.mean(scores) > PESQ_FLOOR, scores


# --- availability without PyAV ------------------------------------------------------------------------------
def test_adapters_import_and_report_missing_pyav_without_it() -> None:
    script = (
        "import sys; sys.modules['av'] = None\n"
        "from nsac.codecs.legacy.opus import OpusCodec\n"
        "from nsac.codecs.legacy.aac import AacCodec\n"
        "from nsac.codecs.legacy.mp3 import Mp3Codec\n"
        "print([c.availability() for c in (OpusCodec, AacCodec, Mp3Codec)])"
    )
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == str([(False, "pip install av")] * 3)
    for name in ("opus", "aac", "mp3"):
        assert codec_class(name).availability() == (True, "")
