"""Training progress: a live bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from mlplab.engine import EpochListener, SilentListener


def epoch_line(stats: dict[str, float], epochs: int) -> str:
    """``epoch 3/20  loss 0.281  acc 0.920  val_loss 0.286  val_acc 0.915  0.6s``"""
    parts = [f"epoch {int(stats['epoch'])}/{epochs}"]
    for key, label in (
        ("loss", "loss"),
        ("accuracy", "acc"),
        ("val_loss", "val_loss"),
        ("val_accuracy", "val_acc"),
        ("teacher_loss", "teacher_loss"),
    ):
        if key in stats:
            parts.append(f"{label} {stats[key]:.3f}")
    seconds = stats["seconds"]
    parts.append(f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s")
    return "  ".join(parts)


class PlainProgress(SilentListener):
    """One line per epoch: right for logs and CI, where redrawing a bar makes junk."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.epochs = 0

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, stats: dict[str, float]) -> None:
        print(epoch_line(stats, self.epochs), file=self.stream, flush=True)

    def on_message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class BarProgress(PlainProgress):
    """The epoch lines, plus a live bar over all steps of the run (rich)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._progress = None
        self._task = None
        self._steps = 1

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.epochs, self._steps = epochs, steps_per_epoch
        self._progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self._task = self._progress.add_task(
            "train", total=epochs * steps_per_epoch, epoch=1, epochs=epochs
        )
        self._progress.start()

    def on_batch_end(self, epoch: int, step: int) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=(epoch - 1) * self._steps + step, epoch=epoch
            )

    def on_epoch_end(self, stats: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.console.print(epoch_line(stats, self.epochs), highlight=False)
            next_epoch = min(int(stats["epoch"]) + 1, self.epochs)
            self._progress.update(self._task, epoch=next_epoch)

    def on_message(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)

    def on_train_end(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def make_listener(verbose: bool = True, stream: TextIO | None = None) -> EpochListener:
    """A bar on a terminal, plain lines when ``stream`` is not one, nothing if not verbose."""
    if not verbose:
        return SilentListener()
    stream = stream or sys.stderr
    return BarProgress(stream) if stream.isatty() else PlainProgress(stream)
