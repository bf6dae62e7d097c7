"""The ``mlplab`` command: parse arguments, call the library, print.

Errors a user can cause end in one line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mlplab._backend import lean_keras_import
from mlplab._version import __version__
from mlplab.errors import MlplabError

if TYPE_CHECKING:
    from mlplab.runs import Run

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
RUN_HELP = "run directory, or 'last' for the newest finished run in ./runs"
OFFLINE_HELP = "never download; use cached or local copies only (also: MLPLAB_OFFLINE=1)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus the exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_training_output_options(parser: argparse.ArgumentParser) -> None:
    """-q, --no-report and --offline: the same for every command that writes a run."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip the plots and report.html (report.txt and metrics are still written)",
    )
    parser.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlplab",
        description="Train, evaluate and use fully-connected (MLP) image classifiers.",
        epilog="Start with `mlplab train`: it trains the default recipe on the bundled digits.",
    )
    parser.add_argument("--version", action="version", version=f"mlplab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a network and write a run directory",
        description="Train a recipe or a config file; writes runs/<UTC time>-<name>/.",
    )
    add_config_arguments(train)
    train.add_argument("--epochs", type=int, help="= --set train.epochs=N")
    train.add_argument("--batch-size", type=int, help="= --set train.batch_size=N")
    train.add_argument(
        "--lr",
        type=_rate_or_auto,
        metavar="X|auto",
        help="= --set train.learning_rate=X; auto: run `mlplab lr-find` first and train at "
        "the rate it suggests (its folder is kept beside the run)",
    )
    train.add_argument("--dataset", help="= --set data.dataset=NAME")
    train.add_argument("--seed", type=int, help="= --set train.seed=N")
    train.add_argument(
        "--seeds",
        metavar="N|S,S,...",
        help="train once per seed (a run each) and report the test accuracy's mean ± std: "
        "N seeds counting up from the config's seed (or --seed), or the seeds listed",
    )
    train.add_argument(
        "--ensemble",
        action="store_true",
        help="with --seeds: then average the seeds' networks into one model, written as a "
        "run of its own (= mlplab ensemble on their runs)",
    )
    train.add_argument(
        "--engine",
        choices=("auto", "fit"),
        help="= --set train.engine=...: auto is the fused JAX engine, fit is Keras model.fit",
    )
    train.add_argument(
        "--teacher",
        metavar="RUN",
        help="= --set train.teacher=RUN: also learn from that run's probabilities for each "
        "training image (knowledge distillation: e.g. one network from an ensemble)",
    )
    train.add_argument(
        "--init-from",
        metavar="RUN",
        help="= --set model.init_from=RUN: start from that run's trained network instead of "
        "random weights, to train it further or fine-tune it on other images (a new output "
        "layer when the classes differ)",
    )
    train.add_argument("--name", help="run name (default: the recipe's or file's name)")
    train.add_argument(
        "--out", default="runs", help="folder that holds run directories (default: %(default)s)"
    )
    add_training_output_options(train)

    resume = commands.add_parser(
        "resume",
        help="go on training an interrupted or aborted run",
        description=(
            "Train the rest of an interrupted (Ctrl-C) or killed run's epochs from its last "
            "saved epoch, in its own directory, with its own config; then write the run as "
            "train does. With the fused engine the result equals a run that never stopped."
        ),
    )
    resume.add_argument(
        "run",
        metavar="RUN",
        help="run directory, or 'last' for the newest one in ./runs that can go on",
    )
    add_training_output_options(resume)

    evaluate = commands.add_parser(
        "evaluate",
        help="a run's test metrics and per-class report",
        description="Evaluate a run's model on the test split of its dataset, or on another "
        "dataset: its test split, or all its images when it has none of its own (a folder of "
        "class sub-folders, a CSV, an .npz). Its classes are matched to the model's by name "
        "(some of them, or one, will do), else by position when it has as many.",
    )
    evaluate.add_argument("run", metavar="RUN", help=RUN_HELP)
    evaluate.add_argument(
        "--dataset",
        metavar="NAME|PATH",
        help="evaluate on this dataset instead (all its images if it has no test split)",
    )
    evaluate.add_argument(
        "--out",
        metavar="DIR",
        help="also write its pictures (confusion matrix, per-class scores, the surest "
        "mistakes and right answers, reliability diagram) and evaluation.html here",
    )
    evaluate.add_argument("--json", action="store_true", help="print metrics as JSON")
    evaluate.add_argument(
        "--robustness",
        action="store_true",
        help="also the accuracy on shifted, rotated and noisy test images (a seeded sample "
        "of 2000)",
    )
    evaluate.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)

    predict = commands.add_parser(
        "predict",
        help="classify image files with a run's model",
        description="Classify PNG/JPEG/... files; they are converted like the training "
        "images (grayscale or RGB, resized, scaled by the model).",
    )
    predict.add_argument("run", metavar="RUN", help=RUN_HELP)
    predict.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image files or folders of them, or one CSV of unlabeled pixel rows (Kaggle test.csv)",
    )
    predict.add_argument(
        "--submission",
        metavar="FILE",
        help="with a CSV: write a Kaggle submission (ImageId,Label) here",
    )
    predict.add_argument("--top", type=int, default=3, help="classes to show (default: 3)")
    predict.add_argument(
        "--min-probability",
        type=float,
        metavar="P",
        help="call an answer below probability P unsure (the report's 'Knowing when it is "
        "unsure' gives the accuracy and share answered at each P)",
    )
    predict.add_argument(
        "--target-accuracy",
        type=float,
        metavar="A",
        help="call answers unsure below the lowest probability at which the run's answers on "
        "its test split were A right (0.99: 99%%); instead of --min-probability",
    )
    predict.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="invert light-background images for dark-background datasets "
        "such as digits (default: auto)",
    )
    predict.add_argument(
        "--no-frame",
        dest="frame",
        action="store_false",
        help="do not level the paper's light, crop and centre the strokes of a drawing "
        "before resizing (done by default for digit-like datasets)",
    )
    predict.add_argument(
        "--show",
        metavar="FILE.png",
        help="also write the images as the model saw them (inverted, levelled, framed, "
        "resized), captioned with each prediction",
    )
    predict.add_argument(
        "--explain",
        metavar="FILE.png",
        help="also write each image beside what its pixels contributed to the predicted "
        "class (red: for it, blue: against it; gradient times input)",
    )
    predict.add_argument(
        "--csv",
        metavar="FILE",
        help="write the predictions to this CSV (file, label, probability, the next --top "
        "classes and theirs, inverted) instead of printing a line per image",
    )
    predict.add_argument("--json", action="store_true", help="print results as JSON")

    serve = commands.add_parser(
        "serve",
        help="serve a run's model over HTTP: a page to draw on, and a JSON API",
        description="Answer HTTP requests with a run's model until Ctrl-C: GET / is a page "
        "to draw a digit or drop images and see the answer; POST /predict takes an image "
        "(curl --data-binary @digit.png URL/predict) or a form of image files and answers "
        "JSON; GET /info describes the model. Images are read as `mlplab predict` reads "
        "them. Listens on 127.0.0.1 only, unless --host says otherwise.",
    )
    serve.add_argument("run", metavar="RUN", help=RUN_HELP)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 "
        "for every network: there is no authentication)",
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port (default: %(default)s; 0: any free one)"
    )
    serve.add_argument(
        "--top", type=int, default=3, help="classes in each answer unless asked (default: 3)"
    )
    serve.add_argument(
        "--cors",
        metavar="ORIGIN",
        help="let web pages from ORIGIN (http://localhost:3000, or * for any) call the API "
        "from a browser",
    )
    serve.add_argument(
        "--min-probability",
        type=float,
        metavar="P",
        help='mark answers below probability P "sure": false (the page says unsure); a '
        "request's min_probability overrides it",
    )
    serve.add_argument(
        "--target-accuracy",
        type=float,
        metavar="A",
        help="as --min-probability, at the lowest probability at which the run's answers on "
        "its test split were A right (0.99: 99%%)",
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="no line per request")

    # Here: they take the helpers above from this module.
    from mlplab import (
        cli_embed,
        cli_ensemble,
        cli_export,
        cli_info,
        cli_label_issues,
        cli_learning_curve,
        cli_lrfind,
        cli_tune,
    )

    cli_tune.add_parser(commands)
    cli_lrfind.add_parser(commands)
    cli_export.add_parser(commands)
    cli_embed.add_parser(commands)
    cli_ensemble.add_parser(commands)
    cli_learning_curve.add_parser(commands)
    cli_label_issues.add_parser(commands)

    report = commands.add_parser(
        "report",
        help="(re)write a run's plots and self-contained report.html",
        description="Regenerate every plot, report.txt and report.html of a run directory "
        "from its files (and its dataset, for the sample images). Unfinished runs get a "
        "report of what is there.",
    )
    report.add_argument("run", metavar="RUN", help=RUN_HELP)
    report.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)

    compare = commands.add_parser(
        "compare",
        help="compare runs: config differences, results, overlaid curves",
        description="Compare runs on one dataset: a table of the config keys that differ and "
        "the results (printed, and written as compare.csv and compare.md), overlaid "
        "validation curves (compare.png) and compare.html.",
    )
    compare.add_argument("runs", metavar="RUN", nargs="+", help="run directories (two or more)")
    compare.add_argument(
        "--out", default="compare", help="folder for the files (default: %(default)s)"
    )

    runs = commands.add_parser(
        "runs",
        help="list runs: name, dataset, date, epochs, parameters, test accuracy, status, "
        "what the learning curves say",
        description="List the run directories in a folder, newest first.",
    )
    runs.add_argument(
        "folder",
        nargs="?",
        default="runs",
        metavar="DIR",
        help="folder of runs (default: %(default)s)",
    )
    runs.add_argument("--dataset", help="only runs on this dataset")
    runs.add_argument(
        "--best",
        type=int,
        metavar="N",
        help="only the N finished runs with the highest test accuracy",
    )
    runs.add_argument(
        "--sort",
        choices=("date", "accuracy", "name"),
        default="date",
        help="order (default: %(default)s; --best sorts by accuracy)",
    )
    runs.add_argument("--json", action="store_true", help="print the list as JSON")

    datasets = commands.add_parser(
        "datasets",
        help="list, inspect, download, verify and show datasets",
        description="Named datasets are verified by SHA-256 and cached under $MLPLAB_DATA "
        "(default: the user cache dir); copies already on the machine (Keras' cache, Debian's "
        "/usr/share/datasets) are used in place.",
    )
    actions = datasets.add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser, required=True
    )
    actions.add_parser("list", help="every named dataset, and whether it is here")
    info = actions.add_parser("info", help="shape, classes, counts per class, source, license")
    info.add_argument("name", metavar="NAME|PATH")
    info.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)
    fetch = actions.add_parser("fetch", help="download and verify now")
    fetch.add_argument("names", metavar="NAME", nargs="+")
    verify = actions.add_parser("verify", help="re-check the checksums of what is here")
    verify.add_argument("names", metavar="NAME", nargs="*")
    show = actions.add_parser("show", help="a PNG grid of training samples per class")
    show.add_argument("name", metavar="NAME|PATH")
    show.add_argument("--out", help="PNG file to write (default: <name>-samples.png)")
    show.add_argument("--per-class", type=int, default=8, help="samples per class (default 8)")
    show.add_argument(
        "--translate",
        type=int,
        default=0,
        metavar="N",
        help="instead, show what [augment] translate = N does to a few images (writes "
        "<name>-augmented.png)",
    )
    show.add_argument(
        "--flip", action="store_true", help="instead, show what [augment] flip = true does"
    )
    show.add_argument(
        "--rotate",
        type=float,
        default=0.0,
        metavar="DEGREES",
        help="instead, show what [augment] rotate = DEGREES does",
    )
    show.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)

    bench = commands.add_parser(
        "bench",
        help="time the fused engine against Keras model.fit, side by side",
        description="Train each benchmark network with mlplab's engine and with Keras "
        "model.fit in this one process, and print steady seconds per epoch, their ratio, "
        "samples/s and how close training runs to this machine's measured matrix-multiply "
        "speed. Data: Fashion-MNIST if a verified copy is here, else generated.",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="one small network on 2,000 samples: a smoke test, not a measurement",
    )
    bench.add_argument("--epochs", type=int, default=3, help="epochs per side (default 3)")
    bench.add_argument("--samples", type=int, default=60000, help="training samples")
    bench.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time both sides this many times in turn; the ratio is the median of the "
        "rounds', with its range (default 1)",
    )
    bench.add_argument(
        "--network",
        action="append",
        metavar="NAME",
        help="only these networks (repeatable; a prefix such as 784-64 is enough)",
    )

    recipes = commands.add_parser(
        "recipes",
        help="list the bundled recipes, or print one",
        description="List the bundled recipes; with a NAME, print its TOML.",
    )
    recipes.add_argument("name", nargs="?", metavar="NAME")

    config = commands.add_parser(
        "config",
        help="print a resolved config as TOML (a starting point for your own)",
        description="Print the resolved config of a recipe or file with --set applied.",
    )
    add_config_arguments(config)
    config.add_argument("--keys", action="store_true", help="list every key, default and meaning")
    cli_info.add_parser(commands)
    return parser


def _rate_or_auto(text: str) -> float | str:
    """--lr: a number, or "auto"."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'auto'") from None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        metavar="RECIPE|CONFIG.toml",
        help="a bundled recipe name or a TOML file (default: digits-mlp)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.epochs=3 (repeatable; see `mlplab config --keys`)",
    )


def flag_overrides(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """--set values, then each shortcut flag that was given (which wins), as ``key=value``:
    ``flags`` maps an argument's name (``batch_size``) to its config key; text values are
    quoted as TOML strings."""
    overrides = list(args.overrides)
    for flag, key in flags.items():
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    return overrides


TRAIN_FLAGS = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.learning_rate",
    "seed": "train.seed",
    "dataset": "data.dataset",
    "engine": "train.engine",
    "teacher": "train.teacher",
    "init_from": "model.init_from",
    "name": "name",
}


def _train_overrides(args: argparse.Namespace) -> list[str]:
    """--set values, then the shortcut flags (which win)."""
    return flag_overrides(args, TRAIN_FLAGS)


def cmd_train(args: argparse.Namespace) -> int:
    from mlplab.api import train

    if args.lr == "auto":
        from mlplab.cli_lrfind import choose_rate

        choose_rate(args)
    if args.seeds is not None:
        return _train_seeds(args)
    if args.ensemble:
        raise MlplabError("--ensemble averages the runs of --seeds: give --seeds N too")
    run = train(
        args.config,
        offline=args.offline,
        overrides=_train_overrides(args),
        out=args.out,
        verbose=not args.quiet,
        command="mlplab " + shlex.join(args.argv),
        report=args.report,
    )
    return _trained(run, args.report)


def seed_list(text: str, first: int) -> list[int]:
    """--seeds: "3" -> [first, first + 1, first + 2]; "0,4,7" -> [0, 4, 7]."""
    bad = MlplabError(f"--seeds {text!r}: give a number of seeds (3) or the seeds (0,1,2)")
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(first, first + int(text)))
    except ValueError:
        raise bad from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise bad
    return seeds


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--option V`` or ``--option=V``)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(f"{option}="):
            kept.append(arg)
    return kept


def _single_seed_argv(argv: Sequence[str], seed: int, name: str) -> list[str]:
    """The train command for one of --seeds' runs: --seeds left out, --seed and --name set."""
    return [*without_option(argv, "--seeds"), "--seed", str(seed), "--name", name]


def _train_seeds(args: argparse.Namespace) -> int:
    """train --seeds: one run per seed, each named <name>-seed<S>; then mean ± std."""
    import statistics

    from mlplab.api import resolve_config, train
    from mlplab.diagnosis import findings_of

    overrides = _train_overrides(args)
    base = resolve_config(args.config, overrides)
    seeds = seed_list(args.seeds, base.train.seed)
    if args.ensemble and len(seeds) < 2:
        raise MlplabError(f"--ensemble needs two or more seeds, not --seeds {args.seeds}")
    for seed in seeds:  # a bad seed is refused before any run starts
        resolve_config(args.config, [*overrides, f"train.seed={seed}"])
    runs: list[Run] = []
    for number, seed in enumerate(seeds, start=1):
        name = f"{base.name}-seed{seed}"
        if not args.quiet:
            print(f"seed {seed} ({number} of {len(seeds)})", file=sys.stderr, flush=True)
        run = train(
            args.config,
            offline=args.offline,
            overrides=[*overrides, f"train.seed={seed}", f"name={json.dumps(name)}"],
            out=args.out,
            verbose=not args.quiet,
            command="mlplab " + shlex.join(_single_seed_argv(args.argv, seed, name)),
            report=args.report,
        )
        runs.append(run)
        found = findings_of(run)
        said = f"  (curves: {', '.join(f.kind for f in found)})" if found else ""
        print(
            f"seed {seed}: test accuracy {run.metrics['test_accuracy']:.4f}  "
            f"status: {run.status}  {run.path}{said}",
            flush=True,
        )
        if run.status == "interrupted":
            print(f"stopped after seed {seed}: the later seeds were not trained")
            break
    scores = [run.metrics["test_accuracy"] for run in runs]
    done = ", ".join(str(seed) for seed in seeds[: len(runs)])
    if len(scores) >= 2:
        spread = f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"
        print(
            f"{base.name} over {len(scores)} seeds ({done}): test accuracy {spread} "
            f"(mean ± sample std; min {min(scores):.4f}, max {max(scores):.4f})"
        )
        print("compare them: mlplab compare " + " ".join(str(run.path) for run in runs))
    statuses = {run.status for run in runs}
    if args.ensemble:
        _ensemble_of_seeds(args, base.name, runs)
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return 1 if "diverged" in statuses else 0


def _ensemble_of_seeds(args: argparse.Namespace, name: str, runs: Sequence[Run]) -> None:
    """train --seeds N --ensemble: average the seeds' runs into ``<name>-ensemble`` (written
    as ``mlplab ensemble`` on them would), unless one diverged or training was cut short."""
    if len(runs) < 2 or any(run.status in ("interrupted", "diverged") for run in runs):
        print(
            "no ensemble: a run diverged or training was interrupted (mlplab ensemble RUN "
            "RUN ... averages the runs you choose)"
        )
        return
    from mlplab.cli_ensemble import ensemble_command, print_ensemble
    from mlplab.ensembles import ensemble

    made = ensemble(
        runs,
        name=f"{name}-ensemble",
        out=args.out,
        report=args.report,
        verbose=not args.quiet,
        command=ensemble_command(run.path for run in runs),
        offline=args.offline,
    )
    print_ensemble(made, args.report)


def cmd_resume(args: argparse.Namespace) -> int:
    from mlplab.api import resume
    from mlplab.checkpoint import latest_resumable
    from mlplab.runs import LAST

    chosen = args.run
    if chosen == LAST and not Path(LAST).exists():
        chosen = str(latest_resumable())
    # The run that "last" named is recorded: repeated later, "last" could be another run.
    argv = [chosen if arg == args.run else arg for arg in args.argv]
    run = resume(
        chosen,
        offline=args.offline,
        verbose=not args.quiet,
        command="mlplab " + shlex.join(argv),
        report=args.report,
    )
    return _trained(run, args.report)


def _trained(run: Run, report: bool) -> int:
    """Print what train and resume wrote; the exit code says how training ended."""
    from mlplab.metrics import accuracy_text

    m = run.metrics
    print((run.path / "report.txt").read_text(encoding="utf-8"))
    print(
        f"test accuracy {accuracy_text(m)}  test loss {m['test_loss']:.4f}  "
        f"({m['epochs_completed']} epochs, {m['wall_seconds']:.1f}s)  status: {run.status}"
    )
    if m.get("temperature") and "calibration" in m:
        t = m["temperature"]
        print(
            f"calibrated: temperature {t['value']:.3f} fitted on the validation split; test "
            f"calibration error (ECE) {100 * m['calibration']['ece']:.2f}%"
        )
    print(f"run written to {run.path}/")
    if report:
        print(f"report: {run.path / 'report.html'}")
    print(
        f"next: mlplab predict {run.path} IMAGE.png   |   mlplab serve {run.path}  "
        "(a page to draw on)"
    )
    if run.status == "interrupted":
        print(f"go on with: mlplab resume {run.path}")
    # The run is written either way; scripts still learn that it did not train to the end.
    return {"interrupted": EXIT_INTERRUPTED, "diverged": 1}.get(run.status, 0)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mlplab.api import evaluate

    result = evaluate(
        args.run,
        dataset=args.dataset,
        offline=args.offline,
        robustness=args.robustness,
        out=args.out,
    )
    if args.json:
        from mlplab.runs import to_json

        print(to_json(result), end="")
        return 0
    from mlplab.metrics import accuracy_text

    print(result["report"])
    which = "test" if result["images"] == "test split" else "all images"
    print(
        f"{result['dataset']} {which}: accuracy {accuracy_text(result)}  "
        f"loss {result['test_loss']:.4f}  calibration error (ECE) "
        f"{result['calibration']['ece']:.4f}  ({result['test_samples']} images)"
    )
    if result["classes"] != "same":
        print(f"its classes are the model's, matched {result['classes']}")
    print(selective_text(result["selective"]))
    if "unlike_training" in result:
        print(unlike_text(result["unlike_training"]))
    if args.out:
        names = ", ".join(Path(path).name for path in result["files"])
        print(f"wrote {names} in {args.out}")
    if args.robustness:
        drawn = "test images" if result["images"] == "test split" else "images"
        print(robustness_text(result["robustness"], drawn))
    return 0


def selective_text(summary: dict[str, Any]) -> str:
    """One line from :func:`mlplab.metrics.selective`: what answering only when sure gives
    ("if unsure is allowed: 99% right on 56% of them at p >= 0.852; 99.5% ...")."""
    parts = [
        f"{100 * row['accuracy']:g}% right on {100 * row['coverage']:.0f}% of them at "
        f"p >= {row['threshold']:.4g}"
        for row in summary["targets"]
        if row["threshold"] is not None
    ]
    if not parts:
        return "if unsure is allowed: no probability threshold makes it 99% right"
    return "if unsure is allowed (predict --min-probability P): " + "; ".join(parts)


def unlike_text(unlike: dict[str, Any]) -> str:
    """One line from ``evaluate``'s ``unlike_training``: how many images are unlike the
    training images, beside the share of the run's own test images that are."""
    own = unlike.get("test_share")
    beside = f" (of its own test images: {100 * own:.0f}%)" if own is not None else ""
    return (
        f"unlike its training images: {100 * unlike['share']:.1f}% of them{beside}, "
        f"novelty above {unlike['threshold']:.3g}"
    )


def robustness_text(measured: dict[str, Any], images: str = "test images") -> str:
    """:func:`mlplab.robustness.robustness`'s dict as a few aligned lines; images: what
    the sample was drawn from."""
    units = {"shift": " px", "rotate": "°", "noise": ""}
    lines = [
        f"robustness ({measured['images']} {images}): accuracy {measured['clean']:.4f} as they are"
    ]
    for kind, label in (("shift", "shifted"), ("rotate", "rotated"), ("noise", "noise std")):
        cells = "  ".join(
            f"{amount}{units[kind]} {accuracy:.4f}"
            for amount, accuracy in measured[kind]["accuracy"].items()
        )
        lines.append(f"  {label:<10} {cells}")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    from mlplab.api import csv_kind, predict

    if args.top < 1:
        raise MlplabError(f"--top {args.top}: must be at least 1")
    kind = csv_kind(args.images)
    if kind == "pixels" and (args.show or args.explain):
        option = "--show" if args.show else "--explain"
        raise MlplabError(f"{option} takes image files (a CSV's rows are already the pixels)")
    if args.submission and not kind:
        raise MlplabError("--submission needs a CSV (of pixel rows, or listing image files)")
    if args.submission and (args.csv or args.json):
        raise MlplabError(f"--submission and {'--csv' if args.csv else '--json'}: choose one")
    if args.csv and args.json:
        raise MlplabError("--csv and --json: choose one")
    import warnings

    from mlplab.errors import SkippedFilesWarning
    from mlplab.runs import load_run, target_note

    min_probability = args.min_probability
    if args.target_accuracy is not None and min_probability is not None:
        raise MlplabError("--min-probability and --target-accuracy: choose one")
    run = load_run(args.run)
    if args.target_accuracy is not None:
        min_probability, share = run.threshold_for_accuracy(args.target_accuracy)
        print(target_note(args.target_accuracy, min_probability, share), file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedFilesWarning)
        results = predict(
            run,
            args.images,
            top=args.top,
            invert=args.invert,
            frame=args.frame,
            show=args.show,
            explain=args.explain,
            min_probability=min_probability,
        )
    for warning in caught:  # files in a folder that could not be read: one line, as in train
        if issubclass(warning.category, SkippedFilesWarning):
            print(f"mlplab: {warning.message}", file=sys.stderr)
        else:  # anything else as Python would have shown it
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if args.json:
        print(json.dumps(results, indent=2))
        if kind:
            _say_if_labelled(run, Path(args.images[0]), kind)
        return 0
    if args.submission:
        header = _write_submission(Path(args.submission), Path(args.images[0]), kind, results)
        print(f"wrote {len(results)} predictions to {args.submission} ({header})")
    elif args.csv:
        from mlplab._io import write_named_file

        write_named_file(Path(args.csv), predictions_csv(results, args.top).encode("utf-8"))
        print(f"wrote {len(results)} predictions to {args.csv}")
    else:
        _print_predictions(results)
        blank = sum(r["blank"] for r in results)
        unlike = sum(r.get("familiar") is False and not r["blank"] for r in results)
        if unlike:
            from mlplab.novelty import FLAGGED_SHARE

            # The threshold flags a share of the run's own test images by design: saying so
            # keeps a big file of ordinary images from reading as a failure.
            print(
                f"{unlike} of {len(results)} unlike its training images (novelty above "
                f"{run.novelty_reference.threshold:.3g}, which {FLAGGED_SHARE:.0%} of its own "
                "test images exceed): for those the answer may be a guess"
            )
        if blank:
            print(
                f"{blank} of {len(results)} blank (every pixel the same, as the model sees "
                "it): for those the answer means nothing"
            )
    if min_probability is not None:
        sure = sum(r["sure"] for r in results)
        print(
            f"{sure} of {len(results)} answered at probability >= {min_probability:g}; "
            f"{len(results) - sure} unsure"
        )
    if args.show:
        print(f"wrote {args.show}: the images as the model saw them")
    if args.explain:
        print(f"wrote {args.explain}: what each pixel contributed to the predicted class")
    if kind:
        _say_if_labelled(run, Path(args.images[0]), kind)
    return 0


def predictions_csv(results: list[dict[str, Any]], top: int) -> str:
    """``predict``'s results as CSV text: file, label, probability, then label_2,
    probability_2, ... up to ``top`` (empty where there are fewer classes), inverted, blank,
    and sure (1 or 0) when the results say (``--min-probability``), familiar (1 or 0) and
    novelty when the run has a novelty reference."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ranks = [f"{name}_{k}" for k in range(2, top + 1) for name in ("label", "probability")]
    sure = ["sure"] if results and "sure" in results[0] else []
    familiar = ["familiar", "novelty"] if results and "familiar" in results[0] else []
    header = ["file", "label", "probability", *ranks, "inverted", "blank", *sure, *familiar]
    writer.writerow(header)
    for r in results:
        others = [value for t in r["top"][1:] for value in (t["label"], f"{t['probability']:.6f}")]
        others += [""] * (len(ranks) - len(others))
        flags = [int(r["inverted"]), int(r["blank"]), *([int(r["sure"])] if sure else [])]
        if familiar:
            flags += [int(r["familiar"]), f"{r['novelty']:.4f}"]
        writer.writerow([r["file"], r["label"], f"{r['probability']:.6f}", *others, *flags])
    return buffer.getvalue()


def _print_predictions(results: list[dict[str, Any]]) -> None:
    """A line per image: file, label, probability, the next classes, whether inverted."""
    width = max(len(r["file"]) for r in results)
    for r in results:
        others = "  ".join(f"{t['label']} {t['probability']:.3f}" for t in r["top"][1:])
        note = "  (inverted)" if r["inverted"] else ""
        if r["blank"]:
            note += "  (blank)"
        elif r.get("familiar") is False:
            note += "  (unlike its training images)"
        unsure = "unsure: " if r.get("sure") is False else ""
        print(
            f"{r['file']:<{width}}  {unsure}{r['label']}  {r['probability']:.3f}"
            f"{'  | ' + others if others else ''}{note}"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from mlplab.serving import serve

    serve(
        args.run,
        args.host,
        args.port,
        args.top,
        quiet=args.quiet,
        cors=args.cors,
        min_probability=args.min_probability,
        target_accuracy=args.target_accuracy,
    )
    return 0


def _write_submission(path: Path, given: Path, kind: str, results: list[dict]) -> str:
    """A Kaggle submission for ``given``'s rows: ``ImageId,Label`` for pixel rows, the
    list's own file column and ``label`` for a file list. Returns the header."""
    from mlplab.data.tabular import write_submission

    labels = [r["label"] for r in results]
    if kind == "pixels":
        write_submission(path, labels)
        return "ImageId,Label"
    from mlplab.data.file_list import read_list_layout

    layout = read_list_layout(given, labeled=False)
    name = layout.header[layout.file_column]
    write_submission(path, labels, ids=[r["id"] for r in results], header=(name, "label"))
    return f"{name},label"


def _say_if_labelled(run: Run, path: Path, kind: str) -> None:
    """A CSV to predict that has labels: say where its accuracy is measured."""
    import math

    from mlplab.data.file_list import read_list_layout
    from mlplab.data.pixel_csv import read_layout

    if kind == "files":
        layout = read_list_layout(path, labeled=False)
        has_labels, text = layout.labeled, layout.text()
    else:
        found = read_layout(path, labeled=None, pixels=math.prod(run.image_shape))
        has_labels, text = found.label_column is not None, found.label_text()
    if has_labels:
        print(
            f"{path.name} has labels ({text}), left out here: `mlplab evaluate {run.path} "
            f"--dataset {path}` measures the model on them",
            file=sys.stderr,
        )


def cmd_recipes(args: argparse.Namespace) -> int:
    from mlplab.recipes import list_recipes, recipe_text

    if args.name:
        print(recipe_text(args.name), end="")
        return 0
    rows = list_recipes()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from mlplab.api import resolve_config
    from mlplab.config import describe_keys

    if args.keys:
        rows = describe_keys()
        key_width = max(len(k) for k, _, _ in rows)
        default_width = max(len(d) for _, d, _ in rows)
        for key, default, help_text in rows:
            print(f"{key:<{key_width}}  {default:<{default_width}}  {help_text}")
        return 0
    print(resolve_config(args.config, args.overrides).to_toml(), end="")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from mlplab import bench

    networks = list(bench.NETWORKS)
    samples, epochs = args.samples, args.epochs
    if args.quick:
        networks, samples, epochs = networks[:1], 2000, 2
    if args.network:
        networks = [n for n in networks if any(n.name.startswith(p) for p in args.network)]
        if not networks:
            names = ", ".join(n.name for n in bench.NETWORKS)
            raise MlplabError(f"--network {args.network}: no such network; networks: {names}")
    if epochs < 2 or samples < 100:
        raise MlplabError("bench needs --epochs >= 2 and --samples >= 100")
    if args.rounds < 1:
        raise MlplabError(f"--rounds {args.rounds}: must be at least 1")
    rows = bench.run(
        networks,
        samples,
        epochs,
        report=lambda line: print(line, file=sys.stderr, flush=True),
        rounds=args.rounds,
    )
    print(bench.table(rows))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mlplab.report.build import report_run

    result = report_run(args.run, offline=args.offline)
    for problem in result.problems:
        print(f"mlplab: note: {problem}", file=sys.stderr)
    names = ", ".join(path.name for path in result.files)
    print(f"wrote {names} in {result.path}/")
    print(f"report: {result.html}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mlplab.report.compare import compare_runs

    comparison = compare_runs(args.runs, out=args.out)
    print(comparison.text())
    print(f"\nwrote compare.csv, compare.md, compare.png and compare.html in {args.out}/")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from mlplab._text import aligned
    from mlplab.diagnosis import findings_of
    from mlplab.record import list_runs

    records = list_runs(args.folder, dataset=args.dataset, best=args.best, sort=args.sort)
    rows = [
        {
            "run": str(r.path),
            "name": r.name,
            "dataset": r.dataset,
            "date": r.created.strftime("%Y-%m-%d %H:%M"),
            "epochs": None if r.ensemble else len(r.history),
            "parameters": r.parameters,
            "test_accuracy": r.test_accuracy,
            "status": r.status,
            # What its report says under the learning curves: overfitting, ...
            "curves_say": [finding.kind for finding in findings_of(r)],
        }
        for r in records
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        where = f" on {args.dataset}" if args.dataset else ""
        print(f"no runs{where} in {args.folder}/")
        _print_studies(args.folder)
        return 0
    header = [
        "run", "name", "dataset", "date (UTC)", "epochs", "parameters", "test acc", "status",
        "curves say",
    ]  # fmt: skip
    print(
        aligned(
            header,
            [
                [
                    Path(row["run"]).name,
                    row["name"],
                    row["dataset"],
                    row["date"],
                    "—" if row["epochs"] is None else str(row["epochs"]),
                    "—" if row["parameters"] is None else f"{row['parameters']:,}",
                    "—" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}",
                    row["status"],
                    ", ".join(row["curves_say"]) or "—",
                ]
                for row in rows
            ],
        )
    )
    from mlplab.checkpoint import can_resume

    resumable = [r.path.name for r in records if can_resume(r.path)]
    if resumable:
        print(f"\ncan go on with `mlplab resume RUN`: {', '.join(resumable)}")
    _print_studies(args.folder)
    return 0


def _print_studies(folder: str) -> None:
    """Name the `mlplab tune` studies in ``folder`` (their trials are runs one level down), the
    `mlplab lr-find` tests and the `mlplab learning-curve` folders, which are not runs
    either."""
    from mlplab.learning_curves import SUMMARY_FILE as CURVE_FILE
    from mlplab.lrfind import SUMMARY_FILE
    from mlplab.tuning.study import TUNE_FILE

    def named(marker: str) -> str:
        return ", ".join(sorted(p.parent.name for p in Path(folder).glob(f"*/{marker}")))

    studies, tests, curves = named(TUNE_FILE), named(SUMMARY_FILE), named(CURVE_FILE)
    if studies:
        print(f"\nstudies (their trials: mlplab runs {folder}/STUDY): {studies}")
    if tests:
        print(f"\nlearning-rate tests (lr_find.png in each): {tests}")
    if curves:
        print(f"\nlearning curves (learning_curve.png in each): {curves}")


def cmd_datasets(args: argparse.Namespace) -> int:
    from mlplab import cli_datasets

    return cli_datasets.run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from mlplab import cli_tune

    return cli_tune.run(args)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from mlplab import cli_lrfind

    return cli_lrfind.run(args)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from mlplab import cli_ensemble

    return cli_ensemble.run(args)


def cmd_learning_curve(args: argparse.Namespace) -> int:
    from mlplab import cli_learning_curve

    return cli_learning_curve.run(args)


def cmd_export(args: argparse.Namespace) -> int:
    from mlplab import cli_export

    return cli_export.run(args)


def cmd_label_issues(args: argparse.Namespace) -> int:
    from mlplab import cli_label_issues

    return cli_label_issues.run(args)


def cmd_embed(args: argparse.Namespace) -> int:
    from mlplab import cli_embed

    return cli_embed.run(args)


def cmd_info(args: argparse.Namespace) -> int:
    from mlplab import cli_info

    return cli_info.run(args)


COMMANDS: dict[str, Any] = {
    "bench": cmd_bench,
    "datasets": cmd_datasets,
    "train": cmd_train,
    "resume": cmd_resume,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "serve": cmd_serve,
    "recipes": cmd_recipes,
    "config": cmd_config,
    "report": cmd_report,
    "compare": cmd_compare,
    "runs": cmd_runs,
    "tune": cmd_tune,
    "lr-find": cmd_lr_find,
    "export": cmd_export,
    "embed": cmd_embed,
    "info": cmd_info,
    "ensemble": cmd_ensemble,
    "learning-curve": cmd_learning_curve,
    "label-issues": cmd_label_issues,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in the run, so it can be repeated
    lean_keras_import()
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except MlplabError as exc:
        print(f"mlplab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nmlplab: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head`: not an error worth a message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # disk full, permissions: not a bug, but not the user's input either
        print(f"mlplab: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """The ``mlplab`` command: :func:`main`, then exit without a last garbage collection.

    Python's shutdown collects the whole heap (Keras, JAX: ~0.5 s after a run); the
    process ends anyway, and nothing mlplab writes waits for a collector (runs are written
    and renamed into place before the command returns), so everything alive is frozen
    out of that collection first."""
    code = main()
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":
    run()
