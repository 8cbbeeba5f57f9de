"""Named configurations: the atlas default and, per method, the settings the thesis found to work
(the thesis' findings: F2 jitter, F4 moderate gamma, F9 fixed sigma, F11 MEI for transform+distribution,
F16 one-hot start in z2). Each is a partial AMConfig, merged over the defaults."""

from __future__ import annotations

ATLAS = {"steps": 200, "pre": {"jitter": 2}, "grad": {"gamma": 1.0}, "snapshot_every": 50, "elbo_every": 10}

PRESETS: dict[str, dict] = {
    "pixel, jitter + gradient filter": {"method": "pixel", "pre": {"jitter": 2}, "grad": {"gamma": 1.0}},
    "pixel, unregularised": {"method": "pixel"},
    "distribution, fixed sigma": {"method": "distribution", "distribution": {"sigma": 0.1, "draws": 8},
                                  "pre": {"jitter": 2}},
    "transform, 9x9 kernel with ELBO": {"method": "transform", "transform": {"kernel_size": 9},
                                        "obj": {"elbo_weight": 0.01}},
    "transform_distribution, MEI, fixed sigma": {"method": "transform_distribution",
                                                 "optimizer": {"name": "mei", "lr": 0.01},
                                                 "distribution": {"sigma": 0.1, "draws": 8}},
    "latent_z2, one-hot start": {"method": "latent_z2", "latent": {"init": "one_hot", "one_hot_scale": 5.0}},
    "latent_z1": {"method": "latent_z1", "optimizer": {"lr": 0.01}},
}
