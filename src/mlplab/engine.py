"""Trainers: the narrow interface that fits a compiled model, and its implementations.

A :class:`Trainer` takes a compiled Keras model and the uint8 splits and returns the history
of complete epochs. What happens at the end of an epoch (early stopping with the best weights
restored, stopping on a non-finite loss, a clean stop on Ctrl-C) is decided by
:class:`EpochMonitor`, shared by every trainer, so all engines stop the same way.

:class:`FitTrainer` (Keras ``model.fit``, any backend) lives here; the fused-epoch JAX engine
(:mod:`mlplab.fused`) implements the same interface. Both can go on from a resumed run's
:class:`StartPoint`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import keras
import numpy as np

from mlplab.checkpoint import improves, watched, watched_name
from mlplab.config import AugmentConfig, TrainConfig
from mlplab.data.split import Splits
from mlplab.errors import ConfigError
from mlplab.plateau import PlateauCutter

PREDICT_BATCH = 1024


class EpochListener(Protocol):
    """Receives progress; the CLI's progress bar or plain lines implement it."""

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None: ...
    def on_batch_end(self, epoch: int, step: int) -> None: ...
    def on_epoch_end(self, stats: dict[str, float]) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_train_end(self) -> None: ...


class SilentListener:
    """An :class:`EpochListener` that shows nothing."""

    def on_train_begin(self, epochs: int, steps_per_epoch: int) -> None:
        pass

    def on_batch_end(self, epoch: int, step: int) -> None:
        pass

    def on_epoch_end(self, stats: dict[str, float]) -> None:
        pass

    def on_message(self, text: str) -> None:
        """A line about training that follows an epoch's (a learning-rate cut)."""

    def on_train_end(self) -> None:
        pass


@dataclass
class StopRequest:
    """Set from outside (a Ctrl-C handler) to stop training after the current step.

    prune: asked after every recorded epoch (that did not stop training otherwise) with its
    stats; a reason it returns stops training there, with status ``pruned`` (a tuner's
    pruner, which has seen enough of this trial).
    """

    requested: bool = False
    prune: Callable[[dict[str, float]], str | None] | None = None

    def set(self) -> None:
        self.requested = True


@dataclass(frozen=True)
class TeacherNetwork:
    """``train.teacher`` as a trainer takes it (:mod:`mlplab.teacher`): the teacher's Keras
    model; ``order``, int (classes,), the column of its output that holds each of the
    student's classes; ``train_proba``, float32 (n_train, classes), its probabilities for the
    training images in the student's order, worked out once by the caller (None: the
    trainer predicts them)."""

    model: keras.Model
    order: np.ndarray
    train_proba: np.ndarray | None = None


@dataclass
class FitResult:
    """history: one dict per complete epoch (epoch, loss, accuracy, [val_loss, val_accuracy],
    lr, seconds). status: complete, early_stopped, interrupted, diverged or pruned.
    compiler_options: the XLA options the training steps were compiled with (the fused
    engine on a CPU; empty otherwise)."""

    history: list[dict[str, float]] = field(default_factory=list)
    status: str = "complete"
    best_epoch: int | None = None
    message: str = ""
    train_seconds: float = 0.0
    compile_seconds: float = 0.0
    compiler_options: dict[str, str] = field(default_factory=dict)


@dataclass
class StartPoint:
    """Where a resumed run goes on from (the model and optimizer already hold its state).

    history: the rows of the epochs already trained (1..len). best_weights: with early
    stopping, ``model.get_weights()`` of the best of them.
    """

    history: list[dict[str, float]]
    best_weights: list[np.ndarray] | None = None

    @property
    def epochs_done(self) -> int:
        return len(self.history)


def epoch_count(count: int) -> str:
    """``1 epoch``, ``5 epochs``."""
    return f"{count} epoch" + ("" if count == 1 else "s")


def epochs_done(start: StartPoint | None) -> int:
    """Complete epochs before this fit: 0 for a new run."""
    return start.epochs_done if start else 0


class EpochMonitor:
    """End-of-epoch decisions shared by all trainers.

    Early stopping watches ``train.monitor`` (``val_loss`` or ``val_accuracy``; without a
    validation set the training images' ``loss`` or ``accuracy``) and restores the best
    epoch's weights; the plateau schedule cuts the optimizer's learning rate when the same
    number stops getting better (:mod:`mlplab.plateau`); a non-finite loss stops training and
    restores the last finite weights; a :class:`StopRequest` stops after the current step.
    start: a resumed run's epochs so far, judged again so that patience, the best epoch and
    the plateau count carry on (its rate is in the optimizer state it resumes from).
    """

    def __init__(
        self,
        model: keras.Model,
        config: TrainConfig,
        stop: StopRequest,
        start: StartPoint | None = None,
    ) -> None:
        self.model = model
        self.patience, self.watching = config.patience, config.monitor
        self.config = config
        self.epochs = config.epochs
        self.stop = stop
        self.result = FitResult()
        self._best: float = math.inf
        self._best_weights: list[np.ndarray] | None = None
        self._good_weights = model.get_weights()
        self._since_best = 0
        self.plateau = (
            PlateauCutter(
                config.plateau_patience,
                config.step_factor,
                config.min_learning_rate,
                config.min_delta,
            )
            if config.schedule == "plateau"
            else None
        )
        # The rate the last epoch's end set for the next one (None: unchanged), and the
        # line that says so, until a trainer passes it on with tell().
        self.rate_cut: float | None = None
        self._news: list[str] = []
        if start:
            for stats in start.history:
                self._judge(stats)
                if self.plateau:
                    self.plateau.after_epoch(watched(stats, self.watching), stats["lr"])
            self.result.history = list(start.history)
            self._best_weights = start.best_weights

    def end_epoch(self, stats: dict[str, float], cut_short: bool = False) -> bool:
        """Record a finished epoch; True when training must stop now.

        cut_short: a stop request ended the epoch early (Keras fit stops mid-epoch); such an
        epoch is not recorded. A trainer that only stops between epochs passes False, and the
        request then stops training after recording the epoch.
        """
        if cut_short:
            self.result.status = "interrupted"
            self.result.message = (
                f"interrupted during epoch {stats['epoch']}; kept the weights at that point"
            )
            return True
        self.rate_cut = None
        self.result.history.append(stats)
        # A distilled run's teacher term too (mlplab.teacher): with the labels' loss
        # finite, its weights may already not be.
        for key in ("loss", "teacher_loss"):
            if not math.isfinite(stats.get(key, 0.0)):
                self.model.set_weights(self._good_weights)
                self.result.status = "diverged"
                self.result.message = (
                    f"{key} became {stats[key]} in epoch {stats['epoch']}: stopped and kept "
                    "the last finite weights (try a lower learning rate)"
                )
                return True
        self._good_weights = self.model.get_weights()
        if self._judge(stats) and self.config.tracks_best:
            self._best_weights = self._good_weights
        if self.patience and self._since_best >= self.patience:
            self.result.status = "early_stopped"
            self.result.message = (
                f"early stopping after epoch {stats['epoch']}: no better "
                f"{watched_name(stats, self.watching)}{self._by_more()} for "
                f"{epoch_count(self.patience)}; restored epoch {self.result.best_epoch}"
            )
            return True
        if self.plateau and stats["epoch"] < self.epochs:
            # Before the stop checks: an interrupted run resumes with the rate cut here, as
            # a run that never stopped goes on with it.
            self._cut_on_plateau(self.plateau, stats)
        reason = self.stop.prune(stats) if self.stop.prune else None
        if reason and stats["epoch"] < self.epochs:
            self.result.status = "pruned"
            self.result.message = f"pruned after epoch {stats['epoch']}: {reason}"
            return True
        if self.stop.requested and stats["epoch"] < self.epochs:
            self.result.status = "interrupted"
            self.result.message = f"interrupted after epoch {stats['epoch']}"
            return True
        if self.stop.requested:
            # The stop came during the last epoch, which still finished: nothing is left
            # to resume, so the run is complete.
            self.result.message = (
                f"the stop came during the last epoch ({stats['epoch']}), which finished: "
                "the run is complete"
            )
        return False

    def _cut_on_plateau(self, plateau: PlateauCutter, stats: dict[str, float]) -> None:
        cut = plateau.after_epoch(watched(stats, self.watching), stats["lr"])
        if cut is None:
            return
        self.model.optimizer.learning_rate = cut
        self.rate_cut = cut
        name = watched_name(stats, self.watching)
        if name.endswith("accuracy"):
            best = f"not above {-plateau.best:.4g}"
        else:
            best = f"not below {plateau.best:.4g}"
        self._news.append(
            f"epoch {stats['epoch']:g}: {name} {best}{self._by_more()} for "
            f"{epoch_count(plateau.patience)}: learning rate {stats['lr']:.3g} -> {cut:.3g}"
        )

    def _by_more(self) -> str:
        """The words the stop and cut lines add for train.min_delta (none when it is 0)."""
        delta = self.config.min_delta
        return f" by more than {delta:g} (train.min_delta)" if delta else ""

    def tell(self, listener: EpochListener) -> None:
        """Pass on what the last epoch's end changed (a learning-rate cut), after the epoch's
        own line."""
        for text in self._news:
            listener.on_message(text)
        self._news.clear()

    def _judge(self, stats: dict[str, float]) -> bool:
        """Count the epoch towards patience; True when it is the best so far."""
        value = watched(stats, self.watching)
        if improves(value, self._best, self.config.min_delta):
            self._best, self._since_best = value, 0
            self.result.best_epoch = int(stats["epoch"])
            return True
        self._since_best += 1
        return False

    def finish(self) -> FitResult:
        """The result; the best epoch's weights put back where the run ends with them
        (:meth:`TrainConfig.ends_at_best`: an early stop, or ``keep_best``)."""
        status, best = self.result.status, self.result.best_epoch
        if self.config.ends_at_best(status) and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
            last = self.result.history[-1]["epoch"] if self.result.history else best
            if status == "complete" and best != last:
                name = watched_name(self.result.history[-1], self.watching)
                kept = f"kept the weights of epoch {best}, the best {name} (train.keep_best)"
                said = self.result.message
                self.result.message = f"{said}; {kept}" if said else kept
        return self.result


class Trainer(ABC):
    """Fits a compiled model on uint8 images and predicts with it."""

    name: str

    @abstractmethod
    def fit(
        self,
        model: keras.Model,
        splits: Splits,
        config: TrainConfig,
        listener: EpochListener,
        stop: StopRequest,
        start: StartPoint | None = None,
    ) -> FitResult:
        """Train ``model`` (already compiled) on ``splits.x_train`` / ``y_train``.

        start: go on from a resumed run's epochs (``model`` already holds their state);
        training runs epochs ``start.epochs_done + 1`` to ``config.epochs``.
        """

    def predict(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        """x: uint8 (n, h, w, c) -> float32 (n, classes) probabilities."""
        if len(x) == 0:
            return np.zeros((0, model.output_shape[-1]), np.float32)
        whole = len(x) - len(x) % PREDICT_BATCH
        parts = [x[:whole]] if whole else []
        if whole < len(x):  # the rest, padded with blank images to a length seen before
            tail = x[whole:]
            blank = np.zeros((padded_length(len(tail)) - len(tail), *x.shape[1:]), x.dtype)
            parts.append(np.concatenate([tail, blank]))
        proba = [model.predict(part, batch_size=PREDICT_BATCH, verbose=0) for part in parts]
        return np.asarray(np.concatenate(proba)[: len(x)], np.float32)


def padded_length(n: int) -> int:
    """How many images predict pads a last partial batch of ``n`` to: the next power of two.
    Prediction is compiled once per batch shape (~0.15 s on 2 cores), so a server sent 1, 3,
    3, 5 images compiles for 1, 4 and 8 once each, and a test split's last partial batch
    reuses a compiled shape too."""
    return 1 << max(0, n - 1).bit_length()


def class_weights(labels: np.ndarray, classes: int, mode: str) -> np.ndarray | None:
    """Each class's loss weight for ``train.class_weight``: None for "none"; for "balanced",
    float32 (classes,) = n / (classes x count), scikit-learn's "balanced" (with every class
    present the weights average 1 over the training images, so the loss keeps its scale; a
    class without training images gets 0). labels: int (n,) training labels."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch; the last, partial batch counts as a step (as in fit)."""
    return max(1, math.ceil(num_samples / batch_size))


class FitTrainer(Trainer):
    """Keras ``model.fit``: works on every backend."""

    name = "fit"

    def fit(
        self,
        model: keras.Model,
        splits: Splits,
        config: TrainConfig,
        listener: EpochListener,
        stop: StopRequest,
        start: StartPoint | None = None,
    ) -> FitResult:
        # Resumed runs go on from the saved state, but Keras shuffles with its own random
        # state, so the epochs after a resume see other batches than an unbroken run would.
        classes = model.output_shape[-1]
        validation = None
        if splits.x_val is not None:
            validation = (splits.x_val, keras.utils.to_categorical(splits.y_val, classes))
        monitor = EpochMonitor(model, config, stop, start)
        bridge = _KerasBridge(monitor, listener, stop)
        listener.on_train_begin(
            config.epochs, steps_per_epoch(len(splits.y_train), config.batch_size)
        )
        started = time.perf_counter()
        try:
            weights = class_weights(splits.y_train, classes, config.class_weight)
            per_image = splits.w_train
            if per_image is not None and weights is not None:  # fit takes one or the other
                per_image, weights = per_image * weights[splits.y_train], None
            model.fit(
                splits.x_train,
                keras.utils.to_categorical(splits.y_train, classes),
                class_weight=None if weights is None else dict(enumerate(weights.tolist())),
                sample_weight=per_image,
                batch_size=config.batch_size,
                epochs=config.epochs,
                initial_epoch=epochs_done(start),
                validation_data=validation,
                shuffle=True,
                verbose=0,
                callbacks=[bridge],
            )
        finally:
            listener.on_train_end()
        unshare_averaged_weights(model)  # fit has already moved the averages in
        result = monitor.finish()
        result.train_seconds = time.perf_counter() - started
        return result


def unshare_averaged_weights(model: keras.Model) -> None:
    """After ``optimizer.finalize_variable_values`` (weight averaging, ``train.ema``).

    Finalizing makes each weight share its buffer with its average in the optimizer; a later
    call that donates the weights (Keras' predict on JAX does) then deletes the average, and
    saving the model fails. Each weight gets its own copy.
    """
    if not getattr(model.optimizer, "use_ema", False):
        return
    for variable in model.trainable_variables:
        variable.assign(keras.ops.copy(variable.value))


def schedule_of(
    optimizer: keras.optimizers.Optimizer,
) -> keras.optimizers.schedules.LearningRateSchedule | None:
    """The optimizer's learning-rate schedule; None for a fixed rate (which it keeps in a
    variable)."""
    # Keras keeps the schedule object only in this private attribute.
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    return None


def last_step_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer's last step was taken at: what the history records
    for an epoch. (``optimizer.learning_rate`` is the next step's: a step schedule's cut
    would show one epoch early.)"""
    schedule = schedule_of(optimizer)
    if schedule is None:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    step = max(int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
    return float(keras.ops.convert_to_numpy(schedule(step)))


class _KerasBridge(keras.callbacks.Callback):
    """Feeds Keras' callback events to an EpochMonitor and an EpochListener."""

    def __init__(self, monitor: EpochMonitor, listener: EpochListener, stop: StopRequest):
        super().__init__()
        self.monitor, self.listener, self.stop = monitor, listener, stop
        self.epoch = 0
        self.steps_done = 0
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        self.steps_done = 0
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps_done = batch + 1
        self.listener.on_batch_end(self.epoch, batch + 1)
        if self.stop.requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        stats: dict[str, float] = {"epoch": self.epoch}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                stats[key] = float(logs[key])
        stats["lr"] = last_step_rate(self.model.optimizer)
        stats["seconds"] = time.perf_counter() - self.started
        # A stop during the epoch's last batch leaves it whole: it counts, as in the fused
        # engine (whose stop waits for the epoch's call to end).
        cut_short = self.stop.requested and self.steps_done < self.params.get("steps", 0)
        if self.monitor.end_epoch(stats, cut_short=cut_short):
            self.model.stop_training = True
        if not cut_short:
            self.listener.on_epoch_end(stats)
            self.monitor.tell(self.listener)


def get_predictor() -> Trainer:
    """The quickest ``predict`` on this backend: on JAX the fused engine's compiled
    prediction (``model.predict``'s probabilities, measured identical; one image several
    times faster, without ``model.predict``'s per-call bookkeeping: docs/performance.md),
    ``model.predict`` elsewhere. Keep the returned object: it holds the compiled function."""
    if keras.backend.backend() == "jax":
        from mlplab.fused import FusedTrainer

        return FusedTrainer()
    return FitTrainer()


def get_trainer(
    config: TrainConfig,
    augment: AugmentConfig | None = None,
    teacher: TeacherNetwork | None = None,
) -> Trainer:
    """The trainer ``train.engine`` asks for: ``auto`` is the fused engine on JAX.

    Augmentation and distillation (``train.teacher``; ``teacher``: its
    :class:`TeacherNetwork`) run inside the fused engine's compiled epoch; ``model.fit``
    cannot do them.
    """
    augment = augment or AugmentConfig()
    if config.engine == "fit" or keras.backend.backend() != "jax":
        why = (
            "train.engine = 'fit'"
            if config.engine == "fit"
            else f"the {keras.backend.backend()} backend"
        )
        if augment.active:
            raise ConfigError(
                f"[augment] runs inside the fused JAX engine and cannot be used with {why}; "
                "set augment.translate = 0, augment.flip = false and augment.rotate = 0, or "
                "train on JAX"
            )
        if config.teacher:
            raise ConfigError(
                f"train.teacher: distillation runs inside the fused JAX engine and cannot be "
                f"used with {why}; train on JAX, or without a teacher"
            )
        return FitTrainer()
    from mlplab.fused import FusedTrainer

    return FusedTrainer(augment, teacher)
