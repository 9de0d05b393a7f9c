"""Bad input is refused before any training, with messages that say what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridformer import datasets
from gridformer.teleconnect import MIN_PAIRS, TeleconnectConfig, setup

from ._helpers import planted


def _config(**kw):
    base = {"inputs": ("x",), "target": "target_index"}
    return TeleconnectConfig(**{**base, **kw})


def _write(ds, path):
    datasets.write_netcdf(ds, path)
    return path


def test_unknown_variable_lists_the_variables(planted_file):
    with pytest.raises(ValueError, match=r"input variable 'sst' is not in planted\.nc; the data "
                                         r"variables are \['index', 'target_index', 'x', 'y'\]"):
        setup(planted_file, _config(inputs=("sst",)))
    with pytest.raises(ValueError, match=r"target variable 'nino' is not in planted\.nc"):
        setup(planted_file, _config(target="nino"))


def test_different_time_axes_are_described_and_aligned_only_when_asked(tmp_path):
    ds = planted(80)
    inputs = _write(ds[["x"]], tmp_path / "x.nc")
    shifted = ds[["target_index"]].assign_coords(time=ds["time"] + 5)
    target = _write(shifted, tmp_path / "t.nc")
    with pytest.raises(ValueError, match=(
            r"input 'x' and target 'target_index' are on different time axes: input 80 steps, "
            r"0 \.\. 79; target 80 steps, 5 \.\. 84; 75 steps in common; pass --align-time")):
        setup([inputs, target], _config())
    ready = setup([inputs, target], _config(align_time=True))
    assert ready.loaded.aligned == 5
    np.testing.assert_array_equal(ready.prepared.inputs["time"].values, np.arange(5, 80))
    # matched by time label: the target file's step k (labelled k + 5) meets x at step k + 5
    np.testing.assert_allclose(ready.loaded.target.values, ds["target_index"].values[:75])
    np.testing.assert_allclose(ready.loaded.inputs["x"].values, ds["x"].values[5:])


def test_no_common_time_step_is_refused_even_with_align(tmp_path):
    ds = planted(80)
    inputs = _write(ds[["x"]], tmp_path / "x.nc")
    target = _write(ds[["target_index"]].assign_coords(time=ds["time"] + 1000), tmp_path / "t.nc")
    with pytest.raises(ValueError, match="0 steps in common; there is no common time step"):
        setup([inputs, target], _config(align_time=True))


def test_datetime_axes_are_described_by_date(tmp_path):
    ds = planted(80)
    ds = ds.assign_coords(time=pd.date_range("2001-01-01", periods=80, freq="MS"))
    inputs = _write(ds[["x"]], tmp_path / "x.nc")
    target = _write(ds[["target_index"]].isel(time=slice(12, None)), tmp_path / "t.nc")
    with pytest.raises(ValueError, match=r"input 80 steps, 2001-01-01 \.\. 2007-08-01; target "
                                         r"68 steps, 2002-01-01 \.\. 2007-08-01; 68 steps"):
        setup([inputs, target], _config())


def test_query_outside_the_grid(tmp_path):
    ds = planted().drop_vars(["source_mask", "target_mask"])
    path = _write(ds.sel(lat=slice(-30, 30)), tmp_path / "tropics.nc")  # a regional file
    with pytest.raises(ValueError, match=r"query \(--query\): query point \{'lat': 80\.0, "
                                         r"'lon': 10\.0\} lies outside the grid: lat in "
                                         r"\[-30, 30\]"):
        setup(path, _config(target="y", query=(80.0, 10.0)))


def test_box_without_valid_cells(tmp_path):
    ds = planted().drop_vars(["source_mask", "target_mask"])
    ds["y"] = ds["y"].where(ds["lat"] < 0)  # "land": no data north of the equator
    path = _write(ds, tmp_path / "land.nc")
    with pytest.raises(ValueError, match=r"query_box=30,60,280,320 \(--query-box\) contains no "
                                         r"valid cell of target 'y': every cell in it is NaN"):
        setup(path, _config(target="y", query_box=(30, 60, 280, 320)))
    with pytest.raises(ValueError, match=r"holds valid cells but no token centre; with "
                                         r"patch_size=2 token centres lie every 30 degrees"):
        setup(path, _config(target="y", query_box=(-40, -35, 95, 100)))


def test_too_few_time_steps_for_the_split(tmp_path):
    path = _write(planted(40).drop_vars(["source_mask", "target_mask"]), tmp_path / "short.nc")
    # 77 steps: floor(0.85 * 77) - floor(0.7 * 77) = 65 - 53 = 12 = 10 pairs + lead 2
    with pytest.raises(ValueError, match=(
            rf"too few time steps for the split: 40 steps with lead=2 give 26/4/4 train/"
            rf"validation/test pairs \(fractions \[0\.7, 0\.15, 0\.15\]\); each part needs at "
            rf"least {MIN_PAIRS} pairs, which takes at least 77 time steps")):
        setup(path, _config(lead=2))


def test_all_nan_input(tmp_path):
    ds = planted().drop_vars(["source_mask", "target_mask"])
    ds["x"] = ds["x"] * np.nan
    path = _write(ds, tmp_path / "nan.nc")
    with pytest.raises(ValueError, match=r"input variable 'x' is NaN at every time step and grid "
                                         r"cell \(80 steps, 0 \.\. 79\)"):
        setup(path, _config())


def test_target_kind_and_query_must_agree(planted_file):
    with pytest.raises(ValueError, match=r"target 'y' is a gridded field: say whose attention "
                                         r"to map with a query point \(--query LAT,LON\)"):
        setup(planted_file, _config(target="y"))
    with pytest.raises(ValueError, match=r"target 'target_index' is a time series \(an index\)"
                                         r".*--query / --query-box apply to a gridded"):
        setup(planted_file, _config(query=(45.0, 300.0)))


def test_inputs_on_different_grids(tmp_path):
    ds = planted()
    a = _write(ds[["x", "target_index"]], tmp_path / "a.nc")
    coarse = datasets.random_field((6, 12), geographic=True, n_samples=80, seed=1)
    b = _write(coarse.rename(sample="time").rename("z").to_dataset(), tmp_path / "b.nc")
    with pytest.raises(ValueError, match=r"'z' and 'x' lie on different grids: lat has 6 values "
                                         r"-75 \.\. 75 in 'z' and 12 values -82\.5 \.\. 82\.5"):
        setup([a, b], _config(inputs=("x", "z")))
