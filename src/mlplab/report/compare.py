"""Several runs side by side: what differs in their configs, and how they did.

Only runs on one dataset are compared: accuracies on different test sets say nothing about
the configs.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplab._text import aligned
from mlplab.errors import RunError
from mlplab.metrics import interval_range
from mlplab.record import RunRecord, read_record
from mlplab.runs import RunWriter

# The 95% CI column: where each run's accuracy on all images like its test images likely
# lies (Wilson's interval over its test images: mlplab.metrics.accuracy_interval).
RESULT_COLUMNS = (
    "test accuracy",
    "95% CI",
    "test loss",
    "ECE",
    "best epoch",
    "epochs",
    "train s",
    "status",
    "curves say",
)
# The test accuracy on shifted images (metrics.json's robustness), shown when a run has it:
# what augment.translate changes, which the plain test accuracy does not show.
SHIFT_COLUMNS = (("shifted 1 px", "1"), ("shifted 2 px", "2"))
FILES = ("compare.csv", "compare.md", "compare.png", "compare.html")
# Keys that name or describe a run rather than configure it.
NOT_CONFIG = ("meta", "name", "description")
SEED_KEY = "train.seed"
SEED_COLUMNS = (
    "seeds",
    "runs",
    "test accuracy (mean ± std)",
    "min",
    "max",
    "ECE (mean)",
    "p vs best",
    "p, Holm",
)
SEED_NOTE = (
    "Runs whose configs differ only in train.seed, taken together "
    "(± is the sample standard deviation across them; p vs best: Welch's t-test of their "
    "accuracies against the best config's, which needs two runs or more on each side; "
    "p, Holm: the same corrected for testing several configs at once)"
)
PAIRED_COLUMNS = (
    "run",
    "right where the best is wrong",
    "wrong where the best is right",
    "p",
    "p, Holm",
)
PAIRED_NOTE = (
    "Each run against the best one on the same test images: the images only one of them gets "
    "right, and how likely so lopsided a split is if the two were equally good (McNemar's "
    "exact test; p < 0.05 is the usual line). With several runs, one of them will cross it "
    "by luck now and then: p, Holm is corrected for that (Holm's step-down method), the one "
    "to read when more than one run is compared with the best"
)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 5}} -> {"train.epochs": 5}, without the run's name and meta."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in NOT_CONFIG:
            continue
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class Comparison:
    """The runs, their labels, the config keys that differ, and one table row per run."""

    records: list[RunRecord]
    labels: list[str]
    differences: list[str]
    header: list[str]
    rows: list[list[str]]
    # Runs that differ only in their seed, taken together (empty when no two runs do).
    seed_header: list[str] = field(default_factory=list)
    seed_rows: list[list[str]] = field(default_factory=list)
    # Each run against the best on the same test images (empty without their predictions).
    paired_rows: list[list[str]] = field(default_factory=list)

    @property
    def best(self) -> int | None:
        """Index of the run with the highest test accuracy (None if no run has one)."""
        scored = [(r.test_accuracy, i) for i, r in enumerate(self.records)]
        scored = [(a, i) for a, i in scored if a is not None and math.isfinite(a)]
        return max(scored)[1] if scored else None

    @property
    def dataset(self) -> str:
        return self.records[0].dataset

    def text(self) -> str:
        """Aligned plain-text tables for the terminal."""
        text = aligned(self.header, self.rows)
        if self.paired_rows:
            text += f"\n\npaired: {PAIRED_NOTE[0].lower()}{PAIRED_NOTE[1:]}\n"
            text += aligned(list(PAIRED_COLUMNS), self.paired_rows)
        if self.seed_rows:
            text += f"\n\nover seeds: {SEED_NOTE[0].lower()}{SEED_NOTE[1:]}\n"
            text += aligned(self.seed_header, self.seed_rows)
        return text

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*self.header, "path"])
        for row, record in zip(self.rows, self.records, strict=True):
            writer.writerow([*row, str(record.path)])
        return buffer.getvalue()

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        rows = [line(self.header), line(["---"] * len(self.header))]
        rows += [line(row) for row in self.rows]
        text = f"# Runs compared on {self.dataset}\n\n" + "\n".join(rows) + "\n"
        if self.paired_rows:
            paired = [line(PAIRED_COLUMNS), line(["---"] * len(PAIRED_COLUMNS))]
            paired += [line(row) for row in self.paired_rows]
            text += f"\n## Paired with the best run\n\n{PAIRED_NOTE}.\n\n" + "\n".join(paired)
            text += "\n"
        if self.seed_rows:
            seeds = [line(self.seed_header), line(["---"] * len(self.seed_header))]
            seeds += [line(row) for row in self.seed_rows]
            text += f"\n## Over seeds\n\n{SEED_NOTE}.\n\n" + "\n".join(seeds) + "\n"
        return text


def compare_records(records: Sequence[RunRecord]) -> Comparison:
    """Build the comparison table; refuse fewer than two runs or more than one dataset."""
    if len(records) < 2:
        raise RunError("compare needs at least two runs")
    datasets = {record.dataset for record in records}
    if len(datasets) > 1:
        listed = ", ".join(f"{record.path.name} ({record.dataset})" for record in records)
        raise RunError(f"the runs are on different datasets: {listed}; compare runs of one dataset")
    flats = [_compared_config(record) for record in records]
    keys = sorted({key for flat in flats for key in flat})
    # A key differs when the runs that read it set it differently: step_epochs beside one
    # step schedule and one constant one does not (the schedule column tells them apart).
    differences = [
        k
        for k in keys
        if len({repr(flat.get(k)) for flat in flats if flat.get(k) is not NOT_READ}) > 1
    ]
    labels = _legend_labels(records, flats, differences)
    shifts = SHIFT_COLUMNS if any((r.metrics or {}).get("robustness") for r in records) else ()
    # The networks' sizes, where the configs make them differ (runs before 0.1 lack it).
    sizes = [record.parameters for record in records]
    size_column = ["parameters"] if len({size for size in sizes if size}) > 1 else []
    rows = []
    for record, flat, size in zip(records, flats, sizes, strict=True):
        metrics = record.metrics or {}
        shifted = ((metrics.get("robustness") or {}).get("shift") or {}).get("accuracy") or {}
        rows.append(
            [
                record.path.name,
                *(_show(flat.get(k, "—")) for k in differences),
                *([f"{size:,}" if size else "—"] if size_column else []),
                _number(metrics.get("test_accuracy"), 4),
                interval_range(metrics) or "—",
                _number(metrics.get("test_loss"), 4),
                # The calibration error: runs written before it was measured show a dash.
                _number((metrics.get("calibration") or {}).get("ece"), 4),
                *(_number(shifted.get(pixels), 4) for _, pixels in shifts),
                str(metrics.get("best_epoch") or "—"),
                record.epochs,
                _number(metrics.get("train_seconds"), 1),
                record.status,
                _curves_say(record),
            ]
        )
    results = list(RESULT_COLUMNS)
    after_ece = results.index("ECE") + 1
    results[after_ece:after_ece] = [label for label, _ in shifts]
    header = ["run", *differences, *size_column, *results]
    seed_header, seed_rows = _over_seeds(records, flats, differences)
    comparison = Comparison(
        list(records), labels, differences, header, rows, seed_header, seed_rows
    )
    comparison.paired_rows = _paired_with_best(records, comparison.best)
    return comparison


def _curves_say(record: RunRecord) -> str:
    """What the run's learning curves say (its report's "What the curves say"), as the
    kinds found; a dash for nothing, or for an ensemble, which has no curves of its own."""
    from mlplab.diagnosis import findings_of

    return ", ".join(finding.kind for finding in findings_of(record)) or "—"


def _test_predictions(record: RunRecord) -> tuple[Any, Any] | None:
    """A run's test labels and predicted labels, int (n,) each, from test_predictions.npz;
    None when it has none or it cannot be read."""
    from mlplab.runs import read_test_predictions

    try:
        y_true, proba = read_test_predictions(record.path)
        return y_true, proba.argmax(axis=1)
    except (OSError, ValueError, KeyError):
        return None


def mcnemar(right_a: Any, right_b: Any) -> tuple[int, int, float]:
    """McNemar's exact test of two classifiers on the same images. right_a, right_b: bool
    (n,) whether each got each image right. Returns (images only a got right, images only
    b got right, the two-sided p-value: the binomial test of that split against 1/2)."""
    from scipy.stats import binomtest

    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    if only_a + only_b == 0:
        return 0, 0, 1.0
    return only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _paired_with_best(records: Sequence[RunRecord], best: int | None) -> list[list[str]]:
    """A row per other run with predictions on the best run's test images: [run, right
    where the best is wrong, wrong where the best is right, McNemar's p]."""
    import numpy as np

    if best is None or (reference := _test_predictions(records[best])) is None:
        return []
    labels, best_guess = reference
    rows, p_values = [], []
    for index, record in enumerate(records):
        found = None if index == best else _test_predictions(record)
        if found is None or not np.array_equal(found[0], labels):
            continue
        only_this, only_best, p = mcnemar(found[1] == labels, best_guess == labels)
        rows.append([record.path.name, str(only_this), str(only_best), _p_value(p)])
        p_values.append(p)
    return [[*row, _p_value(p)] for row, p in zip(rows, holm(p_values), strict=True)]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of p-values from several tests at once (Holm 1979), in
    their order. The smallest is multiplied by m, the next by m - 1, ..., each kept at least
    the one before and at most 1. It keeps the chance of any false "significant" among the
    m at the level read off, without assuming the tests independent (they are not: every
    run is tested against the same best run)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _p_value(p: float) -> str:
    """A p-value as people read it: 0.0312, or < 0.0001."""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


class _NotRead:
    """The value compare gives a setting the run's training never read (``step_epochs``
    beside a constant schedule): shown as a dash, and equal to itself in every run."""

    def __repr__(self) -> str:
        return "—"


NOT_READ = _NotRead()


def _compared_config(record: RunRecord) -> dict[str, Any]:
    """The run's config keys as compare shows them: a key its config.toml lacks (written
    before the key existed) has its default, and settings its training never read are
    ``NOT_READ``. An ensemble's config is its first member's, so it gets ``ensemble`` (how
    many networks it averages) and its members' seeds: it is neither that member nor another
    seed of it."""
    flat = flatten(record.config_raw)
    if record.config is not None:
        # A key added to mlplab after the run was written: its default is what the run did
        # (new keys default to the old behaviour), and what resume or evaluate read too.
        for key, value in flatten(record.config.to_dict()).items():
            flat.setdefault(key, value)
        for name in record.config.train.unread_keys():
            if f"train.{name}" in flat:
                flat[f"train.{name}"] = NOT_READ
    if record.ensemble:
        members = record.ensemble.get("members", [])
        flat["ensemble"] = len(members)
        flat[SEED_KEY] = ",".join(str(member.get("seed")) for member in members)
    return flat


def _over_seeds(
    records: Sequence[RunRecord], flats: Sequence[dict[str, Any]], differences: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """One row per config (leaving the seed out), in the order runs were given: its seeds,
    how many runs, the test accuracy's mean ± sample standard deviation, min and max, the
    mean calibration error (ECE), and Welch's p against the config with the best mean
    ("best" for that one). ([], []) unless some config has two runs or more."""
    groups: dict[str, list[int]] = {}
    for index, flat in enumerate(flats):
        key = repr(sorted((k, repr(v)) for k, v in flat.items() if k != SEED_KEY))
        groups.setdefault(key, []).append(index)
    if all(len(members) < 2 for members in groups.values()):
        return [], []
    shown = [key for key in differences if key != SEED_KEY]
    scored = [_scores([records[i] for i in members]) for members in groups.values()]
    means = [statistics.mean(scores) if scores else -math.inf for scores in scored]
    best = scored[means.index(max(means))]
    welch = {
        index: p
        for index, scores in enumerate(scored)
        if scores is not best and (p := _welch(scores, best)) is not None
    }
    corrected = dict(zip(welch, holm(list(welch.values())), strict=True))
    rows = []
    for index, (members, scores) in enumerate(zip(groups.values(), scored, strict=True)):
        spread = "—"
        if len(scores) >= 2:
            spread = f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"
        elif scores:
            spread = f"{scores[0]:.4f}"
        rows.append(
            [
                *(_show(flats[members[0]].get(key, "—")) for key in shown),
                ",".join(_show(flats[i].get(SEED_KEY, "—")) for i in members),
                str(len(members)),
                spread,
                _number(min(scores), 4) if scores else "—",
                _number(max(scores), 4) if scores else "—",
                _mean_ece([records[i] for i in members]),
                *(
                    ["best", "best"]
                    if scores is best
                    else [_p_or_dash(welch.get(index)), _p_or_dash(corrected.get(index))]
                ),
            ]
        )
    return [*shown, *SEED_COLUMNS], rows


def _scores(records: Sequence[RunRecord]) -> list[float]:
    """The runs' finite test accuracies."""
    scores = [record.test_accuracy for record in records]
    return [a for a in scores if a is not None and math.isfinite(a)]


def _welch(scores: Sequence[float], best: Sequence[float]) -> float | None:
    """Welch's t-test p-value of two groups of accuracies; None with fewer than two in
    either, or when neither varies."""
    if len(scores) < 2 or len(best) < 2:
        return None
    if statistics.stdev(scores) == 0 and statistics.stdev(best) == 0:
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(scores, best, equal_var=False).pvalue)


def _p_or_dash(p: float | None) -> str:
    return "—" if p is None else _p_value(p)


def _mean_ece(records: Sequence[RunRecord]) -> str:
    """The runs' mean expected calibration error, or a dash if none has one."""
    errors = [((r.metrics or {}).get("calibration") or {}).get("ece") for r in records]
    known = [e for e in errors if isinstance(e, float) and math.isfinite(e)]
    return _number(statistics.mean(known), 4) if known else "—"


def compare_runs(paths: Sequence[str | Path], out: str | Path | None = None) -> Comparison:
    """Compare run directories; with ``out``, write compare.csv/.md/.png/.html there."""
    comparison = compare_records([read_record(path) for path in paths])
    if out is not None:
        write_comparison(comparison, Path(out))
    return comparison


def write_comparison(comparison: Comparison, out: Path) -> list[Path]:
    from mlplab.report.html import compare_page
    from mlplab.report.plots import compare_png

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{out}: cannot create the output folder: {exc.strerror}") from None
    writer = RunWriter(out)
    title = f"{len(comparison.records)} runs on {comparison.dataset}"
    png = compare_png(
        [
            (label, r.history)
            for label, r in zip(comparison.labels, comparison.records, strict=True)
            if r.history  # an ensemble, or a run stopped in its first epoch: no curve
        ],
        title,
    )
    notes = [
        f"{label}: {problem}"
        for label, record in zip(comparison.labels, comparison.records, strict=True)
        for problem in record.problems
    ]
    writer.text("compare.csv", comparison.csv())
    writer.text("compare.md", comparison.markdown())
    writer.bytes("compare.png", png)
    runs = [
        (label, str(r.path)) for label, r in zip(comparison.labels, comparison.records, strict=True)
    ]
    writer.text(
        "compare.html",
        compare_page(
            title,
            comparison.header,
            comparison.rows,
            png,
            runs,
            notes,
            comparison.best,
            (comparison.seed_header, comparison.seed_rows, SEED_NOTE),
            (list(PAIRED_COLUMNS), comparison.paired_rows, PAIRED_NOTE),
        ),
    )
    return [out / name for name in FILES]


def _legend_labels(
    records: Sequence[RunRecord], flats: Sequence[dict[str, Any]], differences: Sequence[str]
) -> list[str]:
    """Run names where they tell the runs apart; else what differs (activation=sigmoid...);
    else the directory names."""
    names = [record.name for record in records]
    if len(set(names)) == len(names):
        return names
    labels = [
        ", ".join(
            f"{key.rsplit('.', 1)[-1]}={_show(flat.get(key, '—'))}"
            for key in differences
            if flat.get(key) is not NOT_READ  # a setting the run never read names nothing
        )
        for flat in flats
    ]
    if all(labels) and len(set(labels)) == len(labels):
        return labels
    return [record.path.name for record in records]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value) if value else "[]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _number(value: Any, digits: int) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "—"
