"""Mutated and truncated .nsac files of every codec give nsac errors only: never a crash, a hang or garbage size."""

from __future__ import annotations

import signal
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsac.codecs import codec_class
from nsac.coding import decode_bytes, encode_audio
from nsac.errors import NsacError

#: codec -> options of the file that gets mutated
FUZZ_CODECS = {
    "opus": {"bitrate": 12000},
    "amrwb": {"bitrate": 12650},
    "codec2": {"bitrate": 3200},
    "lpcnet-freedv": {},
    "lc3": {"bitrate": 32000},
    "mp3": {"bitrate": 32000},
    "aac": {"bitrate": 32000},
    "mdct": {"bitrate": 32000},
    "lpcnet": {},
    "lpcnet-pred": {},
    "autoencoder": {"bitrate": 6000},
    "autoencoder-s2h": {},
}
#: a decode of half a second that takes longer than this is a hang
HANG_SECONDS = 20


def _alarm(signum, frame):
    raise TimeoutError("decoding hung")


@pytest.fixture(scope="module")
def coded_files(speech_16k):
    clip = speech_16k[:, 8000:16000]
    return {
        name: encode_audio(clip, 16000, name, **options)
        for name, options in FUZZ_CODECS.items()
        if codec_class(name).availability()[0]
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutations_give_nsac_errors_only(coded_files, data):
    name = data.draw(st.sampled_from(sorted(coded_files)))
    raw = bytearray(coded_files[name])
    for _ in range(data.draw(st.integers(0, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    if len(raw) > 8 and data.draw(st.booleans()):
        # re-seal the checksum so the mutation reaches the header parser and the codec's own decoder
        raw = raw[:-4] + struct.pack("<I", zlib.crc32(bytes(raw[:-4])))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        audio, rate = decode_bytes(bytes(raw))
    except NsacError:
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert audio.ndim == 2 and audio.dtype == np.float32 and np.all(np.isfinite(audio))
    assert audio.shape[1] <= 16000 * 60 and rate > 0
