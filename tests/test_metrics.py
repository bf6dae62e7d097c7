import keras
import numpy as np
import pytest
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from mlplab.metrics import (
    accuracy_interval,
    calibration,
    classification_metrics,
    coverage_curve,
    cross_entropy,
    interval_of,
    interval_text,
    report_text,
    selective,
    threshold_for,
)


def random_predictions(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.astype(np.float32)


def test_metrics_agree_with_sklearn():
    y, proba = random_predictions()
    names = ["a", "b", "c", "d"]
    metrics = classification_metrics(y, proba, names)
    expected = classification_report(y, proba.argmax(1), target_names=names, output_dict=True)
    assert metrics["test_accuracy"] == expected["accuracy"]
    for name in names:
        assert metrics["per_class"][name]["precision"] == expected[name]["precision"]
        assert metrics["per_class"][name]["recall"] == expected[name]["recall"]
        assert metrics["per_class"][name]["f1"] == expected[name]["f1-score"]
        assert metrics["per_class"][name]["support"] == expected[name]["support"]
    assert metrics["macro_avg"]["f1"] == expected["macro avg"]["f1-score"]
    assert metrics["confusion_matrix"] == confusion_matrix(y, proba.argmax(1)).tolist()


def _cases():
    """(y_true, proba, names): ordinary, a class never predicted, a class absent from y_true,
    long class names, two classes."""
    y, proba = random_predictions()
    yield y, proba, ["a", "b", "c", "d"]
    y, proba = random_predictions(n=50, k=6, seed=3)
    proba[:, 5] = 0.0  # class 5 is never predicted
    yield y, proba, [f"class {i}" for i in range(6)]
    y, proba = random_predictions(n=40, k=3, seed=4)
    y = np.where(y == 2, 0, y)  # class 2 has no support
    yield y, proba, ["T-shirt/top", "a much longer class name than usual", "c"]
    y, proba = random_predictions(n=7, k=2, seed=5)
    yield y, proba, ["no", "yes"]


@pytest.mark.parametrize("case", range(4))
def test_every_number_and_the_text_report_match_sklearn(case):
    y, proba, names = list(_cases())[case]
    y_pred = proba.argmax(1)
    labels = np.arange(len(names))
    metrics = classification_metrics(y, proba, names)
    p, r, f, s = precision_recall_fscore_support(y, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(names):
        assert metrics["per_class"][name] == {
            "precision": p[i],
            "recall": r[i],
            "f1": f[i],
            "support": s[i],
        }
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y, y_pred, labels=labels, average=average, zero_division=0
        )
        assert metrics[f"{average}_avg"] == pytest.approx(
            {"precision": p, "recall": r, "f1": f}, rel=1e-12
        )
    assert metrics["confusion_matrix"] == confusion_matrix(y, y_pred, labels=labels).tolist()
    expected = classification_report(
        y, y_pred, labels=labels, target_names=names, digits=4, zero_division=0
    )
    assert report_text(y, proba, names) == expected


def test_classes_never_predicted_or_absent_still_get_rows():
    y = np.array([0, 0, 1])
    proba = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0]], np.float32)
    metrics = classification_metrics(y, proba, ["a", "b", "c"])
    assert len(metrics["confusion_matrix"]) == 3
    assert metrics["per_class"]["c"]["support"] == 0
    assert "c" in report_text(y, proba, ["a", "b", "c"])


def test_cross_entropy_matches_keras():
    y, proba = random_predictions(k=5)
    expected = keras.losses.categorical_crossentropy(np.eye(5)[y], proba)
    assert abs(cross_entropy(y, proba) - float(np.mean(expected))) < 1e-5


# --- calibration -----------------------------------------------------------------------------


def test_calibration_error_counts_each_bin_as_written():
    """Against a loop over the predictions, bin by bin, as the definition reads."""
    y, proba = random_predictions(n=500, k=5, seed=3)
    result = calibration(y, proba, bins=10)
    confidence, right = proba.max(axis=1), proba.argmax(axis=1) == y
    expected = 0.0
    for i, row in enumerate(result["bins"]):
        inside = (confidence > i / 10) & (confidence <= (i + 1) / 10)
        if i == 0:
            inside |= confidence == 0
        assert row["count"] == inside.sum()
        if inside.any():
            assert row["accuracy"] == pytest.approx(right[inside].mean())
            assert row["confidence"] == pytest.approx(confidence[inside].mean())
            expected += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
        else:
            assert "accuracy" not in row
    assert result["ece"] == pytest.approx(expected)
    assert result["mean_confidence"] == pytest.approx(confidence.mean())
    assert result["accuracy"] == pytest.approx(right.mean())


def test_calibration_of_a_network_as_sure_as_it_is_right_is_zero():
    y = np.zeros(10, int)
    sure = np.tile([0.8, 0.2], (10, 1))  # says 80% ...
    sure[8:] = [0.2, 0.8]  # ... and is right 8 times in 10
    assert calibration(y, sure)["ece"] == pytest.approx(0, abs=1e-12)
    overconfident = np.tile([0.9, 0.1], (10, 1))
    overconfident[5:] = [0.1, 0.9]  # says 90%, right half the time
    result = calibration(y, overconfident)
    assert result["ece"] == pytest.approx(0.4)
    assert (result["mean_confidence"], result["accuracy"]) == pytest.approx((0.9, 0.5))
    certain = calibration(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert certain["bins"][-1]["count"] == 2 and certain["ece"] == pytest.approx(0.5)


def test_calibration_is_part_of_the_metrics():
    y, proba = random_predictions()
    metrics = classification_metrics(y, proba, ["a", "b", "c", "d"])
    assert metrics["calibration"] == calibration(y, proba)
    assert len(metrics["calibration"]["bins"]) == 15


def test_coverage_curve_and_selective_agree_with_counting_by_hand():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4) * 0.3, 500)
    proba[:40] = proba[0]  # ties: a threshold answers all of them or none
    y = np.where(rng.random(500) < 0.7, proba.argmax(axis=1), rng.integers(0, 4, 500))
    thresholds, coverage, accuracy = coverage_curve(y, proba)
    confidence, right = proba.max(axis=1), proba.argmax(axis=1) == y
    assert np.all(np.diff(thresholds) < 0) and coverage[-1] == 1.0
    assert len(thresholds) == len(np.unique(confidence))
    for t, c, a in zip(thresholds, coverage, accuracy, strict=True):
        answered = confidence >= t
        assert c == pytest.approx(answered.mean()) and a == pytest.approx(right[answered].mean())
    summary = selective(y, proba)
    for row in summary["thresholds"]:
        answered = confidence >= row["threshold"]
        assert row["coverage"] == pytest.approx(answered.mean())
        assert row["accuracy"] == (
            pytest.approx(right[answered].mean()) if answered.any() else None
        )
    for row in summary["targets"]:
        if row["threshold"] is None:
            assert not np.any(accuracy >= row["accuracy"]) and row["coverage"] == 0.0
            continue
        answered = confidence >= row["threshold"]
        assert right[answered].mean() >= row["accuracy"]
        # No lower threshold reaches the target: this is the most it can answer.
        lower = thresholds[thresholds < row["threshold"]]
        assert all(right[confidence >= t].mean() < row["accuracy"] for t in lower)
        assert row["coverage"] == pytest.approx(answered.mean())
    assert classification_metrics(y, proba, list("abcd"))["selective"] == summary


def test_selective_when_nothing_reaches_a_threshold():
    proba = np.full((10, 4), 0.25)
    y = np.arange(10) % 4
    summary = selective(y, proba)
    assert summary["thresholds"][1] == {"threshold": 0.8, "coverage": 0.0, "accuracy": None}
    assert summary["targets"][0] == {"accuracy": 0.99, "threshold": None, "coverage": 0.0}


def test_threshold_for_is_the_lowest_threshold_that_reaches_the_target():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(5) * 0.4, 800)
    # Right about as often as it is sure (calibrated), so surer answers are righter.
    sure = rng.random(800) < proba.max(axis=1)
    y = np.where(sure, proba.argmax(axis=1), (proba.argmax(axis=1) + 1) % 5)
    confidence, right = proba.max(axis=1), proba.argmax(axis=1) == y
    for target in (0.85, 0.9, 0.97):
        threshold, share = threshold_for(target, y, proba)
        answered = confidence >= threshold
        assert right[answered].mean() >= target and share == pytest.approx(answered.mean())
        # Every lower confidence, used as the threshold, falls short of the target.
        lower = np.unique(confidence[confidence < threshold])
        assert all(right[confidence >= t].mean() < target for t in lower)
    assert threshold_for(0.97, y, proba)[0] > threshold_for(0.85, y, proba)[0]
    # Every image right: the lowest confidence answers them all.
    assert threshold_for(0.99, proba.argmax(axis=1), proba) == (confidence.min(), 1.0)
    assert threshold_for(0.5, np.arange(10) % 4, np.full((10, 4), 0.25)) is None


@pytest.mark.parametrize(
    ("correct", "n"), [(350, 360), (8907, 10000), (3, 7), (1, 1), (0, 5), (360, 360), (0, 1)]
)
def test_accuracy_interval_is_wilsons(correct, n):
    from scipy.stats import binomtest

    expected = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = accuracy_interval(correct, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)
    assert 0.0 <= low <= correct / n <= high <= 1.0
    # All right or all wrong: the bound on that side is exactly 1 or 0, not 0.99999...
    assert (high == 1.0) == (correct == n) and (low == 0.0) == (correct == 0)


def test_accuracy_interval_narrows_with_more_images_and_widens_with_confidence():
    small, large = accuracy_interval(90, 100), accuracy_interval(9000, 10000)
    assert small[1] - small[0] > 5 * (large[1] - large[0])
    loose = accuracy_interval(90, 100, confidence=0.99)
    assert loose[0] < small[0] and loose[1] > small[1]


def test_classification_metrics_keep_the_interval_and_older_runs_get_it_worked_out():
    y, proba = random_predictions()
    metrics = classification_metrics(y, proba, ["a", "b", "c", "d"])
    correct = int((proba.argmax(axis=1) == y).sum())
    assert metrics["test_accuracy_interval"] == list(accuracy_interval(correct, len(y)))
    assert interval_of(metrics) == accuracy_interval(correct, len(y))
    older = {k: v for k, v in metrics.items() if k != "test_accuracy_interval"}
    assert interval_of(older) == pytest.approx(accuracy_interval(correct, len(y)))
    low, high = accuracy_interval(correct, len(y))
    assert interval_text(metrics) == f"95% CI {low:.4f}-{high:.4f}"
    for broken in (
        {},
        {"test_accuracy": float("nan"), "test_samples": 10},
        {"test_accuracy": 0.5, "test_samples": 0},
        {"test_accuracy": 0.5},
    ):
        assert interval_of(broken) is None and interval_text(broken) == ""


def test_a_perfect_loss_is_zero_not_minus_zero():
    loss = cross_entropy(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert loss == 0.0 and f"{loss:.4f}" == "0.0000"
