"""``gridformer solve --format netcdf|the_well|pdebench``: each file read back by our readers,
by the layout PDEBench's loaders read, and by the_well's own ``WellDataset`` when installed."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

from gridformer import datasets
from gridformer.cli.main import main

F32 = {"rtol": 1e-6, "atol": 1e-6}  # the HDF5 formats store float32


def _solve(tmp_path, *args: str) -> dict:
    record = tmp_path / "record.json"
    assert main(["solve", *args, "--json", str(record)]) == 0
    return json.loads(record.read_text())


@pytest.fixture
def netcdf(tmp_path) -> xr.Dataset:
    """The float64 NetCDF of the 2-D heat solve every format is compared with."""
    _solve(tmp_path, "heat", "--grid", "8,12", "--steps", "4", "--samples", "2", "--seed", "5",
           "--out", str(tmp_path / "heat.nc"))
    with xr.open_dataset(tmp_path / "heat.nc") as ds:
        return ds.load()


HEAT_2D = ["heat", "--grid", "8,12", "--steps", "4", "--samples", "2", "--seed", "5"]


def test_the_well_format_reads_back_with_the_boundary_conditions(tmp_path, netcdf):
    result = _solve(tmp_path, *HEAT_2D, "--format", "the_well", "--bc", "dirichlet",
                    "--out", str(tmp_path / "train"))
    path = tmp_path / "train" / "heat.hdf5"  # a folder gets EQUATION.hdf5, as the Well names
    assert result["config"]["format"] == "the_well"
    assert result["metrics"]["format"] == "the_well"
    assert result["metrics"]["path"] == str(path)
    with datasets.open_the_well(path) as ds:
        assert ds["u"].dims == ("sample", "time", "y", "x")
        assert ds.attrs["dataset_name"] == "gridformer_heat"
        assert ds["x"].attrs["bc"] == "dirichlet(0, 0)"
        assert ds["x"].attrs["periodic"] == 0
        np.testing.assert_allclose(ds["time"].values, netcdf["time"].values, **F32)
        u = ds["u"].values
    with h5py.File(path) as f:
        assert f["t0_fields/u"].dtype == np.float32
    # same seed, same initial state; the wall changes the solution near the boundary only
    np.testing.assert_allclose(u[:, 0], netcdf["u"].isel(time=0).values, **F32)
    assert not np.allclose(u[:, -1], netcdf["u"].isel(time=-1).values, **F32)


def test_the_well_format_is_loaded_by_the_wells_own_dataset(tmp_path, netcdf):
    pytest.importorskip("the_well", reason="the_well is not installed (pip install the_well)")
    from the_well.data import WellDataset

    _solve(tmp_path, *HEAT_2D, "--format", "the_well", "--out", str(tmp_path / "train"))
    well = WellDataset(path=str(tmp_path / "train"), n_steps_input=1, n_steps_output=1,
                       use_normalization=False)
    assert len(well) == 2 * 4  # 2 samples x 4 windows of 2 steps in 5 saved states
    assert well.metadata.spatial_resolution == (8, 12)
    item = well[well.n_windows_per_trajectory[0] + 2]  # sample 1, window starting at step 2
    u = netcdf["u"].isel(sample=1)
    np.testing.assert_allclose(item["input_fields"][0, ..., 0].numpy(), u.isel(time=2), **F32)
    np.testing.assert_allclose(item["output_fields"][0, ..., 0].numpy(), u.isel(time=3), **F32)
    np.testing.assert_array_equal(item["boundary_conditions"].numpy(), [[2, 2], [2, 2]])


def test_pdebench_format_2d_is_one_group_per_sample_as_fnodatasetmult_reads(tmp_path, netcdf):
    result = _solve(tmp_path, *HEAT_2D, "--format", "pdebench", "--out", str(tmp_path))
    path = tmp_path / "heat.h5"
    assert result["metrics"]["layout"] == "samples"
    # what PDEBench's FNODatasetMult reads: sorted groups, data (t, x, y, channel), grid/x, y, t
    with h5py.File(path) as f:
        groups = sorted(f.keys())
        assert groups == ["0000", "0001"]
        data = f["0001/data"][()]
        assert data.shape == (5, 12, 8, 1)  # PDEBench's axes run x, y
        np.testing.assert_allclose(f["0001/grid/x"][()], netcdf["x"].values)
        np.testing.assert_allclose(f["0001/grid/t"][()], netcdf["time"].values, **F32)
    u = netcdf["u"].isel(sample=1).transpose("time", "x", "y").values
    np.testing.assert_allclose(data[..., 0], u, **F32)
    with datasets.open_pdebench(path) as ds:
        assert ds.attrs["pdebench_layout"] == "samples"
        np.testing.assert_allclose(ds["data"].isel(channel=0).transpose(
            "sample", "time", "y", "x").values, netcdf["u"].transpose("sample", "time", "y",
                                                                      "x").values, **F32)


def test_pdebench_format_1d_is_the_tensor_layout_fnodatasetsingle_reads(tmp_path):
    args = ["burgers", "--grid", "32", "--steps", "6", "--samples", "3", "--save-every", "2"]
    _solve(tmp_path, *args, "--out", str(tmp_path / "b.nc"))
    result = _solve(tmp_path, *args, "--format", "pdebench", "--out", str(tmp_path / "pde"))
    path = tmp_path / "pde" / "burgers.hdf5"
    assert result["metrics"] == {**result["metrics"], "format": "pdebench", "layout": "arrays",
                                 "path": str(path)}
    with xr.open_dataset(tmp_path / "b.nc") as ref, h5py.File(path) as f:
        # what FNODatasetSingle reads from a scalar 1-D file: tensor (b, t, x), x-coordinate
        assert f["tensor"].shape == (3, 4, 32)
        np.testing.assert_allclose(f["tensor"][()], ref["u"].transpose("sample", "time",
                                                                       "x").values, **F32)
        np.testing.assert_allclose(f["x-coordinate"][()], ref["x"].values, **F32)
        np.testing.assert_allclose(f["t-coordinate"][()], ref["time"].values, **F32)
        with datasets.open_pdebench(path) as ds:
            np.testing.assert_allclose(ds["tensor"].values, f["tensor"][()])
            np.testing.assert_allclose(ds["time"].values, ref["time"].values, **F32)


def test_gray_scott_pdebench_stacks_both_fields_as_channels(tmp_path):
    _solve(tmp_path, "gray_scott", "--grid", "8,8", "--steps", "2", "--format", "pdebench",
           "--out", str(tmp_path / "gs.h5"))
    with h5py.File(tmp_path / "gs.h5") as f:
        assert list(f.attrs["channel_names"]) == ["u", "v"]
        assert f["0000/data"].shape == (3, 8, 8, 2)


def test_default_paths_keep_formats_apart(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for fmt in ("netcdf", "the_well", "pdebench"):
        assert main(["solve", "heat", "--grid", "8", "--steps", "2", "--format", fmt]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.rsplit(" -> ", 1)[1] for line in printed] == [
        "gridformer-out/solve/heat.nc", "gridformer-out/solve/the_well/heat.hdf5",
        "gridformer-out/solve/pdebench/heat.hdf5"]
    with datasets.open_the_well("gridformer-out/solve/the_well") as ds:
        assert ds["u"].sizes["x"] == 8


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "the_well", "--out", "x.nc"],
     "--out='x.nc' does not fit --format=the_well: --format=the_well writes .hdf5 or .h5 files"),
    (["--out", "x.h5"],
     "--out='x.h5' does not fit --format=netcdf: --format=netcdf writes .nc files (choose "
     "--format the_well or pdebench for HDF5)"),
    (["--format", "pdebench", "--out", "x.hdf5"],
     "--out='x.hdf5' does not fit --format=pdebench: PDEBench's loaders read a .hdf5 file's "
     "arrays as one 1-D field (a 2-D 'tensor' as Darcy flow); 2-D data go in a .h5 file, one "
     "group per sample"),
])
def test_a_suffix_that_does_not_fit_the_format_is_refused_before_solving(
        tmp_path, monkeypatch, capsys, args, message):
    import gridformer.solvers

    def must_not_run(*args, **kwargs):
        raise AssertionError("solve ran although the output path is unusable")

    monkeypatch.setattr(gridformer.solvers, "solve", must_not_run)
    monkeypatch.chdir(tmp_path)
    assert main(["solve", "heat", "--grid", "8,8", *args]) == 2
    assert capsys.readouterr().err == f"gridformer solve: error: {message}\n"
