"""`nsac demo`: code the shipped example with the legacy anchors and print what each one cost."""

from __future__ import annotations

from pathlib import Path

from nsac.audio import read, write
from nsac.codecs import codec_class
from nsac.coding import decode_bytes, encode_audio
from nsac.errors import NsacError
from nsac.examples import example_path

#: (codec, bitrate in bit/s or None for the codec's own) coded by the demo
DEMO_CONDITIONS: tuple[tuple[str, int | None], ...] = (
    ("opus", 6000),
    ("opus", 12000),
    ("amrwb", 12650),
    ("codec2", 3200),
    ("lpcnet-freedv", None),
    ("lc3", 32000),
)


def run_demo(*, out_dir: Path, data: str | None = None) -> list[dict]:
    """Encode and decode one clip with every available demo codec; write .nsac and .wav files; print a table."""
    source = Path(data) if data else example_path("speech")
    audio, rate = read(source)
    audio = audio.mean(axis=0, keepdims=True)
    duration_s = audio.shape[1] / rate
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{source.name}: {duration_s:.2f} s at {rate} Hz -> {out_dir}/")
    print(f"{'condition':<22}{'bytes':>8}{'kb/s (file)':>13}{'duration s':>12}  result")
    rows = []
    for codec, bitrate in DEMO_CONDITIONS:
        label = f"{codec}@{bitrate}" if bitrate else codec
        available, reason = codec_class(codec).availability()
        if not available:
            print(f"{label:<22}{'-':>8}{'-':>13}{'-':>12}  skipped: {reason}")
            continue
        try:
            options = {"bitrate": bitrate} if bitrate else {}
            data_bytes = encode_audio(audio, rate, codec, **options)
            decoded, decoded_rate = decode_bytes(data_bytes)
        except NsacError as exc:
            print(f"{label:<22}{'-':>8}{'-':>13}{'-':>12}  failed: {exc}")
            continue
        stem = label.replace("@", "_")
        (out_dir / f"{stem}.nsac").write_bytes(data_bytes)
        write(out_dir / f"{stem}.wav", decoded, decoded_rate)
        kbps = len(data_bytes) * 8 / duration_s / 1000
        print(f"{label:<22}{len(data_bytes):>8}{kbps:>13.2f}{decoded.shape[1] / decoded_rate:>12.2f}  {stem}.wav")
        rows.append({"condition": label, "bytes": len(data_bytes), "kbps": kbps})
    return rows
