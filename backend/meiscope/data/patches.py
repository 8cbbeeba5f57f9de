"""Whitened 40x40 natural-image patch sets: built deterministically from a seed, cached on disk.

Patches are drawn in chunks of CHUNK, each chunk from its own seeded generator, so the first k patches
of a split do not depend on how many were asked for: a small held-out batch can be rebuilt alone and
matches the start of the full held-out set.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tqdm import tqdm

from .sources import sources_for
from .whitening import DEFAULT_F0, whiten_image

PATCH = 40
CHUNK = 1024
SPLIT_IDS = {"train": 0, "heldout": 1}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PatchSetParams:
    n_train: int = 640_000
    n_heldout: int = 32_768
    seed: int = 0
    f0: float = DEFAULT_F0
    format_version: int = FORMAT_VERSION


def default_data_root() -> Path:
    return Path(os.environ.get("MEISCOPE_DATA", "data"))


def whitened_images(split: str, f0: float = DEFAULT_F0) -> list[np.ndarray]:
    return [whiten_image(src.load_grey(), f0) for src in sources_for(split)]


def cut_patches(images: list[np.ndarray], n: int, seed: int, split: str, progress: bool = False) -> np.ndarray:
    """n random 40x40 patches (float32, N x 40 x 40), images weighted by their number of positions,
    each patch under a random one of the 8 flips / 90-degree rotations."""
    windows = [sliding_window_view(img, (PATCH, PATCH)) for img in images]
    n_pos = np.array([w.shape[0] * w.shape[1] for w in windows], dtype=np.float64)
    weights = n_pos / n_pos.sum()
    out = np.empty((n, PATCH, PATCH), dtype=np.float32)
    n_chunks = -(-n // CHUNK)
    for c in tqdm(range(n_chunks), desc=f"patches ({split})", disable=not progress, unit="chunk"):
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_IDS[split], c]))
        size = min(CHUNK, n - c * CHUNK)
        which = rng.choice(len(images), size=CHUNK, p=weights)[:size]
        u = rng.random((CHUNK, 2))[:size]
        flips = rng.integers(0, 8, size=CHUNK)[:size]
        chunk = np.empty((size, PATCH, PATCH), dtype=np.float64)
        for i, win in enumerate(windows):
            sel = np.flatnonzero(which == i)
            ys = (u[sel, 0] * win.shape[0]).astype(int)
            xs = (u[sel, 1] * win.shape[1]).astype(int)
            chunk[sel] = win[ys, xs]
        for k in range(8):
            sel = np.flatnonzero(flips == k)
            p = np.rot90(chunk[sel], k % 4, axes=(1, 2))
            chunk[sel] = p[:, :, ::-1] if k >= 4 else p
        out[c * CHUNK : c * CHUNK + size] = chunk
    return out


def content_hash(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.float32).tobytes()).hexdigest()


def build_split(split: str, n: int, seed: int = 0, f0: float = DEFAULT_F0, scale: float | None = None,
                progress: bool = False) -> tuple[np.ndarray, float]:
    """Patches of one split divided by `scale` (default: their own pixel std). Returns (patches, scale)."""
    patches = cut_patches(whitened_images(split, f0), n, seed, split, progress)
    if scale is None:
        scale = float(patches.std(dtype=np.float64))
    patches /= np.float32(scale)
    return patches, scale


@dataclass
class PatchSet:
    train: np.ndarray  # (N, 40, 40) float32, memory-mapped when loaded from disk
    heldout: np.ndarray
    meta: dict


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def build_natural(params: PatchSetParams = PatchSetParams(), root: Path | None = None,
                  progress: bool = True) -> PatchSet:
    """Build (or reuse the cached) natural patch set under root/natural-<key>/.

    The training split sets the scale (unit pixel variance over the training set); the held-out split
    is divided by the same number.
    """
    root = default_data_root() if root is None else Path(root)
    folder = root / f"natural-{params_key(params)}"
    if (folder / "meta.json").is_file():
        return load_natural(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train, scale = build_split("train", params.n_train, params.seed, params.f0, progress=progress)
    heldout, _ = build_split("heldout", params.n_heldout, params.seed, params.f0, scale=scale, progress=progress)
    meta = {
        "params": asdict(params),
        "scale": scale,
        "train_sha256": content_hash(train),
        "heldout_sha256": content_hash(heldout),
        "sources": {split: [s.name for s in sources_for(split)] for split in ("train", "heldout")},
        "heldout_pixel_var": float(heldout.var(dtype=np.float64)),
    }
    _atomic_save_npy(folder / "train.npy", train)
    _atomic_save_npy(folder / "heldout.npy", heldout)
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, folder / "meta.json")  # written last: its presence marks a complete set
    return PatchSet(train, heldout, meta)


def params_key(params: PatchSetParams) -> str:
    return hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode()).hexdigest()[:12]


def load_natural(folder: Path) -> PatchSet:
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no patch set at {folder} (run `meiscope data natural` first)")
    meta = json.loads(meta_path.read_text())
    train = np.load(folder / "train.npy", mmap_mode="r")
    heldout = np.load(folder / "heldout.npy", mmap_mode="r")
    return PatchSet(train, heldout, meta)
