"""Learning curves: how the accuracy grows with the number of training images.

The question behind "more data or a better model?": the config is trained on growing
shares of its training images (``data.train_fraction``: seeded, stratified subsets; the
validation and test splits stay the same), once per seed, and each run's model is scored on
the test split and on the very images it trained on (scikit-learn's ``learning_curve``
does the same with cross-validation). A test accuracy still rising at the full set says
more images would help; a large gap above it to the training accuracy says the network
fits its own images far better than new ones. Every share keeps the config's epochs, so a
smaller set also gets fewer steps, as in scikit-learn.

The folder ``runs/<UTC time>-<name>-learning-curve/`` holds the runs (one per share and
seed, without their pictures), ``learning_curve.png``, ``learning_curve.csv`` (one row per
run), ``learning_curve.json`` (the settings, the points, the summary and the reading) and
``base.toml``. It has no ``config.toml``, so ``mlplab runs`` does not take it for a run.
"""

from __future__ import annotations

import csv
import io
import shlex
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mlplab.api import ConfigLike, read_datasets, resolve_config, train, versions
from mlplab.config import RunConfig
from mlplab.data.dataset import Dataset
from mlplab.data.split import make_splits
from mlplab.errors import ConfigError
from mlplab.runs import RunWriter, to_json

DEFAULT_FRACTIONS = (0.1, 0.2, 0.5, 1.0)
PLOT_FILE = "learning_curve.png"
POINTS_FILE = "learning_curve.csv"
SUMMARY_FILE = "learning_curve.json"
BASE_FILE = "base.toml"
FOLDER_SUFFIX = "-learning-curve"
# The test accuracy counts as still rising when the last share's gain over the one before
# is more than this, and more than twice the standard error of that difference (over seeds).
RISING = 0.005
# A training accuracy this far above the test accuracy is a gap worth naming.
WIDE_GAP = 0.05
# A training accuracy below this has not learned its own images: room for a larger network.
FITTED = 0.98


@dataclass(frozen=True)
class CurvePoint:
    """One run: its share of the training images and how many that was, its seed, and its
    model's test accuracy, accuracy on its own training images and (when the config holds
    out validation) validation accuracy."""

    fraction: float
    train_images: int
    seed: int
    test_accuracy: float
    train_accuracy: float
    val_accuracy: float | None
    run: str


@dataclass(frozen=True)
class CurveSize:
    """The runs of one share, summarised over seeds: means and sample std (0 for one
    seed)."""

    fraction: float
    train_images: int
    test_mean: float
    test_std: float
    train_mean: float
    train_std: float


@dataclass
class LearningCurve:
    """A learning curve: the config it is of, its folder, every run's point, the summary
    per share (``sizes``) and what it says (``reading``, a few sentences)."""

    config: RunConfig
    path: Path
    points: list[CurvePoint]
    sizes: list[CurveSize]
    reading: str
    seconds: float

    def _repr_html_(self) -> str:
        """A card in Jupyter: the scores at the largest size, the reading and the curve."""
        from mlplab.report.notebook import learning_curve_card

        return learning_curve_card(self)


def summarize(points: Sequence[CurvePoint]) -> list[CurveSize]:
    """One CurveSize per share, in increasing order."""
    sizes = []
    for fraction in sorted({point.fraction for point in points}):
        chosen = [point for point in points if point.fraction == fraction]
        test = [point.test_accuracy for point in chosen]
        trained = [point.train_accuracy for point in chosen]
        sizes.append(
            CurveSize(
                fraction,
                round(statistics.mean(point.train_images for point in chosen)),
                statistics.mean(test),
                statistics.stdev(test) if len(test) > 1 else 0.0,
                statistics.mean(trained),
                statistics.stdev(trained) if len(trained) > 1 else 0.0,
            )
        )
    return sizes


def read_curve(sizes: Sequence[CurveSize], seeds: int) -> str:
    """What the curve says, in two sentences: whether the test accuracy is still rising at
    the largest share (beyond ``seeds`` runs' noise), and how well the network learns its
    own training images there, against the test images."""
    last, before = sizes[-1], sizes[-2]
    gain = last.test_mean - before.test_mean
    # Twice the standard error of the difference of the two means (std / sqrt(seeds) each).
    noise = 2 * np.sqrt((last.test_std**2 + before.test_std**2) / seeds)
    if gain > max(RISING, noise):
        trend = (
            f"The test accuracy is still rising: {100 * gain:+.1f} points from "
            f"{before.train_images:,} to {last.train_images:,} training images, so more "
            "images would likely help."
        )
    else:
        trend = (
            f"The test accuracy has levelled off ({100 * gain:+.1f} points from "
            f"{before.train_images:,} to {last.train_images:,} training images): more images "
            "of the same kind would help little; a different network or recipe may."
        )
    gap = last.train_mean - last.test_mean
    if gap > WIDE_GAP:
        fit = (
            f" On its own training images it scores {100 * last.train_mean:.1f}%, "
            f"{100 * gap:.1f} points more than on the test images: it fits them far better "
            "than new ones (variance); more images, dropout, L2 or augmentation narrow that gap."
        )
    elif last.train_mean < FITTED:
        fit = (
            f" It does not learn even its own training images well ({100 * last.train_mean:.1f}"
            "%, close to its test accuracy): a larger network or longer training may do more "
            "than more images (bias)."
        )
    else:
        fit = (
            f" It learns its own training images ({100 * last.train_mean:.1f}%) and scores "
            f"within {100 * gap:.1f} points of that on new ones."
        )
    return trend + fit


def _fractions(values: Iterable[float]) -> list[float]:
    fractions = sorted({float(value) for value in values})
    if len(fractions) < 2:
        raise ConfigError("a learning curve needs at least two training-set sizes")
    bad = [value for value in fractions if not 0 < value <= 1]
    if bad:
        raise ConfigError(f"training-set share {bad[0]:g}: must be > 0 and <= 1")
    return fractions


def learning_curve(
    config: ConfigLike = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    seeds: Sequence[int] = (0,),
    out: str | Path = "runs",
    verbose: bool = True,
    stream: TextIO | None = None,
    offline: bool | None = None,
    command: str | None = None,
) -> LearningCurve:
    """Train ``config`` on each share of its training images in ``fractions`` (each > 0 and
    <= 1, two or more) once per seed, and write the learning curve's folder under ``out``.

    verbose: one line per run on ``stream`` (stderr by default). Returns the LearningCurve;
    a bad share or config is a ConfigError before anything is trained or written.
    """
    started = time.perf_counter()
    stream = stream or sys.stderr
    base = resolve_config(config, overrides)
    shares = _fractions(fractions)
    if not seeds:
        raise ConfigError("a learning curve needs at least one seed")
    for seed in seeds:  # a bad seed is refused before anything is trained
        base.with_overrides({"train.seed": seed})
    # Read once: each run's own training images are drawn from it again (make_splits).
    data = read_datasets(base.data, offline)
    writer = RunWriter.create(out, f"{base.name}{FOLDER_SUFFIX}")
    writer.text(BASE_FILE, base.to_toml())
    points = []
    for fraction in shares:
        for seed in seeds:
            point = _train_point(base, fraction, seed, writer.path, data, offline)
            points.append(point)
            if verbose:
                print(
                    f"{100 * fraction:g}% ({point.train_images} images), seed {seed}: test "
                    f"{point.test_accuracy:.4f}  train {point.train_accuracy:.4f}",
                    file=stream,
                    flush=True,
                )
    sizes = summarize(points)
    curve = LearningCurve(
        base,
        writer.path,
        points,
        sizes,
        read_curve(sizes, len(seeds)),
        time.perf_counter() - started,
    )
    _write(curve, writer, command or "mlplab.learning_curve(...)")
    return curve


def _train_point(
    base: RunConfig,
    fraction: float,
    seed: int,
    folder: Path,
    data: tuple[Dataset, Dataset | None],
    offline: bool | None,
) -> CurvePoint:
    """Train one share and seed (a run in ``folder``, no pictures) and score its model on
    the test split and on its own training images, drawn from ``data``
    (:func:`mlplab.api.read_datasets`) as the run drew them."""
    name = f"{base.name}-{100 * fraction:g}pct-seed{seed}"
    cfg = base.with_overrides({"data.train_fraction": fraction, "train.seed": seed, "name": name})
    # What trains this run alone again (the folder keeps the config as base.toml).
    alone = shlex.join(
        [
            "mlplab",
            "train",
            str(folder / BASE_FILE),
            "--set",
            f"data.train_fraction={fraction:g}",
            "--seed",
            str(seed),
            "--name",
            name,
        ]
    )
    run = train(cfg, out=folder, verbose=False, report=False, offline=offline, command=alone)
    dataset, external = data
    splits = make_splits(dataset, cfg.data.validation, seed, external, fraction)
    trained = float(np.mean(run.predict(splits.x_train).argmax(axis=1) == splits.y_train))
    return CurvePoint(
        fraction,
        len(splits.y_train),
        seed,
        float(run.metrics["test_accuracy"]),
        trained,
        run.metrics.get("val_accuracy"),
        run.path.name,
    )


def _write(curve: LearningCurve, writer: RunWriter, command: str) -> None:
    """learning_curve.csv, .json (with the ``command`` that made it) and .png into the
    curve's folder."""
    from mlplab.report.learning_curve import learning_curve_png

    rows = io.StringIO()
    table = csv.DictWriter(rows, fieldnames=list(asdict(curve.points[0])), lineterminator="\n")
    table.writeheader()
    table.writerows(asdict(point) for point in curve.points)
    writer.text(POINTS_FILE, rows.getvalue())
    writer.bytes(PLOT_FILE, learning_curve_png(curve))
    writer.text(
        SUMMARY_FILE,
        to_json(
            {
                "name": curve.config.name,
                "dataset": curve.config.data.dataset,
                "seeds": sorted({point.seed for point in curve.points}),
                "sizes": [asdict(size) for size in curve.sizes],
                "points": [asdict(point) for point in curve.points],
                "reading": curve.reading,
                "seconds": curve.seconds,
                "command": command,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": versions(),
            }
        ),
    )
