"""The shipped end-to-end codecs on a few real test clips: recognisable speech at every bitrate, the rate
they claim (measured from the bytes), no NaN, nothing past full scale.

The thresholds sit between what the shipped weights measure on these clips (in the comments) and what a
broken model gives: the autoencoder of the shipped size with untrained weights measures 19-22 dB. The
shipped models are far from converged (README): this catches a broken model or pipeline, not a small loss
of quality.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsac import pretrained
from nsac.codecs import load_codec
from nsac.eval.distances import mel_distance
from tests.conftest import speech_test_clips

RATE_HZ = 16000
N_CLIPS = 3
CLIP_S = 3.0
#: (codec, options) -> the mean log-mel distance (dB) it must stay under; measured values in the comments
MEL_DISTANCE_MAX: dict[tuple[str, tuple[tuple[str, int], ...]], float] = {
    ("autoencoder", (("bitrate", 1500),)): 7.0,  # 4.0-4.8 per clip
    ("autoencoder", (("bitrate", 6000),)): 6.5,  # 3.8-4.5
    ("autoencoder", (("bitrate", 12000),)): 6.5,  # 3.8-4.5
    ("autoencoder-s2h", ()): 8.0,  # 5.0-6.1
}
#: the weights each codec needs
WEIGHTS = {"autoencoder": "autoencoder-16k-stft", "autoencoder-s2h": "autoencoder-s2h-16k"}


@pytest.mark.parametrize(("name", "options"), sorted(MEL_DISTANCE_MAX))
def test_shipped_autoencoder_codes_real_test_speech(name: str, options: tuple[tuple[str, int], ...]) -> None:
    if WEIGHTS[name] not in pretrained.list_pretrained():
        pytest.skip(f"the {WEIGHTS[name]} weights are not shipped")
    codec = load_codec(name, sample_rate=RATE_HZ, **dict(options))
    distances, bits, seconds = [], 0, 0.0
    for clip in speech_test_clips(N_CLIPS, seconds=CLIP_S, rate_hz=RATE_HZ):
        packets = codec.encode(clip)
        decoded = codec.decode(packets, clip.shape[1])
        assert decoded.shape == clip.shape
        assert np.isfinite(decoded).all() and np.abs(decoded).max() <= 1.0
        distances.append(mel_distance(clip[0], decoded[0], sample_rate=RATE_HZ))
        bits += 8 * sum(map(len, packets))
        seconds += clip.shape[1] / RATE_HZ
    assert float(np.mean(distances)) < MEL_DISTANCE_MAX[(name, options)], distances
    if name == "autoencoder":  # whole bytes per 40 ms packet and the flush packet: a few percent over
        assert bits / seconds <= 1.15 * dict(options)["bitrate"], bits / seconds
    else:  # range-coded at a rate the model learnt (its training target was 16 kb/s): 19.5 kb/s here
        assert bits / seconds <= codec.max_bitrate_bps, bits / seconds
