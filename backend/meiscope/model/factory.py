"""Load any model by factory: "package.module:factory" or "path/to/file.py:factory".

The factory is called with no arguments and returns an Explorable (usually a HookedModel); the attribute
may also be an Explorable itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from torch import nn

from .seam import Explorable

WRAP_HINT = ("wrap it in meiscope.model.hooked.HookedModel with named layers, e.g. "
             "HookedModel(net, layers=['fc2'], input_shape=(1, 28, 28), input_range=(0, 1), centred=False)")


def is_factory_spec(s: str) -> bool:
    """Whether `s` names a factory ("module:attr") rather than a checkpoint path."""
    return ":" in s and not Path(s).exists()


def _import(target: str, spec: str):
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no file {target}")
            # a name unique to the file, registered so that dataclasses and pickling inside it work
            name = f"meiscope_factory_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
            if name in sys.modules:
                return sys.modules[name]
            loader = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            try:
                loader.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        return importlib.import_module(target)
    except Exception as exc:
        raise ValueError(f"cannot import {target!r} for model {spec!r}: {type(exc).__name__}: {exc}") from exc


def load_factory(spec: str) -> Explorable:
    """The Explorable that the factory named by `spec` ("package.module:factory") returns, in eval mode."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(f"a model factory is 'package.module:factory' or 'file.py:factory', got {spec!r}")
    obj = _import(target, spec)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{target!r} has no attribute {attr!r} (model {spec!r})")
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, nn.Module):
        try:
            obj = obj()
        except Exception as exc:
            raise ValueError(f"factory {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, Explorable):
        return obj.eval()
    if isinstance(obj, nn.Module):
        raise ValueError(f"factory {spec!r} returned a plain torch module ({type(obj).__name__}): {WRAP_HINT}")
    raise ValueError(f"factory {spec!r} returned {type(obj).__name__}, not an Explorable model: {WRAP_HINT}")
