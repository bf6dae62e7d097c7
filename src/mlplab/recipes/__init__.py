"""Bundled recipes: one TOML file per named network (``mlplab recipes`` lists them)."""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable

from mlplab.config import RunConfig
from mlplab.errors import ConfigError

DEFAULT_RECIPE = "digits-mlp"


def _files() -> dict[str, Traversable]:
    folder = resources.files(__name__)
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def recipe_names() -> list[str]:
    return sorted(_files())


def recipe_text(name: str) -> str:
    """The TOML source of a bundled recipe."""
    files = _files()
    if name not in files:
        close = difflib.get_close_matches(name, files, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown recipe '{name}'{hint}; recipes: {', '.join(sorted(files))}; "
            "or give the path of a .toml file"
        )
    return files[name].read_text(encoding="utf-8")


def load_recipe(name: str) -> RunConfig:
    """A bundled recipe as a RunConfig (its name is the recipe's name)."""
    data = tomllib.loads(recipe_text(name))
    data.setdefault("name", name)
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:  # a broken bundled recipe is our bug, but say which
        raise ConfigError(f"recipe {name}: {exc}") from None


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every bundled recipe."""
    return [(name, load_recipe(name).description) for name in recipe_names()]
