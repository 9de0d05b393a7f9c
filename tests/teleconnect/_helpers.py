"""Small planted-teleconnection datasets for the teleconnect tests."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridformer import datasets


def planted(n_time: int = 80, *, shape=(12, 24), seed: int = 0, slope: float = -0.5
            ) -> xr.Dataset:
    """``x`` (predictor), ``y`` (gridded target) and ``target_index`` (y's target-region mean)."""
    ds = datasets.planted_teleconnection(n_time, shape=shape, seed=seed, spectral_slope=slope)
    weights = np.cos(np.deg2rad(ds["lat"].values))[:, None] * ds["target_mask"]
    index = (ds["y"] * weights).sum(("lat", "lon")) / weights.sum()
    ds["target_index"] = index.assign_attrs(long_name="mean of y over the target region")
    return ds
