"""mlplab tune: the search space, the study folder, the search loop and the CLI."""

from __future__ import annotations

import csv
import re
import shlex
import signal
import sys
import time

import optuna
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import RunConfig, load_config
from mlplab.diagnosis import findings_of
from mlplab.errors import ConfigError, DataError, RunError
from mlplab.tuning.space import build_space, draw, parse_cli_spec
from mlplab.tuning.study import (
    BEST_FILE,
    JOURNAL_FILE,
    PAGE_FILE,
    PLOT_FILE,
    TRIALS_FILE,
    TUNE_FILE,
    StudySettings,
    open_study,
    read_study_files,
    write_study_files,
)
from mlplab.tuning.trials import TrialRecord, ranked
from mlplab.tuning.tuner import _search

from .conftest import lines_until, start_mlplab

QUICK = {"train.epochs": 3}
BASE = RunConfig()


# --- the search space -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("model.activation=relu,tanh", ["relu", "tanh"]),
        ("model.hidden=[64],[128, 64]", [[64], [128, 64]]),
        ("train.batch_size=32,64,128", [32, 64, 128]),
        ("model.batch_norm=true,false", [True, False]),
        ('name="a,b",c', ["a,b", "c"]),
        ("train.learning_rate=1e-4..1e-2:log", "1e-4..1e-2:log"),
        ("model.dropout = 0..0.5", "0..0.5"),
    ],
)
def test_cli_specs_are_choices_or_ranges(text, spec):
    assert parse_cli_spec(text)[1] == spec


def test_ranges_and_choices_become_dimensions():
    space = build_space(
        {
            "train.learning_rate": "1e-4..1e-2:log",
            "train.batch_size": "16..256:log",
            "model.dropout": "0..0.5",
            "model.hidden": [[64], [128, 64]],
        },
        BASE,
    )
    lr, batch, dropout, hidden = space
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1e-2, True, False)
    assert batch.integer and batch.spec == "16..256:log"
    assert not dropout.log and not dropout.integer
    assert hidden.choices == ((64,), (128, 64)) and hidden.spec == [[64], [128, 64]]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "nothing to search"),
        ({"train.learnig_rate": "1e-4..1e-2"}, "did you mean 'train.learning_rate'"),
        ({"trian.epochs": [1, 2]}, "unknown key 'trian.epochs'"),
        ({"name": ["a", "b"]}, "only settings can be searched"),
        ({"model.activation": ["relu"]}, "two or more different choices"),
        ({"model.activation": ["relu", "tanhh"]}, "did you mean 'tanh'"),
        ({"train.learning_rate": "0.1..0.01"}, "LOW must be below HIGH"),
        ({"train.learning_rate": "0..0.1:log"}, "must start above 0"),
        ({"train.learning_rate": "1e-3..1e-2:lg"}, "the only scale is ':log'"),
        ({"train.learning_rate": "a..b"}, "must be numbers"),
        ({"train.learning_rate": "0.01"}, "expected a list of choices"),
        ({"train.batch_size": "16..100.5"}, "takes integers"),
        ({"model.dropout": "0..1.5"}, "model.dropout"),
        ({"train.momentum": "0.5..0.9"}, "momentum applies to sgd and rmsprop"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_key(space, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        build_space(space, BASE)
    assert "\n" not in str(caught.value)


def test_a_key_applies_only_where_the_earlier_draws_allow_it():
    space = build_space({"train.optimizer": ["sgd", "adam"], "train.momentum": "0.5..0.9"}, BASE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [draw(study.ask(), space, BASE) for _ in range(20)]
    for values in drawn:
        assert ("train.momentum" in values) == (values["train.optimizer"] == "sgd")
        BASE.with_overrides(values)  # every drawn combination is a valid config
    assert {v["train.optimizer"] for v in drawn} == {"sgd", "adam"}


def test_the_settings_file_round_trips(tmp_path):
    settings = StudySettings(
        {"train.learning_rate": "0.0001..0.01:log", "model.hidden": [[64], [128, 64]]},
        objective="val_loss",
        prune=False,
        command="mlplab tune ...",
    )
    write_study_files(tmp_path, settings, BASE)
    text = (tmp_path / TUNE_FILE).read_text()
    assert '"model.hidden" = [[64], [128, 64]]' in text  # one line, key quoted
    read, base = read_study_files(tmp_path)
    assert read.specs == settings.specs and read.objective == "val_loss" and not read.prune
    assert base == BASE


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / TUNE_FILE).write_text("[tune\n"), "damaged study file"),
        (lambda p: (p / TUNE_FILE).unlink(), "not a study folder"),
        (lambda p: (p / JOURNAL_FILE).write_text("garbage{\n"), "damaged Optuna journal"),
        (
            lambda p: (p / TUNE_FILE).write_text(
                (p / TUNE_FILE).read_text().replace("train.epochs", "train.epoch")
            ),
            "did you mean 'train.epochs'",
        ),
    ],
)
def test_a_damaged_study_folder_is_one_line(tmp_path, damage, message):
    write_study_files(tmp_path, StudySettings({"train.epochs": [2, 3]}), BASE)
    damage(tmp_path)
    with pytest.raises(RunError, match=re.escape(message)):
        open_study(tmp_path)


def test_ties_on_accuracy_go_to_the_lower_validation_loss_then_the_earlier_trial():
    def record(number, value, val_loss, state="complete", repeat_of=None):
        return TrialRecord(number, state, value, {}, val_loss=val_loss, repeat_of=repeat_of)

    records = [
        record(1, 0.97, 0.20),
        record(2, 0.98, 0.15),
        record(3, 0.98, 0.09),
        record(4, 0.98, 0.09),
        record(5, 0.98, 0.09, repeat_of=3),
        record(6, None, None, state="pruned"),
        record(7, 0.99, 0.30, state="failed"),
    ]
    assert [r.number for r in ranked(records, "maximize")] == [3, 4, 2, 1]
    assert [r.number for r in ranked(records, "minimize")] == [1, 3, 4, 2]


# --- searching, on digits -------------------------------------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    return mlplab.tune(
        overrides=QUICK,
        space={"train.learning_rate": "1e-3..3e-2:log", "model.hidden": [[32], [64, 32]]},
        trials=4,
        prune=False,
        out=out,
        verbose=False,
    )


def test_a_search_writes_a_study_folder_of_runs(searched):
    path = searched.path
    assert path.name.endswith("-digits-mlp-tune")
    for name in (TUNE_FILE, "base.toml", JOURNAL_FILE, TRIALS_FILE, BEST_FILE, PLOT_FILE):
        assert (path / name).is_file(), name
    assert (path / PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    assert [r.number for r in searched.trials] == [1, 2, 3, 4]
    assert {r.state for r in searched.trials} == {"complete"}
    for record in searched.trials:
        run = mlplab.load_run(record.run)
        assert run.config.name == f"digits-mlp-trial{record.number:03d}"
        # The objective is the kept model's validation accuracy, as the run recorded it.
        assert record.value == run.metrics["val_accuracy"]
        assert record.test_accuracy == run.metrics["test_accuracy"]
        assert run.config.train.learning_rate == record.params["train.learning_rate"]
        assert list(run.config.model.hidden) == list(record.params["model.hidden"])
    rows = list(csv.DictReader((path / TRIALS_FILE).open()))
    assert [row["trial"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0]["model.hidden"] in ("[32]", "[64, 32]")
    # What each trial's learning curves say, as its run's report does.
    for record, row in zip(searched.trials, rows, strict=True):
        said = [f.kind for f in findings_of(mlplab.load_run(record.run))]
        assert record.curves_say == said and row["curves_say"] == ", ".join(said)


def test_a_study_shows_in_a_notebook_as_its_best_trial_and_chart(searched):
    best = searched.best
    text = repr(searched)
    assert text.startswith(f"TuneResult({str(searched.path)!r}, maximize val_accuracy, trials=4")
    assert f"best=trial {best.number}: " in text and "\n" not in text
    assert repr(best).startswith(f"TrialRecord(number={best.number}, state='complete', value=")
    html = searched._repr_html_()
    assert "<b>4 (4 complete)</b>" in html and f"(trial {best.number})</b>" in html
    assert html.count('src="data:image/png;base64,') == 1 and "study.html" in html


def test_a_study_has_a_self_contained_page_with_every_trial_best_first(searched):
    page = (searched.path / PAGE_FILE).read_text(encoding="utf-8")
    assert "<h1>digits-mlp: tuning study</h1>" in page
    assert page.count("<tr") == 1 + len(searched.trials)  # a header row and one per trial
    best = searched.best
    first_row = page.split('<tr class="best">', 1)[1].split("</tr>", 1)[0]
    assert f"<td>{best.number}</td>" in first_row and f"{best.value:.4f}" in first_row
    assert page.count('<tr class="best">') == 1
    assert "data:image/png;base64," in page and "http://" not in page and "<script" not in page
    assert f"mlplab train {searched.path / BEST_FILE} --seeds 5" in page
    assert "<dt>train.learning_rate</dt><dd>0.001..0.03:log</dd>" in page


def test_the_best_trial_is_the_best_validation_score_and_best_toml_trains_it(searched):
    best = searched.best
    scores = [r.value for r in searched.trials]
    assert best.value == max(scores)
    config = load_config(searched.path / BEST_FILE)
    assert config.name == "digits-mlp" and f"trial {best.number}" in config.description
    assert config.train.learning_rate == best.params["train.learning_rate"]
    assert config.train.epochs == 3
    assert searched.best_run().path == best.run


def test_a_trials_recorded_command_trains_the_same_model(searched, tmp_path):
    record = searched.trials[1]
    command = mlplab.load_run(record.run).meta["command"]
    assert command.startswith(f"mlplab train {searched.path / 'base.toml'} --set ")
    assert main([*shlex.split(command)[1:], "--out", str(tmp_path), "-q", "--no-report"]) == 0
    again = mlplab.list_runs(tmp_path)[0]
    assert again.test_accuracy == record.test_accuracy
    assert mlplab.load_run(again.path).metrics["val_accuracy"] == record.value


def test_going_on_with_a_study_adds_trials_with_new_draws(searched):
    first = {r.params["train.learning_rate"] for r in searched.trials}
    more = mlplab.tune(study=searched.path, trials=2, verbose=False, plot=False)
    assert [r.number for r in more.trials] == [1, 2, 3, 4, 5, 6]
    assert {r.params["train.learning_rate"] for r in more.trials[4:]}.isdisjoint(first)
    with pytest.raises(ConfigError, match="keeps its own config"):
        mlplab.tune("digits-mlp", study=searched.path, trials=1)


def test_settings_drawn_again_are_not_trained_again(tmp_path):
    result = mlplab.tune(
        overrides=QUICK,
        space={"model.activation": ["relu", "tanh"]},
        trials=5,
        out=tmp_path,
        verbose=False,
        plot=False,
    )
    trained = [r for r in result.trials if r.repeat_of is None]
    repeats = [r for r in result.trials if r.repeat_of is not None]
    assert len(trained) <= 2 and len(repeats) >= 3
    runs = [p for p in result.path.iterdir() if p.is_dir()]
    assert len(runs) == len(trained)
    for record in repeats:
        original = result.trials[record.repeat_of - 1]
        assert record.params == original.params and record.value == original.value
        assert record.run == original.run


def test_a_pruned_trial_is_written_as_a_pruned_run(tmp_path):
    study_path = mlplab.tune(
        overrides={"train.epochs": 4},
        space={"train.learning_rate": "1e-3..1e-2"},
        trials=0,
        out=tmp_path,
        verbose=False,
    ).path
    study = open_study(study_path)
    study.optuna_study.pruner = optuna.pruners.ThresholdPruner(lower=1.1)  # prunes every trial
    _search(study, 1, None, False, False, sys.stderr, None)
    (record,) = study.records()
    assert record.state == "pruned" and record.epochs == 1 and record.last_value is not None
    run = mlplab.load_run(record.run)
    assert run.status == "pruned" and len(run.history) == 1
    assert run.metrics["message"].startswith("pruned after epoch 1: val_accuracy")
    assert [r.status for r in mlplab.list_runs(study_path)] == ["pruned"]


def test_trial_seeds_judge_a_trial_by_its_mean_over_seeds(tmp_path):
    result = mlplab.tune(
        overrides={"train.epochs": 2, "train.seed": 5},
        space={"train.learning_rate": "1e-3..1e-2"},
        trials=2,
        trial_seeds=2,
        out=tmp_path,
        verbose=False,
        plot=False,
    )
    for record in result.trials:
        runs = [mlplab.load_run(path) for path in record.runs]
        assert [run.config.train.seed for run in runs] == [5, 6]
        assert [run.config.name for run in runs] == [
            f"digits-mlp-trial{record.number:03d}-seed{seed}" for seed in (5, 6)
        ]
        scores = [run.metrics["val_accuracy"] for run in runs]
        assert record.value == pytest.approx(sum(scores) / 2)
        assert record.spread == pytest.approx(abs(scores[0] - scores[1]) / 2**0.5)
        assert record.test_accuracy == pytest.approx(
            sum(run.metrics["test_accuracy"] for run in runs) / 2
        )
        assert runs[1].meta["command"].endswith(f"--seed 6 --name {runs[1].config.name}")
    assert read_study_files(result.path)[0].trial_seeds == 2
    assert load_config(result.path / BEST_FILE).train.seed == 5


def test_an_error_in_a_trial_marks_it_failed_and_ends_the_search(tmp_path, monkeypatch):
    import mlplab.api

    def broken(*args, **kwargs):
        raise DataError("digits: the dataset went away")

    monkeypatch.setattr(mlplab.api, "train", broken)
    with pytest.raises(DataError, match="went away"):
        mlplab.tune(space={"train.epochs": [2, 3]}, trials=3, out=tmp_path, verbose=False)
    (study,) = tmp_path.iterdir()
    rows = list(csv.DictReader((study / TRIALS_FILE).open()))
    assert [(r["trial"], r["state"], r["note"]) for r in rows] == [
        ("1", "failed", "digits: the dataset went away")
    ]


def test_a_timeout_starts_no_trial_after_it(tmp_path):
    result = mlplab.tune(
        overrides={"train.epochs": 1},
        space={"train.epochs": [1, 2]},
        trials=5,
        timeout=0.001,
        out=tmp_path,
        verbose=False,
        plot=False,
    )
    assert result.stopped == "timeout" and len(result.trials) == 1


def test_a_grid_tries_every_combination_once(tmp_path, capsys):
    space = {"model.activation": ["relu", "tanh"], "train.optimizer": ["sgd", "adam"]}
    first = mlplab.tune(
        overrides={"train.epochs": 2}, space=space, grid=True, trials=3, out=tmp_path,
        verbose=False, plot=False,
    )  # fmt: skip
    assert len(first.trials) == 3 and first.grid
    assert not read_study_files(first.path)[0].prune  # a comparison trains every setting
    rest = mlplab.tune(study=first.path, verbose=True, plot=False)  # the rest of the grid
    drawn = {(r.params["model.activation"], r.params["train.optimizer"]) for r in rest.trials}
    assert len(rest.trials) == 4 and drawn == {
        ("relu", "sgd"),
        ("relu", "adam"),
        ("tanh", "sgd"),
        ("tanh", "adam"),
    }
    assert {r.state for r in rest.trials} == {"complete"}
    again = mlplab.tune(study=first.path, trials=5, plot=False)
    assert len(again.trials) == 4
    assert "the grid is complete: all 4 settings were tried" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"--grid takes choices only \(e.g. train.lear"):
        mlplab.tune(space={"train.learning_rate": "1e-3..1e-2"}, grid=True, out=tmp_path)
    # The example spans the range, as integers for an integer key.
    with pytest.raises(ConfigError, match=r"\(e.g. train.batch_size=16,64,256\), not a range"):
        mlplab.tune(space={"train.batch_size": "16..256:log"}, grid=True, out=tmp_path)


def test_a_grid_point_a_key_does_not_apply_to_is_one_setting(tmp_path, capsys):
    # step_epochs 2 and 5 beside a constant schedule are the same training: tried once.
    space = {"train.step_epochs": [2, 5], "train.schedule": ["constant", "step"]}
    result = mlplab.tune(
        overrides={"train.epochs": 1}, space=space, grid=True, out=tmp_path, plot=False
    )
    assert sorted(str(sorted(r.params.items())) for r in result.trials) == [
        "[('train.schedule', 'constant')]",
        "[('train.schedule', 'step'), ('train.step_epochs', 2)]",
        "[('train.schedule', 'step'), ('train.step_epochs', 5)]",
    ]
    assert "every one of 3 settings" in capsys.readouterr().err


def test_a_failed_grid_point_is_tried_again_when_the_study_goes_on(tmp_path, monkeypatch):
    space = {"model.activation": ["relu", "tanh"]}
    real_train = mlplab.api.train
    monkeypatch.setattr(mlplab.api, "train", lambda *a, **k: (_ for _ in ()).throw(DataError("x")))
    with pytest.raises(DataError):
        mlplab.tune(
            overrides=QUICK, space=space, grid=True, out=tmp_path, verbose=False, plot=False
        )
    (study,) = tmp_path.iterdir()
    monkeypatch.setattr(mlplab.api, "train", real_train)
    result = mlplab.tune(study=study, verbose=False, plot=False)
    states = [(r.state, r.params["model.activation"]) for r in result.trials]
    assert states == [("failed", "relu"), ("complete", "relu"), ("complete", "tanh")]
    assert mlplab.tune(study=study, verbose=False, plot=False).trials == result.trials


def _running_trial(study_path, activation: str, pid: int) -> None:
    """A trial left running in the journal by process ``pid`` on this host."""
    import socket

    study = open_study(study_path).optuna_study
    study.enqueue_trial({"model.activation": activation})
    trial = study.ask()
    assert trial.suggest_categorical("model.activation", ["relu", "tanh"]) == activation
    trial.set_user_attr("process", {"pid": pid, "host": socket.gethostname()})


def test_a_trial_whose_process_was_killed_is_abandoned_and_its_point_retried(tmp_path, capsys):
    import subprocess

    space = {"model.activation": ["relu", "tanh"]}
    study = mlplab.tune(
        overrides=QUICK, space=space, grid=True, trials=0, out=tmp_path, verbose=False
    ).path
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that has ended
    _running_trial(study, "relu", gone.pid)
    result = mlplab.tune(study=study, verbose=True, plot=False)
    err = capsys.readouterr().err
    assert "study " in err and ": 1 trial so far; " in err
    assert "trial 1: abandoned, its process ended without finishing it (its setting is tried " \
        "again)" in err  # fmt: skip
    first = result.trials[0]
    assert first.state == "abandoned" and f"its process ({gone.pid}) ended" in first.note
    assert sorted(r.params["model.activation"] for r in result.trials[1:]) == ["relu", "tanh"]
    rows = list(csv.DictReader((study / TRIALS_FILE).open()))
    assert rows[0]["state"] == "abandoned"


def test_a_trial_of_a_live_process_is_left_running_and_its_point_left_to_it(tmp_path):
    import os

    space = {"model.activation": ["relu", "tanh"]}
    study = mlplab.tune(
        overrides=QUICK, space=space, grid=True, trials=0, out=tmp_path, verbose=False
    ).path
    _running_trial(study, "relu", os.getpid())  # this process: alive
    result = mlplab.tune(study=study, verbose=False, plot=False)
    assert [(r.state, r.params["model.activation"]) for r in result.trials] == [
        ("running", "relu"),
        ("complete", "tanh"),
    ]


def test_tuning_on_the_test_split_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="validation split apart from the test split"):
        mlplab.tune(
            overrides={"data.validation": "test"},
            space={"train.epochs": [2, 3]},
            out=tmp_path,
        )
    assert not any(tmp_path.iterdir())  # nothing written for a refused search


# --- the command line -----------------------------------------------------------------


def test_cli_tune_prints_the_best_and_what_to_do_next(tmp_path, capsys):
    rc = main(
        [
            "tune",
            "--search",
            "train.learning_rate=1e-3..1e-2:log",
            "--search",
            "model.activation=relu,tanh",
            "--epochs",
            "2",
            "--trials",
            "4",
            "--out",
            str(tmp_path),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert re.search(
        r"^trial 1 \(1 of 4\)  train\.learning_rate=\S+  model\.activation=", err, re.M
    )
    assert re.search(r"^4 trials \(", out, re.M)
    assert re.search(r"^best: trial \d, val_accuracy 0\.\d{4}$", out, re.M)
    assert "leading trials (by val_accuracy" in out
    best = re.search(r"^best: trial (\d+)", out, re.M).group(1)
    table = out.split("leading trials")[1].splitlines()
    assert table[3].split()[0] == best  # title, header, rule, then the best trial
    (study,) = tmp_path.iterdir()
    assert f"next: mlplab train {study / 'best.toml'} --seeds 5" in out
    assert "importance (Optuna's PED-ANOVA" in out
    tune_toml = (study / TUNE_FILE).read_text()
    assert 'command = "mlplab tune --search' in tune_toml
    main(["runs", str(tmp_path)])
    assert f"studies (their trials: mlplab runs {tmp_path}/STUDY): {study.name}" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--search", "train.epochs"], "expected KEY=CHOICES or KEY=LOW..HIGH"),
        (["--search", "train.epoch=2,3"], "did you mean 'train.epochs'"),
        (["--trials", "-1", "--search", "train.epochs=2,3"], "--trials -1: must be 0 or more"),
        (["--timeout", "0", "--search", "train.epochs=2,3"], "--timeout 0"),
        (["--space", "missing.toml"], "missing.toml: no such file"),
        (["--study", "missing-study"], "missing-study: no such study folder"),
        (["--study", ".", "--search", "train.epochs=2,3"], "keeps its own config"),
        (["--study", ".", "--grid"], "keeps its own config"),
        (["--study", ".", "--objective", "val_loss"], "keeps its own config"),
        (["--study", ".", "--trial-seeds", "2"], "keeps its own config"),
        (["nosuchrecipe", "--search", "train.epochs=2,3"], "nosuchrecipe"),
        (["--trial-seeds", "0", "--search", "train.epochs=2,3"], "--trial-seeds 0: must be"),
        (["--trial-seeds", "2", "--search", "train.seed=1,2"], "already runs several seeds"),
        (
            [
                "--trial-seeds",
                "3",
                "--set",
                "train.seed=4294967294",
                "--search",
                "train.epochs=2,3",
            ],
            "--trial-seeds 3: train.seed",
        ),
    ],
)
def test_cli_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["tune", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_cli_grid_shows_every_setting_and_how_to_compare_them_on_test(tmp_path, capsys):
    argv = ["tune", "--grid", "--search", "model.activation=relu,tanh", "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (study,) = tmp_path.iterdir()
    assert "every setting tried, best first (by val_accuracy):" in out
    assert f"next: mlplab compare {study}/*-trial*" in out and "search on" not in out
    # One epoch: too short for the curves to say anything.
    table = out.split("every setting tried")[1].splitlines()
    assert table[1].split()[-3:] == ["s", "curves", "say"] and table[3].endswith("—")


def test_a_space_file_gives_the_keys(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('[search]\n"model.activation" = ["relu", "tanh"]\n')
    rc = main(
        ["tune", "--space", str(space), "--epochs", "1", "--trials", "1", "--out", str(tmp_path)]
    )
    assert rc == 0
    (study,) = (p for p in tmp_path.iterdir() if p.is_dir())
    assert '"model.activation" = ["relu", "tanh"]' in (study / TUNE_FILE).read_text()
    space.write_text("[other]\n")
    assert main(["tune", "--space", str(space)]) == 2
    assert "no [search] table" in capsys.readouterr().err


def test_cli_ctrl_c_stops_the_search_and_keeps_the_trial(tmp_path):
    process = start_mlplab(
        "tune", "--search", "train.learning_rate=1e-3..1e-2", "--epochs", "500",
        "--trials", "3", "--out", str(tmp_path),
    )  # fmt: skip
    try:
        lines_until(process, process.stderr, "trial 1 ")
        # Ctrl-C once the trial's run is being trained (its config.toml is written then).
        while not list(tmp_path.glob("*-tune/*-trial001/config.toml")):
            assert process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert "the search stops here; go on: mlplab tune --study" in err
    assert "Traceback" not in err and "1 trial (1 interrupted)" in out
    (study,) = tmp_path.iterdir()
    rows = list(csv.DictReader((study / TRIALS_FILE).open()))
    assert [(row["trial"], row["state"]) for row in rows] == [("1", "interrupted")]
    assert mlplab.load_run(study / rows[0]["run"]).status == "interrupted"


def test_a_key_only_one_schedule_reads_is_drawn_only_beside_it():
    # Given before the schedule it depends on: drawn after it all the same.
    space = build_space({"train.step_epochs": "2..8", "train.schedule": ["constant", "step"]}, BASE)
    assert [dimension.key for dimension in space] == ["train.schedule", "train.step_epochs"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [draw(study.ask(), space, BASE) for _ in range(20)]
    for values in drawn:
        assert ("train.step_epochs" in values) == (values["train.schedule"] == "step")
    assert {v["train.schedule"] for v in drawn} == {"constant", "step"}
    # Searched where no trial would read it: one line saying what would.
    with pytest.raises(ConfigError) as caught:
        build_space({"train.step_epochs": "2..8"}, BASE)
    assert str(caught.value) == (
        "search train.step_epochs: train.step_epochs = 2 is not used: it applies to "
        'train.schedule "step" (this one is "constant")'
    )


def test_an_integer_range_is_drawn_in_every_trial_as_integers():
    # Its ends used to be checked as floats (16.0), which an integer key refuses: the key
    # was then never drawn, and every trial kept the base config's batch size.
    space = build_space({"train.batch_size": "16..256:log", "train.epochs": "2..5"}, BASE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        values = draw(study.ask(), space, BASE)
        assert set(values) == {"train.batch_size", "train.epochs"}
        assert 16 <= values["train.batch_size"] <= 256 and 2 <= values["train.epochs"] <= 5
        assert BASE.with_overrides(values).train.batch_size == values["train.batch_size"]
