"""Download, verify, cache, retry and offline, against a local HTTP server on 127.0.0.1."""

import gzip
import hashlib
import http.server
import os
import tempfile
import threading
import zlib
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplab import DataError
from mlplab.data import fetch
from mlplab.data.fetch import (
    RemoteFile,
    cache_dir,
    ensure,
    gunzipped,
    matches,
    verify_cached,
)


class Server:
    """Serves ``routes``: path -> (status, content type, body[, declared length])."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                status, kind, body, *declared = server.routes.get(
                    self.path, (404, "text/plain", b"not found")
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(declared[0] if declared else len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("MLPLAB_OFFLINE", raising=False)
    # Whatever proxy the machine has configured, 127.0.0.1 is reached directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = Server()
    yield served
    served.close()


DATA = b"some dataset bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def remote(server, *paths, **kwargs):
    return RemoteFile("file.bin", SHA, tuple(server.url + p for p in paths), **kwargs)


def test_download_verifies_caches_and_reuses(server):
    server.routes["/file.bin"] = (200, "application/octet-stream", DATA)
    path = ensure("demo", remote(server, "/file.bin"), progress=False)
    assert path == cache_dir() / "demo" / "file.bin" and path.read_bytes() == DATA
    assert ensure("demo", remote(server, "/file.bin"), progress=False) == path
    assert server.requests == ["/file.bin"]  # the second time came from the cache
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]  # no temp files left


def test_wrong_checksum_is_refused_and_nothing_is_cached(server):
    server.routes["/file.bin"] = (200, "application/octet-stream", b"other bytes")
    with pytest.raises(DataError) as caught:
        ensure("demo", remote(server, "/file.bin"), progress=False)
    message = str(caught.value)
    assert "checksum mismatch" in message and SHA in message
    assert hashlib.sha256(b"other bytes").hexdigest() in message
    assert not any((cache_dir() / "demo").iterdir())


def test_html_error_page_is_refused(server):
    server.routes["/file.bin"] = (200, "text/html; charset=utf-8", b"<html>login</html>")
    with pytest.raises(DataError, match="HTML page, not the data file"):
        ensure("demo", remote(server, "/file.bin"), progress=False)


def test_truncated_download_is_refused(server):
    server.routes["/file.bin"] = (200, "application/octet-stream", DATA[:500], len(DATA))
    with pytest.raises(DataError, match="cut short"):
        ensure("demo", remote(server, "/file.bin"), progress=False)
    assert not any((cache_dir() / "demo").iterdir())


def test_falls_back_to_the_mirror(server):
    server.routes["/mirror/file.bin"] = (200, "application/octet-stream", DATA)
    path = ensure("demo", remote(server, "/missing/file.bin", "/mirror/file.bin"), progress=False)
    assert path.read_bytes() == DATA
    assert server.requests == ["/missing/file.bin", "/mirror/file.bin"]


def test_all_sources_failing_names_each(server):
    with pytest.raises(DataError, match="HTTP 404.*HTTP 404"):
        ensure("demo", remote(server, "/a/file.bin", "/b/file.bin"), progress=False)


def test_corrupt_cached_file_is_fetched_again(server):
    server.routes["/file.bin"] = (200, "application/octet-stream", DATA)
    cached = cache_dir() / "demo" / "file.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot")
    assert ensure("demo", remote(server, "/file.bin"), progress=False).read_bytes() == DATA
    assert server.requests == ["/file.bin"]


def test_offline_never_touches_the_network_and_says_where_it_looked(server, monkeypatch):
    server.routes["/file.bin"] = (200, "application/octet-stream", DATA)
    monkeypatch.setenv("MLPLAB_OFFLINE", "1")
    with pytest.raises(DataError) as caught:
        ensure("demo", remote(server, "/file.bin"), progress=False)
    assert "not available offline" in str(caught.value)
    assert str(cache_dir() / "demo" / "file.bin") in str(caught.value)
    assert server.requests == []


def test_copies_elsewhere_are_used_in_place(server, tmp_path):
    elsewhere = tmp_path / "debian" / "file.bin"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(DATA)
    found = ensure(
        "demo", remote(server, "/file.bin", elsewhere=(lambda: elsewhere,)), offline=True
    )
    assert found == elsewhere and server.requests == []


def test_recompressed_gzip_is_verified_by_its_content(tmp_path):
    raw = b"idx content " * 500
    official = tmp_path / "official.gz"
    official.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    recompressed = tmp_path / "x.gz"
    recompressed.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    entry = RemoteFile(
        "x.gz",
        hashlib.sha256(official.read_bytes()).hexdigest(),
        (),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )
    assert matches(official, entry)[0]
    assert matches(recompressed, entry)[0]
    recompressed.write_bytes(gzip.compress(raw + b"!", mtime=0))
    assert not matches(recompressed, entry)[0]


def test_verified_gzip_content_is_read_without_decompressing_again(tmp_path, monkeypatch):
    from mlplab.data import idx

    raw = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9])
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw, mtime=1))
    entry = RemoteFile(path.name, "0" * 64, (), raw_sha256=hashlib.sha256(raw).hexdigest())
    assert matches(path, entry)[0]
    opened = []
    real_gunzipped = idx.gunzipped
    monkeypatch.setattr(idx, "gunzipped", lambda p: opened.append(p) or real_gunzipped(p))
    assert idx.read_idx(path).tolist() == [7, 8, 9]
    assert opened == []  # the content verified by matches() was handed over
    assert idx.read_idx(path).tolist() == [7, 8, 9]
    assert len(opened) == 1  # handed over once only; a second read decompresses again


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    read_bytes=st.integers(1, 700),
    out_bytes=st.integers(1, 900),
    padding=st.integers(0, 3),
)
def test_gunzipped_gives_what_gzip_gives(members, read_bytes, out_bytes, padding):
    # Any member count, zero padding between members, and pieces smaller than a member on
    # both sides of zlib (so that each loop of gunzipped runs).
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.gz"
        path.write_bytes((b"\0" * padding).join(gzip.compress(m, mtime=0) for m in members))
        with mock.patch.multiple(fetch, GZIP_READ_BYTES=read_bytes, GZIP_OUT_BYTES=out_bytes):
            pieces = list(gunzipped(path))
    assert b"".join(pieces) == b"".join(members)
    assert all(len(piece) <= out_bytes for piece in pieces)


def test_gunzipped_refuses_a_cut_or_corrupt_file(tmp_path):
    raw = bytes(range(256)) * 400
    whole = gzip.compress(raw, mtime=0)
    path = tmp_path / "x.gz"
    path.write_bytes(whole[:-9])  # the end of the stream is missing
    with pytest.raises(EOFError, match="x.gz: compressed file ended"):
        b"".join(gunzipped(path))
    path.write_bytes(b"not gzip at all")
    with pytest.raises(zlib.error):
        b"".join(gunzipped(path))
    path.write_bytes(whole[:-8] + (1).to_bytes(4, "little") + whole[-4:])  # a wrong CRC
    with pytest.raises(zlib.error):
        b"".join(gunzipped(path))
    path.write_bytes(b"")
    assert list(gunzipped(path)) == []  # as gzip.open reads an empty file


def test_kept_content_of_a_file_changed_since_is_not_used(tmp_path):
    from mlplab.data import idx

    raw = bytes([0, 0, 8, 1]) + (1).to_bytes(4, "big") + bytes([5])
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(raw, mtime=1))
    entry = RemoteFile(path.name, "0" * 64, (), raw_sha256=hashlib.sha256(raw).hexdigest())
    assert matches(path, entry)[0]
    path.write_bytes(gzip.compress(raw[:-1] + bytes([6]), mtime=2))
    os.utime(path, ns=(1, 1))  # a new mtime even where the clock is coarse
    assert idx.read_idx(path).tolist() == [6]


def test_verify_cached_reports_ok_missing_and_corrupt(server):
    server.routes["/file.bin"] = (200, "application/octet-stream", DATA)
    item = remote(server, "/file.bin")
    assert verify_cached("demo", [item]) == [("file.bin", "missing")]
    path = ensure("demo", item, progress=False)
    assert verify_cached("demo", [item]) == [("file.bin", f"ok {path}")]
    path.write_bytes(b"changed")
    assert verify_cached("demo", [item]) == [("file.bin", f"corrupt {path}")]
