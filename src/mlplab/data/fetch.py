"""Find, download and verify dataset files; never hand out a file that was not verified.

Where a file is looked for, in order:
1. mlplab's cache: ``$MLPLAB_DATA``, else the platform's user cache dir (``~/.cache/mlplab``);
2. copies already on the machine (Keras' ``~/.keras/datasets``, Debian's
   ``/usr/share/datasets/...``) — used in place, never copied;
3. the official source, then its mirrors (not with ``offline``), to a temporary file that is
   verified and only then renamed into the cache.

A file is verified by the SHA-256 of its bytes, or — for a ``.gz`` that someone re-compressed,
as Debian does — by the SHA-256 of its decompressed content.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlplab.errors import DataError

CHUNK = 1 << 20
# Compressed bytes read, and decompressed bytes made, per call into zlib when gunzipping
# (see `gunzipped`).
GZIP_READ_BYTES = 16 << 20
GZIP_OUT_BYTES = 64 << 20
TIMEOUT_SECONDS = 30
# Verified decompressed content kept for the reader (see `take_verified_content`): at most
# this many bytes, so a dataset's four IDX files fit and a huge one is simply read again.
KEEP_CONTENT_BYTES = 256 << 20
_verified_content: dict[tuple[str, int, int], bytes] = {}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a named dataset.

    sha256: of the file as published; raw_sha256: of its decompressed content (for .gz files;
    empty if unknown). urls: the official source first, then mirrors. elsewhere: copies that
    may already be on the machine, tried before downloading.
    """

    name: str
    sha256: str
    urls: tuple[str, ...]
    raw_sha256: str = ""
    elsewhere: tuple[Callable[[], Path], ...] = field(default=(), compare=False)


def cache_dir() -> Path:
    """Where downloaded datasets live: ``$MLPLAB_DATA`` or the user cache dir."""
    override = os.environ.get("MLPLAB_DATA")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mlplab")) / "datasets"


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else ``MLPLAB_OFFLINE=1``."""
    if offline is not None:
        return offline
    return os.environ.get("MLPLAB_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gunzipped(path: Path) -> Iterator[bytes]:
    """The decompressed content of the gzip file ``path``, in pieces of up to GZIP_OUT_BYTES.

    Why not ``gzip.open``: its reader inflates ~8 KB per call, and each call lets go of the
    GIL and waits to get it back. While another thread imports keras (as a run reads its
    dataset), those waits made reading Fashion-MNIST take 1.35 s instead of 0.36 s. Here
    each call inflates megabytes. Several members one after another (what appending to a
    .gz makes) are read in turn; zlib checks each member's CRC and length.

    Raises EOFError for a file cut short, zlib.error for one that is not gzip or corrupt,
    OSError if it cannot be read.
    """
    with path.open("rb") as handle:
        inflater, started = zlib.decompressobj(wbits=31), False
        pending = b""
        while True:
            if not pending:
                pending = handle.read(GZIP_READ_BYTES)
                if not pending:
                    break
            if not started:
                pending = pending.lstrip(b"\0")  # gzip may pad between members with zeros
                if not pending:
                    continue
            started = True
            piece = inflater.decompress(pending, GZIP_OUT_BYTES)
            pending = inflater.unconsumed_tail
            if piece:
                yield piece
            if inflater.eof:  # the next member, if any, starts in what is left
                pending = inflater.unused_data
                inflater, started = zlib.decompressobj(wbits=31), False
        while started and not inflater.eof:  # what zlib still holds back
            piece = inflater.decompress(b"", GZIP_OUT_BYTES)
            if not piece:
                raise EOFError(f"{path}: compressed file ended before its end-of-stream marker")
            yield piece


def matches(path: Path, remote: RemoteFile) -> tuple[bool, str]:
    """Whether ``path`` holds ``remote``'s content, and the SHA-256 that was compared.

    A re-compressed ``.gz`` is verified by decompressing it; the verified content is then
    kept for `take_verified_content`, so loading it does not decompress it a second time.
    """
    actual = sha256_file(path)
    if actual == remote.sha256:
        return True, actual
    if remote.raw_sha256 and path.name.endswith(".gz"):
        digest = hashlib.sha256()
        chunks: list[bytes] | None = []  # None once the content is too big to keep
        kept = 0
        try:
            for chunk in gunzipped(path):
                digest.update(chunk)
                if chunks is not None:
                    chunks.append(chunk)
                    kept += len(chunk)
                    if kept > KEEP_CONTENT_BYTES:
                        chunks = None
        except (OSError, EOFError, zlib.error):
            return False, actual
        ok = digest.hexdigest() == remote.raw_sha256
        if ok and chunks is not None:
            _keep_content(path, b"".join(chunks))
        return ok, actual
    return False, actual


def _content_key(path: Path) -> tuple[str, int, int]:
    # Size and mtime as well as the path: content kept for a file that has changed since
    # is never handed out.
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _keep_content(path: Path, content: bytes) -> None:
    key = _content_key(path)
    _verified_content.pop(key, None)
    _verified_content[key] = content
    while sum(map(len, _verified_content.values())) > KEEP_CONTENT_BYTES:
        del _verified_content[next(iter(_verified_content))]  # the oldest first


def take_verified_content(path: Path) -> bytes | None:
    """The decompressed content `matches` verified for ``path``, once; None if not kept.

    Verifying a re-compressed ``.gz`` (Debian's Fashion-MNIST) means decompressing it;
    handing that content to the reader saves a second decompression (≈0.4 s a load).
    """
    try:
        key = _content_key(path)
    except OSError:
        return None
    return _verified_content.pop(key, None)


def _existing_copies(remote: RemoteFile) -> list[Path]:
    found = []
    for locate in remote.elsewhere:
        try:
            path = locate()
        except (OSError, KeyError):
            continue
        if path.is_file():
            found.append(path)
    return found


def locate(dataset: str, remote: RemoteFile) -> Path | None:
    """A verified local copy of ``remote`` (cache or elsewhere on the machine), or None."""
    cached = cache_dir() / dataset / remote.name
    for path in [cached, *_existing_copies(remote)]:
        if path.is_file() and matches(path, remote)[0]:
            return path
    return None


def ensure(
    dataset: str,
    remote: RemoteFile,
    offline: bool | None = None,
    progress: bool = True,
) -> Path:
    """A verified local path for ``remote``, downloading it if needed.

    A cached copy that fails verification is fetched again once; if that also fails, the
    error names the file and both hashes. Offline, only local copies are used, and the
    error says where it looked.
    """
    found = locate(dataset, remote)
    if found is not None:
        return found
    cached = cache_dir() / dataset / remote.name
    looked = [cached, *_existing_copies(remote)]
    if is_offline(offline):
        where = ", ".join(str(p) for p in looked)
        raise DataError(
            f"{dataset}: {remote.name} is not available offline (looked in {where}); "
            f"run `mlplab datasets fetch {dataset}` with network access"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        try:
            download(url, cached, remote, progress=progress)
            return cached
        except DataError as exc:
            errors.append(str(exc))
    raise DataError(f"{dataset}: could not fetch {remote.name}: {'; '.join(errors)}")


def download(url: str, dest: Path, remote: RemoteFile, progress: bool = True) -> None:
    """Fetch ``url`` to a temporary file beside ``dest``, verify it, rename it into place.

    Proxies come from the environment (``HTTP(S)_PROXY``, ``NO_PROXY``), as urllib reads
    them. A response that is HTML, cut short, or has the wrong hash is refused; nothing is
    left at ``dest`` then.
    """
    handle, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _stream(url, out, remote.name, progress)
        ok, actual = matches(tmp, remote)
        if not ok:
            raise DataError(
                f"{url}: checksum mismatch for {remote.name}: expected sha256 "
                f"{remote.sha256}, got {actual}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out, name: str, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mlplab"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{url}: cannot connect: {reason}") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("text/html"):
            raise DataError(f"{url}: the server sent an HTML page, not the data file")
        expected = int(response.headers.get("Content-Length") or 0)
        bar = _Bar(name, expected) if progress and sys.stderr.isatty() else None
        received = 0
        try:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                if bar:
                    bar.update(received)
        except (OSError, ValueError) as exc:
            raise DataError(f"{url}: download cut short after {received} bytes: {exc}") from None
        finally:
            if bar:
                bar.close()
    if expected and received != expected:
        raise DataError(f"{url}: download cut short: {received} of {expected} bytes")


class _Bar:
    """A download progress bar on stderr (only on a terminal)."""

    def __init__(self, name: str, total: int) -> None:
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        self._progress = Progress(
            *Progress.get_default_columns(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=True,
        )
        self._task = self._progress.add_task(name, total=total or None)
        self._progress.start()

    def update(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)

    def close(self) -> None:
        self._progress.stop()


def verify_cached(dataset: str, remotes: Sequence[RemoteFile]) -> list[tuple[str, str]]:
    """(file name, status) for each file: "ok <path>", "missing" or "corrupt <path>"."""
    rows = []
    for remote in remotes:
        cached = cache_dir() / dataset / remote.name
        candidates = [p for p in [cached, *_existing_copies(remote)] if p.is_file()]
        if not candidates:
            rows.append((remote.name, "missing"))
            continue
        good = [p for p in candidates if matches(p, remote)[0]]
        rows.append((remote.name, f"ok {good[0]}" if good else f"corrupt {candidates[0]}"))
    return rows
