"""TokenLayout geometry: bare grids, periodic offsets, distances (km on lat/lon), to_grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.tokenize import PatchTokenizer, TokenLayout, haversine_km, wrap_offsets

LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)
NEW_YORK = (40.7128, -74.0060)
LOS_ANGELES = (34.0522, -118.2437)


def law_of_cosines_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Independent great-circle formula (spherical law of cosines) with the same radius."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dl = math.radians(b[1] - a[1])
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0 * math.acos(min(1.0, max(-1.0, c)))


def test_for_grid_periodic_basics():
    layout = TokenLayout.for_grid((32, 32), patch_size=1, periodic=True)
    assert layout.n_tokens == 1024
    assert layout.spatial_dims == ("y", "x")
    assert layout.patch_grid_shape == (32, 32)
    assert layout.valid.shape == (1, 1024)
    assert layout.valid.dtype == torch.bool
    assert bool(layout.valid.all())
    off = layout.offsets()
    assert off.shape == (1024, 1024, 2)
    assert off.dtype == torch.int64
    assert off[0, 1].tolist() == [0, 1]
    assert off[0, 31].tolist() == [0, -1]  # wraps: x=31 is one cell left of x=0
    assert off[0, 16].tolist() == [0, -16]  # +L/2 maps to -L/2
    assert int(off.min()) == -16
    assert int(off.max()) == 15
    assert off is layout.offsets()  # cached
    assert layout.distances() is layout.distances()
    assert float(layout.distances()[0, 31]) == pytest.approx(1.0)


def test_offsets_key_minus_query_non_periodic():
    layout = TokenLayout.for_grid((4, 6), patch_size=1, periodic=False)
    off = layout.offsets()
    q, k = 0, 4 * 6 - 1  # (0, 0) -> (3, 5)
    assert off[q, k].tolist() == [3, 5]
    assert off[k, q].tolist() == [-3, -5]
    assert float(layout.distances()[q, k]) == pytest.approx(math.hypot(3, 5))


@pytest.mark.parametrize("period", [5, 6, 7, 8])
def test_wrap_offsets_range(period):
    delta = np.arange(-3 * period, 3 * period)
    wrapped = wrap_offsets(delta, period)
    assert wrapped.min() == -(period // 2)
    assert wrapped.max() == period - period // 2 - 1
    assert np.all((wrapped - delta) % period == 0)


def test_offsets_in_cells_with_patches_wrap():
    layout = TokenLayout.for_grid((8, 12), patch_size=(2, 3), periodic=(True, False))
    assert layout.patch_grid_shape == (4, 4)
    cells, patches = layout.offsets(), layout.offsets(in_patches=True)
    assert torch.equal(cells, patches * torch.tensor([2, 3]))
    assert set(cells[..., 0].unique().tolist()) == {-4, -2, 0, 2}  # wrapped, period 8
    assert set(cells[..., 1].unique().tolist()) == {-9, -6, -3, 0, 3, 6, 9}  # not wrapped


def test_for_grid_periodic_needing_padding_refused():
    with pytest.raises(ValueError, match="periodic but its size is not divisible"):
        TokenLayout.for_grid((10, 10), patch_size=3, periodic=True)


def test_for_grid_one_dim_and_padding():
    layout = TokenLayout.for_grid(10, patch_size=4)
    assert layout.spatial_dims == ("x",)
    assert layout.padding == ((0, 2),)
    assert layout.n_tokens == 3
    centres = layout.centers()["x"]
    np.testing.assert_allclose(centres, [1.5, 5.5, 8.5])  # last patch: mean of its real cells


@pytest.mark.parametrize(
    ("a", "b", "expected"), [(LONDON, PARIS, 343.5), (NEW_YORK, LOS_ANGELES, 3936.0)]
)
def test_haversine_city_pairs(a, b, expected):
    got = float(haversine_km(a[0], a[1], b[0], b[1]))
    assert got == pytest.approx(expected, rel=2e-3)
    assert got == pytest.approx(law_of_cosines_km(a, b), rel=1e-3)


def test_geographic_layout_distances_are_great_circle_km():
    lat = np.array([PARIS[0], LONDON[0]])
    lon = np.array([LONDON[1], PARIS[1]])
    layout = TokenLayout.for_grid(
        (2, 2), dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, periodic=False
    )
    assert layout.is_geographic
    dist = layout.distances()
    assert dist.dtype == torch.float32
    # token 2 = (lat index 1, lon index 0) = London, token 1 = (0, 1) = Paris
    assert float(dist[2, 1]) == pytest.approx(law_of_cosines_km(LONDON, PARIS), rel=1e-3)
    assert torch.allclose(dist, dist.T)


def test_global_grid_lon_wrap_distance_small():
    layout = TokenLayout.for_grid((18, 36), dims=("lat", "lon"))
    assert layout.periodic == (False, True)
    c = layout.centers()
    first, last = 9 * 36, 9 * 36 + 35  # same row near the equator, lon 5 and 355
    assert c["lon"][first] == pytest.approx(5.0)
    assert c["lon"][last] == pytest.approx(355.0)
    assert layout.offsets()[first, last].tolist() == [0, -1]
    expected = haversine_km(c["lat"][first], 5.0, c["lat"][last], 355.0)
    assert float(layout.distances()[first, last]) == pytest.approx(float(expected), rel=1e-5)
    assert float(layout.distances()[first, last]) < 1200.0


def test_periodic_euclidean_distance_min_image():
    layout = TokenLayout.for_grid((1, 10), periodic=True, coords={"x": np.arange(10) * 0.5})
    assert float(layout.distances()[0, 9]) == pytest.approx(1.0)  # one cell across the seam
    assert float(layout.distances()[0, 5]) == pytest.approx(5.0)  # half the period, either way


@pytest.mark.parametrize("spacing", [0.5, 3.0])
def test_distances_in_grid_units_whatever_the_coordinate_spacing(spacing):
    """Non-geographic distances are in cells, like offsets(), not in coordinate units."""
    coords = {"y": 100.0 + np.arange(4) * spacing, "x": np.arange(6) * spacing}
    layout = TokenLayout.for_grid((4, 6), patch_size=2, coords=coords)
    off = layout.offsets().numpy().astype(float)  # (N, N, 2) cells between patch starts
    np.testing.assert_allclose(layout.distances().numpy(), np.hypot(off[..., 0], off[..., 1]))
    assert float(layout.distances()[0, 2]) == pytest.approx(4.0)  # two patches of 2 cells
    # the centres themselves stay in coordinate units
    np.testing.assert_allclose(layout.centers()["x"][:3], np.array([0.5, 2.5, 4.5]) * spacing)


def test_to_grid_patch_and_upsample():
    da = xr.DataArray(
        np.arange(5 * 7, dtype="float32").reshape(5, 7),
        dims=("y", "x"),
        coords={"y": np.arange(5) * 2.0, "x": np.arange(7) * 1.0},
    )
    _tokens, layout = PatchTokenizer(patch_size=(2, 3)).encode(da)
    assert layout.padding == ((0, 1), (0, 2))
    values = torch.arange(layout.n_tokens, dtype=torch.float32)
    grid = layout.to_grid(values)
    assert grid.dims == ("y", "x")
    assert grid.shape == layout.patch_grid_shape
    np.testing.assert_allclose(grid["y"], [1.0, 5.0, 8.0])  # patch centres of real cells
    np.testing.assert_allclose(grid["x"], [1.0, 4.0, 6.0])
    up = layout.to_grid(values, upsample=True)
    assert up.shape == (5, 7)
    np.testing.assert_array_equal(up["y"], da["y"])
    assert float(up.isel(y=4, x=6)) == float(values[-1])
    batched = layout.to_grid(torch.zeros(3, layout.n_tokens), dims=("query",))
    assert batched.dims == ("query", "y", "x")


def test_to_grid_wrong_length():
    layout = TokenLayout.for_grid((4, 4))
    with pytest.raises(ValueError, match="N=16"):
        layout.to_grid(np.zeros(15))


def test_spacetime_layout_offsets_have_time_first():
    da = xr.DataArray(np.zeros((5, 4, 4), dtype="float32"), dims=("time", "y", "x"))
    tokens, layout = PatchTokenizer(patch_size=2, time_patch=2).encode(da)
    assert layout.n_frames == 3  # 5 steps padded to 6
    assert layout.time_padding == (0, 1)
    assert tokens.shape == (1, 3 * 4, 2 * 2 * 2)
    np.testing.assert_array_equal(layout.time_index, np.repeat(np.arange(3), 4))
    off = layout.offsets()
    assert off.shape == (12, 12, 3)
    assert off[0, 11].tolist() == [2, 2, 2]  # 2 frames later, one patch (2 cells) down/right
    assert layout.distances().shape == (12, 12)
    assert bool(layout.valid[0, -1])  # frame 2 holds one real step
    up = layout.to_grid(torch.ones(layout.n_tokens), upsample=True)
    assert up.dims == ("time", "y", "x")
    assert up.shape == (5, 4, 4)


@pytest.mark.parametrize("time_patch", [None, 2])
@pytest.mark.parametrize(
    ("dims", "periodic"), [(("y", "x"), (True, False)), (("lat", "lon"), None)]
)
def test_offsets_and_distances_match_brute_force(time_patch, dims, periodic):
    coords = {dims[0]: np.linspace(-60.0, 70.0, 6), dims[1]: np.arange(8) * 45.0}
    da = xr.DataArray(np.zeros((3, 6, 8), dtype="float32"), dims=("time", *dims), coords=coords)
    _, layout = PatchTokenizer(patch_size=(2, 2), time_patch=time_patch).encode(
        da, periodic=periodic
    )
    c = layout.centers()
    pos = np.asarray(layout.patch_index) * np.array(layout.patch_size)  # (N, 2) in cells
    expected = pos[None, :, :] - pos[:, None, :]
    for d, n_cells in enumerate(layout.padded_shape):
        if layout.periodic[d]:
            expected[..., d] = wrap_offsets(expected[..., d], n_cells)
    if layout.is_spacetime:
        t = layout.time_index
        expected = np.concatenate([(t[None, :] - t[:, None])[..., None], expected], axis=-1)
    np.testing.assert_array_equal(layout.offsets().numpy(), expected)
    if layout.is_geographic:
        lat, lon = c["lat"], c["lon"]
        ref = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    else:  # grid units: the cells between patch centres, wrapped on the periodic y (6 cells)
        cy, cx = (np.asarray(layout.patch_index) * 2 + 0.5).T  # centre cell index of each token
        dy = cy[None, :] - cy[:, None]
        dy = np.mod(dy + 3.0, 6.0) - 3.0
        ref = np.hypot(dy, cx[None, :] - cx[:, None])
    np.testing.assert_allclose(layout.distances().numpy(), ref, rtol=1e-5, atol=1e-3)


def test_layout_is_frozen_and_picklable():
    import dataclasses
    import pickle

    da = xr.DataArray(np.arange(12.0, dtype="float32").reshape(3, 4), dims=("y", "x"))
    tokens, layout = PatchTokenizer(2).encode(da)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.patch_size = (1, 1)
    again = pickle.loads(pickle.dumps(layout))
    assert again.n_tokens == layout.n_tokens
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, again), da)


def regional(lon: np.ndarray) -> xr.DataArray:
    """A (lat, lon) DataArray made directly (no open_dataset) on a 40°-wide region."""
    return xr.DataArray(
        np.zeros((4, lon.size), dtype="float32"),
        dims=("lat", "lon"),
        coords={"lat": [10.0, 15.0, 20.0, 25.0], "lon": lon},
    )


RUN_EAST = 325.5 + 5.0 * np.arange(8)  # 325.5 ... 360.5


@pytest.mark.parametrize(
    "lon",
    [
        RUN_EAST,
        RUN_EAST - 360.0,  # -34.5 ... 0.5
        np.mod(RUN_EAST, 360.0),  # stored as one run with the jump: 325.5 ... 355.5, 0.5
        np.mod(RUN_EAST, 360.0)[::-1],  # east to west
    ],
    ids=["325-360", "minus34-0", "run-with-jump", "reversed"],
)
def test_regional_lon_across_0_has_right_centres_and_distances(lon):
    da = regional(lon)
    _, layout = PatchTokenizer(2).encode(da)
    assert layout.periodic == (False, False)  # regional: never periodic
    centres = np.mod(layout.patch_coords()["lon"], 360.0)
    expected = np.array([328.0, 338.0, 348.0, 358.0])
    np.testing.assert_allclose(np.sort(centres), expected)  # no patch mixes 0.5 with 325.5
    c = layout.centers()
    ref = haversine_km(c["lat"][:, None], c["lon"][:, None], c["lat"][None, :], c["lon"][None, :])
    np.testing.assert_allclose(layout.distances().numpy(), ref, rtol=1e-5, atol=1e-2)
    assert float(layout.distances().max()) < 4500.0  # the region is ~40° x 20° wide
    up = layout.to_grid(torch.zeros(layout.n_tokens), upsample=True)
    np.testing.assert_array_equal(up["lon"].values, lon)  # aligns with the data as given


def test_regional_lon_sorted_by_value_is_refused_with_the_roll_that_fixes_it():
    lon = np.sort(np.mod(RUN_EAST, 360.0))  # [0.5, 325.5, ..., 355.5]
    da = regional(lon)
    with pytest.raises(
        ValueError,
        match=r"longitude 'lon' is not one continuous run: it jumps from 0\.5 to 325\.5 "
        r"\(index 0 -> 1\).*data\.roll\(lon=-1, roll_coords=True\)",
    ):
        PatchTokenizer(2).encode(da)
    _, layout = PatchTokenizer(2).encode(da.roll(lon=-1, roll_coords=True))  # the advice works
    np.testing.assert_allclose(layout.coords["lon"], RUN_EAST)


def test_bare_geographic_layout_unwraps_lon_across_180():
    lon = np.array([170.0, 175.0, -180.0, -175.0])
    layout = TokenLayout.for_grid((2, 4), dims=("lat", "lon"), coords={"lat": [0.0, 5.0],
                                                                         "lon": lon})
    np.testing.assert_array_equal(layout.coords["lon"], [170.0, 175.0, 180.0, 185.0])
    assert layout.periodic == (False, False)  # 4 cells of 5° are not global
    assert layout.offsets()[0, 3].tolist() == [0, 3]
    assert float(layout.distances()[0, 3]) == pytest.approx(
        float(haversine_km(0.0, 170.0, 0.0, -175.0)), rel=1e-5
    )


def test_layout_coords_checked_for_monotonic():
    with pytest.raises(
        ValueError, match=r"coordinate 'x' is not strictly monotonic \(first break at index 2"
    ):
        TokenLayout.for_grid(4, coords={"x": [0.0, 2.0, 1.0, 3.0]})
