"""hidden.png's numbers: each hidden layer's outputs, dead ReLU units, saturated sigmoids."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from mlplab.activations import hidden_outputs, summarize
from mlplab.config import ModelConfig
from mlplab.data.scaling import ScalingParams
from mlplab.model import build_model
from mlplab.report.plots import hidden_png


def _model(**settings) -> keras.Sequential:
    keras.utils.set_random_seed(0)  # the same weights whatever ran before
    scaling = ScalingParams(np.full(16, 100, np.float32), np.full(16, 50, np.float32))
    return build_model(ModelConfig(**settings), (4, 4, 1), 3, scaling)


def test_hidden_outputs_are_each_layers_activations():
    model = _model(hidden=[8, 4], dropout=0.5)
    x = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
    (first_name, first), (second_name, second) = hidden_outputs(model, x)
    assert first_name == second_name == "relu"
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense[0].weights)
    scaled = (x.reshape(10, -1).astype(np.float32) - 100) / 50
    np.testing.assert_allclose(first, np.maximum(scaled @ kernel + bias, 0), atol=1e-5)
    assert second.shape == (10, 4) and second.dtype == np.float32
    # The last hidden output, through the output layer, is the model's answer (no dropout).
    np.testing.assert_allclose(dense[-1](second), model.predict(x, verbose=0), atol=1e-6)
    assert hidden_outputs(_model(hidden=[]), x) == []


def test_with_batch_norm_the_output_is_after_the_norm_and_the_activation():
    model = _model(hidden=[6], batch_norm=True, activation="tanh")
    x = np.random.default_rng(1).integers(0, 256, (5, 4, 4, 1), dtype=np.uint8)
    ((activation, hidden),) = hidden_outputs(model, x)
    # tanh's range; float32 rounds a saturated unit to exactly 1.
    assert activation == "tanh" and np.all(np.abs(hidden) <= 1)
    np.testing.assert_allclose(model.layers[-1](hidden), model.predict(x, verbose=0), atol=1e-6)


def test_dead_relu_units_and_saturated_sigmoids_are_counted():
    relu = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0]], np.float32)
    summary = summarize(relu, "relu")
    assert summary.inactive == 0.5 and summary.saturated is None and summary.units == 4
    assert summary.describe() == "50% of units never active" and summary.bounds is None
    sigmoid = np.array([[0.01, 0.5], [0.99, 0.3]], np.float32)
    summary = summarize(sigmoid, "sigmoid")
    assert summary.saturated == 0.5 and summary.inactive is None
    assert summary.describe() == "50% of outputs saturated" and summary.bounds == (0.0, 1.0)
    assert summarize(np.array([[-0.97, 0.0, 0.5, 0.99]]), "tanh").saturated == 0.5
    assert summarize(np.array([[-0.1, 0.2]]), "leaky_relu").inactive == 0.5


@pytest.mark.parametrize("layers", [1, 7])
def test_hidden_png_draws_a_panel_per_layer(layers, tmp_path):
    rng = np.random.default_rng(2)
    outputs = [rng.random((50, 8), dtype=np.float32) for _ in range(layers)]
    png = hidden_png(outputs, [summarize(o, "sigmoid") for o in outputs], "net")
    (tmp_path / "h.png").write_bytes(png)
    with Image.open(tmp_path / "h.png") as image:
        assert image.width >= 400 and image.height >= 300
