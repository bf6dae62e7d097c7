"""A trained Keras MLP -> an ONNX model with the same contract: uint8 pixels in, probabilities out.

The graph is written layer by layer from the Keras model itself (not from the config), so it
is exactly what ``model.keras`` computes at inference: Cast -> Flatten -> (x - mean) / std ->
[Gemm -> BatchNormalization -> activation]... -> Softmax; Dropout is the identity there.
Opset 17 and IR version 8 keep the file loadable by onnxruntime >= 1.13 and onnxruntime-web.

With ``int8=True`` each Dense layer's matrix product is done in 8-bit integers, as TFLite's
"dynamic range" quantization does: the kernel is stored as int8 with a scale per output unit
(symmetric, -127..127), and each image's input to the layer is quantized to uint8 when it
arrives, with its own scale and zero point (so an image gets the same answer whatever else is
in the batch). The product is an integer MatMulInteger; bias, batch norm, activations and
softmax stay in float32. The file is about 4x smaller.

Keras' own ``model.export(format="onnx")`` goes through TensorFlow; an MLP needs none of that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab._io import write_named_file
from mlplab._version import __version__
from mlplab.errors import MlplabError, RunError
from mlplab.runs import MODEL_FILE, Run, load_run

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
ONNX_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
INT8_SCHEME = (
    "int8 dynamic range: Dense kernels int8 with a scale per output unit, each image's layer "
    "input uint8 with its own scale and zero point, integer MatMulInteger"
)
INSTALL_HINT = "pip install onnx onnxruntime (the extra mlplab[onnx])"

# jax.nn.selu's constants (what Keras computes on JAX); ONNX's defaults differ in the 8th digit.
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
# keras.activations.leaky_relu's default slope (ONNX's LeakyRelu defaults to 0.01).
LEAKY_RELU_SLOPE = 0.2


def import_onnx() -> Any:
    """The ``onnx`` package, or one line saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise MlplabError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


class _Graph:
    """Nodes and weights (initializers) of a graph being built, one tensor after another."""

    def __init__(self, onnx: Any, int8: bool = False) -> None:
        self.onnx = onnx
        self.int8 = int8  # Dense layers as integer matrix products (see the module's doc)
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        # Put before every name made from here on: an ensemble's members have the same
        # layer names, each written under its own (member_1/dense_1/kernel...).
        self.prefix = ""

    def weight(self, name: str, value: np.ndarray, dtype: Any = np.float32) -> str:
        array = np.ascontiguousarray(value, dtype=dtype)
        name = self.prefix + name
        self.weights.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        output = self.prefix + output
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes)
        )
        return output


def _activation(graph: _Graph, name: str, x: str, out: str) -> str:
    """Append Keras' activation ``name`` (a string from the layer's config) applied to ``x``."""
    simple: dict[str, tuple[str, dict[str, float]]] = {
        "relu": ("Relu", {}),
        "sigmoid": ("Sigmoid", {}),
        "tanh": ("Tanh", {}),
        "elu": ("Elu", {"alpha": 1.0}),
        "selu": ("Selu", {"alpha": SELU_ALPHA, "gamma": SELU_SCALE}),
        "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_RELU_SLOPE}),
        "softmax": ("Softmax", {"axis": -1}),
    }
    if name == "linear":
        return x
    if name in simple:
        op, attributes = simple[name]
        return graph.node(op, [x], out, **attributes)
    if name == "gelu":  # Keras' "gelu" is the exact one: x * (1 + erf(x / sqrt 2)) / 2
        root2 = graph.weight(f"{out}/sqrt2", np.array(math.sqrt(2.0)))
        one = graph.weight(f"{out}/one", np.array(1.0))
        half = graph.weight(f"{out}/half", np.array(0.5))
        erf = graph.node("Erf", [graph.node("Div", [x, root2], f"{out}/scaled")], f"{out}/erf")
        gate = graph.node("Mul", [graph.node("Add", [erf, one], f"{out}/1+erf"), half], f"{out}/g")
        return graph.node("Mul", [x, gate], out)
    raise MlplabError(f"activation {name!r} has no ONNX export in mlplab")


def _array(variable: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _normalization(graph: _Graph, layer: Any, x: str) -> str:
    """(x - mean) / max(sqrt(variance), epsilon), as keras.layers.Normalization computes it."""
    import keras

    if layer.invert:
        raise MlplabError(f"layer {layer.name!r}: an inverted Normalization cannot be exported")
    mean = _array(layer.mean).reshape(-1)
    std = np.maximum(np.sqrt(_array(layer.variance)), np.float32(keras.config.epsilon()))
    centred = graph.node("Sub", [x, graph.weight(f"{layer.name}/mean", mean)], f"{layer.name}/c")
    return graph.node(
        "Div", [centred, graph.weight(f"{layer.name}/std", std.reshape(-1))], layer.name
    )


def _dense(graph: _Graph, layer: Any, x: str) -> str:
    if graph.int8:
        y = _int8_product(graph, layer.name, x, _array(layer.kernel))
        if layer.use_bias:
            bias = graph.weight(f"{layer.name}/bias", _array(layer.bias))
            y = graph.node("Add", [y, bias], f"{layer.name}/linear")
    elif layer.use_bias:
        kernel = graph.weight(f"{layer.name}/kernel", _array(layer.kernel))
        bias = graph.weight(f"{layer.name}/bias", _array(layer.bias))
        y = graph.node("Gemm", [x, kernel, bias], f"{layer.name}/linear")
    else:
        kernel = graph.weight(f"{layer.name}/kernel", _array(layer.kernel))
        y = graph.node("MatMul", [x, kernel], f"{layer.name}/linear")
    return _activation(graph, layer.get_config()["activation"], y, layer.name)


def quantize_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (inputs, units) -> int8 (inputs, units) and float32 (units,) scales with
    kernel ~= int8 * scale: symmetric, one scale per output unit, -127..127."""
    largest = np.max(np.abs(kernel), axis=0)
    scale = np.where(largest > 0, largest / 127, 1).astype(np.float32)
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 (n, k) -> uint8 (n, k), float32 scale (n, 1), float32 zero point (n, 1) with
    x ~= (uint8 - zero point) * scale: each row its own range, widened to hold 0 so that 0
    is exact. NumPy's twin of what the int8 graph computes (for tests and the docs)."""
    low = np.minimum(x.min(axis=1, keepdims=True), 0)
    high = np.maximum(x.max(axis=1, keepdims=True), 0)
    scale = np.maximum((high - low) / 255, np.float32(SMALLEST_SCALE)).astype(np.float32)
    zero = np.round(-low / scale)
    return np.clip(np.round(x / scale) + zero, 0, 255).astype(np.uint8), scale, zero


# A row of zeros has no range: any positive scale quantizes it exactly, as zeros.
SMALLEST_SCALE = 1e-30


def _int8_product(graph: _Graph, name: str, x: str, kernel: np.ndarray) -> str:
    """x @ kernel with int8 arithmetic (float32 (n, units) out): quantize_rows(x) and
    quantize_kernel(kernel), an integer MatMulInteger of the two, then back to float:
    (q @ k - zero * column sums of k) * row scale * unit scale. The zero point is taken out
    after the product because onnxruntime's MatMulInteger takes one zero point, not one per
    row."""
    scale, zero, quantized = _quantize_rows(graph, name, x)
    weights, unit_scale = quantize_kernel(kernel)
    int_kernel = graph.weight(f"{name}/kernel_int8", weights, np.int8)
    product = graph.node("MatMulInteger", [quantized, int_kernel], f"{name}/int32")
    as_float = graph.node("Cast", [product], f"{name}/int32_f", to=graph.onnx.TensorProto.FLOAT)
    column_sums = weights.astype(np.int64).sum(axis=0).astype(np.float32)
    sums = graph.weight(f"{name}/kernel_column_sums", column_sums)
    offset = graph.node("Mul", [zero, sums], f"{name}/zero_offset")
    centred = graph.node("Sub", [as_float, offset], f"{name}/centred")
    row_scaled = graph.node("Mul", [centred, scale], f"{name}/row_scaled")
    units = graph.weight(f"{name}/kernel_scale", unit_scale)
    return graph.node("Mul", [row_scaled, units], f"{name}/product")


def _quantize_rows(graph: _Graph, name: str, x: str) -> tuple[str, str, str]:
    """What quantize_rows computes, as graph nodes: the float32 (n, 1) scale and zero point
    of each row of ``x``, and ``x`` as uint8 (n, k) (one QuantizeLinear along the rows)."""
    n = f"{name}/"
    zero_f = graph.weight(n + "0", np.array(0.0))
    low = graph.node("Min", [graph.node("ReduceMin", [x], n + "min", axes=[1]), zero_f], n + "low")
    high = graph.node(
        "Max", [graph.node("ReduceMax", [x], n + "max", axes=[1]), zero_f], n + "high"
    )
    span = graph.node("Sub", [high, low], n + "range")
    step = graph.node("Div", [span, graph.weight(n + "255", np.array(255.0))], n + "step")
    smallest = graph.weight(n + "smallest", np.array(SMALLEST_SCALE))
    scale = graph.node("Max", [step, smallest], n + "row_scale")
    minus_low = graph.node("Neg", [low], n + "-low")
    zero = graph.node(
        "Round", [graph.node("Div", [minus_low, scale], n + "-low/s")], n + "row_zero"
    )
    # QuantizeLinear along axis 0 takes (n,) scales and uint8 zero points.
    rows = graph.weight(n + "rows", np.array([-1]), np.int64)
    scale_n = graph.node("Reshape", [scale, rows], n + "scale_n")
    zero_n = graph.node("Reshape", [zero, rows], n + "zero_n")
    zero_u8 = graph.node("Cast", [zero_n], n + "zero_u8", to=graph.onnx.TensorProto.UINT8)
    quantized = graph.node("QuantizeLinear", [x, scale_n, zero_u8], n + "uint8", axis=0)
    return scale, zero, quantized


def _batch_norm(graph: _Graph, layer: Any, x: str) -> str:
    units = int(layer.moving_mean.shape[-1])
    gamma = _array(layer.gamma) if layer.scale else np.ones(units, np.float32)
    beta = _array(layer.beta) if layer.center else np.zeros(units, np.float32)
    name = layer.name
    inputs = [
        x,
        graph.weight(f"{name}/gamma", gamma),
        graph.weight(f"{name}/beta", beta),
        graph.weight(f"{name}/moving_mean", _array(layer.moving_mean)),
        graph.weight(f"{name}/moving_variance", _array(layer.moving_variance)),
    ]
    return graph.node("BatchNormalization", inputs, name, epsilon=float(layer.epsilon))


def _layer_writers() -> dict[type, Callable[[_Graph, Any, str], str]]:
    import keras

    layers = keras.layers
    return {
        layers.Flatten: lambda graph, layer, x: graph.node("Flatten", [x], layer.name, axis=1),
        layers.Normalization: _normalization,
        layers.Dense: _dense,
        layers.BatchNormalization: _batch_norm,
        layers.Activation: lambda graph, layer, x: _activation(
            graph, layer.get_config()["activation"], x, layer.name
        ),
        layers.Dropout: lambda graph, layer, x: x,  # the identity at inference
    }


def to_onnx(model: Any, metadata: dict[str, str] | None = None, int8: bool = False) -> bytes:
    """Serialize a Keras Sequential MLP as an ONNX model (bytes of a ``.onnx`` file).

    model: uint8 input (batch, h, w, c) built from Flatten, Normalization, Dense,
    BatchNormalization, Activation and Dropout layers (what :func:`mlplab.model.build_model`
    makes), or an ensemble of such networks (:func:`mlplab.model.ensemble_model`: each
    member's graph under its name, then a Mean of their probabilities). The ONNX model takes
    uint8 ``pixels`` (batch, h, w, c) and returns float32 ``probabilities`` (batch,
    classes). metadata: string key/values stored in the file. int8: the Dense layers'
    products in 8-bit integers (the module's doc says how).
    MlplabError for a layer or activation that has no export.
    """
    from mlplab.model import is_ensemble, members

    onnx = import_onnx()
    helper = onnx.helper
    writers = _layer_writers()
    graph = _Graph(onnx, int8)
    shape = tuple(int(d) for d in model.input_shape[1:])
    pixels = graph.node("Cast", [INPUT_NAME], "float_pixels", to=onnx.TensorProto.FLOAT)
    outputs = []
    for member in members(model):
        graph.prefix = f"{member.name}/" if is_ensemble(model) else ""
        x = pixels
        for layer in member.layers:
            writer = writers.get(type(layer))
            if writer is None:
                raise MlplabError(
                    f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX export in mlplab"
                )
            x = writer(graph, layer, x)
        outputs.append(x)
    graph.prefix = ""
    if len(outputs) > 1:
        outputs = [graph.node("Mean", outputs, "mean")]
    graph.nodes.append(helper.make_node("Identity", outputs, [OUTPUT_NAME], name=OUTPUT_NAME))
    classes = int(model.output_shape[-1])
    built = helper.make_graph(
        graph.nodes,
        model.name,
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.UINT8, ["batch", *shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["batch", classes])],
        initializer=graph.weights,
    )
    proto = helper.make_model(
        built,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="mlplab",
        ir_version=IR_VERSION,
        doc_string=(
            f"{model.name}: uint8 pixels (batch, {', '.join(map(str, shape))}) as the training "
            f"images were stored -> float32 class probabilities (batch, {classes})"
            + (f"; {INT8_SCHEME}" if int8 else "")
        ),
    )
    for key, value in (metadata or {}).items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def onnx_runner(
    data: bytes, runtime: str = "auto"
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A function uint8 (n, h, w, c) -> float32 (n, classes) that runs the ONNX model, and the
    runtime's name: onnxruntime when it is installed (``runtime="auto"``), else (or with
    ``runtime="reference"``) onnx's own reference evaluator in NumPy."""
    if runtime == "auto":
        try:
            import onnxruntime
        except ImportError:
            runtime = "reference"
        else:
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
            return (
                lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0],
                f"onnxruntime {onnxruntime.__version__}",
            )
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(import_onnx().load_from_string(data))
    return (
        lambda x: np.asarray(evaluator.run([OUTPUT_NAME], {INPUT_NAME: x})[0], np.float32),
        "onnx reference evaluator",
    )


# The exported model must give model.keras' probabilities to float32 rounding (measured:
# up to ~6e-7); a larger difference means the export is wrong, and nothing is written.
TOLERANCE = 1e-4
RANDOM_IMAGES = 256
# An int8 model rounds, so it is held to what matters instead: model.keras' label for at
# least this share of the images, and (on the test split) at most this much accuracy lost.
# Measured on Fashion-MNIST and digits: 99.85-100% alike, -0.03 to +0.04 points.
INT8_MIN_SAME_LABEL = 0.97
INT8_MAX_ACCURACY_LOSS = 0.01


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and how the file was checked.

    checked_on: the images both models were run on ("360 test images of digits", or
    random pixels when the run's dataset is not on this machine); max_difference: the largest
    absolute difference of a probability; same_label: images both models label alike;
    accuracy: the ONNX model's test accuracy and keras_accuracy model.keras' on the same
    images (None on random pixels); int8: the Dense products are 8-bit integers.
    """

    path: Path
    size: int
    runtime: str
    checked_on: str
    images: int
    max_difference: float
    same_label: int
    accuracy: float | None
    keras_accuracy: float | None = None
    int8: bool = False


def _metadata(run: Run, int8: bool) -> dict[str, str]:
    """What a program using the file needs to know, stored in it as string key/values."""
    facts = run.metrics["dataset"]
    return {
        "mlplab_version": __version__,
        "run": run.path.name,
        "name": run.config.name,
        "dataset": str(facts["name"]),
        "classes": json.dumps(run.class_names),
        "image_shape": json.dumps(list(run.image_shape)),
        # Border brightness of the training images, 0..255: below ~128, light strokes on a
        # dark background (a dark-on-light drawing must be inverted first, as predict does).
        "background": json.dumps(facts.get("background")),
        "test_accuracy": json.dumps(run.metrics.get("test_accuracy")),
        "calibration_error": json.dumps(run.calibration_error),
        "temperature": json.dumps(run.temperature),
        "quantization": INT8_SCHEME if int8 else "none (float32)",
    }


def _check_images(run: Run) -> tuple[np.ndarray, np.ndarray | None, str]:
    """uint8 (n, h, w, c) images to run both models on, their labels (None if random), and
    what they are: the run's test split when its dataset is here (never downloaded for
    this), else seeded random pixels."""
    from mlplab.api import read_dataset

    try:
        data = read_dataset(run.config.data, offline=True)
    except MlplabError:
        data = None
    if data is not None and data.image_shape == run.image_shape:
        return data.x_test, data.y_test, f"{len(data.y_test)} test images of {data.name}"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (RANDOM_IMAGES, *run.image_shape), dtype=np.uint8)
    return x, None, f"{RANDOM_IMAGES} random images ({run.config.data.dataset} is not here)"


def export_onnx(
    run: Run | str | Path,
    out: str | Path | None = None,
    runtime: str = "auto",
    int8: bool = False,
) -> ExportResult:
    """Write a run's model as ONNX (default ``RUN/model.onnx``) after checking it.

    The ONNX model takes uint8 ``pixels`` (batch, h, w, c) and returns float32
    ``probabilities`` (batch, classes), as ``model.keras`` does; the class names and image
    facts are in its metadata. Before the file is written, both models classify the run's
    test split (or random pixels): a probability that differs by more than
    :data:`TOLERANCE` is a RunError and nothing is written. runtime: "auto" (onnxruntime if
    installed) or "reference" (onnx's NumPy evaluator).

    int8: the Dense layers' products in 8-bit integers (default ``RUN/model-int8.onnx``,
    about 4x smaller and, for batches, faster). It must give model.keras' label for
    :data:`INT8_MIN_SAME_LABEL` of the images and lose at most
    :data:`INT8_MAX_ACCURACY_LOSS` of test accuracy, else RunError and nothing is written.
    """
    run = run if isinstance(run, Run) else load_run(run)
    name = INT8_FILE if int8 else ONNX_FILE
    path = Path(out) if out is not None else run.path / name
    if path.is_dir():
        path = path / name
    data = to_onnx(run.model, _metadata(run, int8), int8)
    images, labels, described = _check_images(run)
    infer, runtime_name = onnx_runner(data, runtime)
    exported = infer(images)
    expected = run.predict(images)
    difference = float(np.max(np.abs(exported - expected)))
    predicted = exported.argmax(axis=1)
    result = ExportResult(
        path=path,
        size=len(data),
        runtime=runtime_name,
        checked_on=described,
        images=len(images),
        max_difference=difference,
        same_label=int(np.sum(predicted == expected.argmax(axis=1))),
        accuracy=None if labels is None else float(np.mean(predicted == labels)),
        keras_accuracy=None if labels is None else float(np.mean(expected.argmax(1) == labels)),
        int8=int8,
    )
    problem = _int8_problem(result) if int8 else _float_problem(result)
    if problem is not None:
        raise RunError(f"{run.path}: {problem}; {path} not written")
    write_named_file(path, data)
    return result


def _float_problem(result: ExportResult) -> str | None:
    if result.max_difference <= TOLERANCE:  # NaN fails too
        return None
    return (
        f"the ONNX model differs from {MODEL_FILE} by up to {result.max_difference:.3g} "
        f"on {result.checked_on} (more than {TOLERANCE:g})"
    )


def _int8_problem(result: ExportResult) -> str | None:
    if not np.isfinite(result.max_difference):
        return f"the int8 model gives non-finite probabilities on {result.checked_on}"
    if result.same_label < INT8_MIN_SAME_LABEL * result.images:
        return (
            f"the int8 model gives {MODEL_FILE}'s label for only {result.same_label}/"
            f"{result.images} of {result.checked_on} (less than {INT8_MIN_SAME_LABEL:.0%})"
        )
    if result.accuracy is not None and result.keras_accuracy is not None:
        loss = result.keras_accuracy - result.accuracy
        if loss > INT8_MAX_ACCURACY_LOSS:
            return (
                f"int8 costs {loss * 100:.2f} points of accuracy on {result.checked_on} "
                f"(more than {INT8_MAX_ACCURACY_LOSS * 100:g}): export it without --int8"
            )
    return None
