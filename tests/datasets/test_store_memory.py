"""Larger than memory: NetCDF files bigger than a dask worker's memory limit, end to end.

Nine yearly-ish files of daily 2.5 degree t2m (541 MiB as float32) go through
``open_dataset`` -> monthly anomalies -> standardisation -> a token store on a ``LocalCluster``
whose one worker may use 512 MiB (dask kills it at 95 %); then a ``ForecastDataset`` over the
same lazily anomalised, standardised files serves every item through that worker, with the
test process itself holding no more than its block cache.
"""

from __future__ import annotations

import tracemalloc

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from distributed import Client, LocalCluster
from gridformer.datasets import (
    BlockShuffleSampler,
    ForecastDataset,
    TokenStoreDataset,
    anomalies,
    open_dataset,
    write_token_store,
)
from _memory_probe import start_peak, stop_peak  # a light module: workers import it
from gridformer.datasets.preprocess import TASK_MEMORY_FACTOR, token_chunks

from gridformer import PatchTokenizer

FILES, STEPS, LIMIT = 9, 1500, 512 * 2**20
CACHE = 32 * 2**20


def write_files(folder) -> list:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(FILES):
        time_ = pd.date_range("2000-01-01", periods=FILES * STEPS, freq="D")[i * STEPS:
                                                                          (i + 1) * STEPS]
        season = 15 * np.cos(2 * np.pi * time_.day_of_year.values / 365.25)[:, None, None]
        t2m = (280 + season + rng.standard_normal((STEPS, 73, 144))).astype(np.float32)
        ds = xr.Dataset({"t2m": (("time", "lat", "lon"), t2m)},
                        coords={"time": time_, "lat": np.linspace(-90, 90, 73),
                                "lon": np.arange(144) * 2.5})
        paths.append(folder / f"t2m_{i}.nc")
        ds.to_netcdf(paths[-1])
    return paths


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:dim 'lon' looks periodic")
def test_files_larger_than_the_worker_memory_limit(tmp_path):
    paths = write_files(tmp_path)
    data_bytes = FILES * STEPS * 73 * 144 * 4
    assert data_bytes > LIMIT  # the data do not fit the worker
    config = {"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
              "distributed.worker.memory.pause": False,  # no spilling, no pausing: RSS counts
              "distributed.scheduler.allowed-failures": 0}  # a killed worker fails the test
    with (dask.config.set(config),
          LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit=LIMIT,
                       dashboard_address=None) as cluster, Client(cluster) as client):
        chunk, store_steps = token_chunks(open_dataset(paths, chunks={}), 4, client=client)
        ds = open_dataset(paths, chunks={"time": chunk})
        base = next(iter(client.run(start_peak).values()))
        store = write_token_store(ds, tmp_path / "t2m.zarr", patch_size=4, anomalies="month",
                                  client=client, chunk_steps=chunk, store_steps=store_steps)
        peak = next(iter(client.run(stop_peak).values()))
        chunk_bytes = chunk * 73 * 144 * 8
        assert peak < 0.95 * LIMIT  # never near dask's kill threshold
        # the worker held a working set of ~20 chunks (what TASK_MEMORY_FACTOR budgets), not
        # the data: measured 317-319 MB over a 150 MB baseline with 15.8 MB chunks, 568 MB data
        assert peak - base < (TASK_MEMORY_FACTOR + 2) * chunk_bytes
        assert store.n_time == FILES * STEPS

        # the torch dataset over the lazily anomalised, standardised files (blocks on the worker)
        clim = xr.Dataset({"t2m": store.dataset["climatology_t2m"].load()})
        z = store.normalization().transform(anomalies(ds, freq="month", clim=clim))
        data = ForecastDataset(z, tokenizer=PatchTokenizer(4, dtype=torch.float32),
                               cache_bytes=CACHE)
        reference = TokenStoreDataset(store)
        order = list(BlockShuffleSampler(data, blocks_per_group=1, seed=0))
        tracemalloc.start()
        for n, i in enumerate(order):
            x, y = data[i]
            if n % 997 == 0:
                want_x, want_y = reference[i]
                torch.testing.assert_close(x, want_x, rtol=1e-5, atol=1e-4)
                torch.testing.assert_close(y, want_y, rtol=1e-5, atol=1e-4)
        _, held = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(order) == FILES * STEPS - 1
    assert held < 3 * CACHE  # the cache plus a block being read, not the 541 MiB of data
