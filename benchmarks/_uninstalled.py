"""Import gridformer from a checkout that is not installed (``benchmarks/gpu_check.sh``).

The repository maps two top-level folders into the package (``solvers/`` ->
``gridformer.solvers``, ``datasets/`` -> ``gridformer.datasets``, see ``pyproject.toml``); an
installed copy does this through its own import hook. On a machine where the project cannot be
installed (a GPU machine without a package index), importing this module (``python -c "import
benchmarks._uninstalled"``, or ``pytest -p benchmarks._uninstalled``) adds the same mapping,
with the repository root on ``sys.path``. The hook is appended last, so an installed gridformer
still wins; it changes nothing else.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
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


install()
