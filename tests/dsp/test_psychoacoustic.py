"""Tests for psychoacoustic model 1 (nsac.dsp.bark, .psychoacoustic, .masking, .transient) against its
published formulas and behaviour (ISO/IEC 11172-3 Annex D; Painter & Spanias, Proc. IEEE 2000)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nsac.dsp import mdct, psychoacoustic
from nsac.dsp.bark import bark, bark_band_edges, threshold_in_quiet_db
from nsac.dsp.masking import (
    band_energy,
    band_threshold,
    mdct_frame_thresholds,
    nmr_db,
    noise_at_threshold,
    smr_db,
    threshold_per_mdct_bin,
)
from nsac.dsp.transient import detect_transients, perceptual_entropy
from nsac.errors import ParameterError

RATES_HZ = psychoacoustic.TESTED_SAMPLE_RATES_HZ
N_FFT = psychoacoustic.N_FFT
FORMULA_TOLERANCE_DB = 0.01  # the model's float32 stage is good to about 1e-4 dB
NOISE_CEILING_DB = 60.0  # shaped test noise stays below this (Tq exceeds 100 dB near 20 kHz)


def _bin_tone(bin_index: float, *, amplitude: float, rate_hz: int, seconds: float = 0.5,
              n_fft: int = N_FFT) -> np.ndarray:
    """A sine at FFT bin ``bin_index`` (a bin centre when integer: no leakage into other Hann bins)."""
    n = np.arange(int(seconds * rate_hz))
    return amplitude * np.sin(2 * np.pi * bin_index * n / n_fft + 0.7)


def _pink(n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, n_samples)
    return noise / np.std(noise)


def _tonal_bins(levels_db: np.ndarray) -> np.ndarray:
    return np.flatnonzero(levels_db > -np.inf)


# ---------------------------------------------------------------- formulas


def test_threshold_in_quiet_takes_its_published_values() -> None:
    values = threshold_in_quiet_db([100.0, 1000.0, 3300.0, 4000.0])
    assert values[0] == pytest.approx(23.0, abs=0.1)  # about 23 dB at 100 Hz
    assert values[1] == pytest.approx(3.37, abs=0.01)  # 3.4 dB at 1 kHz
    assert values[2] == pytest.approx(-5.0, abs=0.05)  # the minimum, about -5 dB near 3.3 kHz
    assert values[3] == pytest.approx(-3.39, abs=0.01)  # the formula at 4 kHz, still near the minimum
    grid = np.linspace(20.0, 20_000.0, 20_000)
    assert grid[np.argmin(threshold_in_quiet_db(grid))] == pytest.approx(3300.0, abs=100.0)


def test_bark_scale_takes_its_published_values() -> None:
    assert bark(1000.0) == pytest.approx(8.51, abs=0.01)
    assert bark(100.0) == pytest.approx(0.99, abs=0.01)
    assert bark(24_000.0) == pytest.approx(24.87, abs=0.01)
    assert np.all(np.diff(bark(np.linspace(0.0, 24_000.0, 1000))) > 0)


def test_spreading_function_has_the_published_slopes() -> None:
    level = 80.0
    sf = psychoacoustic.spreading_function_db
    assert sf(0.0, level) == 0.0
    assert sf(1.0, level) == pytest.approx(-17.0)  # 17 dB/Bark upward up to 1 Bark, at any level
    assert sf(0.5, level) == pytest.approx(-8.5)
    assert sf(3.0, level) - sf(2.0, level) == pytest.approx(0.15 * level - 17.0)
    assert sf(-1.0, level) == pytest.approx(-0.4 * level - 6.0)
    assert sf(-2.0, level) - sf(-1.0, level) == pytest.approx(-17.0)  # 17 dB/Bark downward below -1 Bark
    assert sf(-3.01, level) == -np.inf and sf(8.0, level) == -np.inf


# ---------------------------------------------------------------- tones


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_a_tone_yields_exactly_one_tonal_masker_at_its_bin(rate_hz: int) -> None:
    k = round(1000.0 * N_FFT / rate_hz)  # the bin nearest 1 kHz
    masking = psychoacoustic.masking_threshold(_bin_tone(k, amplitude=0.5, rate_hz=rate_hz),
                                               sample_rate=rate_hz)
    inner = slice(2, -2)  # frames wholly inside the tone
    for tonal, noise in zip(masking.tonal_db[inner], masking.noise_db[inner]):
        assert _tonal_bins(tonal).tolist() == [k]
        # power sum of bins k-1, k, k+1 of a bin-centred Hann-windowed sine: peak +10 log10(1.5)
        assert tonal[k] == pytest.approx(96.0 + 20 * np.log10(0.5) + 10 * np.log10(1.5), abs=1e-6)
        assert not np.any(noise > -np.inf)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_a_tone_masks_its_neighbours_by_the_spreading_function(rate_hz: int) -> None:
    k = round(1000.0 * N_FFT / rate_hz)
    masking = psychoacoustic.masking_threshold(_bin_tone(k, amplitude=0.5, rate_hz=rate_hz),
                                               sample_rate=rate_hz)
    z = masking.tables.bark
    threshold, level = masking.threshold_db[4], masking.tonal_db[4][k]
    # +1 Bark: about P - 0.275 z - 6.025 - 17 dB
    above = int(np.argmin(np.abs(z - (z[k] + 1.0))))
    expected = level - 0.275 * z[k] - 6.025 + psychoacoustic.spreading_function_db(z[above] - z[k], level)
    assert threshold[above] == pytest.approx(expected, abs=FORMULA_TOLERANCE_DB)
    assert threshold[above] == pytest.approx(level - 0.275 * z[k] - 6.025 - 17.0, abs=3.0)
    # everywhere the tone's threshold stands 10 dB over the threshold in quiet: the formula, bin by bin
    individual = psychoacoustic.individual_threshold_db(level, masker_bark=z[k], maskee_bark=z, tonal=True)
    audible = individual > masking.tables.threshold_in_quiet_db + 10.0
    assert audible.sum() >= 5
    np.testing.assert_allclose(threshold[audible], individual[audible], atol=0.5)
    # slopes between neighbouring maskee bins follow the spreading function (where Tq adds < 0.05 dB)
    clear = individual > masking.tables.threshold_in_quiet_db + 20.0
    upper_bins = np.flatnonzero(clear & (z - z[k] >= 1.0))
    if upper_bins.size >= 2:
        slope = np.diff(threshold[upper_bins]) / np.diff(z[upper_bins])
        np.testing.assert_allclose(slope, 0.15 * level - 17.0, atol=0.5)
    lower_bins = np.flatnonzero(clear & (z - z[k] < -1.0))
    if lower_bins.size >= 2:
        slope = np.diff(threshold[lower_bins]) / np.diff(z[lower_bins])
        np.testing.assert_allclose(slope, 17.0, atol=0.5)


def test_an_exactly_1_khz_tone_between_bins_gives_the_same_masking() -> None:
    rate_hz = 44_100
    n = np.arange(rate_hz // 2)
    masking = psychoacoustic.masking_threshold(0.5 * np.sin(2 * np.pi * 1000.0 * n / rate_hz),
                                               sample_rate=rate_hz)
    z = masking.tables.bark
    for frame in range(2, masking.threshold_db.shape[0] - 2):
        tonal = masking.tonal_db[frame]
        assert _tonal_bins(tonal).tolist() == [12]  # 1 kHz lies in bin 11.6: the peak is bin 12
        above = int(np.argmin(np.abs(z - (z[12] + 1.0))))
        formula = psychoacoustic.individual_threshold_db(tonal[12], masker_bark=z[12], maskee_bark=z[above],
                                                         tonal=True)
        assert masking.threshold_db[frame][above] == pytest.approx(formula, abs=0.5)


def test_decimation_keeps_the_stronger_of_two_maskers_within_half_a_bark() -> None:
    rate_hz = 44_100
    tables = psychoacoustic.model_tables(sample_rate=rate_hz)
    assert tables.bark[150] - tables.bark[140] < 0.5 < tables.bark[170] - tables.bark[140]
    close = _bin_tone(140, amplitude=0.1, rate_hz=rate_hz) + _bin_tone(150, amplitude=0.05, rate_hz=rate_hz)
    far = _bin_tone(140, amplitude=0.1, rate_hz=rate_hz) + _bin_tone(170, amplitude=0.05, rate_hz=rate_hz)
    louder_second = _bin_tone(140, amplitude=0.1, rate_hz=rate_hz) + _bin_tone(150, amplitude=0.2,
                                                                                 rate_hz=rate_hz)
    for signal, kept in ((close, [140]), (far, [140, 170]), (louder_second, [150])):
        masking = psychoacoustic.masking_threshold(signal, sample_rate=rate_hz)
        assert _tonal_bins(masking.tonal_db[5]).tolist() == kept


def test_maskers_under_the_threshold_in_quiet_are_dropped_and_silence_leaves_it() -> None:
    rate_hz = 48_000
    quiet_tone = _bin_tone(20, amplitude=10 ** (-100 / 20), rate_hz=rate_hz)  # -4 dB SPL at 1.9 kHz
    for signal in (quiet_tone, np.zeros(rate_hz // 4)):
        masking = psychoacoustic.masking_threshold(signal, sample_rate=rate_hz)
        assert not np.any(masking.tonal_db > -np.inf) and not np.any(masking.noise_db > -np.inf)
        np.testing.assert_allclose(masking.threshold_db,
                                   np.broadcast_to(masking.tables.threshold_in_quiet_db,
                                                   masking.threshold_db.shape), atol=1e-9)


# ---------------------------------------------------------------- noise and level


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_is_masked_by_non_tonal_maskers(rate_hz: int, colour: str) -> None:
    """Model 1's tonality test (a local maximum 7 dB over the bins at +-dk) reads a single periodogram, so
    in noise about 3% of the low bins (dk = 2 only) pass it by chance and about two weak "tonal" maskers
    per frame survive decimation: a property of the standard's model, kept. What the model must do with
    noise, and does, is let non-tonal maskers (one per critical band) carry the masking."""
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(rate_hz) if colour == "white" else _pink(rate_hz, rng=rng)
    masking = psychoacoustic.masking_threshold(0.1 * noise / np.std(noise), sample_rate=rate_hz)
    tonal, non_tonal = masking.tonal_db > -np.inf, masking.noise_db > -np.inf
    n_bands = masking.tables.band_start.size
    assert np.mean(non_tonal.sum(axis=1)) > 0.75 * n_bands
    assert tonal.sum() < 0.15 * (tonal.sum() + non_tonal.sum())
    tonal_power = np.sum(10 ** (masking.tonal_db[tonal] / 10))
    non_tonal_power = np.sum(10 ** (masking.noise_db[non_tonal] / 10))
    assert tonal_power < 0.1 * (tonal_power + non_tonal_power)
    # a tone in the same noise is found in every frame
    k = round(2000 * N_FFT / rate_hz)
    with_tone = 0.01 * noise / np.std(noise) + _bin_tone(k, amplitude=0.3, rate_hz=rate_hz, seconds=1.0)
    masking = psychoacoustic.masking_threshold(with_tone, sample_rate=rate_hz)
    assert np.all(masking.tonal_db[1:-1, k] > -np.inf)


def test_the_threshold_follows_the_level_of_the_input() -> None:
    rate_hz = 44_100
    rng = np.random.default_rng(3)
    k = 30
    signal = 0.05 * rng.standard_normal(rate_hz) + _bin_tone(k, amplitude=0.3, rate_hz=rate_hz, seconds=1.0)
    loud = psychoacoustic.masking_threshold(signal, sample_rate=rate_hz)
    quiet = psychoacoustic.masking_threshold(0.1 * signal, sample_rate=rate_hz)  # -20 dB
    assert np.all(quiet.threshold_db <= loud.threshold_db + 1e-6)
    # at the tone itself (spreading 0 dB) the threshold moves with the level exactly
    np.testing.assert_allclose(loud.threshold_db[2:-2, k] - quiet.threshold_db[2:-2, k], 20.0, atol=0.05)
    masked = loud.threshold_db - loud.tables.threshold_in_quiet_db > 40.0
    assert np.median((loud.threshold_db - quiet.threshold_db)[masked]) == pytest.approx(20.0, abs=3.0)
    # calibrated per frame, the threshold ignores the level (the authors' public code)
    peak_loud = psychoacoustic.masking_threshold(signal, sample_rate=rate_hz, level="frame_peak")
    peak_quiet = psychoacoustic.masking_threshold(0.1 * signal, sample_rate=rate_hz, level="frame_peak")
    np.testing.assert_allclose(peak_loud.threshold_db, peak_quiet.threshold_db, atol=1e-6)


@pytest.mark.parametrize("n_fft", psychoacoustic.N_FFT_CHOICES)
def test_every_fft_size_finds_a_tone_and_calibrates_it_to_full_scale(n_fft: int) -> None:
    rate_hz = 48_000
    k = n_fft // 16
    masking = psychoacoustic.masking_threshold(_bin_tone(k, amplitude=1.0, rate_hz=rate_hz, n_fft=n_fft),
                                               sample_rate=rate_hz, n_fft=n_fft)
    assert masking.psd_db[3].max() == pytest.approx(psychoacoustic.FULL_SCALE_SPL_DB, abs=1e-9)
    assert _tonal_bins(masking.tonal_db[3]).tolist() == [k]


def test_frames_in_any_batch_shape_give_the_same_result() -> None:
    rate_hz = 32_000
    frames = np.random.default_rng(5).standard_normal((2, 3, N_FFT)) * 0.1
    together = psychoacoustic.analyze(frames, sample_rate=rate_hz)
    assert together.threshold_db.shape == (2, 3, N_FFT // 2 + 1)
    alone = psychoacoustic.analyze(frames[1, 2], sample_rate=rate_hz)
    np.testing.assert_array_equal(together.threshold_db[1, 2], alone.threshold_db)
    np.testing.assert_array_equal(together.tonal_db[1, 2], alone.tonal_db)


def test_bad_rates_and_sizes_raise_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="sample_rate=96000"):
        psychoacoustic.masking_threshold(np.zeros(1000), sample_rate=96_000)
    with pytest.raises(ParameterError, match="n_fft=500"):
        psychoacoustic.analyze(np.zeros(500), sample_rate=48_000)
    with pytest.raises(ParameterError, match="level"):
        psychoacoustic.analyze(np.zeros(512), sample_rate=48_000, level="loud")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="band_edges"):
        band_threshold(np.ones(16), band_edges=[0, 8, 12])


def test_model_runs_well_under_a_millisecond_per_frame() -> None:
    rate_hz = 48_000
    rng = np.random.default_rng(2)
    signal = 0.1 * _pink(rate_hz, rng=rng) + _bin_tone(40, amplitude=0.2, rate_hz=rate_hz, seconds=1.0)
    frames = psychoacoustic.frames_at(signal, centres=np.arange(0, rate_hz, N_FFT), n_fft=N_FFT)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        psychoacoustic.analyze(frames, sample_rate=rate_hz)
        best = min(best, time.perf_counter() - start)
    assert best / frames.shape[0] < 1e-3  # measured about 0.08 ms per frame on one core


# ---------------------------------------------------------------- MDCT domain, SMR and NMR


def test_allowed_mdct_energy_is_calibrated_to_the_orthonormal_mdct() -> None:
    rate_hz, sigma = 48_000, 0.01
    noise = sigma * np.random.default_rng(11).standard_normal(4 * rate_hz)
    masking = psychoacoustic.masking_threshold(noise, sample_rate=rate_hz)
    mean_psd_db = 10 * np.log10(np.mean(10 ** (masking.psd_db / 10), axis=0))
    for n_mdct in (1024, 128):
        density = threshold_per_mdct_bin(mean_psd_db, n_mdct=n_mdct, reduce="mean")
        assert np.median(density) == pytest.approx(sigma ** 2, rel=0.03)
        coefficients = mdct.mdct_analysis(noise, n_bins=n_mdct)[1:-1]
        assert np.mean(coefficients ** 2) == pytest.approx(sigma ** 2, rel=0.02)
    lowest = threshold_per_mdct_bin(masking.threshold_db, n_mdct=256, reduce="min")
    assert np.all(lowest <= threshold_per_mdct_bin(masking.threshold_db, n_mdct=256, reduce="mean") * (1 + 1e-12))


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_noise_shaped_under_the_mask_has_negative_nmr_and_noise_over_it_positive(rate_hz: int) -> None:
    rng = np.random.default_rng(rate_hz)
    n = np.arange(2 * rate_hz)
    reference = (0.05 * _pink(n.size, rng=rng) + 0.2 * np.sin(2 * np.pi * 440 * n / rate_hz)
                 + 0.05 * np.sin(2 * np.pi * 3000 * n / rate_hz))
    masking = psychoacoustic.masking_threshold(reference, sample_rate=rate_hz)
    lowest = np.minimum(masking.threshold_db.min(axis=0), NOISE_CEILING_DB)
    typical = np.minimum(np.median(masking.threshold_db, axis=0), NOISE_CEILING_DB)
    n_bins = 1024
    edges = bark_band_edges(n_bins, sample_rate=rate_hz)
    allowed = band_threshold(mdct_frame_thresholds(reference, sample_rate=rate_hz, n_bins=n_bins),
                             band_edges=edges, reduce="sum")[1:-1]
    # under: 6 dB below the lowest mask of any frame; over: 10 dB above the median mask, below 12 kHz
    under = noise_at_threshold(lowest, n_samples=n.size, offset_db=-6.0, rng=rng)
    nmr = nmr_db(band_energy(mdct.mdct_analysis(under, n_bins=n_bins), band_edges=edges)[1:-1], allowed)
    assert np.mean(nmr < 0) > 0.99
    assert np.mean(nmr) < -6.0
    over = noise_at_threshold(typical, n_samples=n.size, offset_db=10.0, rng=rng)
    nmr = nmr_db(band_energy(mdct.mdct_analysis(over, n_bins=n_bins), band_edges=edges)[1:-1], allowed)
    below_12_khz = edges[1:] * rate_hz / (2 * n_bins) <= 12_000
    assert np.median(nmr[:, below_12_khz]) > 5.0
    signal_energy = band_energy(mdct.mdct_analysis(reference, n_bins=n_bins), band_edges=edges)[1:-1]
    smr = smr_db(signal_energy, allowed)
    tone_band = np.searchsorted(edges, 440 * 2 * n_bins / rate_hz, side="right") - 1
    # a tone stands above its own mask by its masking index, 6.025 + 0.275 z dB
    assert np.median(smr[:, tone_band]) > 6.0


def test_band_threshold_min_is_the_narrowest_reading_and_sum_the_total() -> None:
    per_bin = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 1.0])
    edges = [0, 2, 6]
    np.testing.assert_allclose(band_threshold(per_bin, band_edges=edges, reduce="min"), [2.0, 4.0])
    np.testing.assert_allclose(band_threshold(per_bin, band_edges=edges, reduce="sum"), [3.0, 18.0])


def test_mdct_frame_thresholds_of_short_blocks_see_the_quiet_before_an_attack() -> None:
    rate_hz, n_bins = 48_000, 1024
    rng = np.random.default_rng(4)
    signal = 1e-3 * rng.standard_normal(rate_hz // 2)
    frame, attack_block = 10, 3
    n_short = n_bins // mdct.N_SHORT_BLOCKS
    onset = frame * n_bins - n_bins // 2 + attack_block * n_short + n_short // 2  # mid short block 3
    signal[onset:] += 0.3 * rng.standard_normal(signal.size - onset)
    flags = detect_transients(signal, sample_rate=rate_hz, n_bins=n_bins)
    assert np.flatnonzero(flags[1:]).tolist() == [frame - 1]
    sequence = mdct.window_sequence(flags)
    assert sequence[frame] == "short"
    allowed = mdct_frame_thresholds(signal, sample_rate=rate_hz, n_bins=n_bins, sequence=sequence)
    assert allowed.shape == (mdct.n_frames(signal.size, n_bins=n_bins), n_bins)
    blocks = allowed[frame].reshape(mdct.N_SHORT_BLOCKS, -1)
    before, after = np.median(blocks[: attack_block - 1], axis=1), np.median(blocks[attack_block + 2:], axis=1)
    assert np.max(before) * 100 < np.min(after)  # the mask rises with the attack, 20 dB and more


# ---------------------------------------------------------------- transients


def test_transient_detector_finds_attacks_and_ignores_steady_sounds() -> None:
    rate_hz, n_bins = 44_100, 1024
    rng = np.random.default_rng(8)
    n = np.arange(2 * rate_hz)
    steady = 0.2 * np.sin(2 * np.pi * 440 * n / rate_hz) + 0.05 * rng.standard_normal(n.size)
    assert not detect_transients(steady, sample_rate=rate_hz, n_bins=n_bins)[1:].any()  # frame 0: its onset
    clicks = steady.copy()
    onsets = [20_000, 50_000, 70_000]
    for onset in onsets:
        clicks[onset:onset + 500] += 0.8 * rng.standard_normal(500) * np.exp(-np.arange(500) / 100)
    flags = detect_transients(np.stack([steady, clicks]), sample_rate=rate_hz, n_bins=n_bins)
    assert np.flatnonzero(flags[1:]).tolist() == [(onset + n_bins // 2) // n_bins - 1 for onset in onsets]


def test_short_blocks_cut_pre_echo_before_an_attack() -> None:
    rate_hz, n_bins = 48_000, 1024
    rng = np.random.default_rng(9)
    signal = 1e-3 * rng.standard_normal(rate_hz // 2)
    onset = 12 * n_bins + 100
    signal[onset:] += 0.5 * rng.standard_normal(signal.size - onset) * np.exp(-np.arange(signal.size - onset)
                                                                                 / 4000)
    flags = detect_transients(signal, sample_rate=rate_hz, n_bins=n_bins)
    pre_echo = {}
    for name, sequence in (("long", None), ("switched", mdct.window_sequence(flags))):
        coefficients = mdct.mdct_analysis(signal, n_bins=n_bins, sequence=sequence)
        step = 0.5 * np.sqrt(np.mean(coefficients ** 2, axis=-1, keepdims=True))  # coarse, per frame
        coded = mdct.mdct_synthesis(np.round(coefficients / step) * step, n_samples=signal.size,
                                    sequence=sequence)
        before = slice(onset - n_bins, onset - n_bins // 8)
        pre_echo[name] = np.mean((coded - signal)[before] ** 2) / np.mean(signal[before] ** 2)
    assert 10 * np.log10(pre_echo["long"] / pre_echo["switched"]) > 15.0


def test_perceptual_entropy_grows_with_what_there_is_to_code() -> None:
    rate_hz = 32_000
    rng = np.random.default_rng(10)
    signals = {"silence": np.zeros(rate_hz // 2),
               "tone": _bin_tone(30, amplitude=0.3, rate_hz=rate_hz),
               "noise": 0.3 * rng.standard_normal(rate_hz // 2)}
    entropy = {name: float(np.mean(perceptual_entropy(m.psd_db, m.threshold_db)))
               for name, m in ((name, psychoacoustic.masking_threshold(s, sample_rate=rate_hz))
                               for name, s in signals.items())}
    assert entropy["silence"] < 1e-6
    assert entropy["silence"] < entropy["tone"] < entropy["noise"]
