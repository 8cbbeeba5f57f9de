"""Natural-image patch sets built from photographs shipped in PyPI packages."""

from .patches import PatchSet, PatchSetParams, build_natural, build_split, load_natural
from .sources import NATURAL_SOURCES, sources_for
from .whitening import radial_amplitude, whiten_image

__all__ = ["PatchSet", "PatchSetParams", "build_natural", "build_split", "load_natural", "NATURAL_SOURCES",
           "sources_for", "radial_amplitude", "whiten_image"]
