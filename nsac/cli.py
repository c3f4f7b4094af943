"""The `nsac` command line: parses arguments, calls the library, prints one line per error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from nsac.errors import NsacError, ParameterError

#: exit status for an nsac error (bad input, missing library) and for a bug in nsac itself
EXIT_ERROR = 1
EXIT_INTERNAL = 70


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ParameterError(f"option {text!r} must look like key=value")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.replace("-", "_"), value


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise NsacError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NsacError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise NsacError(f"{path}: cannot read ({exc.strerror})") from None


def _write_output(path: str, write: Any) -> None:
    """Call write(stream); for a file, write a temporary beside it first so a failure leaves no partial file."""
    if path == "-":
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        handle, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
    except OSError as exc:
        raise NsacError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_encode(args: argparse.Namespace) -> int:
    from nsac.audio import read
    from nsac.coding import encode_audio

    audio, rate = read(sys.stdin.buffer if args.input == "-" else args.input)
    options = dict(_parse_option(o) for o in args.option)
    if args.bitrate is not None:
        options["bitrate"] = args.bitrate
    if args.sample_rate is not None:
        options["sample_rate"] = args.sample_rate
    if args.mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    data = encode_audio(audio, rate, args.codec, **options)
    _write_output(args.output, lambda stream: stream.write(data))
    if args.output != "-" and not args.quiet:
        seconds = audio.shape[1] / rate
        print(f"{args.output}: {len(data)} bytes, {seconds:.2f} s, {len(data) * 8 / seconds / 1000:.2f} kb/s")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from nsac.audio import write
    from nsac.coding import decode_bytes

    file_format = "WAV" if args.output == "-" else _format_from_name(args.output)
    if args.enhance is None:
        audio, rate = decode_bytes(_read_input(args.input))
    else:  # "" (the flag alone): the enhancer shipped for the file's codec and bitrate
        from nsac.codecs.postfilter.decode import decode_enhanced

        audio, rate = decode_enhanced(_read_input(args.input), enhancer=args.enhance or None)
    _write_output(args.output, lambda stream: write(stream, audio, rate, bits=args.bits, file_format=file_format))
    return 0


def _format_from_name(path: str) -> str:
    suffix = Path(path).suffix.lower()
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if suffix not in formats:
        raise ParameterError(f"{path}: cannot tell the format from {suffix!r}; use .wav or .flac")
    return formats[suffix]


def cmd_info(args: argparse.Namespace) -> int:
    from nsac.bitstream.inspect import describe

    print(json.dumps(describe(_read_input(args.input)), indent=2))
    return 0


def cmd_codecs(args: argparse.Namespace) -> int:
    from nsac.codecs import list_codecs

    infos = list_codecs()
    if args.json:
        print(json.dumps([info.__dict__ for info in infos], indent=2))
        return 0
    rows = [("name", "kind", "sample rates (kHz)", "bitrates (kb/s)", "status")]
    for info in infos:
        rates = ",".join(f"{r / 1000:g}" for r in info.sample_rates_hz)
        low, high = info.bitrate_range_bps
        rows.append((info.name, info.kind, rates, f"{low / 1000:g}-{high / 1000:g}",
                     "available" if info.available else f"unavailable: {info.reason}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nsac.audio import read, resample
    from nsac.eval.metrics import evaluate

    reference, rate = read(args.reference)
    degraded, degraded_rate = read(args.degraded)
    degraded = resample(degraded, from_hz=degraded_rate, to_hz=rate)
    metrics = args.metrics.split(",") if args.metrics else None
    result = evaluate(reference.mean(axis=0), degraded.mean(axis=0), sample_rate=rate, metrics=metrics)
    if args.json:
        print(json.dumps(result, indent=2, default=float))
        return 0
    for key, value in result.items():
        if isinstance(value, float):
            print(f"{key:<24}{value:10.3f}")
    for name, message in result.get("errors", {}).items():
        print(f"{name:<24}{'failed':>10}  {message}")
    delay = result.get("alignment", {}).get("delay_samples")
    if delay is not None:
        print(f"(degraded aligned by {delay} samples before the intrusive metrics)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nsac.train.run import train

    result = train(args.recipe, data=args.data, out=args.out, overrides=args.overrides)
    if result.main_process:
        print(f"nsac train: step {result.step} ({result.steps_run} this run, {result.seconds:.1f} s); "
              f"checkpoint {result.checkpoint}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nsac.train.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.name, directory=args.pretrained_dir, use_ema=not args.no_ema,
                             model_overrides=args.set or (), calibration=args.calibration,
                             float16=args.float16)
    print(f"nsac export: {path} and {path.with_suffix('.json').name}, registered with their sha256")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from nsac.eval.paired import changes_markdown, paired_changes

    changes = paired_changes(args.results, base=args.base, test=args.test, columns=args.metric)
    print(f"{args.test} against {args.base}, file by file ({args.results})\n")
    print(changes_markdown(changes))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nsac.demo import run_demo

    run_demo(out_dir=Path(args.out), data=args.data)
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from nsac.listen.cli import run_listen_from_args

    return run_listen_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    from nsac import __version__

    parser = argparse.ArgumentParser(prog="nsac", description="Neural speech and audio coding toolkit.")
    parser.add_argument("--version", action="version", version=f"nsac {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("encode", help="encode audio to a .nsac file")
    p.add_argument("input", help="WAV/FLAC/OGG/MP3 file, or - for stdin")
    p.add_argument("output", help=".nsac file, or - for stdout")
    p.add_argument("--codec", required=True, help="codec name (see `nsac codecs`)")
    p.add_argument("--bitrate", type=int, help="target bitrate in bit/s")
    p.add_argument("--sample-rate", type=int, help="codec sample rate in Hz (default: the input's, if supported)")
    p.add_argument("--mono", action="store_true", help="downmix to mono before coding")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="codec option, e.g. -o application=audio (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode a .nsac file to WAV or FLAC")
    p.add_argument("input", help=".nsac file, or - for stdin")
    p.add_argument("output", help=".wav or .flac file, or - for WAV on stdout")
    p.add_argument("--bits", choices=["16", "24", "float"], default="16", help="output sample format")
    p.add_argument("--enhance", nargs="?", const="", default=None, metavar="NAME",
                   help="run a neural post-filter after a legacy decoder: the one shipped for the file's codec "
                        "and bitrate, or the named weights")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="print a .nsac file's header and packet statistics as JSON")
    p.add_argument("input", help=".nsac file, or - for stdin")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("codecs", help="list the codecs, what they support and whether they run here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_codecs)

    p = sub.add_parser("eval", help="score a decoded file against its reference (PESQ, STOI, ViSQOL, DNSMOS, ...)")
    p.add_argument("reference", help="the original audio file")
    p.add_argument("degraded", help="the decoded audio file")
    p.add_argument("--metrics", help="comma-separated metric names (default: every installed one)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a model from a recipe (under torchrun: several processes)")
    p.add_argument("recipe", help="recipe name (nsac/train/recipes, e.g. smoke) or a .yaml file")
    p.add_argument("--data", help="folder of audio or manifest .csv (default: the recipe's data.path)")
    p.add_argument("--out", help="run folder (default: runs/RECIPE); a checkpoint there is resumed")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set max_steps=20 --set optim.lr=1e-4 (repeatable)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="turn a training checkpoint into shipped weights in nsac/pretrained")
    p.add_argument("checkpoint", help="a checkpoint, e.g. runs/smoke/checkpoints/last.pt")
    p.add_argument("--name", required=True, help="weights name, e.g. postfilter-opus-6k")
    p.add_argument("--pretrained-dir", help="where to write (default: $NSAC_PRETRAINED_DIR, nsac/pretrained)")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights even if the run kept an EMA")
    p.add_argument("--set", action="append", metavar="model.KEY=VALUE",
                   help="change an inference setting of the model, e.g. --set model.high_band_gain_db=-18")
    p.add_argument("--calibration", help="how the --set values were chosen, recorded in NAME.json")
    p.add_argument("--float16", action="store_true",
                   help="store the weights as float16 (half the file; they load back into float32)")
    p.set_defaults(func=cmd_export)

    from nsac.eval.bench_cli import add_bench_arguments, run_bench_from_args

    p = sub.add_parser("bench", help="code a data set with several codecs; write results, summaries and report.html")
    add_bench_arguments(p)
    p.set_defaults(func=run_bench_from_args)

    p = sub.add_parser("compare", help="compare two conditions of a bench file by file: mean change, worst file")
    p.add_argument("results", help="a bench's results.csv, e.g. runs/postfilter-bench/results.csv")
    p.add_argument("--base", required=True, help="the reference condition, e.g. opus@6000")
    p.add_argument("--test", required=True, help="the condition compared with it, e.g. opus@6000+enhance")
    p.add_argument("--metric", action="append", help="a score column (repeatable; default: all scored)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="code the shipped example with several codecs and print what it cost")
    p.add_argument("--data", help="an audio file to use instead of the shipped example")
    p.add_argument("--out", default="nsac-demo", help="folder for the decoded files (default: nsac-demo)")
    p.set_defaults(func=cmd_demo)

    from nsac.listen.cli import add_listen_arguments

    p = sub.add_parser("listen", help="serve a MUSHRA listening test built from a bench folder, or analyse one")
    add_listen_arguments(p)
    p.set_defaults(func=cmd_listen)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NsacError as exc:
        print(f"nsac: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nsac: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # a bug in nsac: still one line, and a way to report it
        print(f"nsac: internal error: {type(exc).__name__}: {exc} (please report this with the command)",
              file=sys.stderr)
        return EXIT_INTERNAL
