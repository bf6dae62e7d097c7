"""mlplab export: the ONNX file computes what model.keras computes, and says what it takes."""

from __future__ import annotations

import json
import shutil
import sys

import keras
import numpy as np
import onnx
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import ModelConfig
from mlplab.data.scaling import ScalingParams
from mlplab.errors import MlplabError, RunError
from mlplab.model import build_model
from mlplab.onnx_export import (
    TOLERANCE,
    export_onnx,
    onnx_runner,
    quantize_kernel,
    quantize_rows,
    to_onnx,
)

ACTIVATIONS = ["relu", "sigmoid", "tanh", "gelu", "elu", "selu", "leaky_relu"]


def random_model(
    rng: np.random.Generator, shape: tuple[int, int, int] = (4, 4, 1), **settings
) -> keras.Sequential:
    """build_model with random scaling, and (with batch_norm) random moving statistics, so
    every parameter the export reads differs from its default."""
    features = int(np.prod(shape))
    scaling = ScalingParams(
        offset=rng.uniform(0, 120, features).astype(np.float32),
        scale=rng.uniform(20, 90, features).astype(np.float32),
    )
    model = build_model(ModelConfig(**settings), shape, 5, scaling)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable, low, high in (
                (layer.gamma, 0.5, 2.0),
                (layer.beta, -1.0, 1.0),
                (layer.moving_mean, -1.0, 1.0),
                (layer.moving_variance, 0.2, 3.0),
            ):
                variable.assign(rng.uniform(low, high, variable.shape))
    return model


@pytest.mark.parametrize("runtime", ["auto", "reference"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_gives_kerass_probabilities(activation, runtime):
    rng = np.random.default_rng(len(activation))
    x = rng.integers(0, 256, (64, 4, 4, 3), dtype=np.uint8)
    for batch_norm in (False, True):
        model = random_model(
            rng, (4, 4, 3), hidden=[16, 8], activation=activation, batch_norm=batch_norm,
            dropout=0.3,
        )  # fmt: skip
        infer, name = onnx_runner(to_onnx(model), runtime)
        expected = model.predict(x, verbose=0)
        # Keras and ONNX round differently; a wrong constant (ONNX's default LeakyRelu slope,
        # the tanh form of gelu) shows up as 1e-3 or more here.
        np.testing.assert_allclose(infer(x), expected, atol=2e-6)
        assert ("onnxruntime" in name) == (runtime == "auto")


def test_softmax_regression_and_a_single_channel_input():
    rng = np.random.default_rng(1)
    model = random_model(rng, (8, 8, 1), hidden=[])
    x = rng.integers(0, 256, (20, 8, 8, 1), dtype=np.uint8)
    infer, _ = onnx_runner(to_onnx(model))
    np.testing.assert_allclose(infer(x), model.predict(x, verbose=0), atol=2e-6)


def test_the_file_declares_its_input_output_and_metadata():
    model = random_model(np.random.default_rng(2), (4, 4, 1), hidden=[8])
    proto = onnx.load_from_string(to_onnx(model, {"classes": '["a", "b"]'}))
    (given,), (returned,) = proto.graph.input, proto.graph.output
    assert given.name == "pixels"
    assert given.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = given.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 4, 4, 1]
    assert returned.name == "probabilities"
    assert [d.dim_param or d.dim_value for d in returned.type.tensor_type.shape.dim] == [
        "batch",
        5,
    ]
    assert proto.opset_import[0].version == 17 and proto.ir_version == 8
    assert {p.key: p.value for p in proto.metadata_props} == {"classes": '["a", "b"]'}
    # Dropout is the identity at inference: no node for it.
    assert not [node for node in proto.graph.node if "dropout" in node.name]


def test_what_cannot_be_exported_is_named():
    pixels = keras.Input((4, 4, 1), dtype="uint8")
    softplus = keras.Sequential(
        [pixels, keras.layers.Flatten(), keras.layers.Dense(3, activation="softplus", name="d")]
    )
    with pytest.raises(MlplabError, match="activation 'softplus' has no ONNX export"):
        to_onnx(softplus)
    rescaled = keras.Sequential(
        [pixels, keras.layers.Rescaling(1 / 255, name="rescale"), keras.layers.Flatten()]
    )
    with pytest.raises(MlplabError, match=r"layer 'rescale' \(Rescaling\) has no ONNX export"):
        to_onnx(rescaled)


def test_export_of_a_run_is_checked_on_its_test_split(digits_run, digits_data, tmp_path):
    result = export_onnx(digits_run, tmp_path / "digits.onnx")
    assert result.path == tmp_path / "digits.onnx" and result.size == result.path.stat().st_size
    assert result.checked_on == "360 test images of digits" and result.images == 360
    assert result.max_difference <= TOLERANCE and result.same_label >= 359
    assert result.accuracy == pytest.approx(digits_run.metrics["test_accuracy"], abs=1 / 360)
    assert not list(tmp_path.glob(".*.tmp"))
    # The file on disk, run by onnxruntime, classifies like the run's model.
    data = result.path.read_bytes()
    infer, _ = onnx_runner(data)
    np.testing.assert_allclose(
        infer(digits_data.x_test[:50]), digits_run.predict(digits_data.x_test[:50]), atol=1e-5
    )
    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    assert json.loads(meta["image_shape"]) == [8, 8, 1]
    assert meta["dataset"] == "digits" and meta["mlplab_version"] == mlplab.__version__
    assert json.loads(meta["test_accuracy"]) == digits_run.metrics["test_accuracy"]
    assert json.loads(meta["calibration_error"]) == digits_run.metrics["calibration"]["ece"]
    assert 0 <= json.loads(meta["background"]) < 128  # light strokes on dark


def test_export_goes_into_the_run_by_default_or_into_a_named_folder(digits_run, tmp_path):
    run_copy = shutil.copytree(digits_run.path, tmp_path / "run")
    assert export_onnx(run_copy).path == run_copy / "model.onnx"
    assert (run_copy / "model.onnx").is_file()
    folder = tmp_path / "out"
    folder.mkdir()
    assert export_onnx(digits_run, folder).path == folder / "model.onnx"


def test_without_the_dataset_random_pixels_are_the_check(digits_run, tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise mlplab.DataError("not here")

    monkeypatch.setattr("mlplab.api.read_dataset", missing)
    result = export_onnx(digits_run, tmp_path / "m.onnx")
    assert result.checked_on == "256 random images (digits is not here)"
    assert result.images == 256 and result.accuracy is None
    assert result.max_difference <= TOLERANCE
    quantized = export_onnx(digits_run, tmp_path / "q.onnx", int8=True)
    assert quantized.accuracy is None and quantized.keras_accuracy is None
    assert quantized.same_label >= 0.97 * 256 and (tmp_path / "q.onnx").is_file()


def test_a_model_that_does_not_match_is_not_written(digits_run, tmp_path, monkeypatch):
    def off_by_a_little(data, runtime="auto"):
        return (lambda x: digits_run.predict(x) + 1e-3), "broken runtime"

    monkeypatch.setattr("mlplab.onnx_export.onnx_runner", off_by_a_little)
    with pytest.raises(RunError, match=r"differs from model.keras by up to 0.001 on 360 test"):
        export_onnx(digits_run, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_cli_export(digits_run, tmp_path, capsys):
    out = tmp_path / "digits.onnx"
    assert main(["export", str(digits_run.path), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"exported digits-mlp ({digits_run.path}) to {out}  (")
    assert lines[1].startswith("checked with onnxruntime ") and "360 test images" in lines[1]
    assert lines[2].startswith("  test accuracy of digits.onnx 0.9")
    assert (
        lines[3]
        == "input  pixels: uint8 (batch, 8, 8, 1), 0..255 as the training images were stored"
    )
    assert main(["export", str(digits_run.path), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(out) and printed["images"] == 360


def test_cli_says_when_the_run_did_not_finish(digits_run, tmp_path, capsys):
    run_copy = shutil.copytree(digits_run.path, tmp_path / "run")
    metrics = json.loads((run_copy / "metrics.json").read_text())
    (run_copy / "metrics.json").write_text(json.dumps({**metrics, "status": "interrupted"}))
    assert main(["export", str(run_copy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  note: the run's status is interrupted: this is the model it stopped with"
    assert (run_copy / "model.onnx").is_file()


def test_cli_errors_are_one_line(digits_run, tmp_path, capsys, monkeypatch):
    cases = [
        (["export", str(tmp_path / "nope")], "no such run directory"),
        (
            ["export", str(digits_run.path), "--out", str(tmp_path / "no" / "m.onnx")],
            "cannot write",
        ),
    ]
    run_copy = shutil.copytree(digits_run.path, tmp_path / "run")
    (run_copy / "model.keras").write_bytes(b"not a zip")
    cases.append((["export", str(run_copy)], "cannot load model"))
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert not (run_copy / "model.onnx").exists()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert main(["export", str(digits_run.path), "--out", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err == (
        "mlplab: error: ONNX export needs the onnx package: pip install onnx onnxruntime "
        "(the extra mlplab[onnx])\n"
    )


def int8_twin(model: keras.Sequential, x: np.ndarray) -> np.ndarray:
    """What the int8 graph should compute, in NumPy and Keras: every Dense layer's product
    from quantize_rows(input) and quantize_kernel(kernel); the other layers as Keras runs
    them at inference."""
    h = keras.ops.convert_to_tensor(x)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Dense):
            h = layer(h, training=False)
            continue
        q, row_scale, zero = quantize_rows(np.asarray(h, np.float32))
        weights, unit_scale = quantize_kernel(np.asarray(layer.kernel))
        product = ((q - zero) * row_scale) @ (weights * unit_scale.astype(np.float64))
        if layer.use_bias:
            product = product + np.asarray(layer.bias)
        h = layer.activation(keras.ops.convert_to_tensor(product.astype(np.float32)))
    return np.asarray(h)


def test_int8_quantization_of_a_kernel_and_of_rows():
    rng = np.random.default_rng(5)
    kernel = rng.normal(0, 0.1, (30, 6)).astype(np.float32)
    kernel[:, 2] = 0  # a unit that reads nothing
    weights, scale = quantize_kernel(kernel)
    assert weights.dtype == np.int8 and np.abs(weights).max() == 127
    assert np.all(weights[:, 2] == 0) and scale[2] == 1
    assert np.all(np.abs(weights * scale - kernel) <= scale / 2 + 1e-7)
    x = np.stack(
        [rng.normal(0, 3, 40), rng.uniform(2, 5, 40), np.zeros(40), -rng.uniform(0, 1, 40)]
    ).astype(np.float32)
    x[0, :3] = 0
    q, row_scale, zero = quantize_rows(x)
    assert q.dtype == np.uint8 and row_scale.shape == zero.shape == (4, 1)
    assert np.all(np.abs((q - zero) * row_scale - x) <= row_scale / 2 + 1e-6)
    assert np.all(q[0, :3] == zero[0]) and np.all(q[2] == zero[2])  # 0 stays exactly 0
    assert zero[1] == 0 and zero[3] == 255  # all positive / all negative rows


@pytest.mark.parametrize("runtime", ["auto", "reference"])
def test_int8_graph_computes_the_documented_quantization(runtime):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (48, 4, 4, 3), dtype=np.uint8)
    for activation, batch_norm in (("relu", False), ("tanh", True), ("gelu", False)):
        model = random_model(
            rng, (4, 4, 3), hidden=[16, 8], activation=activation, batch_norm=batch_norm
        )
        int8_graph = to_onnx(model, int8=True)
        infer, _ = onnx_runner(int8_graph, runtime)
        probabilities = infer(x)
        # Float rounding before a layer (~1e-6, as between any two runtimes) can tip a value
        # sitting on a rounding boundary to the next level, which moves its image's answer by
        # ~1e-3: most images match to float precision, and all to within such a step.
        difference = np.abs(probabilities - int8_twin(model, x))
        assert np.mean(difference.max(axis=1) <= 2e-5) >= 0.9 and difference.max() < 1e-2
        # ... and it is not the float model: the products really were rounded.
        assert np.abs(probabilities - model.predict(x, verbose=0)).max() > 1e-4
        kernels = [
            w
            for w in onnx.load_from_string(int8_graph).graph.initializer
            if w.data_type == onnx.TensorProto.INT8
        ]
        assert len(kernels) == 3  # two hidden layers and the output layer


def test_an_int8_image_gets_the_same_answer_whatever_else_is_in_the_batch():
    rng = np.random.default_rng(7)
    model = random_model(rng, (8, 8, 1), hidden=[32])
    infer, _ = onnx_runner(to_onnx(model, int8=True))
    x = rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    x[3] = 255  # one very bright image would set a batch-wide scale for the others
    together = infer(x)
    alone = np.concatenate([infer(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(together, alone)


def test_int8_export_of_a_run(digits_run, tmp_path, capsys):
    run_copy = shutil.copytree(digits_run.path, tmp_path / "run")
    result = export_onnx(run_copy, int8=True)
    assert result.path == run_copy / "model-int8.onnx" and result.int8
    assert not (run_copy / "model.onnx").exists()
    float_size = len(to_onnx(digits_run.model))
    assert result.size == result.path.stat().st_size and result.size < float_size / 3
    assert result.same_label >= 0.97 * 360 and 0 < result.max_difference < 0.2
    assert result.keras_accuracy == pytest.approx(digits_run.metrics["test_accuracy"])
    assert result.accuracy >= result.keras_accuracy - 0.01
    data = result.path.read_bytes()
    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert meta["quantization"].startswith("int8 dynamic range")
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    float_meta = onnx.load_from_string(to_onnx(digits_run.model, {"a": "b"})).metadata_props
    assert "quantization" not in {p.key for p in float_meta}  # only export's metadata has it

    assert main(["export", str(run_copy), "--int8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(", ONNX opset 17, int8)") and "model-int8.onnx" in lines[0]
    assert "360 test images of digits: the same label for " in lines[1]
    assert lines[2].startswith("  test accuracy of model-int8.onnx 0.9")
    assert f"(model.keras on the same images: {result.keras_accuracy:.4f})" in lines[2]


def test_an_int8_model_that_loses_labels_or_accuracy_is_not_written(
    digits_run, digits_data, tmp_path, monkeypatch
):
    keras_probabilities = digits_run.predict(digits_data.x_test)
    right = np.flatnonzero(keras_probabilities.argmax(1) == digits_data.y_test)

    def relabelled(images: list[int]):
        def runner(data, runtime="auto"):
            def infer(x):
                probabilities = digits_run.predict(x).copy()
                probabilities[images] = np.roll(probabilities[images], 1, axis=1)
                return probabilities

            return infer, "broken runtime"

        return runner

    monkeypatch.setattr("mlplab.onnx_export.onnx_runner", relabelled(list(right[:20])))
    with pytest.raises(RunError, match=r"label for only 340/360 of 360 test images of digits"):
        export_onnx(digits_run, tmp_path, int8=True)
    monkeypatch.setattr("mlplab.onnx_export.onnx_runner", relabelled(list(right[:5])))
    with pytest.raises(RunError, match=r"int8 costs 1.39 points of accuracy on 360 test images"):
        export_onnx(digits_run, tmp_path, int8=True)
    assert not list(tmp_path.iterdir())
