"""What a bench runs on: conditions parsed from `name@bitrate[:option=value...]`, and the files to code."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsac.errors import ParameterError

#: file extensions a data folder is searched for (case-insensitive); AIFF for the music test set
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
#: the manifest column holding each file's path, relative to the manifest's folder
MANIFEST_PATH_COLUMN = "path"
MANIFEST_SPLIT_COLUMN = "split"
MANIFEST_KIND_COLUMN = "kind"
_BITS_PER_KILOBIT = 1000
#: characters kept as they are when a condition or file name becomes a folder name
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Condition:
    """One codec configuration of a bench: a codec name, a bitrate (None: the codec's own) and options."""

    codec: str
    bitrate_bps: int | None = None
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """The canonical spec, e.g. `opus@6000:application=voip`; rows and summaries are keyed by it."""
        codec, plus, suffix = self.codec.partition("+")  # opus+enhance at 6000 reads opus@6000+enhance
        text = codec if self.bitrate_bps is None else f"{codec}@{self.bitrate_bps}"
        return text + "".join(f":{key}={_format_value(value)}" for key, value in self.options) + plus + suffix

    @property
    def family(self) -> str:
        """The condition without its bitrate: one rate-quality line per family."""
        return self.codec + "".join(f":{key}={_format_value(value)}" for key, value in self.options)

    @property
    def slug(self) -> str:
        """A folder name for the condition's files (no `@`, `:` or `=`, which URLs and some systems mind)."""
        return safe_name(self.label.replace("@", "-").replace(":", "_").replace("=", "-"))

    def codec_options(self) -> dict[str, Any]:
        """Keyword arguments for `nsac.coding.build_codec`."""
        options = dict(self.options)
        if self.bitrate_bps is not None:
            options["bitrate"] = self.bitrate_bps
        return options


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def safe_name(text: str) -> str:
    """`text` with every run of characters other than letters, digits, `.`, `_` and `-` replaced by `_`."""
    return _SAFE_NAME.sub("_", text).strip("_") or "_"


def _parse_bitrate(text: str, spec: str) -> int:
    """`6000`, `6k` or `12.65k` to bit/s."""
    raw = text.strip().lower()
    scale = _BITS_PER_KILOBIT if raw.endswith("k") else 1
    try:
        value = float(raw.removesuffix("k")) * scale
    except ValueError:
        value = float("nan")
    if not value > 0 or value != round(value):
        raise ParameterError(f"condition {spec!r}: bitrate {text!r} must be a positive whole number of bit/s "
                             "such as 6000 or 12.65k")
    return round(value)


def parse_condition(spec: str) -> Condition:
    """Parse `name@bitrate[:option=value...]` (bitrate optional); option values are JSON, else strings."""
    spec_text = spec.strip()
    enhance = "+enhance" if spec_text.endswith("+enhance") else ""  # SPEC+enhance: SPEC and its post-filter
    head, *option_texts = spec_text.removesuffix(enhance).split(":")
    head, plus, suffix = head.partition("+")  # also name@bitrate+enhance:option=value
    enhance = enhance or plus + suffix
    name, sep, bitrate_text = head.partition("@")
    if not name:
        raise ParameterError(f"condition {spec!r} names no codec; write e.g. opus@6000 or lpcnet-freedv")
    bitrate = _parse_bitrate(bitrate_text, spec) if sep else None
    options: list[tuple[str, Any]] = []
    for text in option_texts:
        key, eq, raw = text.partition("=")
        if not eq or not key:
            raise ParameterError(f"condition {spec!r}: option {text!r} must look like key=value")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        options.append((key.replace("-", "_"), value))
    if "bitrate" in dict(options):
        raise ParameterError(f"condition {spec!r}: give the bitrate after @, not as an option")
    return Condition(codec=name + enhance, bitrate_bps=bitrate, options=tuple(sorted(options)))


@dataclass(frozen=True)
class AudioItem:
    """One file of a bench: its path, its name in the results (relative to the data root) and its kind."""

    path: Path
    name: str
    #: "speech", "general" (music and other audio) or "" when the data does not say
    kind: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)


def find_audio(data: str | Path, *, split: str | None = None, limit: int | None = None) -> list[AudioItem]:
    """The files of a folder (searched recursively, sorted by path), of a manifest CSV, or one audio file.

    A manifest has a `path` column relative to its own folder, and optionally `split` (filtered with
    `split`) and `kind` (speech or general, which picks the default metrics).
    """
    root = Path(data)
    if limit is not None and limit < 1:
        raise ParameterError(f"limit={limit} must be a positive number of files")
    if root.is_dir():
        if split is not None:
            raise ParameterError("split selects rows of a manifest CSV; a data folder has none")
        items = [AudioItem(path=p, name=p.relative_to(root).as_posix())
                 for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
                 if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    elif root.is_file() and root.suffix.lower() == ".csv":
        items = _read_manifest(root, split=split)
    elif root.is_file() and root.suffix.lower() in AUDIO_EXTENSIONS:
        items = [AudioItem(path=root, name=root.name)]
    elif root.exists():
        raise ParameterError(f"{root}: give an audio file, a folder of them or a manifest .csv with a "
                             f"{MANIFEST_PATH_COLUMN!r} column")
    else:
        raise ParameterError(f"{root}: no such folder or manifest")
    if not items:
        what = f"split {split!r} of {root}" if split else str(root)
        raise ParameterError(f"{what}: no audio files found ({', '.join(AUDIO_EXTENSIONS)})")
    return items[:limit]


def _read_manifest(manifest: Path, *, split: str | None) -> list[AudioItem]:
    with manifest.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        columns = reader.fieldnames or []
        if MANIFEST_PATH_COLUMN not in columns:
            raise ParameterError(f"{manifest}: a manifest needs a {MANIFEST_PATH_COLUMN!r} column; "
                                 f"it has {', '.join(columns) or 'none'}")
        if split is not None and MANIFEST_SPLIT_COLUMN not in columns:
            raise ParameterError(f"{manifest}: cannot select split {split!r}: "
                                 f"no {MANIFEST_SPLIT_COLUMN!r} column")
        rows = [row for row in reader if split is None or row[MANIFEST_SPLIT_COLUMN] == split]
    return [AudioItem(path=manifest.parent / row[MANIFEST_PATH_COLUMN], name=row[MANIFEST_PATH_COLUMN],
                      kind=row.get(MANIFEST_KIND_COLUMN) or "", extra=dict(row)) for row in rows]


__all__ = ["AUDIO_EXTENSIONS", "AudioItem", "Condition", "find_audio", "parse_condition", "safe_name"]
