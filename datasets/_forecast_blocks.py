"""The block path of :class:`~gridformer.datasets.ForecastDataset`: read, tokenize, keep, gather.

A block is a run of time steps aligned with the dask chunks of the data. It is read with one
``compute``, each variable is converted once into per-step frames (tokens ``(T_b, N, c, P)``
or cells ``(T_b, c, *S)``), and an item is then a gather of its ``window + 1`` frames in the
channel order of the per-item path (variable-major, then window step, then any other dims, in
each variable's own dim order). Items from both paths are equal (tested).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr
from gridformer.datasets._blocks import BlockCache, block_edges
from gridformer.datasets.climate import lat_weights

from gridformer.tokenize import PatchTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from gridformer.datasets.torch_data import ForecastDataset

__all__ = ["ForecastBlocks", "weight_tokenizer"]

_IN_MEMORY_BLOCK_BYTES = 16 * 2**20  # block size for data without dask chunks


def weight_tokenizer(tokenizer: PatchTokenizer, spatial_dims: tuple[str, ...]) -> PatchTokenizer:
    """Tokenizer for per-cell weights: float64, padding cells NaN (left out of token means)."""
    return PatchTokenizer(tokenizer.patch_size, fill_value=float("nan"), pad=tokenizer.pad,
                          spatial_dims=spatial_dims, dtype=torch.float64)


@dataclass(frozen=True)
class _Channels:
    """Where time sits among a variable's non-spatial dims, and the sizes of the others."""

    k: int  # position of time among the non-spatial dims, in the variable's dim order
    sizes: tuple[int, ...]  # the other non-spatial dims' sizes, in order

    def cells(self, stacked: np.ndarray) -> np.ndarray:
        """``(W, c, *S)`` frames -> ``(W * c, *S)`` channels in the variable's dim order."""
        w, spatial = stacked.shape[0], stacked.shape[2:]
        if self.k == 0 or not self.sizes:
            return stacked.reshape(-1, *spatial)
        n = len(self.sizes)
        a = stacked.reshape(w, *self.sizes, *spatial)  # (W, *o, *S)
        perm = [*range(1, self.k + 1), 0, *range(self.k + 1, n + 1), *range(n + 1, a.ndim)]
        return a.transpose(perm).reshape(-1, *spatial)

    def tokens(self, stacked: torch.Tensor) -> torch.Tensor:
        """``(W, N, c, P)`` frames -> ``(N, W * c * P)`` features in the per-item order."""
        w, n_tok, _, p = stacked.shape
        if self.k == 0 or not self.sizes:
            return stacked.permute(1, 0, 2, 3).reshape(n_tok, -1)  # (N, W, c, P) flattened
        n = len(self.sizes)
        a = stacked.reshape(w, n_tok, *self.sizes, p)  # (W, N, *o, P)
        perm = [1, *range(2, 2 + self.k), 0, *range(2 + self.k, 2 + n), 2 + n]
        return a.permute(perm).reshape(n_tok, -1)


class ForecastBlocks:
    """Chunk-aligned time blocks of a ForecastDataset's variables, cached and gathered."""

    def __init__(self, data: ForecastDataset, cache_bytes: int) -> None:
        names = list(dict.fromkeys(data.inputs + data.targets))
        self.ds = data.ds[names]
        self.names, self.targets = names, list(data.targets)
        self.time_dim, self.spatial = data.time_dim, data.spatial_dims
        self.tokenizer, self.lat_weighted = data.tokenizer, data.lat_weighted
        self.channels: dict[str, _Channels] = {}
        frame_bytes, chunk_edges = 0, set()
        for name in names:
            var = self.ds[name]
            if self.time_dim not in var.dims:
                msg = f"variable {name!r} has no {self.time_dim!r} dim (dims {var.dims})"
                raise ValueError(msg)
            other = [d for d in var.dims if d not in self.spatial]
            sizes = tuple(var.sizes[d] for d in other if d != self.time_dim)
            self.channels[name] = _Channels(other.index(self.time_dim), sizes)
            frame_bytes += var.size // var.sizes[self.time_dim] * min(var.dtype.itemsize, 8)
            if var.chunks:
                axis = var.get_axis_num(self.time_dim)
                chunk_edges.update(np.cumsum((0, *var.chunks[axis])).tolist())
        n_time = self.ds.sizes[self.time_dim]
        budget = cache_bytes // 4 if chunk_edges else min(cache_bytes // 4, _IN_MEMORY_BLOCK_BYTES)
        max_steps = max(1, budget // max(frame_bytes, 1))
        self.edges = block_edges(n_time, sorted(chunk_edges) or None, max_steps)
        self._edges = self.edges.tolist()  # for bisect: a Python search per item is faster
        self.cache = BlockCache(cache_bytes)

    def block_of(self, steps: np.ndarray | int) -> np.ndarray:
        """Block index of each time step."""
        return np.searchsorted(self.edges, steps, side="right") - 1

    def _block(self, step: int) -> tuple[dict[str, Any], int]:
        b = bisect.bisect_right(self._edges, step) - 1
        return self.cache.get(b, self._load), self._edges[b]

    def gather(self, names: Sequence[str], steps: Iterable[int]) -> np.ndarray | torch.Tensor:
        """The channels (cells ``(C, *S)``, NaN kept) or tokens ``(N, D)`` of ``steps``."""
        steps = list(steps)
        located = [self._block(t) for t in steps]
        parts = []
        for name in names:
            frames = [block["frames"][name][t - start]
                      for (block, start), t in zip(located, steps, strict=True)]
            if self.tokenizer is None:
                parts.append(self.channels[name].cells(np.stack(frames)))  # (W * c, *S)
            elif len(frames) == 1:  # one step: the frame's (c, P) order is the item's
                parts.append(frames[0].reshape(frames[0].shape[0], -1))  # (N, c * P), a view
            else:
                parts.append(self.channels[name].tokens(torch.stack(frames)))  # (N, W * c * P)
        if self.tokenizer is None:
            return np.concatenate(parts, axis=0)  # (C, *S), dtypes promoted as in the slow path
        return parts[0].clone() if len(parts) == 1 else torch.cat(parts, dim=1)  # (N, D), a copy

    def weight(self, step: int) -> torch.Tensor:
        """Latitude weights of the target at ``step``: ``(*S)`` or ``(N,)``."""
        block, start = self._block(step)
        return block["weight"][step - start].clone()

    def _load(self, b: int) -> dict[str, Any]:
        """Read block ``b`` once and convert each variable into frames."""
        window = {self.time_dim: slice(int(self.edges[b]), int(self.edges[b + 1]))}
        blk = self.ds.isel(window).compute()  # one read for the whole block
        frames = {}
        for name in self.names:
            var = blk[name]
            other = [d for d in var.dims if d not in (*self.spatial, self.time_dim)]
            arr = var.transpose(self.time_dim, *other, *self.spatial).values  # (T_b, *o, *S)
            arr = arr.reshape(arr.shape[0], -1, *arr.shape[1 + len(other) :])  # (T_b, c, *S)
            frames[name] = arr if self.tokenizer is None else self._tokens(arr)
        weight = self._weights(blk) if self.lat_weighted else None
        return {"frames": frames, "weight": weight}

    def _tokens(self, arr: np.ndarray) -> torch.Tensor:
        """Cells ``(T_b, c, *S)`` -> tokens ``(T_b, N, c, P)`` (NaN and padding: fill value)."""
        tokens, _ = self.tokenizer.encode(arr, dims=("frame", "channel", *self.spatial),
                                          channel_dim="channel", periodic=False)  # (T_b, N, c*P)
        return tokens.reshape(*tokens.shape[:2], arr.shape[1], -1)

    def _weights(self, blk: xr.Dataset) -> torch.Tensor:
        """cos(lat) weights, 0 where any target channel is NaN: ``(T_b, *S)`` or ``(T_b, N)``."""
        valid = None
        for name in self.targets:
            var = blk[name].notnull()
            other = [d for d in var.dims if d not in (*self.spatial, self.time_dim)]
            ok = var.all(other) if other else var
            valid = ok if valid is None else valid & ok
        cells = (lat_weights(blk["lat"]) * valid).transpose(self.time_dim, *self.spatial).values
        if self.tokenizer is None:
            return torch.from_numpy(cells).float()  # (T_b, *S)
        tw, _ = weight_tokenizer(self.tokenizer, self.spatial).encode(
            cells, dims=("frame", *self.spatial), periodic=False)  # (T_b, N, P)
        return torch.nan_to_num(tw.nanmean(-1)).float()  # (T_b, N)
