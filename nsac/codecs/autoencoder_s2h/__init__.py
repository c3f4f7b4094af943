"""The soft-to-hard end-to-end codec (after Kankanahalli 2018): causal conv autoencoder, learned centres.

`model` holds the trainable autoencoder (registered for training as "s2h-autoencoder"); `codec` the
`autoencoder-s2h` Codec that runs exported weights frame by frame. Packets reuse the autoencoder codec's
layout (`nsac.codecs.autoencoder.packets`): one code per latent channel and frame, range-coded with the
weights' frozen code frequencies, or fixed-length when that is shorter. Nothing here imports nsac.train.
"""
