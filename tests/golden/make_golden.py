"""Writes the golden .nsac files of the current format version and what they decode to.

Run once per format version (python tests/golden/make_golden.py) and commit the result; never regenerate the
files of an earlier version: they are what every later nsac must still decode.
"""

from __future__ import annotations

from pathlib import Path

from nsac.audio import read, write
from nsac.bitstream.container import FORMAT_VERSION, dumps, loads
from nsac.coding import decode_bytes, encode_audio
from nsac.examples import example_path

HERE = Path(__file__).resolve().parent
#: golden conditions: one fixed-size packet layout (amrwb) and one variable (opus VBR), one packet lost in each
GOLDEN = {"amrwb": {"bitrate": 12650}, "opus": {"bitrate": 16000}}
LOST_PACKET_INDEX = 20
CLIP_SECONDS = 1.5


def main() -> None:
    audio, rate = read(example_path("speech"))
    clip = audio[:, int(0.5 * rate) : int((0.5 + CLIP_SECONDS) * rate)]
    for codec, options in GOLDEN.items():
        parsed = loads(encode_audio(clip, rate, codec, **options))
        packets = list(parsed.packets)
        packets[LOST_PACKET_INDEX] = None
        data = dumps(parsed.header, packets)
        stem = HERE / f"v{FORMAT_VERSION}_{codec}"
        stem.with_suffix(".nsac").write_bytes(data)
        decoded, decoded_rate = decode_bytes(data)
        write(stem.with_suffix(".flac"), decoded, decoded_rate, bits="24")
        print(f"{stem.name}.nsac: {len(data)} bytes")


if __name__ == "__main__":
    main()
