"""``mlplab serve``: a run's model behind a small HTTP server (Python's standard library).

Endpoints::

    GET  /          a page to draw or drop images and see the model's answer
    GET  /info      the model: name, dataset, classes, input size, test accuracy (JSON)
    GET  /health    {"status": "ok"}
    POST /predict   the body: one image's bytes, or a multipart form of image files;
                    query: top, invert (auto|yes|no), frame (1|0), show (1|0: add "seen",
                    the image as the model saw it, as a PNG data URL), explain (1|0: add
                    "why", what each pixel contributed to the answer, the same way),
                    min_probability (0..1: add "sure", whether the answer reaches it;
                    the server's --min-probability by default). Answers JSON
                    {"model": name, "predictions": [{file, label, probability, inverted,
                    top: [{label, probability}][, sure]}]}

Errors are JSON ``{"error": "one line"}`` with a 4xx status; the server goes on serving.
With ``cors``, ``OPTIONS`` answers browsers' preflight questions for pages of that origin.
It listens on 127.0.0.1 unless told otherwise: it is meant for one machine or a trusted
network, not the open internet (no authentication, no TLS).
"""

from __future__ import annotations

import errno
import json
import socket
import socketserver
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from mlplab._version import __version__
from mlplab.errors import MlplabError
from mlplab.runs import Run, load_run, target_note
from mlplab.serving.page import page_html
from mlplab.serving.predictor import Predictor
from mlplab.serving.requests import RequestError, body_images, predict_options

# The largest request body read: a few phone photos.
MAX_BODY = 32 * 1024 * 1024
# A body up to this size is read and dropped after refusing it, so that the client gets the
# answer instead of a reset connection; a larger one is cut off.
MAX_DRAINED = 256 * 1024 * 1024
ENDPOINTS = {"/": "GET", "/info": "GET", "/health": "GET", "/predict": "POST"}
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'"
)


def _json(data: Any) -> bytes:
    return (json.dumps(data) + "\n").encode("utf-8")


@dataclass
class _Reply:
    """An answer to send: status, body, its content type, and what the log line says."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    note: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, note: str) -> _Reply:
        return cls(200, _json(data), note=note)

    @classmethod
    def error(cls, status: int, message: str) -> _Reply:
        return cls(status, _json({"error": message}), note=message)


class PredictionServer(ThreadingHTTPServer):
    """An HTTP server answering with ``predictor``; ``log`` gets one line per request
    (None: quiet); ``cors``: the web origin (or ``*``) whose pages may call it from a
    browser. Use as a context manager, or call ``serve_forever`` / ``shutdown``."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        predictor: Predictor,
        log: TextIO | None = None,
        cors: str | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.predictor = predictor
        self.log = log
        self.cors = cors
        self.page = page_html(predictor.info())
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's full name up in DNS, which can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port/`` (the port the system chose, for port 0)."""
        host = f"[{self.server_name}]" if ":" in self.server_name else self.server_name
        return f"http://{host}:{self.server_port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or stalled is one log line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            self.write_log(f"{client_address[0]} connection dropped: {error}")
        else:
            super().handle_error(request, client_address)

    def write_log(self, line: str) -> None:
        if self.log is not None:
            print(f"{datetime.now().strftime('%H:%M:%S')} {line}", file=self.log, flush=True)


def _too_large() -> RequestError:
    megabytes = MAX_BODY / 2**20
    return RequestError(413, f"the body is larger than the {megabytes:g} MiB this server reads")


class _Handler(BaseHTTPRequestHandler):
    server: PredictionServer
    server_version = f"mlplab/{__version__}"
    timeout = 60  # seconds a client may stall mid-request before it is dropped

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_OPTIONS(self) -> None:
        """A browser asking whether a page from another origin may call us (CORS)."""
        path = urlsplit(self.path).path
        if path not in ENDPOINTS:
            self._answer("OPTIONS")  # the 404
            return
        headers = {"Allow": ENDPOINTS[path]}
        if self.server.cors:
            headers["Access-Control-Allow-Methods"] = ENDPOINTS[path]
            headers["Access-Control-Allow-Headers"] = "Content-Type"
            headers["Access-Control-Max-Age"] = "600"
        self._send_head(204, headers)
        self.server.write_log(f"{self.address_string()} OPTIONS {path} 204")

    def _send_head(self, status: int, headers: dict[str, str]) -> None:
        """The status line and ``headers``, with the CORS ones when they are on."""
        self.send_response(status)
        cors = self.server.cors
        if cors:
            headers = {**headers, "Access-Control-Allow-Origin": cors}
            if cors != "*":
                headers["Vary"] = "Origin"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: _answer logs each request with what it did and how long it took."""

    def log_message(self, format: str, *args: Any) -> None:  # malformed requests
        self.server.write_log(f"{self.address_string()} {format % args}")

    def _answer(self, method: str) -> None:
        start = time.perf_counter()
        url = urlsplit(self.path)
        try:
            reply = self._route(method, url.path, url.query)
        except RequestError as exc:
            reply = _Reply.error(exc.status, str(exc))
            if exc.status == 405:
                reply.headers["Allow"] = ENDPOINTS[url.path]
        except (ConnectionError, TimeoutError):
            raise  # the client left or stalled: nobody to answer (handle_error logs it)
        except MlplabError as exc:  # an image that cannot be read: the client's to fix
            reply = _Reply.error(400, str(exc))
        except Exception as exc:  # a bug: answered, logged, and the server goes on
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            reply = _Reply.error(500, f"internal error: {reason}")
            if self.server.log is not None:
                traceback.print_exc(file=self.server.log)
        headers = {
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            **reply.headers,
        }
        self._send_head(reply.status, headers)
        self.wfile.write(reply.body)
        took = (time.perf_counter() - start) * 1000
        self.server.write_log(
            f"{self.address_string()} {method} {url.path} {reply.status} {reply.note} "
            f"({took:.0f} ms)"
        )

    def _route(self, method: str, path: str, query: str) -> _Reply:
        """The answer to a request; RequestError for one that is refused."""
        if path not in ENDPOINTS:
            listed = ", ".join(f"{m} {p}" for p, m in ENDPOINTS.items())
            raise RequestError(404, f"no endpoint {path!r}; there are: {listed}")
        if method != ENDPOINTS[path]:
            how = "send the image as the body with POST" if path == "/predict" else "use GET"
            raise RequestError(405, f"{method} {path} is not allowed: {how}")
        predictor = self.server.predictor
        if path == "/":
            return _Reply(
                200, self.server.page, HTML_TYPE, "page", {"Content-Security-Policy": PAGE_POLICY}
            )
        if path == "/info":
            return _Reply.json(predictor.info(), "info")
        if path == "/health":
            return _Reply.json({"status": "ok"}, "ok")
        options = predict_options(query)
        images = body_images(self.headers.get("Content-Type", ""), self._body())
        results = predictor.predict(
            images,
            options.top,
            options.invert,
            options.frame,
            options.show,
            options.explain,
            options.min_probability,
        )
        answer = {"model": predictor.run.config.name, "predictions": results}
        labels = ", ".join(r["label"] for r in results[:5]) + (", ..." if len(results) > 5 else "")
        return _Reply.json(answer, f"{len(results)} image(s): {labels}")

    def _body(self) -> bytes:
        """The request's body: Content-Length bytes, or chunks; b"" when it declares none."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunks()
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            raise RequestError(400, f"Content-Length {length!r} is not a number of bytes")
        size = int(length)
        if size > MAX_BODY:
            self._drop(size)
            raise _too_large()
        return self.rfile.read(size)

    def _chunks(self) -> bytes:
        """A body sent with ``Transfer-Encoding: chunked`` (a stream of unknown length).
        Past MAX_BODY the rest is read and dropped (up to MAX_DRAINED) before refusing it."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise RequestError(400, "malformed chunked body") from None
            if size == 0 or total > MAX_DRAINED:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not used
                if total > MAX_BODY:
                    self.close_connection = True
                    raise _too_large()
                return b"".join(parts)
            total += size
            chunk = self.rfile.read(size)
            if total <= MAX_BODY:
                parts.append(chunk)
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _drop(self, size: int) -> None:
        """Read and forget a refused body (or close the connection if it is huge)."""
        self.close_connection = True
        if size > MAX_DRAINED:
            return
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 20))
            if not chunk:
                return
            size -= len(chunk)


def _origin(cors: str) -> str:
    """``*`` or a web origin (scheme://host[:port]); MlplabError otherwise."""
    if cors == "*":
        return cors
    parts = urlsplit(cors)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise MlplabError(
            f"cors {cors!r}: give a web origin such as http://localhost:3000, or * for any"
        )
    return f"{parts.scheme}://{parts.netloc}"


def make_server(
    run: Run | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    top: int = 3,
    log: TextIO | None = None,
    cors: str | None = None,
    min_probability: float | None = None,
    target_accuracy: float | None = None,
) -> PredictionServer:
    """Load ``run``'s model and listen on ``host:port`` (port 0: any free one) — but do not
    serve yet: call ``serve_forever()`` (and ``shutdown()`` from another thread).

    cors: let pages from this web origin (``http://localhost:3000``), or from any (``*``),
    call the server from a browser. min_probability: answers below it say ``"sure":
    false`` unless a request asks for another; target_accuracy instead: that threshold is the
    lowest probability at which the run's test answers were this right
    (:meth:`Run.threshold_for_accuracy`). MlplabError for a run that cannot be loaded, an
    address that cannot be listened on, or a bad value.
    """
    if not 0 <= port <= 65535:
        raise MlplabError(f"port {port}: must be between 0 and 65535")
    if top < 1:
        raise MlplabError(f"top {top}: must be at least 1")
    if min_probability is not None and not 0 <= min_probability <= 1:
        raise MlplabError(f"min-probability {min_probability:g}: must lie in 0..1")
    if cors is not None:
        cors = _origin(cors)
    if min_probability is not None and target_accuracy is not None:
        raise MlplabError("min-probability and target-accuracy: choose one")
    run = run if isinstance(run, Run) else load_run(run)
    note = None
    if target_accuracy is not None:
        min_probability, share = run.threshold_for_accuracy(target_accuracy)
        note = target_note(target_accuracy, min_probability, share)
    predictor = Predictor(run, top, min_probability, note)
    try:
        return PredictionServer((host, port), predictor, log, cors)
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (another program listens there: choose another --port, or 0 for any)"
        reason = exc.strerror or str(exc)
        raise MlplabError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def serve(
    run: Run | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    top: int = 3,
    quiet: bool = False,
    cors: str | None = None,
    min_probability: float | None = None,
    target_accuracy: float | None = None,
) -> None:
    """Serve ``run``'s model until Ctrl-C (see the module's docstring for the endpoints).

    Prints where it listens on stdout, and one line per request on stderr unless ``quiet``.
    """
    log = None if quiet else sys.stderr
    with make_server(run, host, port, top, log, cors, min_probability, target_accuracy) as server:
        run = server.predictor.run
        accuracy = run.metrics.get("test_accuracy")
        score = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
        print(f"serving {run.config.name} ({run.path}{score})")
        if server.predictor.unsure_note:
            print(f"  {server.predictor.unsure_note}")
        print(f"  page     {server.url}   draw or drop images")
        print(f"  predict  curl --data-binary @image.png {server.url}predict")
        print(f"  info     {server.url}info")
        print("Ctrl-C to stop", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("\nstopped", flush=True)
