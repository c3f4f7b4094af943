"""report.html of a bench: summary table, rd.png, players and spectrograms; offline (relative links only)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from nsac.eval.bench_inputs import AudioItem, Condition, safe_name
from nsac.eval.plots import (
    MATPLOTLIB_INSTALL,
    matplotlib_available,
    metric_directions,
    rd_plot,
    spectrogram_png,
)
from nsac.eval.results import Row
from nsac.eval.summary import CONFIDENCE, LABELS, files_cell, format_cell, table_columns

REPORT_NAME = "report.html"
RD_NAME = "rd.png"
REFERENCE_DIR = "reference"
SPECTROGRAM_DIR = "spectrograms"
#: error rows listed in the page (all of them are in results.csv)
MAX_ERRORS_SHOWN = 100
#: per-file metrics shown beside each player, when the bench has them
PLAYER_METRICS = ("pesq_wb", "visqol_speech", "visqol_audio", "dnsmos_ovrl", "stoi", "si_sdr")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: middle;
         white-space: nowrap; }
div.wide { overflow-x: auto; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img.spec { width: 30em; display: block; }
audio { width: 18em; }
.note { color: #555; font-size: 0.9em; }
"""

METHOD_NOTES = (
    "Every file is mixed down to mono, encoded to a .nsac file and decoded back to its own sample rate.",
    "kb/s is measured from the bytes written: payload counts the packets, file the whole .nsac file.",
    ("RTF = CPU seconds of encoding or decoding / seconds of audio, with one thread (lower is faster); "
     "building and warming up the codec is not timed."),
    ("Memory is the peak resident memory a forked child needed to encode or decode one file with the codec "
     "already loaded (MiB above the child's starting resident set)."),
    ("Delay is the codec's algorithmic delay; MACs/s and parameters count the neural parts "
     "(0 for legacy codecs)."),
    ("Intrusive metrics align the decoded audio to the reference (delay search) and resample to their "
     "own rate."),
    (f"Cells show the mean ± half-width of the {CONFIDENCE:.0%} Student-t confidence interval over files; "
     "↑ marks a metric where higher is better, ↓ one where lower is better."),
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(relative: PurePosixPath | str) -> str:
    return _e(quote(str(relative)))


def _summary_table(summary: Sequence[dict], metric_columns: Sequence[str]) -> str:
    columns = table_columns(summary, metric_columns)
    directions = metric_directions()
    arrows = {True: " ↑", False: " ↓"}
    head = "".join(f"<th title=\"{_e(c)}\">{_e(LABELS.get(c, c))}{arrows.get(directions.get(c), '')}</th>"
                   for c in ["condition", "files", *columns])
    body = []
    for entry in summary:
        cells = [entry["condition"], files_cell(entry),
                 *[format_cell(entry["values"].get(c)) for c in columns]]
        body.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>")
    return (f"<div class=\"wide\"><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _listen_items(items: Sequence[AudioItem], rows: Sequence[Row], n: int) -> list[AudioItem]:
    """The first `n` files decoded by every condition, topped up with files decoded by some."""
    good: dict[str, int] = {}
    for row in rows:
        if not row["error"] and row.get("decoded"):
            good[row["file"]] = good.get(row["file"], 0) + 1
    most = max(good.values(), default=0)
    complete = [item for item in items if good.get(item.name) == most]
    partial = [item for item in items if 0 < good.get(item.name, 0) < most]
    return (complete + partial)[:n]


def _file_dir(item: AudioItem) -> PurePosixPath:
    """The file's path relative to the data, without its extension, safe as a folder name."""
    return PurePosixPath(*[safe_name(p) for p in PurePosixPath(item.name).with_suffix("").parts
                           if p not in ("..", ".")])


def _player_row(label: str, audio_rel: PurePosixPath, spec_rel: PurePosixPath | None, scores: str) -> str:
    image = f'<img class="spec" loading="lazy" src="{_href(spec_rel)}" alt="spectrogram of {_e(label)}">' \
        if spec_rel else ""
    player = f'<audio controls preload="none" src="{_href(audio_rel)}"></audio>'
    return f"<tr><td>{_e(label)}</td><td>{player}</td><td>{image}</td><td>{_e(scores)}</td></tr>"


def _listening_section(out: Path, items: Sequence[AudioItem], rows: Sequence[Row],
                       conditions: Sequence[Condition], n_files: int) -> tuple[str, list[Path]]:
    from nsac.audio import read, write

    chosen = _listen_items(items, rows, n_files)
    if not chosen:
        return "<p>No file was decoded.</p>", []
    by_key = {(row["file"], row["condition"]): row for row in rows}
    written: list[Path] = []
    parts = []
    draw = matplotlib_available()
    for item in chosen:
        folder = _file_dir(item)
        audio, rate = read(item.path)
        reference_rel = PurePosixPath(REFERENCE_DIR, folder).with_suffix(".wav")
        (out / reference_rel).parent.mkdir(parents=True, exist_ok=True)
        write(out / reference_rel, audio.mean(axis=0, keepdims=True), rate)
        spec_dir = PurePosixPath(SPECTROGRAM_DIR, folder)
        (out / spec_dir).mkdir(parents=True, exist_ok=True)
        spec_rel = spec_dir / "reference.png"
        has_spec = draw and spectrogram_png(audio.mean(axis=0), rate, out / spec_rel,
                                            title=f"reference: {item.name}")
        table = [_player_row("reference", reference_rel, spec_rel if has_spec else None, "")]
        written += [out / reference_rel] + ([out / spec_rel] if has_spec else [])
        for condition in conditions:
            row = by_key.get((item.name, condition.label))
            if row is None or row["error"] or not row.get("decoded"):
                continue
            decoded_rel = PurePosixPath(row["decoded"])
            spec_rel = spec_dir / f"{condition.slug}.png"
            decoded, decoded_rate = read(out / decoded_rel)
            has_spec = draw and spectrogram_png(decoded[0], decoded_rate, out / spec_rel,
                                                title=condition.label)
            scores = ", ".join(f"{m} {row[m]:.3g}" for m in PLAYER_METRICS
                               if isinstance(row.get(m), float) and not math.isnan(row[m]))
            scores = f"{row['payload_kbps']:.2f} kb/s" + (f"; {scores}" if scores else "")
            table.append(_player_row(condition.label, decoded_rel, spec_rel if has_spec else None, scores))
            written += [out / spec_rel] if has_spec else []
        parts.append(f"<h3>{_e(item.name)}</h3><table><thead><tr><th>version</th><th>listen</th>"
                     f"<th>spectrogram</th><th>scores</th></tr></thead><tbody>{''.join(table)}</tbody></table>")
    return "".join(parts), written


def _errors_section(rows: Sequence[Row]) -> str:
    failed = sorted((row for row in rows if row["error"]), key=lambda r: (r["file"], r["condition"]))
    if not failed:
        return "<p>None: every file was coded with every condition.</p>"
    lines = "".join(f"<tr><td>{_e(r['file'])}</td><td>{_e(r['condition'])}</td><td>{_e(r['error'])}</td></tr>"
                    for r in failed[:MAX_ERRORS_SHOWN])
    more = f"<p class=\"note\">{len(failed) - MAX_ERRORS_SHOWN} more in results.csv.</p>" \
        if len(failed) > MAX_ERRORS_SHOWN else ""
    return (f"<table><thead><tr><th>file</th><th>condition</th><th>error</th></tr></thead>"
            f"<tbody>{lines}</tbody></table>{more}")


def write_report(out: Path, *, rows: Sequence[Row], summary: Sequence[dict], items: Sequence[AudioItem],
                 conditions: Sequence[Condition], metric_columns: Sequence[str], listen_files: int,
                 meta: dict[str, Any]) -> list[Path]:
    """Write rd.png, the reference copies and spectrograms of the files to listen to, and report.html."""
    written: list[Path] = []
    if rd_plot(summary, metric_columns, out / RD_NAME):
        written.append(out / RD_NAME)
        figure = f'<img src="{_href(RD_NAME)}" alt="quality against actual bitrate" style="max-width:100%">'
    elif not matplotlib_available():
        figure = f"<p>The plots need matplotlib: <code>{_e(MATPLOTLIB_INSTALL)}</code>.</p>"
    else:
        figure = "<p>No metric has values to plot.</p>"
    listening, files = _listening_section(out, items, rows, conditions, listen_files)
    written += files
    facts = "".join(f"<li>{_e(key)}: {_e(', '.join(value) if isinstance(value, list) else value)}</li>"
                    for key, value in meta.items() if value not in ("", None))
    notes = "".join(f"<li>{_e(note)}</li>" for note in METHOD_NOTES)
    # the MUSHRA results of `nsac listen --results`, when OUT/listening holds them (empty markers otherwise)
    from nsac.listen.report_section import listening_section

    listening_test = listening_section(out)
    downloads = " · ".join(f'<a href="{_href(n)}">{n}</a>'
                           for n in ("results.csv", "summary.csv", "summary.md", "summary.json"))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>nsac bench</title><style>{_STYLE}</style></head>
<body>
<h1>nsac bench</h1>
<ul class="note">{facts}</ul>
<h2>Summary</h2>
{_summary_table(summary, metric_columns)}
<p class="note">{downloads}</p>
<h2>Quality against bitrate</h2>
{figure}
<h2>Listen</h2>
{listening}
{listening_test}
<h2>Errors</h2>
{_errors_section(rows)}
<h2>How this was measured</h2>
<ul class="note">{notes}</ul>
</body>
</html>
"""
    (out / REPORT_NAME).write_text(page, encoding="utf-8")
    return [*written, out / REPORT_NAME]


__all__ = ["METHOD_NOTES", "REPORT_NAME", "write_report"]
