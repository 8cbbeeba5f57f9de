"""Texture families: Portilla-Simoncelli syntheses (plenoptic) of five texture photographs
shipped in PyPI packages, whitened like the natural data and cut into 40x40 patches. Synthesis takes minutes
an image on a CPU, so the result is cached on disk (./data/textures-<key>/, never committed)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from skimage import transform

from .patches import _atomic_save_npy, default_data_root
from .sources import ImageSource
from .whitening import whiten_image

# (source, crop rows, crop cols): a homogeneous region of each photograph
TEXTURE_FAMILIES: dict[str, tuple[ImageSource, slice, slice]] = {
    "brick": (ImageSource("brick", "scikit-image", "data/brick.png", "texture"), slice(None), slice(None)),
    "grass": (ImageSource("grass", "scikit-image", "data/grass.png", "texture"), slice(None), slice(None)),
    "gravel": (ImageSource("gravel", "scikit-image", "data/gravel.png", "texture"), slice(None), slice(None)),
    "reptile_skin": (ImageSource("reptile_skin", "plenoptic", "data/reptile_skin.pgm", "texture"),
                     slice(None), slice(None)),
    "fur": (ImageSource("chelsea", "scikit-image", "data/chelsea.png", "texture"), slice(0, 96), slice(190, 286)),
}


@dataclass(frozen=True)
class TextureParams:
    n_synth: int = 3  # syntheses per family (decoding is held out by synthesis)
    size: int = 128  # synthesis size in pixels
    iters: int = 300  # optimisation steps per synthesis (loss ~5e-3 by then on 128x128)
    patches_per_synth: int = 200
    seed: int = 0
    f0: float = 0.4  # whitening cutoff, as the natural data
    format_version: int = 1


def params_key(params: TextureParams) -> str:
    return hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode()).hexdigest()[:12]


def texture_target(family: str, size: int) -> np.ndarray:
    source, rows, cols = TEXTURE_FAMILIES[family]
    img = source.load_grey()[rows, cols]
    img = transform.resize(img, (size, size), anti_aliasing=True)
    return ((img - img.min()) / (np.ptp(img) + 1e-12)).astype(np.float32)


def synthesize(target: np.ndarray, iters: int, seed: int) -> np.ndarray:
    """One Portilla-Simoncelli synthesis (coarse-to-fine metamer from noise) of a target image in [0, 1]."""
    import plenoptic as po

    device = "cuda" if torch.cuda.is_available() else "cpu"  # minutes an image on this CPU: use a GPU when there is one
    x = torch.as_tensor(target)[None, None].to(device)
    # 4 scales need 128 px and more; smaller images (quick tests) get fewer
    model = po.models.PortillaSimoncelli(x.shape[-2:], n_scales=min(4, int(np.log2(target.shape[-1])) - 3)).to(device)
    metamer = po.MetamerCTF(x, model, coarse_to_fine="together")
    generator = torch.Generator().manual_seed(seed)
    start = (torch.rand(x.shape, generator=generator) * 0.2 + float(x.mean())).to(device)
    metamer.setup(initial_image=start, optimizer_kwargs={"lr": 0.02, "amsgrad": True})
    metamer.synthesize(max_iter=iters, store_progress=False, change_scale_criterion=None, ctf_iters_to_check=7)
    return metamer.metamer.detach()[0, 0].cpu().numpy()


def cut(images: np.ndarray, n: int, rng: np.random.Generator, patch: int = 40) -> np.ndarray:
    height, width = images.shape[-2:]
    ys, xs = rng.integers(0, height - patch + 1, n), rng.integers(0, width - patch + 1, n)
    return np.stack([images[y : y + patch, x : x + patch] for y, x in zip(ys, xs)]).astype(np.float32)


def build_textures(params: TextureParams = TextureParams(), scale: float = 1.0, root: Path | None = None,
                   progress: bool = True) -> dict:
    """{"patches": (families, n_synth, patches_per_synth, 40, 40), "syntheses": (families, n_synth, size, size),
    "families": [...], "params": ...}, built once and then loaded from the cache. `scale` divides the whitened
    patches, as the natural data's scale does (the model card records it)."""
    folder = (root or default_data_root()) / f"textures-{params_key(params)}"
    if (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        return {"patches": np.load(folder / "patches.npy") / np.float32(scale / meta["scale"]),
                "syntheses": np.load(folder / "syntheses.npy"), "families": meta["families"], "params": meta["params"]}
    families = list(TEXTURE_FAMILIES)
    rng = np.random.default_rng(params.seed)
    syntheses = np.zeros((len(families), params.n_synth, params.size, params.size), np.float32)
    patches = np.zeros((len(families), params.n_synth, params.patches_per_synth, 40, 40), np.float32)
    jobs = [(f, s) for f in range(len(families)) for s in range(params.n_synth)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="texture syntheses", unit="image")
    for f, s in jobs:
        target = texture_target(families[f], params.size)
        syntheses[f, s] = synthesize(target, params.iters, seed=params.seed * 1000 + f * 100 + s)
        white = whiten_image(syntheses[f, s], params.f0)
        patches[f, s] = cut(white, params.patches_per_synth, rng) / np.float32(scale)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save_npy(folder / "syntheses.npy", syntheses)
    _atomic_save_npy(folder / "patches.npy", patches)
    meta = {"families": families, "params": asdict(params), "scale": scale}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return {"patches": patches, "syntheses": syntheses, "families": families, "params": asdict(params)}
