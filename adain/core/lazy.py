"""Package attributes imported on first use (PEP 562), so that importing a light submodule
(``adain.core.options``, ``adain.core.errors``) does not import torch through the package
``__init__``; and old module paths kept working, with a warning, after a module moved."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.machinery import ModuleSpec
from types import ModuleType


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``name`` from the submodule ``exports[name]`` of ``package``."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    return __getattr__


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``package.old`` as the module now at ``package.new``, warning once per import."""

    def __init__(self, package: str, moves: Mapping[str, str]):
        self.moves = {f"{package}.{old}": f"{package}.{new}" for old, new in moves.items()}

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.moves:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        new = self.moves[spec.name]
        warnings.warn(f"{spec.name} has moved to {new}; the old name goes in the next release", DeprecationWarning, stacklevel=2)
        module = import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is the one at its new place, already imported."""


def moved_modules(package: str, moves: Mapping[str, str]) -> None:
    """Let ``import package.old`` (a key of ``moves``) give the module ``package.new`` (its value)."""
    sys.meta_path.append(_Moved(package, moves))
