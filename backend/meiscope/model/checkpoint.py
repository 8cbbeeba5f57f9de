"""Checkpoints as safetensors only (never pickle): the shipped fp16 shards with a hashed manifest, and
the full-precision training state (model, Adam moments, RNG) for resuming."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .tdvae import TDVAE

MANIFEST = "manifest.json"
MAX_SHARD_BYTES = 16 * 1024 * 1024  # also what comes back from a device machine in one file
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "tdvae40"


class CheckpointError(ValueError):
    """A missing, corrupt or wrong-shaped checkpoint; the message says which file and what is wrong."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def save_sharded(model: TDVAE, folder: Path, dtype: torch.dtype = torch.float16,
                 max_shard_bytes: int = MAX_SHARD_BYTES) -> dict:
    """Write the weights as safetensors shards of at most max_shard_bytes plus a manifest of hashes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu", dtype).contiguous()
        nbytes = t.numel() * t.element_size()
        if nbytes > max_shard_bytes:  # split a large matrix by rows
            rows_per = max(1, max_shard_bytes // (t[0].numel() * t.element_size()))
            for k, start in enumerate(range(0, t.shape[0], rows_per)):
                shards.append({f"{name}@{k}": t[start : start + rows_per].clone()})
            shards.append({})
            size = 0
            continue
        if size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    shards = [s for s in shards if s]
    for old in folder.glob("weights-*.safetensors"):
        old.unlink()
    entries = []
    for i, shard in enumerate(shards):
        path = folder / f"weights-{i:02d}-of-{len(shards):02d}.safetensors"
        atomic_save_file(shard, path)
        entries.append({"file": path.name, "sha256": sha256_file(path), "tensors": sorted(shard)})
    manifest = {
        "format": "meiscope-tdvae40",
        "dtype": str(dtype).removeprefix("torch."),
        "shapes": {name: list(t.shape) for name, t in model.state_dict().items()},
        "shards": entries,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def load_sharded_state(folder: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """Read and check a sharded checkpoint; returns a float32 state dict for TDVAE."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"no model checkpoint at {folder}: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["shards"]
        shapes = manifest["shapes"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"corrupt model manifest {manifest_path}: {exc}") from None
    parts: dict[str, torch.Tensor] = {}
    for entry in entries:
        path = folder / entry["file"]
        if not path.is_file():
            raise CheckpointError(f"model shard missing: {path}")
        if verify and sha256_file(path) != entry["sha256"]:
            raise CheckpointError(f"model shard {path} is corrupt: its sha256 does not match {MANIFEST}")
        try:
            parts.update(load_file(str(path)))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"model shard {path} cannot be read: {exc}") from None
    state: dict[str, torch.Tensor] = {}
    for name in shapes:
        if name in parts:
            state[name] = parts[name]
        else:
            pieces = sorted((k for k in parts if k.startswith(name + "@")), key=lambda k: int(k.rsplit("@", 1)[1]))
            if not pieces:
                raise CheckpointError(f"checkpoint at {folder} lacks tensor {name!r}")
            state[name] = torch.cat([parts[k] for k in pieces])
    return {k: v.float() for k, v in state.items()}


def check_shapes(model: TDVAE, state: dict[str, torch.Tensor], where: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"checkpoint at {where} does not fit TDVAE-40: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"checkpoint at {where}: tensor {name!r} has shape {tuple(state[name].shape)}, TDVAE-40 needs {shape}"
            )


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> TDVAE:
    """The TDVAE-40 from a checkpoint folder (default: the shipped models/tdvae40), in eval mode, float32.

    Accepts a sharded folder (manifest.json) or a training-state folder (state.safetensors).
    """
    folder = DEFAULT_MODEL_DIR if path is None else Path(path)
    model = TDVAE()
    if (folder / MANIFEST).is_file() or not (folder / "state.safetensors").is_file():
        state = load_sharded_state(folder)
    else:
        from ..train import load_training_state  # local: training code is not needed to load a model

        state = load_training_state(folder)["model"]
    check_shapes(model, state, str(folder))
    model.load_state_dict(state)
    return model.to(device).eval()
