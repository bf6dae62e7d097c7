"""Reports: metrics against scikit-learn, every plot, the HTML page (also in Chromium),
``mlplab report`` on damaged runs, ``mlplab compare`` and ``mlplab runs``."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import ttest_ind
from sklearn.metrics import classification_report, confusion_matrix

import mlplab
from mlplab.cli import main
from mlplab.config import AugmentConfig, RunConfig, to_toml
from mlplab.diagnosis import findings_of
from mlplab.embedding import LayerViews
from mlplab.gradients import LayerGradients
from mlplab.metrics import (
    classification_metrics,
    confident_examples,
    confused_pairs,
    interval_of,
)
from mlplab.record import RunRecord, list_runs, read_record
from mlplab.report.build import PLOT_FILES, ReportData, render_plots, report_run
from mlplab.report.compare import compare_runs, holm, mcnemar
from mlplab.report.html import run_page
from mlplab.robustness import robustness

from .conftest import chromium, needs_chromium

# What the default recipe's report draws: every plot but augmented.png (no [augment]).
DEFAULT_PLOTS = [name for key, name in PLOT_FILES.items() if key != "augmented"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_real_png(data: bytes, min_width: int = 300) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert min_width <= image.width <= 4000 and 150 <= image.height <= 6000
        pixels = np.asarray(image.convert("L"), np.float32)
    assert pixels.std() > 10  # not blank


def copy_run(run_path: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run_path, target)
    return target


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 400)
    logits = rng.normal(size=(400, 5)) + 2.0 * np.eye(5)[y_true]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = ["a", "b", "c", "d", "e"]
    ours = classification_metrics(y_true, proba, names)
    theirs = classification_report(
        y_true, proba.argmax(axis=1), target_names=names, output_dict=True
    )
    for name in names:
        for key, their_key in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
        ):
            assert ours["per_class"][name][key] == pytest.approx(theirs[name][their_key])
        assert ours["per_class"][name]["support"] == theirs[name]["support"]
    assert ours["macro_avg"]["f1"] == pytest.approx(theirs["macro avg"]["f1-score"])
    assert ours["weighted_avg"]["precision"] == pytest.approx(theirs["weighted avg"]["precision"])
    assert ours["test_accuracy"] == pytest.approx(theirs["accuracy"])
    matrix = confusion_matrix(y_true, proba.argmax(axis=1))
    assert ours["confusion_matrix"] == matrix.tolist()

    pairs = confused_pairs(ours["confusion_matrix"], names, top=3)
    off = matrix - np.diag(np.diag(matrix))
    assert pairs[0]["count"] == off.max()
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    true = names.index(pairs[0]["true"])
    assert pairs[0]["share"] == pytest.approx(pairs[0]["count"] / matrix[true].sum())


def test_confident_examples_pick_the_surest_right_and_wrong():
    y_true = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.99, 0.01]])
    assert confident_examples(y_true, proba, correct=False).tolist() == [3, 1]
    assert confident_examples(y_true, proba, correct=True).tolist() == [0, 2]
    assert confident_examples(y_true, proba, correct=True, count=1).tolist() == [0]
    assert confused_pairs([[3, 0], [0, 2]], ["a", "b"]) == []


# --- plots from generated data -----------------------------------------------------------------


def fake_report(tmp_path: Path, classes: int, channels: int, epochs: int = 6) -> ReportData:
    """A ReportData with generated images and predictions (no training)."""
    rng = np.random.default_rng(1)
    names = [f"class {i}" for i in range(classes)]
    n = classes * 6
    y = np.repeat(np.arange(classes), 6)
    x = rng.integers(0, 256, (n, 12, 12, channels), dtype=np.uint8)
    logits = rng.normal(size=(n, classes)) + 3.0 * np.eye(classes)[y]
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    metrics = classification_metrics(y, proba, names)
    metrics["dataset"] = {
        "name": "generated",
        "class_names": names,
        "image_shape": [12, 12, channels],
    }
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "accuracy": 1 - 0.5 / e,
            "val_loss": 1.2 / e + 0.01 * e,
            "val_accuracy": 0.9 - 0.4 / e,
        }
        for e in range(1, epochs + 1)
    ]
    (tmp_path / "config.toml").write_text('name = "fake"\n')
    # Augmented, so that augmented.png is drawn too.
    config = RunConfig(name="fake", augment=AugmentConfig(translate=2, flip=True))
    record = RunRecord(
        tmp_path, {"name": "fake"}, config, history, {**metrics, "status": "complete"}
    )
    kernel = rng.normal(size=(12 * 12 * channels, 40)).astype(np.float32)
    hidden = [("relu", np.maximum(rng.normal(size=(n, 40)), 0).astype(np.float32))]
    wrong = np.flatnonzero(proba.argmax(axis=1) != y)[:8]
    maps = rng.normal(size=(2, len(wrong), 12, 12, channels)).astype(np.float32)
    return ReportData(
        record,
        y,
        proba,
        x,
        x,
        y,
        first_layer=kernel,
        hidden=hidden,
        mistakes_explained=(wrong, maps[0], maps[1]),
        # A "model" that reads the class from the top-left pixel: hurt by every change.
        robustness=robustness(lambda images: np.eye(classes)[images[:, 0, 0, 0] % classes], x, y),
        gradients=LayerGradients(
            layers=["dense_1", "dense_2", "softmax"],
            labels=["40 sigmoid", "20 sigmoid", f"{classes} softmax"],
            initial=[2e-6, 3e-4, 2e-2],  # vanishing: a red title
            trained=[1e-4, 0.0, 5e-3],  # a zero: still drawn on the log axis
            images=n,
        ),
        layer_views=LayerViews(
            names=["pixels", "layer 1: 40 relu"],
            points=[rng.normal(size=(n, 2)).astype(np.float32) for _ in range(2)],
            neighbour_accuracy=[0.9, 0.95],
            labels=y,
            network_accuracy=0.96,
            method="pca",
        ),
    )


@pytest.mark.parametrize(("classes", "channels"), [(10, 1), (10, 3), (100, 3)])
def test_every_plot_is_a_real_picture(tmp_path, classes, channels):
    pngs = render_plots(fake_report(tmp_path, classes, channels))
    assert set(pngs) == set(PLOT_FILES.values())
    for name, data in pngs.items():
        assert_real_png(data)
        assert name.endswith(".png")


def test_drawing_beside_the_measurements_gives_the_same_plots(tmp_path, monkeypatch):
    """train's Drawing: the prediction plots and the plots handed over by measured() are
    drawn on its thread; pngs() draws the rest here. The same pictures as render_plots."""
    import threading

    from mlplab.report import build

    data = fake_report(tmp_path, 10, 1)
    where = {}
    real = build.measured_plots

    def measured_plots(data, only=None):
        where.update(dict.fromkeys(only or build._MEASURED_PLOTS, threading.current_thread()))
        return real(data, only)

    monkeypatch.setattr(build, "measured_plots", measured_plots)
    with build.drawing_early(data) as drawing:
        drawing.measured("robustness")
        drawing.measured("weights", "hidden")
    pngs, drawn_by = drawing.pngs(), dict(where)
    main = threading.current_thread()
    assert drawn_by["robustness"] is not main and drawn_by["hidden"] is not main
    assert drawn_by["gradients"] is main  # not handed over: drawn by pngs()
    assert pngs == render_plots(data)
    with build.drawing_early(data, draw=False) as none:
        assert none is None


def test_a_drawing_given_up_draws_nothing_more(tmp_path, monkeypatch):
    import threading

    from mlplab.report import build

    started, drawn = threading.Event(), []

    def slow(data, only=None):
        started.set()
        time.sleep(0.3)
        drawn.append(only)
        return {}

    monkeypatch.setattr(build, "prediction_plots", slow)
    monkeypatch.setattr(build, "measured_plots", slow)
    with pytest.raises(KeyboardInterrupt), build.drawing_early(fake_report(tmp_path, 10, 1)) as d:
        d.measured("robustness")
        d.measured("gradients")
        started.wait(5)
        raise KeyboardInterrupt  # the second Ctrl-C: no pictures
    time.sleep(0.6)
    assert drawn == [None]  # the plot being drawn is finished; those queued are not


def test_many_classes_scale_the_layout(tmp_path):
    ten = render_plots(fake_report(tmp_path, 10, 3))
    hundred = render_plots(fake_report(tmp_path, 100, 3))
    with (
        Image.open(io.BytesIO(hundred["per_class.png"])) as tall,
        Image.open(io.BytesIO(ten["per_class.png"])) as short,
    ):
        assert tall.height > 2 * short.height  # one bar row per class
    page = run_page(fake_report(tmp_path, 100, 3), hundred)
    assert "Most confused pairs" in page and "class 99" in page


def test_the_weights_picture_shows_the_strongest_units_or_every_class(tmp_path, monkeypatch):
    from mlplab.report import mosaic

    drawn = {}

    def record_tiles(weights, image_shape, captions, title, columns=8):
        drawn.update(weights=weights, shape=image_shape, captions=captions, title=title)
        return b"png"

    monkeypatch.setattr(mosaic, "weights_png", record_tiles)
    data = fake_report(tmp_path, 10, 1)
    data.first_layer[:, 7] *= 100  # unit 8 has by far the largest weights
    assert render_plots(data)["weights.png"] == b"png"
    assert drawn["weights"].shape == (32, 144) and drawn["captions"][0] == "unit 8"
    np.testing.assert_array_equal(drawn["weights"][0], data.first_layer[:, 7])
    assert "the 32 of 40 units with the largest weights" in drawn["title"]
    data.first_layer, data.first_layer_is_output = data.first_layer[:, :10], True
    render_plots(data)
    assert drawn["captions"] == [f"class {i}" for i in range(10)]
    assert "each class's weights on the pixels (no hidden layer)" in drawn["title"]
    data.first_layer = data.first_layer[:100]  # not the image's 144 pixels: no picture
    assert "weights.png" not in render_plots(data)


@pytest.mark.parametrize("channels", [1, 3])
def test_weights_are_drawn_as_images_of_the_input(channels):
    from mlplab.report.mosaic import weights_png

    weights = np.random.default_rng(0).normal(size=(5, 6 * 6 * channels))
    weights[0] = 0.0  # a unit with no weights at all is drawn white, not an error
    assert_real_png(weights_png(weights, (6, 6, channels), [f"u{i}" for i in range(5)], "w"))


def test_image_grids_keep_the_images_proportions():
    """Tiles of images that are not square are drawn as they are, not stretched square:
    the sample grid of 3x6 images is about half as tall as that of 6x6 ones."""
    from mlplab.report.mosaic import samples_png

    labels = np.arange(12) % 3
    heights = {}
    for shape in ((6, 6, 1), (3, 6, 1)):
        images = np.full((12, *shape), 128, np.uint8)
        png = samples_png(images, labels, ["a", "b", "c"], "grid")
        heights[shape] = Image.open(io.BytesIO(png)).size[1]
    title = 0.6 * 100  # inches of title at 100 dpi, the same in both
    ratio = (heights[(3, 6, 1)] - title) / (heights[(6, 6, 1)] - title)
    assert 0.45 < ratio < 0.6


def test_empty_history_still_gives_curves_and_a_page(tmp_path):
    data = fake_report(tmp_path, 10, 1, epochs=0)
    pngs = render_plots(data)
    assert_real_png(pngs["curves.png"])
    assert "<h1>fake" in run_page(data, pngs)


# --- the HTML page ---------------------------------------------------------------------------


class _References(HTMLParser):
    """Collects every tag and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href", "srcset", "data", "poster", "action"):
                self.sources.append(value or "")


def test_report_html_is_self_contained(digits_run):
    text = (digits_run.path / "report.html").read_text(encoding="utf-8")
    parser = _References()
    parser.feed(text)
    parser.close()
    assert parser.tags.count("img") == len(DEFAULT_PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert not {"script", "link", "iframe", "object"} & set(parser.tags)
    assert "http://" not in text and "https://" not in text and "@import" not in text
    for expected in (
        "digits-mlp",
        "Reproduce",
        "mlplab train",
        "Per class",
        "Most confused",
        "compile",
        "--xla_cpu_scheduler_type=",  # the options the fused epoch was compiled with
        "keras",
        "[train]",
    ):
        assert expected in text, expected


def test_the_timing_lists_xla_options_only_where_the_epoch_had_them():
    from mlplab.report import html

    shown = html._facts([("XLA options", html._flags({"xla_b": "2", "xla_a": ""}))])
    assert '<span class="flags">--xla_a=<br>--xla_b=2</span>' in shown
    assert "XLA options" not in html._facts([("XLA options", html._flags({}))])


def _render_in_chromium(html_path: Path, tmp_path: Path) -> tuple[str, Path]:
    """Load the page in headless Chromium; return the DOM after load and a screenshot path.

    A copy of the page gets a small script that records, once loaded, how many images
    decoded: the report itself has no script.
    """
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0)"
        ".length + '/' + imgs.length; });</script></body>"
    )
    probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", script))
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={shot}", html_path.as_uri())
    return dom, shot


@needs_chromium
def test_report_renders_in_chromium_with_every_image(digits_run, tmp_path):
    dom, shot = _render_in_chromium(digits_run.path / "report.html", tmp_path)
    assert f'data-loaded="{len(DEFAULT_PLOTS)}/{len(DEFAULT_PLOTS)}"' in dom
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("L"), np.float32)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and plots, not blank


# --- mlplab report on a run directory ----------------------------------------------------------


def test_report_command_regenerates_everything(digits_run, tmp_path, capsys):
    run = copy_run(digits_run.path, tmp_path)
    for name in [*DEFAULT_PLOTS, "report.html", "report.txt"]:
        (run / name).unlink()
    # A run from before calibration was measured: the picture comes from its predictions.
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["calibration"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    code, out, err = run_cli(capsys, "report", run)
    assert code == 0, err
    for name in [*DEFAULT_PLOTS, "report.html", "report.txt"]:
        assert (run / name).is_file(), name
    assert str(run / "report.html") in out and err == ""
    page = (run / "report.html").read_text()
    assert "<h2>Calibration</h2>" in page and "<h2>Why the surest mistakes</h2>" in page


def test_report_refuses_a_run_that_is_still_training(digits_run, tmp_path, capsys):
    import socket

    from mlplab.running import MARKER_FILE

    run = copy_run(digits_run.path, tmp_path)
    (run / "report.html").unlink()
    marker = {"pid": os.getpid(), "host": socket.gethostname(), "since": "2026-11-24T10:00"}
    (run / MARKER_FILE).write_text(json.dumps(marker))
    code, out, err = run_cli(capsys, "report", run)
    assert code == 2 and out == ""
    assert err == (
        f"mlplab: error: {run}: still being trained by process {os.getpid()} (since "
        "2026-11-24T10:00); its report is written when it finishes (if it is stopped, run "
        "mlplab report then)\n"
    )
    assert not (run / "report.html").exists()


def test_report_names_an_unreadable_model_and_writes_the_rest(digits_run, tmp_path):
    run = copy_run(digits_run.path, tmp_path)
    (run / "model.keras").write_bytes(b"not a zip")
    (run / "weights.png").unlink()
    (run / "hidden.png").unlink()
    result = report_run(run)
    assert len(result.problems) == 1
    assert "model.keras not readable, so no pictures of its layers" in result.problems[0]
    assert not (run / "weights.png").exists() and not (run / "hidden.png").exists()
    assert (run / "mistakes.png").is_file()
    page = (run / "report.html").read_text()
    assert "What the first layer weighs" not in page and "hidden layers output" not in page


def test_report_of_a_run_without_predictions_recomputes_them(digits_run, tmp_path):
    run = copy_run(digits_run.path, tmp_path)
    (run / "test_predictions.npz").unlink()
    (run / "mistakes.png").unlink()
    result = report_run(run)
    assert result.problems == []
    assert (run / "mistakes.png").is_file()


def test_report_of_an_interrupted_run_shows_what_is_there(digits_run, tmp_path, capsys):
    run = copy_run(digits_run.path, tmp_path)
    for name in ("metrics.json", "model.keras", "report.html", "curves.png"):
        (run / name).unlink()
    code, _, err = run_cli(capsys, "report", run)
    assert code == 0
    assert "metrics.json missing" in err and "Traceback" not in err
    page = (run / "report.html").read_text()
    assert "incomplete" in page and "metrics.json missing" in page
    assert (run / "curves.png").is_file()


def test_report_of_a_run_stopped_before_its_first_epoch(digits_run, tmp_path, capsys):
    run = copy_run(digits_run.path, tmp_path)
    (run / "metrics.json").unlink()
    (run / "history.csv").write_text("epoch,loss,accuracy\n")
    code, _, err = run_cli(capsys, "report", run)
    assert code == 0, err
    assert_real_png((run / "curves.png").read_bytes())
    page = (run / "report.html").read_text()
    assert "incomplete" in page and "<td>1</td>" not in page  # no history rows


def test_report_of_a_run_from_a_newer_version(digits_run, tmp_path, capsys):
    run = copy_run(digits_run.path, tmp_path)
    config = (run / "config.toml").read_text()
    config = config.replace('mlplab = "', 'mlplab = "99.0.0"\nold_mlplab = "')
    config = config.replace("[train]\n", "[train]\nfuture_option = 3\n")
    (run / "config.toml").write_text(config)
    code, _, err = run_cli(capsys, "report", run)
    assert code == 0, err
    assert "newer than this mlplab" in err and "future_option" in err
    assert (run / "samples.png").is_file()  # the [data] table still names the dataset


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("config.toml", "not an mlplab run directory (config.toml missing)"),
        ("nothing-here", "no such run directory"),
    ],
)
def test_report_of_no_run_is_one_line(digits_run, tmp_path, capsys, damage, message):
    run = copy_run(digits_run.path, tmp_path)
    target = run / damage if damage == "config.toml" else tmp_path / damage
    if damage == "config.toml":
        target.unlink()
        target = run
    code, _, err = run_cli(capsys, "report", target)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_corrupt_metrics_are_named_not_a_traceback(digits_run, tmp_path, capsys):
    run = copy_run(digits_run.path, tmp_path)
    (run / "metrics.json").write_text("{not json")
    (run / "history.csv").write_text("epoch,loss\nx,y\n")
    code, _, err = run_cli(capsys, "report", run)
    assert code == 0
    assert "metrics.json: unreadable" in err and "history.csv: unreadable" in err


def test_train_without_report(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "train", "--epochs", "2", "--no-report", "--out", tmp_path, "-q"
    )
    assert code == 0, err
    [run] = list(tmp_path.iterdir())
    names = {p.name for p in run.iterdir()}
    assert "report.txt" in names and "metrics.json" in names
    assert not names & {"report.html", *PLOT_FILES.values()}
    assert "report:" not in out


# --- compare and runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sigmoid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sigmoid")
    return mlplab.train(
        overrides={"train.epochs": 4, "model.activation": "sigmoid", "name": "digits-sigmoid"},
        out=out,
        verbose=False,
    )


def test_compare_two_real_runs(digits_run, sigmoid_run, tmp_path, capsys):
    out = tmp_path / "cmp"
    code, text, err = run_cli(capsys, "compare", digits_run.path, sigmoid_run.path, "--out", out)
    assert code == 0, err
    assert "model.activation" in text and "train.epochs" in text
    assert "relu" in text and "sigmoid" in text
    assert digits_run.path.name in text and sigmoid_run.path.name in text
    for name in ("compare.csv", "compare.md", "compare.png", "compare.html"):
        assert (out / name).is_file(), name
    assert_real_png((out / "compare.png").read_bytes())
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("run,")
    page = (out / "compare.html").read_text()
    assert "digits-mlp" in page and "digits-sigmoid" in page
    accuracy = f"{digits_run.metrics['test_accuracy']:.4f}"
    assert accuracy in (out / "compare.md").read_text()
    columns = rows[0].split(",")
    assert columns[-9:-6] == ["ECE", "shifted 1 px", "shifted 2 px"]  # both have reports
    assert f"{digits_run.metrics['calibration']['ece']:.4f}" in rows[1]
    comparison = compare_runs([digits_run.path, sigmoid_run.path])  # the Python API
    assert "model.activation" in comparison.differences
    assert comparison.labels == ["digits-mlp", "digits-sigmoid"] and comparison.best is not None

    # Paired on the same test images: counted by hand, p from the exact binomial test.
    def right(run):
        with np.load(run.path / "test_predictions.npz") as saved:
            return saved["proba"].argmax(axis=1) == saved["y_true"]

    best = (digits_run, sigmoid_run)[comparison.best]
    other = (digits_run, sigmoid_run)[1 - comparison.best]
    only_other = int((right(other) & ~right(best)).sum())
    only_best = int((right(best) & ~right(other)).sum())
    n = only_other + only_best
    tail = sum(math.comb(n, i) for i in range(min(only_other, only_best) + 1)) / 2**n
    [row] = comparison.paired_rows
    assert row[:3] == [other.path.name, str(only_other), str(only_best)]
    assert row[3] == ("< 0.0001" if min(1, 2 * tail) < 1e-4 else f"{min(1.0, 2 * tail):.4f}")
    assert row[4] == row[3]  # one comparison: Holm's correction leaves it as it is
    # Each run's 95% interval over its test images, beside its accuracy.
    table = {line[0]: dict(zip(comparison.header, line, strict=True)) for line in comparison.rows}
    low, high = interval_of(digits_run.metrics)
    assert table[digits_run.path.name]["95% CI"] == f"{low:.4f}-{high:.4f}"
    assert low < digits_run.metrics["test_accuracy"] < high
    # What each run's learning curves say, as its report does (the 4-epoch sigmoid run is
    # still learning).
    for run in (digits_run, sigmoid_run):
        said = [f.kind for f in findings_of(read_record(run.path))]
        assert table[run.path.name]["curves say"] == (", ".join(said) or "—")
    assert table[sigmoid_run.path.name]["curves say"] == "still improving"
    assert "paired: each run against the best one" in text and row[3] in text
    assert "<h2>Paired with the best run</h2>" in page
    assert "## Paired with the best run" in (out / "compare.md").read_text()
    # Without its predictions a run is left out of the paired table.
    bare = copy_run(other.path, tmp_path, "bare")
    (bare / "test_predictions.npz").unlink()
    assert compare_runs([best.path, bare]).paired_rows == []


def test_holm_corrects_several_p_values_step_down():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, kept at least 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # at most 1
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_mcnemar_counts_the_images_only_one_gets_right():
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 0, 0, 0, 1, 0, 1], bool)
    only_a, only_b, p = mcnemar(a, b)
    assert (only_a, only_b) == (4, 1)
    assert p == pytest.approx(2 * (1 + 5) / 2**5)  # P(X <= 1), X ~ B(5, 1/2), both tails
    assert mcnemar(a, a) == (0, 0, 1.0)


def test_compare_takes_runs_that_differ_only_in_their_seed_together(
    digits_run, sigmoid_run, tmp_path, capsys
):
    import statistics

    paths, scores = [], [0.90, 0.94, 0.97]
    for seed, score in enumerate(scores):
        path = copy_run(digits_run.path, tmp_path, f"relu-{seed}")
        head, table, tail = (path / "config.toml").read_text().partition("\n[train]\n")
        assert "\nseed = 0\n" in tail  # train.seed: the first one after [train]
        tail = tail.replace("\nseed = 0\n", f"\nseed = {seed}\n", 1)
        (path / "config.toml").write_text(head + table + tail)
        metrics = json.loads((path / "metrics.json").read_text())
        metrics["test_accuracy"] = score
        (path / "metrics.json").write_text(json.dumps(metrics))
        paths.append(path)
    comparison = compare_runs([*paths, sigmoid_run.path])
    assert "train.seed" in comparison.differences
    by_variant = {row[0]: row for row in comparison.seed_rows}
    header = comparison.seed_header
    relu = dict(zip(header, by_variant["relu"], strict=True))
    spread = f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"
    assert relu["seeds"] == "0,1,2" and relu["runs"] == "3"
    assert relu["test accuracy (mean ± std)"] == spread == "0.9367 ± 0.0351"
    assert (relu["min"], relu["max"]) == ("0.9000", "0.9700")
    assert relu["ECE (mean)"] == f"{digits_run.metrics['calibration']['ece']:.4f}"
    sigmoid = dict(zip(header, by_variant["sigmoid"], strict=True))
    assert sigmoid["runs"] == "1" and "±" not in sigmoid["test accuracy (mean ± std)"]
    # Welch's t-test needs two runs on each side: the best config says "best", one run "—".
    assert relu["p vs best"] == "best" and sigmoid["p vs best"] == "—"
    lower = other_config(paths, tmp_path, "worse", "0.5", (0.85, 0.88))
    two = compare_runs([*paths, *lower])
    rows = {row[0]: dict(zip(two.seed_header, row, strict=True)) for row in two.seed_rows}
    expected = ttest_ind([0.85, 0.88], scores, equal_var=False).pvalue
    assert rows["0.3"]["p vs best"] == rows["0.3"]["p, Holm"] == "best"
    assert rows["0.5"]["p vs best"] == f"{expected:.4f}"
    # Two configs against the best (with the sigmoid run: its single run has no p-value).
    third = other_config(paths, tmp_path, "third", "0.7", (0.91, 0.93))
    three = compare_runs([*paths, *lower, *third])
    rows = {row[0]: dict(zip(three.seed_header, row, strict=True)) for row in three.seed_rows}
    raw = [float(rows[d]["p vs best"]) for d in ("0.5", "0.7")]
    assert [float(rows[d]["p, Holm"]) for d in ("0.5", "0.7")] == pytest.approx(holm(raw), abs=1e-4)
    assert float(rows["0.5"]["p, Holm"]) > float(rows["0.5"]["p vs best"])
    out = tmp_path / "cmp"
    code, text, _ = run_cli(capsys, "compare", *paths, sigmoid_run.path, "--out", out)
    assert code == 0 and "over seeds:" in text and spread in text
    assert spread in (out / "compare.md").read_text()
    assert "<h2>Over seeds</h2>" in (out / "compare.html").read_text()
    # different configs, no two alike: no summary over seeds
    assert compare_runs([digits_run.path, sigmoid_run.path]).seed_rows == []


def test_compare_shows_a_setting_a_run_never_read_as_a_dash(digits_run, tmp_path):
    def variant(name, seed=0, **train):
        path = copy_run(digits_run.path, tmp_path, name)
        raw = tomllib.loads((path / "config.toml").read_text())
        raw["train"].update(train, seed=seed)
        (path / "config.toml").write_text(to_toml(raw))
        return path

    # step_epochs beside a constant schedule: no column, and the two seeds go together.
    unread = [variant("three", step_epochs=3), variant("seven", seed=1, step_epochs=7)]
    comparison = compare_runs(unread)
    assert comparison.differences == ["train.seed"]
    seeds = comparison.seed_header.index("seeds")
    assert [row[seeds] for row in comparison.seed_rows] == ["0,1"]
    # Two step schedules that differ in it: a column, with a dash for the constant run.
    steps = [variant(f"step{n}", schedule="step", step_epochs=n) for n in (2, 5)]
    comparison = compare_runs([unread[0], *steps])
    column = comparison.header.index("train.step_epochs")
    assert [row[column] for row in comparison.rows] == ["—", "2", "5"]
    assert comparison.differences == ["train.schedule", "train.step_epochs"]
    assert comparison.labels == [  # compare.png's legend: what each run read
        "schedule=constant",
        "schedule=step, step_epochs=2",
        "schedule=step, step_epochs=5",
    ]
    # A run written before a key existed did what its default does: no column for it.
    older = variant("older")
    raw = tomllib.loads((older / "config.toml").read_text())
    del raw["train"]["monitor"], raw["model"]["l1"]
    (older / "config.toml").write_text(to_toml(raw))
    assert compare_runs([older, unread[0]]).differences == []


def other_config(paths, tmp_path, prefix, dropout, scores):
    """Copies of ``paths`` (runs with dropout 0.3), one per score: another config (their
    dropout set to ``dropout``) whose runs scored ``scores``."""
    made = []
    for seed, score in enumerate(scores):
        path = copy_run(paths[seed], tmp_path, f"{prefix}-{seed}")
        config = (
            (path / "config.toml").read_text().replace("dropout = 0.3", f"dropout = {dropout}", 1)
        )
        (path / "config.toml").write_text(config)
        metrics = json.loads((path / "metrics.json").read_text())
        metrics["test_accuracy"] = score
        (path / "metrics.json").write_text(json.dumps(metrics))
        made.append(path)
    return made


def test_compare_refuses_runs_on_different_datasets(digits_run, tmp_path, capsys):
    other = copy_run(digits_run.path, tmp_path, "other")
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["dataset"]["name"] = "fashion-mnist"
    (other / "metrics.json").write_text(json.dumps(metrics))
    code, _, err = run_cli(capsys, "compare", digits_run.path, other, "--out", tmp_path / "c")
    assert code == 2
    assert "different datasets" in err and "fashion-mnist" in err
    assert not (tmp_path / "c").exists()
    code, _, err = run_cli(capsys, "compare", digits_run.path)
    assert code == 2 and "at least two runs" in err


def test_runs_lists_sorts_and_filters(digits_run, sigmoid_run, tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    for run in (digits_run, sigmoid_run):
        copy_run(run.path, folder, run.path.name)
    broken = copy_run(digits_run.path, folder, "20990101-000000-broken")
    (broken / "metrics.json").unlink()
    config = (broken / "config.toml").read_text()
    newest = 'created = "2099-01-01T00:00:00+00:00"\nwas_created = "'
    (broken / "config.toml").write_text(config.replace('created = "', newest))
    (folder / "not-a-run").mkdir()

    code, out, err = run_cli(capsys, "runs", folder)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 + 3  # header, rule, three runs
    assert "incomplete" in lines[2]  # its config says it is the newest
    assert lines[0].split()[6] == "parameters"
    assert f" {digits_run.metrics['model']['parameters']:,} " in out
    code, out, _ = run_cli(capsys, "runs", folder, "--best", "1", "--json")
    [best] = json.loads(out)
    winner = max((digits_run, sigmoid_run), key=lambda r: r.metrics["test_accuracy"])
    assert best["test_accuracy"] == pytest.approx(winner.metrics["test_accuracy"])
    assert best["parameters"] == winner.metrics["model"]["parameters"]
    assert best["curves_say"] == [f.kind for f in findings_of(read_record(winner.path))]
    code, out, _ = run_cli(capsys, "runs", folder, "--dataset", "mnist")
    assert code == 0 and "no runs on mnist" in out
    code, _, err = run_cli(capsys, "runs", tmp_path / "missing")
    assert code == 2 and "no such folder of runs" in err
    assert [r.status for r in list_runs(folder, sort="accuracy")][-1] == "incomplete"
    assert read_record(broken).test_accuracy is None
