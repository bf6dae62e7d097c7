"""The marker a training process keeps in its run directory (mlplab.running)."""

import json
import os
import re
import subprocess
import sys

import pytest

import mlplab
from mlplab import RunError
from mlplab.cli import main
from mlplab.running import MARKER_FILE, marked_training, training_process

from .test_resume import _stop_after, ctrl_c


def _mark(run_dir, pid, host=None):
    import socket

    record = {"pid": pid, "host": host or socket.gethostname(), "since": "2026-11-24T10:00:00"}
    (run_dir / MARKER_FILE).write_text(json.dumps(record))


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_the_marker_names_this_process_while_the_block_runs(tmp_path):
    with marked_training(tmp_path):
        owner = training_process(tmp_path)
        assert owner is not None and owner.pid == os.getpid()
        busy = pytest.raises(RunError, match=f"still being trained by process {os.getpid()}")
        with busy, marked_training(tmp_path):
            pass
    assert not (tmp_path / MARKER_FILE).exists()
    with pytest.raises(ValueError), marked_training(tmp_path):
        raise ValueError("a failed run")
    assert not (tmp_path / MARKER_FILE).exists()


def test_a_marker_whose_process_is_gone_is_stale(tmp_path):
    _mark(tmp_path, _dead_pid())
    assert training_process(tmp_path) is None
    with marked_training(tmp_path):
        assert training_process(tmp_path).pid == os.getpid()


def test_damaged_markers_name_nobody(tmp_path):
    import socket

    own_host_pid_0 = json.dumps({"pid": 0, "host": socket.gethostname(), "since": "s"})
    for text in ("", "{not json", '{"pid": "x"}', "[]", own_host_pid_0):
        (tmp_path / MARKER_FILE).write_text(text)
        assert training_process(tmp_path) is None, text


def test_a_marker_from_another_host_counts_as_live(tmp_path):
    _mark(tmp_path, 12345, host="elsewhere.example")
    owner = training_process(tmp_path)
    assert owner is not None and "on host elsewhere.example" in owner.describe()
    gone = re.escape(f"delete {tmp_path / MARKER_FILE} if that process is gone")
    with pytest.raises(RunError, match=gone), marked_training(tmp_path):
        pass


def test_train_marks_its_run_until_it_is_written(tmp_path, monkeypatch):
    seen = []
    _stop_after(monkeypatch, 1, lambda: seen.extend(tmp_path.glob(f"*/{MARKER_FILE}")))
    run = mlplab.train(overrides={"train.epochs": 2}, out=tmp_path, verbose=False, report=False)
    assert len(seen) == 1 and seen[0].parent == run.path
    assert not (run.path / MARKER_FILE).exists()


def test_a_run_being_trained_is_not_resumed_nor_taken_as_last(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _stop_after(monkeypatch, 1, ctrl_c)
    stopped = mlplab.train(overrides={"train.epochs": 3}, verbose=False, report=False)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert stopped.status == "interrupted"
    _mark(stopped.path, os.getpid())  # as if a live process had taken it up again

    with pytest.raises(RunError, match=f"still being trained by process {os.getpid()}"):
        mlplab.resume(stopped.path, verbose=False)
    capsys.readouterr()
    assert main(["resume", "last", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no interrupted or aborted runs" in err
    assert "(1 still training)" in err
    (stopped.path / "metrics.json").unlink()  # as a resume in progress leaves it
    with pytest.raises(RunError, match="still being trained by process"):
        mlplab.load_run(stopped.path)
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "training" in listing and "can go on with" not in listing

    _mark(stopped.path, _dead_pid())  # that process was killed: the run can go on again
    resumed = mlplab.resume("last", verbose=False, report=False)
    assert resumed.path.resolve() == stopped.path.resolve() and resumed.status == "complete"
    assert not (stopped.path / MARKER_FILE).exists()
