"""``mlplab tune``: search hyperparameters with Optuna, each trial a run in a study folder."""

from __future__ import annotations

import argparse
import shlex
import tomllib
from pathlib import Path
from typing import Any

from mlplab._text import aligned
from mlplab.cli import EXIT_INTERRUPTED, OFFLINE_HELP, add_config_arguments, flag_overrides
from mlplab.errors import ConfigError

TOP_SHOWN = 5


def add_parser(commands: Any) -> None:
    """Add ``tune`` to the CLI's sub-commands."""
    tune = commands.add_parser(
        "tune",
        help="search hyperparameters (Optuna): a run per trial, the best config to train",
        description=(
            "Train a recipe or config many times, each trial with the searched keys drawn by "
            "Optuna's TPE sampler, and keep the one with the best validation score (never the "
            "test split's). Trials that fall behind are stopped early (pruned). Writes "
            "runs/<UTC time>-<name>-tune/: a run per trial, trials.csv, tune.png and "
            "best.toml; go on later (or from a second terminal) with --study."
        ),
        epilog=(
            "SPEC is a list of choices (model.activation=relu,tanh; model.hidden=[64],[128,64]) "
            "or a range LOW..HIGH, with :log for a log scale (train.learning_rate=1e-4..1e-2:log; "
            "integers for integer keys: train.batch_size=16..256:log)."
        ),
    )
    add_config_arguments(tune)
    tune.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="KEY=SPEC",
        help="a config key to search and its choices or range (repeatable; see below)",
    )
    tune.add_argument(
        "--space",
        metavar="FILE.toml",
        help="read the keys to search from the [search] table of this file (a study's "
        "tune.toml will do); --search adds to it",
    )
    tune.add_argument(
        "--trials", type=int, help="trials to run (default: 20, or with --grid all of it)"
    )
    tune.add_argument(
        "--grid",
        action="store_true",
        help="try every combination of the choices once instead of searching (a full "
        "comparison: sigmoid and relu with sgd and adam is 4 trials); choices only",
    )
    tune.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="start no trial after this long"
    )
    tune.add_argument("--epochs", type=int, help="= --set train.epochs=N (for every trial)")
    tune.add_argument("--dataset", help="= --set data.dataset=NAME")
    tune.add_argument(
        "--objective",
        choices=("val_accuracy", "val_loss"),
        help="what a trial is judged by, on the validation split (default: val_accuracy)",
    )
    tune.add_argument(
        "--trial-seeds",
        type=int,
        default=1,
        metavar="N",
        help="train each trial with N seeds (each its own initialisation, shuffling and "
        "validation split) and judge it by their mean: N times slower, less luck-driven",
    )
    tune.add_argument(
        "--no-prune",
        dest="prune",
        action="store_false",
        help="train every trial to the end (default: stop those behind the median early)",
    )
    tune.add_argument(
        "--study",
        metavar="DIR",
        help="go on with this study folder (its own config and search; in a second terminal, "
        "two processes share the work)",
    )
    tune.add_argument(
        "--out", default="runs", help="folder for the study folder (default: %(default)s)"
    )
    tune.add_argument(
        "-v", "--verbose", action="store_true", help="show every trial's epochs as it trains"
    )
    tune.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    tune.add_argument("--offline", action="store_true", default=None, help=OFFLINE_HELP)


def run(args: argparse.Namespace) -> int:
    from mlplab.tuning.tuner import tune

    given = args.config or args.search or args.space or _overrides(args) or args.grid
    given = given or args.objective or not args.prune or args.trial_seeds != 1
    if args.study is not None and given:
        raise ConfigError(
            f"--study {args.study}: a study keeps its own config and search space; give only "
            "--trials, --timeout (and -v, -q, --offline) with it"
        )
    space = _space(args)
    result = tune(
        None if args.study else args.config,
        space,
        trials=args.trials,
        timeout=args.timeout,
        study=args.study,
        overrides=_overrides(args),
        objective=args.objective or "val_accuracy",
        prune=args.prune,
        trial_seeds=args.trial_seeds,
        grid=args.grid,
        out=args.out,
        verbose=not args.quiet,
        train_verbose=args.verbose,
        command="mlplab " + shlex.join(args.argv),
        offline=args.offline,
    )
    print(summary(result))
    if result.stopped == "interrupted":
        return EXIT_INTERRUPTED
    return 0 if result.best is not None or not result.trials else 1


def _overrides(args: argparse.Namespace) -> list[str]:
    return flag_overrides(args, {"epochs": "train.epochs", "dataset": "data.dataset"})


def _space(args: argparse.Namespace) -> dict[str, Any]:
    """--space FILE's [search] table, then each --search KEY=SPEC (which wins)."""
    from mlplab.tuning.space import parse_cli_spec

    space: dict[str, Any] = {}
    if args.space:
        path = Path(args.space)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read it as TOML: {exc}") from None
        search = data.get("search")
        if not isinstance(search, dict) or not search:
            raise ConfigError(
                f'{path}: no [search] table (e.g. "train.learning_rate" = "1e-4..1e-2:log")'
            )
        space.update(search)
    for text in args.search:
        key, spec = parse_cli_spec(text)
        space[key] = spec
    return space


def summary(result: Any) -> str:
    """What the search found: the best trial, the leading trials, and what to do next."""
    from mlplab.tuning.space import shown
    from mlplab.tuning.trials import score_text, state_tally

    trials = result.trials
    tally = state_tally(trials)
    repeats = sum(1 for record in trials if record.repeat_of is not None)
    if repeats:
        tally += f"; {repeats} of them repeat earlier settings, not trained again"
    noun = "trial" if len(trials) == 1 else "trials"
    lines = [f"{len(trials)} {noun} ({tally})" if trials else "no trials yet"]
    best = result.best
    if best is not None:
        seeds = f" (mean of {len(best.runs)} seeds)" if len(best.runs) > 1 else ""
        lines.append(f"best: trial {best.number}, {result.objective} {score_text(best)}{seeds}")
        lines += [f"  {key} = {shown(value)}" for key, value in best.params.items()]
        test = "" if best.test_accuracy is None else f"test accuracy {best.test_accuracy:.4f}"
        if len(best.runs) > 1:
            pattern = best.run.parent / (best.run.name.rpartition("-seed")[0] + "-seed*")
            lines.append(f"  runs: {pattern} (mean {test})")
        else:
            lines.append(f"  run: {best.run} ({test})")
        lines += ["", _leading_table(result), ""]
        importance = _importance_line(result)
        if importance:
            lines += [importance, ""]
        lines.append(f"study: {result.path}/  (study.html, trials.csv, tune.png, best.toml)")
        if result.grid:
            lines.append(
                f"next: mlplab compare {result.path}/*-trial*   (the same settings on the "
                "test split, mean ± std over seeds)"
            )
        else:
            lines += [
                f"next: mlplab train {result.path / 'best.toml'} --seeds 5   "
                "(does the best hold over seeds?)",
                f"      mlplab tune --study {result.path} --trials 10   (search on)",
            ]
    else:
        lines.append(f"study: {result.path}/  (no trial is complete yet)")
    return "\n".join(lines)


def _leading_table(result: Any) -> str:
    from mlplab.tuning.space import shown
    from mlplab.tuning.trials import ranked, score_text

    done = ranked(result.trials, result.direction)
    rows = [
        [
            str(r.number),
            score_text(r),
            *(shown(r.params[key]) if key in r.params else "—" for key in result.keys),
            "" if r.epochs is None else str(r.epochs),
            "" if r.seconds is None else f"{r.seconds:.1f}",
            ", ".join(r.curves_say) or "—",
        ]
        for r in (done if result.grid else done[:TOP_SHOWN])
    ]
    title = f"leading trials (by {result.objective}, of {len(done)} complete):"
    if result.grid:
        title = f"every setting tried, best first (by {result.objective}):"
    header = ["trial", result.objective, *result.keys, "epochs", "s", "curves say"]
    return title + "\n" + aligned(header, rows)


def _importance_line(result: Any) -> str:
    if not result.importances:
        return ""
    shares = ", ".join(f"{key} {share:.2f}" for key, share in result.importances.items())
    return f"importance (Optuna's PED-ANOVA, share of the {result.objective}'s spread): {shares}"
