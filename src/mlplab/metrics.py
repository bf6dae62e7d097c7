"""Test-set metrics from predicted probabilities (scikit-learn does the counting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Probabilities are clipped here before the log, as Keras' cross-entropy does.
EPSILON = 1e-7


def cross_entropy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean categorical cross-entropy. y_true: int (n,); proba: float (n, k)."""
    if len(y_true) == 0:
        return float("nan")
    picked = proba[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0))))


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Loss, accuracy, per-class precision/recall/F1/support and the confusion matrix.

    y_true: int (n,) labels in [0, k); proba: float (n, k) predicted probabilities.
    Returns plain Python types, ready for JSON. Confusion rows are true classes, columns
    predicted.
    """
    # Imported here: scikit-learn takes ~1.5 s to import, and `import mlplab` should not.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.arange(len(class_names))
    y_pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        averages[f"{average}_avg"] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    return {
        "test_loss": cross_entropy(y_true, proba),
        "test_accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
        "test_samples": len(y_true),
        "per_class": per_class,
        **averages,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def report_text(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> str:
    """scikit-learn's per-class classification report, with class names."""
    from sklearn.metrics import classification_report

    y_pred = proba.argmax(axis=1)
    return classification_report(
        y_true,
        y_pred,
        labels=np.arange(len(class_names)),
        target_names=[str(name) for name in class_names],
        digits=4,
        zero_division=0,
    )


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
