"""Data for gridformer: NetCDF I/O, climate helpers, torch datasets and synthetic generators.

Imported as ``gridformer.datasets`` (the folder is ``datasets/`` at the repository root)::

    from gridformer import datasets

    ds = datasets.open_dataset("t2m_*.nc", variables=["t2m"])   # lazy, lat ascending, lon one run
    anom = datasets.anomalies(ds["t2m"], freq="month")            # cftime safe
    stats = datasets.Standardizer.fit(anom, dims=("time",))       # stored mean/std
    parts = datasets.split_by_time(ds, train=0.7, val=0.15, test=0.15)
    w = datasets.lat_weights(ds)                                  # cos(lat), mean 1

    well = datasets.open_the_well("the_well/datasets/x/data/train")  # The Well HDF5, lazy
    pde = datasets.open_pdebench("1D_Advection_Sols_beta0.1.hdf5")   # PDEBench, either layout
    datasets.write_the_well(solver_output, "out/train/heat.h5")       # the_well reads it back

    pairs = datasets.TrajectoryPairs(solver_output, lead=1, tokenizer=PatchTokenizer(1))
    store = datasets.write_token_store(ds, "t2m.zarr", patch_size=4, anomalies="dayofyear",
                                       stats_time=("1980", "2009"))       # zarr, dask/distributed
    items = datasets.TokenStoreDataset("t2m.zarr", window=2, lead=1)      # token pairs, fast
    field = datasets.random_field((64, 64), spectral_slope=-3.0, seed=0)   # or spectrum="smooth"
    tele = datasets.planted_teleconnection(256, seed=0)
    task = datasets.occlusion_task(512, fraction=0.5, seed=0)              # experiment tasks:
    task = datasets.counting_task(512, seed=0)                             # xarray, truth in
    task = datasets.segmentation_task(512, kind="fronts", seed=0)          # variables / attrs
    clips = datasets.moving_blobs(256, n_frames=5, seed=0)                 # (sample, time, y, x)
    clips = datasets.advection_clips(256, n_frames=5, seed=0)              # FD upwind solver
    task = datasets.spectral_slope_task(512, seed=0)                       # class = slope

The torch datasets (``ForecastDataset``, ``TrajectoryPairs``, ``TokenStoreDataset``) and
``BlockShuffleSampler`` are imported on first use (PEP 562), so NetCDF work does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gridformer.datasets.climate import (
    Standardizer,
    anomalies,
    climatology,
    lat_weights,
    split_by_time,
)
from gridformer.datasets.dynamics_tasks import (
    advection_clips,
    moving_blobs,
    spectral_slope_task,
)
from gridformer.datasets.io import open_dataset, write_netcdf
from gridformer.datasets.pdebench import open_pdebench, write_pdebench
from gridformer.datasets.preprocess import write_token_store
from gridformer.datasets.store import TokenStore, open_token_store
from gridformer.datasets.synthetic import planted_teleconnection, random_field
from gridformer.datasets.the_well import open_the_well, write_the_well
from gridformer.datasets.vision_tasks import counting_task, occlusion_task, segmentation_task

from gridformer.tokenize.geometry import global_grid  # the one cell-centred global grid

if TYPE_CHECKING:  # pragma: no cover
    from gridformer.datasets._blocks import BlockShuffleSampler
    from gridformer.datasets.store_data import TokenStoreDataset
    from gridformer.datasets.torch_data import ForecastDataset, TrajectoryPairs

__all__ = [
    "BlockShuffleSampler",
    "ForecastDataset",
    "Standardizer",
    "TokenStore",
    "TokenStoreDataset",
    "TrajectoryPairs",
    "advection_clips",
    "anomalies",
    "climatology",
    "counting_task",
    "global_grid",
    "lat_weights",
    "moving_blobs",
    "occlusion_task",
    "open_dataset",
    "open_pdebench",
    "open_the_well",
    "open_token_store",
    "planted_teleconnection",
    "random_field",
    "segmentation_task",
    "spectral_slope_task",
    "split_by_time",
    "write_netcdf",
    "write_pdebench",
    "write_the_well",
    "write_token_store",
]

_TORCH_NAMES = {
    "ForecastDataset": "gridformer.datasets.torch_data",
    "TrajectoryPairs": "gridformer.datasets.torch_data",
    "TokenStoreDataset": "gridformer.datasets.store_data",
    "BlockShuffleSampler": "gridformer.datasets._blocks",
}


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        value = getattr(importlib.import_module(_TORCH_NAMES[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'gridformer.datasets' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
