"""Real-data grids: regional longitudes across 0°/180°, unstructured meshes, CF auxiliaries."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr
from gridformer.datasets import open_dataset

from gridformer import PatchTokenizer
from gridformer.tokenize import haversine_km

LAT = np.array([10.0, 15.0, 20.0, 25.0])


def write_region(path, lon: np.ndarray) -> None:
    """A (lat, lon) file whose every cell holds its own longitude modulo 360 (the truth)."""
    values = np.broadcast_to(np.mod(lon, 360.0), (LAT.size, lon.size)).copy()
    xr.Dataset(
        {"v": (("lat", "lon"), values, {"units": "degrees_east"})},
        coords={
            "lat": ("lat", LAT, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    ).to_netcdf(path)


ACROSS_0 = np.mod(325.5 + 5.0 * np.arange(8), 360.0)  # 325.5 ... 355.5, 0.5 (0..360 convention)
ACROSS_0_EAST = 325.5 + 5.0 * np.arange(8)  # expected 325.5 ... 360.5
ACROSS_0_WEST = ACROSS_0_EAST - 360.0  # expected -34.5 ... 0.5 for files in -180..180
ACROSS_180 = np.mod(160.0 + 5.0 * np.arange(8) + 180.0, 360.0) - 180.0  # 160..175, -180..-165
SHUFFLE = np.array([3, 7, 0, 5, 1, 6, 2, 4])


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (np.sort(ACROSS_0), ACROSS_0_EAST),  # sorted by value: [0.5, 325.5, ..., 355.5]
        (ACROSS_0, ACROSS_0_EAST),  # stored as one run, with the jump back to 0.5
        (ACROSS_0[SHUFFLE], ACROSS_0_EAST),
        (ACROSS_0_WEST, ACROSS_0_WEST),  # -180..180 convention, already one run
        (ACROSS_0_WEST[::-1], ACROSS_0_WEST),  # east to west
        (np.sort(ACROSS_180), 160.0 + 5.0 * np.arange(8)),  # [-180, ..., -165, 160, ..., 175]
        (ACROSS_180[SHUFFLE], 160.0 + 5.0 * np.arange(8)),
        (np.mod(ACROSS_180, 360.0), 160.0 + 5.0 * np.arange(8)),  # 0..360: 160 ... 195
    ],
    ids=[
        "0E-sorted", "0E-run", "0E-shuffled", "0E-minus180", "0E-reversed", "180E-sorted",
        "180E-shuffled", "180E-0to360",
    ],
)
def test_regional_lon_across_a_meridian_comes_out_in_one_run(tmp_path, stored, expected):
    path = tmp_path / "region.nc"
    write_region(path, stored)
    ds = open_dataset(path)
    np.testing.assert_allclose(ds["lon"].values, expected)
    assert ds["lon"].attrs["periodic"] == 0  # periodic is for global grids only
    # the data columns moved with their coordinates
    np.testing.assert_allclose(ds["v"].values, np.broadcast_to(np.mod(expected, 360.0), (4, 8)))

    tokens, layout = PatchTokenizer(2).encode(ds["v"])
    assert layout.periodic == (False, False)
    centres = layout.patch_coords()
    np.testing.assert_allclose(np.diff(centres["lon"]), 10.0)  # 2 cells of 5° per patch
    # tokens 0 and 3 (one patch row, first and last patch) are 30° of longitude apart
    lat0, lon0, lon3 = centres["lat"][0], centres["lon"][0], centres["lon"][3]
    dist = float(layout.distances()[0, 3])
    assert dist == pytest.approx(float(haversine_km(lat0, lon0, lat0, lon3)), rel=1e-5)
    assert 3000.0 < dist < 3300.0  # 30° at 12.5°N, not half the globe
    assert layout.offsets()[0, 3].tolist() == [0, 6]
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, layout), ds["v"].compute())


def test_global_lon_stored_rolled_is_sorted_and_periodic(tmp_path):
    path = tmp_path / "global.nc"
    lon = np.roll(np.arange(0.0, 360.0, 30.0), 6)  # 180 ... 330, 0 ... 150
    write_region(path, lon)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds["lon"].values, np.arange(0.0, 360.0, 30.0))
    assert ds["lon"].attrs["periodic"] == 1
    np.testing.assert_array_equal(ds["v"].values[0], ds["lon"].values)


def test_longitudes_equal_modulo_360_refused(tmp_path):
    path = tmp_path / "twice.nc"
    write_region(path, np.array([-10.0, 0.0, 10.0, 350.0]))
    with pytest.raises(
        ValueError, match=r"longitudes -10\.0 \(index 0\) and 350\.0 \(index 3\) are the same place"
    ):
        open_dataset(path)


def write_ugrid(path, *, named: bool) -> None:
    """A UGRID mesh: node coordinates share one node dim; with CF attrs when ``named``."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("nMesh2_node", 5)
        mesh = nc.createVariable("Mesh2", "i4")
        mesh.cf_role = "mesh_topology"
        mesh.topology_dimension = 2
        mesh.node_coordinates = "Mesh2_node_x Mesh2_node_y"
        for axis, name in (("x", "longitude"), ("y", "latitude")):
            var = nc.createVariable(f"Mesh2_node_{axis}", "f8", ("nMesh2_node",))
            if named:
                var.standard_name = name
                var.units = "degrees_east" if axis == "x" else "degrees_north"
            var[:] = np.arange(5.0)
        data = nc.createVariable("v", "f8", ("nMesh2_node",))
        data.mesh = "Mesh2"
        data.location = "node"
        data[:] = 1.0


def test_ugrid_mesh_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "ugrid.nc"
    write_ugrid(path, named=True)
    with pytest.raises(
        ValueError,
        match=r"unstructured grid: latitude 'Mesh2_node_y' and longitude 'Mesh2_node_x' share "
        r"the dim 'nMesh2_node' .* Regrid to a regular lat/lon grid first",
    ):
        open_dataset(path)
    anonymous = tmp_path / "ugrid_no_attrs.nc"
    write_ugrid(anonymous, named=False)
    with pytest.raises(
        ValueError, match=r"unstructured grid: \['Mesh2'\] is a UGRID mesh topology"
    ):
        open_dataset(anonymous)


def test_icon_like_cells_refused(tmp_path):
    path = tmp_path / "icon.nc"
    xr.Dataset(
        {"t": (("time", "ncells"), np.zeros((2, 6)), {"coordinates": "clat clon"})},
        coords={
            "clat": ("ncells", np.linspace(-30, 30, 6), {"standard_name": "latitude"}),
            "clon": ("ncells", np.linspace(0, 50, 6), {"standard_name": "longitude"}),
        },
    ).to_netcdf(path)
    with pytest.raises(
        ValueError,
        match=r"unstructured grid: latitude 'clat' and longitude 'clon' share the dim 'ncells'",
    ):
        open_dataset(path)


def cf_dataset() -> xr.Dataset:
    """t and pr on (time, lat, lon) with the auxiliary variables CF files carry, as data vars."""
    rng = np.random.default_rng(0)
    shape = (2, 3, 4)
    return xr.Dataset(
        {
            "t": (
                ("time", "lat", "lon"),
                rng.standard_normal(shape),
                {
                    "grid_mapping": "crs",
                    "cell_measures": "area: cell_area",
                    "ancillary_variables": "t_err",
                },
            ),
            "t_err": (("time", "lat", "lon"), rng.random(shape), {"units": "K"}),
            "pr": (("time", "lat", "lon"), rng.random(shape)),
            "lat_bnds": (("lat", "nv"), np.array([[-45.0, -15], [-15, 15], [15, 45]])),
            "lon_bnds": (("lon", "nv"), np.array([[0.0, 90], [90, 180], [180, 270], [270, 360]])),
            "time_bnds": (("time", "nv"), np.array([[0.0, 1.0], [1.0, 2.0]])),
            "cell_area": (("lat", "lon"), np.ones((3, 4)), {"units": "m2"}),
            "crs": ((), np.int32(0), {"grid_mapping_name": "latitude_longitude"}),
        },
        coords={
            "time": ("time", [0.5, 1.5], {"bounds": "time_bnds", "units": "days since 2000-01-01"}),
            "lat": ("lat", [-30.0, 0.0, 30.0], {"units": "degrees_north", "bounds": "lat_bnds"}),
            "lon": ("lon", [45.0, 135.0, 225.0, 315.0], {"units": "degrees_east",
                                                          "bounds": "lon_bnds"}),
        },
    )


def test_open_dataset_keeps_cf_auxiliary_variables_out_of_the_data(tmp_path):
    path = tmp_path / "cf.nc"
    cf_dataset().to_netcdf(path)
    ds = open_dataset(path)
    assert sorted(ds.data_vars) == ["pr", "t", "t_err"]  # ancillary data stay data
    assert {"lat_bnds", "lon_bnds", "time_bnds", "cell_area", "crs"} <= set(ds.coords)
    tokens, layout = PatchTokenizer(1).encode(ds)  # the whole Dataset, as users call it
    assert tokens.shape == (2, 12, 3)  # three variables, one cell per token
    assert layout.periodic == (False, True)
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, layout), ds.compute())


def test_tokenizer_skips_cf_auxiliary_variables_and_restores_them():
    ds = cf_dataset()  # as plain xarray.open_dataset gives it: bounds etc. as data variables
    tokens, layout = PatchTokenizer(2).encode(ds)
    assert set(layout.source.auxiliary) == {"lat_bnds", "lon_bnds", "time_bnds", "cell_area", "crs"}
    assert layout.source.variables == ("t", "t_err", "pr")
    assert tokens.shape == (2, 4, 3 * 4)  # (time, 2 x 2 patches, 3 variables x 4 cells)
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, layout), ds)
