"""open_dataset canonicalisation on quirky NetCDF files, write_netcdf, and bad files."""

from __future__ import annotations

import cftime
import dask.array as dsa
import netCDF4
import numpy as np
import pytest
import xarray as xr
from gridformer.datasets import open_dataset, write_netcdf

from gridformer import PatchTokenizer


def test_quirky_file_is_canonicalised(quirky_file):
    path, truth = quirky_file
    ds = open_dataset(path)
    assert set(ds.dims) == {"time", "level", "lat", "lon"}
    assert ds["t"].dims == ("time", "level", "lat", "lon")
    assert ds.sizes["level"] == 1  # singleton level kept by name
    assert isinstance(ds["t"].data, dsa.Array)  # lazy
    lat = ds["lat"].values
    assert np.all(np.diff(lat) > 0)
    np.testing.assert_allclose(lat, np.sort(truth["lat"]))
    assert ds["lon"].attrs["periodic"] == 1
    assert ds["lat"].attrs["units"] == "degrees_north"
    # data flipped along with latitude; land (_FillValue / missing_value) became NaN
    expected = np.where(truth["land"], np.nan, truth["data"])[:, ::-1]
    np.testing.assert_allclose(ds["t"].isel(level=0).values, expected, rtol=1e-6)
    assert int(ds["t"].isnull().sum()) == truth["land"].sum() * ds.sizes["time"]
    assert isinstance(ds["time"].values[0], cftime.Datetime360Day)


def test_minus180_lon_and_nav_lat_names(tmp_path, make_nc):
    path = tmp_path / "nemo.nc"
    make_nc(
        path,
        lat_name="nav_lat",
        lon_name="nav_lon",
        lon_start=-180.0,
        cf_units=False,
        descending_lat=False,
        calendar="noleap",
        level=False,
        fmt="NETCDF3_CLASSIC",
    )
    ds = open_dataset(path, variables="t")
    assert list(ds.data_vars) == ["t"]
    assert ds["t"].dims == ("time", "lat", "lon")
    assert ds["lon"].values[0] == -180.0
    assert ds["lon"].attrs["periodic"] == 1
    assert isinstance(ds["time"].values[0], cftime.DatetimeNoLeap)


def test_unsorted_lon_is_sorted_and_regional_not_periodic(tmp_path):
    path = tmp_path / "region.nc"
    lon = np.array([20.0, 10.0, 0.0, 350.0])  # a region across 0°E, stored west <- east
    data = np.arange(3 * 4, dtype="f4").reshape(3, 4)
    xr.Dataset(
        {"v": (("lat", "lon"), data)},
        coords={
            "lat": ("lat", [10.0, 5.0, 0.0], {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    ).to_netcdf(path)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds["lon"].values, [-10.0, 0.0, 10.0, 20.0])  # 350 -> -10
    assert ds["lon"].attrs["periodic"] == 0
    np.testing.assert_array_equal(ds["v"].values[:, 0], data[::-1, 3])  # the 350°E column


def test_cyclic_point_dropped(tmp_path):
    path = tmp_path / "cyclic.nc"
    lon = np.arange(0.0, 361.0, 90.0)  # 0, 90, 180, 270, 360 (repeated column)
    xr.Dataset(
        {"v": (("lat", "lon"), np.zeros((2, 5)))}, coords={"lat": [-45.0, 45.0], "lon": lon}
    ).to_netcdf(path)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds["lon"].values, [0.0, 90.0, 180.0, 270.0])
    assert ds["lon"].attrs["periodic"] == 1


def test_multiple_files_list_and_glob(tmp_path, make_nc):
    make_nc(tmp_path / "part_1.nc", n_time=3)
    make_nc(tmp_path / "part_2.nc", n_time=3, time_offset=3)
    by_list = open_dataset([tmp_path / "part_1.nc", tmp_path / "part_2.nc"])
    by_glob = open_dataset(str(tmp_path / "part_*.nc"))
    assert by_list.sizes["time"] == 6
    xr.testing.assert_identical(by_list.compute(), by_glob.compute())
    assert np.all(np.diff(by_glob["lat"].values) > 0)


def test_tokenize_opened_file(quirky_file):
    ds = open_dataset(quirky_file[0], variables=["t"])
    tokens, layout = PatchTokenizer(patch_size=(2, 3)).encode(ds["t"], channel_dim="level")
    assert layout.is_geographic
    assert layout.periodic == (False, True)
    assert tokens.shape == (6, 3 * 4, 6)
    assert layout.source.cell_missing is not None  # land cells remembered for decode
    assert not tokens.isnan().any()
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, layout), ds["t"].compute())


def test_write_netcdf_roundtrip_and_atomic(tmp_path, quirky_file):
    ds = open_dataset(quirky_file[0])
    out = write_netcdf(ds, tmp_path / "out" / "copy.nc")
    again = open_dataset(out)
    xr.testing.assert_allclose(again.compute(), ds.compute())
    assert again.attrs["Conventions"] == "CF-1.8"
    assert again["lon"].attrs["periodic"] == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.nc"]  # no temp file left
    da = xr.DataArray(np.ones(3), dims="x", attrs={"flag": True})
    write_netcdf(da, tmp_path / "da.nc")
    with xr.open_dataset(tmp_path / "da.nc") as back:
        assert back["data"].attrs["flag"] == 1


def test_write_netcdf_failure_leaves_nothing(tmp_path):
    bad = xr.Dataset({"v": ("x", np.array([object(), object()], dtype=object))})
    with pytest.raises(ValueError, match="unable to infer dtype on variable 'v'"):
        write_netcdf(bad, tmp_path / "bad.nc")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match=r"needs an xr\.Dataset or xr\.DataArray, not list"):
        write_netcdf([1, 2], tmp_path / "x.nc")


def test_missing_file_and_glob(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"NetCDF file\(s\) not found: .*nope\.nc"):
        open_dataset(tmp_path / "nope.nc")
    with pytest.raises(FileNotFoundError, match="no files match the pattern"):
        open_dataset(str(tmp_path / "*.nc"))


def test_not_netcdf(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("hello, not a netcdf file\n")
    with pytest.raises(ValueError, match=r"is not a NetCDF file \(it starts with b'hell'"):
        open_dataset(path)


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_truncated_file(tmp_path, make_nc, fmt):
    path = tmp_path / "full.nc"
    make_nc(path, fmt=fmt, n_time=20)
    blob = path.read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        open_dataset(cut)


def test_unknown_variable_lists_existing(quirky_file):
    with pytest.raises(
        ValueError,
        match=r"variable\(s\) \['tas'\] not in the file; it has data variables \['pr', 't'\]",
    ):
        open_dataset(quirky_file[0], variables=["tas"])


def test_curvilinear_refused(tmp_path):
    path = tmp_path / "curvi.nc"
    lat2d, lon2d = np.meshgrid(np.linspace(-10, 10, 4), np.linspace(0, 30, 5), indexing="ij")
    xr.Dataset(
        {"v": (("y", "x"), np.zeros((4, 5)))},
        coords={"nav_lat": (("y", "x"), lat2d), "nav_lon": (("y", "x"), lon2d)},
    ).to_netcdf(path)
    with pytest.raises(ValueError, match=r"curvilinear grid: latitude variable 'nav_lat' is 2-D"):
        open_dataset(path)


def test_rotated_pole_refused(tmp_path):
    path = tmp_path / "rotated.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("rlat", 3)
        nc.createDimension("rlon", 4)
        rlat = nc.createVariable("rlat", "f4", ("rlat",))
        rlat.standard_name = "grid_latitude"
        rlat[:] = [0, 1, 2]
        rlon = nc.createVariable("rlon", "f4", ("rlon",))
        rlon.standard_name = "grid_longitude"
        rlon[:] = [0, 1, 2, 3]
        pole = nc.createVariable("rotated_pole", "i4")
        pole.grid_mapping_name = "rotated_latitude_longitude"
        v = nc.createVariable("v", "f4", ("rlat", "rlon"))
        v.grid_mapping = "rotated_pole"
    with pytest.raises(ValueError, match="rotated-pole grids are not supported"):
        open_dataset(path)


def test_non_monotonic_lat_refused(tmp_path):
    path = tmp_path / "zigzag.nc"
    xr.Dataset(
        {"v": (("lat", "lon"), np.zeros((3, 2)))},
        coords={"lat": [0.0, 10.0, 5.0], "lon": [0.0, 1.0]},
    ).to_netcdf(path)
    with pytest.raises(
        ValueError,
        match=r"latitude coordinate 'lat' is not strictly monotonic \(first break at index 2: "
        r"10\.0 -> 5\.0\)",
    ):
        open_dataset(path)


def test_cf_metadata_wins_over_names(tmp_path):
    path = tmp_path / "cf.nc"
    xr.Dataset(
        {"v": (("time_counter", "rows", "cols"), np.zeros((2, 3, 4)))},
        coords={
            "rows": ("rows", [30.0, 20.0, 10.0], {"standard_name": "latitude"}),
            "cols": ("cols", [0.0, 90.0, 180.0, 270.0], {"units": "degrees_east"}),
            "time_counter": ("time_counter", [0.0, 1.0], {"units": "days since 2000-01-01"}),
        },
    ).to_netcdf(path)
    ds = open_dataset(path, chunks=None)
    assert ds["v"].dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(ds["lat"].values, [10.0, 20.0, 30.0])
    assert ds["lon"].attrs["periodic"] == 1
    assert not isinstance(ds["v"].variable._data, dsa.Array)  # chunks=None: no dask


def test_projected_y_x_left_alone(tmp_path):
    path = tmp_path / "pde.nc"
    xr.Dataset(
        {"u": (("time", "y", "x"), np.zeros((2, 3, 4)))},
        coords={"y": ("y", [0.0, 1.0, 2.0], {"units": "m"}), "x": np.arange(4.0)},
    ).to_netcdf(path)
    ds = open_dataset(path)
    assert ds["u"].dims == ("time", "y", "x")
