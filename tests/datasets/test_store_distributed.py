"""write_token_store on a dask.distributed cluster: same store, tasks on the workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster, get_task_stream
from gridformer.datasets import write_token_store
from gridformer.datasets._cluster import connect

pytestmark = pytest.mark.filterwarnings("ignore:dim 'lon' looks periodic")


def climate() -> xr.Dataset:
    rng = np.random.default_rng(5)
    time = pd.date_range("2001-01-01", periods=365, freq="D")
    t = (280 + rng.normal(size=(365, 6, 12))).astype(np.float32)
    return xr.Dataset({"t2m": (("time", "lat", "lon"), t)},
                      coords={"time": time, "lat": np.linspace(-75, 75, 6),
                              "lon": np.arange(12) * 30.0})


def test_store_written_on_a_client_equals_the_local_one(tmp_path):
    ds = climate()
    local = write_token_store(ds, tmp_path / "local.zarr", patch_size=3, anomalies="month",
                              chunk_steps=60, store_steps=30)
    with (LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                       dashboard_address=None) as cluster, Client(cluster) as client,
          get_task_stream(client) as stream):
        remote = write_token_store(ds, tmp_path / "remote.zarr", patch_size=3,
                                   anomalies="month", chunk_steps=60, store_steps=30,
                                   client=client)
    names = {task["key"][0] if isinstance(task["key"], tuple) else task["key"]
             for task in stream.data}
    assert any("tokenize_block" in str(n) for n in names)  # the tokens were made on the worker
    np.testing.assert_array_equal(remote.read("tokens", 0, 365), local.read("tokens", 0, 365))
    assert remote.meta["statistics"]["t2m"]["std"] == pytest.approx(
        local.meta["statistics"]["t2m"]["std"], rel=1e-12)


def test_connect_refuses_bad_addresses_clearly():
    with pytest.raises(ValueError, match=r"scheduler address '' must be a string such as"):
        connect("")
    with pytest.raises(ValueError, match=r"timeout=0 must be a positive number of seconds"):
        connect("tcp://127.0.0.1:1", timeout=0)
