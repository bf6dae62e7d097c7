"""What the learning curves say (mlplab.diagnosis), on made-up histories and a real run."""

import math

import numpy as np
import pytest

import mlplab
from mlplab.diagnosis import read_curves


def history(loss, accuracy, val_loss=None, val_accuracy=None):
    rows = []
    for epoch, (train_loss, train_acc) in enumerate(zip(loss, accuracy, strict=True), start=1):
        row = {"epoch": epoch, "loss": train_loss, "accuracy": train_acc}
        if val_loss is not None:
            row["val_loss"] = val_loss[epoch - 1]
            row["val_accuracy"] = val_accuracy[epoch - 1] if val_accuracy else 0.9
        rows.append(row)
    return rows


def falling(n, start=1.0, end=0.05):
    return list(np.geomspace(start, end, n))


def test_a_validation_loss_that_turns_up_is_overfitting():
    n = 30
    val = [0.5 - 0.04 * e if e < 5 else 0.3 + 0.01 * (e - 5) for e in range(n)]  # low at 6
    found = read_curves(history(falling(n), [0.99] * n, val, [0.89] * n), 10)
    [finding] = found
    assert finding.kind == "overfitting"
    assert "lowest around epoch 6" in finding.seen
    rise = (np.mean(val[-5:]) / min(np.convolve(val, np.ones(5) / 5, "valid")) - 1) * 100
    assert f"ends {rise:.0f}% above" in finding.seen
    assert "training accuracy 99.0%, validation 89.0%" in finding.seen
    assert "train.patience" in finding.advice and "train.keep_best" in finding.advice
    # Early stopping already went back to the best epoch: nothing to add.
    assert read_curves(history(falling(n), [0.99] * n, val), 10, status="early_stopped") == []
    # A run that kept an earlier epoch's weights is judged up to that epoch.
    assert read_curves(history(falling(n), [0.99] * n, val), 10, kept_epoch=6) == []
    [kept] = read_curves(history(falling(n), [0.99] * n, val), 10, kept_epoch=25)
    assert "lowest around epoch 6 and is" in kept.seen
    assert "at epoch 25, whose weights the run kept" in kept.seen
    assert 'train.monitor = "val_loss"' in kept.advice
    # Both losses rising is not memorising the training images.
    rising = list(reversed(falling(n)))
    assert all(f.kind != "overfitting" for f in read_curves(history(rising, [0.9] * n, val), 10))


# The default digits-mlp run's 50 epochs (mlplab train, seed 0, 2026-11-30): digits' 144
# validation images make its validation loss jump by a third between neighbouring epochs.
DIGITS_VAL_LOSS = [
    0.3773, 0.1808, 0.146, 0.1277, 0.1142, 0.1097, 0.104, 0.1089, 0.123, 0.1261, 0.105,
    0.1072, 0.1014, 0.0899, 0.089, 0.1055, 0.0923, 0.0955, 0.0904, 0.094, 0.1078, 0.1034,
    0.1118, 0.0951, 0.1036, 0.103, 0.0926, 0.1063, 0.0845, 0.0874, 0.0863, 0.0931, 0.1061,
    0.0997, 0.1046, 0.1129, 0.1083, 0.113, 0.1039, 0.1067, 0.1148, 0.1054, 0.1207, 0.1121,
    0.096, 0.0942, 0.0841, 0.111, 0.1085, 0.1133,
]  # fmt: skip


# The same with seed 1: its smoothed validation loss ends 31% above its lowest, but that is
# 0.014, three times what it moves from one epoch to the next.
DIGITS_SEED1_VAL_LOSS = [
    0.4086, 0.2348, 0.1874, 0.1333, 0.1264, 0.1107, 0.0975, 0.0878, 0.0811, 0.0675, 0.0719,
    0.0779, 0.0753, 0.0672, 0.0665, 0.0741, 0.066, 0.0537, 0.0537, 0.0504, 0.0533, 0.0527,
    0.0515, 0.0634, 0.0497, 0.0594, 0.0628, 0.0508, 0.0382, 0.045, 0.0569, 0.0564, 0.0529,
    0.0464, 0.0467, 0.0443, 0.0438, 0.0421, 0.0401, 0.0523, 0.0577, 0.0677, 0.0552, 0.0494,
    0.0544, 0.0549, 0.0554, 0.0594, 0.0616, 0.0537,
]  # fmt: skip


@pytest.mark.parametrize("validation", [DIGITS_VAL_LOSS, DIGITS_SEED1_VAL_LOSS])
def test_a_noisy_small_validation_split_is_not_called_overfitting(validation):
    n = len(validation)
    assert validation[-1] / min(validation) > 1.3  # the raw loss would say so
    assert read_curves(history(falling(n), [0.99] * n, validation), 10) == []
    # The same rise in a loss that hardly moves from epoch to epoch is overfitting.
    smooth = list(np.linspace(0.1, 0.06, 25)) + list(np.linspace(0.06, 0.08, 25))
    [finding] = read_curves(history(falling(n), [0.99] * n, smooth), 10)
    assert finding.kind == "overfitting"


def test_a_memorised_networks_creeping_loss_is_not_still_improving():
    # 300 epochs, training loss 0: the validation loss still falls 12% over the last
    # quarter, but by 0.001, half a percent of what it fell since the first epoch.
    n = 300
    epochs = np.arange(n)
    creeping = list(0.0074 + 0.19 * np.exp(-epochs / 5) + 0.004 * (1 - epochs / n))
    assert 1 - creeping[-1] / creeping[-76] > 0.05
    assert read_curves(history(falling(n, 1.0, 1e-5), [1.0] * n, creeping), 10) == []


def test_a_validation_loss_still_falling_says_train_longer():
    n = 12
    [finding] = read_curves(history(falling(n), [0.9] * n, falling(n, 1.0, 0.3)), 10)
    assert finding.kind == "still improving" and "--epochs 24" in finding.advice
    # Falling by less than 5% over the last quarter: it has levelled off.
    flat = falling(n, 1.0, 0.3)[:6] + [0.3 * (1 - 0.001 * i) for i in range(6)]
    assert read_curves(history(falling(n), [0.9] * n, flat), 10) == []


@pytest.mark.parametrize(
    ("loss", "expected"), [(14.5, "most likely too high"), (2.3, "may be too low")]
)
def test_accuracy_at_chance_is_not_learning(loss, expected):
    n = 10
    [finding] = read_curves(history([loss] * n, [0.1] * n), 10, learning_rate=0.5)
    assert finding.kind == "not learning" and expected in finding.advice
    assert "training accuracy is 10.0%" in finding.seen and "(0.5)" in finding.advice
    # Above chance by more than 5 points: learning, however slowly.
    assert read_curves(history([loss] * n, [0.16] * n), 10) == []


def test_nothing_to_say_without_a_usable_history():
    assert read_curves([], 10) == []
    assert read_curves(history([1.0, math.nan], [0.5, 0.5]), 10) == []
    assert read_curves(history([1.0, 0.5], [0.1, 0.1]), 10, status="diverged") == []
    # No validation split: only "not learning" can be told.
    assert read_curves(history(falling(20), [0.95] * 20), 10) == []


def test_the_report_says_what_the_curves_say(tmp_path, capsys):
    # A learning rate far too high: Adam at 0.5 pins every output to one class.
    run = mlplab.train(
        overrides={"train.epochs": 4, "train.learning_rate": 0.5},
        out=tmp_path,
        verbose=False,
    )
    text = (run.path / "report.txt").read_text()
    assert text.splitlines()[2] == "what the learning curves say:"
    assert "  - not learning: after 4 epochs the training accuracy is" in text
    html = (run.path / "report.html").read_text()
    assert '<div class="advice"><strong>What the curves say</strong>' in html
    assert "<strong>not learning</strong>" in html
    # In a notebook too, and in compare's table.
    assert "curves say" in run._repr_html_() and "<b>not learning</b>" in run._repr_html_()
    other = mlplab.train(overrides={"train.epochs": 4}, out=tmp_path, verbose=False, report=False)
    table = mlplab.compare_runs([run.path, other.path])
    said = {row[0]: row[-1] for row in table.rows}
    assert said[run.path.name] == "not learning"
