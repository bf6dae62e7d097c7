"""``mlplab lr-find``: the learning-rate range test, and the learning rate it suggests."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from mlplab.cli import (
    OFFLINE_HELP,
    TRAIN_FLAGS,
    add_config_arguments,
    flag_overrides,
    without_option,
)
from mlplab.errors import MlplabError
from mlplab.lr_range import DEFAULT_STEPS


def add_parser(commands: Any) -> None:
    """Add ``lr-find`` to the CLI's sub-commands."""
    finder = commands.add_parser(
        "lr-find",
        help="suggest a learning rate: a short test with a growing rate (seconds)",
        description=(
            "Train the config's network from its initial weights for a few hundred batches "
            "while the learning rate grows exponentially, stop when the loss blows up, and "
            "suggest a rate read from the loss curve: a tenth of the rate at the lowest loss "
            "(a third for the peak of a one-cycle or cosine schedule). Leslie Smith's range "
            "test, as fastai's lr_find runs it. Writes runs/<UTC time>-<name>-lr-find/: "
            "lr_find.png (look at it), lr_find.csv, lr_find.json and base.toml. Exit code 1 "
            "when the curve cannot be read (it says why)."
        ),
    )
    add_config_arguments(finder)
    finder.add_argument("--dataset", help="= --set data.dataset=NAME")
    finder.add_argument("--batch-size", type=int, help="= --set train.batch_size=N")
    finder.add_argument("--seed", type=int, help="= --set train.seed=N")
    finder.add_argument(
        "--start",
        type=float,
        default=1e-7,
        metavar="LR",
        help="learning rate of the first step (default: %(default)g)",
    )
    finder.add_argument(
        "--end",
        type=float,
        default=10.0,
        metavar="LR",
        help="learning rate of the last step (default: %(default)g)",
    )
    finder.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="batches to train at most (default: %(default)s)",
    )
    finder.add_argument(
        "--no-stop",
        dest="stop",
        action="store_false",
        help="run every step, even after the loss has blown up",
    )
    finder.add_argument(
        "--out", default="runs", help="folder for the test's folder (default: %(default)s)"
    )
    finder.add_argument("--json", action="store_true", help="print the result as JSON")
    finder.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    finder.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)


def run(args: argparse.Namespace) -> int:
    from mlplab.lrfind import SUMMARY_FILE, lr_find

    result = lr_find(
        args.config,
        overrides=_overrides(args),
        start=args.start,
        end=args.end,
        steps=args.steps,
        stop_on_divergence=args.stop,
        verbose=not args.quiet and not args.json,
        command="mlplab " + shlex.join(args.argv),
        out=args.out,
        offline=args.offline,
    )
    if args.json:
        print((result.path / SUMMARY_FILE).read_text(encoding="utf-8"), end="")
    else:
        print(summary(result, args))
    return 0 if result.suggestion is not None else 1


FLAGS = {"batch_size": "train.batch_size", "seed": "train.seed", "dataset": "data.dataset"}


def _overrides(args: argparse.Namespace) -> list[str]:
    return flag_overrides(args, FLAGS)


def choose_rate(args: argparse.Namespace) -> None:
    """``train --lr auto``: run the range test on the config as given (every other flag
    applies), then set ``args.lr`` to its suggestion, rounded to 2 digits, and ``args.argv``
    to the train command with that rate (what the run records, so it repeats without the
    test). MlplabError when the curve gives no suggestion."""
    from mlplab.lr_range import SUGGESTION_RULES
    from mlplab.lrfind import PLOT_FILE, lr_find

    args.lr = None
    result = lr_find(
        args.config,
        overrides=flag_overrides(args, TRAIN_FLAGS),
        out=args.out,
        verbose=not args.quiet,
        command="mlplab " + shlex.join(args.argv),  # the train --lr auto that ran it
        offline=args.offline,
    )
    plot = result.path / PLOT_FILE if result.path is not None else None
    if result.suggestion is None:
        raise MlplabError(
            f"--lr auto: the learning-rate test gives no suggestion: {result.sweep.problem} "
            f"(curve: {plot}); give --lr X instead"
        )
    args.lr = float(f"{result.suggestion:.2g}")
    args.argv = [*without_option(args.argv, "--lr"), "--lr", f"{args.lr:g}"]
    if not args.quiet:
        print(
            f"--lr auto: {args.lr:g}, {SUGGESTION_RULES[result.sweep.rule]} (curve: {plot})",
            file=sys.stderr,
            flush=True,
        )


def summary(result: Any, args: argparse.Namespace) -> str:
    """The suggestion, the other rules' rates, where the curve is, and what to run next."""
    from mlplab.lr_range import CONSTANT_RULE, PEAK_RULE, SUGGESTION_RULES
    from mlplab.lrfind import CURVE_FILE, PLOT_FILE

    sweep, train = result.sweep, result.config.train
    where = f"curve: {result.path / PLOT_FILE}  (and {CURVE_FILE})"
    if result.suggestion is None:
        return f"no suggestion: {sweep.problem}\n{where}"
    lr = result.suggestion
    schedule = ""
    if train.schedule != "constant":
        schedule = f" (the peak of its {train.schedule} schedule)"
    found = sweep.suggestions
    facts = [
        f"steepest descent at {found['steepest'].lr:.2g}",
        f"lowest loss at {sweep.lowest_lr:.2g}",
    ]
    if sweep.rule == PEAK_RULE:
        facts.insert(0, f"for a constant rate: {found[CONSTANT_RULE].lr:.2g}")
    lines = [
        f"suggested learning rate: {lr:.2g}   ({SUGGESTION_RULES[sweep.rule]})",
        f"  {'; '.join(facts)}; the config has {train.learning_rate:g}{schedule}",
    ]
    if not sweep.turned_up:
        lines.append(
            f"  note: the loss was still falling at lr {sweep.end_lr:.2g}: higher rates may do "
            "better (--end)"
        )
    # The same config as the user gave it: recipe or file, their --set and --dataset.
    given = [args.config] if args.config else []
    given += [part for text in args.overrides for part in ("--set", text)]
    given += ["--dataset", args.dataset] if args.dataset is not None else []
    settings = [
        f"train.{key}={value}"
        for key, value in (("batch_size", args.batch_size), ("seed", args.seed))
        if value is not None
    ]
    given += [part for text in settings for part in ("--set", text)]
    search = f"train.learning_rate={lr / 10:.2g}..{lr * 10:.2g}:log"
    lines += [
        where,
        "next: " + shlex.join(["mlplab", "train", *given, "--lr", f"{lr:.2g}"]),
        "      "
        + shlex.join(["mlplab", "tune", *given, "--search", search])
        + "   (a decade either side)",
    ]
    return "\n".join(lines)
