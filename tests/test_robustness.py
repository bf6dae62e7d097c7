"""Robustness: the test accuracy on shifted, rotated and noisy images (mlplab.robustness)."""

import json

import numpy as np
import pytest

import mlplab
from mlplab.robustness import KINDS, background, noisy, robustness, rotated, shifted

from .test_cli import run_cli


def _images(n: int = 12, size: int = 9) -> np.ndarray:
    """uint8 (n, size, size, 1): a dark background (10) with one bright pixel each."""
    rng = np.random.default_rng(0)
    x = np.full((n, size, size, 1), 10, np.uint8)
    x[np.arange(n), rng.integers(3, size - 3, n), rng.integers(3, size - 3, n), 0] = 250
    return x


def test_shifted_moves_the_content_and_fills_with_the_background():
    x = _images()
    down_left = shifted(x, 2, -1)
    assert down_left.shape == x.shape and down_left.dtype == np.uint8
    np.testing.assert_array_equal(down_left[:, 2:, :-1], x[:, :-2, 1:])
    assert (down_left[:, :2] == 10).all() and (down_left[:, :, -1:] == 10).all()
    np.testing.assert_array_equal(shifted(x, 0, 0), x)
    # Content pushed out of the frame is gone, not folded back in.
    assert (shifted(x, 9, 0) == 10).all()
    # Further than the frame, any way (images a few pixels tall are shifted by more).
    for dy, dx in ((-10, 0), (0, 12), (-30, -30), (10, 1)):
        assert (shifted(x, dy, dx) == 10).all()


def test_background_is_the_border_median_per_channel():
    x = np.zeros((2, 5, 5, 3), np.uint8)
    x[0] = (200, 100, 0)
    x[1, 2, 2] = 255
    np.testing.assert_array_equal(background(x), [[200, 100, 0], [0, 0, 0]])


def test_rotated_turns_about_the_centre():
    x = np.full((1, 9, 9, 1), 10, np.uint8)
    x[0, 4, 6, 0] = 250  # right of the centre
    np.testing.assert_array_equal(rotated(x, 0), x)
    turned = rotated(x, 90)  # anticlockwise: now above the centre
    assert np.unravel_index(turned[0, ..., 0].argmax(), (9, 9)) == (2, 4)
    assert turned[0, 0, 0, 0] == 10  # corners are background
    colour = np.zeros((1, 6, 6, 3), np.uint8)
    assert rotated(colour, 15).shape == colour.shape


def test_noisy_is_seeded_clipped_uint8():
    x = _images()
    a, b = noisy(x, 32, np.random.default_rng(1)), noisy(x, 32, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and (a != x).any()
    grey = np.full((50, 9, 9, 1), 128, np.uint8)  # far from 0 and 255: hardly clipped
    assert abs(float(np.std(noisy(grey, 32, np.random.default_rng(2)) - 128.0)) - 32) < 1
    assert noisy(x, 500, np.random.default_rng(3)).max() == 255


def test_robustness_of_a_position_reader():
    """A 'classifier' that answers where the bright pixel is (its row) is perfect on the
    images as they are, wrong on every vertical shift, right on every horizontal one."""
    x = _images(40)
    y = x[..., 0].max(axis=2).argmax(axis=1)  # the row of the bright pixel

    def predict(images: np.ndarray) -> np.ndarray:
        rows = images[..., 0].max(axis=2).argmax(axis=1)
        return np.eye(9, dtype=np.float32)[rows]

    result = robustness(predict, x, y, sample=25)
    assert result["images"] == 25 and result["clean"] == 1.0
    assert result["shift"]["unit"] == "pixels"
    # Up and down move the row (wrong), left and right do not (right): half of four.
    assert result["shift"]["accuracy"] == {"1": 0.5, "2": 0.5, "3": 0.5}
    assert set(result["rotate"]["accuracy"]) == {"10", "20", "30"}
    assert list(result) == ["images", "clean", *KINDS]
    json.dumps(result)  # plain types, for metrics.json


def test_every_report_measures_it(digits_run):
    measured = digits_run.metrics["robustness"]
    assert measured["images"] == 360  # all of digits' test split (fewer than the sample)
    assert measured["clean"] == pytest.approx(digits_run.metrics["test_accuracy"])
    # Digits are 8x8: a one-pixel shift is an eighth of the image.
    assert measured["shift"]["accuracy"]["3"] < measured["shift"]["accuracy"]["1"]
    assert (digits_run.path / "robustness.png").is_file()
    assert "Robustness" in (digits_run.path / "report.html").read_text()


def test_report_measures_it_for_runs_from_before(digits_run, tmp_path):
    import shutil

    copy = tmp_path / digits_run.path.name
    shutil.copytree(digits_run.path, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["robustness"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    (copy / "robustness.png").unlink()
    result = mlplab.report_run(copy)
    assert copy / "robustness.png" in result.files


def test_evaluate_robustness(capsys, digits_run):
    result = mlplab.evaluate(digits_run, robustness=True)
    assert result["robustness"] == digits_run.metrics["robustness"]
    code, out, _ = run_cli(capsys, "evaluate", str(digits_run.path), "--robustness")
    assert code == 0
    assert "robustness (360 test images)" in out and "shifted    1 px" in out
    assert "robustness" not in mlplab.evaluate(digits_run)


def test_compare_shows_shifted_accuracy_when_runs_have_it(digits_run, tmp_path):
    from mlplab.report.compare import compare_runs

    plain = mlplab.train(overrides={"train.epochs": 2}, out=tmp_path, verbose=False, report=False)
    comparison = compare_runs([digits_run.path, plain.path])
    at = comparison.header.index("shifted 1 px")
    assert comparison.header[at - 1] == "ECE" and comparison.header[at + 1] == "shifted 2 px"
    shifted = digits_run.metrics["robustness"]["shift"]["accuracy"]
    assert comparison.rows[0][at : at + 2] == [f"{shifted['1']:.4f}", f"{shifted['2']:.4f}"]
    assert comparison.rows[1][at : at + 2] == ["—", "—"]  # trained without a report
    assert "shifted 1 px" not in compare_runs([plain.path, plain.path]).header
