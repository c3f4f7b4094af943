"""Neural post-filters: enhancers that run after a frozen legacy decoder, bitrate-free (paper section 3).

`model` holds the causal STFT-domain enhancer (trainable, streaming); `registry` maps (codec, bitrate) to
the shipped weights; `codec` wraps a legacy codec and its enhancer as one Codec. Nothing here imports
nsac.train: the training side registers the model class by name.
"""
