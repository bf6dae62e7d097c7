"""Which images are likely mislabelled: confident learning on out-of-fold predictions.

Every image of a dataset gets class probabilities from a network that never trained on it:
the config is trained ``folds`` times by k-fold cross-validation (seeded and stratified),
each time predicting the fold it left out. An image is then flagged as cleanlab's
``find_label_issues(filter_by="confident_learning")`` flags it (Northcutt, Jiang and
Chuang, "Confident learning: estimating uncertainty in dataset labels", JAIR 2021):

- each class j gets a threshold t_j: the mean probability of class j over the images
  labelled j (how sure the network is, on average, of that class's own images);
- an image's confident classes are those whose probability reaches their threshold; its
  likely label is its confident class (of several, its most probable class);
- it is flagged when its likely label is not its given label, and its most probable class
  is not the given label either.

Flagged images are ranked by self-confidence, the probability of their given label, lowest
first: the surest suspects lead. A flag is a suggestion to look at the image, not proof.

``audit_labels`` writes ``runs/<UTC time>-<name>-label-issues/``: ``label_issues.csv`` (a
row per flagged image, surest first: the image's file, or its split and index; the given
and the likely label; both probabilities), ``label_issues.png`` (the surest suspects),
``label_issues.json`` (the settings, the counts, per class pair, the thresholds and the
command), ``label_issues.html`` (the counts and the first PAGE_ROWS suspects, each with its
image) and ``out_of_fold.npz`` (every image's labels and out-of-fold probabilities).
"""

from __future__ import annotations

import csv
import io
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mlplab.config import RunConfig
from mlplab.errors import ConfigError, DataError

CSV_FILE = "label_issues.csv"
PLOT_FILE = "label_issues.png"
SUMMARY_FILE = "label_issues.json"
PAGE_FILE = "label_issues.html"
PROBA_FILE = "out_of_fold.npz"
FOLDER_SUFFIX = "-label-issues"
DEFAULT_FOLDS = 5
# Suspects drawn in label_issues.png, and listed with their images in label_issues.html.
GALLERY_SIZE = 32
PAGE_ROWS = 300


@dataclass
class LabelIssues:
    """The flagged images, surest first.

    indices: int64 (m,) into the audited images; given, likely: int64 (m,) their given and
    likely labels; given_probability, likely_probability: float32 (m,) the out-of-fold
    probability of each. thresholds: float64 (k,) the per-class thresholds t_j (NaN for a
    class no image is labelled with). images: how many images were audited.
    """

    indices: np.ndarray
    given: np.ndarray
    likely: np.ndarray
    given_probability: np.ndarray
    likely_probability: np.ndarray
    thresholds: np.ndarray
    images: int

    def __len__(self) -> int:
        return len(self.indices)

    def pairs(self) -> list[tuple[int, int, int]]:
        """(given, likely, count) per class pair with flagged images, most first."""
        counts: dict[tuple[int, int], int] = {}
        for given, likely in zip(self.given.tolist(), self.likely.tolist(), strict=True):
            counts[(given, likely)] = counts.get((given, likely), 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [(given, likely, count) for (given, likely), count in ranked]


def find_label_issues(labels: np.ndarray, proba: np.ndarray) -> LabelIssues:
    """Confident learning's label issues (see the module's docstring), ranked by
    self-confidence. labels: int (n,) given labels in [0, k); proba: float (n, k)
    out-of-fold probabilities."""
    labels = np.asarray(labels, np.int64)
    proba = np.asarray(proba, np.float64)
    n, k = proba.shape
    if labels.shape != (n,):
        raise ValueError(f"{len(labels)} labels for {n} rows of probabilities")
    counts = np.bincount(labels, minlength=k)
    own = np.bincount(labels, weights=proba[np.arange(n), labels], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        thresholds = own / counts  # NaN for a class without images: never confident
    # cleanlab's comparison: a probability within 1e-6 below the threshold still counts.
    confident = proba >= np.where(np.isnan(thresholds), np.inf, thresholds) - 1e-6
    how_many = confident.sum(axis=1)
    most_probable = proba.argmax(axis=1)
    likely = np.where(how_many > 1, most_probable, confident.argmax(axis=1))
    flagged = (how_many > 0) & (likely != labels) & (most_probable != labels)
    chosen = np.flatnonzero(flagged)
    self_confidence = proba[chosen, labels[chosen]]
    chosen = chosen[np.argsort(self_confidence, kind="stable")]
    return LabelIssues(
        indices=chosen,
        given=labels[chosen],
        likely=likely[chosen],
        given_probability=proba[chosen, labels[chosen]].astype(np.float32),
        likely_probability=proba[chosen, likely[chosen]].astype(np.float32),
        thresholds=thresholds,
        images=n,
    )


def out_of_fold_proba(
    config: RunConfig,
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    on_fold: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """Each image's class probabilities from a network trained without it: ``config``
    trained on all folds but one, ``folds`` times (scikit-learn's
    StratifiedKFold, shuffled with ``seed``; the networks seeded by the config).

    x: uint8 (n, h, w, c); y: int64 (n,) in [0, classes). Returns float32 (n, classes);
    a class missing from a fold's training images gets probability 0 there. on_fold:
    called with (fold number from 1, its held-out accuracy) after each fold."""
    from sklearn.model_selection import StratifiedKFold

    from mlplab.estimator import MLPClassifier

    proba = np.zeros((len(y), classes), np.float32)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class with fewer images than folds: sklearn warns
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(y)), y))
    for number, (train, held) in enumerate(splits, start=1):
        network = MLPClassifier(config).fit(x[train], y[train])
        proba[np.ix_(held, network.classes_.astype(np.int64))] = network.predict_proba(x[held])
        if on_fold is not None:
            on_fold(number, float(np.mean(proba[held].argmax(axis=1) == y[held])))
    return proba


@dataclass
class LabelAudit:
    """What ``audit_labels`` found and wrote: the config, the folder, every audited image's
    name (its file, or "train #12") and labels, the out-of-fold probabilities (float32 (n,
    k)), the issues, the class names, and how long it took."""

    config: RunConfig
    path: Path
    names: list[str]
    labels: np.ndarray
    proba: np.ndarray
    issues: LabelIssues
    class_names: tuple[str, ...]
    folds: int
    seconds: float

    @property
    def accuracy(self) -> float:
        """The out-of-fold accuracy against the given labels."""
        return float(np.mean(self.proba.argmax(axis=1) == self.labels))

    @property
    def share(self) -> float:
        """The share of the audited images flagged."""
        return len(self.issues) / max(self.issues.images, 1)

    def facts(self) -> list[tuple[str, str]]:
        """(name, value) for the notebook card and label_issues.html: images, flagged (and
        their share), the out-of-fold accuracy, the folds."""
        return [
            ("images", f"{self.issues.images:,}"),
            ("likely mislabelled", f"{len(self.issues):,} ({100 * self.share:.2f}%)"),
            ("out-of-fold accuracy", f"{self.accuracy:.4f}"),
            ("folds", str(self.folds)),
        ]

    def _repr_html_(self) -> str:
        """A card in Jupyter: the counts and the surest suspects."""
        from mlplab.report.notebook import label_audit_card

        return label_audit_card(self)


def audit_labels(
    config: Any = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    out: str | Path = "runs",
    verbose: bool = True,
    stream: TextIO | None = None,
    offline: bool | None = None,
    command: str | None = None,
) -> LabelAudit:
    """Look for mislabelled images among all of the config's dataset (its training and test
    images, or every image of a folder): out-of-fold probabilities from ``folds`` networks
    (:func:`out_of_fold_proba`, shuffled with ``train.seed``), then
    :func:`find_label_issues`. Writes the audit's folder under ``out`` (see the module's
    docstring). verbose: a line per fold on ``stream`` (stderr by default). A bad ``folds``
    or config is a ConfigError before anything is read or trained."""
    from mlplab.api import read_dataset, resolve_config
    from mlplab.runs import RunWriter

    started = time.perf_counter()
    stream = stream or sys.stderr
    base = resolve_config(config, overrides)
    if base.train.teacher:
        raise ConfigError(
            f"train.teacher = {base.train.teacher!r}: label-issues needs each fold's network "
            "never to have seen the held-out images' labels, and a teacher trained on them "
            "would pass them on; audit without a teacher"
        )
    if base.model.init_from:
        raise ConfigError(
            f"model.init_from = {base.model.init_from!r}: label-issues needs each fold's "
            "network never to have seen the held-out images' labels, and one that starts "
            "from a trained network may have; audit from random weights"
        )
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"folds must be a whole number of at least 2, not {folds!r}")
    dataset = read_dataset(base.data, offline=offline, whole=True)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    names = dataset.image_names("train") + dataset.image_names("test")
    counts = np.bincount(y, minlength=dataset.num_classes)
    if np.count_nonzero(counts) < 2:
        raise DataError(f"{dataset.name}: needs images of at least two classes to audit")
    if counts.max() < folds:
        raise DataError(
            f"{dataset.name}: {folds} folds need a class with at least {folds} images "
            f"(the largest has {counts.max()})"
        )

    def report(number: int, accuracy: float) -> None:
        if verbose:
            print(
                f"fold {number}/{folds}: held-out accuracy {accuracy:.4f}", file=stream, flush=True
            )

    proba = out_of_fold_proba(base, x, y, dataset.num_classes, folds, base.train.seed, report)
    issues = find_label_issues(y, proba)
    writer = RunWriter.create(out, f"{base.name}{FOLDER_SUFFIX}")
    audit = LabelAudit(
        base,
        writer.path,
        names,
        y,
        proba,
        issues,
        dataset.class_names,
        folds,
        time.perf_counter() - started,
    )
    _write(audit, writer, x, dataset.name, command or "mlplab.audit_labels(...)")
    return audit


def issue_rows(audit: LabelAudit) -> list[dict[str, Any]]:
    """A dict per flagged image, surest first: rank, image, given, likely, both
    probabilities (what label_issues.csv holds)."""
    names, issues = audit.class_names, audit.issues
    return [
        {
            "rank": rank,
            "image": audit.names[index],
            "given": names[given],
            "likely": names[likely],
            "given_probability": round(float(p_given), 4),
            "likely_probability": round(float(p_likely), 4),
        }
        for rank, (index, given, likely, p_given, p_likely) in enumerate(
            zip(
                issues.indices,
                issues.given,
                issues.likely,
                issues.given_probability,
                issues.likely_probability,
                strict=True,
            ),
            start=1,
        )
    ]


def _write(audit: LabelAudit, writer: Any, x: np.ndarray, dataset: str, command: str) -> None:
    """label_issues.csv, .png, .json and out_of_fold.npz into the audit's folder."""
    from mlplab.api import versions
    from mlplab.report.mosaic import captioned_png
    from mlplab.runs import to_json

    rows = issue_rows(audit)
    table = io.StringIO()
    fields = ["rank", "image", "given", "likely", "given_probability", "likely_probability"]
    table_writer = csv.DictWriter(table, fieldnames=fields, lineterminator="\n")
    table_writer.writeheader()
    table_writer.writerows(rows)
    writer.text(CSV_FILE, table.getvalue())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, labels=audit.labels, proba=audit.proba)
    writer.bytes(PROBA_FILE, buffer.getvalue())
    shown = audit.issues.indices[:GALLERY_SIZE]
    captions = [
        f"given: {row['given']}\nlikely: {row['likely']} {row['likely_probability']:.2f}"
        for row in rows[:GALLERY_SIZE]
    ]
    if not rows:
        found = "no likely mislabelled images"
    elif len(rows) > len(shown):
        found = f"the {len(shown)} surest of {len(rows):,} likely mislabelled images"
    else:
        found = f"the {len(rows)} likely mislabelled image{'s' if len(rows) > 1 else ''}"
    title = (
        f"{audit.config.name} on {dataset}: {found}\n(each with its given label, the likely "
        "one and its out-of-fold probability)"
    )
    writer.bytes(PLOT_FILE, captioned_png(x[shown], captions, title))
    writer.text(PAGE_FILE, _page(audit, x, rows, dataset))
    names = audit.class_names
    writer.text(
        SUMMARY_FILE,
        to_json(
            {
                "name": audit.config.name,
                "dataset": dataset,
                "images": audit.issues.images,
                "folds": audit.folds,
                "seed": audit.config.train.seed,
                "out_of_fold_accuracy": audit.accuracy,
                "flagged": len(rows),
                "flagged_share": audit.share,
                "pairs": [
                    {"given": names[given], "likely": names[likely], "count": count}
                    for given, likely, count in audit.issues.pairs()
                ],
                "thresholds": {
                    str(name): (None if np.isnan(t) else float(t))
                    for name, t in zip(names, audit.issues.thresholds, strict=True)
                },
                "issues": rows,
                "seconds": audit.seconds,
                "command": command,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": versions(),
            }
        ),
    )


def _page(audit: LabelAudit, x: np.ndarray, rows: list[dict[str, Any]], dataset: str) -> str:
    """label_issues.html: the counts, the pairs most often flagged, and the first PAGE_ROWS
    suspects with their images. x: uint8 (n, h, w, c) the audited images."""
    from mlplab.data.images import png_data_url
    from mlplab.report.html import label_issues_page

    names, issues = audit.class_names, audit.issues
    pairs = [[names[g], names[lk], f"{count:,}"] for g, lk, count in issues.pairs()[:20]]
    suspects = [
        (
            png_data_url(x[index]),
            [
                row["rank"],
                row["image"],
                row["given"],
                row["likely"],
                f"{row['given_probability']:.3f}",
                f"{row['likely_probability']:.3f}",
            ],
        )
        for index, row in zip(issues.indices[:PAGE_ROWS], rows[:PAGE_ROWS], strict=True)
    ]
    title = f"{audit.config.name} on {dataset}: likely mislabelled images"
    return label_issues_page(title, audit.facts(), pairs, suspects, max(0, len(rows) - PAGE_ROWS))
