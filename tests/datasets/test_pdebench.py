"""PDEBench's HDF5 layouts: files PDEBench's loaders can read, files made the way its generators
make them, laziness and errors. PDEBench itself is not installable here (Python < 3.11, torch
1.13), so ``read_like_pdebench_*`` read files with h5py by the rules its loaders follow: arrays
``tensor`` (sample, time, x) with ``x-coordinate``; ``.h5`` files with one group per sample
holding ``data`` (time, x, y, channel) and ``grid/x``, ``grid/y``, ``grid/t``."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from gridformer import datasets, solvers

F32 = {"rtol": 1e-6, "atol": 1e-6}  # values pass through float32


def read_like_pdebench_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sample, x, time, 1) and the x grid, as PDEBench's single-file loader lays them out."""
    with h5py.File(path, "r") as f:
        data = np.array(f["tensor"], dtype=np.float32)  # (sample, time, x)
        grid = np.array(f["x-coordinate"], dtype=np.float32)
    return np.moveaxis(data, 1, 2)[..., None], grid


def read_like_pdebench_samples(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per sample (in sorted group order): data (x, y, time, channel) and the x, y grids."""
    out = []
    with h5py.File(path, "r") as f:
        for key in sorted(f.keys()):
            data = np.array(f[key]["data"], dtype=np.float32)  # (time, x, y, channel)
            out.append((np.moveaxis(data, 0, 2), np.array(f[key]["grid"]["x"]),
                        np.array(f[key]["grid"]["y"])))
    return out


@pytest.fixture(scope="module")
def advection() -> xr.Dataset:
    rng = np.random.default_rng(2)
    x = np.arange(32) / 32
    u0 = xr.DataArray(np.sin(2 * np.pi * (x[None] + rng.random((3, 1)))), dims=("sample", "x"),
                      coords={"x": x})
    return solvers.solve("advection", u0, steps=6, velocity=1.0, save_every=2)


@pytest.fixture(scope="module")
def gray_scott() -> xr.Dataset:
    rng = np.random.default_rng(3)
    shape = (2, 6, 10)  # (sample, y, x): x and y differ so a swapped axis shows
    coords = {"y": np.arange(6) * 1.0, "x": np.arange(10) * 0.5}
    u0 = xr.Dataset({n: (("sample", "y", "x"), rng.random(shape)) for n in ("u", "v")},
                    coords=coords)
    return solvers.solve("gray_scott", u0, steps=4, dt=0.1, diffusivity_u=0.16, diffusivity_v=0.08,
                         feed=0.035, kill=0.065)


def test_1d_arrays_are_what_pdebench_reads(advection, tmp_path):
    path = datasets.write_pdebench(advection, tmp_path / "1D_Advection.hdf5")
    with h5py.File(path) as f:
        assert sorted(f.keys()) == ["t-coordinate", "tensor", "x-coordinate"]
        assert f["tensor"].shape == (3, 4, 32)
        assert f["tensor"].dtype == np.float32
    data, grid = read_like_pdebench_arrays(path)
    expected = advection["u"].transpose("sample", "x", "time").values[..., None]
    np.testing.assert_allclose(data, expected, **F32)
    np.testing.assert_allclose(grid, advection["x"].values, **F32)


def test_1d_round_trip(advection, tmp_path):
    ds = datasets.open_pdebench(datasets.write_pdebench(advection, tmp_path / "a.hdf5"))
    assert ds["tensor"].dims == ("sample", "time", "x")
    assert ds.attrs["pdebench_layout"] == "arrays"
    np.testing.assert_allclose(ds["tensor"].values, advection["u"].transpose("sample", ...),
                               **F32)
    np.testing.assert_allclose(ds["time"].values, advection["time"].values, **F32)
    assert ds.attrs["velocity"] == advection.attrs["velocity"]


def test_2d_samples_are_what_pdebench_reads(gray_scott, tmp_path):
    path = datasets.write_pdebench(gray_scott, tmp_path / "2D_gray_scott.h5")
    samples = read_like_pdebench_samples(path)
    assert len(samples) == 2
    with h5py.File(path) as f:
        assert sorted(f.keys()) == ["0000", "0001"]
        assert f["0001/data"].shape == (5, 10, 6, 2)  # (time, x, y, channel): x first
        np.testing.assert_allclose(f["0001/grid/t"][()], gray_scott["time"].values, **F32)
    for b, (data, x, y) in enumerate(samples):
        for c, name in enumerate(("u", "v")):
            expected = gray_scott[name].isel(sample=b).transpose("x", "y", "time").values
            np.testing.assert_allclose(data[..., c], expected, **F32)
        np.testing.assert_allclose(x, gray_scott["x"].values, **F32)
        np.testing.assert_allclose(y, gray_scott["y"].values, **F32)


def test_2d_round_trip_names_the_channels(gray_scott, tmp_path):
    ds = datasets.open_pdebench(datasets.write_pdebench(gray_scott, tmp_path / "gs.h5"),
                                chunks=None)
    assert ds["data"].dims == ("sample", "time", "x", "y", "channel")
    assert list(ds["channel"].values) == ["u", "v"]
    assert list(ds["group"].values) == ["0000", "0001"]
    for name in ("u", "v"):
        np.testing.assert_allclose(ds["data"].sel(channel=name).values,
                                   gray_scott[name].transpose("sample", "time", "x", "y"), **F32)
    part = ds["data"].isel(sample=slice(1, None), time=[0, 3], x=slice(2, 5), channel=0)
    np.testing.assert_allclose(part.values, gray_scott["u"].isel(sample=[1], time=[0, 3],
                               x=slice(2, 5)).transpose("sample", "time", "x", "y"), **F32)
    again = datasets.open_pdebench(datasets.write_pdebench(ds, tmp_path / "again.h5"))
    xr.testing.assert_allclose(again["data"].reset_coords(drop=True),
                               ds["data"].reset_coords(drop=True))


def test_several_variables_as_arrays_keep_their_names(gray_scott, tmp_path):
    ds = datasets.open_pdebench(datasets.write_pdebench(gray_scott, tmp_path / "gs.hdf5"))
    assert sorted(ds.data_vars) == ["u", "v"]
    assert ds["v"].dims == ("sample", "time", "x", "y")
    np.testing.assert_allclose(ds["v"].values, gray_scott["v"].transpose("sample", "time", "x",
                                                                         "y"), **F32)


def write_generator_style(path: Path, *, n_t_coord: int | None = None, n_x_coord: int = 16,
                          big: bool = False) -> np.ndarray:
    """A 1-D arrays file made as PDEBench's generators make it: t-coordinate one entry longer."""
    nb, nt, nx = (4096, 64, 1024) if big else (2, 5, 16)
    tensor = None if big else np.random.default_rng(4).random((nb, nt, nx)).astype(np.float32)
    with h5py.File(path, "w") as f:
        if big:
            f.create_dataset("tensor", shape=(nb, nt, nx), dtype=np.float32,
                             chunks=(1, nt, nx), fillvalue=-1.0)
        else:
            f["tensor"] = tensor
        f["x-coordinate"] = (np.arange(n_x_coord if not big else nx) + 0.5) / nx
        f["t-coordinate"] = np.arange(nt + 1 if n_t_coord is None else n_t_coord) * 0.01
        f.attrs["beta"] = 0.1
    return tensor


def test_generator_t_coordinate_one_longer_is_trimmed_and_noted(tmp_path):
    tensor = write_generator_style(tmp_path / "gen.hdf5")
    ds = datasets.open_pdebench(tmp_path / "gen.hdf5")
    np.testing.assert_allclose(ds["time"].values, np.arange(5) * 0.01)
    assert "last entry was dropped" in ds.attrs["t_coordinate_note"]
    np.testing.assert_array_equal(ds["tensor"].values, tensor)
    assert ds.attrs["beta"] == 0.1


def test_cfd_and_darcy_style_arrays(tmp_path):
    rng = np.random.default_rng(5)
    with h5py.File(tmp_path / "cfd.hdf5", "w") as f:
        for name in ("density", "pressure", "Vx", "Vy"):
            f[name] = rng.random((2, 3, 8, 4)).astype(np.float32)
        f["x-coordinate"], f["y-coordinate"] = np.arange(8.0), np.arange(4.0)
        f["t-coordinate"] = np.arange(4.0)
    ds = datasets.open_pdebench(tmp_path / "cfd.hdf5")
    assert sorted(ds.data_vars) == ["Vx", "Vy", "density", "pressure"]
    assert ds["Vy"].dims == ("sample", "time", "x", "y")
    with h5py.File(tmp_path / "darcy.hdf5", "w") as f:
        f["tensor"] = rng.random((2, 1, 8, 8)).astype(np.float32)
        f["nu"] = nu = rng.random((2, 8, 8)).astype(np.float32)
        f["x-coordinate"] = f["y-coordinate"] = np.linspace(0, 1, 8)
    ds = datasets.open_pdebench(tmp_path / "darcy.hdf5")
    assert ds["nu"].dims == ("sample", "x", "y")
    np.testing.assert_array_equal(ds["nu"].values, nu)
    assert ds["tensor"].sizes["time"] == 1
    assert ds.attrs["t_coordinate_note"].startswith("the file has no t-coordinate")


def test_open_is_lazy(tmp_path):
    write_generator_style(tmp_path / "big.hdf5", big=True)
    tracemalloc.start()
    try:
        ds = datasets.open_pdebench(tmp_path / "big.hdf5", chunks=None)
        row = ds["tensor"].isel(sample=4000, time=3).values
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds["tensor"].nbytes == 2**30
    np.testing.assert_array_equal(row, np.full(1024, -1.0, dtype=np.float32))
    assert peak < 20 * 2**20  # one sample's chunk read, not the 1 GiB array


# ------------------------------------------------------------------------------ errors
def test_coordinate_length_mismatches_name_file_key_and_dim(tmp_path):
    write_generator_style(tmp_path / "badx.hdf5", n_x_coord=15)
    with pytest.raises(ValueError, match=r"badx.hdf5': 'tensor' has 16 points along 'x' \(axis "
                                         r"2 of shape \(2, 5, 16\)\) but 'x-coordinate' has 15"):
        datasets.open_pdebench(tmp_path / "badx.hdf5")
    write_generator_style(tmp_path / "badt.hdf5", n_t_coord=8)
    with pytest.raises(ValueError, match=r"'t-coordinate' has 8 entries but the data have 5 "
                                         r"time steps \(expected 5, or 6"):
        datasets.open_pdebench(tmp_path / "badt.hdf5")


def test_sample_groups_that_disagree_are_named(gray_scott, tmp_path):
    path = datasets.write_pdebench(gray_scott, tmp_path / "gs.h5")
    with h5py.File(path, "a") as f:
        del f["0001/data"]
        f["0001/data"] = np.zeros((5, 10, 5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"group '0001' has data of shape \(5, 10, 5, 2\), group "
                                         r"'0000' has \(5, 10, 6, 2\)"):
        datasets.open_pdebench(path)
    with h5py.File(path, "a") as f:
        del f["0001/data"], f["0000/grid/y"]
        f["0001/data"] = np.zeros((5, 10, 6, 2), dtype=np.float32)
        f["0000/grid/y"] = np.arange(7.0)
    with pytest.raises(ValueError, match=r"/0000/grid/y has 7 entries but /0000/data has 6 "
                                         r"points along 'y'"):
        datasets.open_pdebench(path)


def test_hdf5_of_neither_layout_lists_expected_and_found_keys(tmp_path):
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f["velocity"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"in neither PDEBench layout: expected the datasets "
                                         r"'tensor'.*found keys \['velocity'\]"):
        datasets.open_pdebench(tmp_path / "other.hdf5")


def test_the_well_file_is_pointed_to_open_the_well(advection, tmp_path):
    path = datasets.write_the_well(advection, tmp_path / "w.hdf5")
    with pytest.raises(ValueError, match="it is a The Well file: use open_the_well"):
        datasets.open_pdebench(path)


def test_write_errors_name_the_argument(advection, gray_scott, tmp_path):
    with pytest.raises(ValueError, match=r"layout='arrays' does not fit path=.*a.h5.*use a path "
                                         r"ending in .hdf5"):
        datasets.write_pdebench(advection, tmp_path / "a.h5", layout="arrays")
    with pytest.raises(ValueError, match=r"layout='grid' must be one of \('arrays', 'samples'\)"):
        datasets.write_pdebench(advection, tmp_path / "a.hdf5", layout="grid")
    geo = gray_scott.rename(y="lat", x="lon")
    with pytest.raises(ValueError, match=r"names its spatial axes x, y, z, not \['lat', 'lon'\]; "
                                         r"rename them"):
        datasets.write_pdebench(geo, tmp_path / "g.h5")
    with pytest.raises(ValueError, match=r"variable 'u' has dims \('sample', 'x'\); it needs a "
                                         r"'time' dim"):
        datasets.write_pdebench(advection.isel(time=0), tmp_path / "a.hdf5")
    with pytest.raises(ValueError, match=r"path=.*a.nc.*must end in .h5 or .hdf5 or .hdf"):
        datasets.write_pdebench(advection, tmp_path / "a.nc")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
