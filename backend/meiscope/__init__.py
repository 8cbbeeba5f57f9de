"""meiscope: find and explore the preferred inputs of units in a hierarchical VAE of early vision."""

from .model import TDVAE, load_model

__all__ = ["TDVAE", "load_model"]
__version__ = "0.1.0"
