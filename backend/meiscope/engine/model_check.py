"""Does a config fit the loaded model? Its layers, units, statistics and method, and the ELBO weight only where
the model has an ELBO. One message per problem, naming the field and what the model allows."""

from __future__ import annotations

from ..model.seam import Explorable
from .config import AMConfig
from .schedules import is_zero


class ConfigMismatch(ValueError):
    """A config that is valid in itself but asks the loaded model for something it does not have;
    str(exc) is "field: message", like a ConfigError."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_config(config: AMConfig, model: Explorable) -> None:
    """Raise ConfigMismatch when `config` does not fit `model`."""
    where = "layer" if config.objective is None else "objective"
    for objective in config.objectives:
        for term in objective.terms:
            if term.layer not in model.layers:
                raise ConfigMismatch(where, f"must be one of {', '.join(model.layers)} for {model.name}, "
                                            f"got {term.layer!r}")
            layer = model.layers[term.layer]
            if term.stat not in layer.stats:
                raise ConfigMismatch("stat" if config.objective is None else "objective",
                                     f"must be one of {', '.join(layer.stats)} for layer {layer.name}, got {term.stat!r}")
    bad = [t.unit for o in config.objectives for t in o.terms if t.unit >= model.layers[t.layer].units]
    if bad:
        layer = model.layers[config.objectives[0].main.layer]
        raise ConfigMismatch("unit" if config.objective is None else "objective",
                             f"must lie in 0..{layer.units - 1} for layer {layer.name}, got {bad[:10]}")
    if config.method not in model.methods():
        raise ConfigMismatch("method", f"must be one of {', '.join(model.methods())} for {model.name}, "
                                       f"got {config.method!r}")
    if config.method == "latent_z2" and config.latent.init == "one_hot" and config.objectives[0].main.layer != "z2":
        raise ConfigMismatch("latent.init", "one_hot for latent_z2 needs a z2 target (use prior_mean or prior_sample)")
    if not model.has_elbo and not is_zero(config.obj.elbo_weight):
        raise ConfigMismatch("obj.elbo_weight", f"must be 0: {model.name} has no ELBO")
