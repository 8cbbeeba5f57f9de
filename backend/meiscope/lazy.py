"""Names a package exports but imports only on first use (PEP 562), so that importing the package (the CLI
does, for `meiscope --help`) does not pay for torch."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_getattr(package: str, exports: dict[str, str], namespace: dict,
                 also: dict[str, str] | None = None) -> Callable[[str], object]:
    """A module `__getattr__` that imports `exports[name]` (a module relative to `package`) on first use and
    keeps the value in the package's namespace; `also[name]`, a module imported with it (for its effect)."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(exports[name], package), name)
        if also and name in also:
            import_module(also[name], package)
        namespace[name] = value
        return value

    return __getattr__
