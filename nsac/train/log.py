"""A run's record: train_log.csv, valid_log.csv (a row per logged step) and their plots losses.png, valid.png.

Columns are fixed by the first row written; a resumed run first drops the rows after its checkpoint's step,
so the files read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

TRAIN_LOG = "train_log.csv"
VALID_LOG = "valid_log.csv"
LOSSES_PLOT = "losses.png"
VALID_PLOT = "valid.png"
#: figure layout: panels per row, inches per panel, resolution
PLOT_COLUMNS = 3
PANEL_INCHES = (4.0, 2.8)
PLOT_DPI = 90


class CsvLog:
    """Append rows of {column: number} to a CSV file whose first column is `step`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Drop the rows logged after `step` (work a resumed run redoes)."""
        rows = self.read()
        if not rows:
            return
        kept = [row for row in rows if row["step"] <= step]
        if len(kept) != len(rows):
            self._write(list(rows[0].keys()), kept)

    def append(self, row: Mapping[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.read()
        columns = list(existing[0].keys()) if existing else ["step", *sorted(k for k in row if k != "step")]
        missing = [k for k in row if k not in columns]
        if missing:  # a new column (e.g. adversarial losses from disc_start_step on): rewrite with it
            columns += sorted(missing)
            self._write(columns, [*existing, dict(row)])
            return
        new_file = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            if new_file:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k, "")) for k in columns})

    def read(self) -> list[dict[str, float]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as handle:
            return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()}
                    for row in csv.DictReader(handle)]

    def _write(self, columns: list[str], rows: Sequence[Mapping[str, float]]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k, "")) for k in columns})


def _cell(value: object) -> object:
    """A CSV cell: integral numbers (steps) without ".0", NaN as empty."""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def plot_log(log: CsvLog, target: Path, *, title: str) -> bool:
    """One panel per column against step, as a PNG (matplotlib's Agg canvas); False when nothing to plot."""
    rows = log.read()
    columns = [k for k in (rows[0].keys() if rows else ()) if k != "step"]
    if not columns:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows = math.ceil(len(columns) / PLOT_COLUMNS)
    n_cols = min(PLOT_COLUMNS, len(columns))
    figure = Figure(figsize=(PANEL_INCHES[0] * n_cols, PANEL_INCHES[1] * n_rows))
    FigureCanvasAgg(figure)
    steps = [row["step"] for row in rows]
    for i, column in enumerate(columns):
        axes = figure.add_subplot(n_rows, n_cols, i + 1)
        points = [(s, row[column]) for s, row in zip(steps, rows) if math.isfinite(row[column])]
        if points:
            axes.plot(*zip(*points), marker="." if len(points) < 50 else None)
            if all(v > 0 for _, v in points) and max(v for _, v in points) > 10 * min(v for _, v in points):
                axes.set_yscale("log")
        axes.set_title(column, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.85, hspace=0.6, wspace=0.3)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=PLOT_DPI)
    return True
