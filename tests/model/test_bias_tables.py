"""Position tables over the token grid equal the layout's pairwise offsets and distances.

The references are ``TokenLayout.distances()`` (great-circle km / grid units) and
``relative_index(layout.offsets(), ...)``, the dense geometry; every table mode (precomputed
table, per-axis haversine / Euclidean parts) and every access (rows by gather, blocks by
strided view) must reproduce them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.model.bias_tables import bias_geometry, token_blocks
from gridformer.model.position import relative_index
from gridformer.tokenize import PatchTokenizer, TokenLayout
from gridformer.tokenize.geometry import haversine_km

M = 3


def _space_time() -> TokenLayout:
    da = xr.DataArray(np.zeros((1, 3, 4, 6)), dims=("sample", "time", "y", "x"))
    return PatchTokenizer(patch_size=2, time_patch=1).encode(da)[1]


LAYOUTS = {
    "global-lat-lon": lambda: TokenLayout.for_grid((6, 8), patch_size=2, dims=("lat", "lon")),
    # regional across the 0° meridian, lon padded (3 cells per patch over 8): uneven centres
    "regional-padded": lambda: TokenLayout.for_grid(
        (7, 8), patch_size=(2, 3), dims=("lat", "lon"),
        coords={"lat": np.linspace(-30, 30, 7),
                "lon": np.array([350, 355, 0, 5, 10, 15, 20, 25.0])}),
    "periodic-y-x": lambda: TokenLayout.for_grid((8, 12), patch_size=2, periodic=True),
    "padded-y-x": lambda: TokenLayout.for_grid((7, 10), patch_size=(2, 3), periodic=False),
    "1d": lambda: TokenLayout.for_grid(12, patch_size=1, periodic=True),
    "space-time": _space_time,
}


def _dense_columns(layout: TokenLayout) -> torch.Tensor:
    return relative_index(layout.offsets(), tuple(layout.patch_size), M)


@pytest.mark.parametrize("limit", [1 << 24, 1], ids=["table", "per-axis"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_rows_and_blocks_reproduce_the_dense_geometry(name, limit):
    layout = LAYOUTS[name]()
    geo = bias_geometry(layout, max_offset=M, distance=True, table_limit=limit)
    n = layout.n_tokens
    expected_formula = "table" if limit > 1 else (
        "haversine" if layout.is_geographic else "euclid")
    assert geo.distance.formula == expected_formula
    tokens = torch.arange(n)
    distance = geo.distance.evaluate([p.rows(tokens) for p in geo.distance.parts])[0]
    tol = 5e-3 if geo.distance.formula == "haversine" else 1e-5  # km (float32 haversine)
    torch.testing.assert_close(distance, layout.distances(), atol=tol, rtol=1e-6)
    assert torch.equal(geo.columns.rows(tokens)[0], _dense_columns(layout))

    seen = torch.zeros(n, dtype=torch.int64)
    for start, shape, first in token_blocks(geo.grid, 5):
        rows = n - 1 - (first + torch.arange(math.prod(shape)))  # the block's tokens
        seen[rows] += 1
        view = geo.distance.evaluate([p.block(start, shape) for p in geo.distance.parts])
        torch.testing.assert_close(view.reshape(len(rows), n), distance[rows])
        block_cols = geo.columns.block(start, shape).reshape(len(rows), n)
        assert torch.equal(block_cols, _dense_columns(layout)[rows])
    assert torch.equal(seen, torch.ones(n, dtype=torch.int64))  # every token in one block


def test_great_circle_rows_match_haversine_between_token_centres():
    """An independent reference: haversine of the tokens' centre coordinates."""
    layout = LAYOUTS["regional-padded"]()
    geo = bias_geometry(layout, max_offset=None, distance=True)
    centres = layout.centers()
    tokens = torch.tensor([0, 5, layout.n_tokens - 1])
    rows = geo.distance.evaluate([p.rows(tokens) for p in geo.distance.parts])[0].double()
    lat, lon = centres["lat"], centres["lon"]
    expected = haversine_km(lat[tokens, None], lon[tokens, None], lat[None], lon[None])
    np.testing.assert_allclose(rows.numpy(), expected, rtol=1e-6, atol=1e-3)


def test_uniform_longitude_is_stored_by_offset_and_latitude_by_pair():
    """The table of a global grid grows as g_lat² (2 g_lon - 1), not N²."""
    layout = TokenLayout.for_grid((90, 180), patch_size=2, dims=("lat", "lon"))  # 45 x 90
    geo = bias_geometry(layout, max_offset=M, distance=True)
    (table,) = geo.distance.parts
    assert table.kinds == ("pair", "offset")
    assert table.values.shape == (1, 45 * 45 * (2 * 90 - 1))
    assert geo.columns.values.shape == (1, (2 * 45 - 1) * (2 * 90 - 1))


def test_blocks_keep_whole_rows_and_cover_the_reversed_order():
    blocks = list(token_blocks((4, 6), 13))
    assert [b[1] for b in blocks] == [(2, 6), (2, 6)]  # two whole rows per block
    assert [b[2] for b in blocks] == [0, 12]
    small = list(token_blocks((2, 3, 4), 3))  # rows of 4 do not fit: split the last axis
    assert small[0] == ((0, 0, 0), (1, 1, 3), 0)
    assert small[1] == ((0, 0, 3), (1, 1, 1), 3)
    assert sum(math.prod(s) for _, s, _ in small) == 24
