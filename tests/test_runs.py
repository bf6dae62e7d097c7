import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import mlplab
from mlplab import DataError, RunError, load_run
from mlplab.runs import (
    RunWriter,
    atomic_write_text,
    history_csv,
    read_history,
    to_json,
)


def test_atomic_write_leaves_no_temp_files_and_normal_permissions(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert path.stat().st_mode & 0o044  # readable by others, like any file written normally


def test_history_csv_round_trip_without_validation_columns(tmp_path):
    history = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "lr": 0.01, "seconds": 1.25}]
    text = history_csv(history)
    assert text.splitlines()[0] == "epoch,loss,accuracy,lr,seconds"
    (tmp_path / "h.csv").write_text(text)
    assert read_history(tmp_path / "h.csv") == history


def test_empty_history_has_a_header():
    assert history_csv([]) == "epoch\n"


def test_json_has_no_nan():
    assert json.loads(to_json({"a": float("nan"), "b": [float("inf"), 1.0]})) == {
        "a": None,
        "b": [None, 1.0],
    }


def test_run_directories_get_unique_names(tmp_path):
    first = RunWriter.create(tmp_path, "my run/1").path
    second = RunWriter.create(tmp_path, "my run/1").path
    assert first != second and first.name.endswith("my-run-1")


def test_loaded_run_has_config_history_metrics_and_model(digits_run):
    run = load_run(digits_run.path)
    assert run.config == digits_run.config
    assert len(run.history) == 15 and run.history[0]["epoch"] == 1
    assert run.metrics == digits_run.metrics
    assert run.meta["seed"] == 0 and "keras" in run.meta and "jax" in run.meta
    assert run.class_names == list("0123456789") and run.image_shape == (8, 8, 1)
    assert run.model.count_params() == digits_run.model.count_params()


def copy_run(run, tmp_path):
    return shutil.copytree(run.path, tmp_path / "copy")


def test_missing_and_incomplete_runs_are_explained(digits_run, tmp_path):
    with pytest.raises(RunError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(RunError, match="not an mlplab run directory"):
        load_run(tmp_path)
    with pytest.raises(RunError, match="not a directory"):
        load_run(digits_run.path / "metrics.json")
    copy = copy_run(digits_run, tmp_path)
    (copy / "metrics.json").unlink()
    with pytest.raises(RunError, match="incomplete run"):
        load_run(copy)


def test_corrupt_files_are_reported_with_their_path(digits_run, tmp_path):
    copy = copy_run(digits_run, tmp_path)
    (copy / "metrics.json").write_text("{not json")
    with pytest.raises(RunError, match="metrics.json: unreadable"):
        load_run(copy)
    shutil.copy(digits_run.path / "metrics.json", copy / "metrics.json")
    (copy / "config.toml").write_text("[train]\nepochz = 1\n")
    with pytest.raises(RunError, match="config.toml: unreadable: unknown key 'train.epochz'"):
        load_run(copy)


def test_corrupt_or_missing_model_file(digits_run, tmp_path):
    copy = copy_run(digits_run, tmp_path)
    (copy / "model.keras").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(RunError, match="model.keras: cannot load model"):
        load_run(copy).model  # noqa: B018
    (copy / "model.keras").unlink()
    with pytest.raises(RunError, match="model file missing"):
        load_run(copy).model  # noqa: B018


def test_predict_checks_shape_and_values(digits_run):
    with pytest.raises(DataError, match=r"images are \(4, 4, 1\) but this model takes \(8, 8, 1"):
        digits_run.predict(np.zeros((1, 4, 4, 1), np.uint8))
    with pytest.raises(DataError, match="already scaled to 0..1"):
        digits_run.predict(np.full((1, 8, 8, 1), 0.5, np.float32))
    with pytest.raises(DataError, match="pixels must lie in 0..255, found -1..-1"):
        digits_run.predict(np.full((1, 8, 8), -1, np.int64))
    assert digits_run.predict(np.zeros((2, 8, 8), np.uint8)).shape == (2, 10)
    # Whole numbers of any dtype, and rows of pixels, as MLPClassifier takes them.
    x = mlplab.data.load_dataset("digits").x_test[:5]
    expected = digits_run.predict(x)
    for same in (x.astype(np.int64), x.astype(np.float64), x.reshape(5, 64)):
        np.testing.assert_array_equal(digits_run.predict(same), expected)


def test_predict_takes_one_file_or_pil_images_as_files(digits_run, tmp_path):
    from PIL import Image

    pixels = (np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)
    path = tmp_path / "drawn.png"
    Image.fromarray(pixels).save(path)
    expected = digits_run.predict([path])
    assert expected.shape == (1, 10)
    # One image as itself, not a list of one: a path (not its characters), a str, a PIL image.
    for one in (path, str(path), Image.fromarray(pixels)):
        np.testing.assert_array_equal(digits_run.predict(one), expected)
    # A PIL image is read as its file would be (upright, inverted, framed and resized).
    with Image.open(path) as opened:
        found = digits_run.predict_files([opened, Image.fromarray(pixels).convert("RGB")])
    assert [result["file"] for result in found] == [str(path), "image 2"]
    assert found[0]["top"] == found[1]["top"] == digits_run.predict_files([path])[0]["top"]
    with pytest.raises(DataError, match="^image 1: a PIL image of mode F cannot be read"):
        digits_run.predict(Image.new("F", (8, 8)))


def test_last_is_the_newest_finished_run(digits_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError, match="no finished runs here to take as 'last'"):
        load_run("last")
    older = shutil.copytree(digits_run.path, tmp_path / "runs" / "20250101-000000-a")
    shutil.copytree(digits_run.path, tmp_path / "runs" / "20240101-000000-b")
    unfinished = tmp_path / "runs" / "20990101-000000-c"
    unfinished.mkdir()
    (unfinished / "config.toml").write_text("")
    assert load_run("last").path.resolve() == older


def test_loading_a_model_takes_its_small_programs_from_the_compilation_cache(tmp_path, digits_run):
    # Building the layers runs their initializers: compiled once, then read from the cache
    # by every later process that loads a model (predict, report, export, serve).
    script = (
        "import jax.monitoring as m, json, mlplab\n"
        "hits = []\n"
        "m.register_event_listener(lambda name, **kw: hits.append(name) "
        "if name == '/jax/compilation_cache/cache_hits' else None)\n"
        f"mlplab.load_run({str(digits_run.path)!r}).model\n"
        "print(json.dumps(len(hits)))\n"
    )
    env = {**os.environ, "MLPLAB_JAX_CACHE": str(tmp_path / "jax-cache")}

    def hits() -> int:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert hits() == 0  # a fresh cache
    assert hits() > 0
