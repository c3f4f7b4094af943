"""Tests for nsac.eval: alignment, each metric's known values and properties, evaluate()'s report and errors."""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np
import pytest

from nsac.errors import AudioError, DependencyError, ParameterError
from nsac.eval import perceptual
from nsac.eval.align import align, find_delay, level_check
from nsac.eval.distances import log_spectral_distance, mel_distance, si_sdr
from nsac.eval.metrics import METRICS, available_metrics, evaluate

RATE_HZ = 16_000
PESQ_WB_MAX = 4.644  # P.862.2 mapping of a perfect score
PESQ_NB_MAX = 4.549  # P.862.1 mapping of a perfect score
DELAY_SAMPLES = 37


def _needs(module: str) -> None:
    pytest.importorskip(module, reason=f"optional metric library {module} not installed")


def _with_noise(signal: np.ndarray, *, snr_db: float, seed: int = 0) -> np.ndarray:
    """signal plus white noise scaled to exactly snr_db below the signal's power."""
    noise = np.random.default_rng(seed).standard_normal(signal.shape)
    noise *= np.sqrt(np.mean(signal**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return signal + noise


def _delayed(signal: np.ndarray, delay: int) -> np.ndarray:
    """The signal delayed by `delay` samples (zeros in front), same length: what a codec returns."""
    return np.concatenate([np.zeros(delay), signal])[: signal.size]


@pytest.fixture(scope="module")
def speech(speech_16k: np.ndarray) -> np.ndarray:
    """3 s of real speech (speechocean762 test utterance shipped with nsac), 16 kHz, shape (samples,)."""
    return speech_16k[0].astype(np.float64)


# ---------------------------------------------------------------- alignment


@pytest.mark.parametrize("delay", [-120, -1, 0, 1, DELAY_SAMPLES, 400])
def test_find_delay_recovers_an_integer_shift_exactly(delay: int) -> None:
    rng = np.random.default_rng(1)
    source = rng.standard_normal(RATE_HZ + 1000)
    reference = source[500 : 500 + RATE_HZ]
    degraded = source[500 - delay : 500 - delay + RATE_HZ]  # degraded[n + delay] == reference[n]
    found, peak = find_delay(reference, degraded, sample_rate=RATE_HZ)
    assert found == delay
    assert peak > 0.9


def test_find_delay_flags_polarity_inversion_and_respects_the_search_range() -> None:
    reference = np.random.default_rng(2).standard_normal(8000)
    found, peak = find_delay(reference, -_delayed(reference, 10), sample_rate=RATE_HZ)
    assert (found, peak < -0.9) == (10, True)
    # 30 samples is past a 1 ms window at 16 kHz (16 samples): the true lag cannot be found
    found, _ = find_delay(reference, _delayed(reference, 30), sample_rate=RATE_HZ, max_delay_ms=1.0)
    assert abs(found) <= 16


def test_align_trims_both_to_the_common_length(speech: np.ndarray) -> None:
    ref, deg, delay = align(speech, _delayed(speech, DELAY_SAMPLES), sample_rate=RATE_HZ)
    assert delay == DELAY_SAMPLES
    assert ref.size == deg.size == speech.size - DELAY_SAMPLES
    np.testing.assert_array_equal(ref, deg)


def test_level_check_reports_gain_and_silence(speech: np.ndarray) -> None:
    levels = level_check(speech, 0.25 * speech)
    assert levels.difference_db == pytest.approx(20 * math.log10(0.25), abs=1e-9)
    assert any("-12.0 dB" in warning for warning in levels.warnings())
    assert any("degraded is silent" in w for w in level_check(speech, np.zeros_like(speech)).warnings())
    assert level_check(speech, speech).warnings() == []


# ---------------------------------------------------------------- signal-level distances


def test_identical_signals_have_zero_distance(speech: np.ndarray) -> None:
    assert si_sdr(speech, speech, sample_rate=RATE_HZ) > 200
    assert log_spectral_distance(speech, speech, sample_rate=RATE_HZ) == 0.0
    assert mel_distance(speech, speech, sample_rate=RATE_HZ) == 0.0


def test_si_sdr_of_white_noise_at_10_db_snr_is_10_db(speech: np.ndarray) -> None:
    for seed in range(3):
        noisy = _with_noise(speech, snr_db=10.0, seed=seed)
        assert si_sdr(speech, noisy, sample_rate=RATE_HZ) == pytest.approx(10.0, abs=0.5)


def test_si_sdr_ignores_gain(speech: np.ndarray) -> None:
    noisy = _with_noise(speech, snr_db=15.0)
    assert si_sdr(speech, 0.3 * noisy, sample_rate=RATE_HZ) == pytest.approx(
        si_sdr(speech, noisy, sample_rate=RATE_HZ), abs=1e-9)


def test_a_gain_shows_as_its_size_in_db_in_lsd_and_mel_distance() -> None:
    # White noise keeps every bin far above the floors, so both distances equal the gain in dB
    noise = 0.1 * np.random.default_rng(3).standard_normal(RATE_HZ)
    gain_db = 20 * math.log10(2.0)
    assert log_spectral_distance(noise, 2.0 * noise, sample_rate=RATE_HZ) == pytest.approx(gain_db, abs=1e-6)
    assert mel_distance(noise, 2.0 * noise, sample_rate=RATE_HZ) == pytest.approx(gain_db, abs=1e-6)


def test_intrusive_metrics_refuse_unaligned_lengths(speech: np.ndarray) -> None:
    with pytest.raises(AudioError, match="align"):
        si_sdr(speech, speech[:-5], sample_rate=RATE_HZ)


# ---------------------------------------------------------------- perceptual metrics


def test_pesq_and_stoi_of_identical_signals_are_at_their_maximum(speech: np.ndarray) -> None:
    _needs("pesq")
    _needs("pystoi")
    assert perceptual.pesq_wb(speech, speech, sample_rate=RATE_HZ) == pytest.approx(PESQ_WB_MAX, abs=0.01)
    assert perceptual.pesq_nb(speech, speech, sample_rate=RATE_HZ) == pytest.approx(PESQ_NB_MAX, abs=0.01)
    assert perceptual.stoi(speech, speech, sample_rate=RATE_HZ) == pytest.approx(1.0, abs=1e-6)
    assert perceptual.estoi(speech, speech, sample_rate=RATE_HZ) == pytest.approx(1.0, abs=1e-6)


def test_pesq_wb_is_the_same_from_48_khz(speech: np.ndarray) -> None:
    _needs("pesq")
    import soxr

    upsampled = soxr.resample(speech, RATE_HZ, 48_000)
    assert perceptual.pesq_wb(upsampled, upsampled, sample_rate=48_000) == pytest.approx(PESQ_WB_MAX, abs=0.01)


def test_visqol_speech_mode_scores_identical_high_and_noisy_low(speech: np.ndarray) -> None:
    _needs("visqol")
    _needs("ai_edge_litert")
    identical = perceptual.visqol_speech(speech, speech, sample_rate=RATE_HZ)
    noisy = perceptual.visqol_speech(speech, _with_noise(speech, snr_db=30.0), sample_rate=RATE_HZ)
    # the lattice mapping puts identical clips at 4.1..4.75 depending on the clip, not at 5
    assert 4.0 <= identical <= 5.0
    assert 1.0 <= noisy < identical - 1.0


def test_visqol_audio_mode_scores_identical_near_its_ceiling(speech: np.ndarray) -> None:
    _needs("visqol")
    assert perceptual.visqol_audio(speech, speech, sample_rate=RATE_HZ) == pytest.approx(4.73, abs=0.05)


def test_dnsmos_of_real_speech_is_plausible_and_drops_with_noise(speech: np.ndarray) -> None:
    _needs("speechmos")
    _needs("onnxruntime")
    clean = perceptual.dnsmos(speech, sample_rate=RATE_HZ)
    noisy = perceptual.dnsmos(_with_noise(speech, snr_db=0.0), sample_rate=RATE_HZ)
    assert set(clean) == {"ovrl", "sig", "bak"}
    assert 2.5 <= clean["ovrl"] <= 4.2
    assert noisy["ovrl"] < clean["ovrl"] - 0.5
    assert noisy["bak"] < clean["bak"] - 1.0


def test_scores_degrade_monotonically_with_noise(speech: np.ndarray) -> None:
    fast = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "log_spectral_distance", "mel_distance"]
    names = [name for name in fast if available_metrics()[name]]
    scores = [evaluate(speech, _with_noise(speech, snr_db=snr), sample_rate=RATE_HZ, metrics=names)
              for snr in (30.0, 20.0, 10.0, 0.0)]
    for name in names:
        values = [score[name] for score in scores]
        better_first = values if METRICS[name].higher_is_better else [-v for v in values]
        assert all(a > b for a, b in itertools.pairwise(better_first)), (name, values)


# ---------------------------------------------------------------- evaluate()


def test_evaluate_aligns_a_delayed_copy_and_scores_it_as_identical(speech: np.ndarray) -> None:
    names = [n for n in ("pesq_wb", "stoi", "si_sdr", "log_spectral_distance", "mel_distance")
             if available_metrics()[n]]
    result = evaluate(speech, _delayed(speech, DELAY_SAMPLES), sample_rate=RATE_HZ, metrics=names)
    assert result["errors"] == {}
    assert result["alignment"]["delay_samples"] == DELAY_SAMPLES
    assert result["alignment"]["delay_ms"] == pytest.approx(DELAY_SAMPLES / 16)
    assert result["alignment"]["compared_samples"] == speech.size - DELAY_SAMPLES
    assert result["si_sdr"] > 200
    assert result["log_spectral_distance"] == 0.0
    assert result["mel_distance"] == 0.0
    if "pesq_wb" in names:
        assert result["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=0.01)
    if "stoi" in names:
        assert result["stoi"] == pytest.approx(1.0, abs=1e-6)


def test_evaluate_agrees_with_calling_pesq_and_pystoi_directly(speech: np.ndarray) -> None:
    _needs("pesq")
    _needs("pystoi")
    import pesq as pesq_lib
    import pystoi

    # a degraded copy with no delay, so that alignment changes nothing and the libraries see the same pair
    degraded = _with_noise(speech, snr_db=15.0, seed=3)
    result = evaluate(speech, degraded, sample_rate=RATE_HZ, metrics=["pesq_wb", "stoi", "estoi"])
    assert result["alignment"]["delay_samples"] == 0
    assert result["pesq_wb"] == pytest.approx(pesq_lib.pesq(RATE_HZ, speech, degraded, "wb"), abs=1e-6)
    assert result["stoi"] == pytest.approx(pystoi.stoi(speech, degraded, RATE_HZ), abs=1e-6)
    assert result["estoi"] == pytest.approx(pystoi.stoi(speech, degraded, RATE_HZ, extended=True), abs=1e-6)
    assert 1.0 < result["pesq_wb"] < 4.0  # a real degradation, not the identical-signal ceiling


def test_evaluate_reports_the_resampling_each_metric_did(speech: np.ndarray) -> None:
    _needs("pesq")
    _needs("pystoi")
    result = evaluate(speech, speech, sample_rate=RATE_HZ, metrics=["pesq_wb", "pesq_nb", "stoi", "si_sdr"])
    resampling = result["alignment"]["resampling"]
    assert resampling == {"pesq_nb": "16000 -> 8000 Hz by soxr", "stoi": "16000 -> 10000 Hz by pystoi"}


def test_evaluate_by_default_writes_one_float_per_column_of_every_installed_metric(speech: np.ndarray) -> None:
    result = evaluate(speech, _with_noise(speech, snr_db=20.0), sample_rate=RATE_HZ)
    installed = [name for name, ok in available_metrics().items() if ok]
    assert result["errors"] == {}
    assert set(result["unavailable"]) == set(METRICS) - set(installed)
    for name in installed:
        for column in METRICS[name].columns:
            assert isinstance(result[column], float) and math.isfinite(result[column]), column


def test_evaluate_runs_the_installed_metrics_by_default_and_names_the_rest(speech: np.ndarray,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pesq", None)  # as if not installed
    assert available_metrics()["pesq_wb"] is False
    assert available_metrics()["si_sdr"] is True
    result = evaluate(speech, speech, sample_rate=RATE_HZ)
    assert "pesq_wb" not in result
    assert result["unavailable"]["pesq_wb"] == "pip install pesq"
    assert "si_sdr" in result


def test_a_metric_that_fails_on_the_input_gives_nan_and_its_error(speech: np.ndarray) -> None:
    silent = np.zeros_like(speech)
    names = [n for n in ("pesq_wb", "si_sdr", "mel_distance") if available_metrics()[n]]
    result = evaluate(silent, speech, sample_rate=RATE_HZ, metrics=names)
    assert math.isnan(result["si_sdr"])
    assert "silent" in result["errors"]["si_sdr"]
    assert math.isfinite(result["mel_distance"])
    assert any("reference is silent" in w for w in result["alignment"]["warnings"])
    if "pesq_wb" in names:
        assert math.isnan(result["pesq_wb"])
        assert "No utterances detected" in result["errors"]["pesq_wb"]


@pytest.mark.parametrize(("reference", "message"), [
    (np.array([]), "empty"),
    (np.full(RATE_HZ, np.nan), "NaN"),
    (np.zeros(100), "at least 250 ms"),
    (np.zeros((2, RATE_HZ)), "mono"),
    (np.zeros(RATE_HZ, dtype=np.int16), "floating-point"),
])
def test_evaluate_refuses_bad_input_with_a_clear_message(reference: np.ndarray, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        evaluate(reference, np.zeros(RATE_HZ), sample_rate=RATE_HZ, metrics=["si_sdr"])


def test_evaluate_refuses_unknown_metrics_and_bad_rates(speech: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="pesq_swb"):
        evaluate(speech, speech, sample_rate=RATE_HZ, metrics=["pesq_swb"])
    with pytest.raises(ParameterError, match="sample_rate"):
        evaluate(speech, speech, sample_rate=0, metrics=["si_sdr"])


def test_evaluate_takes_shape_1_by_samples(speech: np.ndarray) -> None:
    flat = evaluate(speech, _with_noise(speech, snr_db=20), sample_rate=RATE_HZ, metrics=["si_sdr"])
    rows = evaluate(speech[None, :], _with_noise(speech, snr_db=20)[None, :], sample_rate=RATE_HZ,
                    metrics=["si_sdr"])
    assert flat["si_sdr"] == rows["si_sdr"]


# ---------------------------------------------------------------- missing libraries


@pytest.mark.parametrize(("metric", "module", "install"), [
    ("pesq_wb", "pesq", "pip install pesq"),
    ("stoi", "pystoi", "pip install pystoi"),
    ("visqol_speech", "visqol", 'pip install "visqol-python[lattice]"'),
    ("visqol_speech", "ai_edge_litert", 'pip install "visqol-python[lattice]"'),
    ("visqol_audio", "visqol", 'pip install "visqol-python[lattice]"'),
    ("dnsmos", "speechmos", "pip install speechmos onnxruntime librosa requests"),
    ("dnsmos", "onnxruntime", "pip install speechmos onnxruntime librosa requests"),
])
def test_a_missing_library_raises_dependency_error_only_when_its_metric_is_asked_for(
        speech: np.ndarray, monkeypatch: pytest.MonkeyPatch, metric: str, module: str, install: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    for name in [m for m in list(sys.modules) if m.startswith(f"{module}.") or m == "speechmos.dnsmos"]:
        monkeypatch.delitem(sys.modules, name)
    perceptual._visqol_api.cache_clear()
    assert available_metrics()[metric] is False
    with pytest.raises(DependencyError, match=install.replace("[", r"\[").replace("]", r"\]")):
        evaluate(speech, speech, sample_rate=RATE_HZ, metrics=[metric])
    assert "si_sdr" in evaluate(speech, speech, sample_rate=RATE_HZ, metrics=["si_sdr"])
    perceptual._visqol_api.cache_clear()
