"""Integration: real training on scikit-learn's digits, through the Python API."""

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab import DataError, load_run

from .conftest import save_png
from .datagen import photo_of

RUN_FILES = {
    "config.toml",
    "history.csv",
    "metrics.json",
    "model.keras",
    "report.txt",
    "report.html",
    "test_predictions.npz",
    "novelty.npz",
    "curves.png",
    "confusion.png",
    "per_class.png",
    "samples.png",
    "mistakes.png",
    "correct.png",
    "weights.png",
    "calibration.png",
    "why_mistakes.png",
    "robustness.png",
    "hidden.png",
    "gradients.png",
    "layer_views.png",
    "coverage.png",
}


def quick(tmp_path, **overrides):
    return mlplab.train(overrides={"train.epochs": 3, **overrides}, out=tmp_path, verbose=False)


@pytest.mark.slow
def test_default_recipe_beats_95_percent_on_digits_over_three_seeds(tmp_path):
    accuracies = [
        mlplab.train(overrides={"train.seed": seed}, out=tmp_path, verbose=False).metrics[
            "test_accuracy"
        ]
        for seed in (0, 1, 2)
    ]
    assert np.mean(accuracies) >= 0.95, accuracies


def test_run_directory_has_every_file_and_nothing_else(digits_run):
    assert {p.name for p in digits_run.path.iterdir()} == RUN_FILES
    assert digits_run.path.name.endswith("-digits-mlp")
    m = digits_run.metrics
    assert m["status"] == "complete" and m["epochs_completed"] == 15
    assert len(m["confusion_matrix"]) == 10 and sum(map(sum, m["confusion_matrix"])) == 360
    assert set(m["per_class"]) == set("0123456789")
    assert m["wall_seconds"] > m["train_seconds"] > 0
    assert m["dataset"]["validation_samples"] > 0
    report = (digits_run.path / "report.txt").read_text()
    assert "precision" in report and "digits-mlp on digits" in report


def test_curves_png_is_a_real_picture(digits_run):
    with Image.open(digits_run.path / "curves.png") as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 300
        pixels = np.asarray(image.convert("L"), np.float32)
    assert pixels.std() > 10  # not blank


def test_evaluate_reproduces_the_recorded_test_metrics(digits_run):
    result = mlplab.evaluate(digits_run.path)
    assert result["test_accuracy"] == digits_run.metrics["test_accuracy"]
    assert result["test_loss"] == pytest.approx(digits_run.metrics["test_loss"], rel=1e-5)
    assert "precision" in result["report"]


def test_predict_png_files_written_from_digits_images(digits_run, digits_data, tmp_path):
    x, y = digits_data.x_test[:40], digits_data.y_test[:40]
    predicted = digits_run.predict(x).argmax(axis=1)
    paths, inverted_paths = [], []
    for i, image in enumerate(x):
        paths.append(save_png(tmp_path / f"digit{i}.png", image[..., 0]))
        big = Image.fromarray(255 - image[..., 0]).resize((64, 64), Image.Resampling.NEAREST)
        big.save(tmp_path / f"drawn{i}.png")
        inverted_paths.append(tmp_path / f"drawn{i}.png")
    # The files give exactly what the arrays give...
    results = mlplab.predict(digits_run.path, paths, top=2)
    assert [int(r["label"]) for r in results] == predicted.tolist()
    assert all(len(r["top"]) == 2 and not r["inverted"] for r in results)
    # ...and the model is right about (nearly) all of them, so predict returns their class.
    assert np.mean(predicted == y) >= 0.9
    # Black-on-white drawings at another size are inverted and shrunk to match.
    drawn = mlplab.predict(digits_run.path, inverted_paths)
    assert all(r["inverted"] for r in drawn)
    assert np.mean([int(r["label"]) == t for r, t in zip(drawn, y, strict=True)]) >= 0.9


def test_predict_reads_photos_of_drawings_on_unevenly_lit_paper(digits_run, digits_data, tmp_path):
    """Dark strokes on paper photographed in uneven light: inverted although the paper is
    partly darker than mid-gray, the lighting levelled, the strokes framed."""
    rng = np.random.default_rng(0)
    x, y = digits_data.x_test[:40], digits_data.y_test[:40]
    paths = [photo_of(image[..., 0], rng, tmp_path / f"photo{i}.jpg") for i, image in enumerate(x)]
    results = mlplab.predict(digits_run.path, paths)
    assert all(r["inverted"] for r in results)
    right = np.mean([int(r["label"]) == t for r, t in zip(results, y, strict=True)])
    assert right >= 0.8, right  # 0.125 before background levelling (mlplab 034ba60)


def test_same_seed_same_results_different_seed_different(tmp_path):
    first, second = quick(tmp_path / "a"), quick(tmp_path / "b")

    def without_timing(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert without_timing(first.history) == without_timing(second.history)
    assert first.metrics["test_loss"] == second.metrics["test_loss"]
    assert first.metrics["confusion_matrix"] == second.metrics["confusion_matrix"]
    other = quick(tmp_path / "c", **{"train.seed": 1})
    assert other.history[0]["loss"] != first.history[0]["loss"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"data.validation": "test", "model.hidden": [], "data.scaling": "unit"},
        {
            "data.validation": 0.0,
            "model.batch_norm": True,
            "train.optimizer": "sgd",
            "train.momentum": 0.9,
            "train.schedule": "one-cycle",
        },
        {
            "model.activation": "sigmoid",
            "train.optimizer": "rmsprop",
            "train.schedule": "cosine",
            "model.l2": 1e-3,
            "data.scaling": "centered",
        },
    ],
)
def test_configuration_variants_train_and_save(tmp_path, overrides):
    run = quick(tmp_path, **overrides)
    assert run.metrics["status"] == "complete"
    assert run.metrics["test_accuracy"] > 0.5
    reloaded = load_run(run.path)
    np.testing.assert_allclose(
        reloaded.predict(np.zeros((1, 8, 8, 1), np.uint8)),
        run.predict(np.zeros((1, 8, 8, 1), np.uint8)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_without_validation_history_has_no_val_columns(tmp_path):
    run = quick(tmp_path, **{"data.validation": 0.0})
    assert "val_loss" not in run.history[0]
    assert (run.path / "history.csv").read_text().startswith("epoch,loss,accuracy,lr,seconds")


def test_early_stopping_restores_best_validation_epoch(tmp_path):
    run = mlplab.train(
        overrides={"train.epochs": 200, "train.patience": 3, "train.learning_rate": 0.01},
        out=tmp_path,
        verbose=False,
    )
    assert run.metrics["status"] == "early_stopped"
    history = run.history
    assert run.metrics["best_epoch"] == len(history) - 3
    best = min(history, key=lambda row: row["val_loss"])
    assert best["epoch"] == run.metrics["best_epoch"]


def test_saved_model_loads_in_plain_keras_and_takes_raw_pixels(digits_run, digits_data):
    import keras

    model = keras.saving.load_model(digits_run.path / "model.keras", safe_mode=True)
    proba = np.asarray(model.predict(digits_data.x_test[:5], verbose=0))
    np.testing.assert_allclose(proba, digits_run.predict(digits_data.x_test[:5]), rtol=1e-5)


def test_bad_dataset_leaves_no_run_directory(tmp_path):
    with pytest.raises(DataError):
        mlplab.train(overrides={"data.dataset": "nope"}, out=tmp_path, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_lines_when_not_a_terminal(tmp_path):
    import io

    stream = io.StringIO()
    mlplab.train(overrides={"train.epochs": 2}, out=tmp_path, stream=stream)
    lines = stream.getvalue().splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
    assert epoch_lines[1].startswith("epoch 2/2  loss ")
    assert "val_acc" in epoch_lines[1] and epoch_lines[1].endswith("s")


def test_evaluate_refuses_a_dataset_of_another_shape(digits_run, tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x, y_train=np.arange(6) % 2, x_test=x, y_test=np.arange(6) % 2)
    with pytest.raises(DataError, match=r"tiny has \(4, 4, 1\) images but the model takes"):
        mlplab.evaluate(digits_run, dataset=str(path))


def test_a_crash_mid_training_leaves_a_run_marked_incomplete(tmp_path, monkeypatch):
    from mlplab import RunError, engine

    class Crashing(engine.FitTrainer):
        def fit(self, *args, **kwargs):
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(engine, "get_trainer", lambda *args: Crashing())
    with pytest.raises(RuntimeError, match="simulated crash"):
        quick(tmp_path)
    [run_dir] = list(tmp_path.iterdir())
    assert {p.name for p in run_dir.iterdir()} == {"config.toml"}
    with pytest.raises(RunError, match="incomplete run"):
        load_run(run_dir)


def test_a_crash_keeps_the_last_checkpointed_epoch(tmp_path, monkeypatch):
    from mlplab import RunError, engine

    class CrashAfterTwoEpochs(engine.FitTrainer):
        def fit(self, model, splits, config, listener, stop, start=None):
            listener.on_train_begin(config.epochs, 1)
            for epoch in (1, 2):
                listener.on_epoch_end(
                    {
                        "epoch": epoch,
                        "loss": 1.0 / epoch,
                        "accuracy": 0.5,
                        "lr": 0.001,
                        "seconds": 0.1,
                    }
                )
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(engine, "get_trainer", lambda *args: CrashAfterTwoEpochs())
    with pytest.raises(RuntimeError):
        mlplab.train(
            overrides={"train.epochs": 5}, out=tmp_path, verbose=False, checkpoint_seconds=0
        )
    [run_dir] = list(tmp_path.iterdir())
    saved = {"config.toml", "history.csv", "checkpoint.keras", "resume.npz"}
    assert {p.name for p in run_dir.iterdir()} == saved
    assert (run_dir / "history.csv").read_text().splitlines()[-1].startswith("2,")
    with pytest.raises(RunError, match="checkpoint.keras holds the model"):
        load_run(run_dir)
    import keras

    assert keras.saving.load_model(run_dir / "checkpoint.keras", compile=False, safe_mode=True)


def test_a_finished_run_has_no_checkpoint_left(tmp_path):
    run = mlplab.train(
        overrides={"train.epochs": 2}, out=tmp_path, verbose=False, checkpoint_seconds=0
    )
    assert not (run.path / "checkpoint.keras").exists()
    assert {p.name for p in run.path.iterdir()} == RUN_FILES
