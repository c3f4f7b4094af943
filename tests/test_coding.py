"""Whole-file coding through the container: sizes, rates, channels and the checks on the header."""

from __future__ import annotations

import numpy as np
import pytest

from nsac.bitstream.container import dumps, loads
from nsac.codecs import codec_class
from nsac.coding import decode_bytes, encode_audio
from nsac.errors import BitstreamError, ParameterError, WeightsError


def _available(name: str) -> bool:
    return codec_class(name).availability()[0]


@pytest.fixture(scope="module")
def speech_10s(speech_16k):
    return np.tile(speech_16k, (1, 4))[:, : 10 * 16000]


@pytest.mark.skipif(not _available("opus"), reason="PyAV with libopus missing")
def test_cbr_opus_at_6_kbps_costs_under_two_percent_overhead(speech_10s):
    parsed = loads(encode_audio(speech_10s, 16000, "opus", bitrate=6000, vbr="off"))
    payload = sum(len(p) for p in parsed.packets)
    assert parsed.overhead_bytes / payload <= 0.02
    assert {len(p) for p in parsed.packets} == {15}  # 6 kb/s in 20 ms packets


@pytest.mark.skipif(not _available("opus"), reason="PyAV with libopus missing")
def test_stereo_round_trip_keeps_channels_rate_and_length():
    rate = 48000
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]).astype(np.float32) * 0.3
    decoded, decoded_rate = decode_bytes(encode_audio(stereo, rate, "opus", bitrate=64000, channels=2))
    assert decoded_rate == rate and decoded.shape == stereo.shape
    # each channel keeps its own tone
    spectrum = np.abs(np.fft.rfft(decoded, axis=1))
    assert np.argmax(spectrum[0]) == 440 and np.argmax(spectrum[1]) == 660


@pytest.mark.skipif(not _available("amrwb"), reason="AMR-WB libraries missing")
def test_mono_codec_refuses_stereo(speech_16k):
    with pytest.raises(ParameterError, match="channels"):
        encode_audio(np.concatenate([speech_16k, speech_16k]), 16000, "amrwb", bitrate=12650)


@pytest.mark.skipif(not _available("amrwb"), reason="AMR-WB libraries missing")
def test_weights_other_than_the_header_names_are_refused(speech_16k):
    parsed = loads(encode_audio(speech_16k, 16000, "amrwb", bitrate=12650))
    forged = parsed.header.__class__(**{**parsed.header.__dict__, "weights_id": bytes(8)})
    with pytest.raises(WeightsError, match="weights"):
        decode_bytes(dumps(forged, parsed.packets))


@pytest.mark.skipif(not _available("amrwb"), reason="AMR-WB libraries missing")
def test_too_few_packets_for_the_stated_length_is_truncation(speech_16k):
    parsed = loads(encode_audio(speech_16k, 16000, "amrwb", bitrate=12650))
    with pytest.raises(BitstreamError, match="truncated"):
        decode_bytes(dumps(parsed.header, parsed.packets[:10]))


def test_empty_audio_is_refused():
    with pytest.raises(ParameterError, match="no samples"):
        encode_audio(np.zeros((1, 0), np.float32), 16000, "opus")
