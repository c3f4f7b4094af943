"""test.json of a MUSHRA test: its items, conditions and stimulus files, written by the builder, read by all.

A test folder holds::

    test.json        this description (never served: it names which file is which condition)
    audio/<token>.wav  every stimulus; the token is a salted hash, so file names reveal no condition
    ratings.sqlite   the ratings (nsac.listen.store)
    mushra.*         the analysis (nsac.listen.analysis), once `nsac listen --results` ran

Condition kinds: "codec" (a bench condition), "reference" (the hidden reference) and "anchor".
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nsac.errors import NsacError

#: where a test goes inside the bench folder unless told otherwise (the bench report looks there)
LISTENING_DIR = "listening"
SPEC_NAME = "test.json"
AUDIO_DIR = "audio"
DB_NAME = "ratings.sqlite"
#: what `nsac listen --results` writes into the analysis folder; ALL_ITEMS is the scope of a pooled row
STATS_CSV, SCREENING_CSV, RESULTS_JSON, BOXPLOT_PNG = ("mushra.csv", "mushra_screening.csv", "mushra.json",
                                                        "mushra.png")
ALL_ITEMS = "all items"
SPEC_FORMAT = "nsac-mushra"
SPEC_VERSION = 1
#: condition ids of the hidden reference and the BS.1534-3 anchors
HIDDEN_REFERENCE = "ref"
LOW_ANCHOR = "lp35"
MID_ANCHOR = "lp70"
KINDS = ("codec", "reference", "anchor")
#: what a stimulus file is called: a token of hex digits and .wav (the server's whitelist checks the form)
AUDIO_FILE = re.compile(r"[0-9a-f]{20}\.wav")


@dataclass(frozen=True)
class MushraCondition:
    """One version of every item: its id (c01.., ref, lp35, lp70), its label and its kind."""

    id: str
    label: str
    kind: str


@dataclass(frozen=True)
class MushraItem:
    """One excerpt: id (i01..), the bench file it comes from, and its audio files (condition id -> file)."""

    id: str
    name: str
    sample_rate_hz: int
    duration_s: float
    reference: str
    stimuli: dict[str, str]
    gains_db: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MushraSpec:
    """A whole test; `selection` records what the builder chose, so that a rebuild can tell it is the same."""

    test_id: str
    title: str
    bench: str
    conditions: list[MushraCondition]
    items: list[MushraItem]
    selection: dict[str, Any]

    def condition(self, condition_id: str) -> MushraCondition:
        return next(c for c in self.conditions if c.id == condition_id)

    def audio_files(self) -> set[str]:
        """Every file name under audio/ that the test uses: the server serves these and nothing else."""
        return {name for item in self.items for name in (item.reference, *item.stimuli.values())}

    def to_json(self) -> str:
        return json.dumps({"format": SPEC_FORMAT, "version": SPEC_VERSION, **asdict(self)}, indent=2) + "\n"


def write_spec(folder: Path, spec: MushraSpec) -> Path:
    path = folder / SPEC_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(spec.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


def read_spec(folder: Path) -> MushraSpec:
    """Read and check folder/test.json; an NsacError says what is wrong with it."""
    path = folder / SPEC_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NsacError(f"{folder} holds no {SPEC_NAME}: build a test with `nsac listen BENCH_DIR`") from None
    except (OSError, ValueError) as exc:
        raise NsacError(f"{path}: cannot read the test ({exc}); build it again with `nsac listen`") from None
    if document.get("format") != SPEC_FORMAT or document.get("version") != SPEC_VERSION:
        raise NsacError(f"{path} is not an nsac MUSHRA test of version {SPEC_VERSION}; build it again")
    try:
        conditions = [MushraCondition(**c) for c in document["conditions"]]
        items = [MushraItem(**i) for i in document["items"]]
        spec = MushraSpec(test_id=document["test_id"], title=document["title"], bench=document["bench"],
                        conditions=conditions, items=items, selection=document["selection"])
    except (KeyError, TypeError) as exc:
        raise NsacError(f"{path} is incomplete ({exc}); build the test again") from None
    known = {c.id for c in conditions}
    for item in items:
        if not set(item.stimuli) <= known or not all(AUDIO_FILE.fullmatch(f) for f in spec_files(item)):
            raise NsacError(f"{path}: item {item.id} names unknown conditions or odd file names; build again")
    return spec


def spec_files(item: MushraItem) -> list[str]:
    return [item.reference, *item.stimuli.values()]


__all__ = [
    "ALL_ITEMS",
    "AUDIO_DIR",
    "AUDIO_FILE",
    "BOXPLOT_PNG",
    "DB_NAME",
    "HIDDEN_REFERENCE",
    "KINDS",
    "LISTENING_DIR",
    "LOW_ANCHOR",
    "MID_ANCHOR",
    "RESULTS_JSON",
    "SCREENING_CSV",
    "SPEC_NAME",
    "STATS_CSV",
    "MushraCondition",
    "MushraItem",
    "MushraSpec",
    "read_spec",
    "write_spec",
]
