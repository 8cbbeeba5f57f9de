"""Texture families and texture sensitivity. Portilla-Simoncelli synthesis takes minutes an image here, so
the tests cut patches from the texture photographs themselves (two halves of each image stand in for two
syntheses) and check the synthesis wiring with a stand-in; `meiscope data textures` runs the real one."""

import numpy as np
import pytest

from meiscope.analysis.texture import census_fields, texture_sensitivity
from meiscope.data import textures as tex
from meiscope.data.whitening import whiten_image


@pytest.fixture(scope="module")
def photo_textures(card):
    """(5 families, 2 halves, 150, 40, 40): whitened patches of each texture photograph's top and bottom half."""
    rng = np.random.default_rng(0)
    out = []
    for family in tex.TEXTURE_FAMILIES:
        white = whiten_image(tex.texture_target(family, 256)) / card["data"]["scale"]
        out.append([tex.cut(white[:128], 150, rng), tex.cut(white[128:], 150, rng)])
    return np.array(out, dtype=np.float32)


def test_texture_family_decodes_above_chance_on_the_shipped_model(shipped, photo_textures):
    result = texture_sensitivity(shipped, photo_textures, list(tex.TEXTURE_FAMILIES))
    assert result["accuracy"]["z2"] > result["chance"] + 0.2, result["accuracy"]
    assert result["accuracy"]["power_spectrum"] > result["chance"] + 0.2  # second-order statistics alone
    assert result["f"].shape == (250,) and (result["eta2"] >= 0).all() and (result["eta2"] <= 1).all()
    assert result["sensitive"].any()
    best = int(np.argmax(result["eta2"]))
    fields = census_fields(result, best)
    assert fields["texture_sensitive"] and fields["texture_accuracy"] > result["chance"]


def test_texture_build_whitens_cuts_and_caches(monkeypatch, tmp_path, card):
    calls = []

    def quick_synthesis(target, iters, seed):  # stand-in: a random circular shift of the target
        calls.append(seed)
        rng = np.random.default_rng(seed)
        return np.roll(target, tuple(rng.integers(0, target.shape[0], 2)), axis=(0, 1))

    monkeypatch.setattr(tex, "synthesize", quick_synthesis)
    params = tex.TextureParams(n_synth=2, size=64, iters=1, patches_per_synth=30)
    built = tex.build_textures(params, scale=card["data"]["scale"], root=tmp_path, progress=False)
    assert built["patches"].shape == (5, 2, 30, 40, 40) and len(set(calls)) == 10
    assert abs(float(built["patches"].mean())) < 0.2 and 0.3 < float(built["patches"].std()) < 3
    again = tex.build_textures(params, scale=card["data"]["scale"], root=tmp_path, progress=False)
    assert len(calls) == 10  # loaded from the cache, not synthesised again
    np.testing.assert_allclose(again["patches"], built["patches"], rtol=1e-6)
