"""Models: the seam every model is seen through, the TDVAE-40 and its checkpoints, and any PyTorch model."""

from .checkpoint import DEFAULT_MODEL_DIR, CheckpointError, save_sharded
from .loader import load_model
from .seam import Explorable, InputSpec, LatentSpace, ReadoutLayer
from .tdvae import OBS_STD, PATCH, X_DIM, Z1_DIM, Z2_DIM, ELBOTerms, TDVAE

__all__ = ["TDVAE", "ELBOTerms", "Explorable", "InputSpec", "LatentSpace", "ReadoutLayer", "load_model",
           "save_sharded", "CheckpointError", "DEFAULT_MODEL_DIR", "OBS_STD", "PATCH", "X_DIM", "Z1_DIM", "Z2_DIM"]
