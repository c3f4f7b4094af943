"""The `nsac listen` subcommand's arguments and what it does with them (nsac/cli.py wires it in)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from nsac.errors import ParameterError
from nsac.listen.builder import DEFAULT_ITEMS
from nsac.listen.server import DEFAULT_HOST, DEFAULT_PORT
from nsac.listen.spec import DB_NAME, LISTENING_DIR

_MAX_PORT = 65535


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `nsac listen` to a (sub)parser."""
    parser.add_argument("bench", nargs="?", metavar="BENCH_DIR",
                        help="the --out folder of an `nsac bench` run: build a MUSHRA test from it and "
                             "serve it")
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS, metavar="N",
                        help=f"reference files to rate: the first N decoded by every condition (default: "
                             f"{DEFAULT_ITEMS})")
    parser.add_argument("--conditions", nargs="+", action="extend", metavar="SPEC",
                        help="bench conditions to rate, e.g. opus@6000 codec2@3200 (default: all of them); "
                             "the hidden reference and the 3.5 and 7 kHz anchors are always added")
    parser.add_argument("--out", metavar="DIR",
                        help="folder of the test (default: BENCH_DIR/listening); with --results, folder of "
                             "the analysis (default: the database's folder)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P",
                        help=f"TCP port to serve on (default: {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--bind", default=DEFAULT_HOST, metavar="ADDRESS",
                        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only); 0.0.0.0 or "
                             "this machine's LAN address lets colleagues on the network take the test, and "
                             "lets anyone who can reach the port submit ratings: use it on a trusted network "
                             "only")
    parser.add_argument("--build-only", action="store_true", help="build the test folder, do not serve it")
    parser.add_argument("--results", metavar="DB",
                        help="analyse the ratings database of a test (post-screening, means and 95%% "
                             "intervals, box plot, CSV) instead of serving one")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def run_listen_from_args(args: argparse.Namespace) -> int:
    """Build and serve a test, or analyse one (--results); print what was done and where."""
    if args.results:
        if args.bench:
            raise ParameterError("give either BENCH_DIR (to run a test) or --results DB (to analyse one)")
        from nsac.listen.analysis import analyse_database

        analysis = analyse_database(Path(args.results), out=Path(args.out) if args.out else None)
        print(analysis.text_report(), end="")
        for path in analysis.files_written:
            print(f"wrote {path}")
        return 0
    if not args.bench:
        raise ParameterError("give a bench folder (nsac listen BENCH_DIR) or a ratings database "
                             "(nsac listen --results DB)")
    if not 0 <= args.port <= _MAX_PORT:
        raise ParameterError(f"--port {args.port} must be from 0 to {_MAX_PORT}")
    from nsac.listen.builder import build_test
    from nsac.listen.server import serve

    out = Path(args.out) if args.out else None
    spec = build_test(Path(args.bench), out=out, n_items=args.items, conditions=args.conditions)
    folder = out or Path(args.bench) / LISTENING_DIR
    n_stimuli = len(spec.conditions)
    print(f"{folder}: {len(spec.items)} items x {n_stimuli} stimuli "
          f"({', '.join(c.label for c in spec.conditions)})")
    if args.build_only:
        return 0
    if not _is_loopback(args.bind):
        print(f"warning: serving on {args.bind}: anyone who can reach this port can open the test and submit "
              "ratings; use a trusted network and stop the server when the test is over", file=sys.stderr)
    serve(folder, host=args.bind, port=args.port)
    print(f"stopped; analyse with: nsac listen --results {folder / DB_NAME}")
    return 0


__all__ = ["add_listen_arguments", "run_listen_from_args"]
