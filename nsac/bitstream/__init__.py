"""Bitstreams: the .nsac container (FORMAT.md is its spec), varints and entropy coding."""
