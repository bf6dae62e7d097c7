"""What a run's learning curves say, in words: overfitting, still improving, not learning.

A learner looks at ``curves.png`` and has to know what a validation loss that turns upward
means. :func:`read_curves` reads the per-epoch history the way a teacher would and says
what it sees and what to try, for ``report.txt`` (printed at the end of ``mlplab train``)
and the report's "Learning curves" section. It says nothing when nothing stands out.

The thresholds were set on real runs (2026-11-30, ``benchmarks/curve_advice.py``,
``docs/results.md``): digits' validation split is 144 images, so its loss jumps by a third
between neighbouring epochs; a moving mean over up to SMOOTHING epochs takes most of that
out, and a rise must also be several times the loss's usual change from epoch to epoch.
The default ``digits-mlp`` (50 epochs) ends 12% (seed 0) and 31% (seed 1, a rise of 3
epoch-to-epoch changes) above its smoothed lowest validation loss and is not called
overfitting; 300 epochs without dropout end 46% above it (270 changes), and a 512-512
network on Fashion-MNIST without dropout 75% (15 changes) by epoch 30 (training accuracy
98.5%, validation 89.8%).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlplab.record import RunRecord
    from mlplab.runs import Run

# Epochs averaged before the validation loss is compared (at most; a quarter of the run).
SMOOTHING = 5
# Overfitting: the smoothed validation loss at the end this far above its lowest...
OVERFIT_RISE = 0.25
# ...by this many times its typical change from one epoch to the next (the median over
# the second half of the run): at a low loss, a quarter can be a few images' worth...
OVERFIT_NOISE = 5.0
# ...and lowest at least this many epochs before the end.
OVERFIT_AFTER = 3
# Still improving: the validation loss fell by at least this share over the last quarter...
STILL_FALLING = 0.05
# ...which is at least this share of all it fell since the first epoch (a memorised
# network's loss creeps down for hundreds of epochs by ever smaller amounts).
STILL_SHARE = 0.02
# Not learning: the last epoch's training accuracy at most this far above chance (1/k).
ABOVE_CHANCE = 0.05


@dataclass(frozen=True)
class Finding:
    """What the curves show (``kind``: overfitting, still improving, not learning), in one
    sentence (``seen``), and what to try (``advice``)."""

    kind: str
    seen: str
    advice: str

    def text(self) -> str:
        return f"{self.kind}: {self.seen} {self.advice}"


def read_curves(
    history: Sequence[Mapping[str, float]],
    classes: int,
    learning_rate: float | None = None,
    status: str = "complete",
    kept_epoch: int | None = None,
) -> list[Finding]:
    """What stands out in ``history`` (one mapping per epoch: epoch, loss, accuracy and,
    with a validation split, val_loss and val_accuracy), for a network with ``classes``
    outputs trained at ``learning_rate`` and ending with ``status``. Empty when nothing
    does, or when the history is too short or not finite (a diverged run says so itself).

    kept_epoch: the epoch whose weights the run ended with, where that is not its last (an
    early stop's or ``train.keep_best``'s best epoch): overfitting is judged on the curves
    up to it, since later epochs are not in the model. An early-stopped run without it is
    taken to have gone back before any overfitting.
    """
    if status == "diverged" or not history:
        return []
    losses = [row.get("loss", math.nan) for row in history]
    if not all(math.isfinite(value) for value in losses):
        return []
    found = []
    stuck = _not_learning(history, classes, learning_rate)
    if stuck is not None:
        return [stuck]  # nothing else in the curves means much then
    validation = [row.get("val_loss", math.nan) for row in history]
    if len(history) >= 3 and all(math.isfinite(value) for value in validation):
        overfit = None
        if kept_epoch is not None and 3 <= kept_epoch < len(history):
            overfit = _overfitting(history[:kept_epoch], validation[:kept_epoch], kept=True)
        elif kept_epoch is None and status != "early_stopped":
            overfit = _overfitting(history, validation)
        found += [overfit] if overfit else []
        falling = _still_improving(validation)
        found += [falling] if falling else []
    return found


def findings_of(run: Run | RunRecord) -> list[Finding]:
    """:func:`read_curves` for a run, loaded (:class:`~mlplab.runs.Run`) or as read from its
    folder (:class:`~mlplab.record.RunRecord`); none for an ensemble, which has no curves
    of its own (its members have)."""
    if run.ensemble or not run.class_names:
        return []
    rate = run.config.train.learning_rate if run.config else None
    # The epoch whose weights the run ended with, where that is not simply its last.
    best = (run.metrics or {}).get("best_epoch")
    went_back = (
        run.config.train.ends_at_best(run.status) if run.config else run.status == "early_stopped"
    )
    kept = best if went_back and isinstance(best, int) else None
    return read_curves(run.history, len(run.class_names), rate, run.status, kept)


def _not_learning(
    history: Sequence[Mapping[str, float]], classes: int, learning_rate: float | None
) -> Finding | None:
    """The last epoch's training accuracy at chance: why, from the loss."""
    last = history[-1]
    accuracy, loss = last.get("accuracy", math.nan), last["loss"]
    chance = 1.0 / max(classes, 1)
    if not math.isfinite(accuracy) or accuracy > chance + ABOVE_CHANCE:
        return None
    even = math.log(max(classes, 2))
    rate = f" ({learning_rate:g})" if learning_rate else ""
    seen = (
        f"after {len(history)} epochs the training accuracy is {100 * accuracy:.1f}%, what "
        f"guessing gives for {classes} classes ({100 * chance:.1f}%)."
    )
    if loss > 2 * even:
        return Finding(
            "not learning",
            seen + f" Its loss, {loss:.2f}, is far above the {even:.2f} of guessing evenly: "
            "its outputs are saturated, sure of one class and mostly wrong.",
            f"The learning rate{rate} is most likely too high: `mlplab lr-find` suggests one.",
        )
    return Finding(
        "not learning",
        seen + f" Its loss, {loss:.2f}, is near the {even:.2f} of guessing evenly.",
        f"The learning rate{rate} may be too low, or the gradients vanish before the first "
        "layers (a deep sigmoid network: see gradients.png): try `mlplab lr-find`, relu, or "
        "model.batch_norm = true.",
    )


def _smoothed(values: Sequence[float]) -> tuple[np.ndarray, int]:
    """The moving mean over ``window`` epochs (up to SMOOTHING, at most a quarter of the
    run) and that window; entry i covers epochs i+1 .. i+window."""
    window = max(1, min(SMOOTHING, len(values) // 4))
    return np.convolve(np.asarray(values, float), np.ones(window) / window, "valid"), window


def _overfitting(
    history: Sequence[Mapping[str, float]], validation: Sequence[float], kept: bool = False
) -> Finding | None:
    """The smoothed validation loss ends well above its lowest while the training loss
    kept falling. kept: ``history`` ends at the epoch a run went back to, not its last."""
    smooth, window = _smoothed(validation)
    lowest = int(smooth.argmin())
    epochs = len(validation)
    # The lowest epoch inside the lowest window (epochs lowest+1 .. lowest+window).
    best_epoch = lowest + int(np.argmin(validation[lowest : lowest + window])) + 1
    rise = smooth[-1] / smooth[lowest] - 1.0
    if rise < OVERFIT_RISE or epochs - best_epoch < OVERFIT_AFTER:
        return None
    noise = float(np.median(np.abs(np.diff(validation[epochs // 2 :]))))
    if smooth[-1] - smooth[lowest] < OVERFIT_NOISE * noise:
        return None  # as much as the loss moves from one epoch to the next
    if history[-1]["loss"] >= history[best_epoch - 1]["loss"]:
        return None  # both rose: that is not memorising
    last = history[-1]
    gap = ""
    if math.isfinite(last.get("val_accuracy", math.nan)):
        gap = (
            f" (training accuracy {100 * last['accuracy']:.1f}%, validation "
            f"{100 * last['val_accuracy']:.1f}%)"
        )
    if kept:  # the run went back to this epoch, past the lowest loss
        ends = f"is {100 * rise:.0f}% above that at epoch {epochs}, whose weights the run kept"
        instead = 'Keep the epoch with the lowest val_loss (train.monitor = "val_loss")'
    else:
        ends = f"ends {100 * rise:.0f}% above that"
        instead = (
            "Stop earlier (train.patience = 5 goes back to the best epoch; train.keep_best = "
            "true keeps it without stopping)"
        )
    return Finding(
        "overfitting",
        f"the validation loss was lowest around epoch {best_epoch} and {ends}, while the "
        f"training loss kept falling{gap}: the network learns its training images by heart "
        "and grows overconfident on images it has not seen.",
        f"{instead} or regularise: model.dropout, model.l2, [augment] translate = 1.",
    )


def _still_improving(validation: Sequence[float]) -> Finding | None:
    """The validation loss lowest at the end, and still falling clearly."""
    smooth, _ = _smoothed(validation)
    if int(smooth.argmin()) != len(smooth) - 1:
        return None
    quarter = max(2, len(validation) // 4)
    before = validation[-1 - quarter] if quarter < len(validation) else validation[0]
    fall = 1.0 - validation[-1] / before
    learnt = validation[0] - validation[-1]  # all it fell: the last epoch is the lowest
    if fall < STILL_FALLING or before - validation[-1] < STILL_SHARE * learnt:
        return None
    epochs = len(validation)
    return Finding(
        "still improving",
        f"the validation loss fell {100 * fall:.0f}% over the last {min(quarter, epochs - 1)} "
        "epochs and is lowest at the last one.",
        f"More epochs should help (--epochs {2 * epochs}, or {epochs} more on top of this "
        "run with --init-from RUN).",
    )
