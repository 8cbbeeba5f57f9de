"""Natural photographs shipped inside installed PyPI packages (no download at run time).

Left out on purpose: drawings, text and charts (skimage's text, page, logo, horse, color, chessboard,
clock_motion, phantom), microscopy and medical images (cell, ihc, retina, microaneurysms), the star field
(hubble_deep_field), tiny faces (lfw_subset) and every JPEG source (rocket, plenoptic's macaca): whitening
amplifies JPEG's 8x8 block artefacts into a grid that the model would learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from skimage import color, io


@dataclass(frozen=True)
class ImageSource:
    name: str
    package: str  # the PyPI package that ships the file
    relpath: str  # path inside that package's import folder
    split: str  # "train" or "heldout": the split is by source image, never by patch

    def path(self) -> Path:
        module = {"scikit-image": "skimage", "plenoptic": "plenoptic"}[self.package]
        return Path(str(resources.files(module).joinpath(self.relpath)))

    def load_grey(self) -> np.ndarray:
        """The photograph as a float64 grey image in [0, 1]."""
        path = self.path()
        if not path.is_file():
            raise FileNotFoundError(f"image source {self.name!r} not found at {path} (is {self.package} installed?)")
        img = io.imread(path)
        if img.ndim == 3:
            img = color.rgb2gray(img[..., :3])
        img = np.asarray(img, dtype=np.float64)
        if img.max() > 1.0:
            img = img / 255.0
        return img


# Stereo pairs (motorcycle_left/right) stay in one split, so no held-out scene is seen in training.
NATURAL_SOURCES: tuple[ImageSource, ...] = (
    ImageSource("astronaut", "scikit-image", "data/astronaut.png", "train"),
    ImageSource("brick", "scikit-image", "data/brick.png", "train"),
    ImageSource("camera", "scikit-image", "data/camera.png", "train"),
    ImageSource("coins", "scikit-image", "data/coins.png", "train"),
    ImageSource("grass", "scikit-image", "data/grass.png", "train"),
    ImageSource("moon", "scikit-image", "data/moon.png", "train"),
    ImageSource("motorcycle_left", "scikit-image", "data/motorcycle_left.png", "train"),
    ImageSource("motorcycle_right", "scikit-image", "data/motorcycle_right.png", "train"),
    ImageSource("einstein", "plenoptic", "data/einstein.pgm", "train"),
    ImageSource("reptile_skin", "plenoptic", "data/reptile_skin.pgm", "train"),
    ImageSource("parrot", "plenoptic", "data/parrot.png", "train"),
    ImageSource("chelsea", "scikit-image", "data/chelsea.png", "heldout"),
    ImageSource("coffee", "scikit-image", "data/coffee.png", "heldout"),
    ImageSource("gravel", "scikit-image", "data/gravel.png", "heldout"),
    ImageSource("curie", "plenoptic", "data/curie.pgm", "heldout"),
)


def sources_for(split: str) -> list[ImageSource]:
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    return [s for s in NATURAL_SOURCES if s.split == split]
