"""The command line: success paths in-process, errors as one line with exit code 2."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab import load_run
from mlplab.cli import main
from mlplab.metrics import interval_text

from .conftest import save_png


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def train_on(capsys, tmp_path, dataset, *extra, epochs="2"):
    """`mlplab train --dataset DATASET` for a few epochs into tmp_path/runs, quietly; the
    run's folder (the test fails with train's stderr if it does not train)."""
    runs = tmp_path / "runs"
    argv = ["train", "--dataset", str(dataset), "--epochs", epochs, "--out", str(runs), "-q"]
    code, _, err = run_cli(capsys, *argv, *extra)
    assert code == 0, err
    return max(runs.iterdir())


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("mlplab 0.")


def test_recipes_lists_names_with_descriptions(capsys):
    code, out, _ = run_cli(capsys, "recipes")
    assert code == 0
    assert any(line.startswith("digits-mlp ") and len(line) > 30 for line in out.splitlines())


def test_recipes_name_prints_toml(capsys):
    code, out, _ = run_cli(capsys, "recipes", "digits-softmax")
    assert code == 0 and "hidden = []" in out


def test_config_prints_resolved_toml_with_overrides(capsys):
    code, out, _ = run_cli(capsys, "config", "--set", "train.epochs=7")
    assert code == 0 and "epochs = 7" in out and 'name = "digits-mlp"' in out
    code, out, _ = run_cli(capsys, "config", "--keys")
    assert code == 0 and "train.learning_rate" in out


def test_train_evaluate_predict_round_trip(capsys, tmp_path, digits_data):
    code, out, err = run_cli(
        capsys,
        "train",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--lr",
        "0.003",
        "--seed",
        "4",
        "--name",
        "cli-test",
        "--out",
        str(tmp_path),
        "--set",
        "model.hidden=[32]",
        "--set",
        "train.step_epochs=2",  # not read by the constant schedule: said, not refused
    )
    assert code == 0, err
    assert 'note: train.step_epochs = 2 is not used: it applies to train.schedule "step"' in err
    [run_dir] = list(tmp_path.iterdir())
    assert run_dir.name.endswith("-cli-test")
    assert f"run written to {run_dir}/" in out and "test accuracy" in out
    # The accuracy's 95% interval over the test images, in the summary and in report.txt
    interval = interval_text(json.loads((run_dir / "metrics.json").read_text()))
    assert interval.startswith("95% CI 0.") and f" ({interval})  test loss" in out
    assert "test accuracy 0." in (run_dir / "report.txt").read_text().splitlines()[0]
    assert f"({interval})" in (run_dir / "report.txt").read_text().splitlines()[0]
    assert f'<div class="n">{interval}</div>' in (run_dir / "report.html").read_text()
    # not a terminal: one plain line per epoch, no progress-bar redraws
    assert sum(line.startswith("epoch ") for line in err.splitlines()) == 3
    run = load_run(run_dir)
    assert (run.config.train.epochs, run.config.train.batch_size) == (3, 64)
    assert (run.config.train.learning_rate, run.config.train.seed) == (0.003, 4)
    assert run.config.model.hidden == (32,)
    assert run.meta["command"].startswith("mlplab train --epochs 3 --batch-size 64 --lr 0.003")

    code, out, _ = run_cli(capsys, "evaluate", str(run_dir))
    assert code == 0 and f"accuracy {run.metrics['test_accuracy']:.4f} ({interval})" in out
    assert f"calibration error (ECE) {run.metrics['calibration']['ece']:.4f}" in out
    assert "if unsure is allowed (predict --min-probability P): " in out
    code, out, _ = run_cli(capsys, "evaluate", str(run_dir), "--json")
    assert json.loads(out)["test_accuracy"] == run.metrics["test_accuracy"]

    image = digits_data.x_test[0, ..., 0]
    path = save_png(tmp_path / "digit.png", image)
    expected = run.class_names[int(run.predict(image[None]).argmax())]
    code, out, _ = run_cli(capsys, "predict", str(run_dir), str(path), "--json", "--top", "2")
    assert code == 0
    [result] = json.loads(out)
    assert result["label"] == expected and len(result["top"]) == 2
    code, out, _ = run_cli(capsys, "predict", str(run_dir), str(path))
    assert code == 0 and out.split()[:2] == [str(path), expected]
    folder = tmp_path / "photos"
    for i in range(3):
        (folder / f"{i % 2}").mkdir(parents=True, exist_ok=True)
        save_png(folder / f"{i % 2}" / f"{i}.png", digits_data.x_test[i, ..., 0])
    code, out, _ = run_cli(capsys, "predict", str(run_dir), str(folder), "--json")
    files = [r["file"] for r in json.loads(out)]
    assert code == 0 and files == [str(folder / p) for p in ("0/0.png", "0/2.png", "1/1.png")]


def test_train_seeds_trains_one_run_per_seed_and_reports_mean_and_std(capsys, tmp_path):
    import statistics
    import tomllib

    from mlplab.diagnosis import read_curves

    argv = ["train", "--epochs", "3", "--seeds", "3,5", "--out", str(tmp_path), "-q"]
    code, out, err = run_cli(capsys, *argv, "--no-report")
    assert code == 0, err
    runs = sorted(tmp_path.iterdir())
    assert [p.name.rsplit("-", 1)[1] for p in runs] == ["seed3", "seed5"]
    scores = [load_run(p).metrics["test_accuracy"] for p in runs]
    # Each seed's line says what its learning curves say (3 epochs: still improving).
    for seed, path in zip((3, 5), runs, strict=True):
        run = load_run(path)
        kinds = [f.kind for f in read_curves(run.history, 10, 0.001, run.status)]
        [line] = [line for line in out.splitlines() if line.startswith(f"seed {seed}: ")]
        assert line.endswith(f"{path}  (curves: {', '.join(kinds)})" if kinds else str(path))
    assert "(curves: still improving)" in out
    spread = f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"
    assert f"digits-mlp over 2 seeds (3, 5): test accuracy {spread}" in out
    assert "compare them: mlplab compare " + " ".join(map(str, runs)) in out
    config = tomllib.loads((runs[1] / "config.toml").read_text())
    assert config["train"]["seed"] == 5 and config["name"] == "digits-mlp-seed5"
    # each run records the command that trains it alone
    assert "--seeds" not in config["meta"]["command"]
    assert config["meta"]["command"].endswith("--seed 5 --name digits-mlp-seed5")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--set", "train.epoch=3"], "did you mean 'train.epochs'?"),
        (["train", "--set", "train.learning_rate=-1"], "must be > 0"),
        (["train", "--batch-size", "0"], "train.batch_size = 0"),
        (["train", "--set", "model.dropout=1"], "model.dropout = 1"),
        (["train", "--set", "model.activation=rellu"], "did you mean 'relu'?"),
        (["train", "nosuchrecipe"], "unknown recipe 'nosuchrecipe'"),
        (["train", "missing.toml"], "missing.toml: no such config file"),
        (["train", "--dataset", "nosuch"], "unknown dataset"),
        (["evaluate", "no/such/run"], "no such run directory"),
        (["predict", "no/such/run", "x.png"], "no such run directory"),
        (["train", "--seeds", "two"], "--seeds 'two': give a number of seeds (3)"),
        (["train", "--seeds", "1,1"], "--seeds '1,1': give a number of seeds"),
        (["train", "--seeds=-1,2"], "train.seed = -1 is not valid: must be >= 0"),
        (["recipes", "nope"], "unknown recipe"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("mlplab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run directory was started


def test_invalid_toml_and_bad_values_in_a_file(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = \n")
    code, _, err = run_cli(capsys, "train", str(bad), "--out", str(tmp_path / "runs"))
    assert code == 2 and f"{bad}: invalid TOML" in err
    bad.write_text("[train]\nbatch_size = -3\n")
    code, _, err = run_cli(capsys, "train", str(bad), "--out", str(tmp_path / "runs"))
    assert code == 2 and "train.batch_size = -3" in err


def test_predict_bad_images(capsys, digits_run, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    for path, message in [
        (junk, "image Pillow can decode"),
        (tmp_path / "none.png", "no such image file"),
    ]:
        code, out, err = run_cli(capsys, "predict", str(digits_run.path), str(path))
        assert code == 2 and str(path) in err and message in err and out == ""
    code, _, err = run_cli(capsys, "predict", str(digits_run.path), str(junk), "--top", "0")
    assert code == 2 and "--top 0" in err


def test_predict_show_draws_what_the_model_saw(capsys, digits_run, digits_data, tmp_path):
    drawings = []
    for i, image in enumerate(digits_data.x_test[:3]):
        big = Image.fromarray(255 - image[..., 0]).resize((64, 64), Image.Resampling.NEAREST)
        big.save(tmp_path / f"drawn{i}.png")
        drawings.append(str(tmp_path / f"drawn{i}.png"))
    sheet = tmp_path / "seen.png"
    run = str(digits_run.path)
    code, out, _ = run_cli(capsys, "predict", run, *drawings, "--show", str(sheet))
    assert code == 0 and f"wrote {sheet}" in out
    with Image.open(sheet) as picture:
        assert picture.format == "PNG" and picture.width > picture.height > 100
        pixels = np.asarray(picture.convert("L"))
    assert (pixels < 50).mean() > 0.1  # the inverted inputs: mostly dark tiles, not blank
    # A folder that does not exist, or a CSV (already pixels): one line, nothing written.
    missing = tmp_path / "no" / "seen.png"
    code, out, err = run_cli(capsys, "predict", run, drawings[0], "--show", str(missing))
    assert code == 2 and f"{missing}: cannot write" in err and out == ""
    csv = tmp_path / "test.csv"
    csv.write_text(",".join(f"pixel{i}" for i in range(64)) + "\n" + ",".join(["0"] * 64) + "\n")
    code, _, err = run_cli(capsys, "predict", run, str(csv), "--show", str(sheet))
    assert code == 2 and "--show takes image files" in err


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--epochs", "many"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid int value: 'many'" in err


def cli_process(*argv, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlplab", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_installed_command_reports_errors_without_traceback(tmp_path):
    process = cli_process("train", "--set", "model.hidden=[0]", "--out", str(tmp_path))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and out == ""
    assert err == "mlplab: error: model.hidden = [0] is not valid: every layer size must be > 0\n"


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_writes_the_run(tmp_path):
    process = cli_process("train", "--epochs", "1000", "--out", str(tmp_path))
    deadline = time.monotonic() + 120
    seen = ""
    while "epoch 3/" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "status: interrupted" in out
    assert "stopping after this step" in err and "Traceback" not in err
    [run_dir] = list(tmp_path.iterdir())
    run = load_run(run_dir)
    assert run.status == "interrupted"
    assert 3 <= len(run.history) < 1000
    assert {p.name for p in run_dir.iterdir()} >= {"model.keras", "metrics.json", "curves.png"}
    assert run.predict(np.zeros((1, 8, 8, 1), np.uint8)).shape == (1, 10)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("numpy", "KERAS_BACKEND=numpy cannot train models"),
        ("no_such_backend", "KERAS_BACKEND=no_such_backend"),
    ],
)
def test_unusable_keras_backend_is_one_line(tmp_path, backend, message):
    env = {**os.environ, "KERAS_BACKEND": backend}
    process = subprocess.run(
        [sys.executable, "-m", "mlplab", "train", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert process.stderr.startswith("mlplab: error: ") and message in process.stderr
    assert process.stderr.count("\n") == 1


def test_bench_quick_runs(capsys):
    """A smoke test: the benchmark runs and prints its table (no timing is asserted)."""
    code, out, err = run_cli(capsys, "bench", "--quick")
    assert code == 0, err
    assert out.startswith("| network | engine s/epoch | fit s/epoch | engine/fit |")
    assert "784-64-64-10" in out and "Peak RSS" in out
    # The engine's XLA options, and the command that gives them to fit as well.
    assert "--xla_cpu_scheduler_type=" in out
    assert 'XLA_FLAGS="--xla_cpu_' in out and "mlplab bench --network 784-64-64-10" in out


def test_bench_rounds_report_the_median_ratio_and_its_range(capsys):
    code, out, err = run_cli(capsys, "bench", "--quick", "--rounds", "2")
    assert code == 0, err
    assert "round 1/2" in err and "round 2/2" in err
    row = next(line for line in out.splitlines() if line.startswith("| 784-64"))
    ratio_cell = row.split("|")[4].strip()
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d to \d+\.\d\d\)", ratio_cell), ratio_cell
    # The matmul speed is measured in each round, next to the engine's epochs.
    share_cell = row.split("|")[7].strip()
    assert re.fullmatch(r"\d+% \(\d+% to \d+%\)", share_cell), share_cell
    assert err.count("% of measured matmul speed") == 2


def test_bench_rejects_zero_rounds(capsys):
    code, _, err = run_cli(capsys, "bench", "--quick", "--rounds", "0")
    assert code == 2 and "--rounds 0" in err


def test_bench_rejects_an_unknown_network(capsys):
    code, _, err = run_cli(capsys, "bench", "--network", "999-1")
    assert code == 2 and "no such network" in err


def _python(code: str) -> list[str]:
    """The stdout lines of ``code`` run in a fresh interpreter (imports are per process)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_command_line_imports_keras_without_its_extras():
    """Keras imports scikit-learn (with SciPy), matplotlib and pandas only for keras.wrappers,
    keras.visualization and fitting on DataFrames; the CLI hides them from keras alone: they
    still work afterwards (digits loads through scikit-learn, a report draws with
    matplotlib). pandas comes with the test extras (cleanlab needs it)."""
    lines = _python(
        "import sys\n"
        "from mlplab import cli\n"
        "from mlplab._backend import ensure_keras\n"
        "assert cli.main(['recipes']) == 0\n"
        "ensure_keras()\n"
        "hidden = ('sklearn', 'scipy.stats', 'matplotlib', 'pandas')\n"
        "loaded = [m for m in hidden if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "from mlplab.data.catalog import load_named\n"
        "from mlplab.report.plots import curves_png\n"
        "digits = load_named('digits')\n"
        "png = curves_png([{'epoch': 1, 'loss': 1.0, 'accuracy': 0.5}], 'run')\n"
        "print(len(digits.y_train) + len(digits.y_test), png[:4] == b'\\x89PNG')\n"
    )
    assert lines[-1] == "1797 True"


def test_a_command_line_process_imports_keras_lean_wherever_it_first_does():
    """Not only through ensure_keras: `predict` and `evaluate` first import keras where
    mlplab.engine does. Afterwards keras names its real loader (a wrapper ran its import)."""
    lines = _python(
        "import sys, importlib.resources\n"
        "from mlplab import cli\n"
        "assert cli.main(['recipes']) == 0\n"
        "import mlplab.engine, keras\n"
        "hidden = ('sklearn', 'scipy.stats', 'matplotlib', 'pandas')\n"
        "print([m for m in hidden if m in sys.modules])\n"
        "print(type(keras.__loader__).__name__, type(keras.__spec__.loader).__name__)\n"
        "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
        "print(model.count_params(), importlib.resources.files('keras').is_dir())\n"
        "print([type(f).__name__ for f in sys.meta_path if 'Lean' in type(f).__name__])\n"
    )
    assert lines[-4:] == ["[]", "SourceFileLoader SourceFileLoader", "8 True", "[]"]


def test_the_library_leaves_keras_whole():
    lines = _python(
        "from mlplab._backend import ensure_keras\n"
        "ensure_keras()\n"
        "from keras.src.visualization import plot_image_gallery\n"
        "from keras.src.wrappers import sklearn_wrapper\n"
        "from keras.src.trainers.data_adapters import array_slicing\n"
        "print(sklearn_wrapper.sklearn is not None, plot_image_gallery.plt is not None,\n"
        "      array_slicing.pandas is not None)\n"
    )
    assert lines == ["True True True"]


def test_keras_imports_on_a_thread_while_data_is_read():
    """The reading thread still gets scikit-learn while keras, importing beside it, does not
    need it; a failing body waits for the import before its error propagates."""
    lines = _python(
        "import sys\n"
        "from mlplab import _backend\n"
        "_backend.lean_keras_import()\n"
        "try:\n"
        "    with _backend.keras_importing():\n"
        "        from sklearn.model_selection import train_test_split\n"
        "        raise RuntimeError('a data error')\n"
        "except RuntimeError as exc:\n"
        "    print(exc, 'keras' in sys.modules, callable(train_test_split))\n"
        "from keras.src.backend import backend\n"
        "print(backend())\n"
    )
    assert lines == ["a data error True True", "jax"]


def test_training_imports_the_report_modules_on_a_thread(tmp_path):
    """matplotlib (for the report) imports beside the compiled epochs, not after them; without
    a report it is not imported at all."""
    lines = _python(
        "import sys, threading, importlib.abc\n"
        "class Spy(importlib.abc.MetaPathFinder):\n"
        "    threads = {}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib':\n"
        "            self.threads[name] = threading.current_thread().name\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from mlplab import cli\n"
        f"out = {str(tmp_path)!r}\n"
        "argv = ['train', '--epochs', '1', '-q', '--out', out]\n"
        "assert cli.main(argv + ['--no-report']) == 0\n"
        "without_report = 'matplotlib' in sys.modules\n"
        "assert cli.main(argv) == 0\n"
        "print('RESULT', without_report, Spy.threads)\n"
    )
    assert lines[-1] == "RESULT False {'matplotlib': 'mlplab-import'}"


def test_importing_waits_for_its_thread_and_leaves_errors_to_the_caller():
    lines = _python(
        "import sys\n"
        "from mlplab._backend import importing\n"
        "try:\n"
        "    with importing('colorsys', 'mlplab_no_such_module'):\n"
        "        raise RuntimeError('a training error')\n"
        "except RuntimeError as exc:\n"
        "    print(exc, 'colorsys' in sys.modules, 'mlplab_no_such_module' in sys.modules)\n"
    )
    assert lines == ["a training error True False"]


def test_predict_writes_a_csv(capsys, digits_run, digits_data, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(digits_data.x_test[:5]):
        save_png(folder / f"{i}.png", image[..., 0])
    table = tmp_path / "predictions.csv"
    run = str(digits_run.path)
    code, out, _ = run_cli(capsys, "predict", run, str(folder), "--csv", str(table), "--top", "3")
    assert code == 0 and out == f"wrote 5 predictions to {table}\n"
    rows = list(csv.DictReader(table.open()))
    code, out, _ = run_cli(capsys, "predict", run, str(folder), "--json", "--top", "3")
    printed = json.loads(out)
    assert [row["file"] for row in rows] == [p["file"] for p in printed]
    for row, answer in zip(rows, printed, strict=True):
        assert row["label"] == answer["label"] and row["inverted"] == str(int(answer["inverted"]))
        assert float(row["probability"]) == pytest.approx(answer["probability"], abs=1e-6)
        assert row["label_3"] == answer["top"][2]["label"]
        assert float(row["probability_2"]) == pytest.approx(answer["top"][1]["probability"])
    # Fewer classes than --top: the missing ranks are empty.
    code, _, _ = run_cli(capsys, "predict", run, str(folder), "--csv", str(table), "--top", "12")
    header, first = table.read_text().splitlines()[:2]
    # The run has a novelty reference: each row ends with familiar and novelty.
    assert header.endswith(",label_12,probability_12,inverted,blank,familiar,novelty")
    assert re.search(r",,,,0,0,[01],[0-9.]+$", first)
    for extra, message in (
        (["--json"], "--csv and --json: choose one"),
        ([], "cannot write"),
    ):
        target = tmp_path / "no" / "p.csv" if not extra else table
        code, out, err = run_cli(capsys, "predict", run, str(folder), "--csv", str(target), *extra)
        assert code == 2 and message in err and out == ""


def test_predict_a_csv_of_pixel_rows_answers_as_for_images(
    capsys, digits_run, digits_data, tmp_path
):
    x, y = digits_data.x_test[:12], digits_data.y_test[:12]
    flat = x.reshape(12, -1).astype(int)
    header = "label," + ",".join(f"pixel{i}" for i in range(64))
    rows = [",".join(map(str, [label, *pixels])) for label, pixels in zip(y, flat, strict=True)]
    pixels = tmp_path / "test.csv"
    pixels.write_text("\n".join([header, *rows]) + "\n")
    run = str(digits_run.path)
    code, out, err = run_cli(capsys, "predict", run, str(pixels), "--json", "--top", "2")
    assert code == 0, err
    answers = json.loads(out)
    expected = digits_run.predict(x).argmax(axis=1)
    assert [a["label"] for a in answers] == [digits_run.class_names[i] for i in expected]
    assert [a["row"] for a in answers] == list(range(1, 13))
    assert answers[6]["file"] == f"{pixels}:7" and len(answers[0]["top"]) == 2
    assert not any(a["inverted"] for a in answers) and "familiar" in answers[0]
    assert answers == mlplab.predict(digits_run, [pixels], top=2)
    assert "test.csv has labels (labels from column 'label'), left out here" in err
    assert f"mlplab evaluate {digits_run.path} --dataset {pixels}" in err
    table = tmp_path / "p.csv"
    code, out, _ = run_cli(capsys, "predict", run, str(pixels), "--csv", str(table))
    assert [row["label"] for row in csv.DictReader(table.open())] == [a["label"] for a in answers]
    code, out, _ = run_cli(capsys, "predict", run, str(pixels), "--min-probability", "0.9")
    assert code == 0 and out.splitlines()[-1].endswith("unsure")
    code, out, _ = run_cli(capsys, "predict", run, str(pixels), "--target-accuracy", "0.99")
    assert code == 0 and "answered at probability" in out.splitlines()[-1]
    for extra, message in (
        ([str(pixels)], "one CSV at a time"),
        (["--submission", str(table), "--json"], "--submission and --json: choose one"),
    ):
        code, out, err = run_cli(capsys, "predict", run, str(pixels), *extra)
        assert code == 2 and message in err and err.count("\n") == 1 and out == ""
    with pytest.raises(mlplab.ConfigError, match="show and explain take image files"):
        mlplab.predict(digits_run, [pixels], show=tmp_path / "s.png")


def test_predict_min_probability_marks_unsure_answers(capsys, digits_run, digits_data, tmp_path):
    (tmp_path / "images").mkdir()
    for i, image in enumerate(digits_data.x_test[:12]):
        save_png(tmp_path / "images" / f"{i:02d}.png", image[..., 0])
    folder = str(tmp_path / "images")
    run = str(digits_run.path)
    code, out, _ = run_cli(capsys, "predict", run, folder, "--json")
    best = sorted(answer["probability"] for answer in json.loads(out))
    cut = (best[5] + best[6]) / 2  # six of the twelve below it
    code, out, _ = run_cli(capsys, "predict", run, folder, "--min-probability", f"{cut:.8f}")
    lines = out.splitlines()
    assert code == 0 and lines[-1] == f"6 of 12 answered at probability >= {cut:g}; 6 unsure"
    assert sum("  unsure: " in line for line in lines[:-1]) == 6
    code, out, _ = run_cli(capsys, "predict", run, folder, "--min-probability", f"{cut:.8f}",
                           "--json")  # fmt: skip
    answers = json.loads(out)
    assert all(answer["sure"] == (answer["probability"] >= cut) for answer in answers)
    table = tmp_path / "p.csv"
    run_cli(capsys, "predict", run, folder, "--min-probability", f"{cut:.8f}", "--csv", str(table))
    rows = list(csv.DictReader(table.open()))
    assert [row["sure"] for row in rows] == [str(int(a["sure"])) for a in answers]
    for bad, message in (("1.5", "min_probability 1.5: must lie in 0..1"),):
        code, _, err = run_cli(capsys, "predict", run, folder, "--min-probability", bad)
        assert code == 2 and message in err and err.count("\n") == 1


def test_predict_target_accuracy_picks_the_threshold_off_the_test_split(
    capsys, digits_run, digits_data, tmp_path
):
    from mlplab.metrics import threshold_for

    (tmp_path / "images").mkdir()
    for i, image in enumerate(digits_data.x_test[:12]):
        save_png(tmp_path / "images" / f"{i:02d}.png", image[..., 0])
    folder, run = str(tmp_path / "images"), str(digits_run.path)
    y_true, proba = digits_run.test_predictions()
    assert np.array_equal(y_true, digits_data.y_test) and proba.shape == (len(y_true), 10)
    threshold, share = threshold_for(0.995, y_true, proba)
    assert digits_run.threshold_for_accuracy(0.995) == (threshold, share)
    code, out, err = run_cli(capsys, "predict", run, folder, "--target-accuracy", "0.995", "--json")
    assert code == 0 and err.count("\n") == 1
    assert f"unsure below p = {threshold:.4g}" in err and "were 99.5% right" in err
    answers = json.loads(out)
    assert all(answer["sure"] == (answer["probability"] >= threshold) for answer in answers)
    assert answers == mlplab.predict(digits_run, [folder], target_accuracy=0.995)
    code, out, _ = run_cli(capsys, "predict", run, folder, "--target-accuracy", "0.995")
    assert out.splitlines()[-1].startswith(f"{sum(a['sure'] for a in answers)} of 12 answered")
    for args, message in (
        (["--target-accuracy", "1.5"], "target accuracy 1.5: must lie between 0 and 1"),
        (["--target-accuracy", "0.9", "--min-probability", "0.5"], "choose one"),
    ):
        code, out, err = run_cli(capsys, "predict", run, folder, *args)
        assert code == 2 and message in err and err.count("\n") == 1 and out == ""
    with pytest.raises(mlplab.ConfigError, match="choose one"):
        mlplab.predict(digits_run, [folder], min_probability=0.5, target_accuracy=0.9)
    # A run whose test answers were all wrong has no such threshold; one without its test
    # predictions cannot say where it lies.
    other = tmp_path / "other"
    shutil.copytree(digits_run.path, other)
    wrong = (proba.argmax(axis=1) + 1) % 10
    np.savez(other / "test_predictions.npz", y_true=wrong, proba=proba)
    code, _, err = run_cli(capsys, "predict", str(other), folder, "--target-accuracy", "0.5")
    assert code == 2 and "no probability threshold made its answers 50% right on its 360" in err
    (other / "test_predictions.npz").unlink()
    code, _, err = run_cli(capsys, "predict", str(other), folder, "--target-accuracy", "0.9")
    assert code == 2 and "test_predictions.npz: missing" in err and err.count("\n") == 1


def test_info_says_what_this_installation_runs_on(capsys, monkeypatch, tmp_path):
    import keras

    monkeypatch.setenv("MLPLAB_JAX_CACHE", str(tmp_path / "compiled"))
    (tmp_path / "compiled").mkdir()
    (tmp_path / "compiled" / "entry").write_bytes(b"x" * 2**20)
    code, out, _ = run_cli(capsys, "info")
    assert code == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["keras"] == f"{keras.__version__} (backend: jax)"
    assert lines["jax"].endswith("(devices: 1 x cpu (cpu))")
    assert f"compiled programs: {tmp_path / 'compiled'} (1.0 MB)" in out
    assert "digits (bundled)" in lines["datasets"]
    assert lines["onnx"].startswith("onnx ")
    code, out, _ = run_cli(capsys, "info", "--json")
    facts = json.loads(out)
    assert facts["backend"] == "jax" and facts["libraries"]["numpy"] == np.__version__
    assert facts["caches"]["compiled programs"]["bytes"] == 2**20
    monkeypatch.setattr("mlplab.cli_info._version", lambda package: None)
    code, out, _ = run_cli(capsys, "info")
    assert "onnx       not installed (mlplab export needs: pip install onnx onnxruntime)" in out
    assert "numpy missing" in out


def test_predict_skips_unreadable_files_in_a_folder_but_not_named_ones(
    capsys, digits_run, digits_data, tmp_path
):
    from mlplab.errors import SkippedFilesWarning

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        save_png(folder / f"{i}.png", digits_data.x_test[i, ..., 0])
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "empty.jpg").write_bytes(b"")
    run = str(digits_run.path)
    code, out, err = run_cli(capsys, "predict", run, str(folder))
    assert code == 0 and out.count(".png  ") == 3 and "broken" not in out
    [line] = [line for line in err.splitlines() if "skipped" in line]
    assert line.startswith("mlplab: skipped 2 unreadable file(s) (first: ")
    assert "broken.png: not a PNG/JPEG/BMP/GIF/WebP image Pillow can decode)" in line
    # From Python: the same answers, and one warning for the files left out.
    with pytest.warns(SkippedFilesWarning, match="skipped 2 unreadable file"):
        answers = mlplab.predict(digits_run, [folder])
    assert [Path(a["file"]).name for a in answers] == ["0.png", "1.png", "2.png"]
    # A file named itself is still an error, and a folder of nothing readable too.
    code, _, err = run_cli(capsys, "predict", run, str(folder / "broken.png"))
    assert code == 2 and "broken.png: not a PNG/JPEG/BMP/GIF/WebP image" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    code, _, err = run_cli(capsys, "predict", run, str(bad))
    assert code == 2 and "no readable images: skipped 1 unreadable file(s)" in err


def test_the_mlplab_command_exits_with_mains_code_and_the_heap_frozen(monkeypatch, capsys):
    """``mlplab`` (cli.run) skips the last garbage collection at exit: it freezes the heap
    after main(), which returns the exit code."""
    import gc

    from mlplab.cli import run

    monkeypatch.setattr(sys, "argv", ["mlplab", "recipes"])
    try:
        with pytest.raises(SystemExit) as stopped:
            run()
        assert stopped.value.code == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on
    assert "fast-fashion-mnist" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["mlplab", "train", "--set", "train.nothing=1"])
    try:
        with pytest.raises(SystemExit) as stopped:
            run()
        assert stopped.value.code == 2
    finally:
        gc.unfreeze()


def test_a_run_hands_the_heap_back_to_the_garbage_collector(tmp_path, monkeypatch):
    import gc

    from mlplab import api

    frozen_during = []
    real = api.validate_and_calibrate

    def spy(*args, **kwargs):
        frozen_during.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "validate_and_calibrate", spy)
    mlplab.train(overrides={"train.epochs": 1}, out=tmp_path, verbose=False, report=False)
    assert frozen_during[0] > 0 and gc.get_freeze_count() == 0
