"""tune.png: how a search went — the objective per trial, and against each searched key."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab._io import atomic_write_bytes
from mlplab.report.plots import STYLE, margins, plt, to_png
from mlplab.tuning.space import Dimension, shown

if TYPE_CHECKING:
    from mlplab.tuning.study import Study
    from mlplab.tuning.trials import TrialRecord

COLUMNS = 3
COMPLETE, PRUNED, BEST = "#4f81bd", "#a6a6a6", "#c0504d"
# How each state's trials are drawn (pruned ones at the last value they reported).
STATE_STYLES = {
    "complete": {"marker": "o", "color": COMPLETE, "ms": 4, "label": "complete"},
    "pruned": {"marker": "x", "color": PRUNED, "ms": 5, "label": "pruned (last value)"},
}


def tuning_png(study: Study, records: Sequence[TrialRecord], path: Path) -> None:
    """Write the study's picture to ``path`` (atomically)."""
    best = study.best(records)
    atomic_write_bytes(
        path,
        tuning_chart(
            records,
            study.dimensions,
            study.settings.objective,
            study.settings.direction == "maximize",
            best.number if best else None,
            f"{study.base.name}: {len(records)} trials ({study.path.name})",
        ),
    )


def tuning_chart(
    records: Sequence[TrialRecord],
    dimensions: Sequence[Dimension],
    objective: str,
    maximize: bool,
    best: int | None,
    title: str,
) -> bytes:
    """PNG bytes: the objective per trial with the best so far (first panel), then the
    objective against each searched key. Pruned trials are grey, at the last value they
    reported; the best trial is red."""
    panels = 1 + len(dimensions)
    columns = 2 if panels == 4 else min(panels, COLUMNS)  # 2 x 2 rather than 3 + 1
    rows = math.ceil(panels / columns)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.4 * rows + 0.5))
        margins(fig, left=0.7, right=0.25, bottom=0.6, top=0.7, wspace=0.3)
        fig.subplots_adjust(hspace=0.5)
        flat = list(getattr(axes, "flat", [axes]))
        _history_panel(flat[0], records, objective, maximize, best)
        for ax, dimension in zip(flat[1:], dimensions, strict=False):
            _key_panel(ax, records, dimension, objective, best)
        for ax in flat[panels:]:
            ax.set_visible(False)
        fig.suptitle(title)
        return to_png(fig)


def _points(records: Sequence[TrialRecord], state: str) -> list[tuple[TrialRecord, float]]:
    value = "value" if state == "complete" else "last_value"
    return [
        (r, getattr(r, value))
        for r in records
        if r.state == state and getattr(r, value) is not None and math.isfinite(getattr(r, value))
    ]


def _history_panel(
    ax: Any, records: Sequence[TrialRecord], objective: str, maximize: bool, best: int | None
) -> None:
    done = _points(records, "complete")
    pruned = _points(records, "pruned")
    for state, points in (("complete", done), ("pruned", pruned)):
        _plot_state(ax, state, [r.number for r, _ in points], [v for _, v in points])
    ordered = sorted(done, key=lambda point: point[0].number)
    if ordered:
        ax.step(
            [r.number for r, _ in ordered],
            list(itertools.accumulate((v for _, v in ordered), max if maximize else min)),
            where="post",
            color=BEST,
            lw=1.2,
            label="best so far",
        )
    _mark_best(ax, [(r.number, v) for r, v in done if r.number == best])
    ax.margins(y=0.08)
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if done or pruned:
        ax.legend(loc="best", fontsize="small")


def _key_panel(
    ax: Any,
    records: Sequence[TrialRecord],
    dimension: Dimension,
    objective: str,
    best: int | None,
) -> None:
    key = dimension.key
    labels = [shown(c) for c in dimension.choices] if dimension.choices is not None else []

    def x_of(record: TrialRecord) -> float:
        value = record.params[key]
        return labels.index(shown(value)) if labels else float(value)

    for state in ("pruned", "complete"):
        points = [(r, v) for r, v in _points(records, state) if key in r.params]
        _plot_state(ax, state, [x_of(r) for r, _ in points], [v for _, v in points], alpha=0.8)
        if state == "complete":
            _mark_best(ax, [(x_of(r), v) for r, v in points if r.number == best])
    if labels:
        ax.set_xticks(
            range(len(labels)), labels, rotation=20 if len(labels) > 3 else 0, fontsize="small"
        )
        ax.set_xlim(-0.5, len(labels) - 0.5)
    elif dimension.log:
        ax.set_xscale("log")
    ax.margins(y=0.08)
    ax.set_xlabel(key)
    ax.set_ylabel(objective)
    ax.set_title(key)
    ax.grid(alpha=0.3)


def _plot_state(ax: Any, state: str, x: list[float], y: list[float], **extra: Any) -> None:
    """Trials in ``state`` as points, in that state's style (nothing if there are none)."""
    if x:
        ax.plot(x, y, linestyle="none", **STATE_STYLES[state], **extra)


def _mark_best(ax: Any, points: Sequence[tuple[float, float]]) -> None:
    if points:
        ax.plot(
            [x for x, _ in points],
            [y for _, y in points],
            "*",
            color=BEST,
            ms=13,
            label="best",
            zorder=5,
        )
