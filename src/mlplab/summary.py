"""What a network is made of, layer by layer: Keras' ``model.summary()`` as data.

The report's "Model" section, ``metrics.json``'s ``model`` and the line ``mlplab train``
starts with read it. Parameters are counted as Keras counts them: trainable (weights and
biases, batch norm's scale and shift) and not (batch norm's moving statistics); the input
scaling's means and stds are constants of its layer, not parameters. Multiply-adds count
the Dense layers' products for one image, the arithmetic that sets the speed of an MLP.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LayerRow:
    """One layer: its name, Keras class, output size per image (units, or h x w x c before
    Flatten), activation (None where it has none), and parameters."""

    name: str
    kind: str
    output: str
    activation: str | None
    parameters: int
    trainable: int


@dataclass(frozen=True)
class ModelSummary:
    """A network's layers and totals. An ensemble has a row per member (its layer sizes
    as ``kind``), then its averaging layer."""

    layers: list[LayerRow]
    parameters: int
    trainable: int
    multiply_adds: int

    @property
    def weight_bytes(self) -> int:
        """Bytes the parameters take as float32 (what model.keras stores)."""
        return 4 * self.parameters

    def totals(self) -> dict[str, int]:
        """What ``metrics.json``'s ``model`` holds."""
        return {
            "parameters": self.parameters,
            "trainable_parameters": self.trainable,
            "multiply_adds": self.multiply_adds,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.totals(), "layers": [asdict(row) for row in self.layers]}


def _count(weights: list[Any]) -> int:
    return sum(math.prod(int(d) for d in weight.shape) for weight in weights)


def _output(layer: Any) -> str:
    try:
        shape = [int(d) for d in layer.output.shape[1:]]
    except (AttributeError, ValueError, TypeError):  # not built, or no single output
        return "?"
    return "x".join(map(str, shape))


def _multiply_adds(networks: list[Any]) -> int:
    from mlplab.model import dense_layers

    return sum(
        int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        for network in networks
        for layer in dense_layers(network)
    )


def _sizes(network: Any) -> str:
    """A member network as its layer sizes: "784-256-10"."""
    from mlplab.model import dense_layers

    dense = dense_layers(network)
    if not dense:
        return type(network).__name__
    return "-".join([str(int(dense[0].kernel.shape[0])), *(str(d.units) for d in dense)])


def model_summary(model: Any) -> ModelSummary:
    """The layers of a built Keras model (what :func:`mlplab.model.build_model` or
    :func:`mlplab.model.ensemble_model` makes) with their parameter counts."""
    from mlplab.model import is_ensemble, members

    rows = []
    if is_ensemble(model):
        networks = members(model)
        for network in networks:
            rows.append(
                LayerRow(
                    network.name,
                    f"network {_sizes(network)}",
                    _output(network),
                    None,
                    _count(network.weights),
                    _count(network.trainable_weights),
                )
            )
        rows += [
            _row(layer)
            for layer in model.layers
            if not any(layer is network for network in networks) and not _is_input(layer)
        ]
    else:
        rows = [_row(layer) for layer in model.layers]
    return ModelSummary(
        layers=rows,
        parameters=_count(model.weights),
        trainable=_count(model.trainable_weights),
        multiply_adds=_multiply_adds(members(model)),
    )


def _is_input(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.layers.InputLayer)


def _row(layer: Any) -> LayerRow:
    config = layer.get_config()
    activation = config.get("activation")
    return LayerRow(
        name=layer.name,
        kind=type(layer).__name__,
        output=_output(layer),
        activation=None if activation in (None, "linear") else str(activation),
        parameters=_count(layer.weights),
        trainable=_count(layer.trainable_weights),
    )


def describe(summary: ModelSummary) -> str:
    """One line: "50,826 parameters (all trainable), 199 KiB as float32; 50,432
    multiply-adds per image"."""
    kib = summary.weight_bytes / 1024
    size = f"{kib / 1024:,.1f} MiB" if kib >= 1024 else f"{kib:,.0f} KiB"
    trainable = (
        "all trainable"
        if summary.trainable == summary.parameters
        else f"{summary.trainable:,} trainable"
    )
    return (
        f"{summary.parameters:,} parameters ({trainable}), {size} as float32; "
        f"{summary.multiply_adds:,} multiply-adds per image"
    )
