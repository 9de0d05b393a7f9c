"""Patch tokenizers: grids (xarray, NumPy, torch) into token sequences ``(B, N, D)`` and back.

Public API::

    from gridformer.tokenize import PatchTokenizer, TokenLayout

    tokens, layout = PatchTokenizer(patch_size=4).encode(data)   # (B, N, D), the data's float dtype
    data_again = PatchTokenizer.decode(tokens, layout)            # exact inverse, bit for bit
    layout.offsets()    # (N, N, ndim) int64, key minus query, in grid cells, periodic wrap
    layout.distances()  # (N, N) float32, great-circle km on lat/lon, grid cells otherwise
    layout.to_grid(values)  # per-token values (..., N) -> xr.DataArray on the patch grid

A layout for a bare grid without data (for models and tests)::

    layout = TokenLayout.for_grid((32, 32), patch_size=1, periodic=True)       # dims ("y", "x")
    layout = TokenLayout.for_grid((18, 36), patch_size=2, dims=("lat", "lon"))  # global, km

Geometry helpers (pure NumPy functions, in :mod:`gridformer.tokenize.geometry`):
:func:`haversine_km`, :func:`wrap_offsets`, :func:`is_global_lon`, :data:`EARTH_RADIUS_KM`
(and there: ``global_grid``, ``unwrap_lon``, ``contiguous_lon`` for longitude bookkeeping).

``PatchTokenizer`` and ``TokenLayout`` are imported on first use (PEP 562), so the NumPy-only
geometry helpers can be used without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gridformer.tokenize.geometry import EARTH_RADIUS_KM, haversine_km, is_global_lon, wrap_offsets

if TYPE_CHECKING:  # pragma: no cover
    from gridformer.tokenize.layout import TokenLayout
    from gridformer.tokenize.tokenizer import PatchTokenizer

__all__ = [
    "EARTH_RADIUS_KM",
    "PatchTokenizer",
    "TokenLayout",
    "haversine_km",
    "is_global_lon",
    "wrap_offsets",
]

_LAZY = {
    "PatchTokenizer": "gridformer.tokenize.tokenizer",
    "TokenLayout": "gridformer.tokenize.layout",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'gridformer.tokenize' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
