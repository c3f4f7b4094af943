"""nsac: neural speech and audio coding, with model-based DSP and neural networks working together."""

from __future__ import annotations

__version__ = "0.1.0"

from nsac.audio import read, write  # noqa: E402
from nsac.codecs import list_codecs, load_codec  # noqa: E402

__all__ = ["__version__", "list_codecs", "load_codec", "read", "write"]
