"""Which run directories a process is training right now.

While ``train`` or ``resume`` works on a run it keeps ``training.json`` in the directory:
the process id, the host and when it started. It is removed when the run is written or the
process fails; a marker left by a killed process is stale and ignored, because its process
is gone. ``mlplab resume`` refuses a run that is being trained (two processes writing one
directory would mix their files) and ``mlplab runs`` shows such a run as ``training``.

A marker from another host cannot be checked, so it counts as live: the error says to delete
it if that process is gone.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlplab.errors import RunError

MARKER_FILE = "training.json"


@dataclass(frozen=True)
class TrainingProcess:
    """The process a marker names."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on host {self.host}"
        return f"process {self.pid}{where} (since {self.since})"


def training_process(run_dir: Path) -> TrainingProcess | None:
    """The live process training ``run_dir``, or None: no marker, or its process has ended."""
    try:
        raw = json.loads((run_dir / MARKER_FILE).read_text(encoding="utf-8"))
        owner = TrainingProcess(int(raw["pid"]), str(raw["host"]), str(raw["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no marker, or a damaged one that names nobody
    return owner if process_alive(owner.pid, owner.host) else None


def process_alive(pid: int, host: str) -> bool:
    """Whether process ``pid`` on ``host`` is still running. One on another host cannot be
    checked, so it counts as alive."""
    return host != socket.gethostname() or _alive(pid)


def busy_error(run_dir: Path, owner: TrainingProcess | None) -> RunError:
    who = owner.describe() if owner else "another process"
    return RunError(
        f"{run_dir}: still being trained by {who}; wait for it or stop it (Ctrl-C there), "
        f"or delete {run_dir / MARKER_FILE} if that process is gone"
    )


@contextmanager
def marked_training(run_dir: Path) -> Iterator[None]:
    """Mark ``run_dir`` as trained by this process until the block ends; RunError if another
    live process holds it."""
    marker = run_dir / MARKER_FILE
    owner = training_process(run_dir)
    if owner is not None:
        raise busy_error(run_dir, owner)
    marker.unlink(missing_ok=True)  # stale: its process is gone
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        # O_EXCL: of two processes claiming the run at the same moment, one fails here.
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise busy_error(run_dir, training_process(run_dir)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and -1 would ask about process groups
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True
