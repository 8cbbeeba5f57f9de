"""meiscope: find and explore the preferred inputs of units in a hierarchical VAE of early vision, or in any
PyTorch model."""

__version__ = "0.1.0"  # first: the engine records it in every run

from .engine import AMConfig, Run, run
from .model import TDVAE, Explorable, load_model

__all__ = ["AMConfig", "Explorable", "Run", "TDVAE", "load_model", "run"]
