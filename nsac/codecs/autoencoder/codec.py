"""The `autoencoder` codec: a trained SoundStream-style autoencoder run frame by frame, 1.5 to 12 kb/s at 16 kHz.

Framing (hop = 320 samples = one latent frame of 20 ms; F frames per packet, default 2 = 40 ms)::

    input       |  packet 0: F hops  |  packet 1  | ...   flush codes `delay` more samples (zeros)
    encoder     model.stream_encode -> F latent frames -> RVQ codes (n_q, F) -> packets.PacketFormat
    decoder     codes -> RVQ entries summed -> model.stream_decode -> F hops of audio
    delay       the decoded audio lags by the model's delay_samples: 559 samples for the inverse-STFT model
                (stft_model.py, the shipped weights), hop - 1 = 319 for the waveform model (model.py)

Bitrate = n_q codebooks x log2(K) bits x 50 frames/s: 3, 6, 12 and 24 codebooks of 1024 entries give 1.5,
3, 6 and 12 kb/s. Weights that send the pitch (model.pitch_bits = p, the default weights: p = 7) lead each
frame with a pitch code (p x 50 bit/s) and fill the rest of the rate with codebooks: 2, 5, 11 and 23
codebooks plus 350 bit/s at 1.5, 3, 6 and 12 kb/s; the encoder measures the pitch from the input
(StftAutoencoder.stream_pitch_codes) and the decoder drives the harmonic head with it. Packets are
fixed-length or, when the weights carry code counts and that is shorter, range-coded (packets.py).
Whole-file coding runs the same streaming halves (base.Codec), so chunked equals whole-file.

A lost packet (None) repeats the last received frame's latents through the decoder, its output faded by
`CONCEALMENT_GAIN` per lost packet; before any packet arrived it decodes zero latents.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.errors import ParameterError, WeightsError

SAMPLE_RATE_HZ = 16000
DEFAULT_WEIGHTS = "autoencoder-16k-pitch"
#: the model families (training names) and task the weights' JSON must name: the waveform model (model.py)
#: and the inverse-STFT one (stft_model.py) share encoder framing, quantiser and streaming interface
MODEL_NAMES = ("soundstream", "soundstream-stft")
TASK = "autoencoder"
DEFAULT_FRAMES_PER_PACKET = 2
MAX_FRAMES_PER_PACKET = 50
#: output gain per consecutive lost packet
CONCEALMENT_GAIN = 0.5
#: seconds of audio the complexity count codes
_COUNT_SECONDS = 1.0


def _torch():
    import torch

    return torch


@functools.lru_cache(maxsize=8)
def _load(name: str, directory: str) -> Any:
    """The autoencoder `name` from `directory`, eval mode, verified weights, weight norm folded in."""
    from torch.nn.utils import parametrize

    from nsac.codecs.autoencoder.model import SoundStreamAutoencoder
    from nsac.codecs.autoencoder.stft_model import StftAutoencoder
    from nsac.pretrained import load_config, load_into

    config = load_config(name, directory=directory)
    section = dict(config.get("model", {}))
    model_name = section.pop("name", None)
    if model_name not in MODEL_NAMES or config.get("task") != TASK:
        raise WeightsError(f"weights {name!r} are not an autoencoder ({' or '.join(MODEL_NAMES)}); give the "
                           f"name of autoencoder weights (e.g. {DEFAULT_WEIGHTS})")
    cls = SoundStreamAutoencoder if model_name == "soundstream" else StftAutoencoder
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(section) - fields)
    if unknown:
        raise WeightsError(f"{name}.json sets {', '.join(unknown)}, which {cls.__name__} does not know")
    section = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
    model = cls(cls.Config(**section), sample_rate_hz=int(config["sample_rate_hz"]))
    load_into(model, name, directory=directory)
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    model.requires_grad_(False)
    return model.eval()


def load_autoencoder(name: str = DEFAULT_WEIGHTS) -> Any:
    """The shipped (or $NSAC_PRETRAINED_DIR's) autoencoder `name`, ready for inference (cached)."""
    from nsac.pretrained import pretrained_dir

    return _load(name, str(pretrained_dir()))


class _AutoencoderStreamEncoder(StreamEncoder):
    def __init__(self, codec: AutoencoderCodec) -> None:
        super().__init__(channels=1, frame_size=codec.frame_size, algorithmic_delay=codec.algorithmic_delay)
        self._model, self._format, self._n_q = codec.model, codec.packet_format, codec.n_q
        self._state: Any = None
        self._pitch_state: Any = None

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        torch = _torch()
        with torch.inference_mode():
            chunk = torch.from_numpy(frame)[None]
            latents, self._state = self._model.stream_encode(chunk, self._state)
            codes = self._model.quantizer.encode(latents, self._n_q)[0].numpy()
            pitch = None
            if self._format.pitch_bits:
                pitch, self._pitch_state = self._model.stream_pitch_codes(chunk, self._pitch_state)
                pitch = pitch[0].numpy()
        return [self._format.write(codes, pitch)]


class LatentStreamDecoder(StreamDecoder):
    """Packets of codes -> quantizer latents -> the model's streaming decoder; a lost packet repeats the last
    latent frame (and pitch code) at a decaying gain. Shared by the autoencoder codecs (their models stream
    the same way); packets with pitch codes drive the harmonic head with the sent pitch."""

    def __init__(self, codec: Any, *, latent_channels: int) -> None:
        super().__init__(channels=1)
        self._latent_channels = latent_channels
        self._model, self._format = codec.model, codec.packet_format
        self._frames = codec.frames_per_packet
        self._state: Any = None
        self._last_latent: Any = None
        self._last_pitch: Any = None
        self._gain = 1.0

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        torch = _torch()
        with torch.inference_mode():
            if packet is None:
                if self._last_latent is None:
                    self._last_latent = torch.zeros(1, self._latent_channels, 1)
                latents = self._last_latent.repeat(1, 1, self._frames)
                pitch = None
                if self._format.pitch_bits:
                    if self._last_pitch is None:
                        self._last_pitch = torch.full((1, 1), self._model.pitch_quantizer.initial_code)
                    pitch = self._last_pitch.repeat(1, self._frames)
                self._gain *= CONCEALMENT_GAIN
            else:
                codes, pitch = self._format.read_frames(packet)
                latents = self._model.quantizer.decode(torch.from_numpy(codes)[None])
                self._last_latent = latents[..., -1:]
                if pitch is not None:
                    pitch = torch.from_numpy(pitch)[None]
                    self._last_pitch = pitch[:, -1:]
                self._gain = 1.0
            if pitch is None:
                audio, self._state = self._model.stream_decode(latents, self._state)
            else:
                audio, self._state = self._model.stream_decode_with_pitch(latents, pitch, self._state)
        # a generative decoder can overshoot; the output is audio in [-1, 1] like every other decoder's
        return np.clip(audio[0].numpy() * np.float32(self._gain), -1.0, 1.0)


class AutoencoderCodec(Codec):
    """The end-to-end neural codec: 16 kHz mono speech, 1.5/3/6/12 kb/s from one model, 40 ms packets.

    Parameters
    ----------
    sample_rate : 16000 (resample other audio first; `nsac encode` does)
    bitrate : bit/s, a whole number of codebooks (500 bit/s each with 1024 entries at 50 frames/s); for
        weights that send the pitch, the most bit/s: the pitch (350 bit/s) and as many codebooks as fit
    channels : 1
    weights : registered autoencoder weights (default ``autoencoder-16k-pitch``; the earlier
        ``autoencoder-16k-harmonic`` and ``autoencoder-16k-stft`` stay available)
    frames_per_packet : 20 ms frames per packet, 1..50 (default 2: 40 ms)
    entropy_coding : range-code packets with the weights' learned code counts when that is shorter
        (False: fixed-length packets only, a constant rate)
    """

    name: ClassVar[str] = "autoencoder"
    kind: ClassVar[str] = "neural"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (SAMPLE_RATE_HZ,)
    bitrates_bps: ClassVar[tuple[int, ...]] = (1500, 3000, 6000, 12000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (500, 12000)
    constant_rate: ClassVar[bool] = False

    def __init__(self, *, sample_rate: int = SAMPLE_RATE_HZ, bitrate: int = 6000, channels: int = 1,
                 weights: str = DEFAULT_WEIGHTS, frames_per_packet: int = DEFAULT_FRAMES_PER_PACKET,
                 entropy_coding: bool = True) -> None:
        from nsac.codecs.autoencoder.packets import PacketFormat, tables_from_counts
        from nsac.pretrained import weights_id

        self.sample_rate = self.check_sample_rate(sample_rate)
        self.bitrate = self.check_bitrate(bitrate)
        self.channels = self.check_channels(channels)
        if not isinstance(frames_per_packet, int) or not 1 <= frames_per_packet <= MAX_FRAMES_PER_PACKET:
            raise ParameterError(f"autoencoder: frames_per_packet={frames_per_packet!r} must be an integer in "
                                 f"1..{MAX_FRAMES_PER_PACKET}")
        self.weights, self.frames_per_packet = weights, frames_per_packet
        self.entropy_coding = bool(entropy_coding)
        self.model = load_autoencoder(weights)
        if self.model.sample_rate_hz != self.sample_rate:
            raise WeightsError(f"weights {weights!r} run at {self.model.sample_rate_hz} Hz, not "
                               f"{self.sample_rate} Hz")
        rvq = self.model.quantizer
        bps_per_codebook = rvq.bits_per_code * self.model.frame_rate_hz
        pitch_bits = getattr(self.model.config, "pitch_bits", 0)
        self.pitch_bps = pitch_bits * self.model.frame_rate_hz
        if pitch_bits:
            # the pitch comes first; the codebooks fill what is left of the rate, so none goes over it
            n_q = (self.bitrate - self.pitch_bps) // bps_per_codebook
            if not 1 <= n_q <= rvq.n_codebooks:
                lowest = self.pitch_bps + bps_per_codebook
                highest = self.pitch_bps + rvq.n_codebooks * bps_per_codebook
                raise ParameterError(
                    f"autoencoder: bitrate={bitrate} bit/s; weights {weights!r} send "
                    f"{self.pitch_bps:g} bit/s of pitch and 1..{rvq.n_codebooks} codebooks of {bps_per_codebook:g} bit/s: give "
                    f"{lowest:g} to {highest:g}")
        else:
            n_q = self.bitrate / bps_per_codebook
            if n_q != round(n_q) or not 1 <= n_q <= rvq.n_codebooks:
                rates = ", ".join(f"{round(k * bps_per_codebook)}" for k in (1, 2, 3, 6, 12, 24)
                                  if k <= rvq.n_codebooks)
                raise ParameterError(f"autoencoder: bitrate={bitrate} bit/s is no whole number of codebooks "
                                     f"of {bps_per_codebook:g} bit/s (at most {rvq.n_codebooks}); e.g. {rates}")
        self.n_q = round(n_q)
        tables = tables_from_counts(rvq.usage.numpy()) if self.entropy_coding else None
        self.packet_format = PacketFormat(n_q=self.n_q, frames_per_packet=frames_per_packet,
                                          codebook_size=rvq.codebook_size, tables=tables,
                                          pitch_bits=pitch_bits)
        self.frame_size = frames_per_packet * self.model.hop_samples
        self.algorithmic_delay = self.model.delay_samples
        self.constant_rate = tables is None
        self.packet_bytes = self.packet_format.fixed_bytes if tables is None else None
        self.weights_sha256_prefix = weights_id(weights)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "the autoencoder needs PyTorch: pip install torch"
        from nsac.pretrained import list_pretrained, load_config

        # any autoencoder weights in the pretrained folder ($NSAC_PRETRAINED_DIR) make it usable, with
        # weights=NAME for others than the default; a missing name is a WeightsError when the codec is built
        for name in list_pretrained():
            config = load_config(name)
            if config.get("task") == TASK and config.get("model", {}).get("name") in MODEL_NAMES:
                return True, ""
        return False, (f"no autoencoder weights are shipped yet: train them with `nsac train {DEFAULT_WEIGHTS} "
                       f"--data DIR --out RUN` and `nsac export RUN/checkpoints/last.pt --name {DEFAULT_WEIGHTS}`")

    def stream_encoder(self) -> StreamEncoder:
        return _AutoencoderStreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return LatentStreamDecoder(self, latent_channels=self.model.config.latent_dim)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels,
                "weights": self.weights, "frames_per_packet": self.frames_per_packet,
                "entropy_coding": self.entropy_coding}

    def complexity(self) -> dict[str, float]:
        return autoencoder_complexity(self.weights, self.n_q)


def autoencoder_complexity(weights: str, n_q: int) -> dict[str, float]:
    """MACs per second of audio (encoder, codebook search, decoder; torch's flop counter) and parameters."""
    from nsac.pretrained import pretrained_dir

    return _complexity(weights, str(pretrained_dir()), n_q)


@functools.lru_cache(maxsize=16)
def _complexity(weights: str, directory: str, n_q: int) -> dict[str, float]:
    torch = _torch()
    from torch.utils.flop_counter import FlopCounterMode

    model = _load(weights, directory)
    x = torch.zeros(1, 1, round(_COUNT_SECONDS * model.sample_rate_hz))
    # no_grad, not inference_mode: the flop counter fails under inference mode in torch 2.13
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.decode(model.encode(x, n_q))
    parameters = sum(p.numel() for p in model.parameters())
    return {"macs_per_second": counter.get_total_flops() / 2 / _COUNT_SECONDS, "parameters": int(parameters)}


__all__ = ["AutoencoderCodec", "autoencoder_complexity", "load_autoencoder"]
