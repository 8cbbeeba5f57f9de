"""meiscope: find and explore the preferred inputs of units in a hierarchical VAE of early vision, or in any
PyTorch model.

    from meiscope import AMConfig, load_model, run

The names below are imported on first use, so that `import meiscope.cli` (and `meiscope --help`) does not pay
for importing torch.
"""

from importlib import import_module

__version__ = "0.1.0"  # the engine records it in every run

_EXPORTS = {"AMConfig": ".engine.config", "Run": ".engine.result", "run": ".engine.loop", "TDVAE": ".model.tdvae",
            "Explorable": ".model.seam", "load_model": ".model.loader"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
