"""What a Jupyter notebook shows for mlplab's results: a small card with the numbers that
matter and the one picture that says the most (``_repr_html_`` of Run, LRFindResult,
TuneResult, LearningCurve and LabelAudit call these).

Cards use inline styles only: a notebook's own CSS is not mlplab's, and a card must look the
same in JupyterLab, VS Code and an exported notebook.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from mlplab.diagnosis import findings_of
from mlplab.metrics import interval_range
from mlplab.report.html import number

if TYPE_CHECKING:
    from mlplab.label_issues import LabelAudit
    from mlplab.learning_curves import LearningCurve
    from mlplab.lrfind import LRFindResult
    from mlplab.runs import Run
    from mlplab.tuning.tuner import TuneResult

BOX = (
    "border:1px solid #d1d9e0;border-radius:8px;padding:10px 16px;margin:4px 0;"
    "max-width:760px;font:14px/1.5 system-ui,sans-serif;color:#1f2328;background:#fff"
)
FACT = "display:inline-block;margin:0 18px 4px 0"
MUTED = "color:#59636e"


def card(
    title: str,
    facts: Sequence[tuple[str, str]],
    png: bytes | None,
    alt: str,
    footer: str = "",
) -> str:
    """A bordered box: a bold title, facts as "name value" pairs in a row, the PNG embedded
    (if any), and a muted footer line (where the files are)."""
    items = "".join(
        f'<span style="{FACT}"><span style="{MUTED}">{escape(name)}</span> '
        f"<b>{escape(value)}</b></span>"
        for name, value in facts
    )
    picture = ""
    if png:
        data = base64.b64encode(png).decode("ascii")
        picture = (
            f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" '
            'style="max-width:100%;height:auto;margin-top:6px">'
        )
    tail = f'<div style="{MUTED};font-size:12px">{escape(footer)}</div>' if footer else ""
    return (
        f'<div style="{BOX}"><div style="font-size:16px;font-weight:600;margin-bottom:4px">'
        f"{escape(title)}</div><div>{items}</div>{picture}{tail}</div>"
    )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def run_card(run: Run) -> str:
    """A run: status, test accuracy, loss and calibration error, epochs, time, and its
    learning curves (drawn from the history when the run has no curves.png:
    ``--no-report``)."""
    from mlplab.report.build import HTML_FILE, PLOT_FILES

    metrics = run.metrics
    facts = [
        ("status", run.status),
        ("test accuracy", number(metrics.get("test_accuracy"))),
        ("test loss", number(metrics.get("test_loss"))),
        ("epochs", str(metrics.get("epochs_completed", len(run.history)))),
    ]
    if shown := interval_range(metrics):  # where the accuracy on such images likely lies
        facts.insert(2, ("95% CI", shown))
    if run.ensemble:  # no epochs of its own: how many networks, and how they did alone
        ensemble = run.ensemble
        facts[-1] = (
            "members",
            f"{len(ensemble['members'])}, alone {number(ensemble['member_accuracy_mean'])} ± "
            f"{number(ensemble['member_accuracy_std'])}",
        )
    ece = run.calibration_error
    if isinstance(ece, float):
        facts.insert(3, ("calibration error", f"{100 * ece:.2f}%"))
    if run.parameters is not None:
        facts.append(("parameters", f"{run.parameters:,}"))
    seconds = metrics.get("train_seconds")
    if isinstance(seconds, (int, float)):
        facts.append(("training", f"{seconds:.1f} s"))
    if found := findings_of(run):  # its report's "What the curves say", in a word or two
        facts.append(("curves say", ", ".join(finding.kind for finding in found)))
    report = run.path / HTML_FILE
    footer = f"{run.path}" + (f" · report: {report}" if report.is_file() else "")
    title = f"{run.config.name} on {metrics['dataset']['name']}"
    png = _read(run.path / PLOT_FILES["curves"])
    if png is None and run.history:
        from mlplab.report.plots import curves_png, rate_cuts

        train = run.config.train
        png = curves_png(
            run.history,
            title,
            rate_cuts(run.history, train.schedule),
            train.monitor,
            train.min_delta,
        )
    return card(title, facts, png, "learning curves", footer)


def lr_find_card(result: LRFindResult) -> str:
    """A range test: the suggested rate (or why there is none) and the loss curve (its
    lr_find.png, or drawn when the test wrote no folder)."""
    from mlplab.lr_range import SUGGESTION_RULES
    from mlplab.lrfind import PLOT_FILE
    from mlplab.report.lr_find import lr_find_png

    sweep, train = result.sweep, result.config.train
    if result.suggestion is None:
        facts = [("no suggestion", str(sweep.problem))]
    else:
        facts = [
            ("suggested learning rate", f"{result.suggestion:.2g}"),
            ("rule", SUGGESTION_RULES[sweep.rule]),
        ]
    facts.append(("the config has", f"{train.learning_rate:g}"))
    png = None if result.path is None else _read(result.path / PLOT_FILE)
    if png is None:  # lr_find(out=None) wrote no folder: draw it
        png = lr_find_png(sweep, train.learning_rate, f"{result.config.name}: learning-rate test")
    footer = "" if result.path is None else str(result.path)
    return card(f"lr-find: {result.config.name}", facts, png, "loss against learning rate", footer)


def study_card(result: TuneResult) -> str:
    """A study: trials by state, the best trial and its settings, and tune.png."""
    from mlplab.tuning.study import PAGE_FILE, PLOT_FILE
    from mlplab.tuning.trials import state_tally

    trials = result.trials
    facts = [("trials", f"{len(trials)} ({state_tally(trials)})" if trials else "0")]
    best = result.best
    if best is not None:
        facts.append((f"best {result.objective}", f"{number(best.value)} (trial {best.number})"))
        facts += [(key, _short(value)) for key, value in best.params.items()]
    page = result.path / PAGE_FILE
    footer = f"{result.path}" + (f" · {page}" if page.is_file() else "")
    title = f"study: {result.direction} {result.objective} over {', '.join(result.keys)}"
    return card(title, facts, _read(result.path / PLOT_FILE), "objective per trial", footer)


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def learning_curve_card(curve: LearningCurve) -> str:
    """A learning curve: the test and training accuracy at its largest size, its reading,
    and learning_curve.png."""
    from mlplab.learning_curves import PLOT_FILE

    largest = curve.sizes[-1]
    facts = [
        ("runs", str(len(curve.points))),
        ("largest", f"{largest.train_images:,} images"),
        ("test accuracy", number(largest.test_mean)),
        ("train accuracy", number(largest.train_mean)),
    ]
    return card(
        f"learning curve: {curve.config.name}",
        facts,
        _read(curve.path / PLOT_FILE),
        "accuracy against the number of training images",
        f"{curve.reading} · {curve.path}",
    )


def label_audit_card(audit: LabelAudit) -> str:
    """A label audit: how many images, how many flagged, the out-of-fold accuracy, and
    label_issues.png."""
    from mlplab.label_issues import CSV_FILE, PLOT_FILE

    return card(
        f"label issues: {audit.config.name} on {audit.config.data.dataset}",
        audit.facts(),
        _read(audit.path / PLOT_FILE),
        "the surest likely mislabelled images",
        f"all of them: {audit.path / CSV_FILE}",
    )
