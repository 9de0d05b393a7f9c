"""gridformer: patch-token transformers for gridded physical data, checked against physics.

A grid of physical data (a lat/lon NetCDF field, a PDE state) is treated as an image: it is cut
into patches, each patch (or grid cell) becomes a token, and self-attention links any two places.

Public names (see docs/architecture.md §3)::

    from gridformer import PatchTokenizer, TokenLayout, GridFormer, GridFormerConfig
    from gridformer import solvers, datasets, analysis, experiments

Submodules and classes are imported on first use (PEP 562), so ``import gridformer`` and the
solvers stay light: torch is loaded only when a model-side name is touched.

``import gridformer`` also registers the xarray accessor ``da.gridformer`` / ``ds.gridformer``
(:mod:`gridformer.accessor`: ``tokenize``, ``lat_weights``, ``correlation_map``, ``plot_map``,
``solve``, ``pdebench_metrics``, ``to_the_well``, ``to_pdebench``). Registering imports xarray,
never torch; each method imports what it calls when it is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY_ATTRIBUTES = {
    "PatchTokenizer": "gridformer.tokenize",
    "TokenLayout": "gridformer.tokenize",
    "GridFormer": "gridformer.model",
    "GridFormerConfig": "gridformer.model",
}
_LAZY_SUBMODULES = {
    "solvers", "datasets", "analysis", "experiments", "training", "model", "tokenize",
}

__all__ = [
    "GridFormer",
    "GridFormerConfig",
    "PatchTokenizer",
    "TokenLayout",
    "__version__",
    "analysis",
    "datasets",
    "experiments",
    "solvers",
    "training",
]

# registers DataArray.gridformer / Dataset.gridformer (imports xarray only)
from gridformer import accessor as accessor  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from gridformer import analysis, datasets, experiments, solvers, training
    from gridformer.model import GridFormer, GridFormerConfig
    from gridformer.tokenize import PatchTokenizer, TokenLayout


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f"gridformer.{name}")
    else:
        msg = f"module 'gridformer' has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
