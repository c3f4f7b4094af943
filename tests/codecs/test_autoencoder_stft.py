"""The inverse-STFT autoencoder (stft_model.py) on tiny random models: its overlap-add and STFT head against
numpy references, streaming equals whole-signal, causality, and the codec built on its weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nsac import pretrained
from nsac.codecs.autoencoder.codec import AutoencoderCodec
from nsac.codecs.autoencoder.stft_model import (
    F0_MAX_HZ,
    F0_MIN_HZ,
    LOG_SPECTRUM_FLOOR,
    HarmonicStftHead,
    InverseStftHead,
    LogSpectrum,
    OverlapAdd,
    StftAutoencoder,
    StftAutoencoderConfig,
)
from nsac.errors import ParameterError
from nsac.nn.streaming import stream_in_chunks
from nsac.train.models import build_model

SAMPLE_RATE_HZ = 16000
# hop 8 x 5 x 8 = 320 samples, as the shipped model's, so the codec's bitrates hold
TINY = StftAutoencoderConfig(n_fft=32, stft_hop=8, channels=4, max_channels=8, strides=(5, 8), dilations=(1, 3),
                             latent_dim=4)
NAME = "ae-stft-test"


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    x = sum(0.1 / k * np.sin(2 * np.pi * 130 * k * t + k) for k in range(1, 10))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return x[None].astype(np.float32)


def tiny_model() -> StftAutoencoder:
    torch.manual_seed(0)
    return StftAutoencoder(TINY, sample_rate_hz=SAMPLE_RATE_HZ).eval()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_overlap_add_matches_numpy_and_streams() -> None:
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((2, 12, 9)).astype(np.float32)  # N = 12, H = 3, 9 frames
    expected = np.zeros((2, 8 * 3 + 12), np.float32)
    for j in range(9):
        expected[:, 3 * j : 3 * j + 12] += frames[:, :, j]
    ola = OverlapAdd(12, 3)
    whole = ola(torch.from_numpy(frames))
    assert whole.shape == (2, 1, 27)
    np.testing.assert_allclose(whole[:, 0].numpy(), expected[:, :27], atol=1e-6)
    streamed = stream_in_chunks(ola, torch.from_numpy(frames), [1, 3, 2])
    assert torch.allclose(streamed, whole, atol=1e-6)


def test_inverse_stft_head_inverts_an_rfft_and_hann_frames_sum_to_a_constant() -> None:
    n_fft = 16
    rng = np.random.default_rng(2)
    frame = rng.standard_normal(n_fft)
    spectrum = np.fft.rfft(frame)
    x = np.concatenate([np.log(np.abs(spectrum) + 1e-12), np.angle(spectrum)])[None, :, None]
    out = InverseStftHead(n_fft, n_fft // 4)(torch.from_numpy(x).float())[0, :, 0].numpy()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    np.testing.assert_allclose(out, frame * window, atol=1e-4)
    # periodic Hann windows at a quarter-window hop sum to 2 away from the edges (constant overlap-add)
    ones = torch.from_numpy(np.tile(window, (10, 1)).T[None].astype(np.float32))
    summed = OverlapAdd(n_fft, n_fft // 4)(ones)[0, 0, n_fft:].numpy()
    np.testing.assert_allclose(summed, 2.0, atol=1e-6)


def test_phase_advance_keeps_a_steady_partial_coherent_and_streams() -> None:
    n_fft, hop, k, n_frames = 16, 4, 3, 40
    head = InverseStftHead(n_fft, hop, phase="advance")
    x = torch.full((1, 2 * (n_fft // 2 + 1), n_frames), -30.0)
    x[:, k] = 0.0  # unit magnitude in bin k only
    x[:, n_fft // 2 + 1 :] = 0.0  # advance = the bin centre's: a steady sinusoid of k / N cycles per sample
    ola = OverlapAdd(n_fft, hop)
    y = ola(head(x))[0, 0, n_fft:].numpy()
    n = np.arange(n_fft, n_frames * hop)
    basis = np.stack([np.cos(2 * np.pi * k * n / n_fft), np.sin(2 * np.pi * k * n / n_fft)], 1)
    fit = basis @ np.linalg.lstsq(basis, y, rcond=None)[0]
    # a pure sinusoid at the bin's frequency, amplitude 2 / N (irfft) x 2 (Hann windows at N / 4 sum to 2)
    assert np.allclose(y, fit, atol=1e-5) and np.isclose(np.std(y), 0.25 / np.sqrt(2), rtol=1e-3)
    # the same frames with one fixed phase (no advance) cancel partly in the overlap-add
    fixed = ola(InverseStftHead(n_fft, hop)(x))[0, 0, n_fft:].numpy()
    assert np.std(fixed) <= 0.5 * np.std(y) + 1e-6
    torch.manual_seed(3)
    noisy = x + 0.3 * torch.randn_like(x)
    assert torch.allclose(stream_in_chunks(head, noisy, [1, 7, 3]), head(noisy), atol=1e-5)
    # "centre" takes the magnitudes alone and advances every bin at its centre's rate: the same frames
    centre = InverseStftHead(n_fft, hop, phase="centre")
    assert torch.allclose(centre(x[:, : n_fft // 2 + 1]), head(x), atol=1e-6)
    assert torch.allclose(stream_in_chunks(centre, noisy[:, : n_fft // 2 + 1], [2, 5]),
                          centre(noisy[:, : n_fft // 2 + 1]), atol=1e-5)
    with pytest.raises(ParameterError, match="channels"):
        centre(x)


def test_log_spectrum_matches_a_causal_hann_stft_and_streams() -> None:
    n_fft, hop = 32, 8
    layer = LogSpectrum(n_fft, hop)
    assert not any(p.requires_grad for p in layer.parameters())  # a fixed transform
    x = torch.randn(2, 1, 200, generator=torch.Generator().manual_seed(4))
    y = layer(x)
    assert y.shape == (2, n_fft // 2 + 1, 25)
    padded = torch.nn.functional.pad(x, (n_fft - 1, 0))[:, 0]
    for j in (0, 3, 24):  # frame j ends on sample hop * j
        segment = padded[:, hop * j : hop * j + n_fft] * torch.hann_window(n_fft, periodic=True)
        reference = torch.log(torch.fft.rfft(segment).abs() + LOG_SPECTRUM_FLOOR)
        assert torch.allclose(y[..., j], reference, atol=1e-4)
    assert torch.allclose(stream_in_chunks(layer, x, [8, 24, 16]), y, atol=1e-5)


def pitch_logit(f0_hz: float) -> float:
    """The head's pitch input that decodes to f0_hz."""
    share = (np.log2(f0_hz) - np.log2(F0_MIN_HZ)) / np.log2(F0_MAX_HZ / F0_MIN_HZ)
    return float(np.log(share / (1 - share)))


def harmonic_energy_share(y: np.ndarray, f0_hz: float, tolerance_hz: float = 10.0) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    hz = np.fft.rfftfreq(y.size, 1 / SAMPLE_RATE_HZ)
    near = np.abs((hz + f0_hz / 2) % f0_hz - f0_hz / 2) < tolerance_hz
    return float(spectrum[near].sum() / spectrum.sum())


@pytest.mark.parametrize("f0_hz", [100.0, 137.0, 233.0])
def test_harmonic_head_makes_harmonics_of_its_pitch_from_a_flat_envelope(f0_hz: float) -> None:
    head, overlap_add = HarmonicStftHead(320, 80, sample_rate_hz=SAMPLE_RATE_HZ), OverlapAdd(320, 80)
    frames = 300
    flat = torch.zeros(1, 161, frames)

    def output(voicing: float) -> np.ndarray:
        pitch = torch.full((1, 1, frames), pitch_logit(f0_hz))
        x = torch.cat([flat, torch.full_like(flat, voicing), pitch], 1)
        return overlap_add(head(x))[0, 0, 4000:].numpy()

    # voiced: harmonics of f0 (within 10 Hz) carry all but a few percent of the energy (the phase vocoder
    # smears a little: 0.983 at 233 Hz when written); the band share of a 20 Hz
    # comb is 20 / f0, what noise would put there
    assert harmonic_energy_share(output(12.0), f0_hz) > 0.97
    assert harmonic_energy_share(output(-12.0), f0_hz) < 20 / f0_hz + 0.1
    assert torch.allclose(torch.exp2(head.log2_f0), torch.tensor(f0_hz), rtol=1e-4)


def test_harmonic_head_streams_with_its_phase_and_noise_position() -> None:
    torch.manual_seed(3)
    head, overlap_add = HarmonicStftHead(320, 80, sample_rate_hz=SAMPLE_RATE_HZ), OverlapAdd(320, 80)
    x = torch.randn(2, 323, 40)
    whole = overlap_add(head(x))
    pieces, state, ola_state = [], None, None
    for start, stop in ((0, 1), (1, 8), (8, 8), (8, 27), (27, 40)):
        frames, state = head.stream(x[..., start:stop], state)
        audio, ola_state = overlap_add.stream(frames, ola_state)
        pieces.append(audio)
    assert torch.allclose(torch.cat(pieces, -1), whole, atol=1e-4 * float(whole.abs().max()))
    assert state is not None and state[:, 1].tolist() == [40.0, 40.0]


def test_harmonic_training_forward_teaches_pitch_and_voicing_with_finite_gradients() -> None:
    torch.manual_seed(0)
    model = StftAutoencoder(dataclasses.replace(TINY, phase="harmonic", analysis="log_spectrum"),
                            sample_rate_hz=SAMPLE_RATE_HZ).train()
    head = model.decoder[-2]
    x = torch.from_numpy(signal(0.5))[None].repeat(2, 1, 1)
    bins = TINY.n_fft // 2 + 1
    with torch.no_grad():  # saturated voicing: sqrt(v) and sqrt(1 - v) must not give infinite gradients
        model.decoder[-3].conv.bias[bins : 2 * bins] = 60.0
    y, aux = model(x)
    assert set(aux) == {"vq_commitment", "f0", "voicing"} and head.given_f0_hz is None
    assert float(aux["f0"].detach()) > 0 and float(aux["voicing"].detach()) > 0
    (y.abs().mean() + sum(aux.values())).backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)


@pytest.mark.parametrize(("phase", "analysis"), [("absolute", "learned"), ("advance", "log_spectrum"),
                                                ("centre", "log_spectrum"), ("harmonic", "log_spectrum")])
def test_model_streams_like_the_whole_signal_and_is_causal(phase: str, analysis: str) -> None:
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, phase=phase, analysis=analysis)
    model = StftAutoencoder(config, sample_rate_hz=SAMPLE_RATE_HZ).eval()
    x = torch.from_numpy(signal(0.4))[None]
    hop, delay, n_q = model.hop_samples, model.delay_samples, 6
    assert delay == hop - 1 + TINY.n_fft - TINY.stft_hop
    whole = model.decode(model.encode(x, n_q), x.shape[-1])
    padded = model._padded(x)
    pieces, enc_state, dec_state, start = [], None, None, 0
    with torch.no_grad():
        for size in [hop, 3 * hop, 2 * hop] * 10:
            chunk = padded[..., start : start + size]
            if chunk.shape[-1] == 0:
                break
            latents, enc_state = model.stream_encode(chunk, enc_state)
            codes = model.quantizer.encode(latents, n_q)
            audio, dec_state = model.stream_decode(model.quantizer.decode(codes), dec_state)
            pieces.append(audio)
            start += size
    streamed = torch.cat(pieces, -1)
    assert torch.allclose(streamed[..., delay : delay + x.shape[-1]], whole, atol=1e-5)
    # the streamed (delayed) output up to sample p depends on no input after p (quantiser left out: random
    # codebooks could map both inputs to the same codes)
    p = 2 * hop + 17
    changed = padded.clone()
    changed[..., p + 1 :] += 0.5
    with torch.no_grad():
        a, b = model.decoder(model.encoder(padded)), model.decoder(model.encoder(changed))
    assert torch.equal(a[..., : p + 1], b[..., : p + 1]) and not torch.equal(a, b)


def test_forward_is_aligned_and_trains() -> None:
    model = tiny_model()
    x = torch.from_numpy(signal(0.25))[None]
    y, aux = model(x)
    assert y.shape == x.shape and set(aux) == {"vq_commitment"}
    assert torch.allclose(y, model.decode(model.encode(x, TINY.eval_codebooks), x.shape[-1]), atol=1e-5)
    model.train()
    y, aux = model(x.repeat(2, 1, 1))
    (y.abs().mean() + aux["vq_commitment"]).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_the_training_registry_builds_it_and_bad_framing_is_refused() -> None:
    assert isinstance(build_model("soundstream-stft", TINY, sample_rate_hz=SAMPLE_RATE_HZ), StftAutoencoder)
    with pytest.raises(ParameterError, match="multiple of"):
        StftAutoencoderConfig(n_fft=30, stft_hop=8)
    with pytest.raises(ParameterError, match="twice"):
        StftAutoencoderConfig(n_fft=8, stft_hop=8)
    with pytest.raises(ParameterError, match="phase"):
        StftAutoencoderConfig(phase="random")
    with pytest.raises(ParameterError, match="analysis"):
        StftAutoencoderConfig(analysis="mfcc")


def test_the_codec_runs_on_stft_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    config = {"format": "nsac-pretrained", "version": 1, "name": NAME, "task": "autoencoder",
              "sample_rate_hz": SAMPLE_RATE_HZ,
              "model": {"name": "soundstream-stft", **dataclasses.asdict(TINY)}}
    pretrained.register(NAME, model.state_dict(), config, directory=tmp_path)
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    assert AutoencoderCodec.availability() == (True, "")
    codec = AutoencoderCodec(weights=NAME, bitrate=3000, entropy_coding=False)
    assert codec.algorithmic_delay == model.delay_samples
    x = signal(0.5)
    packets = codec.encode(x)
    assert {len(p) for p in packets} == {15}  # 2 frames x 6 codebooks x 10 bits
    decoded = codec.decode(packets, x.shape[1])
    decoder = codec.stream_decoder()
    streamed = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
    delay = codec.algorithmic_delay
    assert np.array_equal(streamed[:, delay : delay + x.shape[1]], decoded)
    reference = model.decode(model.encode(torch.from_numpy(x)[None], codec.n_q), x.shape[1])[0].numpy()
    assert np.allclose(decoded, reference, atol=1e-4)


# the shipped framing (N = 320, H = 80): the pitch window is the STFT's, too short in TINY for 130 Hz
PITCH = dataclasses.replace(TINY, n_fft=320, stft_hop=80, strides=(4,), phase="harmonic",
                            analysis="log_spectrum", pitch_bits=7)


def test_sent_pitch_follows_the_input_and_streams_like_the_whole_signal() -> None:
    torch.manual_seed(0)
    model = StftAutoencoder(PITCH, sample_rate_hz=SAMPLE_RATE_HZ).eval()
    x = torch.from_numpy(signal(0.6))[None]
    whole = model.pitch_codes(x)
    padded, hop = model._padded(x), model.hop_samples
    assert whole.shape == (1, padded.shape[-1] // hop)
    pieces, state, start = [], None, 0
    for size in (hop, 0, 3 * hop, 2 * hop, 40 * hop):
        codes, state = model.stream_pitch_codes(padded[..., start : start + size], state)
        pieces.append(codes)
        start += size
    assert torch.equal(torch.cat(pieces, -1), whole)
    f0_hz = model.pitch_quantizer.decode(whole)
    assert f0_hz.shape == (1, whole.shape[-1] * hop // PITCH.stft_hop)
    assert abs(float(f0_hz[0, 20:].median()) / 130.0 - 1) < 0.01  # the test signal's harmonics of 130 Hz


def test_the_decoder_streams_with_the_sent_pitch_and_training_uses_it() -> None:
    torch.manual_seed(0)
    model = StftAutoencoder(PITCH, sample_rate_hz=SAMPLE_RATE_HZ).eval()
    head = model.decoder[-2]
    x = torch.from_numpy(signal(0.5))[None]
    codes, pitch = model.encode(x, 4), model.pitch_codes(x)
    whole = model.decode_with_pitch(codes, pitch)
    assert not torch.allclose(whole, model.decode(codes), atol=1e-3)  # the predicted pitch is not used
    with torch.no_grad():  # the eval forward decodes with the sent pitch too
        forward = model(x)[0]
    assert torch.allclose(forward, model.decode_with_pitch(model.encode(x, PITCH.eval_codebooks), pitch,
                                                           x.shape[-1]), atol=1e-5)
    pieces, state, start = [], None, 0
    for frames in (1, 0, 3, 2, 100):
        latents = model.quantizer.decode(codes[..., start : start + frames])
        audio, state = model.stream_decode_with_pitch(latents, pitch[:, start : start + frames], state)
        pieces.append(audio)
        start += frames
    delay = model.delay_samples
    assert torch.allclose(torch.cat(pieces, -1)[..., delay:], whole, atol=1e-5)
    model.train()
    y, aux = model(x.repeat(2, 1, 1))
    assert set(aux) == {"vq_commitment", "f0", "voicing"} and head.given_f0_hz is None
    (y.abs().mean() + sum(aux.values())).backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained)
    with pytest.raises(ParameterError, match="pitch_bits"):
        StftAutoencoderConfig(phase="centre", pitch_bits=7)


def test_the_codec_sends_the_pitch_of_weights_that_ask_for_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = StftAutoencoder(PITCH, sample_rate_hz=SAMPLE_RATE_HZ).eval()
    config = {"format": "nsac-pretrained", "version": 1, "name": "ae-pitch-test", "task": "autoencoder",
              "sample_rate_hz": SAMPLE_RATE_HZ,
              "model": {"name": "soundstream-stft", **dataclasses.asdict(PITCH)}}
    pretrained.register("ae-pitch-test", model.state_dict(), config, directory=tmp_path)
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    codec = AutoencoderCodec(weights="ae-pitch-test", bitrate=6000, entropy_coding=False)
    assert (codec.n_q, codec.pitch_bps) == (11, 350.0)  # 5.5 kb/s of codes + 350 b/s of pitch <= 6 kb/s
    assert AutoencoderCodec(weights="ae-pitch-test", bitrate=1500, entropy_coding=False).n_q == 2
    with pytest.raises(ParameterError, match="350 bit/s of pitch"):
        AutoencoderCodec(weights="ae-pitch-test", bitrate=800)
    x = signal(0.5)
    packets = codec.encode(x)
    assert {len(p) for p in packets} == {30}  # 2 frames x (7 + 11 x 10) bits
    decoded = codec.decode(packets, x.shape[1])
    signal_in = torch.from_numpy(x)[None]
    with torch.no_grad():
        reference = model.decode_with_pitch(model.encode(signal_in, 11), model.pitch_codes(signal_in),
                                            x.shape[1])
    assert np.allclose(decoded, reference[0].clamp(-1, 1).numpy(), atol=1e-4)
    decoder = codec.stream_decoder()
    streamed = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
    delay = codec.algorithmic_delay
    assert np.array_equal(streamed[:, delay : delay + x.shape[1]], decoded)
    lossy = codec.decode([None, *packets[1:3], None, *packets[4:]], x.shape[1])
    assert lossy.shape == x.shape and np.all(np.isfinite(lossy))
