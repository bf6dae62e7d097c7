"""What a Jupyter notebook shows for a run, a learning-rate test and a study: short reprs, and
cards with the numbers and one picture (``_repr_html_``)."""

from __future__ import annotations

import re
import shutil

import pytest

import mlplab
from mlplab import lr_range
from mlplab.config import RunConfig
from mlplab.lrfind import LRFindResult
from mlplab.report.plots import plt
from mlplab.report.tuning import _range_axis
from mlplab.tuning.space import Dimension

from .test_lr_find import LRS, STEPS, curve

EMBEDDED_PNG = 'src="data:image/png;base64,iVBOR'


def test_a_run_is_a_card_with_its_numbers_and_curves(digits_run):
    html = digits_run._repr_html_()
    accuracy = f"{digits_run.metrics['test_accuracy']:.4f}"
    assert "digits-mlp on digits" in html and f"<b>{accuracy}</b>" in html
    assert "<b>complete</b>" in html and "<b>15</b>" in html  # epochs
    low, high = digits_run.metrics["test_accuracy_interval"]
    assert f"<b>{low:.4f}-{high:.4f}</b>" in html
    assert f"<b>{100 * digits_run.metrics['calibration']['ece']:.2f}%</b>" in html
    assert f"<b>{digits_run.metrics['model']['parameters']:,}</b>" in html
    assert html.count(EMBEDDED_PNG) == 1
    assert f"report: {digits_run.path / 'report.html'}" in html


def test_a_run_without_pictures_draws_its_curves_from_the_history(digits_run, tmp_path):
    path = shutil.copytree(digits_run.path, tmp_path / "run")
    (path / "curves.png").unlink()
    (path / "report.html").unlink()
    html = mlplab.load_run(path)._repr_html_()
    assert html.count(EMBEDDED_PNG) == 1 and "report:" not in html


def _result(sweep: lr_range.LRSweep) -> LRFindResult:
    config = RunConfig.from_dict({})
    return LRFindResult(sweep, config, None, batch_size=32, seconds=1.0, compile_seconds=0.5)


def test_an_lr_find_result_has_a_short_repr_and_a_card():
    found = _result(lr_range.analyse(LRS, curve(1e-2), STEPS))
    text = repr(found)
    assert len(text) < 200 and "\n" not in text
    assert re.fullmatch(
        r"LRFindResult\(suggestion=0\.00\d+, rule='minimum', lowest_lr=0\.0\d+, "
        r"steps=\d+/200, path=None\)",
        text,
    ), text
    html = found._repr_html_()
    assert f"<b>{found.suggestion:.2g}</b>" in html and html.count(EMBEDDED_PNG) == 1
    flat = _result(lr_range.analyse(LRS, curve(1e-2) * 0 + 2.3, STEPS))
    assert "suggestion=None, problem=" in repr(flat)
    assert "no suggestion" in flat._repr_html_()


@pytest.mark.parametrize(
    ("low", "high", "log", "expected"),
    [
        (1e-4, 1e-2, True, ["0.0001", "0.001", "0.01"]),
        (6e-4, 1.3e-3, True, ["0.0006", "0.0008", "0.001"]),  # under a decade
        (16, 256, True, ["20", "50", "100", "200"]),
        (0.0, 0.5, False, ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]),
    ],
)
def test_a_searched_range_is_shown_whole_in_plain_numbers(low, high, log, expected):
    fig, ax = plt.subplots()
    try:
        ax.plot([low, high], [0, 1])
        _range_axis(ax, Dimension("k", low=low, high=high, log=log))
        fig.canvas.draw()
        left, right = ax.get_xlim()
        assert left < low and right > high
        shown = [t.get_text() for t in ax.get_xticklabels() if left <= t.get_position()[0] <= right]
        assert shown == expected
        assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    finally:
        plt.close(fig)
