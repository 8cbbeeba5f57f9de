"""One way to load any model: the shipped TDVAE, a released or imported checkpoint folder, or a PyTorch model
from its factory ("package.module:factory"). Each loaded model carries `source`: what it is and a hash of its
weights, which runs and caches record."""

from __future__ import annotations

import hashlib
import os

import torch

from .checkpoint import DEFAULT_MODEL_DIR, MANIFEST
from .checkpoint import load_model as load_checkpoint
from .factory import is_factory_spec, load_factory
from .seam import Explorable


def load_model(spec: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Explorable:
    """None: the shipped TDVAE-40; a folder: a checkpoint (released, imported or a training state);
    "package.module:factory" (or "file.py:factory"): any torch model the factory wraps (model/hooked.py).
    Raises CheckpointError or ValueError with one line naming what is wrong."""
    if spec is not None and is_factory_spec(str(spec)):
        model = load_factory(str(spec)).to(device).eval()
        model.source = {"name": model.name, "spec": str(spec), "sha256": weights_hash(model)}
        return model
    folder = DEFAULT_MODEL_DIR if spec is None else spec
    model = load_checkpoint(folder, device)
    manifest = os.path.join(folder, MANIFEST)
    digest = _file_hash(manifest) if os.path.isfile(manifest) else weights_hash(model)
    model.source = {"name": model.name, "spec": str(folder), "sha256": digest}
    return model


def _file_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the state dict, in order (names, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()
