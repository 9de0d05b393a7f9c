"""Larger than memory: NetCDF files bigger than a dask worker's memory limit, end to end.

Nine yearly-ish files of daily 2.5 degree t2m (541 MiB as float32) go through
``open_dataset`` -> monthly anomalies -> standardisation -> a token store on a ``LocalCluster``
whose one worker may use 512 MiB (dask kills it at 95 %); then a ``ForecastDataset`` over the
lazily opened files serves every item of the first three files (189 MB) through that worker and a
``TokenStoreDataset`` every item of the store (552 MB of tokens), the test process itself holding
no more than their block caches.
"""

from __future__ import annotations

import time
import tracemalloc

import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from _memory_probe import start_peak, stop_peak  # a light module: workers import it
from distributed import Client, LocalCluster
from gridformer.datasets import (
    BlockShuffleSampler,
    ForecastDataset,
    TokenStoreDataset,
    open_dataset,
    write_token_store,
)
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
        # the data: measured 254 MiB over a 140 MiB baseline with 15.1 MiB chunks, 568 MB data
        assert peak - base < (TASK_MEMORY_FACTOR + 2) * chunk_bytes
        assert store.n_time == FILES * STEPS

        # the torch datasets: ForecastDataset over the lazily opened files (blocks read on the
        # worker; the first three files, 189 MB, already outgrow what it may hold), and
        # TokenStoreDataset over the whole store (552 MB of tokens)
        raw = ForecastDataset(ds.isel(time=slice(0, 3 * STEPS)), cache_bytes=CACHE,
                              tokenizer=PatchTokenizer(4, dtype=torch.float32))
        tokens = TokenStoreDataset(store, cache_bytes=CACHE)
        held, kept, rates = {}, {}, {}
        for name, data in (("files", raw), ("store", tokens)):
            order = list(BlockShuffleSampler(data, blocks_per_group=1, seed=0))
            assert sorted(order) == list(range(len(data)))
            tracemalloc.start()
            started = time.perf_counter()
            for n, i in enumerate(order):
                item = data[i]
                if n % 997 == 0:
                    kept[name, i] = item
            rates[name] = len(order) / (time.perf_counter() - started)
            held[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert len(raw) == 3 * STEPS - 1
    assert len(tokens) == FILES * STEPS - 1
    for name in held:  # the cache plus a block being read, not the data streamed through
        assert held[name] < 3 * CACHE, (name, held[name])
    for (name, _i), (x, y) in kept.items():
        assert x.shape == y.shape == (19 * 36, 16)
        if name == "files":  # raw kelvin; the store holds standardised anomalies
            assert float(x.abs().max()) > 200
        else:
            assert float(x.abs().max()) < 10
    print(f"worker peak {peak / 2**20:.0f} MiB (baseline {base / 2**20:.0f} MiB, chunk "
          f"{chunk_bytes / 2**20:.1f} MiB); datasets held "
          f"{ {k: round(v / 2**20) for k, v in held.items()} } MiB, items/s {rates}")
