"""A lenient reading of a run directory, for reports, listings and comparisons.

``load_run`` is strict: it refuses a run it cannot use (no ``metrics.json``, no model).
Reports must show whatever *is* there — an interrupted run, a run written by a newer mlplab,
a run whose history is damaged — and say what is missing. ``read_record`` does that: it only
raises when the path is not a run directory at all.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlplab._version import __version__
from mlplab.config import RunConfig
from mlplab.errors import ConfigError, RunError
from mlplab.running import TrainingProcess, training_process
from mlplab.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    read_history,
    run_directory,
    unfinished,
)


@dataclass
class RunRecord:
    """What a run directory holds, as far as it can be read.

    config: the parsed config, or None when it could not be parsed (``config_raw`` then still
    holds the TOML tables). metrics: metrics.json, or None for an unfinished run. problems:
    one line per missing or unreadable file, for the user. trainer: the live process
    training an unfinished run, if any (see mlplab.running).
    """

    path: Path
    config_raw: dict[str, Any] = field(default_factory=dict)
    config: RunConfig | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    trainer: TrainingProcess | None = None

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.config_raw.get("meta", {})
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        name = self.config_raw.get("name")
        return str(name) if name else self.path.name

    @property
    def status(self) -> str:
        """metrics.json's status; "training" while a live process trains the run, and
        "incomplete" when it stopped unfinished."""
        if self.metrics is None:
            return "training" if self.trainer else "incomplete"
        return str(self.metrics.get("status", "unknown"))

    @property
    def dataset(self) -> str:
        """The dataset's name as the run recorded it (or as its config names it)."""
        facts = (self.metrics or {}).get("dataset")
        if isinstance(facts, dict) and facts.get("name"):
            return str(facts["name"])
        data = self.config_raw.get("data", {})
        return str(data.get("dataset", "?")) if isinstance(data, dict) else "?"

    @property
    def dataset_facts(self) -> dict[str, Any]:
        facts = (self.metrics or {}).get("dataset")
        return facts if isinstance(facts, dict) else {}

    @property
    def created(self) -> datetime:
        """When the run started: from its config's meta, else the directory's mtime (UTC)."""
        try:
            created = datetime.fromisoformat(str(self.meta["created"]))
        except (KeyError, ValueError):
            return datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        return created if created.tzinfo else created.replace(tzinfo=UTC)

    @property
    def test_accuracy(self) -> float | None:
        value = (self.metrics or {}).get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def parameters(self) -> int | None:
        """The network's parameter count (metrics.json's ``model``; None for runs from
        before it was recorded)."""
        value = ((self.metrics or {}).get("model") or {}).get("parameters")
        return value if isinstance(value, int) else None

    @property
    def test_loss(self) -> float | None:
        value = (self.metrics or {}).get("test_loss")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def class_names(self) -> list[str]:
        names = self.dataset_facts.get("class_names")
        return [str(n) for n in names] if isinstance(names, list) else []

    @property
    def ensemble(self) -> dict[str, Any] | None:
        """metrics.json's ``ensemble`` (its members) for an ensemble, else None."""
        facts = (self.metrics or {}).get("ensemble")
        return facts if isinstance(facts, dict) else None

    @property
    def epochs(self) -> str:
        """Epochs in the history, as text: a dash for an ensemble, which has none."""
        return "—" if self.ensemble else str(len(self.history))

    @property
    def has_model(self) -> bool:
        return (self.path / MODEL_FILE).is_file()


def read_record(path: str | Path) -> RunRecord:
    """Read what there is of a run directory; raise RunError only if it is not one."""
    path = run_directory(path)
    record = RunRecord(path)
    _read_config(record, path / CONFIG_FILE)
    _read_metrics(record, path / METRICS_FILE)
    _read_history(record, path / HISTORY_FILE)
    if record.metrics is not None and not record.has_model:
        record.problems.append(f"{MODEL_FILE} missing: the trained model was not saved")
    return record


def _read_config(record: RunRecord, config_path: Path) -> None:
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        record.problems.append(f"{CONFIG_FILE}: unreadable ({exc}); the config is not shown")
        return
    record.config_raw = raw
    written_by = str(record.meta.get("mlplab", ""))
    if written_by and _version_tuple(written_by) > _version_tuple(__version__):
        record.problems.append(
            f"written by mlplab {written_by}, newer than this mlplab {__version__}: "
            "showing what this version can read"
        )
    try:
        record.config = RunConfig.from_dict({k: v for k, v in raw.items() if k != "meta"})
    except ConfigError as exc:
        record.problems.append(f"{CONFIG_FILE}: not a config this version understands: {exc}")


def _read_metrics(record: RunRecord, metrics_path: Path) -> None:
    if not metrics_path.is_file():
        record.trainer = training_process(record.path)
        record.problems.append(unfinished(record.path, record.trainer))
        return
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        record.problems.append(f"{METRICS_FILE}: unreadable ({exc}); no test results shown")
        return
    if not isinstance(metrics, dict):
        record.problems.append(f"{METRICS_FILE}: not an mlplab metrics file")
        return
    record.metrics = metrics


def _read_history(record: RunRecord, history_path: Path) -> None:
    if not history_path.is_file():
        if record.metrics is not None and record.metrics.get("epochs_completed"):
            record.problems.append(f"{HISTORY_FILE} missing: no learning curves")
        return
    try:
        record.history = read_history(history_path)
    except (ValueError, KeyError, OSError, UnicodeDecodeError) as exc:
        record.problems.append(f"{HISTORY_FILE}: unreadable ({exc}); no learning curves")
        return
    if not all("epoch" in row and "loss" in row for row in record.history):
        record.problems.append(f"{HISTORY_FILE}: rows without epoch or loss; no learning curves")
        record.history = []


def _version_tuple(text: str) -> tuple[int, ...]:
    """'0.2.1' -> (0, 2, 1); a suffix such as '.dev3' or 'rc1' ends the comparison."""
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits or digits != part:
            if digits and part.startswith(digits):
                parts.append(int(digits))
            break
        parts.append(int(part))
    return tuple(parts)


SORT_KEYS = ("date", "accuracy", "name")


def list_runs(
    folder: str | Path = "runs",
    dataset: str | None = None,
    best: int | None = None,
    sort: str = "date",
) -> list[RunRecord]:
    """The run directories directly inside ``folder``, unfinished ones included.

    dataset: keep runs on this dataset only. best: keep the N finished runs with the
    highest test accuracy (sorted by it). sort: "date" (newest first), "accuracy" (highest
    first, unfinished last) or "name".
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"{folder}: no such folder of runs")
    if sort not in SORT_KEYS:
        raise RunError(f"sort by {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    if best is not None and best < 1:
        raise RunError(f"--best {best}: must be at least 1")
    records = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and (path / CONFIG_FILE).is_file():
            records.append(read_record(path))
    if dataset is not None:
        records = [r for r in records if r.dataset == dataset]
    if best is not None:
        records = [r for r in records if r.test_accuracy is not None]
        sort = "accuracy"
    if sort == "date":
        records.sort(key=lambda r: r.created, reverse=True)
    elif sort == "name":
        records.sort(key=lambda r: (r.name, r.path.name))
    else:
        records.sort(key=lambda r: (r.test_accuracy is None, -(r.test_accuracy or 0.0)))
    return records[:best] if best is not None else records
