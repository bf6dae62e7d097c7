"""Starting from a run's weights (``model.init_from``, :mod:`mlplab.warm_start`): what is
copied, the checks on the run, and training from it through train, lr-find, resume and
MLPClassifier."""

import contextlib
import json
import tomllib

import numpy as np
import pytest

import mlplab
from mlplab import ConfigError
from mlplab.api import resolve_config, trainer_and_model
from mlplab.cli import main
from mlplab.warm_start import load_starting_weights, started_line

from .test_resume import _stop_after, crash, ctrl_c

DIGITS = [str(digit) for digit in range(10)]
NAMED = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _started(digits_run, digits_data, class_names, **overrides):
    """A new network for ``class_names`` on the digits images, set to the digits run's
    weights as training would start from them, and the StartingWeights."""
    config = resolve_config(
        digits_run.config, {"model.init_from": str(digits_run.path), **overrides}
    )
    starting = load_starting_weights(config, "digits", class_names, (8, 8, 1))
    _, model = trainer_and_model(config, (8, 8, 1), len(class_names), starting.scaling, 100)
    starting.apply(model)
    return model, starting


def test_the_network_starts_as_the_run_ended(digits_run, digits_data):
    model, starting = _started(digits_run, digits_data, DIGITS)
    for ours, theirs in zip(model.get_weights(), digits_run.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    x = digits_data.x_test[:20]
    np.testing.assert_allclose(model.predict(x, verbose=0), digits_run.predict(x), atol=1e-6)
    assert starting.facts()["output_layer"] == "copied"
    assert starting.facts()["hidden"] == [256, 128]
    assert starting.facts()["path"] == str(digits_run.path.resolve())


def test_the_same_classes_in_another_order_keep_their_columns(digits_run, digits_data):
    # Label 0 is called "9", label 9 "0": each output column goes to its class by name.
    model, _ = _started(digits_run, digits_data, DIGITS[::-1])
    x = digits_data.x_test[:20]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), digits_run.predict(x)[:, ::-1], atol=1e-6
    )


def test_other_classes_get_a_new_output_layer_over_the_copied_hidden_ones(digits_run, digits_data):
    model, starting = _started(digits_run, digits_data, NAMED)
    for name in ("scaling", "dense_1", "dense_2"):
        for ours, theirs in zip(
            model.get_layer(name).get_weights(),
            digits_run.model.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(ours, theirs)
    kernel = model.get_layer("softmax").get_weights()[0]
    assert not np.allclose(kernel, digits_run.model.get_layer("softmax").get_weights()[0])
    assert starting.facts()["output_layer"] == "new"
    assert "with a new output layer for 10 classes" in starting.describe(10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.hidden": [64]}, r"its hidden layers are \[256, 128\], model.hidden = \[64\]"),
        ({"model.batch_norm": True}, "its network has no batch normalisation, model.batch_"),
        ({"data.scaling": "unit"}, "its network takes pixels scaled 'standardize', data.sc"),
    ],
)
def test_a_network_of_another_shape_is_refused(digits_run, overrides, message):
    config = resolve_config(
        digits_run.config, {"model.init_from": str(digits_run.path), **overrides}
    )
    with pytest.raises(ConfigError, match=f"^model.init_from = '[^']*': {message}"):
        load_starting_weights(config, "digits", DIGITS, (8, 8, 1))


def test_runs_that_cannot_be_started_from_are_refused(tmp_path, digits_run, digits_data):
    def refused(spec, shape=(8, 8, 1), classes=DIGITS, **overrides):
        config = resolve_config(None, {"model.init_from": spec, **overrides})
        with pytest.raises(ConfigError) as caught:
            load_starting_weights(config, "digits", classes, shape)
        return str(caught.value)

    gone = str(tmp_path / "gone")
    assert refused(gone) == f"model.init_from = {gone!r}: no such run directory"
    assert "with 'last' each seed could start from another network" in refused("last")
    assert "it takes 8x8 grayscale images, this dataset has 28x28 grayscale ones" in refused(
        str(digits_run.path), (28, 28, 1)
    )
    softmax = mlplab.train(
        overrides={"model.hidden": [], "train.epochs": 1}, out=tmp_path, verbose=False
    )
    said = refused(str(softmax.path), classes=NAMED, **{"model.hidden": []})
    assert said.endswith("there is nothing to start from")
    ensemble = mlplab.ensemble([digits_run.path, softmax.path], out=tmp_path, verbose=False)
    assert "an ensemble" in refused(str(ensemble.path))


def test_train_from_a_run_on_the_command_line(capsys, tmp_path, digits_run):
    args = ["train", "--epochs", "1", "--out", str(tmp_path), "--no-report"]
    assert main([*args, "--name", "fresh"]) == 0
    assert main([*args, "--name", "started", "--init-from", str(digits_run.path)]) == 0
    err = capsys.readouterr().err
    assert f"started from {digits_run.path.resolve()} (digits-mlp, test accuracy" in err
    fresh, started = (mlplab.load_run(next(tmp_path.glob(f"*-{n}"))) for n in ("fresh", "started"))
    # One epoch on top of a trained network: far below a random one's first epoch.
    assert started.history[0]["loss"] < 0.5 * fresh.history[0]["loss"]
    assert started.metrics["init_from"]["output_layer"] == "copied"
    config = tomllib.loads((started.path / "config.toml").read_text())
    assert config["model"]["init_from"] == str(digits_run.path.resolve())  # from anywhere
    assert "started from" in (started.path / "report.txt").read_text().splitlines()[2]
    assert started_line(fresh.metrics.get("init_from")) is None


def test_a_run_that_cannot_be_started_from_is_one_line_and_no_folder(capsys, tmp_path):
    gone = str(tmp_path / "gone")
    out = tmp_path / "runs"
    assert main(["train", "--init-from", gone, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mlplab: error: model.init_from = {gone!r}: no such run directory"
    assert not out.exists()


@pytest.mark.parametrize("stop", [ctrl_c, crash])
def test_a_resumed_run_goes_on_as_if_it_never_stopped(tmp_path, monkeypatch, digits_run, stop):
    overrides = {"train.epochs": 4, "model.init_from": str(digits_run.path)}
    _stop_after(monkeypatch, 2, stop)
    # A simulated kill leaves a checkpoint and no model; Ctrl-C a written, interrupted run.
    with contextlib.suppress(RuntimeError):
        mlplab.train(overrides=overrides, out=tmp_path, verbose=False, checkpoint_seconds=0)
    monkeypatch.undo()
    [stopped] = list(tmp_path.iterdir())
    resumed = mlplab.resume(stopped, verbose=False, report=False)
    assert resumed.status == "complete" and len(resumed.history) == 4
    assert resumed.metrics["init_from"]["output_layer"] == "copied"
    unbroken = mlplab.train(overrides=overrides, out=tmp_path, verbose=False, report=False)
    assert [r["loss"] for r in unbroken.history] == [r["loss"] for r in resumed.history]


def test_lr_find_sweeps_from_the_starting_weights(tmp_path, digits_run):
    common = {"steps": 50, "verbose": False, "out": None}
    fresh = mlplab.lr_find(overrides={}, **common)
    started = mlplab.lr_find(overrides={"model.init_from": str(digits_run.path)}, **common)
    assert started.sweep.losses[0] < 0.5 * fresh.sweep.losses[0]
    # At the default 100 steps a trained network's curve does not fall: the answer says why.
    flat = mlplab.lr_find(
        overrides={"model.init_from": str(digits_run.path)}, **common | {"steps": 100}
    )
    assert flat.sweep.problem.startswith("the loss never fell below its start at any rate")
    assert "here the network starts trained, from model.init_from" in flat.sweep.problem


def test_mlpclassifier_fine_tunes_a_run(digits_run, digits_data):
    x, y = digits_data.x_train, digits_data.y_train
    quick = {"epochs": 1, "random_state": 3}
    fresh = mlplab.MLPClassifier(**quick).fit(x, y)
    started = mlplab.MLPClassifier(init_from=digits_run.path, **quick).fit(x, y)
    x_test, y_test = digits_data.x_test, digits_data.y_test
    assert started.score(x_test, y_test) > fresh.score(x_test, y_test) + 0.05
    assert started.config_.model.init_from == str(digits_run.path)
    with pytest.raises(ConfigError, match=r"its hidden layers are \[256, 128\]"):
        mlplab.MLPClassifier(init_from=digits_run.path, hidden=[8], epochs=1).fit(x, y)


def test_label_issues_refuses_a_start_that_may_know_the_labels(capsys, digits_run):
    path = json.dumps(str(digits_run.path))
    assert main(["label-issues", "--set", f"model.init_from={path}"]) == 2
    assert "audit from random weights" in capsys.readouterr().err
