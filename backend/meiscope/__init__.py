"""meiscope: find and explore the preferred inputs of units in a hierarchical VAE of early vision."""

from .engine import AMConfig, Run, run
from .model import TDVAE, load_model

__all__ = ["AMConfig", "Run", "TDVAE", "load_model", "run"]
__version__ = "0.1.0"
