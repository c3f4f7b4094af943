"""LPCNet (Valin & Skoglund 2019), the 1.6 kb/s neural vocoder codec: for now its shipped VQ codebooks.

The features live in :mod:`nsac.dsp.features`, the packet format in :mod:`nsac.quant.lpcnet_quantizer`; the
model, the fast decoder and the registered codec come next (see issue 6).
"""
