"""The soft-to-hard codec (autoencoder-s2h): quantiser, entropy estimate, range-coded packets, streaming,
concealment, a short training on real speech, golden packets and fuzzed input.

The codec tests run a tiny random model (nothing is trained here) registered in a temporary pretrained folder
($NSAC_PRETRAINED_DIR), once with no code frequencies (fixed-length packets) and once with the frequencies of
its own codes on the shipped example (range-coded packets).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import signal
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsac import codecs, pretrained
from nsac.bitstream.entropy import bits_estimate
from nsac.bitstream.entropy_models import TABLE_PRECISION_BITS, cdf_table_digest, pmf_to_freqs
from nsac.codecs.autoencoder.packets import PacketFormat
from nsac.codecs.autoencoder_s2h.codec import AutoencoderS2HCodec
from nsac.codecs.autoencoder_s2h.model import S2HAutoencoder, S2HAutoencoderConfig
from nsac.coding import decode_bytes, encode_audio
from nsac.errors import BitstreamError, NsacError, ParameterError, WeightsError
from nsac.losses.spectral import MultiResolutionSTFTLoss
from nsac.nn.streaming import stream_in_chunks
from nsac.nn.subpixel import SubpixelUpsample1d
from nsac.quant.soft_to_hard import SoftToHardQuantizer, histogram_entropy_bits

SAMPLE_RATE_HZ = 16000
TINY = S2HAutoencoderConfig(channels=(2, 4, 4, 8), dilations=(1,), latent_channels=4, n_centres=16)
FIXED, RANGED = "s2h-test-fixed", "s2h-test-ranged"
#: range-coded packets may exceed the ideal code length (sum of -log2 f/2**16) by the coder's flush: it
#: writes whole 32-bit words and the packet drops trailing zero bytes, so at most this much per packet
FLUSH_BITS_PER_PACKET = 32
#: sha256 of the concatenated packets of the tiny seeded model on the example's first second
GOLDEN_MODEL_PACKETS_SHA256 = "dc1ccb864f160d352ca41252545ddeba2215f6490533aa6f34c828a6ba06eb7c"
#: sha256 of 20 packets of seeded random codes under seeded tables (no network: pins the packet layer)
GOLDEN_CODES_PACKETS_SHA256 = "1b88ecf59d1517a98a6340458a4f82f54aef5df3021a4189f11e8ff2aa6172be"


def tiny_model() -> S2HAutoencoder:
    torch.manual_seed(0)
    return S2HAutoencoder(TINY, sample_rate_hz=SAMPLE_RATE_HZ).eval()


def _register(name: str, model: S2HAutoencoder, folder: Path) -> None:
    config = {"format": "nsac-pretrained", "version": 1, "name": name, "task": "autoencoder",
              "sample_rate_hz": SAMPLE_RATE_HZ,
              "model": {"name": "s2h-autoencoder", **dataclasses.asdict(model.config)}}
    pretrained.register(name, model.state_dict(), config, directory=folder)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory, speech_16k: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("pretrained")
    model = tiny_model()
    _register(FIXED, model, folder)
    codes = model.encode(torch.from_numpy(speech_16k)[None])[0]  # (C, frames)
    quantizer = model.quantizer
    with torch.no_grad():
        for c in range(TINY.latent_channels):
            quantizer.code_counts[c] = torch.bincount(codes[c], minlength=TINY.n_centres).double()
        quantizer.code_frequencies.copy_(torch.from_numpy(
            quantizer.frozen_frequencies(quantizer.code_counts.numpy())))
    _register(RANGED, model, folder)
    return folder


@pytest.fixture(autouse=True)
def _setup(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(pretrained.ENV_DIR, str(weights_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the quantiser ----------------------------------------------------------------------------------------
def test_centres_are_sorted_and_learnable() -> None:
    torch.manual_seed(0)
    quantizer = SoftToHardQuantizer(channels=2, n_centres=8, centre_range=1.0, anneal_steps=0).train()
    assert torch.allclose(quantizer.centres().detach(), torch.linspace(-1, 1, 8), atol=1e-6)
    before = quantizer.centres().detach().clone()
    optimizer = torch.optim.SGD(quantizer.parameters(), lr=0.5)
    for _ in range(20):  # pull every value towards 0.3: the centres move, and never cross
        z = 0.3 + 0.01 * torch.randn(4, 2, 50)
        quantised, _ = quantizer(z)
        optimizer.zero_grad()
        ((quantised - 0.3) ** 2).mean().backward()
        optimizer.step()
        assert torch.all(torch.diff(quantizer.centres()) > 0)
    assert not torch.allclose(quantizer.centres().detach(), before)
    with torch.no_grad():
        quantizer.gap_logits.fill_(-30.0)  # whatever the parameters, the centres stay in order
    assert torch.all(torch.diff(quantizer.centres()) > 0)


def test_annealing_goes_from_soft_to_hard_with_a_straight_through_gradient() -> None:
    torch.manual_seed(1)
    quantizer = SoftToHardQuantizer(channels=1, n_centres=8, centre_range=1.0, temperature_start=1.0,
                                    temperature_end=0.01, anneal_steps=10).train()
    z = torch.linspace(-1.2, 1.2, 97).reshape(1, 1, -1)
    hard = quantizer.decode(quantizer.encode(z))
    soft_first, _ = quantizer(z)  # step 0: soft values, visibly off the centres
    assert quantizer.temperature() < 1.0 and not quantizer.annealed
    assert (soft_first - hard).abs().max() > 0.02
    temperatures = []
    for _ in range(9):
        temperatures.append(quantizer.temperature())
        quantizer(z)
    assert all(a > b for a, b in itertools.pairwise(temperatures))
    assert quantizer.annealed and math.isclose(quantizer.temperature(), 0.01)
    z = z.clone().requires_grad_(True)
    quantised, _ = quantizer(z)  # annealed: hard values forward ...
    assert torch.equal(quantised.detach(), hard)
    quantised.pow(2).sum().backward()  # ... and the soft assignment's gradient backward
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert quantizer.first_centre.grad is not None and quantizer.gap_logits.grad.abs().sum() > 0
    quantizer.eval()
    assert torch.equal(quantizer(z)[0], hard)  # eval mode is hard whatever the step
    assert int(quantizer.anneal_step) == 11  # eval mode does not advance the schedule


def test_the_soft_assignment_and_its_entropy_pass_gradcheck() -> None:
    torch.manual_seed(7)
    quantizer = SoftToHardQuantizer(channels=2, n_centres=4, centre_range=1.0).double()
    z = torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True)

    def soft(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = quantizer.soft_assignment(z, temperature=0.5)
        return (p * quantizer.centres()).sum(-1), histogram_entropy_bits(p.mean(dim=(0, 2)))

    assert torch.autograd.gradcheck(soft, (z,))


def test_entropy_estimate_matches_a_known_distribution() -> None:
    rng = np.random.default_rng(2)
    pmf = np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03125, 0.0, 0.0])
    quantizer = SoftToHardQuantizer(channels=1, n_centres=8, centre_range=1.0, temperature_end=0.05,
                                    anneal_steps=0).train()
    codes = rng.choice(8, size=20000, p=pmf)
    centres = quantizer.centres().detach().numpy()
    z = torch.from_numpy(centres[codes] + rng.uniform(-0.05, 0.05, codes.size)).float().reshape(1, 1, -1)
    _, histogram = quantizer(z)
    exact_bits = -np.sum(pmf[pmf > 0] * np.log2(pmf[pmf > 0]))  # 1.9375 bits
    assert abs(float(histogram_entropy_bits(histogram.detach())[0]) - exact_bits) < 0.02
    assert math.isclose(float(histogram_entropy_bits(torch.ones(32))), 5.0, rel_tol=1e-6)
    # the code counts become integer tables out of 2**16 whose entropy is the distribution's
    tables = quantizer.frequency_tables()
    assert tables is not None and tables.sum() == 2**TABLE_PRECISION_BITS and tables.min() >= 1
    assert abs(float(quantizer.expected_bits_per_code()[0]) - exact_bits) < 0.03
    assert SoftToHardQuantizer(channels=1).frequency_tables() is None


def test_the_model_rate_penalty_acts_above_the_target() -> None:
    model = S2HAutoencoder(dataclasses.replace(TINY, target_bps=1000.0, rate_weight=2.0),
                           sample_rate_hz=SAMPLE_RATE_HZ)
    uniform = torch.full((TINY.latent_channels, TINY.n_centres), 1.0 / TINY.n_centres)
    assert math.isclose(float(model.estimated_bps(uniform)), 4 * 4 * 1000.0, rel_tol=1e-6)  # C log2 L fps
    model.train()
    _, aux = model(0.1 * torch.randn(2, 1, 800))
    bps = float(aux["rate"].detach()) / 2.0 * 1000.0 + 1000.0
    assert set(aux) == {"rate"} and aux["rate"].requires_grad and 1000.0 < bps <= 16000.0
    assert model.fixed_length_bps == 16000.0 and model.receptive_field_samples > model.hop_samples


# --- packets ----------------------------------------------------------------------------------------------
def _skewed_tables(rng: np.random.Generator, channels: int, n_centres: int) -> tuple[np.ndarray, np.ndarray]:
    pmfs = np.stack([rng.dirichlet(np.full(n_centres, 0.3)) for _ in range(channels)])
    return pmfs, pmf_to_freqs(pmfs, precision_bits=TABLE_PRECISION_BITS)


def test_range_coded_packets_round_trip_near_the_entropy() -> None:
    rng = np.random.default_rng(3)
    channels, n_centres, frames, n_packets = 8, 32, 40, 200
    pmfs, tables = _skewed_tables(rng, channels, n_centres)
    fmt = PacketFormat(n_q=channels, frames_per_packet=frames, codebook_size=n_centres, tables=tables)
    assert fmt.fixed_bytes == 200  # 8 x 40 codes of 5 bits
    coded_bits = ideal_bits = 0.0
    for _ in range(n_packets):
        codes = np.stack([rng.choice(n_centres, size=frames, p=p) for p in pmfs])
        packet = fmt.write(codes)
        assert np.array_equal(fmt.read(packet), codes)
        coded_bits += 8 * len(packet)
        ideal_bits += sum(bits_estimate(codes[c], model="categorical", freq_tables=tables[c]).sum()
                          for c in range(channels))
    entropy_bits = -np.sum(pmfs * np.log2(pmfs)) * frames * n_packets
    assert ideal_bits <= coded_bits <= ideal_bits + FLUSH_BITS_PER_PACKET * n_packets
    assert abs(ideal_bits / entropy_bits - 1) < 0.03  # 64 000 codes: the sample entropy is close
    assert coded_bits < 0.75 * 8 * fmt.fixed_bytes * n_packets


def test_golden_packets_of_seeded_codes() -> None:
    rng = np.random.default_rng(4)
    _, tables = _skewed_tables(rng, 4, 16)
    fmt = PacketFormat(n_q=4, frames_per_packet=40, codebook_size=16, tables=tables)
    packets = [fmt.write(rng.integers(0, 16, size=(4, 40)) // 3) for _ in range(20)]
    digest = hashlib.sha256(b"".join(packets)).hexdigest()
    assert digest == GOLDEN_CODES_PACKETS_SHA256, cdf_table_digest(tables)


# --- the model and the codec ------------------------------------------------------------------------------
def test_subpixel_upsampling_streams_and_is_causal() -> None:
    torch.manual_seed(5)
    layer = SubpixelUpsample1d(3, 2, 4, kernel_size=3)
    x = torch.randn(2, 3, 50)
    with torch.no_grad():
        whole = layer(x)
        assert whole.shape == (2, 2, 200)
        assert torch.allclose(stream_in_chunks(layer, x, [1, 7, 3, 20]), whole, atol=1e-6)
        changed = x.clone()
        changed[..., 30:] += 1.0
        assert torch.equal(layer(changed)[..., : 30 * 4], whole[..., : 30 * 4])


def test_model_streaming_equals_whole_signal(speech_16k: np.ndarray) -> None:
    model = tiny_model()
    x = torch.from_numpy(speech_16k[:, :8000])[None]
    hop, delay = model.hop_samples, model.delay_samples
    whole = model.decode(model.encode(x), x.shape[-1])
    padded = torch.nn.functional.pad(x, (0, 4 * hop))
    pieces, enc_state, dec_state, start = [], None, None, 0
    with torch.no_grad():
        while start < padded.shape[-1]:
            size = [hop, 5 * hop, 40 * hop][len(pieces) % 3]
            latents, enc_state = model.stream_encode(padded[..., start : start + size], enc_state)
            quantizer = model.quantizer
            audio, dec_state = model.stream_decode(quantizer.decode(quantizer.encode(latents)), dec_state)
            pieces.append(audio)
            start += size
    streamed = torch.cat(pieces, -1)[..., delay : delay + x.shape[-1]]
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_codec_chunked_equals_whole_file_and_the_model(speech_16k: np.ndarray) -> None:
    codec = AutoencoderS2HCodec(weights=RANGED)
    x = speech_16k[:, :16000]
    packets = codec.encode(x)
    encoder = codec.stream_encoder()
    chunked, start = [], 0
    for size in (100, 1000, 37, 5000, 3000, 20000):
        chunked += encoder.push(x[:, start : start + size])
        start += size
    assert chunked + encoder.flush() == packets
    decoded = codec.decode(packets, x.shape[1])
    decoder = codec.stream_decoder()
    streamed = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
    delay = codec.algorithmic_delay
    assert np.array_equal(streamed[:, delay : delay + x.shape[1]], decoded)
    model = tiny_model()
    reference = model.decode(model.encode(torch.from_numpy(x)[None]), x.shape[1])[0].numpy()
    assert np.allclose(decoded, reference, atol=1e-4)


def test_range_coded_packets_are_shorter_and_decode_alike(speech_16k: np.ndarray) -> None:
    fixed, ranged = AutoencoderS2HCodec(weights=FIXED), AutoencoderS2HCodec(weights=RANGED)
    assert fixed.constant_rate and fixed.packet_bytes == 80  # 4 channels x 40 frames x 4 bits
    assert not ranged.constant_rate and ranged.packet_bytes is None
    x = speech_16k
    fixed_packets, ranged_packets = fixed.encode(x), ranged.encode(x)
    assert {len(p) for p in fixed_packets} == {80}
    assert all(len(r) <= len(f) for f, r in zip(fixed_packets, ranged_packets, strict=True))
    seconds = len(ranged_packets) * ranged.packet_ms / 1000
    ranged_bps = 8 * sum(map(len, ranged_packets)) / seconds
    expected_bps = ranged.model.expected_bps()  # the tables are this signal's own counts
    assert expected_bps <= ranged_bps <= expected_bps + FLUSH_BITS_PER_PACKET * 1000 / ranged.packet_ms
    assert ranged_bps < 0.8 * fixed.max_bitrate_bps == 0.8 * 16000
    assert np.array_equal(fixed.decode(fixed_packets), ranged.decode(ranged_packets))


def test_golden_packets_of_the_seeded_tiny_model(speech_16k: np.ndarray) -> None:
    packets = AutoencoderS2HCodec(weights=RANGED).encode(speech_16k[:, :16000])
    assert hashlib.sha256(b"".join(packets)).hexdigest() == GOLDEN_MODEL_PACKETS_SHA256


def test_a_lost_packet_is_concealed(speech_16k: np.ndarray) -> None:
    codec = AutoencoderS2HCodec(weights=RANGED)
    x = speech_16k[:, :16000]
    packets = codec.encode(x)
    clean = codec.decode(packets, x.shape[1])
    lossy = codec.decode([None] + packets[1:5] + [None, None] + packets[7:], x.shape[1])
    assert lossy.shape == clean.shape and np.all(np.isfinite(lossy))
    frame = codec.frame_size
    # the packets after a loss decode on their own: the output settles back within the decoder's memory
    settle = 2 * frame
    assert np.allclose(lossy[:, 7 * frame + settle : 12 * frame], clean[:, 7 * frame + settle : 12 * frame],
                       atol=1e-4)
    # two lost packets in a row fade out
    gap = lossy[:, 5 * frame + frame // 2 : 7 * frame]
    assert np.abs(gap).max() <= np.abs(clean).max() + 1e-6


def test_parameters_weights_and_availability(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="training target"):
        AutoencoderS2HCodec(weights=FIXED, bitrate=12000)
    with pytest.raises(ParameterError, match="packet_ms"):
        AutoencoderS2HCodec(weights=FIXED, packet_ms=0)
    with pytest.raises(ParameterError, match="packet_ms"):
        AutoencoderS2HCodec(weights=FIXED, packet_ms=2.5)  # type: ignore[arg-type]
    with pytest.raises(WeightsError, match="no pretrained weights named 'absent'"):
        AutoencoderS2HCodec(weights="absent")
    codec = AutoencoderS2HCodec(weights=FIXED, bitrate=16000, packet_ms=20)
    assert codec.frame_size == 320 and codec.algorithmic_delay == 15 and codec.packet_bytes == 40
    assert codec.config() == {"sample_rate": 16000, "bitrate": 16000, "channels": 1, "weights": FIXED,
                              "packet_ms": 20, "entropy_coding": True}
    assert codec.weights_sha256_prefix == pretrained.weights_id(FIXED)
    complexity = codec.complexity()
    assert complexity["parameters"] > 0 and complexity["macs_per_second"] > 0
    available, reason = AutoencoderS2HCodec.availability()
    assert not available and "not shipped yet" in reason and "nsac train autoencoder-s2h-16k" in reason
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    assert AutoencoderS2HCodec.availability()[0] is False


def test_the_recipe_builds_the_registered_model() -> None:
    from nsac.train.models import build_model
    from nsac.train.recipes import load_recipe

    recipe = load_recipe("autoencoder-s2h-16k")
    model = build_model(recipe.model.name, recipe.model.config, sample_rate_hz=recipe.data.sample_rate_hz)
    assert isinstance(model, S2HAutoencoder) and model.hop_samples == 16
    assert model.fixed_length_bps == 40000.0 and model.config.target_bps == 16000.0


def test_export_recounts_the_codes_of_the_exported_weights(tmp_path: Path) -> None:
    import shutil

    from nsac.examples import example_path
    from nsac.train.code_counts import recount_code_frequencies
    from nsac.train.recipes import load_recipe

    for speaker in ("speaker-a", "speaker-b"):  # one speaker is held out for validation, one is counted
        (tmp_path / speaker).mkdir()
        shutil.copy(example_path("speech"), tmp_path / speaker / "clip.flac")
    recipe = load_recipe("autoencoder-s2h-16k", [f"data.path={tmp_path}"])
    model = tiny_model()
    assert model.quantizer.frequency_tables() is None
    provenance = recount_code_frequencies(model, recipe, seconds_per_file=2.0)
    assert provenance == {"source": "exported weights on training audio", "files": 1, "seconds": 2.0}
    tables = model.quantizer.frequency_tables()
    assert tables is not None and np.all(tables.sum(-1) == 2**TABLE_PRECISION_BITS)
    missing = load_recipe("autoencoder-s2h-16k", [f"data.path={tmp_path / 'absent'}"])
    provenance = recount_code_frequencies(tiny_model(), missing)
    assert provenance is not None and "could not be read" in provenance["why"]
    assert recount_code_frequencies(torch.nn.Linear(1, 1), recipe) is None


# --- training -----------------------------------------------------------------------------------------------
def test_thirty_steps_on_real_speech_lower_the_loss(speech_16k: np.ndarray) -> None:
    config = dataclasses.replace(TINY, channels=(8, 16, 16, 24), latent_channels=4, anneal_steps=15)
    torch.manual_seed(6)
    model = S2HAutoencoder(config, sample_rate_hz=SAMPLE_RATE_HZ)
    audio = torch.from_numpy(speech_16k[0])
    batch = torch.stack([audio[i * 4000 : i * 4000 + 8000] for i in range(4)])[:, None]
    batch = batch / batch.abs().max()
    stft = MultiResolutionSTFTLoss([(512, 128, 512), (256, 64, 256)])

    def reconstruction(output: torch.Tensor) -> torch.Tensor:
        return stft(output, batch) + (output - batch).abs().mean()

    with torch.no_grad():
        before = float(reconstruction(model.eval()(batch)[0]))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    started = time.perf_counter()
    for _ in range(30):
        output, aux = model(batch)
        loss = reconstruction(output) + aux["rate"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        after = float(reconstruction(model.eval()(batch)[0]))  # hard codes, as the codec will run it
    assert after < 0.9 * before, (before, after)
    assert model.quantizer.annealed and model.quantizer.frequency_tables() is not None
    assert seconds < 15, seconds


# --- fuzzed input -------------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packet=st.binary(max_size=100))
def test_any_packet_decodes_or_raises_a_bitstream_error(packet: bytes) -> None:
    codec = AutoencoderS2HCodec(weights=RANGED)
    try:
        out = codec.decode([packet])
    except BitstreamError:
        return
    assert out.shape == (1, codec.frame_size - codec.algorithmic_delay) and np.all(np.isfinite(out))


def _alarm(signum, frame):
    raise TimeoutError("decoding hung")


def _register_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the codec for this test, available with the test's weights (default weights do not exist)."""
    monkeypatch.setitem(codecs._CODEC_CLASSES, AutoencoderS2HCodec.name,
                        "nsac.codecs.autoencoder_s2h.codec:AutoencoderS2HCodec")
    monkeypatch.setattr(AutoencoderS2HCodec, "availability", classmethod(lambda cls: (True, "")))


def test_an_nsac_file_round_trips(speech_16k: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    _register_codec(monkeypatch)
    codec = AutoencoderS2HCodec(weights=RANGED)
    x = speech_16k[:, :8000]
    audio, rate = decode_bytes(encode_audio(x, SAMPLE_RATE_HZ, codec))
    assert rate == SAMPLE_RATE_HZ and np.array_equal(audio, codec.decode(codec.encode(x), x.shape[1]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_give_nsac_errors_only(data: st.DataObject, speech_16k: np.ndarray,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """As tests/test_decode_fuzz.py does for the registered codecs, with this one registered for the test."""
    _register_codec(monkeypatch)
    codec = AutoencoderS2HCodec(weights=RANGED)
    raw = bytearray(encode_audio(speech_16k[:, 8000:16000], SAMPLE_RATE_HZ, codec))
    for _ in range(data.draw(st.integers(0, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    if len(raw) > 8 and data.draw(st.booleans()):
        raw = raw[:-4] + struct.pack("<I", zlib.crc32(bytes(raw[:-4])))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        audio, rate = decode_bytes(bytes(raw))
    except NsacError:
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert audio.ndim == 2 and audio.dtype == np.float32 and np.all(np.isfinite(audio))
    assert audio.shape[1] <= SAMPLE_RATE_HZ * 60 and rate == SAMPLE_RATE_HZ
