"""Every shipped post-filter, on a few real test clips (speech, or music for a music codec): it lowers the
mel distance of its codec's output, and never puts out NaN or leaves full scale.

The thresholds sit between what the shipped weights measure on these clips (in the comments) and the 1.0
of an untrained enhancer, which returns its input: a broken or wrongly wired model fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsac.codecs import codec_class, load_codec
from nsac.codecs.postfilter.registry import DEFAULT_ENHANCERS
from nsac.eval.distances import mel_distance
from nsac.pretrained import list_pretrained
from tests.conftest import music_test_clips, speech_test_clips

#: clips per enhancer and the seconds kept of each
N_CLIPS = 4
CLIP_S = 3.0
#: enhancer -> the mean ratio of enhanced to plain mel distance it must stay under (measured: see comments)
MEL_RATIO_MAX: dict[str, float] = {
    "postfilter-opus-6k": 0.9,  # 0.80-0.86 per clip
    "postfilter-opus-9k": 0.97,  # 0.89-0.95
    "postfilter-codec2-3200": 0.7,  # 0.51-0.55
    "postfilter-amrwb-12k65": 0.85,  # 0.73-0.79
    "postfilter-aac-32k": 0.95,  # 0.61-1.02 per music clip, mean 0.88
}
#: codecs whose enhancer is for 48 kHz music; the others follow 16 kHz speech
MUSIC_CODECS = {"aac": 48000}
SPEECH_RATE_HZ = 16000


@pytest.mark.parametrize(("codec_name", "bitrate_bps"), sorted(DEFAULT_ENHANCERS))
def test_shipped_enhancer_improves_real_clips(codec_name: str, bitrate_bps: int) -> None:
    name = DEFAULT_ENHANCERS[(codec_name, bitrate_bps)]
    if name not in list_pretrained():
        pytest.skip(f"{name} weights not shipped")
    if not codec_class(codec_name).availability()[0]:
        pytest.skip(f"{codec_name} is not available here")
    rate_hz = MUSIC_CODECS.get(codec_name, SPEECH_RATE_HZ)
    plain = load_codec(codec_name, bitrate=bitrate_bps, sample_rate=rate_hz)
    enhanced = load_codec(f"{codec_name}+enhance", bitrate=bitrate_bps, sample_rate=rate_hz)
    if codec_name in MUSIC_CODECS:
        clips = music_test_clips(N_CLIPS, seconds=CLIP_S, rate_hz=rate_hz)
        if not clips:
            pytest.skip("the shared test music (../shared/data) is not here")
    else:
        clips = speech_test_clips(N_CLIPS, seconds=CLIP_S, rate_hz=rate_hz)
    ratios = []
    for audio in clips:
        before = plain.decode(plain.encode(audio), audio.shape[1])
        after = enhanced.decode(enhanced.encode(audio), audio.shape[1])
        assert np.all(np.isfinite(after)) and np.abs(after).max() <= 1.0
        ratios.append(mel_distance(audio[0], after[0], sample_rate=rate_hz)
                      / mel_distance(audio[0], before[0], sample_rate=rate_hz))
    assert np.mean(ratios) < MEL_RATIO_MAX[name], ratios
