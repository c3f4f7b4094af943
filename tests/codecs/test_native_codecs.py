"""The native legacy codecs (codec2, lc3, amrwb, lpcnet-freedv) on real speech: shape, alignment, rate,
streaming, repeatability across processes, loss and hostile input; each skips when its library is absent."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nsac.codecs import codec_class, list_codecs, load_codec
from nsac.codecs.base import Codec
from nsac.codecs.legacy._native import float_to_int16, int16_to_float, pack_bits, unpack_bits
from nsac.errors import BitstreamError, ParameterError

REPO = Path(__file__).resolve().parents[2]
SPEECH_DIR = REPO.parent / "shared" / "data" / "speech" / "test"
SPEECH_RATE_HZ = 16000
#: 2.4 s is a whole number of frames for every codec here (lcm of 640, 480, 320, 160 and 120 samples is 1920)
CLIP_SAMPLES = 38400
CLIP_OFFSET_SAMPLES = 4000


@dataclass(frozen=True)
class Case:
    """How one codec is tested: registry name, whether it codes the waveform, options it must refuse."""

    name: str
    waveform: bool
    default: dict[str, Any]
    bad_options: list[dict[str, Any]] = field(default_factory=list)
    #: bits of every packet that are not the codec's own, besides padding to whole bytes
    header_bits: int = 0


CASES = [
    Case(
        "codec2",
        waveform=False,
        default={"sample_rate": 16000, "bitrate": 1300},
        bad_options=[
            {"sample_rate": 44100},
            {"bitrate": 2000},
            {"bitrate": 100},
            {"mode": "999"},
            {"bitrate": 3200, "mode": "700C"},
            {"channels": 2},
        ],
    ),
    Case(
        "lc3",
        waveform=True,
        default={"sample_rate": 16000, "bitrate": 32000},
        bad_options=[
            {"sample_rate": 44100},
            {"bitrate": 8000},
            {"bitrate": 400000},
            {"frame_ms": 5.0},
            {"bitrate": 16000, "frame_ms": 7.5},
            {"channels": 2},
        ],
    ),
    Case(
        "amrwb",
        waveform=True,
        default={"sample_rate": 16000, "bitrate": 12650},
        bad_options=[{"sample_rate": 8000}, {"bitrate": 12000}, {"bitrate": 64000}, {"channels": 2}],
    ),
    Case(
        "lpcnet-freedv",
        waveform=False,
        default={"sample_rate": 16000, "bitrate": 1733},
        bad_options=[{"sample_rate": 8000}, {"bitrate": 2400}, {"channels": 2}],
    ),
]
CASE_IDS = [case.name for case in CASES]


def _available(name: str) -> None:
    available, reason = codec_class(name).availability()
    if not available:
        pytest.skip(f"{name} is unavailable here; install it with: {reason}")


def _codec(case: Case, **overrides: Any) -> Codec:
    _available(case.name)
    return load_codec(case.name, **(case.default | overrides))


@pytest.fixture(scope="module")
def speech(request: pytest.FixtureRequest) -> np.ndarray:
    """2.4 s of real speech at 16 kHz, shape (1, CLIP_SAMPLES), float32."""
    import soundfile

    files = sorted(SPEECH_DIR.rglob("*.flac"))
    if not files:
        return request.getfixturevalue("speech_16k")[:, :CLIP_SAMPLES]
    for path in files:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        if rate == SPEECH_RATE_HZ and audio.shape[0] >= CLIP_OFFSET_SAMPLES + CLIP_SAMPLES:
            return np.ascontiguousarray(audio[CLIP_OFFSET_SAMPLES : CLIP_OFFSET_SAMPLES + CLIP_SAMPLES, :1].T)
    pytest.skip(f"no 16 kHz speech of {CLIP_SAMPLES} samples in {SPEECH_DIR}")


# --- signal properties --------------------------------------------------------------------------------------
def _waveform_lag(x: np.ndarray, y: np.ndarray, *, max_lag: int) -> tuple[int, float]:
    """Lag of the peak of the normalised cross-correlation of y against x, and its value."""
    core = x[max_lag:-max_lag]
    values = []
    for lag in range(-max_lag, max_lag + 1):
        segment = y[max_lag + lag : x.size - max_lag + lag]
        values.append(np.dot(core, segment) / (np.linalg.norm(core) * np.linalg.norm(segment) + 1e-12))
    best = int(np.argmax(values))
    return best - max_lag, float(values[best])


def _band_log_energy(x: np.ndarray, *, hop: int, n_bands: int = 6) -> np.ndarray:
    """Log energy in n_bands log-spaced bands of frames of 8 hops every hop, shape (n_bands, frames)."""
    n_fft = 8 * hop
    n_frames = (x.size - n_fft) // hop
    frames = np.stack([x[i * hop : i * hop + n_fft] for i in range(n_frames)]) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.unique(np.geomspace(2, n_fft // 2, n_bands + 1).astype(int))
    bands = np.stack([power[:, lo:hi].sum(axis=1) for lo, hi in itertools.pairwise(edges)])
    return np.log(bands + 1e-6)


def _envelope_correlation(x: np.ndarray, y: np.ndarray, *, hop: int, lags: range) -> dict[int, float]:
    """Correlation of the band log-energy envelopes of x and y shifted by each lag (in hops)."""
    ex, ey = _band_log_energy(x, hop=hop), _band_log_energy(y, hop=hop)
    n = ex.shape[1] - 2 * max(abs(lag) for lag in lags)
    start = max(abs(lag) for lag in lags)
    reference = ex[:, start : start + n] - ex[:, start : start + n].mean(axis=1, keepdims=True)
    result = {}
    for lag in lags:
        shifted = ey[:, start + lag : start + lag + n]
        shifted = shifted - shifted.mean(axis=1, keepdims=True)
        result[lag] = float((reference * shifted).sum() / np.sqrt((reference**2).sum() * (shifted**2).sum()))
    return result


def _bitrates(case: Case) -> list[dict[str, Any]]:
    return [case.default | {"bitrate": bitrate} for bitrate in codec_class(case.name).bitrates_bps]


# --- 1. round trip at every listed bitrate ------------------------------------------------------------------
ROUND_TRIPS = [(case, options) for case in CASES for options in _bitrates(case)] + [
    (CASES[0], {"sample_rate": 8000, "bitrate": 3200}),
    (CASES[1], {"sample_rate": 16000, "bitrate": 32000, "frame_ms": 7.5}),
    (CASES[1], {"sample_rate": 48000, "bitrate": 96000}),
]


@pytest.mark.parametrize(
    ("case", "options"),
    ROUND_TRIPS,
    ids=[f"{c.name}-{'-'.join(map(str, o.values()))}" for c, o in ROUND_TRIPS],
)
def test_round_trip_keeps_shape_and_follows_the_input(
    case: Case, options: dict[str, Any], speech: np.ndarray
):
    _available(case.name)
    import soxr

    codec = load_codec(case.name, **options)
    audio = speech
    if codec.sample_rate != SPEECH_RATE_HZ:
        audio = soxr.resample(speech[0], SPEECH_RATE_HZ, codec.sample_rate)[None, :].astype(np.float32)
    decoded = codec.decode(codec.encode(audio), audio.shape[1])
    assert decoded.shape == audio.shape and decoded.dtype == np.float32
    assert np.all(np.isfinite(decoded))
    if case.waveform:
        lag, peak = _waveform_lag(audio[0], decoded[0], max_lag=20)
        assert abs(lag) <= 2, f"output is {lag} samples off the input; algorithmic_delay is wrong"
        assert peak > 0.8
    else:
        # parametric: no waveform match, but the spectral envelope must follow the input, aligned in time
        hop = codec.sample_rate // 1000  # 1 ms
        correlation = _envelope_correlation(audio[0], decoded[0], hop=hop, lags=range(-12, 13))
        best = max(correlation, key=correlation.get)
        assert correlation[0] > 0.6, f"envelope correlation {correlation[0]:.2f} at lag 0"
        assert abs(best) <= 10, f"envelope peaks {best} ms off the input; algorithmic_delay is wrong"


# --- 2. bitrate from the bytes ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bitrate_from_bytes_matches_nominal(case: Case, speech: np.ndarray):
    _available(case.name)
    for options in _bitrates(case):
        codec = load_codec(case.name, **options)
        packets = codec.encode(speech)
        assert {len(p) for p in packets} == {codec.packet_bytes}
        duration_s = len(packets) * codec.frame_size / codec.sample_rate
        measured_bps = sum(len(p) for p in packets) * 8 / duration_s
        assert measured_bps == pytest.approx(codec.packet_bytes * 8 * codec.sample_rate / codec.frame_size)
        # on the wire: a header, if any, and the codec's bits per frame rounded up to whole bytes (0..7
        # padding bits: 4 for codec2 1300 and 700C and for lpcnet-freedv; lc3 at 7.5 ms rounds its bitrate
        # up by under 1 bit/s)
        codec_bits_per_frame = codec.bitrate * codec.frame_size / codec.sample_rate
        overhead_bits = codec.packet_bytes * 8 - codec_bits_per_frame
        assert case.header_bits - 0.01 < overhead_bits < case.header_bits + 8
        if overhead_bits < 0.05 * codec_bits_per_frame:
            assert measured_bps == pytest.approx(codec.bitrate, rel=0.05)


# --- 3. streaming equals whole-file -------------------------------------------------------------------------
STREAMING = [(case, {}) for case in CASES] + [(CASES[0], {"sample_rate": 8000, "bitrate": 700})]


@pytest.mark.parametrize(("case", "overrides"), STREAMING, ids=[f"{c.name}{o}" for c, o in STREAMING])
def test_streaming_equals_whole_file(case: Case, overrides: dict[str, Any], speech: np.ndarray):
    codec = _codec(case, **overrides)
    audio = speech[:, :: SPEECH_RATE_HZ // codec.sample_rate].copy()  # rate only matters for 8 kHz codec2
    packets = codec.encode(audio)

    rng = np.random.default_rng(7)
    encoder = codec.stream_encoder()
    streamed: list[bytes] = []
    position = 0
    while position < audio.shape[1]:
        chunk = int(rng.integers(1, 3 * codec.frame_size))
        streamed += encoder.push(audio[:, position : position + chunk])
        position += chunk
    streamed += encoder.flush()
    assert streamed == packets

    decoder = codec.stream_decoder()
    pieces = [decoder.push(p) for p in packets] + [decoder.flush()]
    received = np.concatenate(pieces, axis=1)
    n = audio.shape[1]
    delay = codec.algorithmic_delay
    np.testing.assert_array_equal(received[:, delay : delay + n], codec.decode(packets, n))


# --- 4. the same samples in another process -----------------------------------------------------------------
_CHILD = """
import json, sys
import numpy as np
from nsac.codecs import load_codec
name, config, audio_path, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
codec = load_codec(name, **config)
audio = np.load(audio_path)
packets = codec.encode(audio)
decoded = codec.decode(packets, audio.shape[1])
np.savez(out_path, packets=np.frombuffer(b"".join(packets), np.uint8), decoded=decoded)
"""


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_another_process_encodes_and_decodes_identically(case: Case, speech: np.ndarray, tmp_path: Path):
    codec = _codec(case)
    if not getattr(codec, "deterministic", True):
        pytest.skip(
            f"{case.name}: this build's hidden random generator cannot be reached; decoding is not repeatable"
        )
    audio = speech[:, : CLIP_SAMPLES // 2]
    # decode other streams first: a codec drawing from a process-global generator would now differ
    warmup = codec.encode(audio[:, ::-1].copy())
    codec.decode(warmup)
    packets = codec.encode(audio)
    decoded = codec.decode(packets, audio.shape[1])

    np.save(tmp_path / "audio.npy", audio)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            case.name,
            json.dumps(codec.config()),
            str(tmp_path / "audio.npy"),
            str(tmp_path / "child.npz"),
        ],
        cwd=REPO,
        check=True,
        timeout=60,
    )
    child = np.load(tmp_path / "child.npz")
    assert child["packets"].tobytes() == b"".join(packets)
    np.testing.assert_array_equal(child["decoded"], decoded)


# --- 5. loss ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_lost_packets_are_concealed(case: Case, speech: np.ndarray):
    codec = _codec(case)
    packets: list[bytes | None] = list(codec.encode(speech))
    middle = len(packets) // 2
    packets[middle] = None  # one lost packet
    packets[middle + 8 : middle + 14] = [None] * 6  # and a burst
    decoded = codec.decode(packets, speech.shape[1])
    assert decoded.shape == speech.shape
    assert np.all(np.isfinite(decoded))
    assert np.max(np.abs(decoded)) <= 1.0 + 1e-6
    # concealment stays quieter than a blast: the lossy stretch carries no more energy than twice the input's
    start = middle * codec.frame_size
    stretch = slice(start, start + 20 * codec.frame_size)
    assert np.sum(decoded[0, stretch] ** 2) <= 2 * np.sum(speech[0, stretch] ** 2) + 1e-3
    # the first packet lost too: nothing to repeat yet
    first_lost = codec.decode([None] + list(packets[1:]), speech.shape[1])
    assert first_lost.shape == speech.shape and np.all(np.isfinite(first_lost))


# --- 6. hostile input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_options_raise_parameter_error(case: Case):
    _available(case.name)
    for options in case.bad_options:
        with pytest.raises(ParameterError):
            load_codec(case.name, **(case.default | options))
    with pytest.raises(ParameterError):
        load_codec(case.name, no_such_option=1)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_wrong_length_and_foreign_packets_raise_bitstream_error(case: Case, speech: np.ndarray):
    codec = _codec(case)
    good = codec.encode(speech[:, : 4 * codec.frame_size])
    size = codec.packet_bytes
    decoder = codec.stream_decoder()
    for bad in (b"", good[0][:-1], good[0] + b"\x00", bytes(3 * size), "text", 42):
        with pytest.raises(BitstreamError):
            decoder.push(bad)
    # the decoder is still usable after refusing packets
    assert np.all(np.isfinite(decoder.push(good[1])))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_garbage_packets_are_refused_or_decode_finite(case: Case, speech: np.ndarray):
    codec = _codec(case)
    decoder = codec.stream_decoder()
    rng = np.random.default_rng(11)
    refused = 0
    for _ in range(40):
        garbage = rng.integers(0, 256, codec.packet_bytes, dtype=np.uint8).tobytes()
        try:
            out = decoder.push(garbage)
        except BitstreamError:
            refused += 1
            continue
        assert np.all(np.isfinite(out)) and out.shape[0] == 1
    detectable = {
        "amrwb": True,  # 3 to 7 padding bits that must be zero
        "lc3": True,  # liblc3 checks the side information and arithmetic coder
        "lpcnet-freedv": True,  # 4 padding bits that must be zero
        "codec2": codec.bitrate * codec.frame_size % (8 * codec.sample_rate) != 0,  # padding bits, if any
    }[case.name]
    if detectable:
        assert refused > 0


def test_bits_pack_msb_first_and_padding_must_be_zero():
    bits = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=np.uint8)
    packed = pack_bits(bits)
    assert packed == bytes([0b10110010, 0b11000000])
    np.testing.assert_array_equal(unpack_bits(packed, n_bits=10, codec="t"), bits)
    with pytest.raises(BitstreamError):
        unpack_bits(bytes([0b10110010, 0b11000001]), n_bits=10, codec="t")


def test_int16_conversion_clips_and_round_trips():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0], dtype=np.float32)
    pcm = float_to_int16(x)
    np.testing.assert_array_equal(pcm, [-32768, -32768, -16384, 0, 8192, 32767, 32767])
    np.testing.assert_array_equal(int16_to_float(pcm[2:5]), x[2:5])


# --- registry -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_registry_lists_the_codec_and_config_rebuilds_it(case: Case):
    info = {entry.name: entry for entry in list_codecs()}[case.name]
    assert info.kind == "legacy"
    if not info.available:
        assert info.reason, "an unavailable codec must say what to install"
        pytest.skip(f"{case.name} is unavailable here; install it with: {info.reason}")
    codec = _codec(case)
    rebuilt = load_codec(case.name, **codec.config())
    assert rebuilt.config() == codec.config()
    json.dumps(codec.config())
    for attribute in ("frame_size", "bitrate", "algorithmic_delay", "packet_bytes", "sample_rate"):
        assert getattr(rebuilt, attribute) == getattr(codec, attribute)
    assert codec.channels == 1 and codec.constant_rate
    assert codec.complexity() == {"macs_per_second": 0.0, "parameters": 0}
    assert codec.bitrate_range_bps[0] <= codec.bitrate <= codec.bitrate_range_bps[1]
