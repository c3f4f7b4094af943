"""The analysis: hand-computed means and t-intervals, BS.1534-3 post-screening, its files, the report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nsac.cli import main
from nsac.errors import NsacError
from nsac.listen.analysis import analyse, analyse_database, mean_ci95, screen
from nsac.listen.report_section import SECTION_END, SECTION_START
from nsac.listen.spec import ALL_ITEMS, DB_NAME, read_spec
from nsac.listen.store import RatingRow, RatingStore

#: Student-t quantiles t_{0.975, dof} from a printed table
T_975 = {2: 4.302653, 5: 2.570582}
TOLERANCE = 1e-5
CONDITIONS = {"ref": ("hidden reference", "reference"), "c01": ("codec A", "codec"),
              "lp35": ("anchor: low-pass 3.5 kHz", "anchor")}
#: listener -> item -> condition id -> score; "zed" is careless (hidden reference at 50 everywhere)
RATINGS = {
    "ann": {"x1": {"ref": 100, "c01": 60, "lp35": 10}, "x2": {"ref": 100, "c01": 65, "lp35": 20}},
    "bob": {"x1": {"ref": 95, "c01": 70, "lp35": 15}, "x2": {"ref": 100, "c01": 75, "lp35": 10}},
    "cat": {"x1": {"ref": 100, "c01": 80, "lp35": 5}, "x2": {"ref": 90, "c01": 70, "lp35": 25}},
    "zed": {"x1": {"ref": 50, "c01": 0, "lp35": 100}, "x2": {"ref": 50, "c01": 0, "lp35": 100}},
}


def _rows(ratings: dict = RATINGS) -> list[RatingRow]:
    return [RatingRow(listener, item, f"{item}.wav", condition, *CONDITIONS[condition], score, "t")
            for listener, items in ratings.items() for item, scores in items.items()
            for condition, score in scores.items()]


def _stat(analysis, scope: str, label: str):
    return next(s for s in analysis.stats if s.scope == scope and s.condition == label)


def test_mean_and_interval_match_the_hand_computation() -> None:
    analysis = analyse(_rows())
    # codec A over the kept listeners: 60 70 80 65 75 70 -> mean 70, s^2 = 250 / 5 = 50
    overall = _stat(analysis, ALL_ITEMS, "codec A")
    assert overall.n == 6 and overall.mean == pytest.approx(70.0)
    assert overall.std == pytest.approx(math.sqrt(50.0))
    assert overall.ci95 == pytest.approx(T_975[5] * math.sqrt(50.0 / 6), abs=TOLERANCE)  # 7.42062
    # item x1: 60 70 80 -> mean 70, s = 10
    item = _stat(analysis, "x1.wav", "codec A")
    assert (item.n, item.mean, item.std) == (3, pytest.approx(70.0), pytest.approx(10.0))
    assert item.ci95 == pytest.approx(T_975[2] * 10.0 / math.sqrt(3), abs=TOLERANCE)  # 24.84138
    # hidden reference: 100 100 95 100 100 90 -> mean 97.5
    assert _stat(analysis, ALL_ITEMS, "hidden reference").mean == pytest.approx(97.5)
    assert [s.condition for s in analysis.stats if s.scope == ALL_ITEMS] == \
        ["hidden reference", "codec A", "anchor: low-pass 3.5 kHz"]
    assert mean_ci95([42]) == (42.0, pytest.approx(math.nan, nan_ok=True))


def test_post_screening_excludes_the_careless_listener() -> None:
    analysis = analyse(_rows())
    assert [(s.listener_id, s.excluded) for s in analysis.screening] == \
        [("ann", False), ("bob", False), ("cat", False), ("zed", True)]
    zed = analysis.excluded[0]
    assert (zed.n_items, zed.n_low_reference) == (2, 2)
    assert "below 90 on 2 of 2 items" in zed.reason
    report = analysis.text_report()
    assert "4 listeners, 3 kept" in report and "excluded zed: rated the hidden reference below 90" in report


def test_post_screening_threshold_is_more_than_15_percent() -> None:
    """20 items: the hidden reference below 90 on 3 (15 %) keeps a listener, on 4 (20 %) excludes them."""
    def listener(name: str, n_low: int) -> list[RatingRow]:
        return [RatingRow(name, f"i{i}", f"i{i}", "ref", "hidden reference", "reference",
                          89 if i < n_low else 90, "t") for i in range(20)]
    verdicts = {s.listener_id: s.excluded for s in screen(listener("three", 3) + listener("four", 4))}
    assert verdicts == {"three": False, "four": True}


def test_analysis_of_an_empty_database_is_refused(built_bench: Path) -> None:
    with pytest.raises(NsacError, match="no ratings yet"):
        analyse_database(built_bench / "listening" / DB_NAME)
    with pytest.raises(NsacError, match="no such ratings database"):
        analyse_database(built_bench / "missing.sqlite")


def _fill(folder: Path) -> None:
    """Ann, Bob and Cat rate every item sensibly; Zed gives the hidden reference 40 throughout."""
    spec = read_spec(folder)
    store = RatingStore(folder / DB_NAME)
    for name, reference, codec in (("Ann", 100, 60), ("Bob", 95, 70), ("Cat", 100, 80), ("Zed", 40, 90)):
        store.listener(name, spec)
        for item in spec.items:
            scores = {c: reference if c == "ref" else codec if c.startswith("c") else 20
                      for c in item.stimuli}
            store.save_page(name, item.id, scores)


def test_results_files_and_bench_report(built_bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = built_bench / "listening"
    _fill(folder)
    assert main(["listen", "--results", str(folder / DB_NAME)]) == 0
    out = capsys.readouterr().out
    assert "4 listeners, 3 kept" in out and "excluded Zed" in out
    with (folder / "mushra.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    opus = next(r for r in rows if r["item"] == ALL_ITEMS and r["condition"] == "opus@6000")
    assert int(opus["n"]) == 9 and float(opus["mean"]) == pytest.approx(70.0)
    # three 60s, three 70s, three 80s: s^2 = 600 / 8 = 75, t_{0.975, 8} = 2.306004
    assert float(opus["ci95"]) == pytest.approx(2.306004 * math.sqrt(75.0) / 3, rel=1e-3)
    with (folder / "mushra_screening.csv").open(newline="") as stream:
        assert [r["listener"] for r in csv.DictReader(stream) if r["excluded"] == "1"] == ["Zed"]
    assert (folder / "mushra.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (built_bench / "report.html").read_text()
    assert report.count(SECTION_START) == 1 and "Listening test (MUSHRA)" in report
    assert 'src="listening/mushra.png"' in report and "Zed" in report
    assert report.index(SECTION_END) < report.index("<h2>Errors</h2>")
    # a second analysis replaces the section instead of adding one
    assert main(["listen", "--results", str(folder / DB_NAME)]) == 0
    assert (built_bench / "report.html").read_text().count(SECTION_START) == 1
    document = json.loads((folder / "mushra.json").read_text())
    assert document["boxplot"] == "mushra.png" and len(document["screening"]) == 4


def test_bench_report_carries_the_section(built_bench: Path) -> None:
    """nsac/eval/report.py asks for the section when it writes report.html (empty markers before analysis)."""
    from nsac.listen.report_section import listening_section

    assert listening_section(built_bench) == SECTION_START + SECTION_END
    _fill(built_bench / "listening")
    analyse_database(built_bench / "listening" / DB_NAME)
    assert "mushra.csv" in listening_section(built_bench)
