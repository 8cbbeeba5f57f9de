"""Texture photographs against spectrally matched noise: homogeneous regions of held-out photographs (never
training images), whitened like the natural data, beside the same whitened image with its Fourier phases
randomised (same amplitude spectrum, no higher-order structure), both cut into 40x40 patches at the same
positions. The control of Freeman et al. (2013)'s texture modulation index (analysis/texture_modulation.py)."""

from __future__ import annotations

import numpy as np

from .sources import NATURAL_SOURCES, ImageSource
from .whitening import DEFAULT_F0, whiten_image

_HELDOUT = {s.name: s for s in NATURAL_SOURCES if s.split == "heldout"}

# family: (held-out source, crop rows, crop cols), each a homogeneous textured region
HELDOUT_TEXTURES: dict[str, tuple[ImageSource, slice, slice]] = {
    "gravel": (_HELDOUT["gravel"], slice(None), slice(None)),  # the whole 512x512 photograph
    "fur": (_HELDOUT["chelsea"], slice(0, 96), slice(190, 286)),  # the cat's striped fur
    "wood": (_HELDOUT["coffee"], slice(0, 140), slice(470, 600)),  # the table's grain, right of the saucer
}


def phase_randomise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real image with exactly the amplitude spectrum of `image` (2-D FFT over the whole image) and random
    phases: the phases of the FFT of white noise, which are Hermitian-symmetric, so the result is real."""
    image = np.asarray(image, dtype=np.float64)
    phases = np.angle(np.fft.fft2(rng.standard_normal(image.shape)))
    return np.fft.ifft2(np.abs(np.fft.fft2(image)) * np.exp(1j * phases)).real


def whitened_texture(family: str, f0: float = DEFAULT_F0) -> np.ndarray:
    """The family's crop, whitened as one image (zero mean, unit pixel variance), as the natural data."""
    source, rows, cols = HELDOUT_TEXTURES[family]
    return whiten_image(source.load_grey()[rows, cols], f0)


def texture_and_noise_patches(scale: float = 1.0, n: int = 300, seed: int = 0, f0: float = DEFAULT_F0,
                              families: list[str] | None = None, patch: int = 40) -> dict:
    """{"families", "texture": (F, n, patch, patch), "noise": (F, n, patch, patch)} float32, divided by the
    natural data's `scale`: n patches of each whitened texture, and of its phase-randomised twin at the same
    positions (seeded)."""
    families = list(HELDOUT_TEXTURES) if families is None else families
    texture = np.zeros((len(families), n, patch, patch), np.float32)
    noise = np.zeros_like(texture)
    for f, family in enumerate(families):
        rng = np.random.default_rng(np.random.SeedSequence([seed, f]))
        white = whitened_texture(family, f0)
        twin = phase_randomise(white, rng)
        ys = rng.integers(0, white.shape[0] - patch + 1, n)
        xs = rng.integers(0, white.shape[1] - patch + 1, n)
        texture[f] = np.stack([white[y : y + patch, x : x + patch] for y, x in zip(ys, xs)]) / scale
        noise[f] = np.stack([twin[y : y + patch, x : x + patch] for y, x in zip(ys, xs)]) / scale
    return {"families": families, "texture": texture, "noise": noise}
