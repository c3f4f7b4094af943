"""The `autoencoder-s2h` codec: the soft-to-hard autoencoder run packet by packet, about 16 kb/s at 16 kHz.

Framing (hop = 16 samples = one latent frame of 1 ms; a packet is `packet_ms` of them, default 40 ms)::

    input       |  packet 0: 640 samples  |  packet 1  | ...   flush codes `delay` more samples (zeros)
    encoder     model.stream_encode -> 40 frames x C latents -> nearest centres: codes (C, 40)
                -> nsac.codecs.autoencoder.packets.PacketFormat (range-coded with the frozen frequencies,
                   or fixed-length log2 L bits per code when that is shorter)
    decoder     codes -> centres -> model.stream_decode -> 640 samples
    delay       the decoded audio lags by hop - 1 = 15 samples (the model's delay_samples)

Every packet is range-coded by a fresh coder, so it decodes on its own: a lost packet costs its 40 ms (and
the decoder's convolution state carries concealed latents a few ms into the next), never the packets after
it. The flush of a fresh coder cost 10-23 bits per packet on the smoke models (constriction writes 32-bit
words; trailing zero bytes are dropped), 0.26-0.56 kb/s at 40 ms packets.

A lost packet (None) repeats the last received frame's latents through the decoder, its output faded by
the autoencoder codec's `CONCEALMENT_GAIN` per consecutive lost packet (its `LatentStreamDecoder`); before any packet arrived it decodes zero latents.
Whole-file coding runs the same streaming halves (base.Codec), so chunked equals whole-file.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.autoencoder.codec import LatentStreamDecoder
from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.errors import ParameterError, WeightsError

SAMPLE_RATE_HZ = 16000
DEFAULT_WEIGHTS = "autoencoder-s2h-16k"
#: the model family and task the weights' JSON must name
MODEL_NAME = "s2h-autoencoder"
TASK = "autoencoder"
DEFAULT_PACKET_MS = 40
MAX_PACKET_MS = 1000
#: seconds of audio the complexity count codes
_COUNT_SECONDS = 1.0


def _torch():
    import torch

    return torch


@functools.lru_cache(maxsize=8)
def _load(name: str, directory: str) -> Any:
    """The s2h autoencoder `name` from `directory`: eval mode, verified weights, weight norm folded."""
    from torch.nn.utils import parametrize

    from nsac.codecs.autoencoder_s2h.model import S2HAutoencoder
    from nsac.pretrained import load_config, load_into

    config = load_config(name, directory=directory)
    section = dict(config.get("model", {}))
    if section.pop("name", None) != MODEL_NAME or config.get("task") != TASK:
        raise WeightsError(f"weights {name!r} are not a {MODEL_NAME!r} {TASK} model; give the name of "
                           f"soft-to-hard autoencoder weights (e.g. {DEFAULT_WEIGHTS})")
    cls = S2HAutoencoder
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


def load_s2h_autoencoder(name: str = DEFAULT_WEIGHTS) -> Any:
    """The shipped (or $NSAC_PRETRAINED_DIR's) s2h autoencoder `name`, ready for inference (cached)."""
    from nsac.pretrained import pretrained_dir

    return _load(name, str(pretrained_dir()))


class _S2HStreamEncoder(StreamEncoder):
    def __init__(self, codec: AutoencoderS2HCodec) -> None:
        super().__init__(channels=1, frame_size=codec.frame_size, algorithmic_delay=codec.algorithmic_delay)
        self._model, self._format = codec.model, codec.packet_format
        self._state: Any = None

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        torch = _torch()
        with torch.inference_mode():
            latents, self._state = self._model.stream_encode(torch.from_numpy(frame)[None], self._state)
            codes = self._model.quantizer.encode(latents)[0].numpy()
        return [self._format.write(codes)]


class AutoencoderS2HCodec(Codec):
    """The soft-to-hard end-to-end codec: 16 kHz mono speech, variable rate around the weights' target.

    Parameters
    ----------
    sample_rate : 16000 (resample other audio first; `nsac encode` does)
    bitrate : bit/s; the weights code at one rate (their training target, 16000 for the default recipe):
        None or that rate
    channels : 1
    weights : registered soft-to-hard autoencoder weights (default ``autoencoder-s2h-16k``)
    packet_ms : packet length in ms, a whole number of latent frames, 1..1000 (default 40)
    entropy_coding : range-code packets with the weights' frozen code frequencies when that is shorter
        (False: fixed-length packets of log2 L bits per code only, a constant rate)
    """

    name: ClassVar[str] = "autoencoder-s2h"
    kind: ClassVar[str] = "neural"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (SAMPLE_RATE_HZ,)
    bitrates_bps: ClassVar[tuple[int, ...]] = (16000,)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (1000, 64000)
    constant_rate: ClassVar[bool] = False

    def __init__(self, *, sample_rate: int = SAMPLE_RATE_HZ, bitrate: int | None = None, channels: int = 1,
                 weights: str = DEFAULT_WEIGHTS, packet_ms: int = DEFAULT_PACKET_MS,
                 entropy_coding: bool = True) -> None:
        from nsac.codecs.autoencoder.packets import PacketFormat
        from nsac.pretrained import weights_id

        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels)
        self.weights, self.entropy_coding = weights, bool(entropy_coding)
        self.model = load_s2h_autoencoder(weights)
        if self.model.sample_rate_hz != self.sample_rate:
            raise WeightsError(f"weights {weights!r} run at {self.model.sample_rate_hz} Hz, not "
                               f"{self.sample_rate} Hz")
        target_bps = round(self.model.config.target_bps)
        if bitrate is not None and self.check_bitrate(bitrate) != target_bps:
            raise ParameterError(f"autoencoder-s2h: weights {weights!r} code at {target_bps} bit/s (their "
                                 f"training target), not bitrate={bitrate}; leave bitrate out or train "
                                 "weights for that rate (recipe model.target_bps)")
        self.bitrate = target_bps
        hop = self.model.hop_samples
        whole_int = isinstance(packet_ms, int) and not isinstance(packet_ms, bool)
        if (not whole_int or not 1 <= packet_ms <= MAX_PACKET_MS
                or (packet_ms * self.sample_rate) % (1000 * hop)):
            raise ParameterError(f"autoencoder-s2h: packet_ms={packet_ms!r} must be an integer in "
                                 f"1..{MAX_PACKET_MS} and a whole number of "
                                 f"{1000 * hop / self.sample_rate:g} ms latent frames")
        self.packet_ms = packet_ms
        self.frames_per_packet = packet_ms * self.sample_rate // (1000 * hop)
        quantizer = self.model.quantizer
        tables = quantizer.frequency_tables() if self.entropy_coding else None
        self.packet_format = PacketFormat(n_q=quantizer.channels, frames_per_packet=self.frames_per_packet,
                                          codebook_size=quantizer.n_centres, tables=tables)
        self.frame_size = self.frames_per_packet * self.model.hop_samples
        self.algorithmic_delay = self.model.delay_samples
        self.constant_rate = tables is None
        self.packet_bytes = self.packet_format.fixed_bytes if tables is None else None
        self.weights_sha256_prefix = weights_id(weights)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "the autoencoder-s2h codec needs PyTorch: pip install torch"
        from nsac.pretrained import list_pretrained

        if DEFAULT_WEIGHTS not in list_pretrained():
            return False, (f"the {DEFAULT_WEIGHTS!r} weights are not shipped yet: train them with "
                           f"`nsac train autoencoder-s2h-16k --data DIR --out RUN` and `nsac export "
                           f"RUN/checkpoints/last.pt --name {DEFAULT_WEIGHTS}`")
        return True, ""

    @property
    def max_bitrate_bps(self) -> float:
        """The most a packet stream can take: every packet fixed-length (log2 L bits per code)."""
        return 8 * self.packet_format.fixed_bytes * 1000 / self.packet_ms

    def stream_encoder(self) -> StreamEncoder:
        return _S2HStreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return LatentStreamDecoder(self, latent_channels=self.model.config.latent_channels)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels,
                "weights": self.weights, "packet_ms": self.packet_ms, "entropy_coding": self.entropy_coding}

    def complexity(self) -> dict[str, float]:
        from nsac.pretrained import pretrained_dir

        return _complexity(self.weights, str(pretrained_dir()))


@functools.lru_cache(maxsize=16)
def _complexity(weights: str, directory: str) -> dict[str, float]:
    """MACs per second of audio (encoder, nearest centre, decoder; torch's flop counter) and parameters."""
    torch = _torch()
    from torch.utils.flop_counter import FlopCounterMode

    model = _load(weights, directory)
    x = torch.zeros(1, 1, round(_COUNT_SECONDS * model.sample_rate_hz))
    # no_grad, not inference_mode: the flop counter fails under inference mode in torch 2.13
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.decode(model.encode(x))
    parameters = sum(p.numel() for p in model.parameters())
    return {"macs_per_second": counter.get_total_flops() / 2 / _COUNT_SECONDS, "parameters": int(parameters)}


__all__ = ["AutoencoderS2HCodec", "load_s2h_autoencoder"]
