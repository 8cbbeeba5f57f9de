"""Activation maximisation: find the inputs that drive chosen units of the TDVAE."""

from .config import METHODS, AMConfig
from .loop import run
from .objectives import Objective, Term, direction, unit
from .result import Frame, Run

__all__ = ["METHODS", "AMConfig", "Frame", "Objective", "Run", "Term", "direction", "run", "unit"]
