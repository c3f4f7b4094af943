"""Every format version's golden .nsac file still parses to the same header and decodes to the same audio."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from nsac.audio import read
from nsac.bitstream.container import READABLE_VERSIONS, loads
from nsac.codecs import codec_class
from nsac.coding import decode_bytes

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("v*_*.nsac"))
#: decoders differ in floating-point detail between library builds; fixed-point AMR-WB must match closely
MIN_SNR_DB = {"amrwb": 60.0, "opus": 25.0}


def test_every_readable_version_has_a_golden_file():
    versions = {int(path.name[1:].split("_")[0]) for path in GOLDEN_FILES}
    assert versions == set(READABLE_VERSIONS)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_decodes_as_it_did(path):
    parsed = loads(path.read_bytes())
    codec = parsed.header.codec
    if not codec_class(codec).availability()[0]:
        pytest.skip(f"{codec} is not available here")
    assert parsed.packets.count(None) == 1
    decoded, rate = decode_bytes(path.read_bytes())
    expected, expected_rate = read(path.with_suffix(".flac"))
    assert rate == expected_rate == parsed.header.source_rate_hz
    assert decoded.shape == expected.shape == (parsed.header.channels, parsed.header.num_samples)
    noise = np.sum((decoded - expected) ** 2) + 1e-20
    snr_db = 10 * np.log10(np.sum(expected**2) / noise)
    assert snr_db >= MIN_SNR_DB[codec], f"{path.name}: {snr_db:.1f} dB against the golden decode"


def test_golden_bytes_are_unchanged():
    # the golden files are history: regenerating one changes this digest and must not happen
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in GOLDEN_FILES)).hexdigest()
    assert digest == (GOLDEN_DIR / "SHA256").read_text().split()[0]
