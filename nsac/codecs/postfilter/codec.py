"""EnhancedCodec: a frozen legacy codec whose decoder output goes through a causal enhancer (`NAME+enhance`).

The packets are the legacy codec's, byte for byte; only decoding changes. Delay and framing::

    legacy stream decoder   |<- codec delay ->|<------------- signal ------------->|
    enhancer (streaming)    |<- codec delay + enhancer delay ->|<----- signal ----->|
    algorithmic_delay = codec delay + enhancer.delay_samples

The stream decoder pushes every packet's samples through `enhancer.stream` (frame_size is a whole number
of enhancer hops, so a packet still gives frame_size samples); flush pushes zeros until the enhancer's
delay is out. Whole-file `decode` runs the enhancer once over the legacy stream output, the same samples
computed in one pass (tested). The output is limited to [-1, 1]. The enhancers are mono models: each channel
of a stereo file goes through them on its own (as one more item of the batch).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.postfilter.registry import default_enhancer, load_enhancer
from nsac.errors import ParameterError

#: what a registry name ends with to wrap the codec it names
ENHANCE_SUFFIX = "+enhance"
#: full scale: enhanced samples are limited to it
_FULL_SCALE = 1.0
#: seconds of audio the complexity count runs the enhancer on
_COUNT_SECONDS = 1.0


def _run_stream(enhancer: Any, audio: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
    import torch

    with torch.inference_mode():
        y, state = enhancer.stream(torch.from_numpy(np.ascontiguousarray(audio))[:, None, :], state)
    return np.clip(y[:, 0].numpy(), -_FULL_SCALE, _FULL_SCALE), state


class _EnhancedStreamDecoder(StreamDecoder):
    def __init__(self, inner: StreamDecoder, enhancer: Any, *, channels: int) -> None:
        super().__init__(channels=channels)
        self.inner, self.enhancer, self.state = inner, enhancer, None

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        out, self.state = _run_stream(self.enhancer, self.inner.push(packet), self.state)
        return out

    def _drain(self) -> np.ndarray:
        tail = self.inner.flush()
        zeros = np.zeros((self.channels, self.enhancer.delay_samples + self.enhancer.hop_samples), np.float32)
        out, self.state = _run_stream(self.enhancer, np.concatenate([tail, zeros], axis=1), self.state)
        return out


class EnhancedCodec(Codec):
    """A legacy codec plus an enhancer after its decoder; the packets are the legacy codec's.

    Parameters are the legacy codec's keyword arguments, plus `enhancer`: the name of shipped weights
    (default: the one registered for the codec and bitrate, registry.DEFAULT_ENHANCERS).
    """

    kind: ClassVar[str] = "postfilter"
    inner_class: ClassVar[type[Codec]]

    def __init__(self, *, enhancer: str | None = None, **options: Any) -> None:
        self.inner = self.inner_class(**options)
        self.enhancer_name = enhancer or default_enhancer(self.inner.name, self.inner.bitrate)
        self.enhancer = load_enhancer(self.enhancer_name)
        if self.enhancer.sample_rate_hz != self.inner.sample_rate:
            raise ParameterError(f"enhancer {self.enhancer_name!r} runs at {self.enhancer.sample_rate_hz} Hz "
                                 f"but {self.inner.name} is set up at {self.inner.sample_rate} Hz")
        if self.inner.frame_size % self.enhancer.hop_samples:
            raise ParameterError(f"{self.name}: the codec's frame of {self.inner.frame_size} samples is not a "
                                 f"whole number of the enhancer's {self.enhancer.hop_samples}-sample hops")
        from nsac.pretrained import weights_id

        self.sample_rate, self.channels = self.inner.sample_rate, self.inner.channels
        self.frame_size, self.bitrate = self.inner.frame_size, self.inner.bitrate
        self.packet_bytes = self.inner.packet_bytes
        self.constant_rate = self.inner.constant_rate
        self.algorithmic_delay = self.inner.algorithmic_delay + self.enhancer.delay_samples
        self.weights_sha256_prefix = weights_id(self.enhancer_name)
        enhancer_complexity(self.enhancer_name)  # counted now (cached), not inside a timed encode

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        available, reason = cls.inner_class.availability()
        if not available:
            return available, reason
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "the enhancer needs PyTorch: pip install torch"
        return True, ""

    @property
    def deterministic(self) -> bool:
        return self.inner.deterministic

    def stream_encoder(self) -> StreamEncoder:
        encoder = self.inner.stream_encoder()
        # flush codes the enhancer's delay too, so that the whole signal comes out of the enhancer
        encoder.algorithmic_delay = self.algorithmic_delay
        return encoder

    def stream_decoder(self) -> StreamDecoder:
        return _EnhancedStreamDecoder(self.inner.stream_decoder(), self.enhancer, channels=self.channels)

    def decode(self, packets: Sequence[bytes | None], num_samples: int | None = None) -> np.ndarray:
        """Whole-file decoding: the legacy stream, then the enhancer over all of it in one pass."""
        import torch

        if num_samples is None:
            num_samples = max(0, len(packets) * self.frame_size - self.algorithmic_delay)
        decoder = self.inner.stream_decoder()
        raw = np.concatenate([decoder.push(p) for p in packets] + [decoder.flush()], axis=1)
        with torch.inference_mode():
            y = self.enhancer(torch.from_numpy(np.ascontiguousarray(raw))[:, None, :])[:, 0].numpy()
        out = np.clip(y, -_FULL_SCALE, _FULL_SCALE)[:, self.inner.algorithmic_delay :]
        if out.shape[1] < num_samples:
            out = np.pad(out, ((0, 0), (0, num_samples - out.shape[1])))
        return np.ascontiguousarray(out[:, :num_samples], dtype=np.float32)

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "enhancer": self.enhancer_name}

    def complexity(self) -> dict[str, float]:
        return enhancer_complexity(self.enhancer_name)


@functools.lru_cache(maxsize=8)
def enhancer_complexity(name: str) -> dict[str, float]:
    """MACs per second of audio (torch's flop counter, plus the GRUs it does not see) and parameters."""
    return count_complexity(load_enhancer(name))


def count_complexity(enhancer: Any) -> dict[str, float]:
    """MACs per second and parameters of a built enhancer (in eval mode), counted as for shipped ones."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 1, round(_COUNT_SECONDS * enhancer.sample_rate_hz))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        enhancer(x)
    counted = counter.get_total_flops() / 2
    macs = counted + enhancer.uncounted_macs(x.shape[-1])
    return {"macs_per_second": macs / _COUNT_SECONDS,
            "parameters": int(sum(p.numel() for p in enhancer.parameters()))}


@functools.cache
def enhanced_class(inner: type[Codec]) -> type[EnhancedCodec]:
    """The EnhancedCodec subclass registered as `<inner.name>+enhance`, with the inner codec's ranges."""
    attributes = {
        "name": f"{inner.name}{ENHANCE_SUFFIX}", "inner_class": inner,
        "sample_rates_hz": inner.sample_rates_hz, "bitrates_bps": inner.bitrates_bps,
        "bitrate_range_bps": inner.bitrate_range_bps, "constant_rate": inner.constant_rate,
        "__doc__": f"{inner.name} followed by its shipped enhancer.",
        "__module__": __name__,
    }
    return type(f"Enhanced{inner.__name__}", (EnhancedCodec,), attributes)
