"""Frame geometry of the mdct codec: MDCT size per rate, scale-factor bands, block groups, low-pass, delay.

Frame size. The hop ``N`` (= `Codec.frame_size`, one packet per hop) is 1024 samples at 32-48 kHz and 512 at
16-24 kHz: a hop of 21-32 ms as in AAC-LC, with MDCT bins of 15.6-23.4 Hz. 1024 at 16 kHz would be a 64 ms
hop whose pre-echo spreads twice as far; 512 at 48 kHz would double the side information per second.

Delay. A frame is the MDCT of ``2N`` samples advancing by ``N`` (:mod:`nsac.dsp.mdct`), which delays the
output by ``N``; choosing frame t's window needs the transient flags of frame t + 1, i.e. the signal up to
half a frame past frame t's end (:mod:`nsac.dsp.transient`). The encoder therefore codes the input delayed
by ``N / 2`` and::

    algorithmic_delay = N + N / 2        (1536 samples = 32 ms at 48 kHz, 768 = 48 ms at 16 kHz)

Bands. Long frames use :func:`nsac.dsp.bark.bark_band_edges` (0.5 Bark, 4..32 bins: 56 bands at 48 kHz);
the eight short blocks of a short frame use 1 Bark bands of 4..16 bins (15 bands at 48 kHz). Consecutive
short blocks are *grouped* (as in AAC): a group shares one energy and one step per band, and its band ``b``
is the band's coefficients of every block of the group, block after block (the "coding order").

Low-pass. Bands starting above `cutoff_hz` (a function of the bitrate per channel) are not coded at all.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import numpy as np

from nsac.dsp import mdct as _mdct
from nsac.dsp.bark import bark_band_edges
from nsac.errors import ParameterError

SAMPLE_RATES_HZ = (16000, 22050, 24000, 32000, 44100, 48000)
LONG_HOP_MIN_RATE_HZ = 32000
"""At this rate and above the hop is `LONG_HOP_SAMPLES`, below it `SHORT_HOP_SAMPLES`."""
LONG_HOP_SAMPLES = 1024
SHORT_HOP_SAMPLES = 512
N_BLOCKS = _mdct.N_SHORT_BLOCKS
LONG_BAND_WIDTH_BARK, LONG_BAND_MIN_BINS, LONG_BAND_MAX_BINS = 0.75, 4, 32
SHORT_BAND_WIDTH_BARK, SHORT_BAND_MIN_BINS, SHORT_BAND_MAX_BINS = 1.0, 4, 16
#: (bit/s per channel, audio bandwidth in Hz), interpolated in log bitrate. Noise substitution makes the
#: bands above ~12 kHz cost little more than their energies, so on synthetic music and speech the full band
#: won in ViSQOL (and lost under 1 dB of NMR) from 24 kb/s per channel up; at 16 kb/s the energies of a full
#: band would take two thirds of a frame, and a 16 kHz low-pass gives the better NMR.
CUTOFF_TABLE_HZ: tuple[tuple[int, float], ...] = ((16000, 16000.0), (24000, 24000.0))


def hop_samples(sample_rate: int) -> int:
    """The MDCT hop N (coefficients per frame) at a sample rate in Hz."""
    return LONG_HOP_SAMPLES if sample_rate >= LONG_HOP_MIN_RATE_HZ else SHORT_HOP_SAMPLES


def cutoff_hz(bitrate_per_channel_bps: float, sample_rate: int) -> float:
    """The low-pass for a bitrate per channel: `CUTOFF_TABLE_HZ` interpolated in log rate, at most Nyquist."""
    rates = [math.log(r) for r, _ in CUTOFF_TABLE_HZ]
    cutoffs = [c for _, c in CUTOFF_TABLE_HZ]
    x = math.log(max(bitrate_per_channel_bps, 1.0))
    i = bisect.bisect_right(rates, x)
    if i == 0:
        value = cutoffs[0]
    elif i == len(rates):
        value = cutoffs[-1]
    else:
        frac = (x - rates[i - 1]) / (rates[i] - rates[i - 1])
        value = cutoffs[i - 1] + frac * (cutoffs[i] - cutoffs[i - 1])
    return min(value, sample_rate / 2.0)


@dataclass(frozen=True, eq=False)
class BandLayout:
    """The bands of one frame in coding order.

    Attributes
    ----------
    order : int array (n_coded,)
        Coefficient index (into the frame's N coefficients) of each coded position, band after band.
    edges : int array (n_bands + 1,)
        Band b is ``order[edges[b]:edges[b + 1]]``.
    band_of_position : int array (n_coded,)
    """

    order: np.ndarray
    edges: np.ndarray
    band_of_position: np.ndarray
    widths: np.ndarray
    """int array (n_bands,): coefficients per band."""

    @property
    def n_bands(self) -> int:
        return self.edges.size - 1


@dataclass(frozen=True, eq=False)
class Geometry:
    """All of a frame that follows from the sample rate and bitrate (shared by encoder and decoder)."""

    sample_rate: int
    n_bins: int
    long_edges: np.ndarray
    short_edges: np.ndarray
    n_long_bands: int
    """Long bands coded (below the cutoff)."""
    n_short_bands: int
    cutoff_hz: float

    @property
    def n_short(self) -> int:
        return self.n_bins // N_BLOCKS

    @property
    def delay(self) -> int:
        return self.n_bins + self.n_bins // 2

    def layout(self, window_type: str, groups: tuple[int, ...] = ()) -> BandLayout:
        """The band layout of a frame of a window type; `groups` are the short-block group lengths."""
        if window_type != "short":
            return _long_layout(self.long_edges[: self.n_long_bands + 1].tobytes())
        return _short_layout(self.short_edges[: self.n_short_bands + 1].tobytes(), self.n_short, groups)


def _freeze(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=64)
def _long_layout(edges_bytes: bytes) -> BandLayout:
    edges = np.frombuffer(edges_bytes, dtype=np.int64).copy()
    order = np.arange(edges[-1], dtype=np.int64)
    widths = np.diff(edges)
    return BandLayout(order=_freeze(order), edges=_freeze(edges), widths=_freeze(widths),
                      band_of_position=_freeze(np.repeat(np.arange(edges.size - 1), widths)))


@functools.lru_cache(maxsize=512)
def _short_layout(edges_bytes: bytes, n_short: int, groups: tuple[int, ...]) -> BandLayout:
    edges = np.frombuffer(edges_bytes, dtype=np.int64)
    order, band_edges = [], [0]
    first_block = 0
    for length in groups:
        for b in range(edges.size - 1):
            for block in range(first_block, first_block + length):
                order.append(block * n_short + np.arange(edges[b], edges[b + 1]))
            band_edges.append(band_edges[-1] + length * int(edges[b + 1] - edges[b]))
        first_block += length
    flat = np.concatenate(order).astype(np.int64)
    band_edges_arr = np.asarray(band_edges, dtype=np.int64)
    widths = np.diff(band_edges_arr)
    return BandLayout(order=_freeze(flat), edges=_freeze(band_edges_arr), widths=_freeze(widths),
                      band_of_position=_freeze(np.repeat(np.arange(widths.size), widths)))


@functools.lru_cache(maxsize=64)
def geometry(sample_rate: int, bitrate_per_channel_bps: int) -> Geometry:
    """The frame geometry of the codec at a sample rate (Hz) and bitrate per channel (bit/s)."""
    if sample_rate not in SAMPLE_RATES_HZ:
        raise ParameterError(f"mdct: sample_rate={sample_rate} Hz is not one of {SAMPLE_RATES_HZ}")
    n_bins = hop_samples(sample_rate)
    long_edges = bark_band_edges(n_bins, sample_rate=sample_rate, width_bark=LONG_BAND_WIDTH_BARK,
                                 min_bins=LONG_BAND_MIN_BINS, max_bins=LONG_BAND_MAX_BINS)
    short_edges = bark_band_edges(n_bins // N_BLOCKS, sample_rate=sample_rate,
                                  width_bark=SHORT_BAND_WIDTH_BARK, min_bins=SHORT_BAND_MIN_BINS,
                                  max_bins=SHORT_BAND_MAX_BINS)
    cutoff = cutoff_hz(bitrate_per_channel_bps, sample_rate)
    bin_hz = sample_rate / (2.0 * n_bins)
    n_long = max(1, int(np.searchsorted(long_edges[:-1] * bin_hz, cutoff, side="left")))
    n_short = max(1, int(np.searchsorted(short_edges[:-1] * bin_hz * N_BLOCKS, cutoff, side="left")))
    return Geometry(sample_rate=sample_rate, n_bins=n_bins, long_edges=_freeze(long_edges),
                    short_edges=_freeze(short_edges), n_long_bands=n_long, n_short_bands=n_short,
                    cutoff_hz=cutoff)


__all__ = ["CUTOFF_TABLE_HZ", "N_BLOCKS", "SAMPLE_RATES_HZ", "BandLayout", "Geometry", "cutoff_hz",
           "geometry", "hop_samples"]
