"""Whose attention the map shows: the class token of an index model, or a query point / box.

Resolved before training, so that a query outside the grid or a box without valid cells fails
in seconds. The query region of a gridded target is the cells of the query tokens: the
correlation map of a field target correlates the inputs with the target averaged over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.analysis import query_tokens
from gridformer.teleconnect.config import TeleconnectConfig
from gridformer.teleconnect.prep import Prepared

__all__ = ["Query", "resolve_query"]


@dataclass(frozen=True)
class Query:
    """The query of a run.

    Attributes
    ----------
    spec
        What :func:`gridformer.analysis.teleconnection_map` gets: ``"cls"`` or a point / box
        mapping by dim name.
    positions
        ``(Q,)`` key-axis positions of the query rows (0 is the class token).
    tokens
        ``(Q,)`` token indices of a point / box query (empty for the class token).
    region
        ``(lat, lon)`` bool, the cells of the query tokens (None for the class token).
    description
        Human-readable, for reports.
    """

    spec: Any
    positions: np.ndarray
    tokens: np.ndarray
    region: xr.DataArray | None
    description: str


def _in_box(coord: np.ndarray, lo: float, hi: float, *, lon: bool) -> np.ndarray:
    if not lon:
        return (coord >= min(lo, hi)) & (coord <= max(lo, hi))
    if hi - lo >= 360.0:
        return np.ones(coord.shape, dtype=bool)
    return np.mod(coord - lo, 360.0) <= np.mod(hi - lo, 360.0)


def _grid_text(target: xr.DataArray) -> str:
    lat, lon = target["lat"].values, target["lon"].values
    return (f"the grid covers lat {lat.min():g} .. {lat.max():g}, lon {lon.min():g} .. "
            f"{lon.max():g} (cell centres)")


def _check_box(config: TeleconnectConfig, target: xr.DataArray, layout: Any) -> None:
    lat0, lat1, lon0, lon1 = config.query_box
    inside = (_in_box(target["lat"].values, lat0, lat1, lon=False)[:, None]
              & _in_box(target["lon"].values, lon0, lon1, lon=True)[None, :])  # (lat, lon)
    valid = target.notnull().any("time").transpose("lat", "lon").values & inside
    box = ",".join(f"{v:g}" for v in config.query_box)
    if not valid.any():
        why = "every cell in it is NaN" if inside.any() else "it holds no cell centre"
        msg = (f"query_box={box} (--query-box) contains no valid cell of target "
               f"{target.name!r}: {why}; {_grid_text(target)}")
        raise ValueError(msg)
    try:
        query_tokens(layout, config.query_spec())
    except ValueError:
        steps = [float(np.ptp(layout.patch_coords()[d][:2])) for d in layout.spatial_dims]
        msg = (f"query_box={box} (--query-box) holds valid cells but no token centre; with "
               f"patch_size={config.patch_size} token centres lie every {steps[0]:g} degrees "
               f"in lat and {steps[1]:g} in lon: widen the box or use a point query (--query)")
        raise ValueError(msg) from None


def resolve_query(prepared: Prepared, config: TeleconnectConfig) -> Query:
    """Check the query against the target kind and the grid; find its tokens."""
    target, layout = prepared.target, prepared.layout
    if prepared.kind == "index":
        if config.has_query:
            msg = (f"target {target.name!r} is a time series (an index), which is mapped from "
                   f"the class token of an index model; --query / --query-box apply to a "
                   f"gridded (time, lat, lon) target only")
            raise ValueError(msg)
        return Query("cls", np.array([0]), np.array([], dtype=np.int64), None, "class token")
    if not config.has_query:
        msg = (f"target {target.name!r} is a gridded field: say whose attention to map with "
               f"a query point (--query LAT,LON) or box (--query-box LAT0,LAT1,LON0,LON1)")
        raise ValueError(msg)
    if config.query_box is not None:
        _check_box(config, target, layout)
    try:
        tokens = query_tokens(layout, config.query_spec())
    except ValueError as err:
        what = "query" if config.query is not None else "query_box"
        msg = f"{what} (--{what.replace('_', '-')}): {err}"
        raise ValueError(msg) from None
    indicator = torch.zeros(layout.n_tokens)
    indicator[torch.as_tensor(tokens)] = 1.0
    region = layout.to_grid(indicator, upsample=True, name="query_region") > 0.5
    description = (f"point {config.query}" if config.query is not None
                   else f"box lat {config.query_box[:2]}, lon {config.query_box[2:]}")
    return Query(config.query_spec(), tokens.copy(), tokens, region,
                 f"{description}: {len(tokens)} token(s)")
