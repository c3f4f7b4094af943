"""SQLite storage of a MUSHRA test's ratings: one row per listener, item and condition, committed at once.

The database (WAL journal, synchronous=FULL) is written by one transaction per submitted page, so a page
is either wholly stored or not at all, and nothing submitted is lost when the browser or the server stops.
A listener is known by the id (name) they type; their random order of items and of stimuli per item is
drawn once from a seed derived from the test and that id, and stored, so they resume where they were.
Each call opens its own short connection: the server's request threads share nothing but the file.

Schema::

    meta(key PRIMARY KEY, value)                          test_id, schema version
    conditions(condition_id PRIMARY KEY, label, kind)     as in test.json, for a self-contained analysis
    items(item_id PRIMARY KEY, name)
    listeners(listener_id PRIMARY KEY, seed, item_order, stimulus_order, created)   orders as JSON
    ratings(listener_id, item_id, condition_id, score 0-100, time; PRIMARY KEY the first three)
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nsac.errors import NsacError, ParameterError
from nsac.listen.spec import MushraSpec

SCHEMA_VERSION = 1
#: how long a writer waits for another one before giving up
BUSY_TIMEOUT_S = 10.0
MIN_SCORE, MAX_SCORE = 0, 100
#: refuse new listeners beyond this: a test has a few dozen, and a loop of requests must not fill the disk
MAX_LISTENERS = 500
_SEED_BYTES = 8

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conditions (
    condition_id TEXT PRIMARY KEY, label TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listeners (
    listener_id TEXT PRIMARY KEY, seed INTEGER NOT NULL, item_order TEXT NOT NULL,
    stimulus_order TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    listener_id TEXT NOT NULL REFERENCES listeners(listener_id),
    item_id TEXT NOT NULL REFERENCES items(item_id),
    condition_id TEXT NOT NULL REFERENCES conditions(condition_id),
    score INTEGER NOT NULL CHECK (score BETWEEN {MIN_SCORE} AND {MAX_SCORE}),
    time TEXT NOT NULL,
    PRIMARY KEY (listener_id, item_id, condition_id));
"""


@dataclass(frozen=True)
class Listener:
    """A listener's id, seed and orders: item ids in playing order, and per item the condition ids shown."""

    id: str
    seed: int
    item_order: list[str]
    stimulus_order: dict[str, list[str]]


@dataclass(frozen=True)
class RatingRow:
    listener_id: str
    item_id: str
    item_name: str
    condition_id: str
    label: str
    kind: str
    score: int
    time: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def listener_seed(test_id: str, listener_id: str) -> int:
    """The listener's seed: the same id in the same test always gets the same orders."""
    digest = hashlib.sha256(f"{test_id}/{listener_id}".encode()).digest()
    return int.from_bytes(digest[:_SEED_BYTES], "big") >> 1  # SQLite's INTEGER is signed 64-bit


class RatingStore:
    """The ratings database of one test at `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise NsacError(f"{self.path}: cannot open the ratings database ({exc})") from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            if write:
                connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if write:
                    connection.execute("ROLLBACK")
                raise
            if write:
                connection.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise NsacError(f"{self.path}: the ratings database failed ({exc})") from None
        finally:
            connection.close()

    def initialise(self, spec: MushraSpec) -> None:
        """Create the tables and record the test; a database of another test is refused."""
        with self._connect() as db:
            db.executescript(_SCHEMA)  # idempotent; executescript commits, so it runs on its own
        with self._connect(write=True) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'test_id'").fetchone()
            if row is not None and row[0] != spec.test_id:
                raise NsacError(f"{self.path} holds the ratings of another test ({row[0]}, not "
                                f"{spec.test_id}); move it away or build the test into a new folder")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('test_id', ?), ('schema', ?)",
                       (spec.test_id, str(SCHEMA_VERSION)))
            db.executemany("INSERT OR IGNORE INTO conditions VALUES (?, ?, ?)",
                           [(c.id, c.label, c.kind) for c in spec.conditions])
            db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?)", [(i.id, i.name) for i in spec.items])

    def listener(self, listener_id: str, spec: MushraSpec) -> Listener:
        """The listener of that id, created with freshly drawn (and stored) orders if new."""
        with self._connect(write=True) as db:
            row = db.execute("SELECT seed, item_order, stimulus_order FROM listeners WHERE listener_id = ?",
                             (listener_id,)).fetchone()
            if row is not None:
                return Listener(listener_id, int(row[0]), json.loads(row[1]), json.loads(row[2]))
            (count,) = db.execute("SELECT COUNT(*) FROM listeners").fetchone()
            if count >= MAX_LISTENERS:
                raise ParameterError(f"this test already has {MAX_LISTENERS} listeners")
            seed = listener_seed(spec.test_id, listener_id)
            rng = random.Random(seed)
            items = [item.id for item in spec.items]
            rng.shuffle(items)
            order = {}
            for item in spec.items:
                stimuli = list(item.stimuli)
                rng.shuffle(stimuli)
                order[item.id] = stimuli
            db.execute("INSERT INTO listeners VALUES (?, ?, ?, ?, ?)",
                       (listener_id, seed, json.dumps(items), json.dumps(order), _now()))
            return Listener(listener_id, seed, items, order)

    def has_listener(self, listener_id: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM listeners WHERE listener_id = ?", (listener_id,)).fetchone() \
                is not None

    def save_page(self, listener_id: str, item_id: str, scores: dict[str, int]) -> None:
        """Store (or replace) one listener's scores of one item, all in one committed transaction."""
        for condition_id, score in scores.items():
            if type(score) is not int or not MIN_SCORE <= score <= MAX_SCORE:
                raise ParameterError(f"score {score!r} for {condition_id} must be a whole number "
                                     f"from {MIN_SCORE} to {MAX_SCORE}")
        time = _now()
        with self._connect(write=True) as db:
            db.executemany(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (listener_id, item_id, condition_id) "
                "DO UPDATE SET score = excluded.score, time = excluded.time",
                [(listener_id, item_id, condition_id, score, time) for condition_id, score in scores.items()])

    def scores_of(self, listener_id: str) -> dict[str, dict[str, int]]:
        """item id -> condition id -> score, of one listener."""
        result: dict[str, dict[str, int]] = {}
        with self._connect() as db:
            for item_id, condition_id, score in db.execute(
                    "SELECT item_id, condition_id, score FROM ratings WHERE listener_id = ?", (listener_id,)):
                result.setdefault(item_id, {})[condition_id] = int(score)
        return result

    def count_ratings(self) -> int:
        with self._connect() as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])
            except sqlite3.OperationalError:  # no table yet
                return 0

    def rows(self) -> list[RatingRow]:
        """Every rating with its item name and condition label, in a stable order."""
        if not self.path.is_file():
            raise NsacError(f"{self.path}: no such ratings database")
        with self._connect() as db:
            try:
                found = db.execute(
                    "SELECT r.listener_id, r.item_id, i.name, r.condition_id, c.label, c.kind, r.score, "
                    "r.time "
                    "FROM ratings r JOIN items i USING (item_id) JOIN conditions c USING (condition_id) "
                    "ORDER BY r.listener_id, r.item_id, r.condition_id").fetchall()
            except sqlite3.OperationalError:
                raise NsacError(f"{self.path} is not an nsac listening-test database") from None
        return [RatingRow(*row) for row in found]


__all__ = ["MAX_SCORE", "MIN_SCORE", "Listener", "RatingRow", "RatingStore", "listener_seed"]
