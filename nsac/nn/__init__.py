"""Reusable layers: causal convolutions and GRU blocks that stream with explicit state, GAN discriminators."""
