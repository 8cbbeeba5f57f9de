"""The TDVAE-40 model and its checkpoints."""

from .checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model, save_sharded
from .tdvae import OBS_STD, PATCH, X_DIM, Z1_DIM, Z2_DIM, ELBOTerms, TDVAE

__all__ = ["TDVAE", "ELBOTerms", "load_model", "save_sharded", "CheckpointError", "DEFAULT_MODEL_DIR",
           "OBS_STD", "PATCH", "X_DIM", "Z1_DIM", "Z2_DIM"]
