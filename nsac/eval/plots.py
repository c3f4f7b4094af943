"""The bench's figures as PNG files: rate-quality curves (rd.png) and spectrograms, drawn with Agg."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: spectrogram analysis: window and hop in ms, dynamic range shown in dB
SPECTROGRAM_WINDOW_MS = 32.0
SPECTROGRAM_HOP_MS = 8.0
SPECTROGRAM_RANGE_DB = 80.0
SPECTROGRAM_SIZE_INCHES = (6.0, 2.0)
SPECTROGRAM_DPI = 80
#: rate-quality figure: panels per row, size of one panel, resolution
RD_COLUMNS = 3
RD_PANEL_INCHES = (4.2, 3.2)
RD_DPI = 100
MATPLOTLIB_INSTALL = "pip install matplotlib"
_MS_PER_S = 1000.0
_HZ_PER_KHZ = 1000.0
_POWER_FLOOR = 1e-12  # keeps log10 finite for digital silence


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width_in: float, height_in: float) -> Any:
    # Figure + the Agg canvas directly: no pyplot state and no backend switch in the user's process
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(figure)
    return figure


def metric_directions() -> dict[str, bool]:
    """Column -> whether higher is better, from the metrics registry (empty when it is missing)."""
    try:
        from nsac.eval.metrics import METRICS
    except ImportError:
        return {}
    return {column: spec.higher_is_better for spec in METRICS.values() for column in spec.columns}


def rd_plot(summary: Sequence[dict], metric_columns: Sequence[str], path: Path) -> bool:
    """Each quality metric (mean, 95% interval) against actual payload kb/s, one line per codec family.

    Returns False, writing nothing, when matplotlib is missing or no metric has values.
    """
    metrics = [c for c in metric_columns if any(c in entry["values"] for entry in summary)]
    if not metrics or not matplotlib_available():
        return False
    directions = metric_directions()
    n_rows = math.ceil(len(metrics) / RD_COLUMNS)
    n_cols = min(RD_COLUMNS, len(metrics))
    figure = _figure(RD_PANEL_INCHES[0] * n_cols, RD_PANEL_INCHES[1] * n_rows)
    families = list(dict.fromkeys(entry["family"] for entry in summary))
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(n_rows, n_cols, index + 1)
        for family in families:
            points = sorted(
                (entry["values"]["payload_kbps"]["mean"], entry["values"][metric]["mean"],
                 entry["values"][metric]["ci95"])
                for entry in summary
                if entry["family"] == family and metric in entry["values"]
                and not math.isnan(entry["values"]["payload_kbps"]["mean"])
            )
            if points:
                x, y, ci = (np.array(v, dtype=float) for v in zip(*points))
                axes.errorbar(x, y, yerr=np.nan_to_num(ci), marker="o", capsize=3, label=family)
        arrow = {True: " (higher is better)", False: " (lower is better)"}.get(directions.get(metric), "")
        axes.set_title(metric + arrow, fontsize=9)
        axes.set_xlabel("actual bitrate, payload (kb/s)", fontsize=8)
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=7)
        if index == 0:
            axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=RD_DPI)
    return True


def spectrogram_png(audio: np.ndarray, sample_rate_hz: int, path: Path, *, title: str) -> bool:
    """Log-power spectrogram of mono audio (samples,) as a small PNG; False when matplotlib is missing."""
    from scipy.signal import spectrogram

    if not matplotlib_available():
        return False
    n_window = max(16, round(SPECTROGRAM_WINDOW_MS * sample_rate_hz / _MS_PER_S))
    n_hop = max(1, round(SPECTROGRAM_HOP_MS * sample_rate_hz / _MS_PER_S))
    signal = np.asarray(audio, dtype=np.float64).reshape(-1)
    if signal.size < n_window:
        signal = np.pad(signal, (0, n_window - signal.size))
    freqs, _, power = spectrogram(signal, fs=sample_rate_hz, window="hann", nperseg=n_window,
                                      noverlap=n_window - n_hop, mode="psd")
    power_db = 10 * np.log10(np.maximum(power, _POWER_FLOOR))
    top_db = float(power_db.max())
    figure = _figure(*SPECTROGRAM_SIZE_INCHES)
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(power_db, origin="lower", aspect="auto", cmap="magma", vmin=top_db - SPECTROGRAM_RANGE_DB,
                vmax=top_db, extent=(0.0, signal.size / sample_rate_hz, 0.0, freqs[-1] / _HZ_PER_KHZ))
    axes.set_title(title, fontsize=8)
    axes.set_xlabel("s", fontsize=7)
    axes.set_ylabel("kHz", fontsize=7)
    axes.tick_params(labelsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=SPECTROGRAM_DPI)
    return True


__all__ = ["MATPLOTLIB_INSTALL", "matplotlib_available", "metric_directions", "rd_plot", "spectrogram_png"]
