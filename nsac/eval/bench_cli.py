"""The `nsac bench` subcommand's arguments and what it does with them (nsac/cli.py wires it in)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from nsac.errors import ParameterError
from nsac.eval.results import COST_COLUMNS


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `nsac bench` to a (sub)parser."""
    parser.add_argument("--codec", "-c", action="append", required=True, metavar="SPEC", dest="codecs",
                        help="a condition name@bitrate[:option=value...], e.g. opus@6000:application=voip or "
                             "lpcnet-freedv (repeatable)")
    parser.add_argument("--data", required=True, metavar="DIR_OR_MANIFEST",
                        help="a folder of .wav/.flac/.ogg/.mp3 (searched recursively) or a manifest .csv "
                             "with a 'path' column relative to it")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for results.csv, the summaries, rd.png, report.html and decoded/; "
                             "a bench into a folder that holds results resumes it")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N files")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="worker processes (default: min(2, CPUs); use 1 for the cleanest timings)")
    parser.add_argument("--split", help="only manifest rows whose 'split' column has this value, e.g. test")
    parser.add_argument("--metrics", metavar="NAMES",
                        help="comma-separated metric names for every file (default: pesq_wb, stoi, "
                             "visqol_speech, dnsmos, si_sdr, log_spectral_distance, mel_distance for speech; "
                             "visqol_audio and the distances for music above 16 kHz); 'none' for no metrics")
    parser.add_argument("--listen", type=int, default=3, metavar="N",
                        help="files with players and spectrograms in report.html (default: 3)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="when resuming, code again the rows that ended in an error")
    parser.add_argument("--no-memory", action="store_true",
                        help="do not fork to measure peak memory (the memory columns stay empty)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary table")


def _metric_names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ParameterError(f"--metrics {text!r} names no metric; give e.g. pesq_wb,stoi or 'none'")
    return names


def _command_line(args: argparse.Namespace) -> str:
    """The `nsac bench` command that repeats this run, rebuilt from the parsed options."""
    words = ["nsac", "bench"]
    for spec in args.codecs:
        words += ["--codec", spec]
    words += ["--data", str(args.data), "--out", str(args.out)]
    for option in ("limit", "jobs", "split", "metrics"):
        if getattr(args, option) is not None:
            words += [f"--{option}", str(getattr(args, option))]
    return shlex.join(words)


def run_bench_from_args(args: argparse.Namespace) -> int:
    """Run the bench the parsed arguments describe, print the summary table and where the report is."""
    from nsac.eval.bench import BenchConfig, run_bench
    from nsac.eval.bench_inputs import parse_condition
    from nsac.eval.summary import markdown_table

    if args.listen < 0:
        raise ParameterError(f"--listen {args.listen} must be 0 or more files")
    config = BenchConfig(
        conditions=tuple(parse_condition(spec) for spec in args.codecs),
        data=Path(args.data),
        out=Path(args.out),
        limit=args.limit,
        jobs=args.jobs,
        split=args.split,
        metrics=_metric_names(args.metrics),
        measure_memory=not args.no_memory,
        retry_errors=args.retry_errors,
        progress=not args.quiet,
        listen_files=args.listen,
        command=_command_line(args),
    )
    result = run_bench(config)
    if not args.quiet:
        columns = list(dict.fromkeys(c for entry in result.summary for c in entry["values"]
                                     if c not in COST_COLUMNS))
        print(markdown_table(result.summary, columns), end="")
        n_errors = sum(bool(row["error"]) for row in result.rows)
        errors = f"; {n_errors} rows failed (see results.csv)" if n_errors else ""
        print(f"{len(result.rows)} rows ({result.n_new_rows} new){errors}; "
              f"report: {result.out / 'report.html'}")
    return 0


__all__ = ["add_bench_arguments", "run_bench_from_args"]
