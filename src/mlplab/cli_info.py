"""``mlplab info``: what this installation runs on, for a bug report or a puzzled user.

Versions (mlplab, Python, Keras and its backend, JAX and its devices, the libraries mlplab
leans on, the optional ONNX extra), the CPU threads, where the caches are and how much
they hold, and which datasets are on this machine.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "scikit-learn", "matplotlib", "pillow", "optuna", "rich")
OPTIONAL = ("onnx", "onnxruntime")


def add_parser(commands: Any) -> None:
    """Add ``info`` to the CLI's sub-commands."""
    info = commands.add_parser(
        "info",
        help="versions, devices, caches and datasets of this installation (for bug reports)",
        description="Print what this installation of mlplab runs on: versions of Python, "
        "Keras (and its backend), JAX (and its devices) and the libraries mlplab uses, "
        "whether the ONNX extra is installed, where the dataset and compilation caches are "
        "and their size, and which datasets are on this machine. Paste it into a bug report.",
    )
    info.add_argument("--json", action="store_true", help="print it as JSON")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def gather() -> dict[str, Any]:
    """The facts ``mlplab info`` prints, as plain data."""
    import keras

    from mlplab import __version__
    from mlplab.cli_datasets import where_is
    from mlplab.data.catalog import CATALOG
    from mlplab.data.fetch import cache_dir
    from mlplab.fused import compilation_cache_dir

    facts: dict[str, Any] = {
        "mlplab": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu_threads": os.cpu_count(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    if facts["backend"] == "jax":
        import jax

        devices = jax.devices()
        kinds = sorted({f"{d.platform} ({d.device_kind})" for d in devices})
        facts["jax"] = jax.__version__
        facts["devices"] = f"{len(devices)} x " + ", ".join(kinds)
    facts["libraries"] = {name: _version(name) for name in LIBRARIES}
    facts["onnx_extra"] = {name: _version(name) for name in OPTIONAL}
    datasets = cache_dir()
    compiled = Path(compilation_cache_dir())
    facts["caches"] = {
        "datasets": {"path": str(datasets), "bytes": _size(datasets)},
        "compiled programs": {"path": str(compiled), "bytes": _size(compiled)},
    }
    facts["datasets_here"] = {
        name: where for name in CATALOG if (where := where_is(name)) != "not here"
    }
    return facts


def run(args: argparse.Namespace) -> int:
    facts = gather()
    if args.json:
        from mlplab.runs import to_json

        print(to_json(facts), end="")
        return 0
    print(f"mlplab     {facts['mlplab']}")
    print(f"python     {facts['python']}")
    print(f"platform   {facts['platform']}, {facts['cpu_threads']} CPU threads")
    print(f"keras      {facts['keras']} (backend: {facts['backend']})")
    if "jax" in facts:
        print(f"jax        {facts['jax']} (devices: {facts['devices']})")
    listed = ", ".join(f"{name} {v or 'missing'}" for name, v in facts["libraries"].items())
    print(f"libraries  {listed}")
    extra = facts["onnx_extra"]
    if all(extra.values()):
        print("onnx       " + ", ".join(f"{name} {v}" for name, v in extra.items()))
    else:
        print("onnx       not installed (mlplab export needs: pip install onnx onnxruntime)")
    for label, cache in facts["caches"].items():
        print(f"cache      {label}: {cache['path']} ({_megabytes(cache['bytes'])})")
    here = "; ".join(f"{name} ({where})" for name, where in facts["datasets_here"].items())
    print(f"datasets   {here}  (all: mlplab datasets list)")
    return 0
