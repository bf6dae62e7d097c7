"""What a teacher buys (``train.teacher``): one network trained on an ensemble's answers.

    python benchmarks/distill.py RECIPE [--set KEY=VALUE]... [--members 5] [--seeds 3]
        [--teacher RUN] [--student-set KEY=VALUE]... [--grid T,W ...] [--out DIR]

Trains ``members`` runs of the recipe with ``--set`` (seeds 100, 101, ...; no report, in a
temporary folder) and averages them into an ensemble, the teacher, unless ``--teacher``
names a run to use instead. Then the student (the same recipe and ``--set``, plus
``--student-set``, e.g. a smaller ``model.hidden``) is trained for seeds 0 .. seeds-1 alone
and taught at each temperature and weight of ``--grid`` (default: mlplab's defaults), and
the script prints, as mean ± sample std over the seeds: the test accuracy, the calibration
error and how often the student answers as its teacher does. Fashion-MNIST is Debian's copy
(offline).
"""

from __future__ import annotations

import argparse
import tempfile

from seeded import quiet_run, spread

import mlplab
from mlplab.config import DEFAULT_TEACHER_TEMPERATURE, DEFAULT_TEACHER_WEIGHT


def _students(
    recipe: str, overrides: list[str], seeds: int, out: str, label: str
) -> list[mlplab.Run]:
    runs = []
    for seed in range(seeds):
        run = quiet_run(recipe, overrides, seed, out)
        runs.append(run)
        print(f"  {label}, seed {seed}: {run.metrics['test_accuracy']:.4f}", flush=True)
    return runs


def _row(label: str, runs: list[mlplab.Run], teacher: mlplab.Run) -> str:
    accuracy = [run.metrics["test_accuracy"] for run in runs]
    ece = [run.calibration_error for run in runs]
    taught = [run.metrics.get("teacher", {}).get("test_agreement") for run in runs]
    if None in taught:  # untaught: how often it answers as the teacher all the same
        taught = [_agreement(run, teacher) for run in runs]
    per_seed = ", ".join(f"{100 * a:.2f}" for a in accuracy)
    return f"| {label} | {spread(accuracy)} | {per_seed} | {spread(ece)} | {spread(taught, 1)} |"


def _agreement(run: mlplab.Run, teacher: mlplab.Run) -> float:
    _, own = run.test_predictions()
    _, theirs = teacher.test_predictions()
    return float((own.argmax(axis=1) == theirs.argmax(axis=1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--teacher", metavar="RUN", help="a run to teach (default: train one)")
    parser.add_argument("--student-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="keep the runs in this folder (default: a temporary one)")
    parser.add_argument(
        "--grid",
        nargs="+",
        default=[f"{DEFAULT_TEACHER_TEMPERATURE:g},{DEFAULT_TEACHER_WEIGHT:g}"],
        metavar="T,W",
        help="temperatures and weights to teach at",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or temporary
        if args.teacher:
            teacher = mlplab.load_run(args.teacher)
        else:
            members = []
            for member in range(args.members):
                run = quiet_run(args.recipe, args.set, 100 + member, out)
                members.append(run)
                print(f"teacher member {member}: {run.metrics['test_accuracy']:.4f}", flush=True)
            teacher = mlplab.ensemble(members, out=out, verbose=False, report=False)
        student = [*args.set, *args.student_set]
        alone = _students(args.recipe, student, args.seeds, out, "alone")
        rows = [_row("alone", alone, teacher)]
        for point in args.grid:
            temperature, weight = point.split(",")
            taught = [
                *student,
                f"train.teacher={teacher.path}",
                f"train.teacher_temperature={temperature}",
                f"train.teacher_weight={weight}",
            ]
            label = f"taught, T {temperature}, weight {weight}"
            runs = _students(args.recipe, taught, args.seeds, out, label)
            rows.append(_row(label, runs, teacher))
        facts = teacher.ensemble or {}
        members = len(facts.get("members", [])) or 1
        print(
            f"\nteacher: {teacher.config.name} ({members} network(s), "
            f"{teacher.parameters:,} parameters), test accuracy "
            f"{100 * teacher.metrics['test_accuracy']:.2f}%, ECE "
            f"{100 * teacher.calibration_error:.2f}%"
        )
        print(
            f"student: {alone[0].parameters:,} parameters; {args.seeds} seeds; --set "
            f"{args.set} --student-set {args.student_set}\n"
        )
        print("| student | test accuracy % | per seed | ECE % | answers as the teacher % |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
