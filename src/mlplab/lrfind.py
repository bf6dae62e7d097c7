"""The learning-rate finder: a short range test that suggests ``train.learning_rate``.

The config's network, data, batch size and optimizer are trained from their initial weights
for a few hundred batches at most while the learning rate grows exponentially, and the loss
curve says where learning is fastest (:mod:`mlplab.lr_range` reads it). The test runs as one
compiled call of the fused engine (a few for big networks), so it takes seconds. Its folder,
``runs/<UTC time>-<name>-lr-find/``, holds:

- ``lr_find.png``: the curve and the suggestions;
- ``lr_find.csv``: step, lr, loss, smoothed_loss;
- ``lr_find.json``: the settings, the suggestions, the time taken and the versions;
- ``base.toml``: the config tested (train it with the suggestion: ``--lr``).

It has no ``config.toml``, so ``mlplab runs`` does not take it for a run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from mlplab.api import ConfigLike, read_splits, resolve_config, taught, versions, warm_started
from mlplab.config import RunConfig
from mlplab.errors import ConfigError
from mlplab.lr_range import (
    DEFAULT_STEPS,
    MIN_STEPS,
    SUGGESTION_RULES,
    LRSweep,
    analyse,
    divergence,
    ramp,
    smoothing_factor,
)

PLOT_FILE = "lr_find.png"
CURVE_FILE = "lr_find.csv"
SUMMARY_FILE = "lr_find.json"
BASE_FILE = "base.toml"
FOLDER_SUFFIX = "-lr-find"


@dataclass
class LRFindResult:
    """A range test: ``sweep`` (the curve and suggestions), ``config`` (what was tested),
    ``path`` (its folder, or None when not written), ``batch_size`` (the batch size used:
    the config's, or the whole training split when that is smaller), ``seconds`` (the test,
    compilation included) and ``compile_seconds``."""

    sweep: LRSweep
    config: RunConfig
    path: Path | None
    batch_size: int
    seconds: float
    compile_seconds: float

    @property
    def suggestion(self) -> float | None:
        """The suggested learning rate, or None when the curve cannot be read
        (``sweep.problem`` says why)."""
        found = self.sweep.suggestion
        return None if found is None else found.lr

    def __repr__(self) -> str:
        sweep = self.sweep
        answer = (
            f"suggestion={self.suggestion:.3g}, rule={sweep.rule!r}"
            if self.suggestion is not None
            else f"suggestion=None, problem={sweep.problem!r}"
        )
        where = str(self.path) if self.path is not None else None
        return (
            f"LRFindResult({answer}, lowest_lr={sweep.lowest_lr!r}, "
            f"steps={len(sweep.lrs)}/{sweep.planned}, path={where!r})"
        )

    def _repr_html_(self) -> str:
        """A card in Jupyter: the suggestion and the loss curve."""
        from mlplab.report.notebook import lr_find_card

        return lr_find_card(self)


def lr_find(
    config: ConfigLike = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = DEFAULT_STEPS,
    stop_on_divergence: bool = True,
    out: str | Path | None = "runs",
    verbose: bool = True,
    stream: TextIO | None = None,
    command: str | None = None,
    offline: bool | None = None,
) -> LRFindResult:
    """Run the learning-rate range test for a config and write its folder under ``out``.

    config, overrides, offline: as in :func:`mlplab.train`. The learning rate grows from
    ``start`` to ``end`` over ``steps`` batches (each step multiplies it by the same factor);
    with ``stop_on_divergence`` the test ends once the smoothed loss passes 4 times its lowest.
    Everything else comes from the config: network, scaling, batch size, optimizer (momentum,
    weight decay, clipping), label smoothing, dropout, augmentation, a teacher
    (``train.teacher``: the curve is then of the distillation objective); its learning-rate
    schedule is replaced by the ramp. out: None to write nothing. verbose: a line before and after,
    on ``stream`` (stderr by default).
    """
    _check_range(start, end, steps)
    began = time.perf_counter()
    cfg = resolve_config(config, overrides)
    stream = stream or sys.stderr
    dataset, splits, scaling = read_splits(cfg, offline, verbose)
    import keras

    if keras.backend.backend() != "jax":
        raise ConfigError(
            f"the learning-rate finder runs on the fused JAX engine; KERAS_BACKEND is "
            f"{keras.backend.backend()}: unset it (or set it to jax)"
        )
    from mlplab.fused import FusedTrainer
    from mlplab.model import new_model

    loaded = None
    if cfg.train.teacher:
        # The curve is of the loss training will minimise: with a teacher, the distillation
        # objective. The teacher is checked as ``train`` checks it, before anything is said.
        cfg, loaded = taught(cfg, dataset, splits, None)
    starting = None
    if cfg.model.init_from:  # the sweep starts where training will start
        cfg, starting = warm_started(cfg, dataset)
        scaling = starting.scaling
    batch = min(cfg.train.batch_size, len(splits.y_train))
    if verbose:
        print(
            f"lr-find: {cfg.name} on {dataset.name} ({len(splits.y_train)} train images), "
            f"{cfg.train.optimizer}, batch {batch}: {steps} steps, learning rate "
            f"{start:g} to {end:g}",
            file=stream,
            flush=True,
        )
    if verbose and loaded is not None:
        print(loaded.describe(splits.x_train, splits.y_train, cfg.train, dataset.name), file=stream)
    teacher = None if loaded is None else loaded.network(splits.x_train)
    trainer = FusedTrainer(cfg.augment, teacher)
    # Step i trains at start * (end / start) ** (i / (steps - 1)): Keras' exponential decay
    # with a rate above 1 is that ramp, computed inside the compiled step from its count.
    ramp_schedule = keras.optimizers.schedules.ExponentialDecay(
        start, decay_steps=steps - 1, decay_rate=end / start
    )
    model = new_model(cfg, dataset.image_shape, dataset.num_classes, scaling, steps, ramp_schedule)
    if starting is not None:
        starting.apply(model)
    beta = smoothing_factor(steps)
    enough = (lambda losses: divergence(losses, beta) is not None) if stop_on_divergence else None
    losses = trainer.step_losses(
        model, splits.x_train, splits.y_train, cfg.train, steps, enough=enough
    )
    lrs = ramp(start, end, steps)[: len(losses)]
    sweep = analyse(lrs, losses, steps, stop_on_divergence, cfg.train.schedule)
    if sweep.problem and starting is not None:
        sweep.problem += (
            " (here the network starts trained, from model.init_from, with little loss left "
            "to lose at any rate: give a rate, such as a tenth of the one it was trained at)"
        )
    result = LRFindResult(
        sweep, cfg, None, batch, time.perf_counter() - began, trainer.compile_seconds
    )
    if out is not None:
        result.path = _write(result, out, dataset.name, start, end, command)
    if verbose:
        print(_outcome(result), file=stream)
    return result


def _check_range(start: float, end: float, steps: int) -> None:
    if not (math.isfinite(start) and start > 0):
        raise ConfigError(f"start learning rate {start:g}: must be a number above 0")
    if not (math.isfinite(end) and end > start):
        raise ConfigError(f"end learning rate {end:g}: must be above the start ({start:g})")
    if steps < MIN_STEPS:
        raise ConfigError(f"{steps} steps: the test needs at least {MIN_STEPS} to read a curve")


def _outcome(result: LRFindResult) -> str:
    sweep = result.sweep
    done = len(sweep.lrs)
    if sweep.diverged_at is not None:
        return f"the loss diverged at step {done} of {sweep.planned} (lr {sweep.end_lr:.2g})"
    return f"ran {done} steps up to lr {sweep.end_lr:.2g} without diverging"


def _write(
    result: LRFindResult,
    out: str | Path,
    dataset_name: str,
    start: float,
    end: float,
    command: str | None,
) -> Path:
    """The test's folder: curve, plot, summary and config, each written atomically."""
    from mlplab.report.lr_find import lr_find_png
    from mlplab.runs import RunWriter, to_json

    sweep, cfg = result.sweep, result.config
    writer = RunWriter.create(out, cfg.name + FOLDER_SUFFIX)
    summary = {
        "name": cfg.name,
        "dataset": dataset_name,
        "optimizer": cfg.train.optimizer,
        "batch_size": result.batch_size,
        "config_learning_rate": cfg.train.learning_rate,
        "schedule": cfg.train.schedule,
        # With a teacher the curve is of the distillation objective, not the labels' loss.
        "teacher": cfg.train.teacher,
        "start": start,
        "end": end,
        "planned_steps": sweep.planned,
        "steps": len(sweep.lrs),
        "diverged_at_step": sweep.diverged_at,
        "suggestion": result.suggestion,
        "rule": sweep.rule,
        "lowest_loss_lr": sweep.lowest_lr,
        "problem": sweep.problem,
        "suggestions": {
            rule: {"lr": found.lr, "step": found.step, "rule": SUGGESTION_RULES[rule]}
            for rule, found in sweep.suggestions.items()
        },
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or "mlplab.lr_find(...)",
        "versions": versions(),
    }
    subject = cfg.name if dataset_name in cfg.name else f"{cfg.name} on {dataset_name}"
    title = f"{subject}: {cfg.train.optimizer}, batch {result.batch_size}, {len(sweep.lrs)} steps"
    if cfg.train.teacher:
        teacher = Path(cfg.train.teacher).name
        title += f"\ntaught by {teacher}: the loss is the distillation objective"
    if cfg.model.init_from:
        title += f"\nstarting from the weights of {Path(cfg.model.init_from).name}"
    writer.text(BASE_FILE, cfg.to_toml())
    writer.text(CURVE_FILE, sweep.csv())
    writer.bytes(PLOT_FILE, lr_find_png(sweep, cfg.train.learning_rate, title))
    writer.text(SUMMARY_FILE, to_json(summary))
    return writer.path
