"""Paired per-file comparison of two bench conditions: the mean change, how many files got better, the worst file.

A condition's mean hides the file it made worse. Reading a bench's results.csv, every file scored under
both conditions gives one change per metric (test minus base); "better" follows the metric's direction
(higher PESQ, lower mel distance), and the worst file is the one whose change goes furthest the wrong way::

    nsac compare runs/bench/results.csv --base opus@6000 --test opus@6000+enhance
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nsac.errors import ParameterError
from nsac.eval.metrics import METRICS
from nsac.eval.summary import mean_ci

#: metrics compared when none are named: every score column the bench writes, in this order
DEFAULT_COLUMNS = ("pesq_wb", "visqol_speech", "visqol_audio", "dnsmos_ovrl", "stoi", "si_sdr",
                   "mel_distance", "nmr")


def _column_direction() -> dict[str, bool]:
    """Score column -> higher is better."""
    return {column: spec.higher_is_better for spec in METRICS.values() for column in spec.columns}


@dataclass(frozen=True)
class PairedChange:
    """One metric's change from base to test over the files both scored."""

    column: str
    higher_is_better: bool
    n_files: int
    base_mean: float
    test_mean: float
    mean_change: float
    change_ci95: float  # half-width of the 95 % interval of the mean change (Student t); NaN for one file
    n_better: int
    worst_change: float
    worst_file: str


def _read_scores(results_csv: Path) -> dict[str, dict[str, dict[str, str]]]:
    """condition -> file -> row."""
    try:
        with Path(results_csv).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ParameterError(f"cannot read bench results {results_csv}: {exc.strerror or exc}") from None
    out: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        if "condition" not in row or "file" not in row:
            raise ParameterError(f"{results_csv} is not a bench results.csv (no condition and file columns)")
        out.setdefault(row["condition"], {})[row["file"]] = row
    return out


def _value(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def paired_changes(results_csv: str | Path, *, base: str, test: str,
                   columns: Sequence[str] | None = None) -> list[PairedChange]:
    """Per metric, the change from condition `base` to `test` over the files scored under both."""
    scores = _read_scores(Path(results_csv))
    for name in (base, test):
        if name not in scores:
            raise ParameterError(f"condition {name!r} is not in {results_csv}; it has {', '.join(sorted(scores))}")
    direction = _column_direction()
    changes = []
    for column in columns or DEFAULT_COLUMNS:
        if column not in direction:
            raise ParameterError(f"unknown score column {column!r}; known: {', '.join(sorted(direction))}")
        pairs = []
        for file, base_row in scores[base].items():
            test_row = scores[test].get(file)
            b, t = _value(base_row.get(column)), _value(test_row.get(column) if test_row else None)
            if b is not None and t is not None:
                pairs.append((file, b, t))
        if not pairs:
            if columns:
                raise ParameterError(f"no file has {column} under both {base} and {test}")
            continue
        higher = direction[column]
        sign = 1.0 if higher else -1.0
        worst_file, worst_b, worst_t = min(pairs, key=lambda p: sign * (p[2] - p[1]))
        n = len(pairs)
        changes.append(PairedChange(
            column=column, higher_is_better=higher, n_files=n,
            base_mean=sum(p[1] for p in pairs) / n, test_mean=sum(p[2] for p in pairs) / n,
            mean_change=sum(p[2] - p[1] for p in pairs) / n,
            change_ci95=mean_ci([p[2] - p[1] for p in pairs])["ci95"],
            n_better=sum(1 for p in pairs if sign * (p[2] - p[1]) > 0),
            worst_change=worst_t - worst_b, worst_file=worst_file))
    return changes


def changes_markdown(changes: Sequence[PairedChange]) -> str:
    """A markdown table: metric, base and test means, mean change ± its 95 % interval, files better, worst
    file's change."""
    lines = ["| metric | base | test | mean change | files better | worst file's change |",
             "|---|---|---|---|---|---|"]
    for c in changes:
        interval = "" if math.isnan(c.change_ci95) else f" ± {c.change_ci95:.3f}"
        lines.append(f"| {c.column} | {c.base_mean:.3f} | {c.test_mean:.3f} | {c.mean_change:+.3f}{interval} | "
                     f"{c.n_better}/{c.n_files} | {c.worst_change:+.3f} ({c.worst_file}) |")
    return "\n".join(lines)
