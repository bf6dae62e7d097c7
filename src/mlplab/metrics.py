"""Test-set metrics from predicted probabilities.

The counting is a few lines of numpy, checked number for number against scikit-learn's
``precision_recall_fscore_support``, ``confusion_matrix`` and ``classification_report`` in the
tests. Importing scikit-learn's metrics pulls in SciPy, about a second of every `mlplab train`,
`evaluate` and `predict` process, so they are not used here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

# Probabilities are clipped here before the log, as Keras' cross-entropy does.
EPSILON = 1e-7
# Column headings and number precision of the text report (as scikit-learn's).
REPORT_HEADERS = ("precision", "recall", "f1-score", "support")
REPORT_DIGITS = 4
# Equal-width confidence bins of the calibration error (Guo et al. 2017, "On Calibration of
# Modern Neural Networks", use 15).
CALIBRATION_BINS = 15
# The confidence level of the test accuracy's interval (accuracy_interval).
CONFIDENCE = 0.95


def cross_entropy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean categorical cross-entropy. y_true: int (n,); proba: float (n, k)."""
    if len(y_true) == 0:
        return float("nan")
    picked = proba[np.arange(len(y_true)), y_true]
    # + 0.0: all right with probability 1 gives -0.0, which would print as "-0.0000".
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0)))) + 0.0


def predicted_labels(proba: np.ndarray) -> np.ndarray:
    """The most probable class of each row. proba: float (n, k) -> int64 (n,)."""
    if len(proba) == 0:
        return np.zeros(0, np.int64)
    return proba.argmax(axis=1).astype(np.int64)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 (k, k) counts: rows are true classes, columns predicted. Labels lie in [0, k)."""
    k = num_classes
    flat = np.asarray(y_true, np.int64) * k + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64, 0 where the denominator is 0 (zero_division=0)."""
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (float64 (k,)) and support (int64 (k,)) from (k, k) counts.

    An undefined ratio (a class never predicted, or absent from the labels) counts as 0.
    """
    hits = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    return {
        "precision": _ratio(hits, predicted),
        "recall": _ratio(hits, support),
        # 2·tp / (2·tp + fp + fn): defined even where precision is not.
        "f1": _ratio(2 * hits, support + predicted),
        "support": support,
    }


def _chosen(scores: dict[str, np.ndarray], labels: Sequence[int] | None) -> dict[str, np.ndarray]:
    """Per-class scores of these classes only (all for None)."""
    if labels is None:
        return scores
    return {key: values[np.asarray(labels, dtype=np.int64)] for key, values in scores.items()}


def _averages(scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Macro (plain mean over classes) and weighted (by support) precision, recall and F1."""
    support = scores["support"]
    averages = {}
    for average, weights in (("macro", None), ("weighted", support)):
        if weights is not None and weights.sum() == 0:
            averages[f"{average}_avg"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
            continue
        averages[f"{average}_avg"] = {
            key: float(np.average(scores[key], weights=weights))
            for key in ("precision", "recall", "f1")
        }
    return averages


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    labels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, per-class precision/recall/F1/support, the confusion matrix and the
    calibration (:func:`calibration`), and the accuracy when it answers only where it is
    sure (``selective``: :func:`selective`).

    y_true: int (n,) labels in [0, k); proba: float (n, k) predicted probabilities.
    labels: the classes to score and average over (default: all k), as scikit-learn's
    ``labels=``: images of a class may still be predicted as any of the k. Returns plain
    Python types, ready for JSON. Confusion rows are true classes, columns predicted (k, k).
    """
    y_pred = predicted_labels(proba)
    confusion = confusion_counts(y_true, y_pred, len(class_names))
    scores = _chosen(per_class_scores(confusion), labels)
    shown = range(len(class_names)) if labels is None else labels
    per_class = {
        class_names[c]: {
            "precision": float(scores["precision"][i]),
            "recall": float(scores["recall"][i]),
            "f1": float(scores["f1"][i]),
            "support": int(scores["support"][i]),
        }
        for i, c in enumerate(shown)
    }
    return {
        "test_loss": cross_entropy(y_true, proba),
        "test_accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
        "test_samples": len(y_true),
        "test_accuracy_interval": (
            list(accuracy_interval(int(np.sum(y_pred == y_true)), len(y_true)))
            if len(y_true)
            else None
        ),
        "per_class": per_class,
        **_averages(scores),
        "confusion_matrix": confusion.tolist(),
        "calibration": calibration(y_true, proba),
        "selective": selective(y_true, proba),
    }


def accuracy_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` right out of ``n`` images
    (n > 0): where the accuracy on all images like these likely lies, at ``confidence``.

    It measures only the luck of which images the test set happened to hold, not that of
    the training seed (``train --seeds`` measures that). Wilson's interval rather than the
    textbook p ± z·sqrt(p(1-p)/n): that one collapses to a point at 100% and runs past 1
    near it, where good networks are (Brown, Cai & DasGupta 2001, "Interval Estimation for
    a Binomial Proportion"). Computed in closed form: SciPy would add a second to every
    process that imports this module.
    """
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = correct / n
    spread = z * z / n
    centre = (share + spread / 2) / (1 + spread)
    half = z / (1 + spread) * math.sqrt(share * (1 - share) / n + spread / (4 * n))
    # At 0 or n right the bounds are exactly 0 and 1; rounding would leave 0.99999...
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def interval_of(metrics: Mapping[str, Any]) -> tuple[float, float] | None:
    """A run's or an evaluation's test accuracy interval (:func:`accuracy_interval`): the
    stored ``test_accuracy_interval``, else worked out from ``test_accuracy`` and
    ``test_samples`` (runs written before it was stored); None without them."""
    stored = metrics.get("test_accuracy_interval")
    if isinstance(stored, (list, tuple)) and len(stored) == 2:
        return float(stored[0]), float(stored[1])
    accuracy, n = metrics.get("test_accuracy"), metrics.get("test_samples")
    if not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        return None
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    return accuracy_interval(round(accuracy * n), n)


def interval_range(metrics: Mapping[str, Any]) -> str:
    """The interval of :func:`interval_of` as text, 0.9496-0.9849; "" without one."""
    bounds = interval_of(metrics)
    return "" if bounds is None else f"{bounds[0]:.4f}-{bounds[1]:.4f}"


def interval_text(metrics: Mapping[str, Any]) -> str:
    """The interval of :func:`interval_of` as 95% CI 0.9496-0.9849; "" without one."""
    shown = interval_range(metrics)
    return f"{100 * CONFIDENCE:g}% CI {shown}" if shown else ""


def accuracy_text(metrics: Mapping[str, Any]) -> str:
    """The test accuracy with its interval, 0.9722 (95% CI 0.9496-0.9849), as the summary
    lines of train and evaluate print it (without the interval when there is none)."""
    interval = interval_text(metrics)
    return f"{metrics['test_accuracy']:.4f}" + (f" ({interval})" if interval else "")


def calibration(
    y_true: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """How far the network's confidence is from its accuracy (top-label calibration).

    y_true: int (n,); proba: float (n, k). Each prediction's confidence (its largest
    probability) falls in one of ``bins`` equal-width bins of [0, 1] (a right edge belongs to
    its bin: 1.0 is in the last). Returns plain Python types: ``ece``, the expected
    calibration error — the mean over predictions of |accuracy - mean confidence| of their
    bin, 0 for a perfectly calibrated network; ``mean_confidence`` and ``accuracy`` (their
    difference says over- or under-confident overall); ``bins``: per bin ``low``, ``high``,
    ``count``, and for bins with predictions ``confidence`` and ``accuracy``.
    """
    confidence = proba.max(axis=1).astype(np.float64)
    correct = (predicted_labels(proba) == y_true).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=confidence, minlength=bins)
    hits = np.bincount(which, weights=correct, minlength=bins)
    n = len(y_true)
    table = []
    for i in range(bins):
        row: dict[str, Any] = {"low": i / bins, "high": (i + 1) / bins, "count": int(counts[i])}
        if counts[i]:
            row["confidence"] = float(sums[i] / counts[i])
            row["accuracy"] = float(hits[i] / counts[i])
        table.append(row)
    return {
        "ece": float(np.abs(hits - sums).sum() / n) if n else float("nan"),
        "mean_confidence": float(confidence.mean()) if n else float("nan"),
        "accuracy": float(correct.mean()) if n else float("nan"),
        "bins": table,
    }


# Probability thresholds and accuracies selective() reports.
SELECTIVE_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)
SELECTIVE_TARGETS = (0.99, 0.995, 0.999)


def coverage_curve(
    y_true: np.ndarray, proba: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The accuracy when the network answers only where its largest probability reaches a
    threshold, for every threshold that changes which images it answers.

    y_true: int (n,); proba: float (n, k). Returns float64 arrays, one entry per distinct
    confidence, surest first: ``thresholds`` (answer where the confidence >= it),
    ``coverage`` (the share of images answered) and ``accuracy`` (right among those).
    """
    confidence = proba.max(axis=1).astype(np.float64)
    correct = (predicted_labels(proba) == y_true).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    # Only the last of a run of equal confidences: a threshold answers all of them or none.
    ends = np.flatnonzero(np.append(confidence[1:] != confidence[:-1], True))
    answered = ends + 1.0
    return confidence[ends], answered / max(len(y_true), 1), np.cumsum(correct)[ends] / answered


def selective(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """When the network may say "not sure": :func:`coverage_curve` read two ways. Returns
    ``thresholds``: per probability threshold in SELECTIVE_THRESHOLDS, the share of images
    answered (``coverage``) and the accuracy on them (None where none are answered); and
    ``targets``: per accuracy in SELECTIVE_TARGETS, the lowest threshold whose answers are
    at least that accurate and the largest share answered so, or None where no threshold
    reaches it. Plain Python types, for metrics.json."""
    thresholds, coverage, accuracy = coverage_curve(y_true, proba)
    by_threshold = []
    for threshold in SELECTIVE_THRESHOLDS:
        reached = np.flatnonzero(thresholds >= threshold)
        last = reached[-1] if len(reached) else None
        by_threshold.append(
            {
                "threshold": threshold,
                "coverage": 0.0 if last is None else float(coverage[last]),
                "accuracy": None if last is None else float(accuracy[last]),
            }
        )
    by_target = []
    for target in SELECTIVE_TARGETS:
        reached = _reaching(target, thresholds, coverage, accuracy)
        by_target.append(
            {
                "accuracy": target,
                "threshold": None if reached is None else reached[0],
                "coverage": 0.0 if reached is None else reached[1],
            }
        )
    return {"thresholds": by_threshold, "targets": by_target}


def threshold_for(
    target: float, y_true: np.ndarray, proba: np.ndarray
) -> tuple[float, float] | None:
    """The lowest probability threshold at which the answers are at least ``target`` right
    (a share, 0..1), and the share of images it answers; None when no threshold is that
    right. y_true: int (n,); proba: float (n, k)."""
    return _reaching(target, *coverage_curve(y_true, proba))


def _reaching(
    target: float, thresholds: np.ndarray, coverage: np.ndarray, accuracy: np.ndarray
) -> tuple[float, float] | None:
    """:func:`threshold_for` read off a :func:`coverage_curve`: the point answering most."""
    good = np.flatnonzero(accuracy >= target)
    if not len(good):
        return None
    return float(thresholds[good[-1]]), float(coverage[good[-1]])


def report_text(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    labels: Sequence[int] | None = None,
) -> str:
    """The per-class classification report, laid out as scikit-learn's (4 digits); labels:
    the classes it lists and averages (default: all), as in :func:`classification_metrics`."""
    y_pred = predicted_labels(proba)
    scores = _chosen(per_class_scores(confusion_counts(y_true, y_pred, len(class_names))), labels)
    averages = _averages(scores)
    shown = range(len(class_names)) if labels is None else labels
    names = [str(class_names[c]) for c in shown]
    width = max(max((len(name) for name in names), default=0), len("weighted avg"))
    digits = REPORT_DIGITS

    def row(label: str, precision: float, recall: float, f1: float, support: int) -> str:
        return (
            f"{label:>{width}s}  {precision:>9.{digits}f} {recall:>9.{digits}f} "
            f"{f1:>9.{digits}f} {support:>9}\n"
        )

    lines = f"{'':>{width}s} " + "".join(f" {h:>9}" for h in REPORT_HEADERS) + "\n\n"
    for i, name in enumerate(names):
        lines += row(
            name,
            scores["precision"][i],
            scores["recall"][i],
            scores["f1"][i],
            int(scores["support"][i]),
        )
    total = int(scores["support"].sum())
    accuracy = float(np.mean(y_pred == y_true)) if len(y_true) else 0.0
    lines += f"\n{'accuracy':>{width}s}  {'':>9} {'':>9} {accuracy:>9.{digits}f} {total:>9}\n"
    for average in ("macro", "weighted"):
        values = averages[f"{average}_avg"]
        lines += row(f"{average} avg", values["precision"], values["recall"], values["f1"], total)
    return lines


def confused_pairs(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], top: int = 10
) -> list[dict[str, Any]]:
    """The most frequent mistakes, largest first.

    confusion: (k, k) counts, rows true, columns predicted. Returns at most ``top`` dicts
    (true, predicted, count, share of the true class) for off-diagonal cells with count > 0.
    """
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.size == 0:
        return []
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    rows = matrix.sum(axis=1)
    flat = np.argsort(-off, axis=None, kind="stable")[:top]
    pairs = []
    for index in flat:
        true, predicted = divmod(int(index), matrix.shape[1])
        count = int(off[true, predicted])
        if count == 0:
            break
        pairs.append(
            {
                "true": str(class_names[true]),
                "predicted": str(class_names[predicted]),
                "count": count,
                "share": count / int(rows[true]),
            }
        )
    return pairs


def confident_examples(
    y_true: np.ndarray, proba: np.ndarray, correct: bool, count: int = 24
) -> np.ndarray:
    """Indices of the most confident right (``correct``) or wrong predictions, most first.

    y_true: int (n,); proba: float (n, k). Returns int64 (m,), m <= count.
    """
    if len(y_true) == 0:
        return np.zeros(0, np.int64)
    predicted = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    chosen = np.flatnonzero((predicted == y_true) == correct)
    order = np.argsort(-confidence[chosen], kind="stable")
    return chosen[order[:count]].astype(np.int64)
