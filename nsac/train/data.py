"""Training corpora: the audio files of a folder or manifest CSV, their speakers, a speaker-disjoint split.

A folder is searched recursively; a file's speaker is the name of the folder it lies in (the layout of
LibriSpeech-style corpora, `speaker/utterance.flac`). A manifest is a CSV with at least the columns
`path` (relative to the CSV's folder, or absolute) and `speaker`; a `split` column selects rows. Only the
headers are read here (soundfile.info): the samples stay on disk until a crop is drawn.
"""

from __future__ import annotations

import csv
import math
import random
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nsac.errors import AudioError, ParameterError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
MANIFEST_COLUMNS = ("path", "speaker")


@dataclass(frozen=True)
class AudioItem:
    """One file of a corpus: where it is, who speaks, and what its header says."""

    path: Path
    speaker: str
    sample_rate_hz: int
    n_frames: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate_hz


def _info(path: Path, speaker: str) -> AudioItem:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(f"{path}: cannot read the audio header ({str(exc).strip()})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: the file holds no samples; remove it from the corpus")
    return AudioItem(path=path, speaker=speaker, sample_rate_hz=int(info.samplerate),
                     n_frames=int(info.frames), channels=int(info.channels))


def scan_folder(folder: Path) -> list[AudioItem]:
    """Every audio file under `folder`, sorted by path; the speaker is the parent folder's name.

    Files whose header cannot be read are skipped with a warning; a folder with no readable audio is an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: no such folder; give a folder of audio or a manifest .csv")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not paths:
        raise AudioError(f"{folder} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}); "
                         "give a folder of audio or a manifest .csv")
    items, unreadable = [], []
    for path in paths:
        try:
            items.append(_info(path, path.parent.name))
        except AudioError as exc:
            unreadable.append(str(exc))
    if not items:
        raise AudioError(f"{folder}: none of its {len(paths)} audio files can be read "
                         f"(first: {unreadable[0]})")
    if unreadable:
        warnings.warn(f"{folder}: skipped {len(unreadable)} unreadable audio file(s), first: {unreadable[0]}",
                      stacklevel=2)
    return items


def read_manifest(manifest: Path, *, split: str | None = "train") -> list[AudioItem]:
    """The rows of a manifest CSV (of `split`, when the CSV has a split column), in file order."""
    manifest = Path(manifest)
    try:
        with manifest.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise AudioError(f"{manifest}: cannot read the manifest ({exc.strerror})") from None
    columns = rows[0].keys() if rows else ()
    missing = [c for c in MANIFEST_COLUMNS if c not in columns]
    if missing:
        raise ParameterError(f"{manifest}: the manifest lacks the column(s) {', '.join(missing)}; "
                             f"it needs {', '.join(MANIFEST_COLUMNS)} and optionally split")
    if split is not None and "split" in columns:
        splits = sorted({row["split"] for row in rows})
        rows = [row for row in rows if row["split"] == split]
        if not rows:
            raise ParameterError(f"{manifest} has no rows of split {split!r}; its splits: "
                                 f"{', '.join(splits)}")
    items = []
    for row in rows:
        path = Path(row["path"])
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise AudioError(f"{path}: listed in {manifest} but missing")
        items.append(_info(path, row["speaker"] or path.parent.name))
    if not items:
        raise AudioError(f"{manifest} lists no audio files")
    return items


def load_corpus(source: str | Path, *, split: str | None = "train") -> list[AudioItem]:
    """Items of a folder or of a manifest (.csv); AudioError naming what was expected otherwise."""
    if not str(source):
        raise ParameterError("no training data: give --data FOLDER (or a manifest .csv) or set data.path")
    source = Path(source)
    if source.suffix.lower() == ".csv":
        return read_manifest(source, split=split)
    return scan_folder(source)


def speaker_split(items: Sequence[AudioItem], *, valid_fraction: float, seed: int
                  ) -> tuple[list[AudioItem], list[AudioItem]]:
    """(train, valid): whole speakers held out, about `valid_fraction` of them, the same for the same seed.

    valid_fraction=0 gives no validation items. At least one speaker is held out otherwise, and at least
    one is left for training.
    """
    by_speaker: dict[str, list[AudioItem]] = defaultdict(list)
    for item in items:
        by_speaker[item.speaker].append(item)
    speakers = sorted(by_speaker)
    if valid_fraction <= 0:
        return list(items), []
    if len(speakers) < 2:
        raise ParameterError(f"a speaker-disjoint validation split needs at least 2 speakers; the corpus has "
                             f"{len(speakers)} ({', '.join(speakers)}): add speakers or set "
                             "data.valid_fraction=0")
    n_valid = min(len(speakers) - 1, max(1, math.floor(valid_fraction * len(speakers) + 0.5)))
    held_out = set(random.Random(seed).sample(speakers, n_valid))
    train = [item for item in items if item.speaker not in held_out]
    valid = [item for item in items if item.speaker in held_out]
    return train, valid
