"""NetCDF on disk -> (input, target) batches of 32: gridformer's data paths beside xbatcher.

One daily 2.5 degree field (73 x 144, float32; 10 years, or 1 year with ``--quick``) is written
to a temporary NetCDF file, then each path serves every (step t -> step t + 1) pair once in
batches of 32, timed in the same process (best and median of the repeats, each from a fresh
dataset object: the file is in the page cache for every path alike):

* ``raw read``: ``netCDF4`` reads the whole variable into memory (the file's read speed; a
  sample needs one new step).
* ``xbatcher``: ``xbatcher.BatchGenerator`` over ``xr.open_dataset`` (in time order, grid
  cells, no tokens), inputs and targets as two generators, batches converted to torch.
* ``ForecastDataset`` fast path: tokens (patch 4) in a shuffled ``DataLoader``, items served
  from chunk-aligned blocks read and tokenized once (first epoch: includes reading).
* ``ForecastDataset`` per-item path (``cache_bytes=0``): what it did before (a few batches).
* ``TokenStoreDataset``: the preprocessed zarr store (writing it is timed too, once).

After ``make install`` and ``source .venv/bin/activate``::

    python benchmarks/bench_data.py --json -        # or: python -m benchmarks
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import numpy as np
    import pandas as pd
    import torch
    import xarray as xr
    from gridformer.datasets import (
        ForecastDataset,
        TokenStoreDataset,
        open_dataset,
        write_token_store,
    )
    from torch.utils.data import DataLoader

    from gridformer import PatchTokenizer
except ImportError as error:  # run with a Python that lacks the package
    sys.exit(f"{error}: run `make install` and `source .venv/bin/activate` first "
             f"(or use .venv/bin/python); this is {sys.executable}")

BATCH, PATCH = 32, 4


def write_file(folder: Path, years: int) -> Path:
    """Daily 2.5 degree t2m (float32, uncompressed NetCDF-4) with a seasonal cycle."""
    time_ = pd.date_range("2000-01-01", periods=365 * years, freq="D")
    rng = np.random.default_rng(0)
    lat, lon = np.linspace(-90, 90, 73), np.arange(144) * 2.5
    season = 15 * np.cos(2 * np.pi * time_.day_of_year.values / 365.25)[:, None, None]
    t2m = (280 + season + rng.standard_normal((time_.size, 73, 144))).astype(np.float32)
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), t2m)},
                    coords={"time": time_, "lat": lat, "lon": lon})
    path = folder / "t2m_daily_2p5.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path


def timed(fn: Callable[[], int], repeats: int) -> dict:
    """Samples per second of ``fn`` (which returns the samples it served): best and median."""
    rates, samples = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        samples = fn()
        rates.append(samples / (time.perf_counter() - start))
    return {"best": max(rates), "median": statistics.median(rates), "samples": samples,
            "repeats": repeats}


def raw_read(path: Path) -> int:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        values = nc["t2m"][:]
    return int(values.shape[0])  # one new step per sample


def xbatcher_pairs(path: Path) -> int:
    import xbatcher

    ds = xr.open_dataset(path, engine="netcdf4")
    grid = {"lat": ds.sizes["lat"], "lon": ds.sizes["lon"]}
    x_gen = xbatcher.BatchGenerator(ds["t2m"].isel(time=slice(0, -1)), input_dims=grid,
                                    batch_dims={"time": BATCH})
    y_gen = xbatcher.BatchGenerator(ds["t2m"].isel(time=slice(1, None)), input_dims=grid,
                                    batch_dims={"time": BATCH})
    n = 0
    for x, y in zip(x_gen, y_gen, strict=True):
        pair = torch.as_tensor(x.values), torch.as_tensor(y.values)
        n += pair[0].shape[0]
    ds.close()
    return n


def loader_epoch(data: torch.utils.data.Dataset, limit: int | None = None, seed: int = 0,
                 epochs: int = 1) -> int:
    loader = DataLoader(data, batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    n = 0
    for _ in range(epochs):
        for x, _y in loader:
            n += x.shape[0]
            if limit is not None and n >= limit:
                return n
    return n


def forecast(path: Path, cache_bytes: int) -> ForecastDataset:
    ds = open_dataset(path, chunks={"time": 365})
    return ForecastDataset(ds, window=1, lead=1, tokenizer=PatchTokenizer(PATCH),
                           cache_bytes=cache_bytes)


def run(*, quick: bool = False) -> dict:
    """Time every path; the ratios are gridformer / xbatcher (samples per second)."""
    years, repeats = (1, 1) if quick else (10, 5)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_file(folder, years)
        size = path.stat().st_size
        raw = timed(lambda: raw_read(path), repeats)
        peer = timed(lambda: xbatcher_pairs(path), repeats)
        fast = timed(lambda: loader_epoch(forecast(path, 2**30)), repeats)
        warm_data = forecast(path, 2**30)
        loader_epoch(warm_data)
        warm = timed(lambda: loader_epoch(warm_data), repeats)
        slow = timed(lambda: loader_epoch(forecast(path, 0), limit=4 * BATCH), 1)
        start = time.perf_counter()
        store = write_token_store(open_dataset(path, chunks={"time": 365}),
                                  folder / "t2m.zarr", patch_size=PATCH, normalize=False)
        store_seconds = time.perf_counter() - start
        from_store = timed(lambda: loader_epoch(TokenStoreDataset(store.path)), repeats)
    steps = raw["samples"]
    raw_rate = raw["best"]

    def case(name: str, result: dict, **extra) -> dict:
        return {"case": name, "gridformer": result["best"], "median": result["median"],
                "peer": "xbatcher.BatchGenerator", "peer_value": peer["best"],
                "ratio": result["best"] / peer["best"], "units": "samples/s",
                "higher_is_better": True, "fraction_of_raw_read": result["best"] / raw_rate,
                **extra}

    results = [
        case("ForecastDataset fast path, tokens, shuffled, first epoch (reads the file)", fast,
             target=">= 1", met=fast["best"] >= peer["best"]),
        case("ForecastDataset fast path, tokens, shuffled, later epochs (cached)", warm,
             target=None, met=None),
        case("TokenStoreDataset (zarr), tokens, shuffled, first epoch", from_store,
             target=">= 1", met=from_store["best"] >= peer["best"]),
        case("ForecastDataset per-item path (cache_bytes=0), 128 samples", slow, target=None,
             met=None),
        {"case": "raw read of the file (netCDF4, whole variable)", "gridformer": raw_rate,
         "median": raw["median"], "peer": "xbatcher.BatchGenerator", "peer_value": peer["best"],
         "ratio": raw_rate / peer["best"], "units": "steps/s", "target": None, "met": None,
         "higher_is_better": True,
         "bytes_per_second": raw_rate * size / steps},
        {"case": "write_token_store (one-off preprocessing, local threads)",
         "gridformer": steps / store_seconds, "median": steps / store_seconds, "peer": "none",
         "peer_value": None, "ratio": None, "units": "steps/s", "target": None, "met": None,
         "higher_is_better": True},
    ]
    return {"name": "data", "results": results,
            "settings": {"file": f"daily 2.5 deg t2m, {steps} steps x 73 x 144 float32, "
                                 f"{size / 2**20:.0f} MiB NetCDF-4", "batch_size": BATCH,
                         "patch_size": PATCH, "window": 1, "lead": 1, "quick": quick,
                         "repeats": repeats, "torch_threads": threads,
                         "dask_scheduler": "threads (default)", "cpus": os.cpu_count()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 year, 1 repeat")
    parser.add_argument("--json", default="-", metavar="PATH", help="where to write ('-': stdout)")
    args = parser.parse_args()
    try:
        from benchmarks._common import write_json
    except ImportError:  # run as a script: benchmarks/ is on sys.path
        from _common import write_json  # type: ignore[no-redef]
    write_json(run(quick=args.quick), args.json)


if __name__ == "__main__":
    main()
