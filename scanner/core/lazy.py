"""Lazy package faces: a folder's public names, loaded from their modules on first use.

Every ``__init__.py`` of the package is such a face (the way scikit-image's
subpackages are): it declares what the folder offers in ``__all__`` and imports
nothing until a name is used, so ``import scanner`` and ``scanner --help`` load no
numba, FFTW or OpenCV. A public name is never also the name of a submodule of the
same folder (importing the submodule would replace the name on the package).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def attach(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of the face of `package`.

    `exports` maps a module (a dotted path under `package`) to the public names it defines.
    """
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    if len(where) != sum(len(names) for names in exports.values()):
        raise ValueError(f"{package}: a public name is exported twice")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next use finds it without this function
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
