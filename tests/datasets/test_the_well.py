"""The Well's HDF5 layout: round trips, files written by hand to the spec, laziness, errors,
and the_well's own ``WellDataset`` reading what we write (when the_well is installed)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from gridformer.solvers import BoundaryCondition

from gridformer import datasets, solvers

F32 = {"rtol": 1e-6, "atol": 1e-6}  # values pass through float32


@pytest.fixture(scope="module")
def heat() -> xr.Dataset:
    """3 heat trajectories on an 8 x 16 grid, periodic in y, Dirichlet (0, 1) in x."""
    rng = np.random.default_rng(1)
    u0 = xr.DataArray(rng.standard_normal((3, 8, 16)), dims=("sample", "y", "x"),
                      coords={"y": np.arange(8) * 0.1, "x": np.arange(16) * 0.1})
    bc = {"y": "periodic", "x": BoundaryCondition("dirichlet", (0.0, 1.0))}
    return solvers.solve("heat", u0, steps=4, dt=1e-3, diffusivity=1.0, bc=bc)


def write_spec_file(path: Path, *, big: bool = False) -> dict:
    """A Well file written with h5py from the format description (not by gridformer).

    2-D (x: 12, y: 10), 2 trajectories, 5 times; t0 field ``rho`` over (sample, time, x, y), a
    constant field ``mask`` varying in x only, a t1 field ``vel``; walls on x (both sides),
    periodic y; a constant and a time-varying scalar. ``big`` makes ``rho`` a 1 GiB dataset
    that is never written (HDF5 allocates chunks only when written).
    """
    nb, nt, nx, ny = (64, 64, 256, 256) if big else (2, 5, 12, 10)
    rng = np.random.default_rng(0)
    x, y, t = np.linspace(0, 1, nx), np.linspace(0, 2, ny), np.linspace(0, 0.4, nt)
    rho = None if big else rng.random((nb, nt, nx, ny)).astype(np.float32)
    vel = None if big else rng.random((nb, nt, nx, ny, 2)).astype(np.float32)
    strs = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="spec_test", grid_type="cartesian", n_spatial_dims=2,
                       n_trajectories=nb, simulation_parameters=np.array(["alpha"], dtype=strs),
                       alpha=0.5)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=strs)
        for name, values in (("time", t), ("x", x), ("y", y)):
            d = dims.create_dataset(name, data=values.astype(np.float32))
            d.attrs.update(sample_varying=False, time_varying=name == "time")
        bcs = f.create_group("boundary_conditions")
        for name, kind, dim, n in (("x_wall", "WALL", "x", nx),
                                   ("y_periodic", "PERIODIC", "y", ny)):
            g = bcs.create_group(name)
            g.attrs.update(bc_type=kind, associated_dims=np.array([dim], dtype=strs),
                           associated_fields=np.array([], dtype=strs), sample_varying=False,
                           time_varying=False)
            mask = np.zeros(n, dtype=bool)
            mask[[0, -1]] = True
            g.create_dataset("mask", data=mask)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = np.array(["alpha", "energy"], dtype=strs)
        a = scalars.create_dataset("alpha", data=np.array(0.5))
        a.attrs.update(sample_varying=False, time_varying=False)
        e = scalars.create_dataset("energy", data=np.arange(nt, dtype=np.float64))
        e.attrs.update(sample_varying=False, time_varying=True)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = np.array(["rho", "mask"], dtype=strs)
        if big:
            r = t0.create_dataset("rho", shape=(nb, nt, nx, ny), dtype=np.float32,
                                  chunks=(1, 1, nx, ny), fillvalue=2.5)
        else:
            r = t0.create_dataset("rho", data=rho)
        r.attrs.update(sample_varying=True, time_varying=True, dim_varying=[True, True])
        m = t0.create_dataset("mask", data=np.arange(nx, dtype=np.float32))
        m.attrs.update(sample_varying=False, time_varying=False, dim_varying=[True, False])
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = np.array(["vel"] if not big else [], dtype=strs)
        if not big:
            v = t1.create_dataset("vel", data=vel)
            v.attrs.update(sample_varying=True, time_varying=True, dim_varying=[True, True])
        f.create_group("t2_fields").attrs["field_names"] = np.array([], dtype=strs)
    return {"rho": rho, "vel": vel, "x": x, "y": y, "t": t}


# ------------------------------------------------------------------------------ round trips
def test_round_trip_keeps_values_coords_and_boundary_conditions(heat, tmp_path):
    path = datasets.write_the_well(heat, tmp_path / "heat.h5")
    ds = datasets.open_the_well(path)
    assert ds["u"].dims == ("sample", "time", "y", "x")
    np.testing.assert_allclose(ds["u"].values, heat["u"].transpose("sample", "time", "y", "x"),
                               **F32)
    for dim in ("time", "y", "x"):
        np.testing.assert_allclose(ds[dim].values, heat[dim].values, **F32)
    assert ds.attrs["bc"] == heat.attrs["bc"] == "y: periodic; x: dirichlet(0, 1)"
    assert (ds["y"].attrs["periodic"], ds["x"].attrs["periodic"]) == (1, 0)
    assert ds["x"].attrs["bc"] == "dirichlet(0, 1)"
    assert ds.attrs["dataset_name"] == "gridformer_heat"
    assert float(ds["dt"]) == pytest.approx(heat.attrs["dt"])  # numeric attrs become scalars
    with h5py.File(path) as f:  # the Dirichlet wall values are in the file, as the spec says
        np.testing.assert_array_equal(f["boundary_conditions/x_wall/values"][()], [0.0, 1.0])
        assert f["boundary_conditions/x_wall"].attrs["bc_type"] == "wall"
        assert f["t0_fields/u"].dtype == np.float32
    ds.close()


def test_rewriting_an_opened_file_reproduces_it(heat, tmp_path):
    first = datasets.open_the_well(datasets.write_the_well(heat, tmp_path / "a.h5"))
    again = datasets.open_the_well(datasets.write_the_well(first, tmp_path / "b.hdf5"))
    xr.testing.assert_identical(first["u"].reset_coords(drop=True),
                                again["u"].reset_coords(drop=True))
    assert again.attrs["bc"] == first.attrs["bc"]


def test_one_trajectory_without_sample_dim_gets_a_sample_axis(tmp_path):
    u0 = xr.DataArray(np.sin(2 * np.pi * np.arange(32) / 32), dims="x",
                      coords={"x": np.arange(32) / 32})
    traj = solvers.solve("advection", u0, steps=4, velocity=1.0)
    ds = datasets.open_the_well(datasets.write_the_well(traj, tmp_path / "adv.h5"),
                                chunks=None)
    assert dict(ds["u"].sizes) == {"sample": 1, "time": 5, "x": 32}
    np.testing.assert_allclose(ds["u"].isel(sample=0).values, traj["u"].values, **F32)
    assert ds.attrs["n_trajectories"] == 1


def test_opens_a_file_written_to_the_spec(tmp_path):
    truth = write_spec_file(tmp_path / "spec.hdf5")
    ds = datasets.open_the_well(tmp_path / "spec.hdf5")
    assert ds["rho"].dims == ("sample", "time", "x", "y")
    np.testing.assert_array_equal(ds["rho"].values, truth["rho"])
    assert ds["vel"].dims == ("sample", "time", "x", "y", "i")
    assert ds["vel"].attrs["components"] == "x y"
    np.testing.assert_array_equal(ds["vel"].values, truth["vel"])
    assert ds["mask"].dims == ("x",)  # constant in time, samples and y: only x remains
    assert ds["energy"].dims == ("time",)
    assert float(ds["alpha"]) == 0.5
    assert ds.attrs["bc"] == "x: wall; y: periodic"
    assert ds["x"].attrs["bc"] == "wall"
    assert (ds["x"].attrs["periodic"], ds["y"].attrs["periodic"]) == (0, 1)
    np.testing.assert_allclose(ds["y"].values, truth["y"], rtol=1e-6)


def test_time_that_varies_by_sample_becomes_a_2d_coordinate(tmp_path):
    truth = write_spec_file(tmp_path / "t2d.h5")
    per_sample = np.stack([truth["t"], truth["t"] + 10.0])  # (sample, time)
    with h5py.File(tmp_path / "t2d.h5", "a") as f:
        del f["dimensions/time"]
        f["dimensions/time"] = per_sample
        f["dimensions/time"].attrs.update(sample_varying=True, time_varying=True)
    ds = datasets.open_the_well(tmp_path / "t2d.h5")
    assert ds["sample_time"].dims == ("sample", "time")
    np.testing.assert_allclose(ds["sample_time"].values, per_sample)
    np.testing.assert_array_equal(ds["rho"].values, truth["rho"])


def test_folder_of_files_is_joined_along_sample(heat, tmp_path):
    datasets.write_the_well(heat.isel(sample=[0]), tmp_path / "part0.h5")
    datasets.write_the_well(heat.isel(sample=[1, 2]), tmp_path / "part1.h5")
    ds = datasets.open_the_well(tmp_path)
    assert ds.sizes["sample"] == 3
    np.testing.assert_array_equal(ds["sample"].values, [0, 1, 2])
    np.testing.assert_allclose(ds["u"].values, heat["u"].transpose("sample", "time", "y", "x"),
                               **F32)


def test_periodicity_reaches_the_tokenizer(heat, tmp_path):
    from gridformer import PatchTokenizer

    ds = datasets.open_the_well(datasets.write_the_well(heat, tmp_path / "heat.h5"))
    _, layout = PatchTokenizer(patch_size=2).encode(ds["u"].isel(time=0))
    assert layout.spatial_dims == ("y", "x")
    assert layout.periodic == (True, False)


def test_open_is_lazy(tmp_path):
    write_spec_file(tmp_path / "big.h5", big=True)
    tracemalloc.start()
    try:
        ds = datasets.open_the_well(tmp_path / "big.h5", chunks=None)
        frame = ds["rho"].isel(sample=3, time=7).values
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ds["rho"].nbytes == 2**30
    assert frame.shape == (256, 256)
    assert np.all(frame == 2.5)
    assert peak < 20 * 2**20  # one 256 KiB frame read, not the 1 GiB dataset


def test_open_with_dask_chunks(heat, tmp_path):
    ds = datasets.open_the_well(datasets.write_the_well(heat, tmp_path / "h.h5"),
                                chunks={"sample": 1})
    assert ds["u"].chunks[0] == (1, 1, 1)
    assert float(ds["u"].sum().compute()) == pytest.approx(float(heat["u"].sum()), rel=1e-5)


# ------------------------------------------------------------------------------ the_well
@pytest.mark.filterwarnings("ignore:In a future version of xarray:FutureWarning")  # their concat
def test_the_wells_own_dataset_reads_what_we_write(heat, tmp_path):
    pytest.importorskip("the_well", reason="the_well is not installed (pip install the_well)")
    from the_well.data import WellDataset

    folder = tmp_path / "train"
    datasets.write_the_well(heat, folder / "heat.h5", parameters=["dt"])
    well = WellDataset(path=str(folder), n_steps_input=2, n_steps_output=1,
                       use_normalization=False)
    assert len(well) == 3 * (5 - 3 + 1)  # samples x windows of 3 steps in 5
    assert well.metadata.spatial_resolution == (8, 16)
    assert well.metadata.field_names[0] == ["u"]
    item = well[well.n_windows_per_trajectory[0] + 1]  # sample 1, window starting at time 1
    u = heat["u"].isel(sample=1)
    np.testing.assert_allclose(item["input_fields"][..., 0].numpy(), u.isel(time=[1, 2]), **F32)
    np.testing.assert_allclose(item["output_fields"][0, ..., 0].numpy(), u.isel(time=3), **F32)
    # the_well's codes: WALL 0, OPEN 1, PERIODIC 2; rows follow spatial_dims (y, x)
    np.testing.assert_array_equal(item["boundary_conditions"].numpy(), [[2, 2], [0, 0]])
    grid = np.stack(np.meshgrid(heat["y"], heat["x"], indexing="ij"), axis=-1)
    np.testing.assert_allclose(item["space_grid"].numpy(), grid, **F32)
    names = well.metadata.constant_scalar_names
    assert item["constant_scalars"][names.index("dt")] == pytest.approx(heat.attrs["dt"])
    theirs = well.to_xarray(backend="numpy")
    np.testing.assert_allclose(theirs["u"].values, heat["u"].transpose("sample", "time", "y",
                                                                       "x"), **F32)


# ------------------------------------------------------------------------------ errors
def test_hdf5_file_of_neither_layout_names_expected_and_found_keys(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("foo", data=[1.0])
    with pytest.raises(ValueError, match=r"not in The Well's layout: expected root groups "
                                         r"\['dimensions', .*found groups \['foo'\]"):
        datasets.open_the_well(tmp_path / "other.h5")


def test_pdebench_file_is_pointed_to_open_pdebench(tmp_path):
    with h5py.File(tmp_path / "pde.hdf5", "w") as f:
        f["tensor"] = np.zeros((1, 2, 4))
        f["x-coordinate"] = np.arange(4.0)
    with pytest.raises(ValueError, match="looks like a PDEBench file: use open_pdebench"):
        datasets.open_the_well(tmp_path / "pde.hdf5")


def test_not_hdf5_and_missing_files(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.h5' is not an HDF5 file"):
        datasets.open_the_well(tmp_path / "notes.h5")
    with pytest.raises(FileNotFoundError, match="The Well file not found"):
        datasets.open_the_well(tmp_path / "absent.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.h5/\.hdf5 files in the folder"):
        datasets.open_the_well(tmp_path / "empty")


def test_field_shape_that_contradicts_its_attrs_is_named(tmp_path):
    write_spec_file(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "bad.h5", "a") as f:
        f["t0_fields/rho"].attrs["dim_varying"] = [True, False]
    with pytest.raises(ValueError, match=r"/t0_fields/rho has shape \(2, 5, 12, 10\), but its "
                                         r"attrs .* say dims \('sample', 'time', 'x'\)"):
        datasets.open_the_well(tmp_path / "bad.h5")


def test_write_errors_name_the_argument(heat, tmp_path):
    with pytest.raises(ValueError, match=r"path=.*heat.nc.*must end in .h5 or .hdf5"):
        datasets.write_the_well(heat, tmp_path / "heat.nc")
    bare = heat.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match=r"no boundary conditions .* pass bc='periodic'"):
        datasets.write_the_well(bare, tmp_path / "x.h5")
    with pytest.raises(ValueError, match="boundary condition 'robin' for dim 'x'"):
        datasets.write_the_well(heat, tmp_path / "x.h5", bc={"y": "periodic", "x": "robin"})
    with pytest.raises(ValueError, match=r"parameters=\['viscosity'\]: \['viscosity'\] are not "
                                         r"numeric attrs"):
        datasets.write_the_well(heat, tmp_path / "x.h5", parameters=["viscosity"])
    with pytest.raises(ValueError, match="dtype='int8' must be 'float32' or 'float64'"):
        datasets.write_the_well(heat, tmp_path / "x.h5", dtype="int8")
    with pytest.raises(ValueError, match="need a 'time' dim"):
        datasets.write_the_well(heat.isel(time=0), tmp_path / "x.h5")


def test_failed_write_leaves_no_partial_file(heat, tmp_path):
    bad = heat.assign(label=heat["u"].astype(str))
    with pytest.raises(TypeError, match="variable 'label' has dtype <U"):
        datasets.write_the_well(bad, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()
    assert list(tmp_path.iterdir()) == []  # nor a temporary file beside it
    with pytest.raises(TypeError, match="attribute 'config' is a dict; HDF5 attributes hold"):
        datasets.write_the_well(heat.assign_attrs(config={"a": 1}), tmp_path / "bad.h5")
    assert list(tmp_path.iterdir()) == []
