"""Import gridformer from a checkout that is not installed (``benchmarks/gpu_check.sh``).

The repository maps two top-level folders into the package (``solvers/`` ->
``gridformer.solvers``, ``datasets/`` -> ``gridformer.datasets``, see ``pyproject.toml``); an
installed copy does this through its own import hook. On a machine where the project cannot be
installed (a GPU machine without a package index), importing this module (``python -c "import
benchmarks._uninstalled"``, or ``pytest -p benchmarks._uninstalled``) adds the same mapping,
with the repository root on ``sys.path``. The hook is appended last, so an installed gridformer
still wins; it changes nothing else. :func:`stand_ins_for_missing` lets gridformer import on an
image without its climate/HDF5 packages, for code that does not use them.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"gridformer.solvers": REPO / "solvers", "gridformer.datasets": REPO / "datasets"}


class RepositoryLayoutFinder(importlib.abc.MetaPathFinder):
    """Finds ``gridformer.solvers`` and ``gridformer.datasets`` in the repository's folders."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        folder = FOLDERS.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def install() -> None:
    """Put the repository root on ``sys.path`` and the finder last on ``sys.meta_path``."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if not any(isinstance(f, RepositoryLayoutFinder) for f in sys.meta_path):
        sys.meta_path.append(RepositoryLayoutFinder())


#: Packages gridformer imports at module level for its climate and HDF5 data code only.
STAND_INS = ("cf_xarray", "dask", "h5py")


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name, "empty stand-in (benchmarks/_uninstalled)")
        module.__path__ = []  # a package: ``import dask.array`` works too
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _StandInFinder(importlib.abc.MetaPathFinder):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        if fullname.split(".")[0] not in self.names:
            return None
        return ModuleSpec(fullname, _StandInLoader(), is_package=True)


@contextmanager
def stand_ins_for_missing(names: Sequence[str] = STAND_INS) -> Iterator[list[str]]:
    """Empty stand-ins for the packages of ``names`` that are not installed, only inside the
    ``with`` block; yields the names stood in for."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    finder = _StandInFinder(missing)
    if missing:
        sys.meta_path.append(finder)
    try:
        yield missing
    finally:
        if missing:
            sys.meta_path.remove(finder)
            for name in [m for m in sys.modules if m.split(".")[0] in finder.names]:
                del sys.modules[name]


install()
