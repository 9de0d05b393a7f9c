"""The block path of :class:`~gridformer.datasets.ForecastDataset`: read, tokenize, keep, gather.

A block is a run of time steps aligned with the dask chunks of the data. It is read with one
``compute``, each variable is converted once into per-step frames (tokens ``(T_b, N, c, P)``
or cells ``(T_b, c, *S)``), and an item is then a gather of its ``window + 1`` frames in the
channel order of the per-item path (variable-major, then window step, then any other dims, in
each variable's own dim order). Items from both paths are equal (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
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
        """``(B, W, c, *S)`` frames -> ``(B, W * c, *S)`` channels in the variable's dim order."""
        b, w, spatial = stacked.shape[0], stacked.shape[1], stacked.shape[3:]
        if self.k == 0 or not self.sizes:
            return stacked.reshape(b, -1, *spatial)
        n = len(self.sizes)
        a = stacked.reshape(b, w, *self.sizes, *spatial)  # (B, W, *o, *S)
        perm = [0, *range(2, 2 + self.k), 1, *range(2 + self.k, 2 + n), *range(2 + n, a.ndim)]
        return a.transpose(perm).reshape(b, -1, *spatial)

    def tokens(self, stacked: Any) -> Any:
        """``(B, W, N, c, P)`` frames -> ``(B, N, W * c * P)`` features in the per-item order.

        NumPy arrays or (bfloat16) tensors alike.
        """
        b, w, n_tok, _, p = stacked.shape
        if w == 1:  # one step: the frame's (c, P) order is the item's
            return stacked.reshape(b, n_tok, -1)
        if self.k == 0 or not self.sizes:
            perm = [0, 2, 1, 3, 4]  # (B, N, W, c, P)
        else:
            n = len(self.sizes)
            stacked = stacked.reshape(b, w, n_tok, *self.sizes, p)  # (B, W, N, *o, P)
            perm = [0, 2, *range(3, 3 + self.k), 1, *range(3 + self.k, 3 + n), 3 + n]
        moved = stacked.permute(perm) if isinstance(stacked, torch.Tensor) else (
            stacked.transpose(perm))
        return moved.reshape(b, n_tok, -1)


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
        self._edges = self.edges.tolist()
        self.cache = BlockCache(cache_bytes)

    def block_of(self, steps: np.ndarray | int) -> np.ndarray:
        """Block index of each time step."""
        return np.searchsorted(self.edges, steps, side="right") - 1

    def _frames(self, key: str | None, names: Sequence[str | None], steps: np.ndarray
                ) -> dict[Any, Any]:
        """Frames of ``steps`` (flat) per name, gathered block by block: ``(S, ...)`` each."""
        where = self.block_of(steps)
        out: dict[Any, Any] = {}
        for b in np.unique(where).tolist():
            sel = np.flatnonzero(where == b)
            block = self.cache.get(b, self._load)
            offsets = steps[sel] - self._edges[b]
            for name in names:
                arr = block[key][name] if key else block["weight"]
                if name not in out:
                    empty = np.empty if isinstance(arr, np.ndarray) else torch.empty
                    out[name] = empty((steps.size, *arr.shape[1:]), dtype=arr.dtype)
                if isinstance(arr, np.ndarray):  # NumPy: no thread pool for small copies
                    out[name][sel] = arr[offsets]
                else:
                    out[name][torch.from_numpy(sel)] = arr[torch.from_numpy(offsets)]
        return out

    def gather(self, names: Sequence[str], steps: np.ndarray) -> np.ndarray | torch.Tensor:
        """Channels ``(B, C, *S)`` (NaN kept) or tokens ``(B, N, D)`` of ``steps`` ``(B, W)``."""
        b, w = steps.shape
        frames = self._frames("frames", names, steps.ravel())
        parts = []
        for name in names:
            stacked = frames[name].reshape(b, w, *frames[name].shape[1:])
            if self.tokenizer is None:
                parts.append(self.channels[name].cells(stacked))  # (B, W * c, *S)
            else:
                parts.append(self.channels[name].tokens(stacked))  # (B, N, W * c * P)
        if self.tokenizer is None:
            return np.concatenate(parts, axis=1)  # dtypes promoted as in the per-item path
        parts = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in parts]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # promoted alike

    def weight(self, steps: np.ndarray) -> torch.Tensor:
        """Latitude weights of the targets at ``steps`` ``(B,)``: ``(B, *S)`` or ``(B, N)``."""
        return torch.from_numpy(self._frames(None, [None], steps)[None])

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

    def _tokens(self, arr: np.ndarray) -> Any:
        """Cells ``(T_b, c, *S)`` -> tokens ``(T_b, N, c, P)`` (NaN and padding: fill value)."""
        tokens, _ = self.tokenizer.encode(arr, dims=("frame", "channel", *self.spatial),
                                          channel_dim="channel", periodic=False)  # (T_b, N, c*P)
        tokens = tokens.reshape(*tokens.shape[:2], arr.shape[1], -1)
        # gathers run in NumPy: torch's intra-op threads made each small copy ~1000x slower
        # on a busy 2-core machine (measured); NumPy has no bfloat16, so those stay tensors
        return tokens if tokens.dtype == torch.bfloat16 else tokens.numpy()

    def _weights(self, blk: xr.Dataset) -> np.ndarray:
        """cos(lat) weights, 0 where any target channel is NaN: ``(T_b, *S)`` or ``(T_b, N)``."""
        valid = None
        for name in self.targets:
            var = blk[name].notnull()
            other = [d for d in var.dims if d not in (*self.spatial, self.time_dim)]
            ok = var.all(other) if other else var
            valid = ok if valid is None else valid & ok
        cells = (lat_weights(blk["lat"]) * valid).transpose(self.time_dim, *self.spatial).values
        if self.tokenizer is None:
            return cells.astype(np.float32)  # (T_b, *S)
        tw, _ = weight_tokenizer(self.tokenizer, self.spatial).encode(
            cells, dims=("frame", *self.spatial), periodic=False)  # (T_b, N, P)
        return torch.nan_to_num(tw.nanmean(-1)).float().numpy()  # (T_b, N)
