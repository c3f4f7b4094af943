"""The end-to-end neural codec (SoundStream/EnCodec family): causal conv autoencoder with residual VQ.

`model` holds the trainable autoencoder (registered for training as "soundstream"); `packets` the packet
layout (fixed-length codes or range-coded codes); `codec` the `autoencoder` Codec that runs shipped weights
frame by frame. Nothing here imports nsac.train.
"""
