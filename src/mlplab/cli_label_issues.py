"""``mlplab label-issues``: which images of a dataset are likely mislabelled."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from mlplab.cli import OFFLINE_HELP, add_config_arguments, flag_overrides
from mlplab.label_issues import (
    CSV_FILE,
    DEFAULT_FOLDS,
    PAGE_FILE,
    PLOT_FILE,
    SUMMARY_FILE,
    LabelAudit,
)

FLAGS = {"epochs": "train.epochs", "dataset": "data.dataset", "seed": "train.seed"}


def add_parser(commands: Any) -> None:
    """Add ``label-issues`` to the CLI's sub-commands."""
    parser = commands.add_parser(
        "label-issues",
        help="find images that are likely mislabelled (cross-validation + confident learning)",
        description=(
            "Train the config FOLDS times by k-fold cross-validation over all of its dataset's "
            "images (training and test; every image of a folder), so that every image gets "
            "probabilities from a network that did not train on it; then flag the images "
            "whose label those probabilities confidently contradict (confident learning, as "
            "cleanlab's find_label_issues(filter_by='confident_learning')), surest first. "
            "Writes runs/<UTC time>-<name>-label-issues/: label_issues.csv (a row per "
            "flagged image: its file, or split and index; given and likely label), "
            "label_issues.html and .png (look at them), label_issues.json and "
            "out_of_fold.npz. A flag "
            "says: look at this image; it is not proof."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        metavar="K",
        help="networks trained, each without a K-th of the images (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, help="= --set train.epochs=N")
    parser.add_argument("--dataset", help="= --set data.dataset=NAME|PATH")
    parser.add_argument("--seed", type=int, help="= --set train.seed=N (the folds and networks)")
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="flagged images to list (default: 10)"
    )
    parser.add_argument(
        "--out", default="runs", help="folder for the audit's folder (default: %(default)s)"
    )
    parser.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per fold")
    parser.add_argument("--json", action="store_true", help="print label_issues.json")


def run(args: argparse.Namespace) -> int:
    from mlplab.label_issues import audit_labels

    audit = audit_labels(
        args.config,
        overrides=flag_overrides(args, FLAGS),
        folds=args.folds,
        out=args.out,
        verbose=not args.quiet and not args.json,
        offline=args.offline,
        command="mlplab " + shlex.join(args.argv),
    )
    if args.json:
        print((audit.path / SUMMARY_FILE).read_text(encoding="utf-8"), end="")
    else:
        print(summary(audit, max(args.top, 0)))
    return 0


def summary(audit: LabelAudit, top: int) -> str:
    """How many were flagged, the most common pairs, the first ``top`` images and where
    the files are."""
    from mlplab._text import aligned
    from mlplab.label_issues import issue_rows

    issues, names = audit.issues, audit.class_names
    lines = [
        f"{audit.config.name} on {audit.config.data.dataset}: {issues.images:,} images, "
        f"{audit.folds} folds, out-of-fold accuracy {audit.accuracy:.4f}, {audit.seconds:.0f} s",
        f"{len(issues):,} likely mislabelled ({100 * audit.share:.2f}%)",
    ]
    pairs = issues.pairs()[:5]
    if pairs:
        lines.append(
            "most often: "
            + ", ".join(f"{names[g]} → {names[lk]} ({count})" for g, lk, count in pairs)
        )
    rows = issue_rows(audit)[:top]
    if rows:
        header = ["#", "image", "given", "likely", "p(given)", "p(likely)"]
        table = [
            [
                str(row["rank"]),
                row["image"],
                row["given"],
                row["likely"],
                f"{row['given_probability']:.3f}",
                f"{row['likely_probability']:.3f}",
            ]
            for row in rows
        ]
        lines += ["", aligned(header, table)]
    lines += [
        "",
        f"look at them: {audit.path / PAGE_FILE}  (the surest: {PLOT_FILE}; all of them: "
        f"{CSV_FILE})",
    ]
    return "\n".join(lines)
