"""A bench's summary per condition: mean and 95% t-interval of every metric and cost; CSV, Markdown, JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nsac.eval.bench_inputs import Condition
from nsac.eval.results import COST_COLUMNS, Row

CONFIDENCE = 0.95
SUMMARY_CSV, SUMMARY_MD, SUMMARY_JSON = "summary.csv", "summary.md", "summary.json"
#: cost columns the Markdown table shows (all of them are in the CSV and JSON)
MARKDOWN_COSTS = ("payload_kbps", "rtf_encode", "rtf_decode", "delay_ms", "macs_per_second")
#: what a column is called in tables
LABELS = {
    "payload_kbps": "kb/s (payload)", "file_kbps": "kb/s (file)", "rtf_encode": "RTF enc",
    "rtf_decode": "RTF dec", "peak_mem_encode_mib": "mem enc MiB", "peak_mem_decode_mib": "mem dec MiB",
    "delay_ms": "delay ms", "macs_per_second": "MACs/s", "parameters": "params",
    "log_spectral_distance": "LSD dB", "mel_distance": "mel dist. dB", "si_sdr": "SI-SDR dB",
}


def mean_ci(values: Sequence[float], *, confidence: float = CONFIDENCE) -> dict[str, float]:
    """Mean, half-width of the two-sided Student-t confidence interval, std and count, NaNs left out.

    With one value the half-width is NaN (no spread to estimate); with none the mean is NaN too.
    """
    from scipy.stats import t

    array = np.asarray([v for v in values if isinstance(v, (int, float)) and not math.isnan(v)], dtype=float)
    n = int(array.size)
    if n == 0:
        return {"mean": math.nan, "ci95": math.nan, "std": math.nan, "n": 0}
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "ci95": math.nan, "std": math.nan, "n": 1}
    std = float(array.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"mean": mean, "ci95": half, "std": std, "n": n}


def summarize(rows: Sequence[Row], conditions: Sequence[Condition],
              metric_columns: Sequence[str]) -> list[dict]:
    """One entry per condition, in the order given: identity, counts, and `values`: column -> mean_ci."""
    summary = []
    for condition in conditions:
        own = [row for row in rows if row["condition"] == condition.label]
        good = [row for row in own if not row["error"]]
        values = {}
        for column in [*metric_columns, *COST_COLUMNS]:
            stats = mean_ci([row.get(column, math.nan) for row in good])
            if stats["n"] or column in COST_COLUMNS:
                values[column] = stats
        nominal = [row["nominal_bitrate_bps"] for row in good if not math.isnan(row["nominal_bitrate_bps"])]
        summary.append({
            "condition": condition.label, "codec": condition.codec, "family": condition.family,
            "nominal_bitrate_bps": condition.bitrate_bps or (int(nominal[0]) if nominal else None),
            "options": dict(condition.options), "n_files": len(own), "n_errors": len(own) - len(good),
            "values": values,
        })
    return summary


def _number(value: float, *, digits: int = 4) -> str:
    if math.isnan(value):
        return ""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def format_cell(stats: dict[str, float] | None) -> str:
    """`mean ± ci95` for a table (just the mean when the interval is unknown or zero)."""
    if not stats or stats["n"] == 0:
        return "-"
    if math.isnan(stats["ci95"]) or stats["ci95"] == 0:
        return _number(stats["mean"])
    return f"{_number(stats['mean'])} ± {_number(stats['ci95'], digits=2)}"


def table_columns(summary: Sequence[dict], metric_columns: Sequence[str]) -> list[str]:
    """Metric columns with at least one value in some condition, then the costs for Markdown/HTML tables."""
    present = [c for c in metric_columns if any(c in entry["values"] for entry in summary)]
    return [*present, *MARKDOWN_COSTS]


def files_cell(entry: dict) -> str:
    """Files coded, and how many failed."""
    good = entry["n_files"] - entry["n_errors"]
    return f"{good} ({entry['n_errors']} failed)" if entry["n_errors"] else str(good)


def markdown_table(summary: Sequence[dict], metric_columns: Sequence[str]) -> str:
    columns = table_columns(summary, metric_columns)
    head = ["condition", "files", *[LABELS.get(c, c) for c in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in summary:
        cells = [entry["condition"], files_cell(entry),
                 *[format_cell(entry["values"].get(c)) for c in columns]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_summaries(out: Path, summary: Sequence[dict], metric_columns: Sequence[str], *,
                    meta: dict[str, Any]) -> list[Path]:
    """Write summary.csv, summary.md and summary.json into `out`; return their paths.

    JSON: {"meta": ..., "confidence": 0.95, "conditions": {label: {codec, family, nominal_bitrate_bps,
    options, n_files, n_errors, values: {column: {mean, ci95 (half-width), std, n}}}}}; NaN is null.
    """
    columns = [c for c in [*metric_columns, *COST_COLUMNS] if any(c in e["values"] for e in summary)]
    csv_path = out / SUMMARY_CSV
    with csv_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["condition", "codec", "nominal_bitrate_bps", "n_files", "n_errors",
                         *[f"{c}_{part}" for c in columns for part in ("mean", "ci95", "n")]])
        for entry in summary:
            cells = []
            for column in columns:
                stats = entry["values"].get(column, {"mean": math.nan, "ci95": math.nan, "n": 0})
                cells += [_number(stats["mean"], digits=7), _number(stats["ci95"], digits=7), stats["n"]]
            writer.writerow([entry["condition"], entry["codec"], entry["nominal_bitrate_bps"] or "",
                             entry["n_files"], entry["n_errors"], *cells])
    md_path = out / SUMMARY_MD
    note = (f"Mean ± half-width of the {CONFIDENCE:.0%} Student-t confidence interval over files. "
            "kb/s from the bytes written; RTF = CPU seconds / audio seconds, one thread.\n")
    md_path.write_text(markdown_table(summary, metric_columns) + "\n" + note, encoding="utf-8")
    json_path = out / SUMMARY_JSON
    document = {"meta": meta, "confidence": CONFIDENCE,
                "conditions": {entry["condition"]: {k: v for k, v in entry.items() if k != "condition"}
                               for entry in summary}}
    json_path.write_text(json.dumps(_json_safe(document), indent=2) + "\n", encoding="utf-8")
    return [csv_path, md_path, json_path]


__all__ = ["CONFIDENCE", "files_cell", "format_cell", "markdown_table", "mean_ci", "summarize",
           "table_columns", "write_summaries"]
