"""tune.png and study.html: how a search went — the objective per trial, against each searched
key, and the page that shows it with every trial."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlplab._io import atomic_write_bytes, atomic_write_text
from mlplab.report.plots import STYLE, margins, plt, to_png
from mlplab.tuning.space import Dimension, shown, spec_text

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


def write_pictures(
    study: Study, records: Sequence[TrialRecord], importances: dict[str, float]
) -> None:
    """tune.png (once some trial has a score) and study.html, each written atomically."""
    from mlplab.tuning.study import PAGE_FILE, PLOT_FILE

    png = None
    if any(r.state in ("complete", "pruned") for r in records):
        best = study.best(records)
        png = tuning_chart(
            records,
            study.dimensions,
            study.settings.objective,
            study.settings.direction == "maximize",
            best.number if best else None,
            f"{study.base.name}: {len(records)} trials ({study.path.name})",
        )
        atomic_write_bytes(study.path / PLOT_FILE, png)
    atomic_write_text(study.path / PAGE_FILE, _page(study, records, importances, png))


def _page(
    study: Study, records: Sequence[TrialRecord], importances: dict[str, float], png: bytes | None
) -> str:
    """study.html: the study's facts and every trial, best first, then the others by number."""
    from mlplab.report.html import number, study_page
    from mlplab.tuning.study import BEST_FILE
    from mlplab.tuning.trials import ranked, score_text, state_tally

    settings, objective = study.settings, study.settings.objective
    best = study.best(records)
    leading = ranked(records, settings.direction)
    rest = [r for r in records if r not in leading]
    keys = [d.key for d in study.dimensions]
    header = ["trial", "state", objective, "test accuracy", *keys, "epochs", "s", "run"]
    rows = [
        [
            r.number,
            r.state + (f" (as trial {r.repeat_of})" if r.repeat_of else ""),
            score_text(r) if r.value is not None else number(r.last_value),
            number(r.test_accuracy),
            *(shown(r.params[key]) if key in r.params else "—" for key in keys),
            "" if r.epochs is None else r.epochs,
            "" if r.seconds is None else f"{r.seconds:.1f}",
            r.run.name if r.run else r.note,
        ]
        for r in [*leading, *rest]
    ]
    tally = state_tally(records) or "none yet"
    seeds = f" (mean of {settings.trial_seeds} seeds)" if settings.trial_seeds > 1 else ""
    summary = (
        f"{settings.direction} {objective}{seeds} on the validation split; "
        f"{len(records)} trials ({tally}); {study.path}"
    )
    cards = [("trials", str(len(records)))]
    if best is not None:
        cards = [
            (f"best {objective}", score_text(best)),
            ("best trial", str(best.number)),
            ("its test accuracy", number(best.test_accuracy)),
            *cards,
        ]
    facts: list[tuple[str, Any]] = [(d.key, spec_text(d.spec)) for d in study.dimensions]
    facts += [
        ("how", "every combination (grid)" if settings.grid else "Optuna's TPE sampler"),
        ("pruning", "median pruner from half the epochs" if settings.prune else "none"),
        ("base config", f"{study.base.name} ({study.path / 'base.toml'})"),
    ]
    if importances:
        shares = ", ".join(f"{key} {share:.2f}" for key, share in importances.items())
        facts.append(("importance (PED-ANOVA)", shares))
    texts = []
    best_file = study.path / BEST_FILE
    if best is not None and best_file.is_file():
        texts.append((f"Best config ({BEST_FILE})", best_file.read_text(encoding="utf-8")))
    go_on = [f"mlplab tune --study {study.path} --trials 10   # search on"]
    if best is not None:
        go_on.insert(0, f"mlplab train {best_file} --seeds 5   # does the best hold over seeds?")
    if settings.grid:
        go_on = [f"mlplab compare {study.path}/*-trial*   # the settings on the test split"]
    texts.append(("Next", "\n".join(go_on)))
    if settings.command:
        texts.append(("This study was made with", settings.command))
    title = f"{study.base.name}: tuning study"
    best_row = 0 if best is not None else None
    return study_page(title, summary, cards, facts, png, header, rows, best_row, texts)


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
    else:
        _range_axis(ax, dimension)
    ax.margins(y=0.08)
    ax.set_xlabel(key)
    ax.set_ylabel(objective)
    ax.set_title(key)
    ax.grid(alpha=0.3)


def _range_axis(ax: Any, dimension: Dimension) -> None:
    """A searched range as the x axis: the whole range shown (where the trials fell in it is
    the point), numbers written plainly (0.0005, not 5e-4 as a power of ten); on a log scale
    narrower than ~1.5 decades, ticks at 1, 2 and 5 of each decade (1, 2, 3, 4, 6, 8 below
    0.8 decades), and no labels on the minor ticks (they ran into each other)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = dimension.low, dimension.high
    if dimension.log:
        ax.set_xscale("log")
        pad = (high / low) ** 0.04
        ax.set_xlim(low / pad, high * pad)
        decades = math.log10(high / low)
        if decades < 1.5:  # the decades' own ticks would be one or two
            subs = (1, 2, 3, 4, 6, 8) if decades < 0.8 else (1, 2, 5)
            ax.xaxis.set_major_locator(LogLocator(subs=[float(s) for s in subs]))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        pad = (high - low) * 0.04
        ax.set_xlim(low - pad, high + pad)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


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
