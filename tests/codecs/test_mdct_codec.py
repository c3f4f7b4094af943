"""The mdct codec: alignment, rate, streaming, determinism across processes, damaged and lost packets, stereo,
short blocks, a quality floor, and the pieces that make them (transient tracker, reservoir, packet header)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nsac.bitstream.inspect import describe
from nsac.codecs import list_codecs, load_codec
from nsac.codecs.mdct import MdctCodec
from nsac.codecs.mdct.allocation import step_indices
from nsac.codecs.mdct.bitstream import code_to_groups, groups_to_code, read_packet
from nsac.codecs.mdct.encoder import TransientTracker
from nsac.codecs.mdct.signals import music_like
from nsac.coding import decode_bytes, encode_audio
from nsac.dsp.transient import detect_transients
from nsac.errors import BitstreamError, ParameterError, VersionError
from nsac.eval.nmr import nmr

RATE_HZ = 48000
RATE_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return music_like("mix", duration_s=4.0, sample_rate=RATE_HZ, seed=3)[None, :]


@pytest.fixture(scope="module")
def tonal() -> np.ndarray:
    return music_like("tonal", duration_s=2.0, sample_rate=RATE_HZ, seed=0)[None, :]


def _snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - decoded) ** 2)))


def test_registered_and_configurable():
    assert "mdct" in {info.name for info in list_codecs()}
    codec = load_codec("mdct", sample_rate=16000, bitrate=24000)
    assert (codec.frame_size, codec.algorithmic_delay) == (512, 768)
    rebuilt = load_codec("mdct", **codec.config())
    assert rebuilt.config() == codec.config()
    assert MdctCodec(sample_rate=44100).algorithmic_delay == 1536
    with pytest.raises(ParameterError):
        MdctCodec(bitrate=8000)
    with pytest.raises(ParameterError):
        MdctCodec(sample_rate=8000)
    with pytest.raises(VersionError):
        MdctCodec(version=99)


def test_round_trip_shapes_and_alignment(mix):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=128000)
    packets = codec.encode(mix)
    assert len(packets) == -(-(mix.shape[1] + codec.algorithmic_delay) // codec.frame_size)
    decoded = codec.decode(packets, mix.shape[1])
    assert decoded.shape == mix.shape and decoded.dtype == np.float32
    spectrum = np.fft.rfft(decoded[0], 2 * mix.shape[1]) * np.conj(np.fft.rfft(mix[0], 2 * mix.shape[1]))
    correlation = np.fft.irfft(spectrum)
    lags = np.concatenate([np.arange(0, 2000), np.arange(-2000, 0)])
    assert lags[np.argmax(np.concatenate([correlation[:2000], correlation[-2000:]]))] == 0
    assert _snr_db(mix, decoded) > 10.0


@pytest.mark.parametrize("bitrate", [32000, 64000, 128000])
def test_rate_within_three_percent(mix, bitrate):
    data = encode_audio(mix, RATE_HZ, "mdct", bitrate=bitrate)
    info = describe(data)
    assert abs(info["payload_kbps"] * 1000 / bitrate - 1) < RATE_TOLERANCE
    assert abs(info["file_kbps"] * 1000 / bitrate - 1) < RATE_TOLERANCE


def test_rate_holds_on_silence_and_short_clips(mix):
    silence_then_hit = np.concatenate([np.zeros((1, RATE_HZ)), mix[:, :4800]], axis=1).astype(np.float32)
    for audio in (np.zeros((1, RATE_HZ), np.float32), silence_then_hit, mix[:, : RATE_HZ // 4]):
        info = describe(encode_audio(audio, RATE_HZ, "mdct", bitrate=64000))
        assert abs(info["payload_kbps"] / 64 - 1) < RATE_TOLERANCE
    silence = np.zeros((1, RATE_HZ), np.float32)
    decoded, _ = decode_bytes(encode_audio(silence, RATE_HZ, "mdct", bitrate=64000))
    assert np.all(decoded == 0)


def test_streaming_equals_whole_file(mix):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=64000)
    whole = codec.encode(mix)
    rng = np.random.default_rng(1)
    encoder, packets, start = codec.stream_encoder(), [], 0
    while start < mix.shape[1]:
        size = int(rng.integers(1, 3000))
        packets += encoder.push(mix[:, start:start + size])
        start += size
    packets += encoder.flush()
    assert packets == whole
    decoder = codec.stream_decoder()
    streamed = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
    decoded = codec.decode(packets, mix.shape[1])
    np.testing.assert_array_equal(streamed[:, codec.algorithmic_delay:codec.algorithmic_delay + mix.shape[1]],
                                  decoded)


def test_decoding_in_another_process_is_identical(mix, tmp_path):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=64000, channels=1)
    data = encode_audio(mix[:, : RATE_HZ], RATE_HZ, "mdct", bitrate=64000)
    here, _ = decode_bytes(data)
    (tmp_path / "a.nsac").write_bytes(data)
    script = textwrap.dedent(f"""
        import numpy as np
        from nsac.coding import decode_bytes
        audio, _ = decode_bytes(open({str(tmp_path / 'a.nsac')!r}, 'rb').read())
        np.save({str(tmp_path / 'b.npy')!r}, audio)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), here)
    assert codec.deterministic


def test_damaged_packets_raise_bitstream_errors(mix):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=64000)
    packets = codec.encode(mix[:, : RATE_HZ // 2])
    rng = np.random.default_rng(2)
    damaged = [b"", b"\x00", packets[5][:-1], packets[5][:7], packets[5] + b"\x00"]
    damaged += [bytes(rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8)) for _ in range(40)]
    for packet in packets[3:8]:
        for _ in range(8):
            flipped = bytearray(packet)
            flipped[int(rng.integers(0, len(packet)))] ^= 1 << int(rng.integers(0, 8))
            damaged.append(bytes(flipped))
    for packet in damaged:
        with pytest.raises(BitstreamError):
            codec.decode([packet])


def test_lost_packets_are_concealed(mix):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=64000)
    packets = codec.encode(mix)
    clean = codec.decode(packets, mix.shape[1])
    lost = list(packets)
    lost[60] = lost[61] = None
    concealed = codec.decode(lost, mix.shape[1])
    assert concealed.shape == clean.shape and np.all(np.isfinite(concealed))
    n = codec.frame_size
    gap = slice(60 * n - codec.algorithmic_delay, 62 * n - codec.algorithmic_delay)
    level = np.sqrt(np.mean(concealed[:, gap] ** 2) / np.mean(clean[:, gap] ** 2))
    assert 0.1 < level < 2.0  # neither silence nor a burst
    after = slice(64 * n, 80 * n)
    np.testing.assert_allclose(concealed[:, after], clean[:, after], atol=1e-6)
    assert np.all(np.isfinite(codec.decode([None, None, packets[2]])))


def test_stereo_mid_side_round_trip():
    left = music_like("mix", duration_s=2.0, sample_rate=RATE_HZ, seed=4)
    right = music_like("piano", duration_s=2.0, sample_rate=RATE_HZ, seed=5)
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=128000, channels=2)
    for audio, expect_mid_side in ((np.stack([left, 0.8 * left + 0.05 * right]), True),
                                   (np.stack([left, right]), False)):
        packets = codec.encode(audio)
        flags = [read_packet(p, codec.geometry, channels=2).mid_side for p in packets[2:-2]]
        assert np.mean(flags) > 0.9 if expect_mid_side else np.mean(flags) < 0.1
        decoded = codec.decode(packets, audio.shape[1])
        assert decoded.shape == audio.shape
        assert min(_snr_db(audio[c], decoded[c]) for c in range(2)) > 5.0
    info = describe(encode_audio(np.stack([left, right]), RATE_HZ, "mdct", bitrate=128000))
    assert abs(info["payload_kbps"] / 128 - 1) < RATE_TOLERANCE


def test_short_blocks_on_an_attack():
    n = RATE_HZ // 2
    audio = np.zeros((1, n), np.float32)
    burst = np.random.default_rng(3).standard_normal(4000) * np.exp(-np.arange(4000) / 800.0)
    audio[0, 12000:16000] = 0.5 * burst
    audio[0, :12000] = 0.001 * np.sin(2 * np.pi * 440 * np.arange(12000) / RATE_HZ)
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=64000)
    encoder = codec.stream_encoder()
    encoder.push(audio)
    encoder.flush()
    attack_frame = (12000 + codec.frame_size // 2) // codec.frame_size + 1  # delay line: N + N/2 ahead
    assert "short" in encoder.window_types[attack_frame - 1:attack_frame + 1]
    assert encoder.window_types.count("short") <= 3
    long_only = MdctCodec(sample_rate=RATE_HZ, bitrate=64000, window_switching=False).stream_encoder()
    long_only.push(audio)
    long_only.flush()
    assert set(long_only.window_types) == {"long"}


def test_transient_tracker_matches_detect_transients():
    n_bins = 1024
    signal = np.concatenate([np.zeros(n_bins // 2), music_like("drums", duration_s=2.0, sample_rate=RATE_HZ)])
    reference = detect_transients(signal, sample_rate=RATE_HZ, n_bins=n_bins)
    delay_line = np.concatenate([np.zeros(n_bins), signal, np.zeros(4 * n_bins)])[None, :]
    tracker = TransientTracker(sample_rate=RATE_HZ, n_bins=n_bins, channels=1)
    flags = [False] + [tracker.push(delay_line[:, (2 * t + 3) * n_bins // 2:(2 * t + 5) * n_bins // 2])
                       for t in range(reference.size - 1)]
    np.testing.assert_array_equal(np.array(flags), reference)
    assert reference.sum() > 10


def test_quality_floor_on_a_tonal_signal(tonal):
    codec = MdctCodec(sample_rate=RATE_HZ, bitrate=128000)
    decoded = codec.decode(codec.encode(tonal), tonal.shape[1])
    assert _snr_db(tonal, decoded) > 15.0
    assert nmr(tonal[0], decoded[0], sample_rate=RATE_HZ)["nmr"] < -15.0


def test_other_rates_round_trip():
    for rate, bitrate in ((16000, 16000), (22050, 32000), (32000, 48000), (44100, 96000)):
        audio = music_like("piano", duration_s=1.0, sample_rate=rate, seed=6)[None, :]
        info = describe(encode_audio(audio, rate, "mdct", bitrate=bitrate))
        assert abs(info["payload_kbps"] * 1000 / bitrate - 1) < RATE_TOLERANCE
        decoded, decoded_rate = decode_bytes(encode_audio(audio, rate, "mdct", bitrate=bitrate))
        assert decoded_rate == rate and decoded.shape == audio.shape
        assert _snr_db(audio, decoded) > 3.0


def test_group_codes_and_step_indices():
    for groups in ((8,), (1, 7), (3, 1, 4), (1,) * 8):
        assert code_to_groups(groups_to_code(groups)) == groups
    e = np.array([-5, -3, 2, 0, 1, -32])
    s = np.array([0, 3, 4, 0, 0, 0])
    u = step_indices(e, s)
    assert u[1] == 2 * e[1] - s[1] and u[2] == 2 * e[2] - s[2]
    assert np.all(2 * e[s == 0] - u[s == 0] <= 0)  # no positive SNR where nothing is quantized
    assert u[3] == u[2] and u[4] == 2 * e[4]  # the previous step when allowed, else the smallest allowed


#: packets of bitstream version 1 (16 kHz, 16 kb/s, mono: a 440 Hz tone that stops, then a 3 kHz click):
#: (hex, window type, groups, sum of energy indices, sum of step indices, sum of |quantized values|)
GOLDEN_PACKETS_V1 = (
    ("4c1f43ac9d153533b338b8f509fab690d8626bb679d20fdf1e752307aa4733baef9f56e6e48248473b7c", "start", (),
     -477, -709, 57),
    (("9aa700aa1b74118ac6e515f2dae7c98b0161118bdb333aa22033c92a2c1aff490685b69de8006a4c4d7a66c2b154"
      "82e488ad1dff0428d969159b504c8d84006dced859b9a061ef976bd112"), "short", (8,), -194, -401, 448),
    (("9fad10125a8511318f6993e96b137e40b65fa9bd9a3addc07940d15b8d777982dffe65492f14e28ebd9dd27bf0bd"
      "dd8a9f58d20357fdc13d8d0af7dddd823f20ac1a37"), "short", (5, 3), -563, -873, 300),
    ("9c420d3de3ff7f6bccdef7d6d72727bac3c0fe97fb6b65988816c286e2bbc4b8e6779c583f60729dd14d4daed86016",
     "short", (1, 2, 1, 4), -987, -848, 0),
    ("dc8269ddff7f913e1306941b8d835ba44334", "stop", (), -960, -1920, 0),
    ("129e69ddff7f913e1306941b8d835ba44334", "long", (), -960, -1920, 0),
)
GOLDEN_RMS, GOLDEN_PEAK = 0.1406984, 0.6689412


def test_golden_packets_of_version_1_decode():
    codec = MdctCodec(sample_rate=16000, bitrate=16000, version=1)
    packets = [bytes.fromhex(h) for h, *_ in GOLDEN_PACKETS_V1]
    for packet, (_, window_type, groups, energy_sum, step_sum, value_sum) in zip(packets, GOLDEN_PACKETS_V1,
                                                                                   strict=True):
        frame = read_packet(packet, codec.geometry, channels=1)
        assert (frame.window_type, frame.groups) == (window_type, groups)
        assert (int(frame.energy[0].sum()), int(frame.step[0].sum())) == (energy_sum, step_sum)
        assert int(np.abs(frame.values[0]).sum()) == value_sum
    decoded = codec.decode(packets)
    assert decoded.shape == (1, len(packets) * 512 - codec.algorithmic_delay)
    assert np.sqrt(np.mean(decoded**2)) == pytest.approx(GOLDEN_RMS, rel=1e-5)
    assert np.abs(decoded).max() == pytest.approx(GOLDEN_PEAK, rel=1e-5)
