"""What a run saves while it trains, and how a stopped run goes on from it.

Two files sit in the run directory while it trains:

    checkpoint.keras  the model after the last checkpointed epoch (loads in plain Keras);
                      removed when the run is written, since model.keras supersedes it.
    resume.npz        everything training needs to go on from that epoch as if it had never
                      stopped: every model variable (dropout's random state included, which
                      .keras files leave out), every optimizer variable (moments, iteration
                      count, weight averages) and, with early stopping, the best epoch's
                      weights. Plain arrays, read back with ``allow_pickle=False``. Kept when a
                      run ends interrupted (Ctrl-C) or is killed; removed when it ends otherwise.

``mlplab resume RUN`` (``api.resume``) reads both back: the run's own config.toml, the epochs
in history.csv, and the state in resume.npz.
"""

from __future__ import annotations

import io
import json
import math
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.config import RunConfig
from mlplab.errors import ConfigError, RunError
from mlplab.running import busy_error, training_process
from mlplab.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LAST,
    METRICS_FILE,
    RESUME_FILE,
    RunWriter,
    history_csv,
    read_history,
    run_directory,
)

# Bumped when the arrays resume.npz holds change meaning; older files are then refused.
RESUME_FORMAT = 1


def watched_name(stats: dict[str, float], monitor: str = "val_loss") -> str:
    """The history column ``train.monitor`` reads in an epoch's stats: the monitor, or its
    training-image twin (loss, accuracy) without a validation split."""
    return monitor if monitor in stats else monitor.removeprefix("val_")


def watched(stats: dict[str, float], monitor: str = "val_loss") -> float:
    """What early stopping, the best epoch and the plateau schedule judge an epoch by
    (``train.monitor``), as a number that is lower for a better epoch: a loss, or an
    accuracy negated."""
    value = stats[watched_name(stats, monitor)]
    return -value if monitor.endswith("accuracy") else value


def improves(value: float, best: float, min_delta: float = 0.0) -> bool:
    """Whether an epoch judged ``value`` (:func:`watched`: lower is better) is a new best
    against ``best``: lower by more than ``min_delta`` (``train.min_delta``), Keras' rule."""
    return value < best - min_delta


def best_so_far(
    history: Sequence[dict[str, float]], monitor: str = "val_loss", min_delta: float = 0.0
) -> tuple[float, dict[str, float] | None]:
    """The best value :func:`watched` gave ``history``'s epochs, taken in order as training
    takes them (:func:`improves`), and that epoch's row (None for no epoch)."""
    best, row = math.inf, None
    for stats in history:
        value = watched(stats, monitor)
        if improves(value, best, min_delta):
            best, row = value, stats
    return best, row


@dataclass
class TrainingState:
    """Training as it stood after ``epoch`` complete epochs.

    variables: the model's trainable then non-trainable variables (float32 weights, uint32
    random-seed states), in ``model.trainable_variables + model.non_trainable_variables``
    order. optimizer: ``model.optimizer.variables`` in order (the iteration count first).
    best_weights: ``model.get_weights()`` of the best epoch so far, kept for early stopping
    and ``train.keep_best`` (None without either).
    """

    epoch: int
    variables: list[np.ndarray]
    optimizer: list[np.ndarray]
    best_weights: list[np.ndarray] | None = None

    @classmethod
    def capture(
        cls, model: Any, epoch: int, best_weights: list[np.ndarray] | None
    ) -> TrainingState:
        """Copies of ``model``'s variables now (the trainers' buffers may be reused later)."""
        model_vars = [*model.trainable_variables, *model.non_trainable_variables]
        return cls(
            epoch,
            [np.array(v.numpy(), copy=True) for v in model_vars],
            [np.array(v.numpy(), copy=True) for v in model.optimizer.variables],
            best_weights,
        )

    def apply(self, model: Any, source: Path) -> None:
        """Put the state into a freshly built and compiled ``model``; RunError (naming
        ``source``) when it was saved for a different network."""
        model.optimizer.build(model.trainable_variables)
        model_vars = [*model.trainable_variables, *model.non_trainable_variables]
        _check_shapes(source, "model", model_vars, self.variables)
        _check_shapes(source, "optimizer", model.optimizer.variables, self.optimizer)
        for variable, value in zip(model_vars, self.variables, strict=True):
            variable.assign(value)
        for variable, value in zip(model.optimizer.variables, self.optimizer, strict=True):
            variable.assign(value)

    def to_npz(self) -> bytes:
        arrays: dict[str, np.ndarray] = {
            "format": np.int64(RESUME_FORMAT),
            "epoch": np.int64(self.epoch),
        }
        for group, values in (
            ("model", self.variables),
            ("optimizer", self.optimizer),
            ("best", self.best_weights or []),
        ):
            arrays.update({f"{group}_{i:04d}": value for i, value in enumerate(values)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def read(cls, path: Path) -> TrainingState:
        """RunError naming ``path`` when it is not a resume file this version wrote."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RunError(f"{path}: unreadable resume state: {exc}") from None
        if "format" not in arrays or "epoch" not in arrays:
            raise RunError(f"{path}: not an mlplab resume state")
        if int(arrays["format"]) != RESUME_FORMAT:
            raise RunError(
                f"{path}: resume state format {int(arrays['format'])}; this mlplab reads "
                f"format {RESUME_FORMAT}"
            )

        def group(prefix: str) -> list[np.ndarray]:
            return [arrays[name] for name in sorted(arrays) if name.startswith(prefix + "_")]

        return cls(int(arrays["epoch"]), group("model"), group("optimizer"), group("best") or None)


def _check_shapes(source: Path, what: str, variables: list[Any], values: list[np.ndarray]) -> None:
    expected = [tuple(v.shape) for v in variables]
    found = [tuple(v.shape) for v in values]
    if expected != found:
        raise RunError(
            f"{source}: the saved {what} state does not fit the network that the run's "
            f"{CONFIG_FILE} builds ({len(found)} arrays saved, {len(expected)} expected, or "
            "different shapes); was config.toml edited?"
        )


class Checkpointer:
    """An EpochListener wrapper that keeps what a stopped run needs to go on.

    After every complete epoch it takes a :class:`TrainingState` (a copy of the weights and
    optimizer state: cheap next to an epoch); at most every ``every_seconds`` it writes it,
    with history.csv and checkpoint.keras, so that a crash or a kill loses little.
    ``finish(status)`` then keeps resume.npz only for an interrupted run.

    track_best: keep the best epoch's weights too (``train.patience`` or
    ``train.keep_best``). start: the state a resumed run begins from, with the history of
    its epochs. monitor and min_delta: ``train.monitor`` and ``train.min_delta``, which
    pick the best epoch.
    """

    def __init__(
        self,
        inner: Any,
        writer: RunWriter,
        model: Any,
        every_seconds: float,
        track_best: bool = False,
        start: tuple[TrainingState, list[dict[str, float]]] | None = None,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
    ) -> None:
        self.inner, self.writer, self.model = inner, writer, model
        self.every_seconds = every_seconds
        self.track_best, self.monitor, self.min_delta = track_best, monitor, min_delta
        self.state: TrainingState | None = start[0] if start else None
        self.history: list[dict[str, float]] = list(start[1]) if start else []
        self._best = best_so_far(self.history, monitor, min_delta)[0]
        self._last = time.monotonic()

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None:
        self._last = time.monotonic()
        self.inner.on_train_begin(epochs, steps_per_epoch)

    def on_batch_end(self, epoch: int, step: int) -> None:
        self.inner.on_batch_end(epoch, step)

    def on_epoch_end(self, stats: dict[str, float]) -> None:
        self.inner.on_epoch_end(stats)
        self.history.append(stats)
        if not math.isfinite(stats["loss"]):
            return  # the run stops as diverged: there is nothing worth going on from
        best_weights = self.state.best_weights if self.state else None
        if improves(watched(stats, self.monitor), self._best, self.min_delta):
            self._best = watched(stats, self.monitor)
            best_weights = self.model.get_weights() if self.track_best else None
        self.state = TrainingState.capture(self.model, int(stats["epoch"]), best_weights)
        if time.monotonic() - self._last >= self.every_seconds:
            self.writer.text(HISTORY_FILE, history_csv(self.history))
            self.writer.bytes(RESUME_FILE, self.state.to_npz())
            self.writer.model(self.model, CHECKPOINT_FILE)
            self._last = time.monotonic()

    def on_message(self, text: str) -> None:
        self.inner.on_message(text)

    def on_train_end(self) -> None:
        self.inner.on_train_end()

    def finish(self, status: str) -> None:
        """The run is written: model.keras supersedes the checkpoint; an interrupted run
        keeps the state of its last complete epoch in resume.npz for ``mlplab resume``."""
        (self.writer.path / CHECKPOINT_FILE).unlink(missing_ok=True)
        if status == "interrupted" and self.state is not None:
            self.writer.bytes(RESUME_FILE, self.state.to_npz())
        else:
            (self.writer.path / RESUME_FILE).unlink(missing_ok=True)


@dataclass
class ResumePoint:
    """A stopped run, read back: its directory, config, [meta], state and epochs so far."""

    path: Path
    config: RunConfig
    meta: dict[str, Any]
    state: TrainingState
    history: list[dict[str, float]]


def can_resume(path: Path) -> bool:
    """Whether the run at ``path`` has stopped with a resume state to go on from (a run that
    is training right now keeps one there too, but has not stopped)."""
    return (path / RESUME_FILE).is_file() and training_process(path) is None


def latest_resumable(runs_dir: str | Path = "runs") -> Path:
    """The newest run directory in ``runs_dir`` that can go on (see ``can_resume``)."""
    runs_dir = Path(runs_dir)
    found = sorted((p for p in runs_dir.glob("*/") if (p / RESUME_FILE).is_file()), key=str)
    stopped = [p for p in found if can_resume(p)]
    if not stopped:
        busy = f" ({len(found)} still training)" if found else ""
        raise RunError(f"{runs_dir}: no interrupted or aborted runs here to take as '{LAST}'{busy}")
    return stopped[-1]


def open_resumable(path: str | Path) -> ResumePoint:
    """Read a stopped run back; RunError saying why when it cannot go on.

    path: a run directory, or "last" for the newest run under ./runs with a resume state.
    """
    path = latest_resumable() if str(path) == LAST and not Path(LAST).exists() else path
    path = run_directory(path)
    owner = training_process(path)
    if owner is not None:
        raise busy_error(path, owner)
    resume_path = path / RESUME_FILE
    if not resume_path.is_file():
        raise RunError(f"{path}: nothing to resume from: {_why_no_state(path)}")
    config_path = path / CONFIG_FILE
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        config = RunConfig.from_dict({k: v for k, v in raw.items() if k != "meta"})
    except (tomllib.TOMLDecodeError, ConfigError, UnicodeDecodeError) as exc:
        raise RunError(f"{config_path}: unreadable: {exc}") from None
    state = TrainingState.read(resume_path)
    history_path = path / HISTORY_FILE
    try:
        history = read_history(history_path) if history_path.is_file() else []
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{history_path}: unreadable: {exc}") from None
    # history.csv is written before resume.npz, so it may hold one epoch more after a kill.
    if [int(row.get("epoch", 0)) for row in history[: state.epoch]] != list(
        range(1, state.epoch + 1)
    ):
        raise RunError(
            f"{history_path}: does not hold the {state.epoch} epochs that {RESUME_FILE} was "
            "saved after"
        )
    if state.epoch >= config.train.epochs:
        raise RunError(
            f"{path}: already trained all {config.train.epochs} epochs; nothing to resume"
        )
    return ResumePoint(path, config, raw.get("meta", {}), state, history[: state.epoch])


def _why_no_state(path: Path) -> str:
    metrics_path = path / METRICS_FILE
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            status = metrics.get("status", "?")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            metrics, status = {}, "?"
        if metrics.get("ensemble"):
            return "it is an ensemble of trained runs; it was never trained itself"
        return (
            f"it ended with status {status!r} ({RESUME_FILE} is kept only when a run is "
            "interrupted; train it again with more epochs instead)"
        )
    return (
        f"no {RESUME_FILE}: it stopped before its first checkpoint (saved after an epoch, at "
        "most once a minute), or was made by an mlplab without resume"
    )
