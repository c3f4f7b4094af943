"""The HTTP server of a MUSHRA test (standard library only): the page, its audio, and the ratings API.

It serves a fixed whitelist and nothing else: the three page files (static/), the stimulus files that
test.json names (by exact name: no path is ever built from a request), and two JSON calls:

    POST /api/start {"listener": NAME}                      -> the listener's pages, in their order, with
                                                               the scores they already gave (resume)
    POST /api/rate  {"listener": NAME, "item": ID, "scores": {STIMULUS_KEY: 0..100, ...}}
                                                             -> one page stored, in one transaction

Stimulus keys are the audio files' tokens, so the page never learns which condition it plays. Every
input is checked (ids, the exact set of keys, integer scores 0-100, body size, JSON content type); anything
else gets a 4xx and changes nothing. The Host header must be an IP address, localhost or this machine's
name, which defeats DNS rebinding; POST needs a JSON content type, which a foreign page cannot send
without a CORS preflight that this server never grants.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import socketserver
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nsac.errors import NsacError, ParameterError
from nsac.listen.spec import AUDIO_DIR, DB_NAME, MushraSpec, read_spec
from nsac.listen.store import MAX_SCORE, MIN_SCORE, RatingStore

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: largest request body accepted (a page of twelve scores is about 600 bytes)
MAX_BODY_BYTES = 16 * 1024
#: a connection idle this long is dropped (a stalled client cannot hold a thread for ever)
SOCKET_TIMEOUT_S = 30.0
#: a listener id: a letter or digit, then letters, digits, space, . _ @ ' -, at most this long
MAX_LISTENER_CHARS = 64
LISTENER_ID = re.compile(r"\w[\w .@'-]*")
STATIC_DIR = Path(__file__).with_name("static")
#: URL path -> (file in static/, content type)
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/mushra.js": ("mushra.js", "text/javascript; charset=utf-8"),
    "/mushra.css": ("mushra.css", "text/css; charset=utf-8"),
}
AUDIO_PREFIX = f"/{AUDIO_DIR}/"
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "media-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
_LOCAL_NAMES = ("localhost",)


class RequestError(NsacError):
    """A request the server refuses; `status` is the 4xx it answers with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _host_allowed(header: str | None) -> bool:
    """Whether a Host header names this server by IP address, localhost or this machine's name."""
    if not header:
        return False
    host = urlsplit(f"//{header}").hostname or ""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    names = {*_LOCAL_NAMES, socket.gethostname().lower(), f"{socket.gethostname().lower()}.local"}
    return host.lower() in names


def check_listener_id(value: Any) -> str:
    """The listener id of a request, stripped; RequestError(400) when it is not an acceptable id."""
    if not isinstance(value, str):
        raise RequestError(HTTPStatus.BAD_REQUEST, "listener must be a string")
    text = value.strip(" ")
    if not 0 < len(text) <= MAX_LISTENER_CHARS or not LISTENER_ID.fullmatch(text):
        raise RequestError(HTTPStatus.BAD_REQUEST,
                           f"a listener id is 1 to {MAX_LISTENER_CHARS} letters, digits, spaces or "
                           ". _ @ ' -, starting with a letter or digit")
    return text


def _check_fields(body: dict, fields: set[str]) -> None:
    if set(body) != fields:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the request needs exactly the fields {sorted(fields)}")


class ListeningServer(ThreadingHTTPServer):
    """One test folder served at `address`; `serve_forever()` runs it, `shutdown()` stops it."""

    daemon_threads = True

    def __init__(self, folder: Path, address: tuple[str, int], *, quiet: bool = False) -> None:
        self.folder = Path(folder)
        self.spec: MushraSpec = read_spec(self.folder)
        self.store = RatingStore(self.folder / DB_NAME)
        self.store.initialise(self.spec)
        self.quiet = quiet
        self.audio_files = self.spec.audio_files()
        #: stimulus key (file token) -> (item id, condition id)
        self.keys = {file.removesuffix(".wav"): (item.id, condition_id)
                     for item in self.spec.items for condition_id, file in item.stimuli.items()}
        self.items = {item.id: item for item in self.spec.items}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks this machine's name up in DNS, which can stall where DNS is unreachable
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port

    @property
    def url(self) -> str:
        """The test's address; for a server on every interface, under this machine's name."""
        host, port = str(self.server_address[0]), self.server_address[1]
        if ipaddress.ip_address(host.split("%")[0]).is_unspecified:
            host = socket.gethostname()
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    # the two API calls: plain functions of the parsed body, raising RequestError

    def start(self, body: dict) -> dict:
        _check_fields(body, {"listener"})
        listener = self.store.listener(check_listener_id(body["listener"]), self.spec)
        done = self.store.scores_of(listener.id)
        pages = []
        for item_id in listener.item_order:
            item = self.items[item_id]
            stimuli = [item.stimuli[c].removesuffix(".wav") for c in listener.stimulus_order[item_id]]
            scores = done.get(item_id)
            pages.append({
                "item": item_id, "duration_s": item.duration_s, "reference": AUDIO_PREFIX + item.reference,
                "stimuli": [{"key": key, "url": f"{AUDIO_PREFIX}{key}.wav"} for key in stimuli],
                "scores": {key: scores[self.keys[key][1]] for key in stimuli} if scores else None,
            })
        return {"listener": listener.id, "title": self.spec.title, "pages": pages,
                "min_score": MIN_SCORE, "max_score": MAX_SCORE}

    def rate(self, body: dict) -> dict:
        _check_fields(body, {"listener", "item", "scores"})
        listener_id = check_listener_id(body["listener"])
        item_id, scores = body["item"], body["scores"]
        if not isinstance(item_id, str) or item_id not in self.items:
            raise RequestError(HTTPStatus.NOT_FOUND, "no such item")
        if not self.store.has_listener(listener_id):
            raise RequestError(HTTPStatus.NOT_FOUND, "no such listener: start the test first")
        if not isinstance(scores, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "scores must be an object of stimulus key -> score")
        expected = {file.removesuffix(".wav") for file in self.items[item_id].stimuli.values()}
        if set(scores) != expected:
            raise RequestError(HTTPStatus.BAD_REQUEST,
                               "scores must rate every stimulus of the item, and only those")
        for score in scores.values():
            # bool is an int in Python and 50.0 is not a whole-number score: only true integers pass
            if type(score) is not int or not MIN_SCORE <= score <= MAX_SCORE:
                raise RequestError(HTTPStatus.BAD_REQUEST,
                                   f"every score must be a whole number from {MIN_SCORE} to {MAX_SCORE}")
        try:
            by_condition = {self.keys[key][1]: score for key, score in scores.items()}
            self.store.save_page(listener_id, item_id, by_condition)
        except ParameterError as exc:
            raise RequestError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        done = self.store.scores_of(listener_id)
        return {"saved": len(scores), "items_done": len(done), "items_total": len(self.items)}


class _Handler(BaseHTTPRequestHandler):
    server: ListeningServer
    server_version = "nsac-listen"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # the base class answers an unknown method with 501; for a client that is a 405 like any other
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code = HTTPStatus.METHOD_NOT_ALLOWED
        super().send_error(code, message, explain)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, *, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: HTTPStatus, document: dict) -> None:
        self._send(status, json.dumps(document).encode(), "application/json; charset=utf-8")

    def _refuse(self, error: RequestError) -> None:
        self._send_json(error.status, {"error": str(error)})

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            if not _host_allowed(self.headers.get("Host")):
                raise RequestError(HTTPStatus.BAD_REQUEST, "the Host header must name this machine")
            action()
        except RequestError as exc:
            self._refuse(exc)
        except NsacError as exc:  # the database failed: say so, and keep serving
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _get(self) -> None:
        path = urlsplit(self.path).path
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), content_type)
        elif path.startswith(AUDIO_PREFIX) and path[len(AUDIO_PREFIX):] in self.server.audio_files:
            file = self.server.folder / AUDIO_DIR / path[len(AUDIO_PREFIX):]
            self._send(HTTPStatus.OK, file.read_bytes(), "audio/wav", cache="private, max-age=3600")
        else:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")

    def _post(self) -> None:
        routes = {"/api/start": self.server.start, "/api/rate": self.server.rate}
        path = urlsplit(self.path).path
        if path not in routes:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        if self.headers.get_content_type() != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required") from None
        if not 0 < length <= MAX_BODY_BYTES:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body is 1 to {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        self._send_json(HTTPStatus.OK, routes[path](body))


def make_server(folder: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                quiet: bool = False) -> ListeningServer:
    """A server for the test in `folder` bound to (host, port); port 0 takes a free one."""
    try:
        return ListeningServer(folder, (host, port), quiet=quiet)
    except OSError as exc:
        raise NsacError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                        "choose another --port, or a --bind address of this machine") from None


def serve(folder: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the test until Ctrl-C; every submitted page is already in the database when it stops."""
    server = make_server(folder, host=host, port=port)
    print(f"listening test: {server.url}  (ratings go to {server.store.path}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ListeningServer", "RequestError", "check_listener_id",
           "make_server", "serve"]
