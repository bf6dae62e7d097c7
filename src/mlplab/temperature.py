"""Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks").

One number T makes a trained network's probabilities as sure as it is right: softmax(z / T)
for the logits z, T > 1 softening an over-confident network, T < 1 sharpening an
under-confident one (label smoothing leaves them so). It never changes which class wins.
T is fitted on the validation split, by the cross-entropy, and folded into the output
layer — softmax((x W + b) / T) = softmax(x (W / T) + b / T) — so the model and its file stay
a plain Keras Sequential, and ONNX export, serving and prediction need nothing new.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlplab.metrics import calibration, cross_entropy

# The temperatures searched: beyond these a network is not worth calibrating by one number.
LOWEST, HIGHEST = 0.05, 20.0
# Probabilities are floored before the log: float32 softmax outputs can be exactly 0.
SMALLEST = 1e-30


def scaled(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(proba) / T): the probabilities of the logits divided by T (a log-softmax
    differs from the logits by a constant per row, which the softmax drops).

    proba: float (n, k) -> float64 (n, k)."""
    logits = np.log(np.clip(proba.astype(np.float64), SMALLEST, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y_true: np.ndarray) -> float:
    """The T in [LOWEST, HIGHEST] with the lowest cross-entropy of ``scaled(proba, T)``.

    proba: float (n, k) probabilities; y_true: int (n,). The cross-entropy is convex in
    1 / T, so its derivative in 1 / T — the mean over images of (the expected log-probability
    under the scaled distribution minus the log-probability of the true class) — rises through
    zero once; bisection on log T finds that point.
    """
    logp = np.log(np.clip(proba.astype(np.float64), SMALLEST, 1.0))
    true = logp[np.arange(len(y_true)), y_true]

    def slope(inverse: float) -> float:
        weights = scaled(proba, 1.0 / inverse)
        return float(np.mean((weights * logp).sum(axis=1) - true))

    low, high = np.log(1.0 / HIGHEST), np.log(1.0 / LOWEST)  # log(1 / T)
    if slope(np.exp(low)) >= 0:
        return HIGHEST
    if slope(np.exp(high)) <= 0:
        return LOWEST
    for _ in range(60):
        middle = (low + high) / 2
        if slope(np.exp(middle)) < 0:
            low = middle
        else:
            high = middle
    return float(1.0 / np.exp((low + high) / 2))


def fold_into_output(model: Any, temperature: float) -> None:
    """Divide the output layer's kernel and bias by ``temperature``: the model's
    probabilities become softmax(logits / T). model: the Sequential ``build_model`` made."""
    import keras

    output = model.layers[-1]
    if not isinstance(output, keras.layers.Dense):
        raise ValueError(f"the model's last layer is {type(output).__name__}, not Dense")
    for variable in output.trainable_variables:
        variable.assign(variable / temperature)


def calibrate(model: Any, val_proba: np.ndarray, y_val: np.ndarray) -> dict[str, Any]:
    """Fit T on the validation split's probabilities and fold it into ``model``.

    Returns what ``metrics.json`` records as ``temperature``: its ``value``, and the
    validation split's cross-entropy and ECE before and after (after is by construction the
    better: the test split's ``calibration`` is the honest measure).
    """
    temperature = fit_temperature(val_proba, y_val)
    fold_into_output(model, temperature)
    after = scaled(val_proba, temperature)
    return {
        "value": temperature,
        "fitted_on": "validation",
        "val_loss_before": cross_entropy(y_val, val_proba),
        "val_loss_after": cross_entropy(y_val, after),
        "val_ece_before": calibration(y_val, val_proba)["ece"],
        "val_ece_after": calibration(y_val, after)["ece"],
    }
