"""NMR-driven bit allocation of the mdct codec (the worst band first) and the bit reservoir that keeps CBR.

Allocation. For one frame (all channels' bands together) the model gives each band its energy ``E_b`` and
its allowed noise ``T_b`` (masking threshold, :mod:`nsac.dsp.masking`); in 1.5 dB units ``smr_b =
10 log10(E_b / T_b) / 1.5``. A band quantized with SNR index ``s`` (:mod:`nsac.codecs.mdct.quantizer`) has
noise ``w step**2 / 12``, i.e. a noise-to-mask ratio of ``smr_b - s - NMR_OFFSET_UNITS`` units. Raising the
band with the worst NMR first until the bits run out ends with every coded band at one common NMR
``theta``: so the loop is

1. a search over ``theta`` (all candidates at once, vectorised): ``s_b = round(smr_b - theta -
   NMR_OFFSET_UNITS)``, bands below 1 left to noise substitution, bits estimated from the entropy model
   (`coefficient_coding.expected_bits_per_coefficient`, corrected by what past frames really cost), and the
   best ``theta`` whose bits fit the budget;
2. quantization at that ``theta`` and an exact count of the bits (the coder's own tables), one ``theta``
   coarser while it does not fit;
3. the worst bands first: the bits left over go to the bands whose measured NMR is highest, one SNR step each,
   in order of NMR, as far as the estimate says they reach (the encoder falls back to step 2's allocation
   in the rare case that the packet then overshoots its limit).

Reservoir. Bits are credited per input sample (``bitrate / sample_rate`` each) and spent per packet,
counting the container's length prefix; a frame may spend what is saved (never more, unless even its
smallest packet does not fit), saved bits are steered back to `target_level_frames` frames, and beyond
`capacity_frames` frames a frame must spend more, and when it cannot (silence, or every band at the finest
step) its packet is stuffed with zero words that the decoder skips. At the end of a stream the frames that
hold the delayed tail share what is left and the last one stuffs the rest, so the whole stream spends the
input's duration times the bitrate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nsac.codecs.mdct import coefficient_coding as _cc
from nsac.codecs.mdct import quantizer as _q

NMR_OFFSET_UNITS = (10.0 * np.log10(12.0) - 20.0 * np.log10(_q.STEP_AT_SNR1)) / _q.SNR_STEP_DB - 1.0
THETA_MIN_UNITS = -48
THETA_MAX_UNITS = 48
THETA_SEARCH_STRIDE = 4
RATE_CORRECTION_SMOOTHING = 0.2
RATE_CORRECTION_LIMITS = (0.5, 2.0)
_ENERGY_FLOOR = 1e-30


@dataclass(frozen=True)
class AllocationTuning:
    """Encoder-side knobs (the decoder needs none of them); tuned on synthetic music and training speech."""

    rounding: float = 0.4
    """Dead zone of the quantizer: values round up from this fraction of a step."""
    short_frame_demand: float = 1.5
    """A frame of short blocks asks the reservoir for this many frames' worth of bits."""
    max_demand: float = 2.5
    reservoir_gain: float = 0.25
    """Fraction of the saved bits above (below) the target level that a frame spends (saves) on top of its
    share."""
    capacity_frames: float = 4.0
    target_level_frames: float = 1.5
    level_offset_db: float = 0.0
    """The masking model hears the signal this much louder than full scale = 96 dB SPL (a lower threshold
    in quiet relative to the signal)."""


def step_indices(e_index: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Step index of every band of one channel for its SNR indices.

    Quantized bands need ``u = 2 e - s``; a band left to noise filling (or silent) may take any ``u >= 2 e``
    and takes the cheapest: the band before's if that is allowed (a zero difference), else ``2 e``.
    """
    needed = _q.ENERGY_TO_SNR_STEPS * e_index
    coded = snr >= 1
    base = np.where(coded, needed - snr, needed)
    # u_b = max(u_{b-1}, 2 e_b) within each run of bands that follows a quantized band: a running maximum
    # that restarts at every quantized band (each run lifted above all the ones before it)
    run = np.cumsum(coded)
    span = int(base.max() - base.min()) + 1
    running = np.maximum.accumulate(base + run * span) - run * span
    return np.where(coded, base, running)


@dataclass
class Allocation:
    """The outcome for one frame: SNR and step index per band and the quantized values in coding order."""

    snr: np.ndarray
    step: np.ndarray
    values: np.ndarray
    """Quantized values of every position (0 in bands with s = 0)."""
    theta: int
    fallback: Allocation | None = None
    """Step 2's allocation, whose exact size fits the limit, when step 3 refined this one by an estimate."""


class Allocator:
    """Runs the allocation loop frame after frame, learning how far the rate estimate is off."""

    def __init__(self, tuning: AllocationTuning) -> None:
        self.tuning = tuning
        self.correction = 1.0
        self._expected = _cc.expected_bits_per_coefficient()
        self._costs = _cc.laplace_costs()
        self._scale_index = _cc.snr_scale_index()
        self._thetas = np.arange(THETA_MIN_UNITS, THETA_MAX_UNITS + 1)
        self.step_bits_per_band = 3.0

    @staticmethod
    def _snr_for(smr_units: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """SNR indices at NMR theta (silent bands have smr_units = -inf and get 0)."""
        s = np.clip(np.rint(smr_units - (theta + NMR_OFFSET_UNITS)), 0, _q.SNR_MAX_INDEX)
        return s.astype(np.int64)

    def _fitting(self, thetas: np.ndarray, smr_units: np.ndarray, widths: np.ndarray, budget_bits: float,
                 step_bits: float) -> int | None:
        """Index of the first of `thetas` whose estimated bits fit the budget, None if none does."""
        snr_grid = self._snr_for(smr_units[None, :], thetas[:, None])
        estimate = (self._expected[snr_grid] * widths[None, :]).sum(axis=1) * self.correction + step_bits
        fitting = np.flatnonzero(estimate <= budget_bits)
        return int(fitting[0]) if fitting.size else None

    def _steps(self, snr: np.ndarray, e_index: np.ndarray, n_channels: int, short: bool
               ) -> tuple[np.ndarray, float]:
        """(step index per band, their exact bits); bands are channel after channel."""
        n_bands = snr.size // n_channels
        parts = [step_indices(e_index[c * n_bands:(c + 1) * n_bands], snr[c * n_bands:(c + 1) * n_bands])
                 for c in range(n_channels)]
        return np.concatenate(parts), sum(_cc.step_bits(u, short=short) for u in parts)

    def _exact(self, coefficients: np.ndarray, snr: np.ndarray, band_of: np.ndarray, e_index: np.ndarray,
               n_channels: int, short: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(step indices, quantized values, coefficient bits, step-index bits) at per-band SNR indices."""
        u, step_bits = self._steps(snr, e_index, n_channels, short)
        s_pos = snr[band_of]
        q = _q.quantize(coefficients, _q.step_size(u)[band_of], rounding=self.tuning.rounding)
        coded = s_pos >= 1
        q = np.where(coded, q, 0)
        coef_bits = float(np.sum(self._costs.bits(q[coded], self._scale_index[s_pos[coded]])))
        return u, q, coef_bits, step_bits

    def allocate(self, *, coefficients: np.ndarray, edges: np.ndarray, energy: np.ndarray,
                 threshold: np.ndarray, e_index: np.ndarray, n_channels: int, budget_bits: float,
                 max_bits: float, short: bool = False) -> Allocation:
        """Choose the SNR index of every band of a frame.

        Parameters
        ----------
        coefficients : float array (n,)
            MDCT coefficients in coding order, all channels one after the other.
        edges : int array (n_bands + 1,)
            Band edges over `coefficients`.
        energy, threshold : float arrays (n_bands,)
            Band energies and allowed noise energies.
        e_index : int array (n_bands,)
            Coded energy indices (silent bands: ``ENERGY_MIN_INDEX``).
        n_channels : int
            The bands are those of each channel in turn, the same number per channel.
        budget_bits, max_bits : float
            Bits the step indices and coefficients should take, and must not exceed.
        short : bool
            A frame of short blocks (its step indices are coded with another model).
        """
        widths = edges[1:] - edges[:-1]
        band_of = np.repeat(np.arange(widths.size), widths)
        audible = e_index > _q.ENERGY_MIN_INDEX
        smr = 10.0 * np.log10(np.maximum(energy, _ENERGY_FLOOR) / np.maximum(threshold, _ENERGY_FLOOR))
        smr_units = np.where(audible, smr / _q.SNR_STEP_DB, -np.inf)

        # 1. the finest theta whose estimate fits: estimated coefficient bits plus the step indices' usual
        # cost, which falls as theta grows, so every `THETA_SEARCH_STRIDE`-th theta first, then the ones
        # before the first that fits
        step_bits_estimate = self.step_bits_per_band * smr_units.size
        coarse = self._fitting(self._thetas[::THETA_SEARCH_STRIDE], smr_units, widths, budget_bits,
                               step_bits_estimate)
        if coarse is None:
            theta = THETA_MAX_UNITS
        else:
            end = coarse * THETA_SEARCH_STRIDE + 1
            fine = self._thetas[max(end - THETA_SEARCH_STRIDE, 0):end]
            theta = int(fine[self._fitting(fine, smr_units, widths, budget_bits, step_bits_estimate)])

        # 2. exact count, one theta coarser while over the limit
        while True:
            snr = self._snr_for(smr_units, np.array(theta))
            u, q, coef_bits, step_bits = self._exact(coefficients, snr, band_of, e_index, n_channels, short)
            if coef_bits + step_bits <= max_bits or theta >= THETA_MAX_UNITS:
                break
            theta += 1
        estimated_coef = float((self._expected[snr] * widths).sum())
        if estimated_coef > 0 and coef_bits > 0:
            ratio = np.clip(coef_bits / estimated_coef, *RATE_CORRECTION_LIMITS)
            self.correction += RATE_CORRECTION_SMOOTHING * (ratio - self.correction)
        self.step_bits_per_band += RATE_CORRECTION_SMOOTHING * (step_bits / snr.size
                                                                - self.step_bits_per_band)

        # 3. the worst bands first, with what is left
        exact = Allocation(snr=snr, step=u, values=q, theta=theta)
        leftover = min(budget_bits, max_bits) - coef_bits - step_bits
        if leftover <= 0:
            return exact
        step_of = _q.step_size(u)[band_of]
        noise = np.add.reduceat((coefficients - q * step_of) ** 2, edges[:-1])
        nmr = noise / np.maximum(threshold, _ENERGY_FLOOR)
        can_rise = audible & (snr < _q.SNR_MAX_INDEX)
        nxt = np.minimum(snr + 1, _q.SNR_MAX_INDEX)
        cost = (self._expected[nxt] - self._expected[snr]) * widths * self.correction + 1.0
        order = np.argsort(-np.where(can_rise, nmr, -np.inf), kind="stable")[: int(can_rise.sum())]
        n_chosen = int(np.searchsorted(np.cumsum(cost[order]), leftover, side="right"))
        if n_chosen == 0:
            return exact
        refined = snr.copy()
        refined[order[:n_chosen]] += 1
        u_refined, _ = self._steps(refined, e_index, n_channels, short)
        q_refined = _q.quantize(coefficients, _q.step_size(u_refined)[band_of], rounding=self.tuning.rounding)
        q_refined *= refined[band_of] >= 1
        return Allocation(snr=refined, step=u_refined, values=q_refined, theta=theta, fallback=exact)


class BitReservoir:
    """Bits credited per input sample and spent per packet, kept exactly in units of bit * sample_rate."""

    def __init__(self, *, bitrate: int, sample_rate: int, frame_size: int, tuning: AllocationTuning) -> None:
        self.bitrate = bitrate
        self.sample_rate = sample_rate
        self.mean_bits = bitrate * frame_size / sample_rate
        self.tuning = tuning
        self._level = 0  # bit * sample_rate

    @property
    def level_bits(self) -> float:
        return self._level / self.sample_rate

    def credit(self, n_samples: int) -> None:
        self._level += self.bitrate * n_samples

    def spend(self, n_bits: int) -> None:
        self._level -= n_bits * self.sample_rate

    def budget(self, *, demand: float, remaining_frames: int | None) -> tuple[float, float]:
        """(target, maximum) bits of the next packet; `remaining_frames` once the input has ended."""
        available = self.level_bits
        if remaining_frames is not None:
            return available / max(remaining_frames, 1), available
        t = self.tuning
        saved = available - self.mean_bits
        target = self.mean_bits * min(demand, t.max_demand)
        target += t.reservoir_gain * (saved - t.target_level_frames * self.mean_bits)
        target = max(target, available - t.capacity_frames * self.mean_bits)
        return min(target, available), available

    def excess_bits(self, n_bits: int, *, remaining_frames: int | None) -> float:
        """Bits a packet of `n_bits` must be stuffed with to keep the rate: what would pass the capacity, or
        at the last frame of a stream everything left."""
        left = self.level_bits - n_bits
        if remaining_frames == 1:
            return max(left, 0.0)
        return max(left - self.tuning.capacity_frames * self.mean_bits, 0.0)


def varint_bytes(value: int) -> int:
    """Bytes of the container's length prefix (LEB128) for a value."""
    n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


__all__ = ["NMR_OFFSET_UNITS", "Allocation", "AllocationTuning", "Allocator", "BitReservoir", "step_indices",
           "varint_bytes"]
