"""``gridformer preprocess``: NetCDF files -> token store, locally or on a dask scheduler."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from gridformer.datasets import open_token_store, write_token_store

from gridformer.cli.main import main

pytestmark = pytest.mark.filterwarnings("ignore:dim 'lon' looks periodic")


@pytest.fixture
def files(tmp_path):
    """Two yearly files of daily t2m on a 6 x 12 grid (with a NaN corner)."""
    rng = np.random.default_rng(0)
    paths = []
    for year in (2001, 2002):
        time = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        t = (280 + rng.normal(size=(time.size, 6, 12))).astype(np.float32)
        t[:, 0, 0] = np.nan
        ds = xr.Dataset({"t2m": (("time", "lat", "lon"), t)},
                        coords={"time": time, "lat": np.linspace(-75, 75, 6),
                                "lon": np.arange(12) * 30.0})
        paths.append(tmp_path / f"t2m_{year}.nc")
        ds.to_netcdf(paths[-1])
    return paths


def test_preprocess_writes_the_store_the_library_writes(tmp_path, files, capsys):
    out = tmp_path / "t2m.zarr"
    code = main(["preprocess", str(tmp_path / "t2m_*.nc"), "--out", str(out), "--patch-size",
                 "3", "--anomalies", "month", "--stats-time", "2001-01-01,2001-12-31",
                 "--store-steps", "30", "--json", "-"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["command"] == "preprocess"
    assert record["metrics"]["steps"] == 730
    assert record["metrics"]["tokens"] == 2 * 4
    assert record["metrics"]["scheduler"] == "local threads"
    store = open_token_store(out, expect={"patch_size": 3, "anomalies": "month"})
    assert store.tokens.chunks[0] == 30

    from gridformer.datasets import open_dataset

    same = write_token_store(open_dataset(files), tmp_path / "api.zarr", patch_size=3,
                             anomalies="month", stats_time=("2001-01-01", "2001-12-31"))
    np.testing.assert_array_equal(store.read("tokens", 0, 730), same.read("tokens", 0, 730))


def test_unreachable_scheduler_is_named_with_its_timeout(tmp_path, files, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    out = tmp_path / "t.zarr"
    code = main(["preprocess", str(files[0]), "--out", str(out), "--patch-size", "3",
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "0.5"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"no dask scheduler answered at 'tcp://127.0.0.1:{port}' within 0.5 s" in err
    assert not out.exists()


def test_existing_store_needs_overwrite(tmp_path, files, capsys):
    out = tmp_path / "t.zarr"
    out.mkdir()
    code = main(["preprocess", str(files[0]), "--out", str(out), "--patch-size", "3"])
    assert code == 2
    assert "exists; pass --overwrite to replace it" in capsys.readouterr().err
    code = main(["preprocess", str(files[0]), "--patch-size", "3"])
    assert code == 2
    assert "--out STORE.zarr is required" in capsys.readouterr().err


def test_preprocess_stats_time_on_integer_steps_as_in_the_readme(tmp_path):
    """The README's example: planted data have integer time steps; labels come in as text."""
    from gridformer import datasets

    nc = tmp_path / "planted.nc"
    datasets.write_netcdf(datasets.planted_teleconnection(120, shape=(12, 24)), nc)
    out = tmp_path / "planted.zarr"
    code = main(["preprocess", str(nc), "--variables", "x,y", "--patch-size", "4",
                 "--stats-time", "0,89", "--out", str(out)])
    assert code == 0
    settings = open_token_store(out).meta["settings"]
    assert settings["stats_steps"] == [0, 90]
    assert settings["stats_time"] == ["0", "89"]
