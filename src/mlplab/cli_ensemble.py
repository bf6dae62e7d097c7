"""``mlplab ensemble``: runs' networks averaged into one model, written as a run."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable
from typing import Any

from mlplab.cli import add_training_output_options
from mlplab.runs import Run


def add_parser(commands: Any) -> None:
    """Add ``ensemble`` to the CLI's sub-commands."""
    parser = commands.add_parser(
        "ensemble",
        help="average trained runs' networks into one model (a run you can predict, serve, export)",
        description=(
            "Average the class probabilities of two or more trained runs on the same dataset "
            "(different seeds, or different networks) into one model, measure it on the test "
            "split beside its members, and write it as a run: model.keras, metrics.json, the "
            "report. Networks from different seeds make different mistakes, so the mean makes "
            "fewer. `mlplab train --seeds N --ensemble` trains the members and does this."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories (two or more)")
    parser.add_argument(
        "--name", help="the ensemble's name (default: the members' name + -ensemble)"
    )
    parser.add_argument(
        "--out", default="runs", help="folder for the ensemble's run (default: %(default)s)"
    )
    add_training_output_options(parser)


def run(args: argparse.Namespace) -> int:
    from mlplab.ensembles import ensemble

    made = ensemble(
        args.runs,
        name=args.name,
        out=args.out,
        report=args.report,
        verbose=not args.quiet,
        command="mlplab " + shlex.join(args.argv),
        offline=args.offline,
    )
    print_ensemble(made, args.report)
    return 0


def print_ensemble(made: Run, report: bool) -> None:
    """The members' and the ensemble's test scores, and where it was written."""
    from mlplab._text import aligned

    facts = made.ensemble or {}
    metrics = made.metrics
    rows = [
        [
            member["folder"],
            f"{member['test_accuracy']:.4f}",
            f"{member['test_loss']:.4f}",
            f"{member['calibration_error']:.4f}",
        ]
        for member in facts["members"]
    ]
    rows.append(
        [
            f"the ensemble ({len(rows)})",
            f"{metrics['test_accuracy']:.4f}",
            f"{metrics['test_loss']:.4f}",
            f"{metrics['calibration']['ece']:.4f}",
        ]
    )
    print(aligned(["run", "test accuracy", "test loss", "ECE"], rows))
    print(
        f"members {facts['member_accuracy_mean']:.4f} ± {facts['member_accuracy_std']:.4f} "
        f"(mean ± sample std; best {facts['member_accuracy_best']:.4f}); the ensemble "
        f"{metrics['test_accuracy']:.4f} ({facts['gain']:+.4f} over their mean); they "
        f"disagree on {100 * facts['disagreement']:.1f}% of the test images"
    )
    print(f"run written to {made.path}/")
    if report:
        print(f"report: {made.path / 'report.html'}")
    print(
        f"next: mlplab predict {made.path} IMAGE.png   |   mlplab serve {made.path}   |   "
        f"mlplab export {made.path}"
    )


def ensemble_command(paths: Iterable[object]) -> str:
    """The ``mlplab ensemble`` command that makes an ensemble of these runs."""
    return "mlplab " + shlex.join(["ensemble", *(str(path) for path in paths)])
