"""Named configurations, each a partial AMConfig merged over the defaults.

"default" is AMConfig's own defaults: the one default configuration (engine/config.py says how it was chosen).
The others are the settings the thesis found to work per method (F2 jitter, F4 moderate gamma, F9 fixed sigma,
F11 MEI for transform+distribution, F16 one-hot start in z2); each states every regulariser it uses or leaves
off, so that it means the same whatever the defaults are.
"""

from __future__ import annotations

from copy import deepcopy

from .config import AMConfig
from .options import merge

# the regularisers off, at the thesis' learning rate: what each named preset starts from
PLAIN = {"optimizer": {"lr": 0.01}, "pre": {"jitter": 0}, "grad": {"gamma": 0.0}, "post": {"blur_sigma": 0.0}}


def plain(fields: dict) -> dict:
    """`fields` over PLAIN (a new dict: PLAIN itself is never changed)."""
    return merge(deepcopy(PLAIN), fields)


def plain_config(**fields) -> AMConfig:
    """An AMConfig with every regulariser off but those given: to measure what one option does alone."""
    return AMConfig.model_validate(plain(fields))


# the atlas is the default configuration, recorded more sparsely (250 rows: snapshots every 50 steps, the ELBO
# every 10); recording changes nothing of the optimisation
ATLAS = {"snapshot_every": 50, "elbo_every": 10}

PRESETS: dict[str, dict] = {
    "default": {},
    "pixel, unregularised": plain({"method": "pixel"}),
    "pixel, jitter + gradient filter": plain({"method": "pixel", "pre": {"jitter": 2}, "grad": {"gamma": 1.0}}),
    "distribution, fixed sigma": plain({"method": "distribution", "distribution": {"sigma": 0.1, "draws": 8},
                                        "pre": {"jitter": 2}}),
    "transform, 9x9 kernel with ELBO": plain({"method": "transform", "transform": {"kernel_size": 9},
                                              "obj": {"elbo_weight": 0.01}}),
    "transform_distribution, MEI, fixed sigma": plain({"method": "transform_distribution",
                                                       "optimizer": {"name": "mei", "lr": 0.01},
                                                       "distribution": {"sigma": 0.1, "draws": 8}}),
    "latent_z2, one-hot start": plain({"method": "latent_z2", "latent": {"init": "one_hot", "one_hot_scale": 5.0}}),
    "latent_z1": plain({"method": "latent_z1"}),
}
