"""``torch.utils.data.Dataset``s over xarray data: forecast windows and PDE trajectory pairs.

* :class:`ForecastDataset` — (input window -> target at a lead time) pairs from a climate
  ``xr.Dataset``; lazy: each item reads only its own time steps (dask-backed data stays on disk).
* :class:`TrajectoryPairs` — ``(u_t, u_{t+k})`` pairs from ``gridformer.solvers.solve`` output
  (variable ``"u"``, dims ``("time", [sample,] [y,] x)``), for the learned-stencil work.

Both optionally tokenize with a :class:`~gridformer.tokenize.PatchTokenizer` and then expose the
token geometry as ``.layout``; items are then ``(N, D)`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from gridformer.datasets._blocks import DEFAULT_CACHE_BYTES
from gridformer.datasets._forecast_blocks import ForecastBlocks, weight_tokenizer
from gridformer.datasets.climate import lat_weights
from torch.utils.data import Dataset

from gridformer.tokenize import PatchTokenizer, TokenLayout

__all__ = ["ForecastDataset", "TrajectoryPairs"]


def _names(ds: xr.Dataset, names: str | Sequence[str] | None, what: str) -> list[str]:
    names = (
        list(ds.data_vars) if names is None else [names] if isinstance(names, str) else list(names)
    )
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        msg = f"{what} {missing} not in the dataset; it has {sorted(map(str, ds.data_vars))}"
        raise ValueError(msg)
    return names


class ForecastDataset(Dataset):
    """Pairs (input window of ``window`` steps -> target ``lead`` steps after the window's end).

    Parameters
    ----------
    ds
        Dataset with a time dim and spatial dims (``lat``/``lon`` or ``y``/``x``).
    inputs, targets
        Variable names for inputs and targets (default: all data variables for both).
    window
        Input time steps per sample.
    lead
        Steps from the last input step to the target step (``>= 1``).
    stride
        Steps between consecutive samples.
    tokenizer
        Optional tokenizer; items become tokens ``(N, D)`` and :attr:`layout` is set.
    lat_weighted
        Return a third item: cos(lat) weights (mean 1), 0 where the target is NaN; shaped like the
        target grid, or ``(N,)`` per token (mean over the token's valid cells) when tokenized.
    fill_value
        Replaces NaN in untokenized items (tokenized items use the tokenizer's fill value).
    cache_bytes
        Budget in bytes of the block cache (per process: each DataLoader worker has its own).
        Items are served from time blocks aligned with the dask chunks along time (or, for data
        in memory, blocks of a few MiB), each read, tokenized and kept once; ``0`` reads the
        ``window + 1`` steps of every item on its own (the slow path, for one-off access).

    Items are ``(x, y)`` or ``(x, y, w)``: ``x`` is ``(C_in, *S)`` (channels: variable-major, then
    window step, then any other dims) and ``y`` ``(C_out, *S)``, float32; or tokens ``(N, D)``
    in the tokenizer's dtype (by default the data's float dtype). Both paths give the same items.

    When the data do not fit the cache, shuffle with
    :class:`~gridformer.datasets.BlockShuffleSampler` (a few blocks at a time), so that each
    block is read once per epoch rather than once per item.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        *,
        inputs: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        window: int = 1,
        lead: int = 1,
        stride: int = 1,
        time_dim: str = "time",
        tokenizer: PatchTokenizer | None = None,
        lat_weighted: bool = False,
        fill_value: float = 0.0,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if time_dim not in ds.dims:
            msg = f"time_dim={time_dim!r} is not a dim of the dataset; dims are {tuple(ds.dims)}"
            raise ValueError(msg)
        for name, value in (("window", window), ("lead", lead), ("stride", stride)):
            if int(value) < 1:
                msg = f"{name}={value!r} must be a positive int"
                raise ValueError(msg)
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            msg = f"cache_bytes={cache_bytes!r} must be an int >= 0 (0: read every item alone)"
            raise ValueError(msg)
        self.ds = ds
        self.inputs = _names(ds, inputs, "inputs")
        self.targets = _names(ds, targets, "targets")
        self.window, self.lead, self.stride, self.time_dim = window, lead, stride, time_dim
        self.tokenizer, self.lat_weighted, self.fill_value = tokenizer, lat_weighted, fill_value
        n_time = ds.sizes[time_dim]
        self.starts = np.arange(0, n_time - window - lead + 1, stride)
        if self.starts.size == 0:
            msg = f"window={window} + lead={lead} needs more than the {n_time} time steps available"
            raise ValueError(msg)
        self.spatial_dims = (
            ("lat", "lon") if "lat" in ds.dims else ("y", "x") if "y" in ds.dims else ("x",)
        )
        if lat_weighted and "lat" not in ds.coords:
            msg = "lat_weighted=True needs a 'lat' coordinate"
            raise ValueError(msg)
        self.layout: TokenLayout | None = None
        self.target_layout: TokenLayout | None = None
        self._blocks = ForecastBlocks(self, cache_bytes) if cache_bytes else None
        self._dtypes = (torch.float32, torch.float32)
        if tokenizer is not None:
            tx, ty = self._read_item(0)[:2]  # sets the layouts
            self._dtypes = (tx.dtype, ty.dtype)

    def __len__(self) -> int:
        return int(self.starts.size)

    def item_blocks(self) -> np.ndarray:
        """Block index of each item's first time step (for :class:`BlockShuffleSampler`)."""
        if self._blocks is None:
            return np.arange(len(self))
        return self._blocks.block_of(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if self._blocks is None:
            return self._read_item(index)
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        """Items ``indices`` gathered together (``DataLoader`` fetches whole batches so)."""
        if self._blocks is None:
            return [self._read_item(i) for i in indices]
        t0 = self.starts[np.asarray(indices, dtype=np.int64)]  # (B,)
        target = t0 + self.window - 1 + self.lead
        x = self._blocks.gather(self.inputs, t0[:, None] + np.arange(self.window))
        y = self._blocks.gather(self.targets, target[:, None])
        if self.tokenizer is None:
            out = [torch.from_numpy(np.nan_to_num(a, nan=self.fill_value)).float()
                   for a in (x, y)]  # (B, C, *S)
        else:  # (B, N, D), gathered into new tensors (never views of the cache)
            out = [x.to(self._dtypes[0]), y.to(self._dtypes[1])]
        if self.lat_weighted:
            out.append(self._blocks.weight(target))  # (B, *S) or (B, N)
        return list(zip(*(t.unbind(0) for t in out), strict=True))

    # ---------------------------------------------------------------- the per-item slow path
    def _stack(self, block: xr.Dataset, names: list[str], steps: slice | int) -> xr.DataArray:
        parts = []
        for name in names:
            var = block[name].isel({self.time_dim: steps})
            other = [d for d in var.dims if d not in self.spatial_dims]
            var = var.transpose(*other, *self.spatial_dims)
            parts.append(var.data.reshape(-1, *var.shape[len(other) :]))  # (c, *S)
        data = np.concatenate(parts, axis=0)  # (C, *S)
        coords = {d: block[d] for d in self.spatial_dims if d in block.coords}
        return xr.DataArray(data, dims=("channel", *self.spatial_dims), coords=coords)

    def _read_item(self, index: int) -> tuple[torch.Tensor, ...]:
        """One item from its own ``window + 1`` time steps (a dask graph and a read per item)."""
        t0 = int(self.starts[index])
        steps = [*range(t0, t0 + self.window), t0 + self.window - 1 + self.lead]
        names = list(dict.fromkeys(self.inputs + self.targets))
        block = self.ds[names].isel({self.time_dim: steps}).compute()  # reads these steps only
        x = self._stack(block, self.inputs, slice(0, self.window))  # (C_in, *S)
        y = self._stack(block, self.targets, slice(self.window, None))  # (C_out, *S)
        weight = None
        if self.lat_weighted:
            weight = (lat_weights(y["lat"]) * y.notnull().all("channel")).transpose(
                *self.spatial_dims
            )
        if self.tokenizer is None:
            out = [
                torch.from_numpy(np.nan_to_num(a.values, nan=self.fill_value)).float()
                for a in (x, y)
            ]
            if weight is not None:
                out.append(torch.from_numpy(weight.values).float())  # (*S)
            return tuple(out)
        tx, layout = self.tokenizer.encode(x, channel_dim="channel")  # (1, N, D_in)
        ty, target_layout = self.tokenizer.encode(y, channel_dim="channel")  # (1, N, D_out)
        if self.layout is None:  # the geometry is the same for every item
            self.layout, self.target_layout = layout, target_layout
        out = [tx[0], ty[0]]
        if weight is not None:
            tw, _ = weight_tokenizer(self.tokenizer, self.spatial_dims).encode(weight)
            out.append(torch.nan_to_num(tw[0].nanmean(-1)).float())  # (N,)
        return tuple(out)


class TrajectoryPairs(Dataset):
    """``(u_t, u_{t+lead})`` pairs from solver output, over every sample and start time.

    Parameters
    ----------
    ds
        ``gridformer.solvers.solve`` output: variables on dims ``("time", [sample,] [y,] x)``.
    lead
        Saved steps between input and target (``>= 1``).
    variables
        Variable(s) to use (default ``"u"``); several become channels.
    tokenizer
        Optional tokenizer; items become tokens ``(N, D)``; :attr:`layout` is set.
    stride
        Steps between consecutive start times.
    periodic
        Whether the tokens' grid wraps around (default: ``ds.attrs["bc"] == "periodic"``).

    Items are ``(x, y)``: float32 ``([C,] *S)`` each (no ``C`` for one variable), or tokens
    ``(N, D)`` in the tokenizer's dtype (by default the data's: float64 for solver output).
    The data are converted once at construction (solver output is in memory), so items are views.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        *,
        lead: int = 1,
        variables: str | Sequence[str] = "u",
        tokenizer: PatchTokenizer | None = None,
        stride: int = 1,
        periodic: bool | None = None,
    ) -> None:
        names = _names(ds, variables, "variables")
        ref = ds[names[0]]
        if "time" not in ref.dims:
            msg = f"variable {names[0]!r} has dims {ref.dims}; expected ('time', [sample,] [y,] x)"
            raise ValueError(msg)
        n_time = ref.sizes["time"]
        if not 1 <= int(lead) < n_time:
            msg = f"lead={lead!r} must be in 1..{n_time - 1} (the trajectory has {n_time} steps)"
            raise ValueError(msg)
        if int(stride) < 1:
            msg = f"stride={stride!r} must be a positive int"
            raise ValueError(msg)
        self.lead, self.stride, self.variables = int(lead), int(stride), names
        sub = ds[names]
        if "sample" not in ref.dims:
            sub = sub.expand_dims("sample")
        spatial = tuple(d for d in ref.dims if d not in ("time", "sample"))
        sub = sub.transpose("sample", "time", *spatial)
        self.n_sample, self.n_time = sub.sizes["sample"], n_time
        self.starts = np.arange(0, n_time - self.lead, self.stride)
        self.layout: TokenLayout | None = None
        if tokenizer is not None:
            if periodic is None:
                periodic = str(ds.attrs.get("bc", "")).lower() == "periodic"
            data = sub if len(names) > 1 else sub[names[0]]
            tokens, self.layout = tokenizer.encode(data, periodic=periodic)  # (S*T, N, D)
            self.data = tokens.reshape(self.n_sample, n_time, *tokens.shape[1:])
        else:
            arr = np.stack([sub[n].values for n in names], axis=2)  # (S, T, C, *S)
            arr = arr[:, :, 0] if len(names) == 1 else arr
            self.data = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def __len__(self) -> int:
        return self.n_sample * int(self.starts.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            msg = f"index {index} out of range for {len(self)} pairs"
            raise IndexError(msg)
        s, k = divmod(index % len(self), int(self.starts.size))
        t = int(self.starts[k])
        return self.data[s, t], self.data[s, t + self.lead]
