"""The mdct codec's stream encoder: delay line, transient detection, masking model, allocation and packets.

Per input frame of N samples (framing and delay in :mod:`nsac.codecs.mdct.framing`)::

    delay line  p = [N zeros | N/2 zeros | input ...]       (frame t is p[tN, tN + 2N), as nsac.dsp.mdct)
    buffer      p[tN, tN + 2.5N)                            after input frame t arrives
    transients  the newest N samples -> flag of frame t + 1  (nsac.dsp.transient's rule, streamed)
    window      from the flags of frames t - 1, t, t + 1     (nsac.dsp.mdct.window_sequence's rule)
    MDCT        p[tN, tN + 2N) -> N coefficients per channel
    masking     psychoacoustic model 1 over the frame's middle half (or each short block), per coefficient
    bands       energies -> energy indices; [stereo] L/R or M/S; allocation; packet; reservoir

Everything is computed frame by frame from the same samples whatever the sizes of the pushed chunks, so a
stream gives the same packets as a whole file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from nsac.codecs.base import StreamEncoder
from nsac.codecs.mdct import coefficient_coding as _cc
from nsac.codecs.mdct import quantizer as _q
from nsac.codecs.mdct import stereo as _stereo
from nsac.codecs.mdct.allocation import Allocation, AllocationTuning, Allocator, BitReservoir, varint_bytes
from nsac.codecs.mdct.bitstream import (
    PACKET_MAX_OVERHEAD_BITS,
    PACKET_OVERHEAD_BITS,
    WORD_BYTES,
    FrameData,
    write_packet,
)
from nsac.codecs.mdct.framing import N_BLOCKS, BandLayout, Geometry
from nsac.dsp import transient as _transient
from nsac.dsp.masking import N_FFT_SHORT, threshold_per_mdct_bin
from nsac.dsp.mdct import mdct_frame
from nsac.dsp.psychoacoustic import N_FFT, block_threshold_db

GROUP_SPLIT_DB = 6.0
"""A short block starts a new group when its energy differs this much from the group's first block."""
_FLOOR = 1e-20


class TransientTracker:
    """`nsac.dsp.transient.detect_transients`, one frame at a time: push N samples, get that frame's flag."""

    def __init__(self, *, sample_rate: int, n_bins: int, channels: int) -> None:
        self._sos = scipy.signal.butter(_transient.HIGHPASS_ORDER, _transient.HIGHPASS_CUTOFF_HZ,
                                        btype="highpass", fs=sample_rate, output="sos")
        self._zi = np.zeros((self._sos.shape[0], channels, 2))
        self._history = np.full((channels, _transient.N_HISTORY_BLOCKS), _FLOOR)
        self._n_short = n_bins // N_BLOCKS
        self._level_floor = 0.5 * 10.0 ** (_transient.MIN_ATTACK_LEVEL_DBFS / 10.0)

    def push(self, samples: np.ndarray) -> bool:
        filtered, self._zi = scipy.signal.sosfilt(self._sos, samples, axis=-1, zi=self._zi)
        energies = np.mean(filtered.reshape(samples.shape[0], N_BLOCKS, self._n_short) ** 2, axis=-1)
        floored = np.maximum(energies, _FLOOR)
        series = np.concatenate([self._history, floored], axis=1)
        window = _transient.N_HISTORY_BLOCKS
        cumulative = np.cumsum(series, axis=1)
        # mean of the `window` blocks before each new one (series[:, i - window:i] for i = window..)
        previous = (cumulative[:, window - 1:-1] - np.concatenate(
            [np.zeros((series.shape[0], 1)), cumulative[:, :-window - 1]], axis=1)) / window
        ratio_db = 10.0 * np.log10(floored / np.maximum(previous[:, -N_BLOCKS:], _FLOOR))
        self._history = series[:, -window:]
        return bool(np.any((ratio_db > _transient.ATTACK_RATIO_DB) & (energies > self._level_floor)))


def window_type_of(previous: bool, current: bool, following: bool) -> str:
    """The window of a frame from the transient flags of it and its neighbours (window_sequence's rule)."""
    if current or (previous and following):
        return "short"
    if previous:
        return "stop"
    return "start" if following else "long"


def short_groups(coefficients: np.ndarray, n_short: int) -> tuple[int, ...]:
    """Group consecutive short blocks of similar energy; coefficients (channels, N)."""
    block_energy = np.sum(coefficients.reshape(coefficients.shape[0], N_BLOCKS, n_short) ** 2, axis=(0, 2))
    level_db = 10.0 * np.log10(np.maximum(block_energy, _FLOOR))
    groups, first = [1], level_db[0]
    for j in range(1, N_BLOCKS):
        if abs(level_db[j] - first) > GROUP_SPLIT_DB:
            groups.append(1)
            first = level_db[j]
        else:
            groups[-1] += 1
    return tuple(groups)


@dataclass
class _Bands:
    """One channel's frame in coding order."""

    values: np.ndarray
    energy: np.ndarray
    threshold: np.ndarray


class MdctStreamEncoder(StreamEncoder):
    """Stream encoder of the mdct codec (see the module docstring)."""

    def __init__(self, *, geometry: Geometry, channels: int, bitrate: int, window_switching: bool,
                 tuning: AllocationTuning) -> None:
        n = geometry.n_bins
        super().__init__(channels=channels, frame_size=n, algorithmic_delay=geometry.delay)
        self.geometry = geometry
        self.window_switching = window_switching
        self.tuning = tuning
        self._buffer_p = np.zeros((channels, n + n // 2))
        self._tracker = TransientTracker(sample_rate=geometry.sample_rate, n_bins=n, channels=channels)
        self._flags = [False, False]  # frames t - 1 and t
        self._allocator = Allocator(tuning)
        self._reservoir = BitReservoir(bitrate=bitrate, sample_rate=geometry.sample_rate, frame_size=n,
                                       tuning=tuning)
        self._frame_index = 0
        self._next_threshold: np.ndarray | None = None
        self._n_real: int | None = None
        self._remaining: int | None = None
        self.window_types: list[str] = []
        """The window type of every frame coded so far (for diagnostics and tests)."""

    # ------------------------------------------------------------------------------------- stream plumbing
    def flush(self) -> list[bytes]:
        if not self._flushed:
            self._n_real = self._n_pushed
            n_coded = self._frame_index * self.frame_size
            self._remaining = math.ceil((self._n_pushed + self.algorithmic_delay - n_coded) / self.frame_size)
        return super().flush()

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        n = self.frame_size
        t = self._frame_index
        pushed = self._n_pushed if self._n_real is None else self._n_real
        self._reservoir.credit(int(np.clip(pushed - t * n, 0, n)))
        buffer = np.concatenate([self._buffer_p, frame.astype(np.float64)], axis=1)  # p[tN, tN + 2.5N)
        following = self._tracker.push(buffer[:, -n:]) if self.window_switching else False
        window_type = window_type_of(self._flags[0], self._flags[1], following)
        self._flags = [self._flags[1], following]
        remaining = self._remaining
        if self._remaining is not None:
            self._remaining -= 1
        packet = self._code(buffer, window_type, remaining)
        self._buffer_p = buffer[:, n:]
        self._frame_index += 1
        self.window_types.append(window_type)
        return [packet]

    # ------------------------------------------------------------------------------------- analysis
    def _thresholds(self, buffer: np.ndarray, window_type: str) -> np.ndarray:
        """Allowed noise energy per MDCT coefficient, (channels, N), frame layout."""
        gain = 10.0 ** (self.tuning.level_offset_db / 20.0)
        if gain != 1.0:
            return self._model_thresholds(buffer * gain, window_type) / (gain * gain)
        return self._model_thresholds(buffer, window_type)

    def _model_thresholds(self, buffer: np.ndarray, window_type: str) -> np.ndarray:
        """Psychoacoustic model 1 over the frame's middle half (long) or each short block.

        The model costs mostly per call, so a long frame at an even index also analyses the next frame's
        middle half, which the buffer already holds, and the next frame uses it unless it is short (the
        pairing depends on the frame index only, so streams and whole files still agree).
        """
        g = self.geometry
        n = g.n_bins
        if window_type != "short":
            cached, self._next_threshold = self._next_threshold, None
            if cached is not None:
                return cached
            pair = self._frame_index % 2 == 0
            starts = np.array([n // 2, n // 2 + n]) if pair else np.array([n // 2])
            thr = block_threshold_db(buffer, sample_rate=g.sample_rate, starts=starts, length=n, n_fft=N_FFT)
            per_bin = threshold_per_mdct_bin(thr, n_mdct=n)
            if pair:
                self._next_threshold = per_bin[:, 1, :]
            return per_bin[:, 0, :]
        self._next_threshold = None
        starts = n // 2 + g.n_short * np.arange(N_BLOCKS)
        thr = block_threshold_db(buffer, sample_rate=g.sample_rate, starts=starts, length=g.n_short,
                                 n_fft=N_FFT_SHORT)
        return threshold_per_mdct_bin(thr, n_mdct=g.n_short).reshape(self.channels, n)

    def _bands(self, coefficients: np.ndarray, threshold: np.ndarray, layout: BandLayout) -> _Bands:
        values = coefficients[layout.order]
        starts = layout.edges[:-1]
        energy = np.add.reduceat(values * values, starts)
        band_threshold = np.minimum.reduceat(threshold[layout.order], starts) * layout.widths
        return _Bands(values=values, energy=energy, threshold=band_threshold)

    def _channel_bands(self, coefficients: np.ndarray, threshold: np.ndarray, layout: BandLayout
                       ) -> tuple[list[_Bands], bool]:
        """The bands of every channel to code and whether they are mid and side."""
        lr = [self._bands(coefficients[c], threshold[c], layout) for c in range(self.channels)]
        if self.channels == 1:
            return lr, False
        # decide on band energies (M/S ones from L/R ones and cross products); rotate only if M/S wins
        lr_energy, lr_threshold = np.stack([b.energy for b in lr]), np.stack([b.threshold for b in lr])
        cross = np.add.reduceat(lr[0].values * lr[1].values, layout.edges[:-1])
        ms_threshold = _stereo.mid_side_threshold(lr_threshold)
        if not _stereo.choose_mid_side(lr_energy, lr_threshold, _stereo.mid_side_energy(lr_energy, cross),
                                       ms_threshold, layout.widths):
            return lr, False
        rotated = _stereo.rotate(np.stack([b.values for b in lr]))
        return [_Bands(values=v, energy=np.add.reduceat(v * v, layout.edges[:-1]), threshold=t)
                for v, t in zip(rotated, ms_threshold, strict=True)], True

    def _code(self, buffer: np.ndarray, window_type: str, remaining: int | None) -> bytes:
        g = self.geometry
        short = window_type == "short"
        coefficients = mdct_frame(buffer[:, : 2 * g.n_bins], window_type=window_type)
        threshold = self._thresholds(buffer, window_type)
        groups = short_groups(coefficients, g.n_short) if short else ()
        layout = g.layout(window_type, groups)
        bands, mid_side = self._channel_bands(coefficients, threshold, layout)
        e_index = [_q.energy_index(b.energy / layout.widths) for b in bands]

        demand = self.tuning.short_frame_demand if short else 1.0
        target, maximum = self._reservoir.budget(demand=demand, remaining_frames=remaining)
        length_bits = 8.0 * varint_bytes(int(target / 8) + 1)
        fixed = (8.0 if short else 0.0) + length_bits + sum(_cc.energy_bits(e, short=short) for e in e_index)
        allocation = self._allocator.allocate(
            coefficients=np.concatenate([b.values for b in bands]),
            edges=np.concatenate([[0], np.cumsum(np.tile(layout.widths, len(bands)))]),
            energy=np.concatenate([b.energy for b in bands]),
            threshold=np.concatenate([b.threshold for b in bands]),
            e_index=np.concatenate(e_index), n_channels=len(bands),
            budget_bits=target - fixed - PACKET_OVERHEAD_BITS,
            max_bits=maximum - fixed - PACKET_MAX_OVERHEAD_BITS, short=short)

        def packet_of(chosen: Allocation, padding_words: int = 0) -> bytes:
            frame = FrameData(window_type=window_type, mid_side=mid_side, groups=groups, energy=e_index,
                              step=[], values=[])
            _split_channels(chosen, layout, frame)
            return write_packet(frame, g, padding_words=padding_words)

        packet = packet_of(allocation)
        if len(packet) > (maximum - length_bits) / 8.0 and allocation.fallback is not None:
            allocation = allocation.fallback
            packet = packet_of(allocation)
        excess = self._reservoir.excess_bits(_spent_bits(packet), remaining_frames=remaining)
        if excess >= 8 * WORD_BYTES + 8:  # whole words, and room for a longer length prefix
            packet = packet_of(allocation, int((excess - 8) // (8 * WORD_BYTES)))
        self._reservoir.spend(_spent_bits(packet))
        return packet


def _spent_bits(packet: bytes) -> int:
    """Bits a packet costs in a .nsac file: its bytes and its length prefix."""
    return 8 * (len(packet) + varint_bytes(len(packet) + 1))


def _split_channels(allocation: Allocation, layout: BandLayout, frame: FrameData) -> None:
    """Fill a frame's per-channel step indices and quantized values of its quantized bands."""
    n_bands, n_coded = layout.n_bands, int(layout.edges[-1])
    for c in range(len(frame.energy)):
        snr = allocation.snr[c * n_bands:(c + 1) * n_bands]
        frame.step.append(allocation.step[c * n_bands:(c + 1) * n_bands])
        values = allocation.values[c * n_coded:(c + 1) * n_coded]
        frame.values.append(values[np.repeat(snr, layout.widths) >= 1])


__all__ = ["GROUP_SPLIT_DB", "MdctStreamEncoder", "TransientTracker", "short_groups", "window_type_of"]
