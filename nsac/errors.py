"""The nsac exception tree: every error a user can cause is one of these, with a message to act on."""

from __future__ import annotations


class NsacError(Exception):
    """Root of every error nsac raises on purpose."""


class ParameterError(NsacError, ValueError):
    """A parameter (bitrate, sample rate, option, name) is outside what is supported."""


class AudioError(NsacError):
    """Audio cannot be read, written or coded: missing, empty, unreadable, NaN/inf, wrong shape."""


class BitstreamError(NsacError):
    """A .nsac file or packet is corrupt, truncated or foreign."""


class VersionError(BitstreamError):
    """A .nsac file was written by a format version this nsac cannot read."""


class WeightsError(NsacError):
    """Shipped or exported weights are missing, tampered with or do not match a bitstream."""


class DependencyError(NsacError, ImportError):
    """An optional library or system package that a codec needs is not installed."""
