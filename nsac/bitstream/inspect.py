"""What `nsac info` prints: a .nsac file's header and statistics of its packets, as plain data."""

from __future__ import annotations

from typing import Any

from nsac.bitstream.container import loads


def describe(data: bytes) -> dict[str, Any]:
    """Header fields plus packet counts, sizes and bitrates measured from the bytes."""
    parsed = loads(data)
    header = parsed.header
    present = [len(p) for p in parsed.packets if p is not None]
    payload_bytes = sum(present)
    duration_s = header.num_samples / header.source_rate_hz
    per_second = 8 / duration_s / 1000 if duration_s > 0 else float("nan")
    return {
        "format_version": parsed.format_version,
        **header.to_json(),
        "duration_s": round(duration_s, 6),
        "packets": {
            "count": len(parsed.packets),
            "lost": len(parsed.packets) - len(present),
            "min_bytes": min(present, default=0),
            "mean_bytes": round(payload_bytes / len(present), 3) if present else 0,
            "max_bytes": max(present, default=0),
            "fixed_size": len(set(present)) == 1,
        },
        "file_bytes": len(data),
        "payload_bytes": payload_bytes,
        "overhead_bytes": parsed.overhead_bytes,
        "payload_kbps": round(payload_bytes * per_second, 4),
        "file_kbps": round(len(data) * per_second, 4),
    }
