"""Exceptions a user can cause. The CLI prints their message as one line and exits 2."""


class MlplabError(Exception):
    """Base class: bad input a user can fix (paths, files, config values)."""


class ConfigError(MlplabError):
    """An unknown key, a value of the wrong type, or a value out of range."""


class DataError(MlplabError):
    """A dataset or image that cannot be found, read or decoded."""


class RunError(MlplabError):
    """A run directory that is missing, incomplete or unreadable."""
