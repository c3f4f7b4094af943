"""Tests for the paired per-file comparison of two bench conditions (nsac compare)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nsac.cli import main
from nsac.errors import ParameterError
from nsac.eval.paired import paired_changes

ROWS = [  # file, condition, pesq_wb, mel_distance
    ("a.flac", "plain", "2.0", "7.0"), ("a.flac", "enh", "2.5", "6.0"),
    ("b.flac", "plain", "3.0", "5.0"), ("b.flac", "enh", "2.8", "5.5"),
    ("c.flac", "plain", "1.0", "9.0"), ("c.flac", "enh", "1.3", ""),  # an unscored value is skipped
    ("d.flac", "plain", "1.5", "8.0"),  # scored under one condition only
]


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "condition", "pesq_wb", "mel_distance"])
        writer.writerows(ROWS)
    return path


def test_changes_follow_each_metrics_direction(results: Path) -> None:
    pesq, mel = paired_changes(results, base="plain", test="enh", columns=["pesq_wb", "mel_distance"])
    assert pesq.n_files == 3 and pesq.n_better == 2
    assert pesq.mean_change == pytest.approx((0.5 - 0.2 + 0.3) / 3)
    # Student t with 2 degrees of freedom (t = 4.3027) times the changes' std (0.13 ** 0.5) over sqrt(3)
    assert pesq.change_ci95 == pytest.approx(4.3027 * 0.13 ** 0.5 / 3 ** 0.5, rel=1e-4)
    assert (pesq.worst_file, pesq.worst_change) == ("b.flac", pytest.approx(-0.2))
    assert mel.n_files == 2 and mel.n_better == 1 and not mel.higher_is_better
    assert (mel.worst_file, mel.worst_change) == ("b.flac", pytest.approx(0.5))  # distance up: worse


def test_unknown_conditions_and_columns_are_named(results: Path) -> None:
    with pytest.raises(ParameterError, match="'x' is not in .* it has enh, plain"):
        paired_changes(results, base="plain", test="x")
    with pytest.raises(ParameterError, match="unknown score column 'loudness'"):
        paired_changes(results, base="plain", test="enh", columns=["loudness"])
    with pytest.raises(ParameterError, match="cannot read bench results"):
        paired_changes(results.parent / "missing.csv", base="plain", test="enh")


def test_the_cli_prints_a_table(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(results), "--base", "plain", "--test", "enh"]) == 0
    out = capsys.readouterr().out
    assert "| pesq_wb | 2.000 | 2.200 | +0.200 ± 0.896 | 2/3 | -0.200 (b.flac) |" in out
