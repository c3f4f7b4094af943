"""The ratings database: WAL and immediate commits (a killed server loses nothing), orders, refusals."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from nsac.errors import NsacError, ParameterError
from nsac.listen.spec import DB_NAME, read_spec
from nsac.listen.store import RatingStore, listener_seed

#: how long the served CLI may take to print its address, and each request to answer
STARTUP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 5.0


def test_orders_are_seeded_by_listener_and_stored(built_bench: Path) -> None:
    folder = built_bench / "listening"
    spec = read_spec(folder)
    store = RatingStore(folder / DB_NAME)
    ann = store.listener("Ann", spec)
    assert ann.seed == listener_seed(spec.test_id, "Ann") and 0 <= ann.seed < 2**63
    assert sorted(ann.item_order) == [item.id for item in spec.items]
    assert all(sorted(ann.stimulus_order[i.id]) == sorted(i.stimuli) for i in spec.items)
    assert store.listener("Ann", spec) == ann
    with sqlite3.connect(folder / DB_NAME) as db:
        seed, items = db.execute("SELECT seed, item_order FROM listeners WHERE listener_id = ?",
                                 ("Ann",)).fetchone()
    assert seed == ann.seed and json.loads(items) == ann.item_order
    others = [store.listener(f"L{n}", spec) for n in range(8)]
    assert len({json.dumps(o.stimulus_order) for o in others}) > 1


def test_pages_are_committed_in_wal_mode_and_checked(built_bench: Path) -> None:
    folder = built_bench / "listening"
    spec = read_spec(folder)
    store = RatingStore(folder / DB_NAME)
    store.listener("Ann", spec)
    item = spec.items[0]
    store.save_page("Ann", item.id, dict.fromkeys(item.stimuli, 55))
    with sqlite3.connect(folder / DB_NAME) as db:  # another connection sees it at once
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM ratings WHERE score = 55").fetchone()[0] == len(item.stimuli)
    for bad in (101, -1, 5.5, True, "7"):
        with pytest.raises(ParameterError, match="whole number from 0 to 100"):
            store.save_page("Ann", item.id, {**dict.fromkeys(item.stimuli, 60), "ref": bad})
    assert store.scores_of("Ann") == {item.id: dict.fromkeys(item.stimuli, 55)}
    with sqlite3.connect(folder / DB_NAME) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO ratings VALUES ('Ann', ?, 'c01', 101, 't')", (spec.items[1].id,))


def test_a_database_of_another_test_is_refused(built_bench: Path) -> None:
    folder = built_bench / "listening"
    spec = read_spec(folder)
    with pytest.raises(NsacError, match="ratings of another test"):
        RatingStore(folder / DB_NAME).initialise(replace(spec, test_id="0" * 16))


def _server_url(process: subprocess.Popen, timeout_s: float) -> str:
    """The address `nsac listen` prints, read by a helper thread: a silent server cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        try:
            for line in process.stdout:
                lines.put(line)
        except (OSError, ValueError):  # the test closed the pipe
            pass

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            found = re.search(r"http://127\.0\.0\.1:\d+/", lines.get(timeout=left))
        except queue.Empty:
            break
        if found:
            return found.group(0)
    raise AssertionError(f"`nsac listen` printed no address within {timeout_s} s")


def test_ratings_survive_a_killed_server(built_bench: Path) -> None:
    """`nsac listen` on an ephemeral port, killed with SIGKILL right after a page: the page is there."""
    process = subprocess.Popen([sys.executable, "-m", "nsac", "listen", str(built_bench), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = _server_url(process, STARTUP_TIMEOUT_S)

        def post(path: str, body: dict) -> dict:
            request = urllib.request.Request(url + path.lstrip("/"), data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                return json.loads(response.read())

        page = post("/api/start", {"listener": "Ann"})["pages"][0]
        post("/api/rate", {"listener": "Ann", "item": page["item"],
                           "scores": {s["key"]: 77 for s in page["stimuli"]}})
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=REQUEST_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=REQUEST_TIMEOUT_S)
        process.stdout.close()
    with sqlite3.connect(built_bench / "listening" / DB_NAME) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM ratings WHERE score = 77").fetchone()
    assert count == len(page["stimuli"])
