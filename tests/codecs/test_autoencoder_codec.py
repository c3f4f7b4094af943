"""The autoencoder codec on a tiny random model: streaming equals whole-file, packet rate and layouts, errors.

The weights are random (nothing is trained here): a tiny SoundStreamAutoencoder registered in a temporary
pretrained folder ($NSAC_PRETRAINED_DIR), once with no code counts (fixed-length packets) and once with the
code counts of the test signal (range-coded packets).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nsac import pretrained
from nsac.codecs.autoencoder.codec import AutoencoderCodec
from nsac.codecs.autoencoder.model import AutoencoderConfig, SoundStreamAutoencoder
from nsac.codecs.autoencoder.packets import PacketFormat, tables_from_counts
from nsac.errors import BitstreamError, ParameterError, WeightsError
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import stream_in_chunks

SAMPLE_RATE_HZ = 16000
TINY = AutoencoderConfig(channels=2, max_channels=4, dilations=(1, 3), latent_dim=4, n_codebooks=24,
                         codebook_size=1024)
FIXED, RANGED = "ae-test-fixed", "ae-test-ranged"
#: sha256 of the packets of test_golden_packets_of_seeded_codes (.nsac format version 1)
GOLDEN_PACKETS_SHA256 = "52dfba15d90acf3c98323b135799f4ff1feddd61ba297b67093c6daedee63f45"
#: the same with 7 pitch bits leading each frame (test_golden_packets_with_pitch; format version 1)
GOLDEN_PITCH_PACKETS_SHA256 = "c851bf8bf27f44b2debe512a7449da74e17c1a9b05f2da910d2eb0591d6fa004"


def signal(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A voiced-like test signal: harmonics of 140 Hz plus a little noise, (1, samples) float32."""
    t = np.arange(round(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    x = sum(0.1 / k * np.sin(2 * np.pi * 140 * k * t + k) for k in range(1, 12))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return x[None].astype(np.float32)


def tiny_model() -> SoundStreamAutoencoder:
    torch.manual_seed(0)
    return SoundStreamAutoencoder(TINY, sample_rate_hz=SAMPLE_RATE_HZ).eval()


def _register(name: str, model: SoundStreamAutoencoder, folder: Path) -> None:
    config = {"format": "nsac-pretrained", "version": 1, "name": name, "task": "autoencoder",
              "sample_rate_hz": SAMPLE_RATE_HZ,
              "model": {"name": "soundstream", **dataclasses.asdict(model.config)}}
    pretrained.register(name, model.state_dict(), config, directory=folder)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained")
    model = tiny_model()
    _register(FIXED, model, folder)
    codes = model.encode(torch.from_numpy(signal())[None], TINY.n_codebooks)[0]  # (N, frames)
    with torch.no_grad():
        for i in range(TINY.n_codebooks):
            model.quantizer.usage[i] = torch.bincount(codes[i], minlength=TINY.codebook_size).float() + 0.01
    _register(RANGED, model, folder)
    return folder


@pytest.fixture(autouse=True)
def _setup(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(pretrained.ENV_DIR, str(weights_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_residual_unit_streams_and_is_causal() -> None:
    torch.manual_seed(1)
    unit = CausalResidualUnit(3, kernel_size=7, dilation=3, hidden=2, norm="weight")
    x = torch.randn(2, 3, 200)
    with torch.no_grad():
        whole = unit(x)
        assert torch.allclose(stream_in_chunks(unit, x, [1, 17, 5, 64]), whole, atol=1e-6)
        changed = x.clone()
        changed[..., 150:] += 1.0
        assert torch.equal(unit(changed)[..., :150], whole[..., :150])


def test_model_streaming_equals_whole_signal() -> None:
    model = tiny_model()
    x = torch.from_numpy(signal(0.5))[None]
    n_q, hop, delay = 6, model.hop_samples, model.delay_samples
    whole = model.decode(model.encode(x, n_q), x.shape[-1])
    padded = torch.nn.functional.pad(x, (0, 3 * hop - x.shape[-1] % hop))
    pieces, enc_state, dec_state, start = [], None, None, 0
    with torch.no_grad():
        for size in [hop, 3 * hop, 2 * hop] * 10:
            chunk = padded[..., start : start + size]
            if chunk.shape[-1] == 0:
                break
            latents, enc_state = model.stream_encode(chunk, enc_state)
            audio, dec_state = model.stream_decode(model.quantizer.decode(model.quantizer.encode(latents, n_q)),
                                                   dec_state)
            pieces.append(audio)
            start += size
    streamed = torch.cat(pieces, -1)[..., delay : delay + x.shape[-1]]
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_model_forward_is_aligned_and_returns_the_commitment() -> None:
    model = tiny_model()
    x = torch.from_numpy(signal(0.3))[None]
    y, aux = model(x)
    assert y.shape == x.shape and set(aux) == {"vq_commitment"}
    assert torch.allclose(y, model.decode(model.encode(x, TINY.eval_codebooks), x.shape[-1]), atol=1e-5)
    model.train()
    y, aux = model(x.repeat(2, 1, 1))
    assert y.shape == (2, 1, x.shape[-1]) and aux["vq_commitment"].requires_grad


def test_codec_chunked_equals_whole_file_and_the_model() -> None:
    codec = AutoencoderCodec(weights=FIXED, bitrate=6000)
    x = signal()
    packets = codec.encode(x)
    encoder = codec.stream_encoder()
    chunked = encoder.push(np.zeros((1, 0), np.float32))
    start = 0
    for size in (100, 1000, 37, 5000, 3000, 20000):
        chunked += encoder.push(x[:, start : start + size])
        start += size
    assert chunked + encoder.flush() == packets
    decoded = codec.decode(packets, x.shape[1])
    decoder = codec.stream_decoder()
    streamed = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
    assert np.array_equal(streamed[:, codec.algorithmic_delay : codec.algorithmic_delay + x.shape[1]], decoded)
    model = tiny_model()
    reference = model.decode(model.encode(torch.from_numpy(x)[None], codec.n_q), x.shape[1])[0].numpy()
    assert np.allclose(decoded, reference, atol=1e-4)


def test_fixed_length_packets_hold_the_nominal_rate() -> None:
    x = signal(1.0)
    for bitrate, size in ((6000, 30), (12000, 60), (3000, 15), (1500, 8)):
        codec = AutoencoderCodec(weights=FIXED, bitrate=bitrate)
        packets = codec.encode(x)
        assert codec.packet_bytes == size and codec.constant_rate
        assert {len(p) for p in packets} == {size}
        measured_bps = 8 * sum(map(len, packets)) / (len(packets) * codec.frame_size / SAMPLE_RATE_HZ)
        if bitrate == 6000:
            assert abs(measured_bps - 6000) <= 0.05 * 6000
        assert measured_bps <= bitrate * 1.07  # whole bytes: 60 bits in 8 bytes at 1.5 kb/s


def test_range_coded_packets_decode_to_the_same_codes() -> None:
    x = signal(1.0)
    fixed = AutoencoderCodec(weights=FIXED, bitrate=6000)
    ranged = AutoencoderCodec(weights=RANGED, bitrate=6000)
    assert ranged.packet_bytes is None and not ranged.constant_rate
    fixed_packets, ranged_packets = fixed.encode(x), ranged.encode(x)
    assert len(fixed_packets) == len(ranged_packets)
    assert all(len(r) <= len(f) for f, r in zip(fixed_packets, ranged_packets, strict=True))
    assert sum(map(len, ranged_packets)) < 0.9 * sum(map(len, fixed_packets))
    for f, r in zip(fixed_packets, ranged_packets, strict=True):
        assert np.array_equal(fixed.packet_format.read(f), ranged.packet_format.read(r))
    assert np.array_equal(fixed.decode(fixed_packets), ranged.decode(ranged_packets))


def test_packet_format_round_trips_skewed_and_uniform_codes() -> None:
    rng = np.random.default_rng(1)
    counts = np.vstack([rng.dirichlet(np.full(1024, 0.05)) * 1e4 for _ in range(6)])
    tables = tables_from_counts(counts)
    fmt = PacketFormat(n_q=6, frames_per_packet=2, codebook_size=1024, tables=tables)
    for _ in range(50):
        skewed = np.stack([rng.choice(1024, size=2, p=c / c.sum()) for c in counts])
        uniform = rng.integers(0, 1024, size=(6, 2))
        for codes in (skewed, uniform):
            packet = fmt.write(codes)
            assert len(packet) <= fmt.fixed_bytes == 15
            assert np.array_equal(fmt.read(packet), codes)
    assert tables_from_counts(np.zeros((2, 1024))) is None


def pitch_formats(rng: np.random.Generator, n_q: int) -> tuple[np.ndarray, PacketFormat, PacketFormat]:
    """Skewed code counts of n_q codebooks, and the fixed and range-coded 2-frame formats with 7 pitch bits."""
    counts = np.vstack([rng.dirichlet(np.full(1024, 0.05)) * 1e4 for _ in range(n_q)])
    fixed = PacketFormat(n_q=n_q, frames_per_packet=2, codebook_size=1024, pitch_bits=7)
    ranged = PacketFormat(n_q=n_q, frames_per_packet=2, codebook_size=1024, pitch_bits=7,
                          tables=tables_from_counts(counts))
    return counts, fixed, ranged


def test_packets_with_pitch_round_trip_and_keep_the_pitch_bits_first() -> None:
    rng = np.random.default_rng(5)
    counts, fixed, ranged = pitch_formats(rng, 11)
    assert fixed.payload_bits == 2 * (7 + 110) and fixed.fixed_bytes == 30  # 5.85 kb/s in 40 ms
    for _ in range(30):
        codes = np.stack([rng.choice(1024, size=2, p=c / c.sum()) for c in counts])
        pitch = rng.integers(0, 128, size=2)
        for fmt in (fixed, ranged):
            packet = fmt.write(codes, pitch)
            assert len(packet) <= fmt.fixed_bytes
            decoded_codes, decoded_pitch = fmt.read_frames(packet)
            assert np.array_equal(decoded_codes, codes) and np.array_equal(decoded_pitch, pitch)
            assert np.array_equal(fmt.read(packet), codes)
    packet = fixed.write(np.zeros((11, 2), dtype=np.int64), np.array([127, 1]))
    assert packet[:1] == b"\xfe" and packet[14:16] == b"\x00\x10"  # 1111111 0..., frame 1 at bit 117
    with pytest.raises(ParameterError, match="give the pitch codes"):
        fixed.write(codes)
    with pytest.raises(ParameterError, match="0..127"):
        fixed.write(codes, np.array([0, 128]))
    with pytest.raises(ParameterError, match="carries no pitch"):
        PacketFormat(n_q=11, frames_per_packet=2, codebook_size=1024).write(codes, pitch)
    assert PacketFormat(n_q=11, frames_per_packet=2, codebook_size=1024).read_frames(bytes(28))[1] is None


def test_corrupt_packets_raise_bitstream_errors() -> None:
    fixed = AutoencoderCodec(weights=FIXED, bitrate=1500)  # 60 bits in 8 bytes: 4 padding bits
    packets = fixed.encode(signal(0.2))
    with pytest.raises(BitstreamError, match="longer than"):
        fixed.decode([packets[0] + b"\0"])
    with pytest.raises(BitstreamError, match="padding bits"):
        fixed.decode([packets[0][:-1] + bytes([packets[0][-1] | 1])])
    with pytest.raises(BitstreamError, match="no entropy-coding tables"):
        fixed.decode([packets[0][:3]])
    with pytest.raises(BitstreamError, match="must be bytes"):
        fixed.stream_decoder().push("text")  # type: ignore[arg-type]
    ranged = AutoencoderCodec(weights=RANGED, bitrate=6000)
    rng = np.random.default_rng(2)
    for length in list(range(31)) * 3:
        packet = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
        try:
            out = ranged.decode([packet])
        except BitstreamError:
            continue
        assert out.shape == (1, ranged.frame_size - ranged.algorithmic_delay) and np.all(np.isfinite(out))


def test_lost_packets_are_concealed() -> None:
    codec = AutoencoderCodec(weights=FIXED, bitrate=3000)
    packets = codec.encode(signal(0.4))
    lossy = [None] + packets[1:4] + [None, None] + packets[6:]
    out = codec.decode(lossy, 6400)
    assert out.shape == (1, 6400) and np.all(np.isfinite(out))


def test_parameters_weights_and_availability(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="no whole number of codebooks"):
        AutoencoderCodec(weights=FIXED, bitrate=1000 + 250)
    with pytest.raises(ParameterError, match="outside"):
        AutoencoderCodec(weights=FIXED, bitrate=24000)
    with pytest.raises(ParameterError, match="frames_per_packet"):
        AutoencoderCodec(weights=FIXED, frames_per_packet=0)
    with pytest.raises(WeightsError, match="no pretrained weights named 'absent'"):
        AutoencoderCodec(weights="absent")
    codec = AutoencoderCodec(weights=FIXED, bitrate=6000, frames_per_packet=1)
    assert codec.frame_size == 320 and codec.algorithmic_delay == 319 and codec.packet_bytes == 15
    assert codec.config()["weights"] == FIXED
    assert codec.weights_sha256_prefix == pretrained.weights_id(FIXED)
    complexity = codec.complexity()
    assert complexity["parameters"] > 0 and complexity["macs_per_second"] > 0
    assert AutoencoderCodec.availability() == (True, "")  # autoencoder weights in the folder, any name
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    available, reason = AutoencoderCodec.availability()
    assert not available and "no autoencoder weights are shipped" in reason and "nsac train autoencoder-16k" in reason


def test_golden_packets_of_seeded_codes() -> None:
    """The `autoencoder` packet layout, pinned: these bytes change only with a new .nsac format version."""
    rng = np.random.default_rng(7)
    counts = np.vstack([rng.dirichlet(np.full(1024, 0.05)) * 1e4 for _ in range(6)])
    tables = tables_from_counts(counts)
    fixed = PacketFormat(n_q=6, frames_per_packet=2, codebook_size=1024, tables=None)
    ranged = PacketFormat(n_q=6, frames_per_packet=2, codebook_size=1024, tables=tables)
    codes = [np.stack([rng.choice(1024, size=2, p=c / c.sum()) for c in counts]) for _ in range(20)]
    fixed_packets = [fixed.write(c) for c in codes]
    ranged_packets = [ranged.write(c) for c in codes]
    assert {len(p) for p in fixed_packets} == {15}
    assert sum(map(len, ranged_packets)) < sum(map(len, fixed_packets))
    digest = hashlib.sha256(b"".join(fixed_packets) + b"|" + b"".join(ranged_packets)).hexdigest()
    assert digest == GOLDEN_PACKETS_SHA256, digest


def test_golden_packets_with_pitch() -> None:
    """The layout with pitch codes (weights with model.pitch_bits), pinned like the one without."""
    rng = np.random.default_rng(8)
    counts, fixed, ranged = pitch_formats(rng, 5)
    frames = [(np.stack([rng.choice(1024, size=2, p=c / c.sum()) for c in counts]), rng.integers(0, 128, 2))
              for _ in range(20)]
    fixed_packets = [fixed.write(c, p) for c, p in frames]
    ranged_packets = [ranged.write(c, p) for c, p in frames]
    assert {len(p) for p in fixed_packets} == {15}  # 2 x (7 + 50) bits
    digest = hashlib.sha256(b"".join(fixed_packets) + b"|" + b"".join(ranged_packets)).hexdigest()
    assert digest == GOLDEN_PITCH_PACKETS_SHA256, digest
