"""The MUSHRA results as a section of a bench's report.html, between markers so a new analysis replaces it.

nsac/eval/report.py calls `listening_section(OUT)` when it writes the report; `nsac listen --results`
calls `update_bench_report` to put a fresh analysis into a report that is already there.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from nsac.listen.spec import ALL_ITEMS, LISTENING_DIR, RESULTS_JSON, SCREENING_CSV, STATS_CSV

SECTION_START = "<!-- nsac listen: MUSHRA results -->"
SECTION_END = "<!-- /nsac listen -->"
REPORT_NAME = "report.html"
#: where a report written before this section existed gets it: before its Errors heading, else at the end
_INSERT_BEFORE = ("<h2>Errors</h2>", "</body>")
_DOWNLOADS = (STATS_CSV, SCREENING_CSV, RESULTS_JSON)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def listening_section(bench_out: Path) -> str:
    """The section for OUT/report.html: empty markers when OUT/listening holds no analysis."""
    path = Path(bench_out) / LISTENING_DIR / RESULTS_JSON
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return SECTION_START + SECTION_END
    screening = document.get("screening", [])
    excluded = [s for s in screening if s.get("excluded")]
    rows = "".join(
        f"<tr><td>{_e(s['condition'])}</td><td>{s['n']}</td><td>{_number(s['mean'])}</td>"
        f"<td>{'' if s['ci95'] is None else '± ' + _number(s['ci95'])}</td>"
        f"<td>{_number(s['median'], 0)}</td></tr>"
        for s in document.get("stats", []) if s.get("scope") == ALL_ITEMS)
    people = "".join(f"<li>{_e(s['listener_id'])}: {_e(s['reason'])}</li>" for s in excluded)
    exclusions = f"<p>Excluded by post-screening:</p><ul>{people}</ul>" if excluded else \
        "<p>Post-screening excluded no listener.</p>"
    figure = (f'<img src="{LISTENING_DIR}/{_e(document["boxplot"])}" alt="box plot of the MUSHRA scores" '
              'style="max-width:100%">') if document.get("boxplot") else ""
    links = " · ".join(f'<a href="{LISTENING_DIR}/{name}">{name}</a>' for name in _DOWNLOADS)
    return f"""{SECTION_START}
<h2>Listening test (MUSHRA)</h2>
<p class="note">ITU-R BS.1534-3: {len(screening)} listeners, {len(screening) - len(excluded)} kept, \
{document.get('n_items', 0)} items; mean and half-width of the 95% Student-t interval over every kept \
score.</p>
{exclusions}
<table><thead><tr><th>condition</th><th>scores</th><th>mean</th><th>95% CI</th><th>median</th></tr></thead>
<tbody>{rows}</tbody></table>
{figure}
<p class="note">{links}</p>
{SECTION_END}"""


def update_bench_report(folder: Path) -> Path | None:
    """Put the analysis in `folder` (a bench's listening/) into the bench's report.html, if both exist."""
    folder = Path(folder)
    report = folder.parent / REPORT_NAME
    if folder.name != LISTENING_DIR or not report.is_file():
        return None
    text = report.read_text(encoding="utf-8")
    section = listening_section(folder.parent)
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if 0 <= start < end:
        text = text[:start] + section + text[end + len(SECTION_END):]
    else:
        anchor = next((a for a in _INSERT_BEFORE if a in text), None)
        if anchor is None:
            return None
        at = text.index(anchor)
        text = text[:at] + section + "\n" + text[at:]
    report.write_text(text, encoding="utf-8")
    return report


__all__ = ["SECTION_END", "SECTION_START", "listening_section", "update_bench_report"]
