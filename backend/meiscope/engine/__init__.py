"""Activation maximisation: find the inputs that drive chosen units of a model (imported on first use: the
config and its options need no torch)."""

from ..lazy import lazy_getattr

_EXPORTS = {"METHODS": ".config", "AMConfig": ".config", "Frame": ".result", "Run": ".result", "run": ".loop",
            "Objective": ".objectives", "Term": ".objectives", "direction": ".objectives", "unit": ".objectives"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
