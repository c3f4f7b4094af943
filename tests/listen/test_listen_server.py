"""The live server over urllib: a listener's round trip, resuming, and every bad request refused with a 4xx
that leaves the database as it was."""

from __future__ import annotations

import hashlib
import http.client
import json
import sqlite3
import urllib.error
import urllib.request
from typing import Any

import pytest

from nsac.listen.server import ListeningServer
from nsac.listen.spec import DB_NAME

#: every request in these tests gives up after this long
TIMEOUT_S = 5.0


def _request(server: ListeningServer, path: str, body: Any = None, *, method: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, bytes]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data, headers=all_headers,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _raw_get(server: ListeningServer, target: str, *, host: str | None = None, method: str = "GET") -> int:
    """A request whose target and Host go out exactly as written (urllib would normalise them)."""
    address, port = server.server_address[:2]
    connection = http.client.HTTPConnection(address, port, timeout=TIMEOUT_S)
    try:
        connection.putrequest(method, target, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def _database_digest(server: ListeningServer) -> str:
    """A digest of every listener and rating row: equal digests mean nothing changed."""
    with sqlite3.connect(server.folder / DB_NAME) as db:
        rows = db.execute("SELECT * FROM listeners ORDER BY 1").fetchall()
        rows += db.execute("SELECT * FROM ratings ORDER BY 1, 2, 3").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _start(server: ListeningServer, listener: str) -> dict:
    status, body = _request(server, "/api/start", {"listener": listener})
    assert status == 200, body
    return json.loads(body)


def _full_page(page: dict, score: int = 70) -> dict[str, int]:
    return {stimulus["key"]: score for stimulus in page["stimuli"]}


def test_page_and_audio_are_served(live_server: ListeningServer) -> None:
    for path in ("/", "/mushra.js", "/mushra.css"):
        status, body = _request(live_server, path)
        assert status == 200 and body
    session = _start(live_server, "Ann")
    page = session["pages"][0]
    status, body = _request(live_server, page["reference"])
    assert status == 200 and body[:4] == b"RIFF"
    for stimulus in page["stimuli"]:
        assert _request(live_server, stimulus["url"])[0] == 200


def test_round_trip_resume_and_order(live_server: ListeningServer) -> None:
    session = _start(live_server, "Ann")
    n_items = len(live_server.spec.items)
    assert len(session["pages"]) == n_items and all(p["scores"] is None for p in session["pages"])
    first = session["pages"][0]
    status, body = _request(live_server, "/api/rate",
                            {"listener": "Ann", "item": first["item"], "scores": _full_page(first, 85)})
    assert status == 200 and json.loads(body) == {"saved": len(first["stimuli"]), "items_done": 1,
                                                  "items_total": n_items}
    again = _start(live_server, "Ann")
    assert [p["item"] for p in again["pages"]] == [p["item"] for p in session["pages"]]
    assert [s["key"] for s in again["pages"][0]["stimuli"]] == [s["key"] for s in first["stimuli"]]
    assert again["pages"][0]["scores"] == _full_page(first, 85)
    # another listener gets its own order (by chance the same for one item, hardly for all of them)
    other = _start(live_server, "Bob")
    def orders(start: dict) -> list:
        return [(p["item"], [x["key"] for x in p["stimuli"]]) for p in start["pages"]]

    assert orders(other) != orders(session)
    # a page submitted again replaces its scores: still one row per listener, item and condition
    assert _request(live_server, "/api/rate", {"listener": "Ann", "item": first["item"],
                                               "scores": _full_page(first, 40)})[0] == 200
    with sqlite3.connect(live_server.folder / DB_NAME) as db:
        assert db.execute("SELECT COUNT(*), MIN(score), MAX(score) FROM ratings").fetchone() == \
            (len(first["stimuli"]), 40, 40)


def _bad_rates(page: dict, keys: list[str], other_keys: list[str]) -> list[tuple[str, dict]]:
    good = _full_page(page)
    def scored(value: Any) -> dict:
        return {**good, keys[0]: value}
    base = {"listener": "Ann", "item": page["item"]}
    return [
        ("score above 100", {**base, "scores": scored(101)}),
        ("score below 0", {**base, "scores": scored(-1)}),
        ("fractional score", {**base, "scores": scored(50.5)}),
        ("float score", {**base, "scores": scored(50.0)}),
        ("string score", {**base, "scores": scored("50")}),
        ("boolean score", {**base, "scores": scored(True)}),
        ("null score", {**base, "scores": scored(None)}),
        ("huge score", {**base, "scores": scored(10**30)}),
        ("missing stimulus", {**base, "scores": {k: 50 for k in keys[1:]}}),
        ("unknown stimulus key", {**base, "scores": {**good, "0123456789abcdef0123": 50}}),
        ("another item's key", {**base, "scores": {**{k: 50 for k in keys[1:]}, other_keys[0]: 50}}),
        ("condition id as key", {**base, "scores": {**{k: 50 for k in keys[1:]}, "ref": 50}}),
        ("unknown item", {**base, "item": "i99", "scores": good}),
        ("item as number", {**base, "item": 1, "scores": good}),
        ("unknown listener", {**base, "listener": "Nobody", "scores": good}),
        ("bad listener id", {**base, "listener": "../../etc", "scores": good}),
        ("listener as list", {**base, "listener": ["Ann"], "scores": good}),
        ("scores as list", {**base, "scores": [50] * len(keys)}),
        ("extra field", {**base, "scores": good, "admin": True}),
        ("missing field", {"listener": "Ann", "scores": good}),
    ]


def test_bad_ratings_are_refused_and_change_nothing(live_server: ListeningServer) -> None:
    session = _start(live_server, "Ann")
    page, other = session["pages"][0], session["pages"][1]
    keys = [s["key"] for s in page["stimuli"]]
    before = _database_digest(live_server)
    for what, body in _bad_rates(page, keys, [s["key"] for s in other["stimuli"]]):
        status, answer = _request(live_server, "/api/rate", body)
        assert 400 <= status < 500, (what, status)
        assert "error" in json.loads(answer), what
        assert _database_digest(live_server) == before, what
    assert _request(live_server, "/api/rate", {"listener": "Ann", "item": page["item"],
                                               "scores": _full_page(page)})[0] == 200


@pytest.mark.parametrize("body", [
    {"listener": ""}, {"listener": "   "}, {"listener": "x" * 65}, {"listener": "<script>"},
    {"listener": "a\nb"}, {"listener": 7}, {"name": "Ann"}, {"listener": "Ann", "extra": 1},
])
def test_bad_starts_are_refused(live_server: ListeningServer, body: dict) -> None:
    before = _database_digest(live_server)
    assert 400 <= _request(live_server, "/api/start", body)[0] < 500
    assert _database_digest(live_server) == before


def test_malformed_requests_are_refused(live_server: ListeningServer) -> None:
    before = _database_digest(live_server)
    cases = [
        _request(live_server, "/api/start", raw=b"{not json"),
        _request(live_server, "/api/start", raw=b"[1, 2]"),
        _request(live_server, "/api/start", raw=b"\xff\xfe"),
        _request(live_server, "/api/start", raw=b"{}" + b" " * 20000),
        _request(live_server, "/api/start", {"listener": "Ann"}, headers={"Content-Type": "text/plain"}),
        _request(live_server, "/api/other", {"listener": "Ann"}),
        _request(live_server, "/api/start", method="PUT", raw=b"{}"),
        _request(live_server, "/api/start", method="DELETE"),
        _request(live_server, "/", method="OPTIONS"),
        _request(live_server, "/api/start"),  # GET of an API call
    ]
    for index, (status, _) in enumerate(cases):
        assert 400 <= status < 500, (index, status)
    assert _database_digest(live_server) == before


@pytest.mark.parametrize("target", [
    "/../test.json", "/audio/../test.json", "/audio/..%2ftest.json", "/audio/%2e%2e/ratings.sqlite",
    "/%2e%2e/%2e%2e/etc/passwd", "/audio/../../../../etc/passwd", "/test.json", "/ratings.sqlite",
    "/ratings.sqlite-wal", "/audio/", "/audio", "/static/mushra.js", "/../server.py", "/mushra.js/..",
    "/audio/./{name}", "/audio//{name}", "/AUDIO/{name}", "/audio/{upper}", "/audio/{name}/", "/index.html",
    "//etc/passwd", "/audio/{name}%00", "/audio/%5c..%5ctest.json",
])
def test_only_the_tests_own_files_are_served(live_server: ListeningServer, target: str) -> None:
    name = live_server.spec.items[0].reference
    target = target.format(name=name, upper=name.upper())
    before = _database_digest(live_server)
    assert _raw_get(live_server, target) == 404
    assert _database_digest(live_server) == before


def test_foreign_host_names_are_refused(live_server: ListeningServer) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 sends its own Host: refused."""
    port = live_server.server_address[1]
    assert _raw_get(live_server, "/", host=f"evil.example:{port}") == 400
    assert _raw_get(live_server, "/", host="") == 400
    assert _raw_get(live_server, "/", host=f"localhost:{port}") == 200
    assert _raw_get(live_server, "/", host=f"127.0.0.1:{port}") == 200
    assert _raw_get(live_server, "/", method="BREW") == 405
