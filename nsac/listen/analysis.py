"""Analysis of MUSHRA ratings per ITU-R BS.1534-3: post-screening, means with 95 % t-intervals, box plot, CSV.

Post-screening of assessors (BS.1534-3): an assessor who rates the hidden reference below 90 for more than
15 % of the items they rated is excluded from the analysis, and the report names them. The remaining
scores give, per condition, the mean and the half-width of the two-sided 95 % Student-t confidence interval
(t_{0.975, n-1} * s / sqrt(n), s the sample standard deviation, as BS.1534-3 asks) over every score
of every item ("all items"), and the same per item.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nsac.errors import NsacError
from nsac.listen.spec import (
    ALL_ITEMS,
    BOXPLOT_PNG,
    HIDDEN_REFERENCE,
    LOW_ANCHOR,
    MID_ANCHOR,
    RESULTS_JSON,
    SCREENING_CSV,
    STATS_CSV,
)
from nsac.listen.store import RatingRow, RatingStore

#: BS.1534-3 post-screening: hidden-reference score below this, on more than this fraction of items
REFERENCE_MIN_SCORE = 90
MAX_LOW_REFERENCE_FRACTION = 0.15
CONFIDENCE = 0.95
#: the MUSHRA scale's bands, lower bound -> label
SCALE_LABELS = ((80, "Excellent"), (60, "Good"), (40, "Fair"), (20, "Poor"), (0, "Bad"))
BOXPLOT_DPI = 100
BOXPLOT_HEIGHT_IN = 4.5
BOXPLOT_WIDTH_PER_CONDITION_IN = 0.9
BOXPLOT_MIN_WIDTH_IN = 5.0
#: score axis margin so that points at 0 and 100 are not cut by the frame
BOXPLOT_MARGIN = 3
_KIND_ORDER = {"reference": 0, "codec": 1, "anchor": 2}
_ANCHOR_ORDER = {MID_ANCHOR: 0, LOW_ANCHOR: 1}


@dataclass(frozen=True)
class Screening:
    """One listener's post-screening: items rated, items with the hidden reference below 90, the verdict."""

    listener_id: str
    n_items: int
    n_low_reference: int
    excluded: bool

    @property
    def low_fraction(self) -> float:
        return self.n_low_reference / self.n_items if self.n_items else 0.0

    @property
    def reason(self) -> str:
        if not self.excluded:
            return ""
        return (f"rated the hidden reference below {REFERENCE_MIN_SCORE} on {self.n_low_reference} of "
                f"{self.n_items} items ({self.low_fraction:.0%} > {MAX_LOW_REFERENCE_FRACTION:.0%})")


@dataclass(frozen=True)
class Stats:
    """Scores of one condition over one item (or all items): count, mean, 95 % half-width, std, median."""

    scope: str
    condition: str
    kind: str
    n: int
    mean: float
    ci95: float
    std: float
    median: float


@dataclass
class Analysis:
    screening: list[Screening]
    stats: list[Stats]
    #: condition label -> the kept scores over all items (for the box plot)
    scores: dict[str, list[int]]
    n_items: int
    files_written: list[Path] = field(default_factory=list)

    @property
    def excluded(self) -> list[Screening]:
        return [s for s in self.screening if s.excluded]

    def text_report(self) -> str:
        kept = len(self.screening) - len(self.excluded)
        lines = [(f"MUSHRA: {len(self.screening)} listeners, {kept} kept after post-screening, "
                  f"{self.n_items} items")]
        lines += [f"excluded {s.listener_id}: {s.reason}" for s in self.excluded]
        lines.append(f"{'condition':<28}{'n':>5}{'mean':>8}{'95% CI':>10}")
        for stat in self.stats:
            if stat.scope == ALL_ITEMS:
                half = "" if math.isnan(stat.ci95) else f"± {stat.ci95:.1f}"
                lines.append(f"{stat.condition:<28}{stat.n:>5}{stat.mean:>8.1f}{half:>10}")
        return "\n".join(lines) + "\n"


def mean_ci95(scores: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95 % Student-t interval; the half-width is NaN for one score."""
    from scipy.stats import t

    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if values.size == 1:
        return mean, math.nan
    half = t.ppf(0.5 + CONFIDENCE / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return mean, float(half)


def screen(rows: Sequence[RatingRow]) -> list[Screening]:
    """BS.1534-3 post-screening of every listener who rated the hidden reference at least once."""
    reference: dict[str, list[int]] = {}
    for row in rows:
        if row.condition_id == HIDDEN_REFERENCE:
            reference.setdefault(row.listener_id, []).append(row.score)
    result = []
    for listener_id in sorted(reference):
        scores = reference[listener_id]
        low = sum(score < REFERENCE_MIN_SCORE for score in scores)
        excluded = low / len(scores) > MAX_LOW_REFERENCE_FRACTION
        result.append(Screening(listener_id, len(scores), low, excluded))
    return result


def _condition_order(rows: Sequence[RatingRow]) -> list[tuple[str, str]]:
    """(label, kind) of every condition: hidden reference, codecs in test order, 7 and 3.5 kHz anchors."""

    def rank(condition: tuple[str, str, str]) -> tuple[int, int, str]:
        condition_id, _, kind = condition
        return _KIND_ORDER.get(kind, len(_KIND_ORDER)), _ANCHOR_ORDER.get(condition_id, 0), condition_id

    found = {(row.condition_id, row.label, row.kind) for row in rows}
    return [(label, kind) for _, label, kind in sorted(found, key=rank)]


def _stats(scope: str, label: str, kind: str, scores: Sequence[int]) -> Stats:
    mean, half = mean_ci95(scores)
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan
    return Stats(scope, label, kind, len(scores), mean, half, std, float(np.median(scores)))


def analyse(rows: Sequence[RatingRow]) -> Analysis:
    """Post-screen the listeners, then summarise the kept scores per condition, overall and per item."""
    if not rows:
        raise NsacError("the database holds no ratings yet: nothing to analyse")
    screening = screen(rows)
    excluded = {s.listener_id for s in screening if s.excluded}
    kept = [row for row in rows if row.listener_id not in excluded]
    conditions = _condition_order(rows)
    items = sorted({row.item_name for row in rows})
    stats: list[Stats] = []
    scores: dict[str, list[int]] = {}
    for label, kind in conditions:
        scores[label] = [row.score for row in kept if row.label == label]
        if scores[label]:
            stats.append(_stats(ALL_ITEMS, label, kind, scores[label]))
    for item in items:
        for label, kind in conditions:
            own = [row.score for row in kept if row.label == label and row.item_name == item]
            if own:
                stats.append(_stats(item, label, kind, own))
    return Analysis(screening=screening, stats=stats, scores=scores, n_items=len(items))


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4g}"


def write_outputs(analysis: Analysis, out: Path) -> list[Path]:
    """mushra.csv (statistics), mushra_screening.csv, mushra.json and, with matplotlib, mushra.png."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / STATS_CSV, out / SCREENING_CSV, out / RESULTS_JSON]
    with (out / STATS_CSV).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["item", "condition", "kind", "n", "mean", "ci95", "ci_low", "ci_high", "std",
                         "median"])
        for s in analysis.stats:
            writer.writerow([s.scope, s.condition, s.kind, s.n, _cell(s.mean), _cell(s.ci95),
                             _cell(s.mean - s.ci95), _cell(s.mean + s.ci95), _cell(s.std), _cell(s.median)])
    with (out / SCREENING_CSV).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["listener", "items", "reference_below_90", "fraction", "excluded", "reason"])
        for s in analysis.screening:
            writer.writerow([s.listener_id, s.n_items, s.n_low_reference, f"{s.low_fraction:.3f}",
                             int(s.excluded), s.reason])
    document = {
        "confidence": CONFIDENCE, "n_items": analysis.n_items,
        "screening": [{**asdict(s), "reason": s.reason} for s in analysis.screening],
        "stats": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(s).items()}
                  for s in analysis.stats],
        "boxplot": BOXPLOT_PNG if boxplot_png(analysis, out / BOXPLOT_PNG) else None,
    }
    (out / RESULTS_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if document["boxplot"]:
        written.append(out / BOXPLOT_PNG)
    return written


def boxplot_png(analysis: Analysis, path: Path) -> bool:
    """Box plot of the kept scores per condition, with mean and 95 % interval; False without matplotlib."""
    from nsac.eval.plots import matplotlib_available

    if not matplotlib_available():
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [label for label, values in analysis.scores.items() if values]
    overall = {s.condition: s for s in analysis.stats if s.scope == ALL_ITEMS}
    width = max(BOXPLOT_MIN_WIDTH_IN, BOXPLOT_WIDTH_PER_CONDITION_IN * len(labels) + 2)
    figure = Figure(figsize=(width, BOXPLOT_HEIGHT_IN))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(1, len(labels) + 1)
    axes.boxplot([analysis.scores[label] for label in labels], positions=positions, widths=0.5)
    means = [overall[label].mean for label in labels]
    halves = [0.0 if math.isnan(overall[label].ci95) else overall[label].ci95 for label in labels]
    axes.errorbar(positions + 0.3, means, yerr=halves, fmt="o", color="tab:red", capsize=3,
                  label=f"mean and {CONFIDENCE:.0%} interval")
    axes.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylim(-BOXPLOT_MARGIN, 100 + BOXPLOT_MARGIN)
    for lower, _ in SCALE_LABELS[:-1]:
        axes.axhline(lower, color="0.85", linewidth=0.8, zorder=0)
    for lower, name in SCALE_LABELS:
        axes.text(len(labels) + 0.7, lower + 10, name, fontsize=7, va="center", color="0.4")
    axes.set_xlim(0.4, len(labels) + 1.4)
    kept = len(analysis.screening) - len(analysis.excluded)
    axes.set_title(f"MUSHRA: {kept} listeners after post-screening, {analysis.n_items} items", fontsize=9)
    axes.set_ylabel("score")
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=BOXPLOT_DPI)
    return True


def analyse_database(db: Path, *, out: Path | None = None) -> Analysis:
    """Analyse a ratings database, write the outputs beside it (or in `out`), update the bench report."""
    from nsac.listen.report_section import update_bench_report

    analysis = analyse(RatingStore(db).rows())
    folder = out if out is not None else Path(db).parent
    analysis.files_written = write_outputs(analysis, folder)
    report = update_bench_report(folder)
    if report is not None:
        analysis.files_written.append(report)
    return analysis


__all__ = ["Analysis", "Screening", "Stats", "analyse", "analyse_database", "mean_ci95", "screen",
           "write_outputs"]
