"""Run.explain and `mlplab predict --explain`: what each pixel contributed to a class."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab.cli import main
from mlplab.config import ModelConfig
from mlplab.data.scaling import scaling_params
from mlplab.errors import RunError
from mlplab.explain import pixel_contributions
from mlplab.model import build_model
from tests.datagen import toy_images


def test_without_biases_the_contributions_add_up_to_the_evidence():
    """A ReLU network without biases is linear in its (scaled) input wherever it is
    evaluated, so gradient times input is exactly the class's logit minus the mean logit."""
    x, _ = toy_images(12, 3, size=5)
    scaling = scaling_params(x, "standardize")
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(hidden=(16, 8), activation="relu"), (5, 5, 1), 3, scaling)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    logp = np.log(np.asarray(model.predict(x, verbose=0), np.float64))
    classes = np.arange(len(x)) % 3
    evidence = logp[np.arange(len(x)), classes] - logp.mean(axis=1)  # softmax drops a constant
    contributions = pixel_contributions(model, x, classes)
    assert contributions.shape == x.shape and contributions.dtype == np.float32
    np.testing.assert_allclose(contributions.sum(axis=(1, 2, 3)), evidence, rtol=1e-4, atol=1e-4)


def test_a_run_explains_its_predicted_class_or_the_one_asked(digits_run, digits_data):
    x = digits_data.x_test[:6]
    classes, contributions = digits_run.explain(x)
    assert classes.tolist() == digits_run.predict(x).argmax(axis=1).tolist()
    assert contributions.shape == (6, 8, 8, 1) and np.abs(contributions).max() > 0
    other, against = digits_run.explain(x[..., 0], classes=[1] * 6)  # (n, h, w) works too
    assert other.tolist() == [1] * 6 and not np.allclose(against, contributions)
    with pytest.raises(mlplab.DataError, match="this model takes"):
        digits_run.explain(np.zeros((1, 5, 5, 1), np.uint8))


def test_it_needs_jax(digits_run, digits_data, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(RunError, match="needs Keras on JAX, not torch"):
        pixel_contributions(digits_run.model, digits_data.x_test[:1], np.array([0]))


def test_predict_explain_draws_each_image_beside_its_contributions(
    capsys, digits_run, digits_data, tmp_path
):
    files = []
    for i, image in enumerate(digits_data.x_test[:3]):
        Image.fromarray(image[..., 0]).save(tmp_path / f"digit{i}.png")
        files.append(str(tmp_path / f"digit{i}.png"))
    sheet = tmp_path / "why.png"
    code = main(["predict", str(digits_run.path), *files, "--explain", str(sheet)])
    out = capsys.readouterr().out
    assert code == 0 and f"wrote {sheet}: what each pixel contributed" in out
    with Image.open(sheet) as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 100
        rgb = np.asarray(picture.convert("RGB"), np.int64)
    reddish = (rgb[..., 0] - rgb[..., 2] > 60).mean()
    bluish = (rgb[..., 2] - rgb[..., 0] > 60).mean()
    assert reddish > 0.001 and bluish > 0.0005  # both signs drawn, not a blank sheet
    csv = tmp_path / "test.csv"
    csv.write_text(",".join(f"pixel{i}" for i in range(64)) + "\n" + ",".join(["0"] * 64) + "\n")
    code = main(["predict", str(digits_run.path), str(csv), "--explain", str(sheet)])
    assert code == 2 and "--explain takes image files" in capsys.readouterr().err
