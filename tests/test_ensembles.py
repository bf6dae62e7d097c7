"""Ensembles: runs' networks averaged into one model, written as a run (mlplab.ensembles)."""

import json
import shutil
import tomllib

import keras
import numpy as np
import pytest

import mlplab
from mlplab.config import ModelConfig
from mlplab.data.scaling import scaling_params
from mlplab.ensembles import default_name
from mlplab.explain import pixel_contributions
from mlplab.model import build_model, ensemble_model, is_ensemble, members
from mlplab.report.compare import compare_runs
from mlplab.runs import load_model

from .test_cli import run_cli


def _networks(count: int) -> list[keras.Sequential]:
    """``count`` small untrained networks on 6x6 grayscale images, 3 classes."""
    x = np.random.default_rng(0).integers(0, 256, (20, 6, 6, 1), dtype=np.uint8)
    scaling = scaling_params(x, "standardize")
    networks = []
    for seed in range(count):
        keras.utils.set_random_seed(seed)
        networks.append(build_model(ModelConfig(hidden=[8]), (6, 6, 1), 3, scaling))
    return networks


def test_ensemble_model_averages_its_members_and_loads_safely(tmp_path):
    networks = _networks(3)
    model = ensemble_model(networks, "trio")
    x = np.random.default_rng(1).integers(0, 256, (5, 6, 6, 1), dtype=np.uint8)
    expected = np.mean([np.asarray(n.predict(x, verbose=0)) for n in networks], axis=0)
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected, atol=1e-6)
    assert is_ensemble(model) and not is_ensemble(networks[0])
    assert [m.name for m in members(model)] == ["member_1", "member_2", "member_3"]
    assert members(networks[0]) == [networks[0]]

    model.save(tmp_path / "trio.keras")
    loaded = load_model(tmp_path / "trio.keras")  # safe_mode=True
    np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), expected, atol=1e-6)
    # The members are copies: training one of the originals would not change the ensemble.
    assert members(model)[0] is not networks[0]


def test_an_ensembles_pixel_contributions_are_its_members_mean():
    networks = _networks(2)
    model = ensemble_model(networks)
    x = np.random.default_rng(2).integers(0, 256, (4, 6, 6, 1), dtype=np.uint8)
    classes = np.array([0, 1, 2, 0])
    expected = np.mean([pixel_contributions(n, x, classes) for n in networks], axis=0)
    np.testing.assert_allclose(pixel_contributions(model, x, classes), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["digits-mlp-seed0", "digits-mlp-seed1"], "digits-mlp-ensemble"),
        (["digits-mlp", "digits-mlp"], "digits-mlp-ensemble"),
        (["digits-mlp", "digits-softmax"], "ensemble"),
    ],
)
def test_default_name(names, expected):
    assert default_name(names) == expected


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory):
    """Three short digits runs from different seeds."""
    out = tmp_path_factory.mktemp("members")
    return [
        mlplab.train(
            overrides={"train.epochs": 4, "train.seed": seed, "name": f"digits-mlp-seed{seed}"},
            out=out,
            verbose=False,
            report=False,
        )
        for seed in (0, 1, 2)
    ]


@pytest.fixture(scope="module")
def made(seed_runs, tmp_path_factory):
    return mlplab.ensemble(
        [run.path for run in seed_runs], out=tmp_path_factory.mktemp("ensembles"), verbose=False
    )


def _stored(run):
    with np.load(run.path / "test_predictions.npz") as saved:
        return saved["y_true"], saved["proba"]


def test_ensemble_scores_the_mean_of_its_members_predictions(seed_runs, made):
    y_true, _ = _stored(seed_runs[0])
    mean = np.mean([_stored(run)[1] for run in seed_runs], axis=0)
    assert made.metrics["test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y_true))
    np.testing.assert_allclose(_stored(made)[1], mean, atol=1e-5)
    facts = made.ensemble
    assert [m["test_accuracy"] for m in facts["members"]] == pytest.approx(
        [run.metrics["test_accuracy"] for run in seed_runs]
    )
    assert [m["seed"] for m in facts["members"]] == [0, 1, 2]
    accuracies = [run.metrics["test_accuracy"] for run in seed_runs]
    assert facts["member_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert facts["member_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert facts["gain"] == pytest.approx(made.metrics["test_accuracy"] - np.mean(accuracies))
    labels = np.stack([_stored(run)[1].argmax(1) for run in seed_runs])
    assert facts["disagreement"] == pytest.approx(np.mean(labels.min(0) != labels.max(0)))
    assert made.config.name == "digits-mlp-ensemble"
    assert made.status == "complete"


def test_ensemble_is_a_run_every_command_takes(made, seed_runs):
    loaded = mlplab.load_run(made.path)
    assert is_ensemble(loaded.model) and len(members(loaded.model)) == 3
    assert mlplab.evaluate(loaded)["test_accuracy"] == pytest.approx(made.metrics["test_accuracy"])
    assert made.metrics["robustness"]["clean"] == pytest.approx(made.metrics["test_accuracy"])
    for name in ("model.keras", "report.html", "curves.png", "why_mistakes.png", "robustness.png"):
        assert (made.path / name).is_file(), name
    # Drawn from the members' own layers in their reports, not from an ensemble's.
    assert not (made.path / "weights.png").exists()
    assert not (made.path / "gradients.png").exists() and "gradients" not in made.metrics
    assert not (made.path / "layer_views.png").exists()
    meta = tomllib.loads((made.path / "config.toml").read_text())["meta"]
    assert meta["members"] == [str(run.path) for run in seed_runs]
    html = (made.path / "report.html").read_text()
    assert "<h2>Members</h2>" in html and seed_runs[1].path.name in html
    assert '<td class="text">member_3</td><td class="text">network 64-256-128-10</td>' in html
    sizes = [run.metrics["model"]["parameters"] for run in seed_runs]
    assert made.metrics["model"]["parameters"] == sum(sizes)

    result = mlplab.report_run(made.path)
    assert result.problems == []
    assert made.path / "curves.png" in result.files
    assert made.path / "layer_views.png" not in result.files
    with pytest.raises(mlplab.RunError, match="is an ensemble: its members have the layers"):
        mlplab.api.embed(made.path)


def test_ensemble_exports_to_onnx_with_the_same_probabilities(made, tmp_path):
    pytest.importorskip("onnx")
    result = mlplab.export_onnx(made, tmp_path / "ensemble.onnx")
    assert result.max_difference < 1e-5
    assert result.accuracy == pytest.approx(made.metrics["test_accuracy"])
    quantized = mlplab.export_onnx(made, tmp_path, int8=True)  # every member's layers
    assert quantized.path == tmp_path / "model-int8.onnx" and quantized.size < result.size / 3
    assert quantized.accuracy >= result.accuracy - 0.01


def test_an_ensembles_novelty_compares_its_members_hidden_layers_together(
    made, seed_runs, digits_data
):
    from mlplab.novelty import feature_model, unit_rows

    reference = made.novelty_reference
    assert reference is not None and (made.path / "novelty.npz").is_file()
    facts = made.metrics["novelty"]
    assert facts["threshold"] == pytest.approx(reference.threshold)
    assert 0.03 <= facts["test_flagged"] <= 0.07  # the threshold flags 5% of the test split
    # Its features: each member's last hidden layer at unit length, side by side.
    x = digits_data.x_test[:16]
    together = feature_model(made.model).predict(x, verbose=0)
    parts = []
    for run in seed_runs:
        hidden = keras.Model(run.model.inputs, run.model.layers[-1].input)
        parts.append(unit_rows(hidden.predict(x, verbose=0)))
    np.testing.assert_allclose(together, np.concatenate(parts, axis=1), atol=1e-5)
    # So noise lands far from the training images, as for each member.
    noise = np.random.default_rng(0).integers(0, 256, (200, 8, 8, 1), dtype=np.uint8)
    assert np.median(made.novelty(noise)) > reference.threshold
    answers = mlplab.predict(made, [made.path / "why_mistakes.png"])  # a chart, not a digit
    assert "familiar" in answers[0] and "novelty" in answers[0]


def test_compare_tells_an_ensemble_from_its_first_member(made, seed_runs):
    comparison = compare_runs([*(run.path for run in seed_runs), made.path])
    assert comparison.differences == ["ensemble", "train.seed"]
    assert comparison.rows[-1][1:3] == ["3", "0,1,2"]
    # The members are one config over three seeds; the ensemble is not a fourth seed.
    assert [row[2] for row in comparison.seed_rows] == ["3", "1"]


def test_report_names_members_that_are_gone(made, seed_runs, tmp_path):
    copy = tmp_path / made.path.name
    shutil.copytree(made.path, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["ensemble"]["members"][0].update(run="nowhere/x", folder="x")
    (copy / "metrics.json").write_text(json.dumps(metrics))
    problems = mlplab.report_run(copy).problems
    assert problems == ["member nowhere/x not found: no curves for it"]


def test_refuses_runs_that_cannot_make_an_ensemble(seed_runs, made, tmp_path):
    first, second = seed_runs[0].path, seed_runs[1].path
    with pytest.raises(mlplab.RunError, match="at least 2 runs, got 1"):
        mlplab.ensemble([first], out=tmp_path)
    with pytest.raises(mlplab.RunError, match="given twice"):
        mlplab.ensemble([first, second, first], out=tmp_path)
    with pytest.raises(mlplab.RunError, match="is an ensemble already"):
        mlplab.ensemble([first, made.path], out=tmp_path)

    diverged = tmp_path / "diverged"
    shutil.copytree(second, diverged)
    metrics = json.loads((diverged / "metrics.json").read_text())
    (diverged / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged"}))
    with pytest.raises(mlplab.RunError, match="diverged"):
        mlplab.ensemble([first, diverged], out=tmp_path)

    other = tmp_path / "other"
    shutil.copytree(second, other)
    metrics["dataset"]["test_split"] = "stratified 0.3, seed 0"
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(mlplab.RunError, match="test_split .* must share the test split"):
        mlplab.ensemble([first, other], out=tmp_path)
    changed = tmp_path / "changed"
    shutil.copytree(first, changed)
    with np.load(changed / "test_predictions.npz") as saved:
        y_true, proba = saved["y_true"], saved["proba"]
    np.savez(changed / "test_predictions.npz", y_true=y_true[::-1], proba=proba)
    with pytest.raises(mlplab.RunError, match="not the one this run was tested on"):
        mlplab.ensemble([changed, second], out=tmp_path)

    damaged = tmp_path / "damaged"
    shutil.copytree(second, damaged)
    (damaged / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(mlplab.RunError, match="damaged/model.keras: cannot load model"):
        mlplab.ensemble([first, damaged], out=tmp_path)
    # Nothing was written for any of them.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed", "damaged", "diverged", "other"]


def test_cli_ensemble_prints_members_and_errors_in_one_line(capsys, seed_runs, tmp_path):
    paths = [str(run.path) for run in seed_runs[:2]]
    code, out, _ = run_cli(capsys, "ensemble", *paths, "--out", str(tmp_path), "--no-report")
    assert code == 0
    assert "the ensemble (2)" in out and "disagree on" in out
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("-digits-mlp-ensemble")
    assert not (folder / "report.html").exists()
    assert "mlplab ensemble " in (folder / "config.toml").read_text()
    # What to do next includes distilling it into one network of a member's size.
    suggested = f"mlplab train {paths[0]}/config.toml --teacher {folder} --name "
    assert suggested + "digits-mlp-distilled" in out

    code, _, err = run_cli(capsys, "ensemble", paths[0], str(tmp_path / "missing"))
    assert code == 2
    assert err.count("\n") == 1 and "missing: no such run directory" in err
    code, _, err = run_cli(capsys, "train", "--ensemble")
    assert code == 2 and "give --seeds N too" in err
    code, _, err = run_cli(capsys, "train", "--seeds", "1", "--ensemble")
    assert code == 2 and "two or more seeds" in err


def test_train_seeds_ensemble(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "train",
        "--seeds",
        "2",
        "--ensemble",
        "--epochs",
        "2",
        "-q",
        "--no-report",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    assert "the ensemble (2)" in out
    names = sorted(p.name.split("-", 2)[2] for p in tmp_path.iterdir())
    assert names == ["digits-mlp-ensemble", "digits-mlp-seed0", "digits-mlp-seed1"]
    (folder,) = tmp_path.glob("*-ensemble")
    meta = tomllib.loads((folder / "config.toml").read_text())["meta"]
    assert meta["command"].startswith("mlplab ensemble ") and len(meta["members"]) == 2


def test_serving_an_ensemble(made, digits_data, tmp_path):
    from mlplab.data.images import ImageBytes
    from mlplab.serving.predictor import Predictor

    from .test_serve import drawing_of, png_bytes

    predictor = Predictor(mlplab.load_run(made.path))
    assert predictor.info()["members"] == 3
    drawing = png_bytes(drawing_of(digits_data.x_test[5]))
    [answer] = predictor.predict([ImageBytes("d.png", drawing)], explain=True)
    (tmp_path / "d.png").write_bytes(drawing)
    [expected] = made.predict_files([tmp_path / "d.png"])
    assert answer["top"] == expected["top"] and answer["why"].startswith("data:image/png")


def test_notebook_card_and_estimator_take_an_ensemble(made, digits_data):
    assert "3, alone" in made._repr_html_()
    classifier = mlplab.MLPClassifier.from_run(made.path)
    assert classifier.score(digits_data.x_test, digits_data.y_test) == pytest.approx(
        made.metrics["test_accuracy"]
    )


def test_ensemble_of_a_studys_best_trials(capsys, tmp_path):
    from mlplab.tuning.study import best_runs

    result = mlplab.tune(
        "digits-mlp",
        {"model.dropout": [0.0, 0.2, 0.4]},
        trials=3,
        grid=True,
        overrides={"train.epochs": 3},
        out=tmp_path,
        verbose=False,
        plot=False,
    )
    study = result.path
    ranked = sorted(
        (json.loads((run / "metrics.json").read_text())["val_accuracy"], run.name)
        for run in study.glob("*-trial*")
    )
    found = best_runs(study, 2)
    assert len(found) == 2 and found[0].name in {name for _, name in ranked}
    accuracy = {name: value for value, name in ranked}
    assert accuracy[found[0].name] == max(accuracy.values())  # ranked on validation

    code, out, err = run_cli(
        capsys, "ensemble", "--study", str(study), "--best", "2", "--out", str(tmp_path / "e")
    )
    assert code == 0, err
    assert "the ensemble (2)" in out
    assert f"the 2 best trials of {study}: {found[0].name}, {found[1].name}" in err
    (made,) = (tmp_path / "e").iterdir()
    assert made.name.endswith("-digits-mlp-best2-ensemble")
    for argv, message in (
        (["--best", "2"], "give --study DIR too"),
        (["--study", str(study), "--best", "0"], "--best 0: must be at least 1"),
        ([str(found[0]), "--study", str(study)], "not both"),
        ([], "give the runs to average"),
        (["--study", str(tmp_path / "e")], "not a study folder"),
    ):
        code, _, err = run_cli(capsys, "ensemble", *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
