"""mlplab.gradients: how strongly each layer learns, at the start and after training."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

import mlplab
from mlplab.api import resolve_config
from mlplab.data.scaling import ScalingParams
from mlplab.gradients import LayerGradients, initial_weights, layer_gradients
from mlplab.model import new_model

from .test_report import run_cli

DEEP = {"model.hidden": [32] * 5, "model.kernel_initializer": "glorot_uniform"}


def fresh(overrides: dict, data: mlplab.data.Dataset) -> tuple[keras.Model, object]:
    """The config's network as training starts it, on ``data``'s images."""
    config = resolve_config("digits-mlp", overrides=overrides)
    x = data.x_train.reshape(len(data.x_train), -1).astype(np.float32)
    scaling = ScalingParams(offset=x.mean(axis=0), scale=np.maximum(x.std(axis=0), 1.0))
    return new_model(config, data.image_shape, data.num_classes, scaling, 10), config


def test_the_initial_weights_are_those_training_starts_from(digits_data):
    settings = {**DEEP, "model.batch_norm": True, "model.dropout": 0.2, "train.seed": 7}
    model, config = fresh(settings, digits_data)
    started = [np.asarray(v.value) for v in model.trainable_variables]
    for variable in model.trainable_variables:  # as if trained
        variable.assign(variable.value + 1.0)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    rebuilt = [
        value
        for trainable, _ in initial_weights(model, config, digits_data.class_names)
        for value in trainable
    ]
    assert np.random.random() == expected_next  # the caller's global generator is untouched
    assert len(rebuilt) == len(started)
    for value, original in zip(rebuilt, started, strict=True):
        np.testing.assert_array_equal(np.asarray(value), original)


def test_a_softmax_layers_gradient_is_the_textbook_one(digits_data):
    model, config = fresh({"model.hidden": []}, digits_data)
    measured = layer_gradients(
        model, config, digits_data.x_train, digits_data.y_train, digits_data.class_names
    )
    assert measured.layers == ["softmax"] and measured.images == 1000
    assert measured.initial == measured.trained  # nothing trained yet
    # d(mean cross-entropy)/dW = X^T (P - Y) / n, for the scaled inputs X.
    pick = np.sort(np.random.default_rng(0).choice(len(digits_data.y_train), 1000, False))
    x = np.asarray(model.get_layer("scaling")(digits_data.x_train[pick].reshape(1000, -1)))
    p = model.predict(digits_data.x_train[pick], verbose=0).astype(np.float64)
    p[np.arange(1000), digits_data.y_train[pick]] -= 1
    gradient = x.astype(np.float64).T @ p / 1000
    assert measured.initial[0] == pytest.approx(np.sqrt(np.mean(gradient**2)), rel=1e-4)
    assert measured.describe() == "one layer: nothing for a gradient to vanish through"


def test_deep_sigmoid_gradients_vanish_and_relu_ones_do_not(digits_data):
    x, y, names = digits_data.x_train, digits_data.y_train, digits_data.class_names
    sigmoid = layer_gradients(
        *fresh({**DEEP, "model.activation": "sigmoid"}, digits_data), x, y, names
    )
    relu = layer_gradients(
        *fresh({**DEEP, "model.kernel_initializer": "he_uniform"}, digits_data), x, y, names
    )
    assert sigmoid.labels == ["32 sigmoid"] * 5 + ["10 softmax"]
    # Each sigmoid layer passes back at most a quarter of the signal.
    assert sigmoid.first_to_last < 0.01 and sigmoid.vanishing()
    assert np.all(np.diff(sigmoid.initial) > 0)  # smaller and smaller towards the input
    assert relu.first_to_last > 0.05 and not relu.vanishing()
    assert "(vanishing)" in sigmoid.describe() and "(vanishing)" not in relu.describe()
    assert LayerGradients.from_dict(json.loads(json.dumps(sigmoid.as_dict()))) == sigmoid
    batch_norm = layer_gradients(
        *fresh({**DEEP, "model.activation": "sigmoid", "model.batch_norm": True}, digits_data),
        x,
        y,
        names,
    )
    assert batch_norm.labels[0] == "32 sigmoid" and batch_norm.first_to_last > 10 * (
        sigmoid.first_to_last
    )


def test_a_run_records_them_and_its_report_draws_them(digits_run, tmp_path, capsys):
    recorded = LayerGradients.from_dict(digits_run.metrics["gradients"])
    assert recorded.layers == ["dense_1", "dense_2", "softmax"]
    assert all(value > 0 for value in recorded.initial + recorded.trained)
    html = (digits_run.path / "report.html").read_text(encoding="utf-8")
    assert "<h2>How strongly each layer learns</h2>" in html
    assert (digits_run.path / "gradients.png").is_file()
    # A run from before they were measured: `mlplab report` measures them, the same numbers.
    older = shutil.copytree(digits_run.path, tmp_path / "older")
    metrics = json.loads((older / "metrics.json").read_text())
    del metrics["gradients"]
    (older / "metrics.json").write_text(json.dumps(metrics))
    (older / "gradients.png").unlink()
    code, _, _ = run_cli(capsys, "report", str(older))
    assert code == 0 and (older / "gradients.png").is_file()
    data = mlplab.report.build.gather(mlplab.record.read_record(older))
    assert data.gradients.initial == pytest.approx(recorded.initial, rel=1e-5)
    assert data.gradients.trained == pytest.approx(recorded.trained, rel=1e-5)
