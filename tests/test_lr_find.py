"""The learning-rate finder: reading the curve (synthetic losses), the test on digits, the CLI."""

from __future__ import annotations

import json
import math
import shlex

import keras
import numpy as np
import pytest

import mlplab
from mlplab import lr_range
from mlplab.cli import main
from mlplab.config import load_config
from mlplab.errors import ConfigError
from mlplab.lrfind import BASE_FILE, CURVE_FILE, PLOT_FILE, SUMMARY_FILE

STEPS = 200
LRS = lr_range.ramp(1e-7, 10.0, STEPS)


def curve(lowest_at: float, noise: float = 0.0, seed: int = 0, lrs=LRS) -> np.ndarray:
    """Losses of a made-up range test over ``lrs``: flat at 2.3 for small rates, falling to 0.5
    towards ``lowest_at``, then blowing up; with Gaussian noise of std ``noise``."""
    x = np.log10(lrs) - math.log10(lowest_at)
    losses = 0.5 + 1.8 / (1.0 + np.exp(3.0 * (x + 1.0))) + np.where(x > 0, 3.0 * x**2, 0.0)
    return (losses + np.random.default_rng(seed).normal(0, noise, len(lrs))).astype(np.float32)


# --- reading the curve ----------------------------------------------------------------


def test_the_ramp_grows_by_the_same_factor_each_step():
    assert LRS[0] == pytest.approx(1e-7) and LRS[-1] == pytest.approx(10.0)
    ratios = LRS[1:] / LRS[:-1]
    np.testing.assert_allclose(ratios, ratios[0])


def test_the_optimizers_schedule_is_the_ramp_that_is_recorded():
    # lr_find trains with Keras' ExponentialDecay at a rate above 1, and records ramp().
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-7, STEPS - 1, 10.0 / 1e-7)
    steps = [0, 1, 57, 150, STEPS - 1]
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]
    np.testing.assert_allclose(rates, LRS[steps], rtol=1e-4)


def test_smoothing_keeps_a_level_and_removes_the_running_averages_lag():
    beta = lr_range.smoothing_factor(STEPS)
    np.testing.assert_allclose(lr_range.smooth(np.full(50, 2.0), beta), 2.0)
    np.testing.assert_allclose(lr_range.running_average(np.full(50, 2.0), beta), 2.0)
    line = np.arange(200.0)
    assert lr_range.running_average(line, beta)[100] < 92  # lags ~10 steps behind
    assert lr_range.smooth(line, beta)[100] == pytest.approx(100, abs=0.5)


def test_divergence_is_found_where_the_loss_blows_up_or_is_not_finite():
    beta = lr_range.smoothing_factor(STEPS)
    losses = curve(1e-2)
    found = lr_range.divergence(losses, beta)
    assert found is not None and LRS[found] > 1e-2  # after the lowest point
    assert lr_range.divergence(np.full(STEPS, 2.3), beta) is None
    with_nan = np.full(STEPS, 2.3)
    with_nan[50] = np.nan
    assert lr_range.divergence(with_nan, beta) == 50


@pytest.mark.parametrize("lowest_at", [1e-3, 1e-2, 0.3])
def test_the_suggestion_is_a_tenth_of_the_rate_at_the_lowest_loss(lowest_at):
    sweep = lr_range.analyse(LRS, curve(lowest_at, noise=0.05), STEPS)
    assert sweep.problem is None and sweep.diverged_at is not None
    assert sweep.suggestion.rule == "minimum"
    # Within a fifth of a decade of a tenth of the true minimum, noise and all.
    assert abs(math.log10(sweep.suggestion.lr) - math.log10(lowest_at / 10)) < 0.2
    assert sweep.suggestions["steepest"].lr < lowest_at


@pytest.mark.parametrize(("schedule", "rule"), [("one-cycle", "peak"), ("cosine", "peak")])
def test_the_peak_of_an_annealing_schedule_gets_a_third_of_the_lowest_rate(schedule, rule):
    constant = lr_range.analyse(LRS, curve(1e-2), STEPS)
    peaked = lr_range.analyse(LRS, curve(1e-2), STEPS, schedule=schedule)
    assert constant.rule == "minimum" and peaked.rule == rule
    assert peaked.suggestion.lr == pytest.approx(peaked.lowest_lr / 3)
    assert constant.suggestion.lr == pytest.approx(constant.lowest_lr / 10)
    assert lr_range.analyse(LRS, curve(1e-2), STEPS, schedule="step").rule == "minimum"


def test_the_curve_ends_just_after_it_diverged_unless_asked_to_go_on():
    losses = curve(1e-2)
    cut = lr_range.analyse(LRS, losses, STEPS)
    assert len(cut.lrs) == cut.diverged_at + 1 < STEPS
    whole = lr_range.analyse(LRS, losses, STEPS, stop_on_divergence=False)
    assert len(whole.lrs) == STEPS and whole.suggestion == cut.suggestion
    losses[150:] = np.nan
    assert len(lr_range.analyse(LRS, losses, STEPS, stop_on_divergence=False).lrs) == 150


def test_a_flat_curve_gives_no_suggestion_and_says_why():
    flat = np.random.default_rng(0).normal(2.3, 0.1, STEPS).astype(np.float32)
    sweep = lr_range.analyse(LRS, flat, STEPS)
    assert sweep.suggestion is None and sweep.suggestions == {}
    assert "too flat to read" in sweep.problem


def test_a_curve_that_turns_too_early_gives_no_suggestion():
    blown_up = curve(1e-2)
    blown_up[12:] = np.inf
    sweep = lr_range.analyse(LRS, blown_up, STEPS)
    assert sweep.diverged_at == 12 and sweep.suggestion is None and sweep.turned_up
    assert sweep.problem == "it diverged before the curve could be read: start the range lower"
    # A narrow range, lowest less than a decade in: a tenth of that was not tried.
    narrow = lr_range.ramp(1e-4, 10.0, STEPS)
    early = lr_range.analyse(narrow, curve(8e-4, lrs=narrow), STEPS)
    assert early.suggestion is None
    assert "less than a decade into the range: start the range lower" in early.problem


def test_a_curve_still_falling_at_the_end_did_not_turn_up():
    falling = np.linspace(2.3, 0.5, STEPS).astype(np.float32)
    sweep = lr_range.analyse(LRS, falling, STEPS)
    assert sweep.diverged_at is None and not sweep.turned_up
    assert sweep.suggestion is not None


def test_the_csv_has_a_line_per_recorded_step():
    sweep = lr_range.analyse(LRS, curve(1e-2), STEPS)
    lines = sweep.csv().splitlines()
    assert lines[0] == "step,lr,loss,smoothed_loss" and len(lines) == len(sweep.lrs) + 1
    step, lr, loss, _ = lines[1 + 5].split(",")
    assert int(step) == 5 and float(lr) == pytest.approx(LRS[5], rel=1e-5)
    assert float(loss) == pytest.approx(sweep.losses[5], rel=1e-5)


# --- the test on digits ---------------------------------------------------------------


def test_lr_find_on_digits_writes_its_folder_and_suggests_a_sensible_rate(tmp_path, capsys):
    result = mlplab.lr_find("digits-mlp", out=tmp_path, verbose=False)
    # Adam on digits trains well from 3e-4 to 3e-3 (docs/results.md); the test finds that.
    assert 3e-4 <= result.suggestion <= 5e-3
    assert result.path.parent == tmp_path and result.path.name.endswith("-digits-mlp-lr-find")
    summary = json.loads((result.path / SUMMARY_FILE).read_text())
    assert summary["suggestion"] == result.suggestion
    assert summary["steps"] == len(result.sweep.lrs) and summary["batch_size"] == 32
    assert set(summary["suggestions"]) == {"minimum", "peak", "steepest"}
    assert summary["rule"] == "minimum" and summary["lowest_loss_lr"] == result.sweep.lowest_lr
    rows = (result.path / CURVE_FILE).read_text().splitlines()
    assert len(rows) == len(result.sweep.lrs) + 1
    assert (result.path / PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    assert load_config(result.path / BASE_FILE) == result.config
    # Not a run: `mlplab runs` names it apart.
    assert mlplab.list_runs(tmp_path) == []
    assert main(["runs", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert f"learning-rate tests (lr_find.png in each): {result.path.name}" in listed


def test_lr_find_is_deterministic_and_follows_the_config(tmp_path):
    quick = {"train.batch_size": 64, "model.hidden": [32]}
    a = mlplab.lr_find("digits-mlp", overrides=quick, steps=60, out=None, verbose=False)
    b = mlplab.lr_find("digits-mlp", overrides=quick, steps=60, out=None, verbose=False)
    np.testing.assert_array_equal(a.sweep.losses, b.sweep.losses)
    assert a.path is None and a.batch_size == 64
    other = mlplab.lr_find(
        "digits-mlp",
        overrides={**quick, "train.seed": 1, "augment.translate": 1},
        steps=60,
        out=None,
        verbose=False,
    )
    assert not np.array_equal(other.sweep.losses, a.sweep.losses)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 0.0}, "start learning rate 0: must be a number above 0"),
        ({"start": 1e-3, "end": 1e-4}, "end learning rate 0.0001: must be above the start"),
        ({"steps": 5}, "5 steps: the test needs at least 20"),
        ({"overrides": ["train.learning_rat=0.1"]}, "train.learning_rat"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        mlplab.lr_find("digits-mlp", out=tmp_path, verbose=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_another_keras_backend_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ConfigError, match="runs on the fused JAX engine; KERAS_BACKEND is torch"):
        mlplab.lr_find("digits-mlp", out=tmp_path, verbose=False)
    assert list(tmp_path.iterdir()) == []


# --- the CLI --------------------------------------------------------------------------


def test_cli_prints_the_suggestion_and_the_commands_to_use_it(tmp_path, capsys):
    code = main(["lr-find", "digits-mlp", "--set", "model.hidden=[32]", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.startswith("lr-find: digits-mlp on digits (1293 train images), adam, batch 32")
    lines = out.splitlines()
    assert lines[0].startswith("suggested learning rate: ")
    lr = lines[0].split()[3]
    assert f"next: mlplab train digits-mlp --set 'model.hidden=[32]' --lr {lr}" in out
    assert f"train.learning_rate={float(lr) / 10:.2g}..{float(lr) * 10:.2g}:log" in out
    assert "the config has 0.001\n" in out and "for a constant rate" not in out
    (folder,) = tmp_path.iterdir()
    assert f"curve: {folder / PLOT_FILE}" in out


def test_cli_json_prints_the_summary(tmp_path, capsys):
    code = main(["lr-find", "--steps", "100", "--out", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["planned_steps"] == 100 and summary["name"] == "digits-mlp"
    assert summary["command"] == "mlplab lr-find --steps 100 --out " + str(tmp_path) + " --json"


def test_cli_says_when_the_curve_cannot_be_read(tmp_path, capsys):
    # Sigmoid units on plain SGD barely learn in 200 steps at any rate.
    code = main(["lr-find", "digits-sigmoid-sgd", "--out", str(tmp_path), "-q"])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert out.startswith("no suggestion: the loss fell only ")
    assert "too flat to read" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "-1"], "start learning rate -1: must be a number above 0"),
        (["--steps", "3"], "3 steps: the test needs at least 20"),
        (["no-such-recipe"], "no-such-recipe"),
        (["--set", "train.batch_sise=8"], "train.batch_sise"),
        (["missing.toml"], "missing.toml"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, message):
    code = main(["lr-find", *args, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("mlplab: error: ") and message in err and err.count("\n") == 1
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_cli_summary_repeats_the_users_flags_and_says_when_the_loss_still_falls(tmp_path):
    from mlplab.cli import build_parser
    from mlplab.cli_lrfind import summary
    from mlplab.lrfind import LRFindResult

    command = "lr-find my.toml --set model.dropout=0.2 --dataset fashion-mnist --seed 3"
    args = build_parser().parse_args(shlex.split(command + " --batch-size 64"))
    falling = lr_range.analyse(LRS, np.linspace(2.3, 0.5, STEPS).astype(np.float32), STEPS)
    result = LRFindResult(falling, mlplab.RunConfig(), tmp_path, 64, 1.0, 0.5)
    text = summary(result, args)
    lr = f"{result.suggestion:.2g}"
    flags = "my.toml --set model.dropout=0.2 --dataset fashion-mnist --set train.batch_size=64"
    assert f"next: mlplab train {flags} --set train.seed=3 --lr {lr}" in text
    assert f"mlplab tune {flags} --set train.seed=3 --search train.learning_rate=" in text
    assert "note: the loss was still falling at lr 10: higher rates may do better (--end)" in text


def test_cli_summary_for_a_one_cycle_schedule_gives_its_peak(tmp_path):
    from mlplab.cli import build_parser
    from mlplab.cli_lrfind import summary
    from mlplab.lrfind import LRFindResult

    config = mlplab.resolve_config("fast-fashion-mnist")
    sweep = lr_range.analyse(LRS, curve(1e-2), STEPS, schedule=config.train.schedule)
    result = LRFindResult(sweep, config, tmp_path, 256, 1.0, 0.5)
    text = summary(result, build_parser().parse_args(["lr-find", "fast-fashion-mnist"]))
    first, second = text.splitlines()[:2]
    assert first == (
        f"suggested learning rate: {sweep.suggestion.lr:.2g}   (a third of the rate at the lowest "
        "loss, for the peak of a schedule that anneals)"
    )
    assert second.startswith(f"  for a constant rate: {sweep.suggestions['minimum'].lr:.2g}; ")
    assert second.endswith("the config has 0.006 (the peak of its one-cycle schedule)")


# --- train --lr auto ------------------------------------------------------------------


def test_train_lr_auto_trains_at_the_tests_suggestion(tmp_path, capsys):
    argv = ["train", "--lr", "auto", "--epochs", "2", "--out", str(tmp_path), "--no-report"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    (found,) = tmp_path.glob("*-lr-find")
    summary = json.loads((found / SUMMARY_FILE).read_text())
    rate = float(f"{summary['suggestion']:.2g}")
    assert f"--lr auto: {rate:g}, a tenth of the rate at the lowest loss (curve: " in err
    assert summary["command"] == "mlplab " + shlex.join(argv)
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "config.toml").is_file()]
    run = mlplab.load_run(run_dir)
    assert run.config.train.learning_rate == rate
    # The run records the rate it was given, so that its command repeats without the test.
    assert run.meta["command"] == (
        f"mlplab train --epochs 2 --out {tmp_path} --no-report --lr {rate:g}"
    )


def test_train_lr_auto_without_a_suggestion_trains_nothing(tmp_path, capsys):
    argv = ["train", "digits-sigmoid-sgd", "--lr", "auto", "--out", str(tmp_path), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "mlplab: error: --lr auto: the learning-rate test gives no suggestion: the loss fell "
    )
    assert err.endswith("lr_find.png); give --lr X instead\n")
    assert [p.name.endswith("-lr-find") for p in tmp_path.iterdir()] == [True]


def test_train_lr_must_be_a_number_or_auto(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--lr", "fast"])
    assert stopped.value.code == 2
    assert "argument --lr: 'fast' is not a number or 'auto'" in capsys.readouterr().err


def test_an_option_and_its_value_are_left_out_of_a_command():
    from mlplab.cli import without_option

    argv = ["train", "--lr", "auto", "--seeds=3", "--lr=0.1", "--lrx", "1"]
    assert without_option(argv, "--lr") == ["train", "--seeds=3", "--lrx", "1"]
    assert without_option(argv, "--seeds") == ["train", "--lr", "auto", "--lr=0.1", "--lrx", "1"]
