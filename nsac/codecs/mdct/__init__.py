"""The `mdct` codec: MDCT with window switching, psychoacoustic model 1, NMR-driven allocation, range coding.

The codec class is :class:`nsac.codecs.mdct.codec.MdctCodec`, registered as ``"mdct"``; its docstring lists
the modules of this package.
"""

from nsac.codecs.mdct.codec import MdctCodec

__all__ = ["MdctCodec"]
