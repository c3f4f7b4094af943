"""The shipped codebooks of the 1.6 kb/s quantizer, checked against their SHA-256 when loaded."""

from __future__ import annotations

import functools
from pathlib import Path

from nsac.quant.lpcnet_quantizer import LPCNetCodebooks
from nsac.quant.vq import load_codebooks

DATA_DIR = Path(__file__).resolve().parent / "data"
CODEBOOKS_SHA256 = "f83280d966d36d68b03040e227347f78e802887d211a1677b08c0d1498254076"
"""Identity of the shipped file; packets coded with one set of codebooks decode only with the same set."""
CODEBOOKS_FILE = DATA_DIR / f"lpcnet_vq_{CODEBOOKS_SHA256[:8]}.safetensors"
"""Trained by ``python -m nsac.train.lpcnet_vq`` (how: the JSON note of the same name beside it)."""


@functools.cache
def shipped_codebooks() -> LPCNetCodebooks:
    """The codebooks that ship with nsac (read once per process; raises WeightsError if tampered with)."""
    tensors, _ = load_codebooks(CODEBOOKS_FILE, sha256=CODEBOOKS_SHA256)
    return LPCNetCodebooks.from_tensors(tensors, sha256=CODEBOOKS_SHA256)
