"""``mlplab ensemble``: runs' networks averaged into one model, written as a run."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlplab.cli import add_training_output_options
from mlplab.errors import MlplabError
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
            "fewer. `mlplab train --seeds N --ensemble` trains the members and does this; "
            "--study DIR takes the best trials of a `mlplab tune` study."
        ),
    )
    parser.add_argument(
        "runs", nargs="*", metavar="RUN", help="run directories (two or more), or --study"
    )
    parser.add_argument(
        "--study",
        metavar="DIR",
        help="instead of runs: the best trials of this `mlplab tune` study, ranked by its "
        "objective on the validation split",
    )
    parser.add_argument(
        "--best",
        type=int,
        metavar="K",
        help="with --study: how many of its best trials (default: 5)",
    )
    parser.add_argument(
        "--name", help="the ensemble's name (default: the members' name + -ensemble)"
    )
    parser.add_argument(
        "--out", default="runs", help="folder for the ensemble's run (default: %(default)s)"
    )
    add_training_output_options(parser)


def run(args: argparse.Namespace) -> int:
    from mlplab.ensembles import ensemble

    runs, name = args.runs, args.name
    if args.study is not None:
        if runs:
            raise MlplabError("give runs or --study, not both")
        runs, name = _study_runs(args.study, 5 if args.best is None else args.best, name)
    elif args.best is not None:
        raise MlplabError("--best K takes the best trials of a study: give --study DIR too")
    elif not runs:
        raise MlplabError("give the runs to average (two or more), or --study DIR")
    made = ensemble(
        runs,
        name=name,
        out=args.out,
        report=args.report,
        verbose=not args.quiet,
        command="mlplab " + shlex.join(args.argv),
        offline=args.offline,
    )
    print_ensemble(made, args.report)
    return 0


def _study_runs(study: str, best: int, name: str | None) -> tuple[list[Path], str]:
    """The run folders of a study's ``best`` best trials, and the ensemble's name (``name``,
    or the study's config name + ``-best<K>-ensemble``)."""
    from mlplab.tuning.study import best_runs, read_study_files

    runs = best_runs(study, best)
    if name is None:
        _, base = read_study_files(Path(study))
        name = f"{base.name}-best{len(runs)}-ensemble"
    print(
        f"the {len(runs)} best trials of {study}: " + ", ".join(run.name for run in runs),
        file=sys.stderr,
    )
    return runs, name


def print_ensemble(made: Run, report: bool) -> None:
    """The members' and the ensemble's test scores, and where it was written."""
    from mlplab._text import aligned
    from mlplab.ensembles import member_folder
    from mlplab.runs import CONFIG_FILE

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
    first = member_folder(made.path, facts["members"][0]) if facts.get("members") else None
    if first is not None:  # one network of a member's size that learns from the ensemble
        name = made.config.name.removesuffix("-ensemble") + "-distilled"
        print(
            f"      mlplab train {first / CONFIG_FILE} --teacher {made.path} --name {name}"
            "   (one network that learns from it)"
        )


def ensemble_command(paths: Iterable[object]) -> str:
    """The ``mlplab ensemble`` command that makes an ensemble of these runs."""
    return "mlplab " + shlex.join(["ensemble", *(str(path) for path in paths)])
