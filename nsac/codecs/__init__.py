"""The codec registry: names to classes, imported lazily so that listing codecs loads no heavy library."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from nsac.codecs.base import Codec
from nsac.errors import DependencyError, ParameterError

#: registry name -> "module:Class"; a module imports its library only when a codec is built
_CODEC_CLASSES: dict[str, str] = {
    "opus": "nsac.codecs.legacy.opus:OpusCodec",
    "aac": "nsac.codecs.legacy.aac:AacCodec",
    "mp3": "nsac.codecs.legacy.mp3:Mp3Codec",
    "codec2": "nsac.codecs.legacy.codec2:Codec2Codec",
    "lc3": "nsac.codecs.legacy.lc3:Lc3Codec",
    "amrwb": "nsac.codecs.legacy.amrwb:AmrWbCodec",
    "lpcnet-freedv": "nsac.codecs.legacy.lpcnet_freedv:LpcnetFreedvCodec",
    "mdct": "nsac.codecs.mdct:MdctCodec",
    "lpcnet": "nsac.codecs.lpcnet.codec:LPCNetCodec",
    "lpcnet-pred": "nsac.codecs.lpcnet.pred:LPCNetPredCodec",
    "autoencoder": "nsac.codecs.autoencoder.codec:AutoencoderCodec",
    "autoencoder-s2h": "nsac.codecs.autoencoder_s2h.codec:AutoencoderS2HCodec",
}


@dataclass(frozen=True)
class CodecInfo:
    """What `list_codecs` says of one codec."""

    name: str
    kind: str
    sample_rates_hz: tuple[int, ...]
    bitrates_bps: tuple[int, ...]
    bitrate_range_bps: tuple[int, int]
    available: bool
    reason: str


def codec_names() -> list[str]:
    return sorted(_CODEC_CLASSES)


def codec_class(name: str) -> type[Codec]:
    """Return the class registered under `name`; ParameterError naming the valid ones otherwise."""
    if name.endswith("+enhance"):  # NAME+enhance: codec NAME followed by its neural post-filter
        from nsac.codecs.postfilter.codec import ENHANCE_SUFFIX, enhanced_class

        return enhanced_class(codec_class(name.removesuffix(ENHANCE_SUFFIX)))
    try:
        target = _CODEC_CLASSES[name]
    except KeyError:
        raise ParameterError(f"unknown codec {name!r}; known codecs: {', '.join(codec_names())}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def list_codecs() -> list[CodecInfo]:
    """Every registered codec with what it supports and whether it can run here (and if not, why)."""
    infos = []
    for name in codec_names():
        cls = codec_class(name)
        available, reason = cls.availability()
        infos.append(
            CodecInfo(
                name=name,
                kind=cls.kind,
                sample_rates_hz=tuple(cls.sample_rates_hz),
                bitrates_bps=tuple(cls.bitrates_bps),
                bitrate_range_bps=tuple(cls.bitrate_range_bps),
                available=available,
                reason=reason,
            )
        )
    return infos


def load_codec(name: str, **options: Any) -> Codec:
    """Build the codec `name` with `options` (its constructor's keyword arguments, as `config()` gives)."""
    cls = codec_class(name)
    available, reason = cls.availability()
    if not available:
        raise DependencyError(f"codec {name!r} is unavailable: {reason}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ParameterError(f"codec {name!r}: {exc}") from None


__all__ = ["Codec", "CodecInfo", "codec_class", "codec_names", "list_codecs", "load_codec"]
