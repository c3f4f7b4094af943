"""Speed of the mdct codec: encoding plus decoding on one thread, as a multiple of real time (not a test).

Usage::

    python benchmarks/mdct_speed.py [--seconds 20] [--repeats 3]

Codes a synthetic music-like mix (drums, bass, piano, reverb; `nsac.codecs.mdct.signals`) at several
rates and configurations and prints, per condition, the CPU seconds per audio second of the encoder and of
the decoder (best of the repeats, `time.process_time`, every thread pool limited to one thread before numpy
loads) and the speed of both together: audio seconds coded and decoded per CPU second. The issue's bar is
20x real time at 48 kHz.
"""

from __future__ import annotations  # noqa: I001 (one_core must load before numpy)

import argparse

from one_core import best_cpu_seconds  # first: one thread before numpy loads

import numpy as np

from nsac.codecs.mdct import MdctCodec
from nsac.codecs.mdct.signals import music_like

#: (sample rate Hz, bitrate bit/s, channels, window switching)
CONDITIONS = ((48000, 64000, 1, True), (48000, 96000, 1, True), (48000, 128000, 1, True),
              (44100, 64000, 1, True), (16000, 32000, 1, True), (48000, 128000, 2, True),
              (48000, 64000, 1, False))
REQUIRED_SPEED_X = 20.0


def measure(sample_rate: int, bitrate: int, channels: int, window_switching: bool, *, seconds: float,
            repeats: int) -> dict[str, float]:
    mono = music_like("mix", duration_s=seconds, sample_rate=sample_rate, seed=7)
    audio = np.stack([mono, np.roll(mono, sample_rate // 100)])[:channels]
    codec = MdctCodec(sample_rate=sample_rate, bitrate=bitrate, channels=channels,
                      window_switching=window_switching)
    encode_s, packets = best_cpu_seconds(lambda: codec.encode(audio), repeats)
    decode_s, _ = best_cpu_seconds(lambda: codec.decode(packets, audio.shape[1]), repeats)
    duration_s = audio.shape[1] / sample_rate
    kbps = sum(len(p) for p in packets) * 8 / duration_s / 1000
    return {"rtf_encode": encode_s / duration_s, "rtf_decode": decode_s / duration_s,
            "speed_x": duration_s / (encode_s + decode_s), "kbps": kbps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test signal")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts")
    args = parser.parse_args()
    print(f"mdct codec speed, {args.seconds:g} s music-like mix, best of {args.repeats}, one thread")
    print("| rate Hz | kb/s | ch | short blocks | payload kb/s | RTF enc | RTF dec | enc+dec x real time |")
    print("|---|---|---|---|---|---|---|---|")
    for sample_rate, bitrate, channels, switching in CONDITIONS:
        m = measure(sample_rate, bitrate, channels, switching, seconds=args.seconds, repeats=args.repeats)
        flag = "" if m["speed_x"] >= REQUIRED_SPEED_X else f" (below {REQUIRED_SPEED_X:g}x)"
        print(f"| {sample_rate} | {bitrate // 1000} | {channels} | {'yes' if switching else 'no'} | "
              f"{m['kbps']:.2f} | {m['rtf_encode']:.4f} | {m['rtf_decode']:.4f} | {m['speed_x']:.1f}{flag} |")


if __name__ == "__main__":
    main()
