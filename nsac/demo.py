"""`nsac demo`: bench the legacy anchors and every nsac codec with shipped weights on the shipped example."""

from __future__ import annotations

from pathlib import Path

from nsac.codecs import codec_class, list_codecs
from nsac.eval.bench import BenchConfig, BenchResult, run_bench
from nsac.eval.bench_inputs import parse_condition
from nsac.eval.summary import markdown_table
from nsac.examples import example_path

#: the legacy anchors of the demo, as bench condition specs
LEGACY_ANCHORS = ("opus@6000", "opus@12000", "codec2@3200", "amrwb@12650", "lpcnet-freedv")
#: the quality columns the demo prints beside the costs (the full set is in report.html)
DEMO_COLUMNS = ("pesq_wb", "stoi", "visqol_speech", "dnsmos_ovrl")


def demo_conditions() -> list[str]:
    """The anchors that can run here, then every available non-legacy codec at its default settings."""
    specs = [spec for spec in LEGACY_ANCHORS if codec_class(parse_condition(spec).codec).availability()[0]]
    specs += [info.name for info in list_codecs() if info.kind != "legacy" and info.available]
    return specs


def run_demo(*, out_dir: Path, data: str | None = None) -> BenchResult:
    """Bench the demo conditions on `data` (default: the shipped example); print the table and the report path."""
    source = Path(data) if data else example_path("speech")
    specs = demo_conditions()
    skipped = [spec for spec in LEGACY_ANCHORS if spec not in specs]
    print(f"nsac demo: {len(specs)} conditions on {source} -> {out_dir}/")
    if skipped:
        print(f"(not installed here, skipped: {', '.join(skipped)}; see `nsac codecs`)")
    config = BenchConfig(
        conditions=tuple(parse_condition(spec) for spec in specs),
        data=source,
        out=out_dir,
        jobs=1,
        progress=False,
        listen_files=1,
        command=f"nsac demo --out {out_dir}" + (f" --data {data}" if data else ""),
    )
    result = run_bench(config)
    present = {column for entry in result.summary for column in entry["values"]}
    columns = [c for c in DEMO_COLUMNS if c in present]
    print(markdown_table(result.summary, columns), end="")
    print(f"report: {result.out / 'report.html'} (open it in a browser: players, spectrograms, all metrics)")
    return result
