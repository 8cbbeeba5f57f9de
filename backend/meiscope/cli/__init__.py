"""The `meiscope` command. User errors exit with code 2 and one line naming the problem.

A module per group of commands registers them on the one typer app (importing no torch at import time, so
that `meiscope --help` answers at once): models (model and data), serving, runs, analysis, sweeps.
"""

from . import analysis, models, runs, serving, sweeps  # noqa: F401  (register their commands)
from .app import app, main

__all__ = ["app", "main"]
