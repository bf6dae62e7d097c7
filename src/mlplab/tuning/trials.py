"""One trial as mlplab records it in Optuna's journal, and reads it back.

Optuna keeps a trial's parameters, state, value and the validation scores reported per
epoch; mlplab adds user attributes: ``state`` (complete, pruned, failed, skipped,
interrupted, abandoned), ``runs`` (run folder names, relative to the study folder),
``test_accuracy``, ``val_loss`` and ``spread`` (means and the objective's std over a trial's
seeds), ``epochs``, ``seconds``, ``note``, ``repeat_of`` and ``process`` (the pid and host
that trains it, so that a trial whose process was killed can be told apart from one still
running). :func:`read_trial` turns them into a
:class:`TrialRecord`; ``tell_*`` write them and finish the trial.
"""

from __future__ import annotations

import csv
import io
import math
import os
import socket
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab.tuning.space import Dimension, label

if TYPE_CHECKING:
    import optuna

    from mlplab.runs import Run


@dataclass
class TrialRecord:
    """One trial as mlplab shows it. state: complete, pruned, failed, skipped, interrupted,
    abandoned (its process ended without finishing it) or running.

    value: the objective (the kept model's validation accuracy or loss), None unless
    complete; for a pruned trial, ``last_value`` is the last one reported before it stopped.
    val_loss: breaks ties of validation accuracy (a few hundred validation images give few
    distinct accuracies). params: the searched keys' config values. seconds: the trial's
    whole time (every seed), data loading and compiling included.
    repeat_of: the earlier trial with the same settings, whose result this one took.
    runs: every run directory of the trial (one per trial seed; none if skipped; ``run`` is
    the first), and spread: the objective's sample std over them (None with one seed).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    test_accuracy: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    note: str = ""
    last_value: float | None = None
    val_loss: float | None = None
    repeat_of: int | None = None
    runs: list[Path] = field(default_factory=list)
    spread: float | None = None
    # What the learning curves of its (first) run say (mlplab.diagnosis): overfitting, ...
    curves_say: list[str] = field(default_factory=list)

    @property
    def run(self) -> Path | None:
        """The trial's (first) run directory."""
        return self.runs[0] if self.runs else None

    def __repr__(self) -> str:
        value = None if self.value is None else round(self.value, 6)
        run = None if self.run is None else str(self.run)
        return (
            f"TrialRecord(number={self.number}, state={self.state!r}, value={value!r}, "
            f"params={self.params!r}, test_accuracy={self.test_accuracy!r}, run={run!r})"
        )


def state_tally(records: Sequence[TrialRecord]) -> str:
    """How many trials are in each state, in order of first appearance: "17 complete, 13
    pruned" ('' for none)."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def read_trial(
    trial: optuna.trial.FrozenTrial, folder: Path, dimensions: Sequence[Dimension]
) -> TrialRecord:
    """A journal's trial as mlplab shows it (run folders under the study ``folder``)."""
    attrs = trial.user_attrs
    state = attrs.get("state") or trial.state.name.lower()
    state = {"fail": "failed"}.get(state, state)
    dims = {d.key: d for d in dimensions}
    params = {
        key: dims[key].value(drawn) if key in dims else drawn for key, drawn in trial.params.items()
    }
    reported = trial.intermediate_values
    return TrialRecord(
        number=trial.number + 1,
        state=state,
        value=trial.value if state == "complete" else None,
        params=params,
        test_accuracy=attrs.get("test_accuracy"),
        epochs=attrs.get("epochs"),
        seconds=attrs.get("seconds"),
        note=attrs.get("note", ""),
        last_value=reported[max(reported)] if reported else None,
        val_loss=attrs.get("val_loss"),
        repeat_of=attrs.get("repeat_of"),
        runs=[folder / name for name in attrs.get("runs", [])],
        spread=attrs.get("spread"),
        curves_say=list(attrs.get("curves_say", [])),
    )


def ranked(records: Sequence[TrialRecord], direction: str) -> list[TrialRecord]:
    """The complete trials, best first (repeats of earlier settings left out).

    Equal scores go to the lower validation loss (a few hundred validation images give few
    distinct accuracies), then to the earlier trial.
    """
    sign = 1 if direction == "maximize" else -1

    def rank(r: TrialRecord) -> tuple[float, float, int]:
        loss = r.val_loss if r.val_loss is not None else math.inf
        return (-sign * r.value, loss, r.number)

    done = [r for r in records if r.state == "complete" and r.value is not None]
    return sorted((r for r in done if r.repeat_of is None), key=rank)


def trials_csv(records: Sequence[TrialRecord], dimensions: Sequence[Dimension]) -> str:
    """trial, state, value, test_accuracy, epochs, seconds, one column per searched key, run,
    runs, curves_say (what the first run's learning curves say), note."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [d.key for d in dimensions]
    writer.writerow(
        [
            "trial", "state", "value", "value_std", "test_accuracy", "epochs", "seconds",
            *keys, "run", "runs", "curves_say", "note",
        ]
    )  # fmt: skip
    for r in records:
        writer.writerow(
            [
                r.number,
                r.state,
                _cell(r.value),
                _cell(r.spread),
                _cell(r.test_accuracy),
                _cell(r.epochs),
                _cell(r.seconds),
                *(_cell(label(r.params[k])) if k in r.params else "" for k in keys),
                r.run.name if r.run else "",
                len(r.runs),
                ", ".join(r.curves_say),
                r.note,
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def score_text(record: TrialRecord) -> str:
    """``0.9722``, or ``0.9722 ± 0.0040`` for a trial over several seeds."""
    if record.value is None:
        return "—"
    spread = "" if record.spread is None else f" ± {record.spread:.4f}"
    return f"{record.value:.4f}{spread}"


def same_settings(
    records: Sequence[TrialRecord], number: int, values: Mapping[str, Any]
) -> TrialRecord | None:
    """An earlier complete or pruned trial with exactly these values (training is
    deterministic for a seed, so it would give the same result)."""
    wanted = {key: label(value) for key, value in values.items()}
    for record in records:
        done = record.number < number and record.state in ("complete", "pruned")
        if done and {key: label(value) for key, value in record.params.items()} == wanted:
            return record
    return None


def tell_repeat(study: optuna.Study, trial: optuna.Trial, earlier: TrialRecord) -> None:
    """Tell Optuna the earlier trial's result again (so its sampler learns from the draw)."""
    from optuna.trial import TrialState

    trial.set_user_attr("repeat_of", earlier.number)
    trial.set_user_attr("note", f"same settings as trial {earlier.number}: not trained again")
    for key in ("test_accuracy", "val_loss", "epochs", "spread"):
        if getattr(earlier, key) is not None:
            trial.set_user_attr(key, getattr(earlier, key))
    trial.set_user_attr("runs", [run.name for run in earlier.runs])
    trial.set_user_attr("curves_say", earlier.curves_say)
    trial.set_user_attr("seconds", 0.0)
    trial.set_user_attr("state", earlier.state)
    if earlier.state == "complete":
        study.tell(trial, earlier.value)
    else:
        study.tell(trial, state=TrialState.PRUNED)


def tell_outcome(
    study: optuna.Study,
    trial: optuna.Trial,
    state: str,
    *,
    runs: Sequence[Run] = (),
    objective: str = "",
    value: float | None = None,
    note: str = "",
) -> None:
    """Record the trial's outcome: its state, value (when complete), runs and a note. With
    several seeds, test accuracy and validation loss are their means, and ``spread`` the
    ``objective``'s sample std."""
    from optuna.trial import TrialState

    from mlplab.diagnosis import findings_of

    trial.set_user_attr("state", state)
    if note:
        trial.set_user_attr("note", note)
    if runs:
        # By name: the study folder may move, or be opened from another working directory.
        trial.set_user_attr("runs", [run.path.name for run in runs])
        for metric in ("test_accuracy", "val_loss"):
            found = [run.metrics.get(metric) for run in runs]
            if all(isinstance(v, float) for v in found):
                trial.set_user_attr(metric, statistics.fmean(found))
        trial.set_user_attr("epochs", runs[0].metrics.get("epochs_completed"))
        trial.set_user_attr("curves_say", [finding.kind for finding in findings_of(runs[0])])
        trial.set_user_attr("seconds", sum(run.metrics.get("wall_seconds", 0.0) for run in runs))
        if len(runs) > 1 and state == "complete":
            trial.set_user_attr("spread", statistics.stdev(r.metrics[objective] for r in runs))
    if state == "complete":
        study.tell(trial, value)
    else:
        study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)


def claim(trial: optuna.Trial) -> None:
    """Record that this process trains ``trial`` (see :func:`retire_abandoned`)."""
    trial.set_user_attr("process", {"pid": os.getpid(), "host": socket.gethostname()})


def retire_abandoned(study: optuna.Study) -> list[int]:
    """Mark as ``abandoned`` (failed, for Optuna) the running trials whose process has ended:
    killed, or the machine restarted. Their numbers (from 1). Trials of a live process, of
    another host, or recorded without their process are left running."""
    from optuna.trial import Trial, TrialState

    from mlplab.running import process_alive

    retired = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = frozen.user_attrs.get("process")
        if not isinstance(owner, dict) or process_alive(int(owner["pid"]), str(owner["host"])):
            continue
        # A Trial object for another process's trial: Optuna's way to set its attributes.
        trial = Trial(study, frozen._trial_id)
        trial.set_user_attr("state", "abandoned")
        trial.set_user_attr("note", f"its process ({owner['pid']}) ended without finishing it")
        study.tell(trial, state=TrialState.FAIL)
        retired.append(frozen.number + 1)
    return retired


def tell_failure(study: optuna.Study, trial: optuna.Trial, exc: BaseException) -> None:
    """Mark a trial that an exception ended as failed (unless it was already told)."""
    from optuna.trial import TrialState

    if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
        return
    trial.set_user_attr("state", "failed")
    trial.set_user_attr("note", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    study.tell(trial, state=TrialState.FAIL)
