"""Starting weights (``model.init_from``): a new network that begins where a finished run's
network ended instead of at random weights, to train it further or to fine-tune it on
other images of the same size (transfer learning).

What is copied: the pixel scaling (so the copied first layer sees pixels scaled as it
learned them, not by this dataset's own statistics; ``data.scaling`` must name the same
kind), every hidden layer (Dense kernels and biases, batch normalisation's scales and
statistics: ``model.hidden`` and ``model.batch_norm`` must match), and the output layer
when the two tell apart the same classes, each column to its class whatever their order.
Otherwise the output layer is this run's own, initialised from its seed: a new one trained
on top of the copied layers.

Only weights come over. The optimizer's state, the learning-rate schedule and the epoch
count start anew (``mlplab resume`` is what goes on with all of them, in the same run);
dropout, penalties and the rest are this config's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.config import RunConfig
from mlplab.data.scaling import ScalingParams
from mlplab.errors import ConfigError
from mlplab.run_refs import class_order, listed, referenced_run, trained_elsewhere

KEY = "model.init_from"
OUTPUT_LAYER = "softmax"  # mlplab.model.build_model's name for it


@dataclass
class StartingWeights:
    """A finished run's weights, checked to fit a new network, and what to say of them."""

    path: Path
    # The run network's pixel scaling, which the new network is built with (None: unread).
    scaling: ScalingParams | None
    # Layer name -> its weights (NumPy arrays, as Keras' get_weights gives them), for the
    # layers that are copied; the output layer's columns already in this run's class order.
    weights: dict[str, list[np.ndarray]]
    # metrics.json's ``init_from``: which run, how good it was, what was copied.
    described: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def unread(cls, spec: str) -> StartingWeights:
        """Only the path of a run that can no longer be read (a resumed run's, deleted)."""
        return cls(Path(spec), None, {}, {"path": os.path.abspath(spec)})

    def apply(self, model: Any) -> None:
        """Set ``model``'s copied layers to the run's weights: ``model`` is a new
        :func:`mlplab.model.build_model` network built with :attr:`scaling`, not trained
        yet, its optimizer not yet built (so that a weight average starts from them too)."""
        for name, values in self.weights.items():
            model.get_layer(name).set_weights(values)

    def facts(self) -> dict[str, Any]:
        """metrics.json's ``init_from`` (a copy)."""
        return dict(self.described)

    def describe(self, num_classes: int) -> str:
        """What ``train`` prints before training: where it starts, and the notes."""
        return "\n".join([started_line(self.described, num_classes) or "", *self.notes])


def load_starting_weights(
    config: RunConfig,
    dataset: str | None,
    class_names: list[str],
    image_shape: tuple[int, int, int],
) -> StartingWeights:
    """The weights of the run ``config.model.init_from`` names, checked to fit the network
    ``config`` describes for a dataset called ``dataset`` (None: not said, and no note on
    it) with ``class_names`` and images of ``image_shape`` (h, w, c). ConfigError, naming
    the key, when they do not fit."""
    import keras

    from mlplab.model import dense_layers, is_ensemble, learned_weights, scaling_of

    spec = config.model.init_from
    where = f"{KEY} = {spec!r}"
    run = referenced_run(KEY, spec, image_shape, "start from")
    model = run.model
    if is_ensemble(model):
        raise ConfigError(
            f"{where}: it averages several networks (an ensemble); start from one of its "
            "members' runs"
        )
    dense = dense_layers(model)
    hidden = tuple(int(layer.units) for layer in dense[:-1])
    if hidden != tuple(config.model.hidden):
        raise ConfigError(
            f"{where}: its hidden layers are {_sizes(hidden)}, model.hidden = "
            f"{_sizes(config.model.hidden)}: set model.hidden = {_sizes(hidden)} (or train "
            f"that run's own config.toml)"
        )
    normalised = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    if normalised != config.model.batch_norm:
        raise ConfigError(
            f"{where}: its network {'has' if normalised else 'has no'} batch normalisation, "
            f"model.batch_norm = {str(config.model.batch_norm).lower()}"
        )
    theirs = run.config.data.scaling
    if theirs != config.data.scaling:
        raise ConfigError(
            f"{where}: its network takes pixels scaled {theirs!r}, data.scaling = "
            f"{config.data.scaling!r}: set data.scaling = {theirs!r}"
        )
    output_copied = sorted(run.class_names) == sorted(class_names)
    if not hidden and not output_copied:
        raise ConfigError(
            f"{where}: it has no hidden layers and tells apart other classes "
            f"({listed(run.class_names)}) than this dataset's ({listed(class_names)}): "
            "there is nothing to start from"
        )
    weights = learned_weights(model)
    kernel, bias = weights.pop(OUTPUT_LAYER)
    if output_copied:
        order = class_order(run.class_names, list(class_names))
        weights[OUTPUT_LAYER] = [kernel[:, order], bias[order]]
    notes = []
    if hidden and run.config.model.activation != config.model.activation:
        notes.append(
            f"note: {KEY}: its hidden layers learned with {run.config.model.activation}, "
            f"this network applies {config.model.activation} to them"
        )
    elsewhere = dataset and trained_elsewhere(run, dataset, "the network it starts from")
    if elsewhere:
        notes.append(elsewhere)
    described = {
        "path": os.path.abspath(run.path),
        "name": run.config.name,
        "dataset": (run.metrics.get("dataset") or {}).get("name"),
        "test_accuracy": run.metrics.get("test_accuracy"),
        "hidden": list(hidden),
        "output_layer": "copied" if output_copied else "new",
    }
    return StartingWeights(run.path, scaling_of(model), weights, described, notes)


def started_line(facts: dict[str, Any] | None, num_classes: int | None = None) -> str | None:
    """One line on where a network started (``facts``: metrics.json's ``init_from``), for
    train's output, report.txt and the report; None for a run that started at random."""
    if not isinstance(facts, dict):
        return None
    path = facts.get("path")
    if "output_layer" not in facts:  # a run no longer there to describe
        return f"started from {path}"
    accuracy = facts.get("test_accuracy")
    scored = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
    hidden = facts.get("hidden") or []
    if facts.get("output_layer") != "copied":
        classes = f" for {num_classes} classes" if num_classes else ""
        copied = f"its hidden layers {_sizes(hidden)}, with a new output layer{classes}"
    elif hidden:
        copied = f"its hidden layers {_sizes(hidden)} and its output layer"
    else:
        copied = "its output layer (it has no hidden layers)"
    return f"started from {path} ({facts.get('name')}{scored}): {copied}"


def _sizes(hidden: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(units) for units in hidden) + "]"
