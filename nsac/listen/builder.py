"""Build a MUSHRA test folder (nsac.listen.spec) from a bench output folder: items, conditions, anchors.

An item is a reference file of the bench; its stimuli are the decoded files of the chosen conditions
(OUT/decoded/<condition>/...), the hidden reference and the 3.5 kHz and 7 kHz low-pass anchors, all mono
at the reference's rate and length, loudness matched (nsac.listen.stimuli). The reference comes from the
bench's data (summary.json says where) or, failing that, from the copy the bench report keeps in
OUT/reference/. Building again with the same choice reuses the folder, so a restarted server resumes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import secrets
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from nsac.errors import AudioError, NsacError, ParameterError
from nsac.listen.spec import (
    AUDIO_DIR,
    AUDIO_FILE,
    DB_NAME,
    HIDDEN_REFERENCE,
    LISTENING_DIR,
    LOW_ANCHOR,
    MID_ANCHOR,
    SPEC_NAME,
    MushraCondition,
    MushraItem,
    MushraSpec,
    read_spec,
    write_spec,
)
from nsac.listen.stimuli import LOW_ANCHOR_HZ, MID_ANCHOR_HZ, anchor_applies, lowpass_anchor, match_loudness

DEFAULT_ITEMS = 8
#: a page with more stimuli than this (hidden reference and anchors included) is too long to compare well;
#: split the conditions into two tests instead
MAX_STIMULI = 12
N_FIXED_STIMULI = 3
TOKEN_HEX_DIGITS = 20
_RESULTS = "results.csv"
_SUMMARY = "summary.json"
_REFERENCE_COPIES = "reference"
_ANCHORS = ((MID_ANCHOR, MID_ANCHOR_HZ, "anchor: low-pass 7 kHz"),
            (LOW_ANCHOR, LOW_ANCHOR_HZ, "anchor: low-pass 3.5 kHz"))


def _read_rows(bench: Path) -> list[dict[str, str]]:
    path = bench / _RESULTS
    if not path.is_file():
        raise NsacError(f"{bench} holds no {_RESULTS}: give the --out folder of an `nsac bench` run")
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows or not {"file", "condition", "decoded", "error"} <= set(rows[0]):
        raise NsacError(f"{path} has no bench rows; run `nsac bench ... --out {bench}` first")
    return rows


def _bench_meta(bench: Path) -> dict:
    try:
        return json.loads((bench / _SUMMARY).read_text(encoding="utf-8")).get("meta", {})
    except (OSError, ValueError):
        return {}


def _choose_conditions(rows: Sequence[dict[str, str]], meta: dict, wanted: Sequence[str] | None) -> list[str]:
    from nsac.eval.bench_inputs import parse_condition

    present = list(dict.fromkeys(row["condition"] for row in rows))
    order = [c for c in meta.get("conditions", []) if c in present] + \
        [c for c in present if c not in meta.get("conditions", [])]
    if not wanted:
        chosen = order
    else:
        chosen = []
        for spec in wanted:
            label = parse_condition(spec).label
            if label not in present:
                raise ParameterError(f"condition {spec!r} is not in this bench; it has {', '.join(order)}")
            if label not in chosen:
                chosen.append(label)
    if len(chosen) + N_FIXED_STIMULI > MAX_STIMULI:
        raise ParameterError(f"{len(chosen)} conditions make pages of {len(chosen) + N_FIXED_STIMULI} "
                             f"stimuli; choose at most {MAX_STIMULI - N_FIXED_STIMULI} with --conditions and "
                             "run the others as a second test (--out another folder)")
    return chosen


def _choose_items(rows: Sequence[dict[str, str]], conditions: Sequence[str], n_items: int) -> list[str]:
    """The first `n_items` files (sorted) that every chosen condition decoded without error."""
    decoded: dict[str, set[str]] = {}
    for row in rows:
        if row["condition"] in conditions and row["decoded"] and not row["error"]:
            decoded.setdefault(row["file"], set()).add(row["condition"])
    files = sorted(name for name, done in decoded.items() if done == set(conditions))
    if not files:
        raise NsacError(f"no file was decoded by all of {', '.join(conditions)}; see results.csv")
    return files[:n_items]


def _reference_path(bench: Path, meta: dict, name: str) -> Path:
    """The bench's input file `name`, or the report's mono copy of it."""
    from nsac.eval.bench_inputs import find_audio, safe_name

    data = meta.get("data")
    if data:
        try:
            found = {item.name: item.path for item in find_audio(data, split=meta.get("split"))}
        except NsacError:
            found = {}
        if name in found and Path(found[name]).is_file():
            return Path(found[name])
    parts = [safe_name(p) for p in PurePosixPath(name).with_suffix("").parts if p not in ("..", ".")]
    copy = bench.joinpath(_REFERENCE_COPIES, *parts).with_suffix(".wav")
    if copy.is_file():
        return copy
    raise NsacError(f"cannot find the reference of {name}: neither the bench data ({data or 'unknown'}) nor "
                    f"{copy} has it; run `nsac listen` where the bench ran, or bench again")


def _mono(path: Path, *, rate_hz: int | None = None, length: int | None = None) -> tuple[np.ndarray, int]:
    from nsac.audio import read

    audio, rate = read(path, sample_rate=rate_hz)
    mono = audio.mean(axis=0)
    if length is not None:
        mono = np.pad(mono, (0, max(0, length - mono.size)))[:length]
    return mono.astype(np.float32), rate


def _token(salt: str, *parts: str) -> str:
    digest = hashlib.sha256("/".join([salt, *parts]).encode()).hexdigest()
    return f"{digest[:TOKEN_HEX_DIGITS]}.wav"


def _build_item(index: int, name: str, *, bench: Path, meta: dict, decoded: dict[str, str],
                conditions: Sequence[MushraCondition], audio_dir: Path, salt: str) -> MushraItem:
    from nsac.audio import write

    item_id = f"i{index + 1:02d}"
    reference, rate = _mono(_reference_path(bench, meta, name))
    stimuli: dict[str, np.ndarray] = {}
    for condition in conditions:
        if condition.kind == "codec":
            stimuli[condition.id], _ = _mono(bench / decoded[condition.label], rate_hz=rate,
                                             length=reference.size)
    stimuli[HIDDEN_REFERENCE] = reference
    for anchor_id, cutoff_hz, _ in _ANCHORS:
        if anchor_applies(cutoff_hz, sample_rate_hz=rate):
            stimuli[anchor_id] = lowpass_anchor(reference, sample_rate_hz=rate, cutoff_hz=cutoff_hz)
    reference, stimuli, gains_db = match_loudness(reference, stimuli, sample_rate_hz=rate)
    stimuli[HIDDEN_REFERENCE] = reference  # exactly the open reference, which only gets the common gain
    files = {"open": _token(salt, item_id, "open")}
    write(audio_dir / files["open"], reference, rate)
    for condition_id, audio in stimuli.items():
        files[condition_id] = _token(salt, item_id, condition_id)
        write(audio_dir / files[condition_id], audio, rate)
    return MushraItem(id=item_id, name=name, sample_rate_hz=rate, duration_s=reference.size / rate,
                      reference=files.pop("open"), stimuli=files,
                      gains_db={k: round(v, 3) for k, v in gains_db.items()})


def _clear(folder: Path) -> None:
    """Remove a previous test's audio and database (never anything else the folder may hold)."""
    audio = folder / AUDIO_DIR
    if audio.is_dir():
        for path in audio.iterdir():
            if AUDIO_FILE.fullmatch(path.name):
                path.unlink()
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{DB_NAME}{suffix}").unlink(missing_ok=True)


def build_test(bench: Path, *, out: Path | None = None, n_items: int = DEFAULT_ITEMS,
               conditions: Sequence[str] | None = None) -> MushraSpec:
    """Build (or reuse) the MUSHRA test of a bench folder in `out` (default BENCH/listening); return it."""
    from nsac.listen.store import RatingStore

    if n_items < 1:
        raise ParameterError(f"--items {n_items} must be a positive number of items")
    bench = Path(bench)
    out = Path(out) if out is not None else bench / LISTENING_DIR
    rows = _read_rows(bench)
    meta = _bench_meta(bench)
    labels = _choose_conditions(rows, meta, conditions)
    files = _choose_items(rows, labels, n_items)
    selection = {"conditions": labels, "files": files}
    if (out / SPEC_NAME).exists():
        try:
            old = read_spec(out)
        except NsacError:
            old = None
        if old is not None and old.selection == selection and \
                all((out / AUDIO_DIR / f).is_file() for f in old.audio_files()):
            RatingStore(out / DB_NAME).initialise(old)
            return old
        n_ratings = RatingStore(out / DB_NAME).count_ratings() if (out / DB_NAME).exists() else 0
        if n_ratings:
            raise NsacError(f"{out} holds {n_ratings} ratings of a test with other items or conditions; "
                            "give the same --items and --conditions to resume it, or --out a new folder "
                            f"(after `nsac listen --results {out / DB_NAME}`)")
        _clear(out)
    mushra_conditions = [MushraCondition(id=f"c{i + 1:02d}", label=label, kind="codec")
                         for i, label in enumerate(labels)]
    mushra_conditions.append(MushraCondition(id=HIDDEN_REFERENCE, label="hidden reference", kind="reference"))
    mushra_conditions += [MushraCondition(id=anchor_id, label=label, kind="anchor")
                          for anchor_id, _, label in _ANCHORS]
    decoded = {(row["file"], row["condition"]): row["decoded"] for row in rows if not row["error"]}
    audio_dir = out / AUDIO_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(16)
    items = []
    for index, name in enumerate(files):
        try:
            items.append(_build_item(index, name, bench=bench, meta=meta,
                                     decoded={label: decoded[(name, label)] for label in labels},
                                     conditions=mushra_conditions, audio_dir=audio_dir, salt=salt))
        except AudioError as exc:
            raise NsacError(f"item {name}: {exc}") from None
    used = {c for item in items for c in item.stimuli}
    spec = MushraSpec(test_id=secrets.token_hex(8), title=f"Listening test: {bench.resolve().name}",
                      bench=str(bench.resolve()), conditions=[c for c in mushra_conditions if c.id in used],
                      items=items, selection=selection)
    write_spec(out, spec)
    RatingStore(out / DB_NAME).initialise(spec)
    return spec


__all__ = ["DEFAULT_ITEMS", "MAX_STIMULI", "build_test"]
