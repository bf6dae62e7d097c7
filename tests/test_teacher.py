"""Knowledge distillation (``train.teacher``, :mod:`mlplab.teacher`): the loss, the checks on
a teacher, and real training on digits."""

import io
import json
import shutil
import tomllib

import jax.numpy as jnp
import numpy as np
import pytest

import mlplab
from mlplab import ConfigError
from mlplab.cli import main
from mlplab.engine import TeacherNetwork
from mlplab.fused import FusedTrainer, _cross_entropy, _distillation, softened
from mlplab.teacher import load_teacher, taught_line

from .test_resume import HARD, _same_training, _stop_after, ctrl_c

QUICK = {"train.epochs": 4}


def _probabilities(rows: int, classes: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(rows, classes)) * 3
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


# --- the loss ------------------------------------------------------------------------------


def test_softening_keeps_the_order_and_evens_out_the_probabilities():
    proba = _probabilities(20, 5, 0)
    np.testing.assert_allclose(softened(proba, 1.0), proba, rtol=1e-5)
    warm = softened(proba, 4.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, rtol=1e-6)
    assert (warm.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert (warm.max(axis=1) < proba.max(axis=1)).all()
    # A probability of exactly 0 (a float32 softmax that underflowed) stays finite.
    assert np.isfinite(softened(np.array([[1.0, 0.0, 0.0]]), 4.0)).all()


def test_the_distillation_term_is_zero_when_the_student_says_what_the_teacher_says():
    proba = _probabilities(8, 4, 1)
    for temperature in (1.0, 4.0):
        same = _distillation(
            jnp.asarray(proba), jnp.asarray(softened(proba, temperature)), temperature
        )
        np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-5)
        other = _probabilities(8, 4, 2)
        apart = _distillation(
            jnp.asarray(other), jnp.asarray(softened(proba, temperature)), temperature
        )
        assert (np.asarray(apart) > 1e-3).all()


def test_against_one_hot_answers_at_temperature_1_it_is_the_cross_entropy():
    proba = _probabilities(10, 3, 3)
    labels = np.arange(10) % 3
    one_hot = np.eye(3, dtype=np.float32)[labels]
    np.testing.assert_allclose(
        np.asarray(_distillation(jnp.asarray(proba), jnp.asarray(one_hot), 1.0)),
        np.asarray(_cross_entropy(jnp.asarray(proba), jnp.asarray(labels))),
        rtol=1e-5,
        atol=1e-6,  # float32: log p near p = 1 is computed two ways
    )


# --- the config and the checks on a teacher ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.teacher_weight": 0.5}, "train.teacher_weight = 0.5 needs train.teacher"),
        ({"train.teacher_temperature": 2}, "train.teacher_temperature = 2 needs train.teacher"),
        ({"train.teacher": "x", "train.teacher_weight": 0}, "must be > 0 and <= 1"),
        ({"train.teacher": "x", "train.teacher_weight": 1.5}, "must be > 0 and <= 1"),
        ({"train.teacher": "x", "train.teacher_temperature": 0}, "must be > 0"),
    ],
)
def test_teacher_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        mlplab.resolve_config(None, overrides)


def test_a_teacher_must_be_a_finished_run_that_knows_the_same_classes(tmp_path, digits_run):
    digits = list(digits_run.class_names)
    with pytest.raises(ConfigError, match="no such run directory"):
        load_teacher(str(tmp_path / "nothing"), digits, (8, 8, 1))
    with pytest.raises(ConfigError, match="name the run folder .* could be taught by another"):
        load_teacher("last", digits, (8, 8, 1))
    with pytest.raises(
        ConfigError, match=r"other classes \(0, 1, 2, 3, 4, 5, \.\.\. \(10 in all\)\)"
    ):
        load_teacher(str(digits_run.path), ["cat", "dog"], (8, 8, 1))
    with pytest.raises(ConfigError, match="takes 8x8 grayscale images, this dataset has 28x28"):
        load_teacher(str(digits_run.path), digits, (28, 28, 1))
    # The same classes in another order: each column goes to its class.
    backwards = load_teacher(str(digits_run.path), digits[::-1], (8, 8, 1))
    x = mlplab.data.load_dataset("digits").x_test[:5]
    np.testing.assert_allclose(backwards.probabilities(x), digits_run.predict(x)[:, ::-1])


def test_a_diverged_run_cannot_teach(tmp_path, digits_run):
    diverged = tmp_path / "diverged"
    shutil.copytree(digits_run.path, diverged)
    metrics = json.loads((diverged / "metrics.json").read_text())
    (diverged / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged"}))
    with pytest.raises(ConfigError, match="the run diverged"):
        load_teacher(str(diverged), list(digits_run.class_names), (8, 8, 1))


def test_bad_teachers_are_one_line_from_the_command_line(capsys, tmp_path, digits_run):
    assert main(["train", "--teacher", str(tmp_path / "gone"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mlplab: error: train.teacher = '{tmp_path / 'gone'}': no such run directory"
    assert len(err.splitlines()) == 1 and not list(tmp_path.iterdir())
    assert main(["train", "--teacher", str(digits_run.path), "--engine", "fit"]) == 2
    assert "distillation runs inside the fused JAX engine" in capsys.readouterr().err
    args = ["label-issues", "--set", f"train.teacher={json.dumps(str(digits_run.path))}"]
    assert main(args) == 2
    assert "a teacher trained on them would pass them on" in capsys.readouterr().err


def test_mlpclassifier_does_not_take_a_teacher(digits_run):
    x, y = mlplab.data.load_dataset("digits").x_train, mlplab.data.load_dataset("digits").y_train
    model = mlplab.MLPClassifier(overrides={"train.teacher": str(digits_run.path)})
    with pytest.raises(ConfigError, match="MLPClassifier does not distil"):
        model.fit(x, y)


# --- training with a teacher ---------------------------------------------------------------


@pytest.fixture(scope="module")
def liar(tmp_path_factory):
    """A teacher that says every digit is the next one: trained on digits with each label
    moved up by one (9 becomes 0), under the same class names."""
    digits = mlplab.data.load_dataset("digits")
    folder = tmp_path_factory.mktemp("liar")
    np.savez(
        folder / "next-digit.npz",
        x_train=digits.x_train,
        y_train=(digits.y_train + 1) % 10,
        x_test=digits.x_test,
        y_test=(digits.y_test + 1) % 10,
        class_names=np.array(digits.class_names),
    )
    overrides = {"data.dataset": str(folder / "next-digit.npz"), "train.epochs": 15}
    return mlplab.train(overrides=overrides, out=folder, verbose=False, report=False)


def test_the_teacher_drives_what_the_student_learns(tmp_path, liar):
    """Taught by the liar alone (weight 1), a student answers the next digit: right on
    almost none of the test images, and as its teacher on most; untaught, the same network
    is right on most."""
    assert liar.metrics["test_accuracy"] > 0.9  # on its own (moved) labels
    taught = {**QUICK, "train.teacher": str(liar.path), "train.teacher_weight": 1.0}
    said = io.StringIO()
    student = mlplab.train(overrides=taught, out=tmp_path, stream=said, report=False)
    # Trained on another dataset (the .npz): the student is told to mind its test images.
    assert "note: the teacher was trained on next-digit, this network on digits" in (
        said.getvalue()
    )
    assert student.metrics["teacher"]["dataset"] == "next-digit"
    assert "right on 0.0% of the training images" in said.getvalue()
    alone = mlplab.train(overrides=QUICK, out=tmp_path, verbose=False, report=False)
    assert student.metrics["test_accuracy"] < 0.2 < 0.8 < alone.metrics["test_accuracy"]
    assert student.metrics["teacher"]["test_agreement"] > 0.8
    # With most of the weight on the labels, the labels win.
    mostly_labels = {**taught, "train.teacher_weight": 0.1, "train.teacher_temperature": 1.0}
    honest = mlplab.train(overrides=mostly_labels, out=tmp_path, verbose=False, report=False)
    assert honest.metrics["test_accuracy"] > 0.8


def test_a_distilled_run_records_its_teacher(tmp_path, monkeypatch, digits_run):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "teachers").symlink_to(digits_run.path.parent)
    relative = f"teachers/{digits_run.path.name}"
    assert main(["train", "--teacher", relative, "--epochs", "3", "--out", "runs", "-q"]) == 0
    run = mlplab.load_run("last")
    # The teacher's folder is kept as an absolute path, so that resume finds it from anywhere.
    config = tomllib.loads((run.path / "config.toml").read_text())
    assert config["train"]["teacher"] == str(tmp_path / relative)  # absolute, links kept
    facts = run.metrics["teacher"]
    assert facts["test_accuracy"] == digits_run.metrics["test_accuracy"]
    assert facts["parameters"] == digits_run.parameters and facts["members"] is None
    assert facts["temperature"] == 4.0 and facts["weight"] == 0.9
    assert 0.5 < facts["train_accuracy"] <= 1 and 0.5 < facts["test_agreement"] <= 1
    assert all(row["teacher_loss"] > 0 for row in run.history)
    assert "teacher_loss" in (run.path / "history.csv").read_text().splitlines()[0]
    line = taught_line(run.metrics)
    assert line.startswith("taught by digits-mlp (a network, test accuracy ")
    assert line in (run.path / "report.txt").read_text()
    page = (run.path / "report.html").read_text()
    assert "<h2>Teacher</h2>" in page and "teacher_loss" in page


def test_with_augmentation_the_teacher_answers_for_the_changed_images(digits_run):
    """The in-step teacher (augmentation on) computes what the precomputed one does."""
    x = mlplab.data.load_dataset("digits").x_train[:64]
    teacher = load_teacher(str(digits_run.path), list(digits_run.class_names), (8, 8, 1))
    shared = teacher.network(x)  # its probabilities for x, as the teacher's facts use them
    own = TeacherNetwork(shared.model, shared.order)  # the trainer predicts them itself
    stepwise = FusedTrainer(mlplab.config.AugmentConfig(translate=1), shared)
    state = stepwise._teaching(x, 4.0)["teacher_state"]
    in_step = np.asarray(stepwise._teacher_says(state, jnp.asarray(x), 4.0))
    for network in (shared, own):
        once = FusedTrainer(teacher=network)._teaching(x, 4.0)["teacher"]
        np.testing.assert_allclose(in_step, np.asarray(once), atol=1e-5)


def test_a_distilled_run_resumes_as_if_it_never_stopped(tmp_path, monkeypatch, digits_run):
    """With augmentation, dropout and a schedule (test_resume's HARD), so the in-step teacher."""
    taught = {**HARD, "train.teacher": str(digits_run.path)}
    unbroken = mlplab.train(overrides=taught, out=tmp_path / "a", verbose=False, report=False)
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=taught, out=tmp_path / "b", verbose=False, report=False)
    monkeypatch.undo()
    assert stopped.status == "interrupted"
    resumed = mlplab.resume(stopped.path, verbose=False, report=False)
    _same_training(resumed, unbroken)
    assert [r["teacher_loss"] for r in resumed.history] == [
        r["teacher_loss"] for r in unbroken.history
    ]


def test_the_epoch_line_shows_what_the_teacher_term_cost():
    from mlplab.progress import epoch_line

    stats = {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "teacher_loss": 1.25, "seconds": 0.5}
    assert epoch_line(stats, 4) == "epoch 2/4  loss 0.500  acc 0.800  teacher_loss 1.250  0.50s"


# --- the learning-rate finder with a teacher -------------------------------------------------


def test_lr_find_follows_the_loss_a_taught_network_minimises(digits_run):
    """The range test's curve is of the distillation objective: at its first step (the
    initial weights, the same first batch) (1 - w) x the labels' loss + w x the teacher
    term, so the curve at weight 0.5 lies halfway between weight 1 (the teacher alone) and
    no teacher (the labels alone)."""
    quick = {"model.dropout": 0.0}  # nothing random in the forward pass
    first = {}
    for weight in (None, 0.5, 1.0):
        overrides = dict(quick)
        if weight is not None:
            overrides |= {"train.teacher": str(digits_run.path), "train.teacher_weight": weight}
        result = mlplab.lr_find(overrides=overrides, steps=20, out=None, verbose=False)
        first[weight] = float(result.sweep.losses[0])
    assert abs(first[1.0] - first[None]) > 0.1  # the teacher term is not the labels' loss
    assert first[0.5] == pytest.approx((first[None] + first[1.0]) / 2, rel=1e-4)


def test_lr_find_says_and_records_its_teacher(tmp_path, monkeypatch, digits_run):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "teachers").symlink_to(digits_run.path.parent)
    relative = f"teachers/{digits_run.path.name}"
    said = io.StringIO()
    result = mlplab.lr_find(
        overrides={"train.teacher": relative}, steps=20, out="tests", stream=said
    )
    assert f"taught by {relative} (digits-mlp, test accuracy " in said.getvalue()
    summary = json.loads((result.path / "lr_find.json").read_text())
    # Absolute, as train keeps it: base.toml trains with the same teacher from anywhere.
    assert summary["teacher"] == str(tmp_path / relative)
    base = tomllib.loads((result.path / "base.toml").read_text())
    assert base["train"]["teacher"] == str(tmp_path / relative)


def test_lr_find_refuses_a_bad_teacher_in_one_line(capsys, tmp_path):
    args = ["lr-find", "--set", f"train.teacher={json.dumps(str(tmp_path / 'gone'))}"]
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mlplab: error: train.teacher = '{tmp_path / 'gone'}': no such run directory"
    assert not list(tmp_path.iterdir())
