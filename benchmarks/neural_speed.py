"""Speed of the neural codecs on one core: streaming encode and decode of real speech (not a test).

Usage::

    python benchmarks/neural_speed.py [--codec SPEC ...] [--repeats 3]

Codes the speech example that ships with the package (nsac/data/example_speech.flac, 7.9 s at 16 kHz)
through each codec's streaming encoder and decoder, packet by packet as a call would run, and prints the
CPU seconds per audio second of each half (best of the repeats, `time.process_time`, torch and every thread
pool limited to one thread) and the speed of both together: audio seconds coded and decoded per CPU
second. Above 1 is faster than real time on one core. Codecs whose weights are not installed are listed as
unavailable. The default list is every neural codec of the package at its main rates.
"""

from __future__ import annotations  # noqa: I001 (one_core must load before numpy)

import argparse
import functools
from pathlib import Path

from one_core import best_cpu_seconds  # first: one thread before numpy loads

import numpy as np
import soundfile as sf

from nsac.codecs import codec_class
from nsac.coding import build_codec
from nsac.eval.bench_inputs import parse_condition

EXAMPLE = Path(__file__).resolve().parents[1] / "nsac" / "data" / "example_speech.flac"
DEFAULT_CODECS = ("autoencoder@1500", "autoencoder@3000", "autoencoder@6000", "autoencoder@12000",
                  "autoencoder-s2h", "lpcnet", "lpcnet-pred")


def stream_encode(codec, audio: np.ndarray) -> list[bytes]:
    encoder = codec.stream_encoder()
    packets: list[bytes] = []
    for start in range(0, audio.shape[1], encoder.frame_size):
        packets += encoder.push(audio[:, start : start + encoder.frame_size])
    return packets + encoder.flush()


def stream_decode(codec, packets: list[bytes]) -> np.ndarray:
    decoder = codec.stream_decoder()
    pieces = [decoder.push(packet) for packet in packets] + [decoder.flush()]
    return np.concatenate(pieces, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", action="append", help="condition name@bitrate[:option=value] (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    audio, rate_hz = sf.read(EXAMPLE, dtype="float32", always_2d=True)
    audio = np.ascontiguousarray(audio.T)
    duration_s = audio.shape[1] / rate_hz
    print(f"neural codec speed: {EXAMPLE.name} ({duration_s:.1f} s), streaming, best of {args.repeats}, "
          "one thread")
    print("| condition | payload kb/s | RTF enc | RTF dec | enc+dec x real time |")
    print("|---|---|---|---|---|")
    for spec in args.codec or DEFAULT_CODECS:
        condition = parse_condition(spec)
        available, reason = codec_class(condition.codec).availability()
        if not available:
            print(f"| {spec} | unavailable: {reason} | | | |")
            continue
        options = dict(condition.options)
        if condition.bitrate_bps is not None:
            options["bitrate"] = condition.bitrate_bps
        codec = build_codec(condition.codec, source_rate_hz=rate_hz, channels=1, **options)
        stream_decode(codec, stream_encode(codec, audio))  # warm-up: weights loaded, caches filled
        encode_s, packets = best_cpu_seconds(functools.partial(stream_encode, codec, audio), args.repeats)
        decode_s, _ = best_cpu_seconds(functools.partial(stream_decode, codec, packets), args.repeats)
        kbps = 8 * sum(map(len, packets)) / duration_s / 1000
        speed_x = duration_s / (encode_s + decode_s)
        print(f"| {spec} | {kbps:.2f} | {encode_s / duration_s:.3f} | {decode_s / duration_s:.3f} | "
              f"{speed_x:.1f}{'' if speed_x > 1 else ' (slower than real time)'} |")


if __name__ == "__main__":
    main()
