"""Checkpoints as safetensors only (never pickle): the shipped fp16 shards with a hashed manifest (and the
model's sizes), and the full-precision training state (model, Adam moments, RNG) for resuming."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .tdvae import TDVAE, TDVAE_40_SIZES

MANIFEST = "manifest.json"
CARD_JSON = "model_card.json"  # written by presentation/card.py; read here for the unit census only
STATE_FILE = "state.safetensors"  # a training folder (reference/train.py): full-precision model, Adam moments, RNG
STATE_META = "state.json"
MAX_SHARD_BYTES = 16 * 1024 * 1024  # also what comes back from a device machine in one file
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "tdvae40"


class CheckpointError(ValueError):
    """A missing, corrupt or wrong-shaped checkpoint; the message says which file and what is wrong."""


def describe_sizes(sizes: dict) -> str:
    """'x 1600, h 2000, z1 1800, z2 250': the sizes that tell TDVAE variants apart, for messages."""
    return f"x {sizes['patch'] ** 2}, h {sizes['h_dim']}, z1 {sizes['z1_dim']}, z2 {sizes['z2_dim']}"


def build_model(sizes: dict | None, name: str | None, where: str) -> TDVAE:
    """TDVAE(**sizes) (None: TDVAE-40); sizes that do not build a model are a CheckpointError naming `where`."""
    sizes = {**TDVAE_40_SIZES, **(sizes or {})}
    try:
        return TDVAE(**sizes, name=name)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint at {where} records sizes that build no TDVAE ({sizes}): {exc}") from None


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
        "name": model.name,
        "sizes": model.sizes,
        "dtype": str(dtype).removeprefix("torch."),
        "shapes": {name: list(t.shape) for name, t in model.state_dict().items()},
        "shards": entries,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def read_manifest(folder: Path) -> dict:
    """manifest.json of a sharded checkpoint, checked for the fields every reader needs."""
    manifest_path = Path(folder) / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"no model checkpoint at {folder}: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
        missing = [key for key in ("shards", "shapes") if key not in manifest]
        if missing:
            raise KeyError(missing[0])
        if not isinstance(manifest.get("sizes", {}), dict):
            raise TypeError("sizes is not an object")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"corrupt model manifest {manifest_path}: {exc}") from None
    return manifest


def load_sharded_state(folder: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """Read and check a sharded checkpoint; returns a float32 state dict for TDVAE."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    entries, shapes = manifest["shards"], manifest["shapes"]
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
    what = f"{model.name} ({describe_sizes(model.sizes)})"
    if missing or extra:
        raise CheckpointError(f"checkpoint at {where} does not fit {what}: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"checkpoint at {where}: tensor {name!r} has shape {tuple(state[name].shape)}, {what} needs {shape}"
            )


def load_training_state(folder: Path) -> dict:
    """A training folder (reference/train.py writes it): {'model': state dict, 'adam': {name: (exp_avg, exp_avg_sq)},
    'rng': {name: ByteTensor}, 'meta': dict}."""
    tensors = load_file(str(Path(folder) / STATE_FILE))
    meta = json.loads((Path(folder) / STATE_META).read_text())
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    adam = {k.removeprefix("adam.exp_avg."): (v, tensors[f"adam.exp_avg_sq.{k.removeprefix('adam.exp_avg.')}"])
            for k, v in tensors.items() if k.startswith("adam.exp_avg.")}
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    return {"model": model, "adam": adam, "rng": rng, "meta": meta}


def _pick(card: dict, *path: str):
    """card[path[0]][path[1]]..., or None where the card lacks it."""
    value = card
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def give_card_facts(model: TDVAE, folder: Path) -> None:
    """What the model card beside a checkpoint tells the model, read once: its z2 unit census, the held-out
    reference batch's ELBO percentiles (the in_distribution check) and the data scale (natural anchors)."""
    try:
        card = json.loads((Path(folder) / CARD_JSON).read_text())
    except (OSError, ValueError):
        return
    census = _pick(card, "metrics", "units", "census")
    if isinstance(census, list):
        model.unit_census = {"z2": census}
    percentiles = _pick(card, "metrics", "reference_batch", "elbo_percentiles")
    model.heldout_elbos = percentiles if isinstance(percentiles, list) and percentiles else None
    scale = _pick(card, "data", "scale")
    model.data_scale = float(scale) if isinstance(scale, (int, float)) else None


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> TDVAE:
    """The TDVAE from a checkpoint folder (default: the shipped TDVAE-40 in models/tdvae40), in eval mode,
    float32, of the sizes the folder records (none recorded: TDVAE-40).

    Accepts a sharded folder (manifest.json) or a training-state folder (state.safetensors). A model card
    beside the weights gives the model its z2 unit census and the held-out ELBOs an input is compared with.
    """
    folder = DEFAULT_MODEL_DIR if path is None else Path(path)
    if (folder / MANIFEST).is_file() or not (folder / STATE_FILE).is_file():
        manifest = read_manifest(folder)
        model = build_model(manifest.get("sizes"), manifest.get("name"), str(folder))
        state = load_sharded_state(folder)
    else:
        training = load_training_state(folder)
        model = build_model(training["meta"].get("sizes"), None, str(folder))
        state = training["model"]
    check_shapes(model, state, str(folder))
    model.load_state_dict(state)
    give_card_facts(model, folder)
    return model.to(device).eval()
