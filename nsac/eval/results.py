"""results.csv of a bench: its columns, and appending one flushed row at a time so a stopped bench resumes."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

from nsac.errors import ParameterError

#: the columns every results.csv starts with; the metric columns follow, then TAIL_COLUMNS
HEAD_COLUMNS = (
    "file", "condition", "codec", "nominal_bitrate_bps", "sample_rate_hz", "codec_rate_hz", "duration_s",
    "payload_kbps", "file_kbps", "rtf_encode", "rtf_decode", "peak_mem_encode_mib", "peak_mem_decode_mib",
    "delay_ms", "macs_per_second", "parameters",
)
TAIL_COLUMNS = ("aligned_delay_ms", "decoded", "metric_errors", "error")
#: the numeric columns a summary averages besides the metrics: what the coding cost
COST_COLUMNS = ("payload_kbps", "file_kbps", "rtf_encode", "rtf_decode", "peak_mem_encode_mib",
                "peak_mem_decode_mib", "delay_ms", "macs_per_second", "parameters")
#: columns that stay text when rows are read back
TEXT_COLUMNS = ("file", "condition", "codec", "decoded", "metric_errors", "error")
#: significant digits written for floats
_FLOAT_DIGITS = 7

Row = dict[str, Any]


def result_columns(metric_columns: Iterable[str]) -> list[str]:
    return [*HEAD_COLUMNS, *metric_columns, *TAIL_COLUMNS]


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{_FLOAT_DIGITS}g}"
    return str(value)


def _parse(column: str, text: str) -> Any:
    if column in TEXT_COLUMNS:
        return text
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


class ResultsFile:
    """results.csv opened for appending: the rows already there, and `append` that writes and flushes one.

    A row cut off by a kill (no final newline) is dropped on opening. A file written with other columns
    (another metric set) is refused rather than mixed.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, drop_errors: bool = False) -> None:
        self.path = path
        self.columns = list(columns)
        self.rows: list[Row] = []
        if path.exists():
            self.rows = self._read_existing(drop_errors=drop_errors)
        else:
            path.write_text(_csv_line(self.columns), encoding="utf-8")
        self._stream = path.open("a", newline="", encoding="utf-8")

    def _read_existing(self, *, drop_errors: bool) -> list[Row]:
        text = self.path.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]  # drop a partial last row
        reader = csv.reader(io.StringIO(complete))
        header = next(reader, None)
        if header is None:
            self.path.write_text(_csv_line(self.columns), encoding="utf-8")
            return []
        if header != self.columns:
            raise ParameterError(
                f"{self.path} was written with other columns "
                f"({', '.join(sorted(set(header) ^ set(self.columns)))} differ); "
                "rerun with the same --metrics, or use a new --out folder"
            )
        rows = [{c: _parse(c, v) for c, v in zip(header, values)}
                for values in reader if len(values) == len(header)]
        if drop_errors:
            rows = [row for row in rows if not row["error"]]
        if drop_errors or len(complete) != len(text):
            self.path.write_text(_csv_line(header) + "".join(_csv_line(self._cells(r)) for r in rows),
                                 encoding="utf-8")
        return rows

    def done(self) -> set[tuple[str, str]]:
        """(file, condition) of every row already written."""
        return {(row["file"], row["condition"]) for row in self.rows}

    def _cells(self, row: Row) -> list[str]:
        return [_format(row.get(column)) for column in self.columns]

    def append(self, row: Row) -> None:
        self._stream.write(_csv_line(self._cells(row)))
        self._stream.flush()
        self.rows.append({c: _parse(c, v) for c, v in zip(self.columns, self._cells(row))})

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


__all__ = ["COST_COLUMNS", "HEAD_COLUMNS", "TAIL_COLUMNS", "ResultsFile", "Row", "result_columns"]
