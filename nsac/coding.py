"""Whole-file coding: audio at any rate to .nsac bytes through a registered codec, and back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nsac
from nsac.audio import resample
from nsac.bitstream.container import Header, NsacFile, dumps, loads
from nsac.codecs import codec_class, load_codec
from nsac.codecs.base import Codec, check_audio
from nsac.errors import BitstreamError, ParameterError, WeightsError

#: header fields that are not repeated inside the codec config
_HEADER_KEYS = ("sample_rate", "channels")


def _version_tuple() -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in nsac.__version__.split(".")[:3])
    return major, minor, patch


def choose_sample_rate(codec: str, source_rate_hz: int) -> int:
    """The codec rate to code audio at: the source rate when supported, else the closest higher, else the highest."""
    rates = sorted(codec_class(codec).sample_rates_hz)
    if source_rate_hz in rates:
        return source_rate_hz
    higher = [r for r in rates if r > source_rate_hz]
    return higher[0] if higher else rates[-1]


def build_codec(codec: str, *, source_rate_hz: int, channels: int, **options: Any) -> Codec:
    """Build `codec` for audio of the given rate and channel count; options are the codec's keywords."""
    options.setdefault("sample_rate", choose_sample_rate(codec, source_rate_hz))
    return load_codec(codec, channels=channels, **options)


def encode_audio(audio: np.ndarray, sample_rate_hz: int, codec: Codec | str, **options: Any) -> bytes:
    """Encode (channels, samples) audio with `codec` (an instance, or a name plus its options) to .nsac bytes."""
    audio = np.asarray(audio)
    audio = check_audio(audio, channels=audio.shape[0] if audio.ndim == 2 else 1)
    if audio.shape[1] == 0:
        raise ParameterError("nothing to encode: the audio holds no samples")
    if isinstance(codec, str):
        channels = options.pop("channels", audio.shape[0])
        codec = build_codec(codec, source_rate_hz=sample_rate_hz, channels=channels, **options)
    elif options:
        raise ParameterError("give options either to the codec instance or with its name, not both")
    if audio.shape[0] != codec.channels:
        raise ParameterError(
            f"{codec.name} is set up for {codec.channels} channel(s) but the audio has {audio.shape[0]}; "
            "downmix or choose channels to match"
        )
    coded = resample(audio, from_hz=sample_rate_hz, to_hz=codec.sample_rate)
    packets = codec.encode(coded)
    config = {k: v for k, v in codec.config().items() if k not in _HEADER_KEYS}
    header = Header(
        codec=codec.name,
        config=config,
        sample_rate_hz=codec.sample_rate,
        channels=codec.channels,
        num_samples=audio.shape[1],
        source_rate_hz=sample_rate_hz,
        weights_id=codec.weights_sha256_prefix,
        nsac_version=_version_tuple(),
    )
    return dumps(header, packets)


def codec_for(header: Header) -> Codec:
    """Rebuild the codec a header names, refusing weights other than the ones the file was coded with."""
    config = dict(header.config)
    for key in _HEADER_KEYS:
        config.pop(key, None)
    try:
        codec = load_codec(header.codec, sample_rate=header.sample_rate_hz, channels=header.channels, **config)
    except ParameterError as exc:
        raise BitstreamError(f"the file's header does not describe a valid codec: {exc}") from None
    if header.weights_id != codec.weights_sha256_prefix:
        have = codec.weights_sha256_prefix.hex() if codec.weights_sha256_prefix else "none"
        want = header.weights_id.hex() if header.weights_id else "none"
        raise WeightsError(
            f"the file was coded with {header.codec} weights {want} but this nsac has {have}; "
            "decode it with the nsac version that wrote it"
        )
    return codec


def decode_file(nsac_file: NsacFile) -> tuple[np.ndarray, int]:
    """Decode a parsed .nsac file to ((channels, num_samples) float32, source rate in Hz)."""
    header = nsac_file.header
    codec = codec_for(header)
    n_coded = math.ceil(header.num_samples * header.sample_rate_hz / header.source_rate_hz)
    n_needed = math.ceil(n_coded / codec.frame_size)
    if len(nsac_file.packets) < n_needed:
        raise BitstreamError(
            f"truncated: {len(nsac_file.packets)} packets cannot hold {header.num_samples} samples "
            f"({n_needed} packets of {codec.frame_size} needed)"
        )
    audio = codec.decode(nsac_file.packets, n_coded)
    audio = resample(audio, from_hz=header.sample_rate_hz, to_hz=header.source_rate_hz)
    if audio.shape[1] < header.num_samples:
        audio = np.pad(audio, ((0, 0), (0, header.num_samples - audio.shape[1])))
    return audio[:, : header.num_samples], header.source_rate_hz


def decode_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode the bytes of a .nsac file to ((channels, samples) float32, sample rate in Hz)."""
    return decode_file(loads(data))
