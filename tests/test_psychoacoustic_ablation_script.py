"""scripts/psychoacoustic_ablation.py: its tables from a fake results.csv (no training, no bench run)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nsac.errors import ParameterError, WeightsError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "psychoacoustic_ablation.py"
BASE, PSY = "ae-base", "ae-psy"
COLUMNS = ("file", "condition", "codec", "nominal_bitrate_bps", "payload_kbps", "nmr", "nmr_audible_frames",
           "visqol_speech", "dnsmos_ovrl", "error")
#: per model and bitrate: (payload kb/s, NMR dB, ViSQOL, DNSMOS) of file a; file b scores 0.2 higher
SCORES = {
    (BASE, 1500): (1.6, 14.0, 2.0, 2.5), (BASE, 3000): (3.2, 10.0, 2.6, 2.9), (BASE, 6000): (6.4, 6.0, 3.2, 3.1),
    (PSY, 1500): (1.6, 12.0, 2.4, 2.6), (PSY, 3000): (3.2, 8.0, 3.0, 3.0), (PSY, 6000): (6.4, 4.0, 3.4, 3.2),
}


@pytest.fixture(scope="module")
def ablation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("psychoacoustic_ablation", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _fake_rows(ablation: ModuleType) -> list[dict[str, str]]:
    rows = []
    for (name, rate), (kbps, nmr, visqol, dnsmos) in SCORES.items():
        for offset, file in ((0.0, "a.flac"), (0.2, "b.flac")):
            rows.append({"file": file, "condition": ablation.condition_spec(name, rate, entropy_coding=False),
                         "codec": "autoencoder", "nominal_bitrate_bps": str(rate), "payload_kbps": str(kbps),
                         "nmr": str(nmr + offset), "visqol_speech": str(visqol + offset),
                         "dnsmos_ovrl": str(dnsmos + offset), "error": ""})
    # rows the tables must leave out: a failed file, the range-coded packets, another codec
    rows.append({"file": "c.flac", "condition": ablation.condition_spec(BASE, 1500, entropy_coding=False),
                 "codec": "autoencoder", "error": "internal error: boom"})
    rows.append({"file": "a.flac", "condition": ablation.condition_spec(BASE, 1500, entropy_coding=True),
                 "codec": "autoencoder", "payload_kbps": "1.1", "visqol_speech": "4.9", "error": ""})
    rows.append({"file": "a.flac", "condition": "opus@6000", "codec": "opus", "visqol_speech": "4.0", "error": ""})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_curves_average_the_files_and_skip_failures_and_other_conditions(ablation: ModuleType) -> None:
    curves = ablation.curves(_fake_rows(ablation), [BASE, PSY])
    assert [p.nominal_bps for p in curves[BASE]] == [1500, 3000, 6000]
    low = curves[BASE][0]
    assert (low.n_files, low.n_failed) == (2, 1)
    assert low.actual_kbps == pytest.approx(1.6)
    assert low.nmr_db == pytest.approx(14.1) and low.visqol == pytest.approx(2.1)
    assert low.dnsmos == pytest.approx(2.6)
    coded = ablation.curves(_fake_rows(ablation), [BASE], entropy_coding=True)[BASE]
    assert len(coded) == 1 and coded[0].visqol == pytest.approx(4.9)


def test_the_bitrate_for_a_visqol_is_interpolated_and_never_extrapolated(ablation: ModuleType) -> None:
    curves = ablation.curves(_fake_rows(ablation), [BASE, PSY])
    # base: ViSQOL 2.1 at 1.6 kb/s, 2.7 at 3.2, 3.3 at 6.4; 3.0 lies halfway between 3.2 and 6.4 kb/s
    kbps, text = ablation.bitrate_for_visqol(curves[BASE], 3.0)
    assert kbps == pytest.approx(4.8) and text == "4.80"
    kbps, text = ablation.bitrate_for_visqol(curves[PSY], 2.0)
    assert kbps is None and text.startswith("<= 1.60")
    kbps, text = ablation.bitrate_for_visqol(curves[PSY], 3.9)
    assert kbps is None and text.startswith("> 6.40")


def test_the_report_holds_both_tables(ablation: ModuleType) -> None:
    report = ablation.ablation_report(_fake_rows(ablation), [BASE, PSY], targets=[3.0])
    lines = report.splitlines()
    assert "| 1.5 | base (ae-base) | 1.600 | 14.10 | 2.100 | 2.600 | 2 (1 failed) |" in lines
    assert "| 6 | psy (ae-psy) | 6.400 | 4.10 | 3.500 | 3.300 | 2 |" in lines
    assert "| 3 | psy (ae-psy) - base (ae-base) | 0.000 | -2.00 | 0.400 | 0.100 | |" in lines
    # psy reaches 3.0 between 1.6 kb/s (2.5) and 3.2 kb/s (3.1): at 1.6 + 1.6 * 5/6
    assert "| 3 | 4.80 | 2.93 |" in lines
    assert "linear interpolation" in report and "fixed-length packets" in report


def test_the_default_target_is_the_middle_of_the_shared_visqol_range(ablation: ModuleType) -> None:
    curves = ablation.curves(_fake_rows(ablation), [BASE, PSY])
    assert ablation.default_visqol_target(curves) == pytest.approx((2.5 + 3.3) / 2)
    report = ablation.ablation_report(_fake_rows(ablation), [BASE, PSY])
    assert "| 2.9 |" in report and "middle of the ViSQOL range" in report


def test_table_only_prints_from_results_csv(ablation: ModuleType, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "results.csv", _fake_rows(ablation))
    assert ablation.main([BASE, PSY, "--data", "unused.csv", "--out", str(tmp_path), "--table-only",
                          "--visqol-target", "3.0"]) == 0
    assert "| 3 | 4.80 | 2.93 |" in capsys.readouterr().out
    with pytest.raises(ParameterError, match="no autoencoder rows of ae-other"):
        ablation.main([BASE, "ae-other", "--data", "unused.csv", "--out", str(tmp_path), "--table-only"])


def test_the_bench_command_codes_every_model_at_every_bitrate(ablation: ModuleType, tmp_path: Path) -> None:
    command = ablation.bench_command([BASE, PSY], (1500, 3000), data="m.csv", out=tmp_path, split="test",
                                     limit=None, jobs=1, entropy_coding=False)
    specs = [command[i + 1] for i, word in enumerate(command) if word == "--codec"]
    assert specs == [f"autoencoder@{r}:weights={n}:entropy_coding=false" for n in (BASE, PSY)
                     for r in (1500, 3000)]
    assert command[:2] == ["nsac", "bench"] and "--limit" not in command
    assert command[command.index("--metrics") + 1] == "nmr,visqol_speech,dnsmos"
    assert command[command.index("--split") + 1] == "test"


def test_unknown_weights_and_missing_checkpoints_are_refused(ablation: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="nsac export"):
        ablation.resolve_weights("no-such-weights", "base", tmp_path)
    with pytest.raises(ParameterError, match="no such checkpoint"):
        ablation.resolve_weights(str(tmp_path / "missing.pt"), "base", tmp_path)


def test_an_unregistered_codec_is_refused_with_what_to_add(ablation: ModuleType,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import nsac.codecs

    monkeypatch.delitem(nsac.codecs._CODEC_CLASSES, "autoencoder", raising=False)
    with pytest.raises(ParameterError, match="_CODEC_CLASSES"):
        ablation.check_codec_reachable()
