import keras
import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from mlplab.metrics import classification_metrics, cross_entropy, report_text


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
