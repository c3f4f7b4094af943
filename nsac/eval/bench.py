"""`nsac bench`: code every file with every condition in worker processes, score it, and write the results.

Each (file, condition) is one task for a worker: read the file (mixed down to mono), encode and decode it
with the costs measured (:mod:`nsac.eval.complexity`), write the decoded audio to
``OUT/decoded/<condition>/<file>.wav``, and score it against the file with :func:`nsac.eval.metrics.evaluate`.
The main process appends each row to ``results.csv`` as it arrives (:mod:`nsac.eval.results`), so a bench
that is stopped resumes where it was; a file that cannot be read or coded becomes a row with its error.
At the end it writes the summaries (:mod:`nsac.eval.summary`) and the report (:mod:`nsac.eval.report`).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from nsac.errors import DependencyError, NsacError, ParameterError
from nsac.eval.bench_inputs import AudioItem, Condition, find_audio, safe_name
from nsac.eval.results import ResultsFile, Row, result_columns
from nsac.eval.workers import run_in_workers

#: default metrics for speech (files of kind speech, or at most SPEECH_MAX_RATE_HZ) and for other audio
SPEECH_METRICS = ("pesq_wb", "stoi", "visqol_speech", "dnsmos", "si_sdr", "log_spectral_distance",
                  "mel_distance")
AUDIO_METRICS = ("visqol_audio", "si_sdr", "log_spectral_distance", "mel_distance")
SPEECH_MAX_RATE_HZ = 16_000
RESULTS_NAME = "results.csv"
DECODED_DIR = "decoded"
#: at most this many workers by default: timings stay clean with one worker per core
DEFAULT_MAX_JOBS = 2


@dataclass(frozen=True)
class BenchConfig:
    """Everything a bench run needs; `run_bench(BenchConfig(...))` is what `nsac bench` calls."""

    conditions: tuple[Condition, ...]
    data: Path
    out: Path
    limit: int | None = None
    jobs: int | None = None
    split: str | None = None
    #: metric names for every file; None: SPEECH_METRICS or AUDIO_METRICS by file, those installed
    metrics: tuple[str, ...] | None = None
    #: measure peak memory in forked children (False: code in the worker, memory is not reported)
    measure_memory: bool = True
    #: rerun rows that ended in an error instead of keeping them
    retry_errors: bool = False
    progress: bool = True
    #: files per condition that get players and spectrograms in report.html
    listen_files: int = 3
    command: str = field(default="", compare=False)


@dataclass(frozen=True)
class BenchResult:
    """What a bench wrote: the rows of this run's files and conditions, and where the outputs are."""

    rows: list[Row]
    summary: list[dict[str, Any]]
    out: Path
    files_written: list[Path]
    n_new_rows: int


def default_jobs() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(DEFAULT_MAX_JOBS, cpus))


def check_conditions(conditions: Sequence[Condition]) -> None:
    """Refuse duplicates, unknown or unavailable codecs and options a codec rejects, before any work.

    A condition passes when the codec builds at one of its sample rates at least: a bitrate that only
    some rates allow (AAC at 64 kb/s needs more than 16 kHz) fails later, file by file, as error rows.
    """
    from nsac.codecs import codec_class, load_codec

    if not conditions:
        raise ParameterError("give at least one condition, e.g. --codec opus@6000")
    labels = [c.label for c in conditions]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ParameterError(f"condition(s) given twice: {', '.join(twice)}")
    for condition in conditions:
        available, reason = codec_class(condition.codec).availability()
        if not available:
            raise DependencyError(f"condition {condition.label}: codec {condition.codec!r} is unavailable: "
                                  f"{reason}")
        options = {"channels": 1, **condition.codec_options()}
        rates = codec_class(condition.codec).sample_rates_hz
        if "sample_rate" in options:
            rates = (options.pop("sample_rate"),)
        first_error: NsacError | None = None
        for rate in sorted(rates, reverse=True):
            try:
                load_codec(condition.codec, sample_rate=rate, **options)
                break
            except NsacError as exc:
                first_error = first_error or exc
        else:
            raise ParameterError(f"condition {condition.label}: {first_error}")


def metric_plan(metrics: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """(speech metrics, other-audio metrics, results columns) for a --metrics choice (None: the defaults).

    A metric chosen by name must be installed; a default one that is not is left out.
    """
    from nsac.eval.metrics import METRICS, available_metrics

    installed = available_metrics()
    if metrics is None:
        speech = tuple(m for m in SPEECH_METRICS if installed.get(m))
        audio = tuple(m for m in AUDIO_METRICS if installed.get(m))
    else:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ParameterError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        missing = [m for m in metrics if not installed.get(m)]
        if missing:
            lines = "; ".join(f"{m}: pip install {METRICS[m].install}" for m in missing)
            raise DependencyError(f"metric(s) not installed: {lines}")
        speech = audio = tuple(dict.fromkeys(metrics))
    columns = [column for name in dict.fromkeys(speech + audio) for column in METRICS[name].columns]
    return speech, audio, columns


def decoded_path(condition: Condition, item: AudioItem) -> PurePosixPath:
    """Where the decoded audio of `item` lies, relative to OUT: decoded/<condition>/<file path>.wav."""
    parts = [safe_name(part) for part in PurePosixPath(item.name).with_suffix(".wav").parts
             if part not in ("..", ".")]
    return PurePosixPath(DECODED_DIR, condition.slug, *parts)


def _check_unique_outputs(items: Sequence[AudioItem], condition: Condition) -> None:
    """Two files whose decoded audio would land on the same path (a.wav and a.flac) are refused."""
    seen: dict[PurePosixPath, str] = {}
    for item in items:
        path = decoded_path(condition, item)
        if path in seen:
            raise ParameterError(f"{seen[path]} and {item.name} would both be decoded to {path}; "
                                 "rename one of them or bench them separately")
        seen[path] = item.name


@dataclass(frozen=True)
class _Task:
    item: AudioItem
    condition: Condition
    out: Path
    metrics: tuple[str, ...]
    measure_memory: bool


def _init_worker() -> None:
    from nsac.eval.complexity import limit_threads

    limit_threads()
    # Ctrl-C reaches the whole process group: the main process alone handles it and stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_task(task: _Task) -> Row:
    """Code, decode and score one file with one condition; failures become the row's `error`."""
    from nsac.audio import read, write
    from nsac.eval.complexity import bitrate_from_bytes, measure_decode, measure_encode

    condition, item = task.condition, task.item
    row: Row = {"file": item.name, "condition": condition.label, "codec": condition.codec,
                "nominal_bitrate_bps": condition.bitrate_bps, "error": ""}
    try:
        audio, rate = read(item.path)
        audio = audio.mean(axis=0, keepdims=True)
        duration_s = audio.shape[1] / rate
        row.update(sample_rate_hz=rate, duration_s=duration_s)
        encoded = measure_encode(audio, rate, condition.codec, condition.codec_options(),
                                 isolate=task.measure_memory)
        decoded, decoded_rate, decoding = measure_decode(encoded.payload, isolate=task.measure_memory)
        info = encoded.info
        row.update(bitrate_from_bytes(encoded.payload), duration_s=duration_s,
                   nominal_bitrate_bps=info["bitrate_bps"], codec_rate_hz=info["codec_rate_hz"],
                   rtf_encode=encoded.cpu_s / duration_s, rtf_decode=decoding.cpu_s / duration_s,
                   peak_mem_encode_mib=encoded.peak_mib, peak_mem_decode_mib=decoding.peak_mib,
                   delay_ms=info["delay_ms"], macs_per_second=info["macs_per_second"],
                   parameters=info["parameters"])
        relative = decoded_path(condition, item)
        (task.out / relative).parent.mkdir(parents=True, exist_ok=True)
        write(task.out / relative, decoded, decoded_rate)
        row["decoded"] = relative.as_posix()
        row.update(_score(audio, decoded, rate, task.metrics))
    except NsacError as exc:
        row["error"] = _one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not stop the bench; the row says what
        row["error"] = _one_line(f"internal error: {type(exc).__name__}: {exc}")
    return row


def _score(reference: np.ndarray, decoded: np.ndarray, rate: int, metrics: tuple[str, ...]) -> Row:
    from nsac.eval.metrics import evaluate

    if not metrics:
        return {}
    try:
        scores = evaluate(reference[0], decoded[0], sample_rate=rate, metrics=metrics)
    except NsacError as exc:
        return {"metric_errors": _one_line(f"all: {exc}")}
    alignment = scores.get("alignment", {})
    row: Row = {key: float(value) for key, value in scores.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)}
    row["aligned_delay_ms"] = alignment.get("delay_ms")
    # "errors" (failed on this input) and any other name -> message table evaluate adds, e.g. "unavailable"
    messages = [message if str(message).startswith(f"{name}:") else f"{name}: {message}"
                for key, value in scores.items() if key != "alignment" and isinstance(value, dict)
                for name, message in value.items()]
    row["metric_errors"] = _one_line("; ".join(messages))
    return row


def _tasks(config: BenchConfig, items: Sequence[AudioItem], done: set[tuple[str, str]],
           speech: tuple[str, ...], audio: tuple[str, ...]) -> list[_Task]:
    import soundfile

    tasks = []
    for item in items:
        todo = [condition for condition in config.conditions if (item.name, condition.label) not in done]
        if not todo:
            continue
        metrics = speech
        if item.kind and item.kind != "speech":
            metrics = audio
        elif not item.kind:
            try:
                metrics = speech if soundfile.info(str(item.path)).samplerate <= SPEECH_MAX_RATE_HZ else audio
            except (RuntimeError, soundfile.LibsndfileError, OSError):
                pass  # the task reports the file as unreadable
        tasks.extend(_Task(item, condition, config.out, metrics, config.measure_memory) for condition in todo)
    return tasks


def _crash_row(task: _Task) -> Row:
    """The row of a task whose worker died (a crash in a codec or metric library, or out of memory)."""
    return {"file": task.item.name, "condition": task.condition.label, "codec": task.condition.codec,
            "nominal_bitrate_bps": task.condition.bitrate_bps,
            "error": "the worker process died while coding or scoring this file (a crash in a codec or "
                     "metric library, or out of memory); reproduce with `nsac encode` and `nsac eval`"}


class _Progress:
    """tqdm when installed, else one rewritten line on stderr."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.count, self.errors, self.enabled = total, 0, 0, enabled
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc="bench", unit="row", file=sys.stderr)

    def update(self, row: Row) -> None:
        self.count += 1
        self.errors += bool(row.get("error"))
        if self._bar is not None:
            self._bar.set_postfix(errors=self.errors, refresh=False)
            self._bar.update(1)
        elif self.enabled:
            print(f"\rbench: {self.count}/{self.total} rows, {self.errors} errors", end="", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.total:
            print(file=sys.stderr)


def run_bench(config: BenchConfig) -> BenchResult:
    """Run a bench (resuming from OUT/results.csv), then write the summaries and report.html."""
    from nsac.eval.report import write_report
    from nsac.eval.summary import summarize, write_summaries

    jobs = default_jobs() if config.jobs is None else config.jobs
    if jobs < 1:
        raise ParameterError(f"jobs={jobs} must be a positive number of worker processes")
    check_conditions(config.conditions)
    items = find_audio(config.data, split=config.split, limit=config.limit)
    _check_unique_outputs(items, config.conditions[0])
    speech, audio, metric_columns = metric_plan(config.metrics)
    config.out.mkdir(parents=True, exist_ok=True)
    with ResultsFile(config.out / RESULTS_NAME, result_columns(metric_columns),
                     drop_errors=config.retry_errors) as results:
        tasks = _tasks(config, items, results.done(), speech, audio)
        progress = _Progress(len(tasks), enabled=config.progress)
        finished = run_in_workers(run_task, tasks, jobs=jobs, on_crash=_crash_row, initializer=_init_worker)
        try:
            for row in finished:
                results.append(row)
                progress.update(row)
        finally:
            finished.close()
            progress.close()
        wanted = {(item.name, condition.label) for item in items for condition in config.conditions}
        rows = [row for row in results.rows if (row["file"], row["condition"]) in wanted]
    summary = summarize(rows, config.conditions, metric_columns)
    written = [config.out / RESULTS_NAME]
    written += write_summaries(config.out, summary, metric_columns, meta=_meta(config, items, jobs))
    written += write_report(config.out, rows=rows, summary=summary, items=items, conditions=config.conditions,
                            metric_columns=metric_columns, listen_files=config.listen_files,
                            meta=_meta(config, items, jobs))
    return BenchResult(rows=rows, summary=summary, out=config.out, files_written=written,
                       n_new_rows=len(tasks))


def _meta(config: BenchConfig, items: Sequence[AudioItem], jobs: int) -> dict[str, Any]:
    import nsac

    return {"nsac_version": nsac.__version__, "command": config.command, "data": str(config.data),
            "split": config.split, "n_files": len(items), "jobs": jobs,
            "conditions": [c.label for c in config.conditions],
            "metrics": list(config.metrics) if config.metrics else "default"}


__all__ = ["AUDIO_METRICS", "SPEECH_METRICS", "BenchConfig", "BenchResult", "check_conditions",
           "decoded_path", "default_jobs", "metric_plan", "run_bench", "run_task"]
