"""Activation maximisation: find the inputs that drive chosen units of a model (imported on first use: the
config and its options need no torch)."""

from importlib import import_module

_EXPORTS = {"METHODS": ".config", "AMConfig": ".config", "Frame": ".result", "Run": ".result", "run": ".loop",
            "Objective": ".objectives", "Term": ".objectives", "direction": ".objectives", "unit": ".objectives"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
