"""``mlplab learning-curve``: the accuracy against the number of training images."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from mlplab.cli import OFFLINE_HELP, add_config_arguments, flag_overrides, seed_list
from mlplab.errors import MlplabError
from mlplab.learning_curves import DEFAULT_FRACTIONS, PLOT_FILE, SUMMARY_FILE, LearningCurve

FLAGS = {"epochs": "train.epochs", "dataset": "data.dataset"}


def add_parser(commands: Any) -> None:
    """Add ``learning-curve`` to the CLI's sub-commands."""
    parser = commands.add_parser(
        "learning-curve",
        help="the accuracy against the number of training images: more data, or a better model?",
        description=(
            "Train the config on growing shares of its training images (seeded, stratified "
            "subsets; the validation and test splits stay the same), once per seed, and score "
            "each model on the test split and on its own training images. Writes "
            "runs/<UTC time>-<name>-learning-curve/: learning_curve.png (look at it), "
            "learning_curve.csv, learning_curve.json, base.toml and the runs."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--fractions",
        default=",".join(f"{f:g}" for f in DEFAULT_FRACTIONS),
        metavar="F,F,...",
        help="shares of the training images to train on, each > 0 and <= 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds",
        default="1",
        metavar="N|S,S,...",
        help="runs per share: N seeds counting up from the config's, or the seeds listed "
        "(default: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, help="= --set train.epochs=N")
    parser.add_argument("--dataset", help="= --set data.dataset=NAME")
    parser.add_argument(
        "--out", default="runs", help="folder for the curve's folder (default: %(default)s)"
    )
    parser.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per run")
    parser.add_argument("--json", action="store_true", help="print learning_curve.json")


def run(args: argparse.Namespace) -> int:
    from mlplab.api import resolve_config
    from mlplab.learning_curves import learning_curve

    overrides = flag_overrides(args, FLAGS)
    try:
        fractions = [float(part) for part in args.fractions.split(",") if part.strip()]
    except ValueError:
        raise MlplabError(
            f"--fractions {args.fractions!r}: give shares such as 0.1,0.5,1"
        ) from None
    base = resolve_config(args.config, overrides)
    curve = learning_curve(
        base,
        fractions=fractions,
        seeds=seed_list(args.seeds, base.train.seed),
        out=args.out,
        verbose=not args.quiet and not args.json,
        offline=args.offline,
        command="mlplab " + shlex.join(args.argv),
    )
    if args.json:
        print((curve.path / SUMMARY_FILE).read_text(encoding="utf-8"), end="")
    else:
        print(summary(curve))
    return 0


def summary(curve: LearningCurve) -> str:
    """The table per training-set size, the reading and where the files are."""
    from mlplab._text import aligned

    seeds = len({point.seed for point in curve.points})
    spread = " (mean ± std)" if seeds > 1 else ""

    def shown(mean: float, std: float) -> str:
        return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f}"

    rows = [
        [
            f"{100 * size.fraction:g}%",
            f"{size.train_images:,}",
            shown(size.test_mean, size.test_std),
            shown(size.train_mean, size.train_std),
        ]
        for size in curve.sizes
    ]
    header = ["share", "train images", f"test accuracy{spread}", f"train accuracy{spread}"]
    return "\n".join(
        [
            f"{curve.config.name} on {curve.config.data.dataset}: {len(curve.points)} runs "
            f"({len(curve.sizes)} sizes x {seeds} seed{'s' if seeds > 1 else ''}) in "
            f"{curve.seconds:.0f} s",
            aligned(header, rows),
            "",
            curve.reading,
            "",
            f"curve: {curve.path / PLOT_FILE}  (and learning_curve.csv, learning_curve.json)",
        ]
    )
