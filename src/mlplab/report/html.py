"""Self-contained HTML pages: images embedded as data URIs, CSS inline, no JavaScript.

A page opens from disk, by e-mail or on a machine without network, and prints cleanly.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from mlplab._text import xla_flags
from mlplab._version import __version__
from mlplab.metrics import confused_pairs, interval_text
from mlplab.runs import CONFIG_FILE

if TYPE_CHECKING:
    from mlplab.diagnosis import Finding
    from mlplab.report.build import ReportData
    from mlplab.summary import ModelSummary

# The look every mlplab page shares (reports, comparisons, the `mlplab serve` page).
BASE_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --accent: #0969da; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); margin: 0 auto; padding: 24px 32px 48px;
       max-width: 1180px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 16px; }
pre, code { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
      padding: 10px 14px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""

CSS = (
    BASE_CSS
    + """
h3 { font-size: 15px; margin: 18px 0 6px; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; font-size: 13px;
         font-weight: 600; color: #fff; vertical-align: middle; margin-left: 8px; }
.badge.complete, .badge.early_stopped { background: var(--ok); }
.badge.interrupted { background: var(--warn); } .badge.diverged { background: var(--bad); }
.badge.incomplete, .badge.unknown, .badge.pruned { background: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px;
        min-width: 140px; background: var(--soft); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase;
           letter-spacing: .04em; }
.card .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .n { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.problems { border: 1px solid #d4a72c; background: #fff8c5; border-radius: 8px;
            padding: 8px 16px; margin: 12px 0; }
.problems li { margin: 2px 0; }
.advice { border: 1px solid #54aeff; background: #ddf4ff; border-radius: 8px;
          padding: 8px 16px; margin: 4px 0 16px; }
.advice li { margin: 4px 0; }
figure { margin: 12px 0 20px; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14px;
        margin: 6px 0 12px; }
th, td { padding: 3px 12px; border-bottom: 1px solid var(--line); text-align: right; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; }
.flags { display: block; white-space: nowrap; overflow-x: auto; }
td { white-space: nowrap; }  /* a number, or a range such as 0.9496-0.9848, in one piece */
tr.best td { background: #dafbe1; font-weight: 600; }
tr.avg td { border-top: 2px solid var(--line); font-style: italic; }
.scroll { max-height: 420px; max-width: 100%; overflow: auto; border: 1px solid var(--line);
          border-radius: 6px; display: inline-block; }
.scroll table { margin: 0; }
.cols { display: flex; flex-wrap: wrap; gap: 32px; align-items: flex-start; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 6px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; min-width: 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  figure, .cards, .problems, pre, tr, .keep { break-inside: avoid; }
  .scroll { max-height: none; overflow: visible; border: none; }
  th { position: static; }
  @page { margin: 14mm; }
}
"""
)


# [meta] keys shown elsewhere on the page (Reproduce), not under Versions.
NOT_VERSIONS = ("command", "created", "seed", "resumed_after_epoch", "resumed", "resume_command")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>Written by mlplab {escape(__version__)} on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}. This page is self-contained: "
        "its images are embedded and it loads nothing from the network.</footer>\n"
        "</body>\n</html>\n"
    )


def image(png: bytes | None, alt: str, caption: str = "") -> str:
    """A <figure> with the PNG embedded as a data URI ('' when there is no picture)."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">{text}</figure>'


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    row_classes: Sequence[str] | None = None,
    text_columns: Sequence[int] = (0,),
) -> str:
    """An HTML table; cells are escaped, numbers formatted by the caller."""
    heads = "".join(
        f'<th class="text">{escape(h)}</th>' if i in text_columns else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        cls = row_classes[index] if row_classes else ""
        cells = "".join(
            f'<td class="text">{escape(str(c))}</td>'
            if i in text_columns
            else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "—"


class _Markup(str):
    """A value already written as HTML: :func:`_facts` puts it in as it is."""


def _facts(pairs: Sequence[tuple[str, Any]]) -> str:
    items = "".join(
        f"<dt>{escape(k)}</dt><dd>{v if isinstance(v, _Markup) else escape(str(v))}</dd>"
        for k, v in pairs
        if v not in (None, "")
    )
    return f'<dl class="facts">{items}</dl>'


def _flags(options: dict[str, str]) -> _Markup | None:
    """XLA options one per line, each unbroken (scrolled sideways on a narrow screen): a
    line break inside "--name" would change what is copied into XLA_FLAGS. None without
    options (model.fit, another backend), so that :func:`_facts` leaves the row out."""
    if not options:
        return None
    flags = "<br>".join(escape(flag) for flag in xla_flags(options).split(" "))
    return _Markup(f'<span class="flags">{flags}</span>')


def _cards(pairs: Sequence[tuple[str, str] | tuple[str, str, str]]) -> str:
    """A row of cards: (heading, value) or (heading, value, a small note under the value)."""
    cards = []
    for heading, value, *note in pairs:
        under = f'<div class="n">{escape(note[0])}</div>' if note and note[0] else ""
        cards.append(
            f'<div class="card"><div class="k">{escape(heading)}</div>'
            f'<div class="v">{escape(value)}</div>{under}</div>'
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _picture_section(heading: str, png: bytes | None, alt: str, caption: str) -> list[str]:
    """A section that is one captioned picture: its heading and figure, or nothing without
    the picture."""
    return [] if png is None else [f"<h2>{escape(heading)}</h2>", image(png, alt, caption)]


def _robustness_section(png: bytes | None, images: str = "the test split") -> list[str]:
    """The robustness section: robustness.png and what it shows, for a run's test split or
    the images of an evaluation."""
    return _picture_section(
        "Robustness: when the images change a little",
        png,
        "accuracy on shifted, rotated and noisy images",
        f"the accuracy when every image of a seeded sample of {images} is moved by 1 to 3 "
        "pixels (up, down, left and right, averaged), turned by 10 to 30 degrees (both ways, "
        "averaged) or given Gaussian noise. An MLP sees pixels, not shapes: nothing in it "
        "knows that a moved image is the same image, so a small shift costs it more than "
        "noise does. [augment] translate and rotate train on shifted and turned copies "
        "(convolutional networks build the shift in)",
    )


def _coverage_section(png: bytes | None) -> list[str]:
    """The section on knowing when it is unsure: coverage.png and what it shows (run and
    evaluation pages alike)."""
    return _picture_section(
        "Knowing when it is unsure",
        png,
        "accuracy on the images answered against the share answered",
        "the network answers only where its largest probability reaches a threshold, and "
        "leaves the other images to a person: the curve gives the accuracy on the images it "
        "answers against the share it answers, the table under it a few thresholds. The "
        "title's threshold is read off these same images, so on new ones expect a little "
        "less. mlplab predict --min-probability P marks answers below P as unsure; "
        "--target-accuracy 0.99 picks the P that was 99% right here. An image unlike "
        "anything it trained on can still get a high probability: predict marks those "
        "separately, by their distance to the training images in the last hidden layer "
        "(novelty.npz)",
    )


def _temperature_facts(temperature: dict[str, Any]) -> str:
    """What ``train.calibrate`` did: the temperature, and the validation split before and
    after it (fitted there: better by construction; the diagram above is the test split)."""

    def change(key: str, percent: bool) -> str | None:
        before, after = temperature.get(f"{key}_before"), temperature.get(f"{key}_after")
        if not isinstance(before, float) or not isinstance(after, float):
            return None
        if percent:
            return f"{100 * before:.2f}% → {100 * after:.2f}%"
        return f"{before:.4f} → {after:.4f}"

    value = temperature.get("value")
    leaning = ""
    if isinstance(value, float):
        leaning = (
            " (sharpened: it was under-confident)"
            if value < 1
            else " (softened: it was over-confident)"
        )
    return _facts(
        [
            ("temperature", f"{number(value, 3)}{leaning}, folded into the output layer"),
            ("validation ECE (fitted there)", change("val_ece", percent=True)),
            ("validation loss", change("val_loss", percent=False)),
        ]
    )


def problems_box(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{escape(p)}</li>" for p in problems)
    heading = "<strong>Not everything could be shown:</strong>"
    return f'<div class="problems">{heading}<ul>{items}</ul></div>'


def _findings_box(findings: Sequence[Finding]) -> str:
    """What the learning curves say (:mod:`mlplab.diagnosis`), or nothing."""
    if not findings:
        return ""
    items = "".join(
        f"<li><strong>{escape(f.kind)}</strong>: {escape(f.seen)} {escape(f.advice)}</li>"
        for f in findings
    )
    return f'<div class="advice"><strong>What the curves say</strong><ul>{items}</ul></div>'


def run_page(data: ReportData, pngs: dict[str, bytes]) -> str:
    """The whole report of one run as an HTML document."""
    from mlplab.report.build import PLOT_FILES

    record = data.record
    metrics = record.metrics or {}
    facts = record.dataset_facts
    history = record.history
    status = record.status
    created = record.created.strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"<h1>{escape(record.name)}"
        f'<span class="badge {escape(status)}">{escape(status)}</span></h1>',
        f'<p class="sub">{escape(record.dataset)} · {escape(created)} · '
        f"<code>{escape(str(record.path))}</code></p>",
    ]
    description = record.config_raw.get("description")
    if description:
        parts.append(f"<p>{escape(str(description))}</p>")
    ensemble = metrics.get("ensemble")
    training = (
        [
            ("members", str(len(ensemble.get("members", [])))),
            (
                "members' accuracy",
                f"{number(ensemble.get('member_accuracy_mean'))} ± "
                f"{number(ensemble.get('member_accuracy_std'))}",
            ),
        ]
        if ensemble
        else [
            ("epochs", str(len(history))),
            ("best epoch", str(metrics.get("best_epoch") or "—")),
        ]
    )
    parts.append(
        _cards(
            [
                ("test accuracy", number(metrics.get("test_accuracy")), interval_text(metrics)),
                ("test loss", number(metrics.get("test_loss"))),
                *training,
                ("wall time", _seconds(metrics.get("wall_seconds")) or "—"),
            ]
        )
    )
    if metrics.get("message"):
        parts.append(f"<p><strong>{escape(str(metrics['message']))}</strong></p>")
    parts.append(problems_box(data.all_problems))

    command = record.meta.get("command")
    parts.append("<h2>Reproduce</h2>")
    if command:
        parts.append(f"<pre>{escape(str(command))}</pre>")
    resumed = record.meta.get("resumed_after_epoch")
    if resumed is not None:
        parts.append(
            f"<p>stopped, then resumed after epoch {escape(str(resumed))} "
            f"({escape(str(record.meta.get('resumed', '')))}) with:</p>"
            f"<pre>{escape(str(record.meta.get('resume_command', '')))}</pre>"
        )
    if ensemble:
        parts += _members_section(ensemble, pngs.get(PLOT_FILES["curves"]))
    else:
        parts.append(
            f"<p>or, with exactly this config: <code>mlplab train "
            f"{escape(str(record.path / CONFIG_FILE))}</code></p>"
        )
        parts.append("<h2>Learning curves</h2>")
        parts.append(image(pngs.get(PLOT_FILES["curves"]), "loss and accuracy per epoch"))
        parts.append(_findings_box(data.findings))
        if history:
            train = record.config.train if record.config else None
            monitor = train.monitor if train else "val_loss"
            parts.append(_history_table(history, monitor, train.min_delta if train else 0.0))
        parts += _started_section(metrics)
        parts += _teacher_section(metrics)

    parts.append("<h2>Test results</h2>")
    if metrics.get("per_class") and record.class_names:
        parts += _scores(
            pngs.get(PLOT_FILES["confusion"]),
            pngs.get(PLOT_FILES["per_class"]),
            metrics,
            record.class_names,
            record.class_names,
        )
    else:
        parts.append("<p>No test results: the run did not finish.</p>")
    if PLOT_FILES["mistakes"] in pngs:
        parts.append("<h2>Predictions</h2>")
        parts.append(
            image(
                pngs[PLOT_FILES["mistakes"]],
                "most confident mistakes",
                "the test images the network got wrong with the highest probability",
            )
        )
        parts.append(image(pngs[PLOT_FILES["correct"]], "most confident right predictions"))
    parts += _picture_section(
        "Why the surest mistakes",
        pngs.get(PLOT_FILES["why_mistakes"]),
        "the surest mistakes, with what their pixels contributed to each class",
        "each mistake beside what its pixels contributed to the class the network chose and "
        "to the true one (gradient times input of the class's logit minus the mean logit): "
        "red pushed towards the class, blue against it, white did not matter",
    )

    parts += _picture_section(
        "Calibration",
        pngs.get(PLOT_FILES["calibration"]),
        "reliability diagram",
        "the test predictions grouped by the network's confidence (its largest probability): "
        "bars show how often those in each group were right; on the dashed line, a network "
        "that says 90% is right 90% of the time. ECE, the expected calibration error, is the "
        "gap averaged over all predictions. Long training without regularisation leaves a "
        "network over-confident, label smoothing under-confident; train.calibrate = true "
        "fits a temperature that corrects either",
    )
    if metrics.get("temperature") and PLOT_FILES["calibration"] in pngs:
        parts.append(_temperature_facts(metrics["temperature"]))
    parts += _coverage_section(pngs.get(PLOT_FILES["coverage"]))
    parts += _robustness_section(pngs.get(PLOT_FILES["robustness"]))
    parts += _picture_section(
        "What the first layer weighs",
        pngs.get(PLOT_FILES["weights"]),
        "first-layer weights as images",
        "each tile is one unit's weights on the pixels, each times how much its pixel varies "
        "in the training images: red where a brighter pixel raises the unit's input, blue "
        "where it lowers it, white where the pixel does not matter (or never changes)",
    )
    parts += _picture_section(
        "What the hidden layers output",
        pngs.get(PLOT_FILES["hidden"]),
        "histograms of each hidden layer's outputs",
        "each hidden layer's outputs on up to 1000 training images (log counts): a ReLU unit "
        "that is never active on any of them has stopped learning (dead), and a sigmoid or "
        "tanh output near the ends of its range is saturated, where its gradient nearly "
        "vanishes",
    )
    parts += _picture_section(
        "What each layer sees",
        pngs.get(PLOT_FILES["layer_views"]),
        "test images placed by their pixels and by each hidden layer's outputs",
        "each dot is a test image, coloured by its true class and placed by the first two "
        "principal components of its pixels, then of each hidden layer's outputs: a network "
        "that learns pulls the classes apart layer by layer, until its output layer, a linear "
        "classifier, can separate them. Over each map, the 5-nearest-neighbour accuracy in "
        "the layer's full space: how often an image's five nearest images there share its "
        "class (on the pixels, the classic k-NN baseline). mlplab embed RUN --tsne draws "
        "t-SNE maps, where the clusters show better",
    )

    parts += _picture_section(
        "How strongly each layer learns",
        pngs.get(PLOT_FILES["gradients"]),
        "the loss gradient of each layer's weights, at the start and after training",
        "the root mean square of the loss gradient for each layer's weights, as a training "
        "step on 1000 training images computes it, at the weights training started from and "
        "at the trained ones. The error signal travels back from the output, multiplied on "
        "the way by each layer's activation slope: a sigmoid's is at most 1/4, so in a deep "
        "sigmoid network the first layers get gradients many times smaller than the last "
        "and learn slowly (the vanishing gradient). ReLU's slope is 1 where a unit is "
        "active; batch norm and a careful initialisation help too",
    )
    if data.model_summary is not None:
        parts += _model_section(data.model_summary)

    parts.append("<h2>Dataset and split</h2>")
    if PLOT_FILES["samples"] in pngs:
        parts.append(image(pngs[PLOT_FILES["samples"]], "training samples per class"))
    if PLOT_FILES["augmented"] in pngs:
        parts.append(
            image(
                pngs[PLOT_FILES["augmented"]],
                "training images and what augmentation makes of them",
                "each training image as stored, then random draws of the [augment] settings: "
                "every epoch shows the network a new draw of every image, and the test images "
                "as they are",
            )
        )
    parts.append(
        _facts(
            [
                ("dataset", record.dataset),
                ("source", facts.get("source")),
                ("image shape (h, w, c)", _shape(facts.get("image_shape"))),
                ("classes", len(record.class_names) or None),
                ("train images", facts.get("train_samples")),
                ("validation images", facts.get("validation_samples")),
                ("validation", facts.get("validation")),
                ("test images", facts.get("test_samples")),
                ("test split", facts.get("test_split")),
            ]
        )
    )

    parts.append("<h2>Timing</h2>")
    seconds = [row["seconds"] for row in history if "seconds" in row]
    parts.append(
        _facts(
            [
                ("engine", metrics.get("engine") or record.meta.get("engine")),
                ("compile", _seconds(metrics.get("compile_seconds"))),
                ("XLA options", _flags(metrics.get("xla_options") or {})),
                (
                    "the members' training" if ensemble else "training (incl. compile)",
                    _seconds(metrics.get("train_seconds")),
                ),
                ("mean epoch", _seconds(sum(seconds) / len(seconds)) if seconds else None),
                (
                    "whole run, start to finish"
                    if metrics.get("resumed_after_epoch") is None
                    else "the resumed part, start to finish",
                    _seconds(metrics.get("wall_seconds")),
                ),
                ("resumed after epoch", metrics.get("resumed_after_epoch")),
            ]
        )
    )

    parts.append("<h2>Config</h2>")
    if ensemble:
        parts.append(
            "<p>The first member's, under the ensemble's name: what reading images for it "
            "follows. Each member's own config is in its folder.</p>"
        )
    parts.append(f"<pre>{escape(_config_text(record))}</pre>")
    versions = [(k, v) for k, v in record.meta.items() if k not in NOT_VERSIONS]
    if versions:
        parts.append("<h2>Versions</h2>")
        parts.append(_facts(versions))
    return _page(data.title, _keep_headings([p for p in parts if p]))


def _started_section(metrics: dict[str, Any]) -> list[str]:
    """A run that started from another run's weights (``model.init_from``): which, and
    what came over."""
    from mlplab.warm_start import started_line

    line = started_line(metrics.get("init_from"))
    if line is None:
        return []
    return [
        "<h2>Starting weights</h2>",
        f"<p>{escape(line[0].upper() + line[1:])}.</p>",
        '<p class="sub">Epoch 1 of the curves above is the first epoch after that; the '
        "optimizer's state and the learning-rate schedule started anew.</p>",
    ]


def _teacher_section(metrics: dict[str, Any]) -> list[str]:
    """A distilled run's teacher (``train.teacher``): which run, and how the two compare."""
    from mlplab.teacher import taught_line

    line = taught_line(metrics)
    if line is None:
        return []
    path = metrics["teacher"].get("path", "")
    return [
        "<h2>Teacher</h2>",
        f"<p>{escape(line[0].upper() + line[1:])}.</p>",
        f'<p class="sub">{escape(str(path))}; <code>teacher_loss</code> in the table '
        "above is what this network paid each epoch for answering otherwise than its "
        "teacher, <code>loss</code> what it paid on the labels.</p>",
    ]


def _model_section(summary: ModelSummary) -> list[str]:
    """The network's layers, as Keras' model.summary() lists them, and its size."""
    from mlplab.summary import describe

    rows = [
        [
            row.name,
            row.kind,
            row.output,
            row.activation or "",
            f"{row.parameters:,}",
        ]
        for row in summary.layers
    ]
    return [
        "<h2>Model</h2>",
        f'<p class="sub">{escape(describe(summary))}</p>',
        table(
            ["layer", "type", "output per image", "activation", "parameters"],
            rows,
            text_columns=(0, 1, 3),
        ),
    ]


def _members_section(ensemble: dict[str, Any], curves: bytes | None) -> list[str]:
    """An ensemble's members: how the mean did against them, their scores, their curves."""
    members = ensemble.get("members", [])
    gain = ensemble.get("gain")
    summary = (
        f"Alone, the {len(members)} networks score "
        f"{number(ensemble.get('member_accuracy_mean'))} ± "
        f"{number(ensemble.get('member_accuracy_std'))} on the test split (mean ± sample "
        f"std; best {number(ensemble.get('member_accuracy_best'))}); together "
        f"{'+' if isinstance(gain, (int, float)) and gain >= 0 else ''}{number(gain)} over "
        f"their mean. They disagree on {number(100 * (ensemble.get('disagreement') or 0), 1)}%"
        " of the test images: the more they differ, the more averaging them helps."
    )
    rows = [
        [
            member.get("folder", ""),
            member.get("seed", ""),
            number(member.get("test_accuracy")),
            number(member.get("test_loss")),
            number(member.get("calibration_error")),
            member.get("status", ""),
        ]
        for member in members
    ]
    return [
        "<h2>Members</h2>",
        f"<p>{escape(summary)}</p>",
        table(
            ["member", "seed", "test accuracy", "test loss", "ECE", "status"],
            rows,
            text_columns=(0, 5),
        ),
        image(curves, "each member's curves", "each member's curves, as it trained"),
    ]


def _keep_headings(parts: list[str]) -> str:
    """Join the blocks, each <h2> kept on one page with the block after it when printed."""
    out: list[str] = []
    index = 0
    while index < len(parts):
        if parts[index].startswith("<h2>") and index + 1 < len(parts):
            out.append(keep(parts[index], parts[index + 1]))
            index += 2
        else:
            out.append(parts[index])
            index += 1
    return "\n".join(out)


def keep(*blocks: str) -> str:
    """Blocks a printer must not split across pages."""
    return f'<div class="keep">{"".join(blocks)}</div>'


def _seconds(value: Any) -> str | None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _shape(value: Any) -> str | None:
    return " \u00d7 ".join(str(v) for v in value) if isinstance(value, list) else None


def _config_text(record: Any) -> str:
    try:
        return (record.path / CONFIG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"({CONFIG_FILE} unreadable: {exc})"


def _history_table(
    history: Sequence[dict[str, float]], monitor: str = "val_loss", min_delta: float = 0.0
) -> str:
    from mlplab.report.plots import best_epoch, best_label
    from mlplab.runs import HISTORY_COLUMNS

    columns = [c for c in HISTORY_COLUMNS if any(c in row for row in history)]
    best = best_epoch(history, monitor, min_delta)
    digits = {"seconds": 2}

    def cell(row: dict[str, float], column: str) -> str:
        value = row.get(column)
        if column == "epoch":
            return str(int(row["epoch"]))
        if column == "lr" and isinstance(value, float) and math.isfinite(value):
            # Three significant digits: a plateau schedule's cuts reach 1e-7 and below.
            return f"{value:.3g}"
        return number(value, digits.get(column, 4))

    rows = [[cell(row, c) for c in columns] for row in history]
    classes = [
        "best" if best is not None and row["epoch"] == best["epoch"] else "" for row in history
    ]
    header = [c.replace("_", " ") for c in columns]
    note = ""
    if best:
        note = f'<p class="sub">Highlighted: the epoch with the {best_label(monitor)}.</p>'
    return f'<div class="scroll">{table(header, rows, classes)}</div>{note}'


def _scores(
    confusion: bytes | None,
    per_class: bytes | None,
    metrics: dict[str, Any],
    class_names: Sequence[str],
    scored: Sequence[str],
    images: str = "test images",
) -> list[str]:
    """The confusion matrix and the most confused pairs, then the per-class scores (of the
    ``scored`` classes) as a chart and a table: a run's test results, or an evaluation's."""
    return [
        image(
            confusion,
            "confusion matrix",
            "rows: true class; columns: predicted; colour: share of the row",
        ),
        _confused_table(metrics, class_names, images),
        image(per_class, "per-class scores"),
        _per_class_table(metrics, scored),
    ]


def _confused_table(
    metrics: dict[str, Any], class_names: Sequence[str], images: str = "test images"
) -> str:
    pairs = confused_pairs(metrics.get("confusion_matrix", []), class_names, top=10)
    if not pairs:
        return f"<p>No mistakes on the {escape(images)}.</p>"
    rows = [[p["true"], p["predicted"], p["count"], f"{100 * p['share']:.1f}%"] for p in pairs]
    header = ["true class", "predicted as", images, "share of the true class"]
    return keep("<h3>Most confused pairs</h3>", table(header, rows, text_columns=(0, 1)))


def _per_class_table(metrics: dict[str, Any], class_names: Sequence[str]) -> str:
    per_class = metrics["per_class"]
    rows, classes = [], []
    for name in class_names:
        scores = per_class.get(str(name), {})
        rows.append(
            [
                name,
                number(scores.get("precision")),
                number(scores.get("recall")),
                number(scores.get("f1")),
                scores.get("support", "—"),
            ]
        )
        classes.append("")
    total = sum(int(per_class.get(str(n), {}).get("support", 0)) for n in class_names)
    for key, label in (("macro_avg", "macro average"), ("weighted_avg", "weighted average")):
        average = metrics.get(key)
        if isinstance(average, dict):
            rows.append(
                [
                    label,
                    number(average.get("precision")),
                    number(average.get("recall")),
                    number(average.get("f1")),
                    total,
                ]
            )
            classes.append("avg")
    rows.append(["accuracy", "", "", number(metrics.get("test_accuracy")), total])
    classes.append("avg")
    header = ["class", "precision", "recall", "F1", "support"]
    return keep("<h3>Per class</h3>", f'<div class="scroll">{table(header, rows, classes)}</div>')


def _unlike_card(unlike: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The evaluation's "unlike its training images" card (none for a run without a novelty
    reference): the share of these images, beside the share of its own test images."""
    if not unlike:
        return []
    own = unlike.get("test_share")
    beside = f" (its test images: {100 * own:.0f}%)" if own is not None else ""
    return [("unlike its training images", f"{100 * unlike['share']:.1f}%{beside}")]


def evaluation_page(
    title: str, result: dict[str, Any], class_names: Sequence[str], pngs: dict[str, bytes]
) -> str:
    """An evaluation (``mlplab evaluate --out``): its numbers, confusion matrix, per-class
    scores, galleries and reliability diagram. result: :func:`mlplab.evaluate`'s dict;
    pngs: file name -> PNG bytes (a gallery is missing when it would be empty)."""
    from mlplab.report.evaluation import EVALUATION_FILES

    ece = result["calibration"]["ece"]
    scored = list(result["per_class"])
    matched = {
        "same": "",
        "by name": " Its classes were matched to the model's by name.",
        "by position": " Its classes were matched to the model's by position: their names differ.",
    }[result["classes"]]
    which = (
        "its test split"
        if result["images"] == "test split"
        else "all its images (it has no test split of its own)"
    )
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(result["dataset"])}: {escape(which)}.{escape(matched)}</p>',
        _cards(
            [
                ("accuracy", number(result["test_accuracy"]), interval_text(result)),
                ("loss", number(result["test_loss"])),
                ("calibration error", f"{100 * ece:.2f}%"),
                ("images", f"{result['test_samples']:,}"),
                *_unlike_card(result.get("unlike_training")),
            ]
        ),
        "<h2>Results</h2>",
        *_scores(
            pngs.get(EVALUATION_FILES["confusion"]),
            pngs.get(EVALUATION_FILES["per_class"]),
            result,
            class_names,
            scored,
            "images",
        ),
        "<h2>Predictions</h2>",
    ]
    if EVALUATION_FILES["mistakes"] in pngs:
        parts.append(
            image(
                pngs[EVALUATION_FILES["mistakes"]],
                "most confident mistakes",
                "the images the network got wrong with the highest probability",
            )
        )
    else:
        parts.append("<p>No mistakes: every image was labelled right.</p>")
    if EVALUATION_FILES["correct"] in pngs:
        parts.append(image(pngs[EVALUATION_FILES["correct"]], "most confident right predictions"))
    parts += [
        "<h2>Calibration</h2>",
        image(
            pngs.get(EVALUATION_FILES["calibration"]),
            "reliability diagram",
            "the predictions grouped by the network's confidence: how often those in each "
            "group were right; on the dashed line, a network that says 90% is right 90% of "
            "the time",
        ),
    ]
    parts += _coverage_section(pngs.get(EVALUATION_FILES["coverage"]))
    parts += _robustness_section(
        pngs.get(EVALUATION_FILES["robustness"]),
        "the test split" if result["images"] == "test split" else "the images",
    )
    return _page(title, _keep_headings(parts))


def label_issues_page(
    title: str,
    facts: Sequence[tuple[str, str]],
    pairs: Sequence[Sequence[Any]],
    suspects: Sequence[tuple[str, Sequence[Any]]],
    more: int,
) -> str:
    """A label audit (``mlplab label-issues``): its counts, the class pairs most often
    flagged, and the surest suspects, each row its image (a PNG data URL) then rank, image
    name, given and likely label and their probabilities. more: flagged images left out of
    the page (they are in label_issues.csv)."""
    header = ["", "#", "image", "given", "likely", "p(given)", "p(likely)"]
    heads = "".join(
        f'<th class="text">{escape(h)}</th>' if i in (2, 3, 4) else f"<th>{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for url, row in suspects:
        thumbnail = (
            f'<img src="{url}" alt="" style="width:56px;height:auto;margin:0;border:0;'
            'image-rendering:pixelated">'
        )
        cells = "".join(
            f'<td class="text">{escape(str(c))}</td>'
            if i in (1, 2, 3)
            else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr><td>{thumbnail}</td>{cells}</tr>")
    rest = (
        f'<p class="sub">{more:,} more flagged images are in label_issues.csv.</p>' if more else ""
    )
    parts = [
        f"<h1>{escape(title)}</h1>",
        _cards(facts),
        '<p class="sub">Each image was judged by a network trained without it (k-fold '
        "cross-validation); it is flagged when that network is confidently sure of another "
        "class than its label (confident learning). A flag says: look at this image. Surest "
        "first.</p>",
        "<h2>Most often flagged</h2>" if pairs else "",
        table(["given", "likely", "images"], pairs, text_columns=(0, 1)) if pairs else "",
        "<h2>The suspects</h2>",
        f'<div class="scroll"><table><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        if body
        else "<p>None: no image's label is confidently contradicted.</p>",
        rest,
    ]
    return _page(title, "\n".join(p for p in parts if p))


def compare_page(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    png: bytes,
    runs: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
    best: int | None = None,
    seeds: tuple[Sequence[str], Sequence[Sequence[Any]], str] | None = None,
    paired: tuple[Sequence[str], Sequence[Sequence[Any]], str] | None = None,
) -> str:
    """The comparison of several runs: the table, the overlaid curves and where each run is.

    seeds: (header, rows, note) of the table of runs taken together over seeds, if any;
    paired: the same for each run against the best on the same test images."""
    text_columns = tuple(i for i, h in enumerate(header) if h in ("run", "status") or "." in h)
    classes = ["best" if i == best else "" for i in range(len(rows))]
    over_seeds = ""
    if seeds and seeds[1]:
        seed_header, seed_rows, note = seeds
        columns = tuple(i for i, h in enumerate(seed_header) if "." in h or h == "seeds")
        over_seeds = f'<h2>Over seeds</h2>\n<p class="sub">{escape(note)}.</p>\n' + table(
            seed_header, seed_rows, text_columns=columns
        )
    against_best = ""
    if paired and paired[1]:
        paired_header, paired_rows, note = paired
        against_best = (
            f'<h2>Paired with the best run</h2>\n<p class="sub">{escape(note)}.</p>\n'
            + table(paired_header, paired_rows, text_columns=(0,))
        )
    parts = [
        f"<h1>{escape(title)}</h1>",
        problems_box(notes),
        '<div class="scroll">' + table(header, rows, classes, text_columns=text_columns) + "</div>",
        '<p class="sub">Highlighted: the highest test accuracy.</p>' if best is not None else "",
        against_best,
        over_seeds,
        image(png, "validation curves of every run, overlaid"),
        "<h2>Runs</h2>",
        _facts(runs),
    ]
    return _page(title, "\n".join(p for p in parts if p))


def study_page(
    title: str,
    summary: str,
    cards: Sequence[tuple[str, str]],
    settings: Sequence[tuple[str, Any]],
    png: bytes | None,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    best: int | None,
    texts: Sequence[tuple[str, str]],
) -> str:
    """A tuning study: its best trial in cards, what was searched, tune.png, every trial (the
    best highlighted), then ``texts``: (heading, preformatted text) sections such as the best
    config and the commands to go on."""
    text_columns = tuple(i for i, h in enumerate(header) if h in ("state", "run") or "." in h)
    classes = ["best" if i == best else "" for i in range(len(rows))]
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(summary)}</p>',
        _cards(cards),
        "<h2>Search</h2>",
        _facts(settings),
        image(png, "the objective per trial and against each searched key"),
        "<h2>Trials</h2>",
        '<div class="scroll">' + table(header, rows, classes, text_columns=text_columns) + "</div>",
    ]
    parts += [f"<h2>{escape(heading)}</h2><pre>{escape(text)}</pre>" for heading, text in texts]
    return _page(title, "\n".join(part for part in parts if part))
