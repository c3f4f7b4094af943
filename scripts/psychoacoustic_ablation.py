"""The psychoacoustic ablation (issue 8): bench two autoencoders at several bitrates and print its tables.

Given the control and the test arm (exported weight names, or training checkpoints), this runs ``nsac bench``
with the ``autoencoder`` codec at each bitrate for both, scoring NMR, ViSQOL (speech) and DNSMOS, then prints
two markdown tables from the bench's results.csv:

1. at each bitrate, per model: the actual kb/s (the payload bytes the bench measured), NMR (dB, lower is
   better), ViSQOL and DNSMOS OVRL, means over the files;
2. the bitrate each model needs to reach a given ViSQOL, read off its rate-quality curve by linear
   interpolation in kb/s between the two benched bitrates around the target (never extrapolated).

Packets are fixed-length by default (``entropy_coding=false``), so both models code at exactly the same
actual bitrate and the first table compares them at equal rate; ``--entropy-coding`` benches the
range-coded packets instead, whose rate depends on each model's code statistics (then the second table is
the fair comparison). The steps, with the recipes autoencoder-16k-ablation-{base,psy}::

    nsac train autoencoder-16k-ablation-base --data ../shared/data/speech/train --out runs/ablation-base
    nsac train autoencoder-16k-ablation-psy --data ../shared/data/speech/train --out runs/ablation-psy
    nsac export runs/ablation-base/checkpoints/last.pt --name ae-ablation-base --pretrained-dir runs/weights
    nsac export runs/ablation-psy/checkpoints/last.pt --name ae-ablation-psy --pretrained-dir runs/weights
    python scripts/psychoacoustic_ablation.py ae-ablation-base ae-ablation-psy --weights-dir runs/weights \\
        --data ../shared/data/manifest.csv --split test --out runs/ablation-bench

(checkpoints may be given instead of names: they are exported into --weights-dir as ablation-base and
ablation-psy). The bench resumes: running the script again re-prints the tables from what is done;
``--table-only`` prints them without benching.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nsac.errors import NsacError, ParameterError, WeightsError

CODEC = "autoencoder"
#: the bench metrics the table needs, and the results.csv columns it reads
METRICS = ("nmr", "visqol_speech", "dnsmos")
NMR_COLUMN, VISQOL_COLUMN, DNSMOS_COLUMN = "nmr", "visqol_speech", "dnsmos_ovrl"
RATE_COLUMN = "payload_kbps"  # the coded payload's bytes over the audio's duration
DEFAULT_BITRATES_BPS = (1500, 3000, 6000)  # 3, 6 and 12 codebooks of 1024 entries at 50 frames/s
LABELS = ("base", "psy")  # the two arms, in table order
CHECKPOINT_SUFFIXES = (".pt", ".pth")
RESULTS_NAME = "results.csv"
_BITS_PER_KILOBIT = 1000.0


# --- the bench ------------------------------------------------------------------------------------------

def condition_spec(weights: str, bitrate_bps: int, *, entropy_coding: bool) -> str:
    """The `nsac bench --codec` spec of one model at one bitrate."""
    spec = f"{CODEC}@{bitrate_bps}:weights={weights}"
    return spec if entropy_coding else spec + ":entropy_coding=false"


def bench_command(weights: Sequence[str], bitrates_bps: Sequence[int], *, data: str, out: Path,
                  split: str | None, limit: int | None, jobs: int | None, entropy_coding: bool) -> list[str]:
    """The `nsac bench` command line that benches every model at every bitrate into `out`."""
    command = ["nsac", "bench"]
    for name in weights:
        for rate in bitrates_bps:
            command += ["--codec", condition_spec(name, rate, entropy_coding=entropy_coding)]
    command += ["--data", data, "--out", str(out), "--metrics", ",".join(METRICS), "--listen", "0"]
    for option, value in (("--split", split), ("--limit", limit), ("--jobs", jobs)):
        if value is not None:
            command += [option, str(value)]
    return command


def resolve_weights(spec: str, label: str, weights_dir: Path) -> str:
    """A weights name in `weights_dir` for `spec`: the name itself, or a checkpoint exported there first."""
    from nsac.pretrained import list_pretrained

    path = Path(spec)
    if path.suffix in CHECKPOINT_SUFFIXES or path.is_file():
        if not path.is_file():
            raise ParameterError(f"{spec}: no such checkpoint; give a training checkpoint (e.g. "
                                 "runs/ablation-base/checkpoints/last.pt) or an exported weights name")
        from nsac.train.export import export_checkpoint

        name = f"ablation-{label}"
        export_checkpoint(path, name, directory=weights_dir)
        print(f"exported {path} as {name} into {weights_dir}")
        return name
    if spec not in list_pretrained(weights_dir):
        raise WeightsError(f"no weights {spec!r} in {weights_dir} (it holds "
                           f"{', '.join(list_pretrained(weights_dir)) or 'none'}); export them with `nsac "
                           f"export RUN/checkpoints/last.pt --name {spec} --pretrained-dir {weights_dir}`, "
                           "or give the checkpoint itself")
    return spec


def check_codec_reachable() -> None:
    """Refuse early, with what to do, when `nsac bench` could not build the autoencoder codec."""
    from nsac.codecs import codec_names

    if CODEC not in codec_names():
        raise ParameterError(
            f"`nsac bench` does not know the {CODEC!r} codec: it is not in the codec registry yet "
            f"(nsac/codecs/__init__.py, _CODEC_CLASSES: add \"{CODEC}\": "
            "\"nsac.codecs.autoencoder.codec:AutoencoderCodec\"); --table-only prints the tables of an "
            "existing bench")


def run_bench(command: Sequence[str], *, weights_dir: Path) -> None:
    """Run `nsac bench` (this interpreter's nsac) with NSAC_PRETRAINED_DIR set to `weights_dir`."""
    from nsac.pretrained import ENV_DIR

    print(f"{ENV_DIR}={shlex.quote(str(weights_dir))} {shlex.join(command)}", flush=True)
    env = {**os.environ, ENV_DIR: str(weights_dir)}
    done = subprocess.run([sys.executable, "-m", "nsac", *command[1:]], env=env, check=False)
    if done.returncode != 0:
        raise NsacError(f"nsac bench exited with status {done.returncode} (its message is above)")


# --- the tables -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One model at one bitrate: means over the files scored without error."""

    nominal_bps: int
    actual_kbps: float
    nmr_db: float
    visqol: float
    dnsmos: float
    n_files: int
    n_failed: int


def read_results(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ParameterError(f"{path}: no bench results; run the script without --table-only first")
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _number(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def curves(rows: Sequence[Mapping[str, str]], weights: Sequence[str], *, entropy_coding: bool = False
           ) -> dict[str, list[Point]]:
    """Each model's rate-quality points, by nominal bitrate, from results.csv rows of the autoencoder.

    Only rows of the packet kind asked for count (a bench folder may hold both kinds).
    """
    from nsac.eval.bench_inputs import parse_condition

    grouped: dict[tuple[str, int], list[Mapping[str, str]]] = {}
    for row in rows:
        condition = parse_condition(row["condition"])
        options = dict(condition.options)
        name = options.get("weights")
        if (condition.codec != CODEC or name not in weights or condition.bitrate_bps is None
                or bool(options.get("entropy_coding", True)) != entropy_coding):
            continue
        grouped.setdefault((name, condition.bitrate_bps), []).append(row)
    result: dict[str, list[Point]] = {name: [] for name in weights}
    for (name, rate), group in sorted(grouped.items(), key=lambda item: item[0][1]):
        good = [row for row in group if not row.get("error")]
        result[name].append(Point(
            nominal_bps=rate, actual_kbps=_mean([_number(r.get(RATE_COLUMN)) for r in good]),
            nmr_db=_mean([_number(r.get(NMR_COLUMN)) for r in good]),
            visqol=_mean([_number(r.get(VISQOL_COLUMN)) for r in good]),
            dnsmos=_mean([_number(r.get(DNSMOS_COLUMN)) for r in good]),
            n_files=len(good), n_failed=len(group) - len(good)))
    return result


def bitrate_for_visqol(points: Sequence[Point], target: float) -> tuple[float | None, str]:
    """(kb/s at which the curve first reaches ViSQOL `target`, or None; the cell text for the table).

    Linear interpolation in actual kb/s between the two adjacent benched points around the target; a target
    at or under the lowest point reads "<= lowest kb/s", one the curve never reaches "> highest kb/s".
    """
    usable = sorted((p for p in points if math.isfinite(p.actual_kbps) and math.isfinite(p.visqol)),
                    key=lambda p: p.actual_kbps)
    if not usable:
        return None, "n/a (no scores)"
    if usable[0].visqol >= target:
        return None, f"<= {usable[0].actual_kbps:.2f} (reached at the lowest bitrate)"
    for low, high in itertools.pairwise(usable):
        if low.visqol < target <= high.visqol:
            share = (target - low.visqol) / (high.visqol - low.visqol)
            kbps = low.actual_kbps + share * (high.actual_kbps - low.actual_kbps)
            return kbps, f"{kbps:.2f}"
    return None, f"> {usable[-1].actual_kbps:.2f} (not reached)"


def default_visqol_target(curve_points: Mapping[str, Sequence[Point]]) -> float | None:
    """The middle of the ViSQOL range that every curve spans (None when they share none)."""
    spans = []
    for points in curve_points.values():
        scores = [p.visqol for p in points if math.isfinite(p.visqol)]
        if not scores:
            return None
        spans.append((min(scores), max(scores)))
    low, high = max(s[0] for s in spans), min(s[1] for s in spans)
    return round((low + high) / 2, 2) if spans and low <= high else None


def _cell(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def quality_table(curve_points: Mapping[str, Sequence[Point]], labels: Mapping[str, str]) -> str:
    """Markdown: one row per bitrate and model, and the test arm's difference from the control."""
    header = "| kb/s (nominal) | model | kb/s (actual) | NMR dB (lower: better) | ViSQOL | DNSMOS OVRL | files |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    names = list(curve_points)
    rates = sorted({p.nominal_bps for points in curve_points.values() for p in points})
    for rate in rates:
        at_rate = {name: next((p for p in curve_points[name] if p.nominal_bps == rate), None) for name in names}
        for name in names:
            p = at_rate[name]
            if p is None:
                lines.append(f"| {rate / _BITS_PER_KILOBIT:g} | {labels[name]} | not benched | | | | |")
                continue
            failed = f" ({p.n_failed} failed)" if p.n_failed else ""
            lines.append(f"| {rate / _BITS_PER_KILOBIT:g} | {labels[name]} | {_cell(p.actual_kbps, 3)} | "
                         f"{_cell(p.nmr_db, 2)} | {_cell(p.visqol, 3)} | {_cell(p.dnsmos, 3)} | "
                         f"{p.n_files}{failed} |")
        a, b = (at_rate[names[0]], at_rate[names[-1]]) if len(names) == 2 else (None, None)
        if a is not None and b is not None:
            lines.append(f"| {rate / _BITS_PER_KILOBIT:g} | {labels[names[1]]} - {labels[names[0]]} | "
                         f"{_cell(b.actual_kbps - a.actual_kbps, 3)} | {_cell(b.nmr_db - a.nmr_db, 2)} | "
                         f"{_cell(b.visqol - a.visqol, 3)} | {_cell(b.dnsmos - a.dnsmos, 3)} | |")
    return "\n".join(lines) + "\n"


def rate_table(curve_points: Mapping[str, Sequence[Point]], labels: Mapping[str, str],
               targets: Sequence[float]) -> str:
    """Markdown: the kb/s each model needs for each target ViSQOL (interpolated; see bitrate_for_visqol)."""
    names = list(curve_points)
    lines = ["| ViSQOL target | " + " | ".join(f"{labels[n]}: kb/s needed" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for target in targets:
        cells = [bitrate_for_visqol(curve_points[n], target)[1] for n in names]
        lines.append(f"| {target:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ablation_report(rows: Sequence[Mapping[str, str]], weights: Sequence[str], *,
                    targets: Sequence[float] = (), labels: Sequence[str] = LABELS,
                    entropy_coding: bool = False) -> str:
    """Both tables and their notes as markdown, from results.csv rows; `weights` in table order."""
    names = {name: f"{label} ({name})" for label, name in zip(labels, weights, strict=True)}
    curve_points = curves(rows, weights, entropy_coding=entropy_coding)
    missing = [name for name, points in curve_points.items() if not points]
    if missing:
        packets = "range-coded" if entropy_coding else "fixed-length"
        raise ParameterError(f"the results hold no {CODEC} rows of {', '.join(missing)} with {packets} "
                             "packets; bench them first (run the script without --table-only, with the same "
                             "--entropy-coding choice)")
    chosen = list(targets)
    note = ""
    if not chosen:
        middle = default_visqol_target(curve_points)
        if middle is not None:
            chosen = [middle]
            note = (f" The target {middle:g} is the middle of the ViSQOL range both curves span "
                    "(--visqol-target sets others).")
    text = quality_table(curve_points, names)
    packets = ("range-coded packets (entropy_coding=true): each model's rate follows its code statistics"
               if entropy_coding else "fixed-length packets (entropy_coding=false): both models code at the "
               "same rate")
    text += (f"\nMeans over the files; {packets}. kb/s (actual): the coded payload's bytes over the audio's "
             "duration, as the bench measured them. NMR: noise-to-mask ratio (psychoacoustic model 1, nsac/eval/nmr.py). "
             "ViSQOL: speech mode, MOS-LQO. DNSMOS: overall quality, non-intrusive.\n\n")
    if chosen:
        text += rate_table(curve_points, names, chosen)
        text += ("\nkb/s needed: the actual bitrate at which the model's mean ViSQOL reaches the target, by "
                 "linear interpolation in kb/s between the two benched bitrates around it on the model's "
                 "rate-quality curve (not extrapolated beyond the benched bitrates)." + note + "\n")
    else:
        text += "The two models' ViSQOL ranges do not overlap: no common target to compare (--visqol-target).\n"
    return text


# --- command line ---------------------------------------------------------------------------------------

def _bitrates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        rates = ()
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: give bitrates in bit/s separated by commas, e.g. "
                                         "1500,3000,6000 (multiples of one codebook's 500 bit/s)")
    return tuple(sorted(set(rates)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("base", help="the control: exported weights name or training checkpoint (.pt)")
    parser.add_argument("psy", help="the psychoacoustic arm: exported weights name or training checkpoint")
    parser.add_argument("--weights-dir", type=Path,
                        help="folder of exported weights (default: $NSAC_PRETRAINED_DIR, else OUT/weights)")
    parser.add_argument("--data", required=True, help="a manifest .csv or a folder of speech files")
    parser.add_argument("--split", help="manifest rows of this split only, e.g. test")
    parser.add_argument("--limit", type=int, help="only the first N files")
    parser.add_argument("--out", required=True, type=Path, help="the bench's folder (resumed when it exists)")
    parser.add_argument("--bitrates", type=_bitrates, default=DEFAULT_BITRATES_BPS,
                        help="bit/s, comma-separated (default: 1500,3000,6000)")
    parser.add_argument("--visqol-target", type=float, action="append", dest="targets",
                        help="ViSQOL to report the needed kb/s for (repeatable; default: the middle of the "
                             "range both models span)")
    parser.add_argument("--entropy-coding", action="store_true",
                        help="bench range-coded packets (default: fixed-length, equal rates for both)")
    parser.add_argument("--jobs", type=int, help="bench worker processes (default: nsac bench's)")
    parser.add_argument("--table-only", action="store_true", help="print the tables of OUT/results.csv")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from nsac.pretrained import ENV_DIR

    env_dir = os.environ.get(ENV_DIR)
    weights_dir = args.weights_dir or (Path(env_dir) if env_dir else args.out / "weights")
    if args.table_only:  # checkpoints were exported as ablation-LABEL
        names = [f"ablation-{label}" if Path(spec).suffix in CHECKPOINT_SUFFIXES else spec
                 for spec, label in zip((args.base, args.psy), LABELS, strict=True)]
    else:
        check_codec_reachable()
        weights_dir.mkdir(parents=True, exist_ok=True)
        names = [resolve_weights(spec, label, weights_dir) for spec, label in zip((args.base, args.psy), LABELS,
                                                                                 strict=True)]
        if names[0] == names[1]:
            raise ParameterError(f"both arms are the weights {names[0]!r}; give the control and the test arm")
        run_bench(bench_command(names, args.bitrates, data=args.data, out=args.out, split=args.split,
                                limit=args.limit, jobs=args.jobs, entropy_coding=args.entropy_coding),
                  weights_dir=weights_dir)
    print(ablation_report(read_results(args.out / RESULTS_NAME), names, targets=args.targets or (),
                          entropy_coding=args.entropy_coding), end="")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NsacError as error:
        sys.exit(f"psychoacoustic_ablation: {error}")
