"""Decoding a legacy codec's .nsac file through an enhancer: `nsac decode IN OUT --enhance [NAME]`.

The file is the legacy codec's, untouched; its header names the codec and bitrate, which pick the shipped
enhancer unless one is named. Output: the file's rate and length, aligned like a plain decode.
"""

from __future__ import annotations

import math

import numpy as np

from nsac.audio import resample
from nsac.bitstream.container import loads
from nsac.codecs import codec_class
from nsac.codecs.postfilter.codec import ENHANCE_SUFFIX, enhanced_class
from nsac.errors import BitstreamError, ParameterError


def decode_enhanced(data: bytes, *, enhancer: str | None = None) -> tuple[np.ndarray, int]:
    """Decode .nsac bytes with the enhancer for their codec and bitrate (or `enhancer`).

    Returns ((channels, samples) float32, the source rate in Hz), as nsac.coding.decode_bytes does.
    """
    parsed = loads(data)
    header = parsed.header
    name = header.codec.removesuffix(ENHANCE_SUFFIX)  # a file coded by NAME+enhance holds NAME's packets
    config = {k: v for k, v in header.config.items() if k != "enhancer"}
    if enhancer is None and header.codec.endswith(ENHANCE_SUFFIX):
        enhancer = header.config.get("enhancer")
    if header.weights_id is not None and not header.codec.endswith(ENHANCE_SUFFIX):
        raise ParameterError(f"{header.codec} is a neural codec with its own weights; enhancers follow "
                             "legacy codecs only")
    try:
        codec = enhanced_class(codec_class(name))(sample_rate=header.sample_rate_hz, channels=header.channels,
                                                  enhancer=enhancer, **config)
    except TypeError as exc:
        raise BitstreamError(f"the file's header does not describe a valid codec: {exc}") from None
    n_coded = math.ceil(header.num_samples * header.sample_rate_hz / header.source_rate_hz)
    n_needed = math.ceil(n_coded / codec.frame_size)
    if len(parsed.packets) < n_needed:
        raise BitstreamError(f"truncated: {len(parsed.packets)} packets cannot hold {header.num_samples} "
                             f"samples ({n_needed} packets of {codec.frame_size} needed)")
    audio = codec.decode(parsed.packets, n_coded)
    audio = resample(audio, from_hz=header.sample_rate_hz, to_hz=header.source_rate_hz)
    if audio.shape[1] < header.num_samples:
        audio = np.pad(audio, ((0, 0), (0, header.num_samples - audio.shape[1])))
    return audio[:, : header.num_samples], header.source_rate_hz
