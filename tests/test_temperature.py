"""train.calibrate: temperature scaling fitted on the validation split, folded into the model."""

from __future__ import annotations

import numpy as np
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import ModelConfig
from mlplab.data.scaling import scaling_params
from mlplab.errors import ConfigError
from mlplab.estimator import MLPClassifier
from mlplab.metrics import calibration
from mlplab.model import build_model
from mlplab.temperature import HIGHEST, LOWEST, fit_temperature, fold_into_output, scaled
from tests.datagen import toy_images


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(true_temperature):
    """Labels drawn from softmax(z / T): the network's softmax(z) is off by exactly T."""
    rng = np.random.default_rng(0)
    z = 3 * rng.normal(size=(20000, 5))
    drawn = softmax(z / true_temperature)
    y = (drawn.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    assert fit_temperature(softmax(z), y) == pytest.approx(true_temperature, rel=0.05)


def test_scaling_probabilities_is_dividing_the_logits():
    z = np.random.default_rng(1).normal(size=(50, 4)) * 4
    np.testing.assert_allclose(scaled(softmax(z), 3.0), softmax(z / 3.0), atol=1e-12)


def test_the_temperature_stays_within_its_bounds():
    y = np.array([0, 1, 0, 1])
    always_right = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    assert fit_temperature(always_right, y) == LOWEST
    assert fit_temperature(always_right, 1 - y) == HIGHEST  # always wrong: flatten it


def test_folding_the_temperature_into_the_output_layer():
    x, _ = toy_images(30, 3, size=4)
    model = build_model(ModelConfig(hidden=(8,)), (4, 4, 1), 3, scaling_params(x, "unit"))
    before = np.asarray(model.predict(x, verbose=0), np.float64)
    fold_into_output(model, 2.5)
    after = np.asarray(model.predict(x, verbose=0), np.float64)
    np.testing.assert_allclose(after, scaled(before, 2.5), atol=1e-6)


def test_a_calibrated_run_keeps_its_labels_and_narrows_the_gap(tmp_path, digits_data):
    """Label smoothing leaves digits-mlp under-confident (ECE ~12%): the temperature sharpens
    it, the same network otherwise, image for image."""
    overrides = {"train.epochs": 10, "train.label_smoothing": 0.1}
    plain = mlplab.train(overrides=overrides, out=tmp_path, verbose=False, report=False)
    calibrated = mlplab.train(
        overrides={**overrides, "train.calibrate": True}, out=tmp_path, verbose=False
    )
    temperature = calibrated.metrics["temperature"]
    assert temperature["value"] < 1 and temperature["fitted_on"] == "validation"
    assert temperature["val_ece_after"] < temperature["val_ece_before"] / 2
    assert temperature["val_loss_after"] < temperature["val_loss_before"]
    assert "temperature" not in plain.metrics

    # The training is the same; validation scores are the network's before the temperature.
    def without_seconds(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert without_seconds(calibrated.history) == without_seconds(plain.history)
    assert calibrated.metrics["val_loss"] == plain.metrics["val_loss"]
    assert calibrated.metrics["test_accuracy"] == plain.metrics["test_accuracy"]
    assert calibrated.metrics["calibration"]["ece"] < plain.metrics["calibration"]["ece"] / 2
    x = digits_data.x_test
    reloaded = mlplab.load_run(calibrated.path)  # model.keras holds the temperature
    np.testing.assert_allclose(
        reloaded.predict(x), scaled(plain.predict(x), temperature["value"]), atol=1e-5
    )
    page = (calibrated.path / "report.html").read_text()
    assert "sharpened: it was under-confident" in page


def test_the_train_command_says_what_it_calibrated(tmp_path, capsys):
    args = ["train", "--epochs", "3", "--set", "train.calibrate=true", "--no-report"]
    assert main([*args, "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "calibrated: temperature " in out and "test calibration error (ECE) " in out


@pytest.mark.parametrize("validation", ["0", '"test"'])
def test_calibrating_needs_a_validation_split(tmp_path, capsys, validation):
    code = main(
        [
            "train",
            "--set",
            "train.calibrate=true",
            "--set",
            f"data.validation={validation}",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "train.calibrate = true needs a validation split" in err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_the_estimator_calibrates_on_its_own_validation_split():
    x, y = toy_images(120, 3, size=6)
    clf = MLPClassifier(epochs=5, hidden=[16], calibrate=True, label_smoothing=0.2).fit(x, y)
    assert clf.config_.data.validation == 0.1 and clf.temperature_ < 1
    assert MLPClassifier(epochs=5, hidden=[16]).fit(x, y).temperature_ is None
    with pytest.raises(ConfigError, match="needs a validation split"):
        MLPClassifier("fast-fashion-mnist", calibrate=True).resolved_config()
    config = MLPClassifier("fast-fashion-mnist", calibrate=True, validation=0.2).resolved_config()
    assert config.data.validation == 0.2 and config.train.calibrate


def test_calibration_bins_of_the_scaled_probabilities_match_the_recorded_ones(tmp_path):
    run = mlplab.train(
        overrides={"train.epochs": 3, "train.calibrate": True},
        out=tmp_path,
        verbose=False,
        report=False,
    )
    data = np.load(run.path / "test_predictions.npz")
    assert run.metrics["calibration"] == calibration(data["y_true"], data["proba"])
