"""What the hidden layers output: dead ReLU units, saturated sigmoid and tanh units.

The classic lessons of the MLP tutorials (sigmoid units that saturate and stop learning, ReLU
units that never switch on again) made visible for a trained model, from a forward pass over
training images at inference (dropout off, batch norm's moving statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

# Bounded activations: (low, high) of their output. A unit's output within SATURATION of the
# range's ends (2% of its width) is saturated: its gradient there is under ~4% of its peak.
BOUNDS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
SATURATION = 0.02


def hidden_outputs(model: keras.Model, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each hidden layer's activation and output for images ``x`` at inference: what the
    next Dense layer reads (after batch norm and the activation; dropout is off then).

    x: uint8 (n, h, w, c). Returns (activation name, float32 (n, units)) per hidden layer,
    first to last, the names read from the model's layers; [] without hidden layers.
    """
    outputs = []
    h = keras.ops.convert_to_tensor(x)
    dense_seen = 0
    activation = "linear"
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            if dense_seen:
                outputs.append((activation, np.asarray(keras.ops.convert_to_numpy(h), np.float32)))
            dense_seen += 1
        if isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
            # With batch norm the Dense layer is linear and an Activation layer follows it.
            activation = str(layer.get_config()["activation"])
        h = layer(h, training=False)
    return outputs


@dataclass(frozen=True)
class LayerSummary:
    """One hidden layer's outputs over a sample of images.

    units: its width. inactive: share of units that output nothing above 0 for any image
    (dead ReLUs; None for sigmoid and tanh, which always do). saturated: share of outputs
    within 2% of a bounded activation's ends (None for unbounded ones).
    """

    units: int
    activation: str
    mean: float
    inactive: float | None
    saturated: float | None

    @property
    def bounds(self) -> tuple[float, float] | None:
        """(low, high) of a bounded activation's output, or None."""
        return BOUNDS.get(self.activation)

    def describe(self) -> str:
        """'31% of units never active', '18% of outputs saturated', or ''."""
        if self.saturated is not None:
            return f"{100 * self.saturated:.0f}% of outputs saturated"
        if self.inactive is not None:
            return f"{100 * self.inactive:.0f}% of units never active"
        return ""


def summarize(outputs: np.ndarray, activation: str) -> LayerSummary:
    """outputs: float32 (n, units) of one hidden layer; activation: its name in the config."""
    units = outputs.shape[1]
    mean = float(outputs.mean()) if outputs.size else float("nan")
    if activation in BOUNDS:
        low, high = BOUNDS[activation]
        margin = SATURATION * (high - low)
        near_end = (outputs <= low + margin) | (outputs >= high - margin)
        return LayerSummary(units, activation, mean, None, float(near_end.mean()))
    never_on = (outputs <= 0).all(axis=0)
    return LayerSummary(units, activation, mean, float(never_on.mean()), None)
