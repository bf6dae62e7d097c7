"""Exceptions a user can cause. The CLI prints their message as one line and exits 2."""


class MlplabError(Exception):
    """Base class: bad input a user can fix (paths, files, config values)."""


class ConfigError(MlplabError, ValueError):
    """An unknown key, a value of the wrong type, or a value out of range (also a
    ValueError, as scikit-learn and Python code expect of a bad argument)."""


class DataError(MlplabError, ValueError):
    """A dataset, image or array that cannot be found, read or decoded (also a ValueError)."""


class RunError(MlplabError):
    """A run directory that is missing, incomplete or unreadable."""


class SkippedFilesWarning(UserWarning):
    """Files found in a folder that were left out because they could not be read (the
    warning's message names how many and the first, with why). ``mlplab predict`` prints
    it as one line on stderr."""
