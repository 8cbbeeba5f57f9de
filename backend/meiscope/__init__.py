"""meiscope: find and explore the preferred inputs of units in a hierarchical VAE of early vision, or in any
PyTorch model.

    from meiscope import AMConfig, load_model, run

The names below are imported on first use, so that `import meiscope.cli` (and `meiscope --help`) does not pay
for importing torch.
"""

from .lazy import lazy_getattr

__version__ = "0.1.0"  # the engine records it in every run

_EXPORTS = {"AMConfig": ".engine.config", "Run": ".engine.result", "run": ".engine.loop", "TDVAE": ".model.tdvae",
            "Explorable": ".model.seam", "load_model": ".model.loader"}
__all__ = sorted(_EXPORTS)
# A Run displays itself in Jupyter through presentation/notebook.py, which registers its drawing with the engine
# when imported (engine/result.py, NOTEBOOK: the engine itself may not import presentation/). Importing it here,
# by name and only with Run or run, gives every run made through this package its face, while `meiscope --help`
# still imports neither torch nor matplotlib.
_ALSO = {"Run": ".presentation.notebook", "run": ".presentation.notebook"}
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals(), also=_ALSO)
