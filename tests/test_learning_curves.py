"""Learning curves (mlplab.learning_curves) and data.train_fraction."""

import csv
import json
import tomllib

import numpy as np
import pytest

import mlplab
from mlplab.api import read_splits, resolve_config
from mlplab.data import load_dataset
from mlplab.data.split import make_splits
from mlplab.learning_curves import CurvePoint, CurveSize, read_curve, summarize

from .test_cli import run_cli


def test_train_fraction_is_a_seeded_stratified_subset_with_the_same_validation_and_test():
    dataset = load_dataset("digits")
    whole = make_splits(dataset, 0.1, seed=3)
    half = make_splits(dataset, 0.1, seed=3, train_fraction=0.5)
    assert len(half.y_train) == np.ceil(0.5 * len(whole.y_train))
    np.testing.assert_array_equal(half.y_val, whole.y_val)
    np.testing.assert_array_equal(half.x_test, whole.x_test)
    # Every class keeps about half of its images.
    np.testing.assert_allclose(
        np.bincount(half.y_train) / np.bincount(whole.y_train), 0.5, atol=0.02
    )
    # The subset's images are among the whole's, and the same for the same seed.
    rows = {row.tobytes() for row in whole.x_train}
    assert all(row.tobytes() in rows for row in half.x_train)
    again = make_splits(dataset, 0.1, seed=3, train_fraction=0.5)
    np.testing.assert_array_equal(again.x_train, half.x_train)
    other = make_splits(dataset, 0.1, seed=4, train_fraction=0.5)
    assert not np.array_equal(other.y_train, half.y_train)


def test_train_fraction_config_key():
    cfg = resolve_config("digits-mlp", {"data.train_fraction": 0.25})
    _, splits, _ = read_splits(cfg)
    assert len(splits.y_train) == 324  # a quarter of 1293, rounded up
    for bad in (0, 1.5, -0.1):
        with pytest.raises(mlplab.ConfigError, match="data.train_fraction"):
            resolve_config("digits-mlp", {"data.train_fraction": bad})


def _size(images, test, train, test_std=0.0):
    return CurveSize(images / 1000, images, test, test_std, train, 0.0)


def test_reading_the_curve():
    rising_variance = read_curve([_size(500, 0.80, 1.0), _size(1000, 0.85, 1.0)], seeds=1)
    assert rising_variance.startswith("The test accuracy is still rising: +5.0 points")
    assert "15.0 points more than on the test images" in rising_variance
    flat_bias = read_curve([_size(500, 0.800, 0.82), _size(1000, 0.802, 0.81)], seeds=1)
    assert "levelled off (+0.2 points from 500 to 1,000" in flat_bias
    assert "does not learn even its own training images well (81.0%" in flat_bias
    fitted = read_curve([_size(500, 0.96, 0.99), _size(1000, 0.97, 0.995)], seeds=1)
    assert "learns its own training images (99.5%) and scores within 2.5 points" in fitted
    # A gain within the seeds' noise is not a rise.
    noisy = [_size(500, 0.90, 1.0, test_std=0.03), _size(1000, 0.92, 1.0, test_std=0.03)]
    assert "levelled off" in read_curve(noisy, seeds=3)
    assert "still rising" in read_curve(noisy, seeds=100)


def test_summarize_takes_mean_and_sample_std_over_seeds():
    points = [
        CurvePoint(0.5, 100, seed, test, 1.0, None, f"run{seed}")
        for seed, test in enumerate((0.8, 0.9))
    ] + [CurvePoint(1.0, 200, 0, 0.95, 0.99, None, "run2")]
    half, whole = summarize(points)
    assert (half.train_images, half.test_mean) == (100, pytest.approx(0.85))
    assert half.test_std == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert (whole.test_std, whole.train_mean) == (0.0, 0.99)


def test_learning_curve_end_to_end(capsys, tmp_path):
    code, out, err = run_cli(
        capsys,
        "learning-curve",
        "--fractions",
        "0.25,1",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    assert "digits-mlp on digits: 4 runs (2 sizes x 2 seeds)" in out
    assert "25% (324 images), seed 1: test" in err
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("-digits-mlp-learning-curve")
    for name in ("learning_curve.png", "learning_curve.csv", "base.toml"):
        assert (folder / name).is_file()
    summary = json.loads((folder / "learning_curve.json").read_text())
    assert [size["train_images"] for size in summary["sizes"]] == [324, 1293]
    assert summary["command"].startswith("mlplab learning-curve --fractions 0.25,1")
    with (folder / "learning_curve.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["fraction"], row["seed"]) for row in rows] == [
        ("0.25", "0"),
        ("0.25", "1"),
        ("1.0", "0"),
        ("1.0", "1"),
    ]
    # Each point's run is a run, whose command trains it alone again.
    run = mlplab.load_run(folder / rows[1]["run"])
    assert run.metrics["dataset"]["train_samples"] == 324
    assert float(rows[1]["test_accuracy"]) == run.metrics["test_accuracy"]
    meta = tomllib.loads((run.path / "config.toml").read_text())["meta"]
    assert "base.toml --set data.train_fraction=0.25 --seed 1" in meta["command"]
    # And the model scores its own training images as the CSV says.
    _, splits, _ = read_splits(run.config)
    trained = np.mean(run.predict(splits.x_train).argmax(1) == splits.y_train)
    assert float(rows[1]["train_accuracy"]) == pytest.approx(trained)

    code, out, _ = run_cli(capsys, "runs", str(tmp_path))
    assert "learning curves (learning_curve.png in each)" in out


def test_bad_learning_curves_are_one_line_and_write_nothing(capsys, tmp_path):
    for argv, message in (
        (["--fractions", "1"], "at least two training-set sizes"),
        (["--fractions", "0.5,2"], "training-set share 2: must be > 0 and <= 1"),
        (["--fractions", "half,1"], "--fractions 'half,1'"),
        (["--seeds", "x"], "--seeds 'x'"),
        (["--set", "train.epoch=3"], "did you mean 'train.epochs'"),
    ):
        code, _, err = run_cli(capsys, "learning-curve", *argv, "--out", str(tmp_path))
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_python_api_and_notebook_card(tmp_path):
    curve = mlplab.learning_curve(
        "digits-softmax",
        overrides={"train.epochs": 2},
        fractions=(0.5, 1.0),
        out=tmp_path,
        verbose=False,
    )
    assert [size.fraction for size in curve.sizes] == [0.5, 1.0]
    assert curve.reading in curve._repr_html_().replace("&#x27;", "'")
