"""Tests for the NMR metric (nsac.eval.nmr) and its place in the metrics registry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nsac.dsp import psychoacoustic
from nsac.dsp.masking import noise_at_threshold
from nsac.errors import AudioError
from nsac.eval.metrics import METRICS, evaluate
from nsac.eval.nmr import NMR_FLOOR_DB, model_rate, nmr, nmr_frames

RATE_HZ = 44_100
NOISE_CEILING_DB = 60.0


def _music_like(n_samples: int, *, rate_hz: int = RATE_HZ, seed: int = 0) -> np.ndarray:
    """Two tones over a noise floor, stationary."""
    rng = np.random.default_rng(seed)
    n = np.arange(n_samples)
    return (0.2 * np.sin(2 * np.pi * 440 * n / rate_hz) + 0.05 * np.sin(2 * np.pi * 2500 * n / rate_hz)
            + 0.02 * rng.standard_normal(n.size))


def test_identical_signals_score_the_floor_and_no_audible_frame() -> None:
    reference = _music_like(RATE_HZ)
    assert nmr(reference, reference.copy(), sample_rate=RATE_HZ) == {"nmr": NMR_FLOOR_DB, "audible_frames": 0.0}


def test_noise_under_the_mask_scores_below_zero_and_louder_noise_scores_higher() -> None:
    reference = _music_like(RATE_HZ)
    masking = psychoacoustic.masking_threshold(reference, sample_rate=RATE_HZ)
    lowest = np.minimum(masking.threshold_db.min(axis=0), NOISE_CEILING_DB)
    rng = np.random.default_rng(1)
    scores = [nmr(reference, reference + noise_at_threshold(lowest, n_samples=reference.size, offset_db=offset,
                                                            rng=rng), sample_rate=RATE_HZ)
              for offset in (-10.0, 0.0, 10.0, 20.0)]
    assert scores[0]["nmr"] < -10.0 and scores[0]["audible_frames"] == 0.0
    assert all(a["nmr"] < b["nmr"] for a, b in itertools.pairwise(scores))
    assert all(a["audible_frames"] <= b["audible_frames"] for a, b in itertools.pairwise(scores))
    assert scores[-1]["audible_frames"] == 1.0


def test_frames_report_band_and_worst_band_nmr() -> None:
    reference = _music_like(RATE_HZ // 2)
    degraded = reference + 1e-3 * np.random.default_rng(2).standard_normal(reference.size)
    frames = nmr_frames(reference, degraded, sample_rate=RATE_HZ)
    n_frames = psychoacoustic.frame_centres(reference.size, hop=256).size
    assert frames.band_nmr_db.shape == (n_frames, psychoacoustic.model_tables(sample_rate=RATE_HZ).band_start.size)
    np.testing.assert_allclose(frames.max_nmr_db, frames.band_nmr_db.max(axis=1))
    assert np.all(frames.frame_nmr_db <= frames.max_nmr_db + 1e-9)
    # the power mean over bands lies at or above their mean in dB
    assert np.all(frames.frame_nmr_db >= frames.band_nmr_db.mean(axis=1) - 1e-9)


@pytest.mark.parametrize(("rate", "model"), [(8_000, 16_000), (16_000, 16_000), (22_050, 32_000),
                                             (24_000, 32_000), (44_100, 44_100), (48_000, 48_000),
                                             (96_000, 48_000)])
def test_inputs_are_scored_at_a_rate_the_model_supports(rate: int, model: int) -> None:
    assert model_rate(rate) == model
    reference = _music_like(rate // 4, rate_hz=rate)
    frames = nmr_frames(reference, 1.01 * reference, sample_rate=rate)
    assert frames.sample_rate == model
    assert np.all(np.isfinite(frames.frame_nmr_db))


def test_nmr_is_registered_and_evaluate_reports_both_columns() -> None:
    spec = METRICS["nmr"]
    assert spec.kind == "intrusive" and not spec.higher_is_better
    assert spec.columns == ("nmr", "nmr_audible_frames")
    reference = _music_like(RATE_HZ // 2)
    degraded = reference + 0.01 * np.random.default_rng(3).standard_normal(reference.size)
    result = evaluate(reference, degraded, sample_rate=RATE_HZ, metrics=["nmr"])
    assert result["errors"] == {}
    direct = nmr(reference, degraded, sample_rate=RATE_HZ)
    assert result["nmr"] == pytest.approx(direct["nmr"])
    assert result["nmr_audible_frames"] == pytest.approx(direct["audible_frames"])
    assert all(math.isfinite(result[column]) for column in spec.columns)


def test_mismatched_signals_raise_audio_errors() -> None:
    with pytest.raises(AudioError, match="samples"):
        nmr(np.zeros(1000), np.zeros(999), sample_rate=RATE_HZ)
