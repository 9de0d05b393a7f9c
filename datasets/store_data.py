"""``TokenStoreDataset``: forecast pairs of tokens straight from a token store (zarr).

The items are those of a tokenized :class:`~gridformer.datasets.ForecastDataset` over the
store's (anomalised, standardised) data: ``x`` ``(N, D_in)`` with features variable-major, then
window step, then patch cell; ``y`` ``(N, D_out)``; float32. They are gathered from blocks of
stored zarr chunks, each read once and cached (see :mod:`gridformer.datasets._blocks`), so a
``DistributedSampler`` (as in ``fit`` under ``torchrun``), a ``DataLoader`` or
:class:`~gridformer.datasets.BlockShuffleSampler` can draw them in any order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gridformer.datasets._blocks import DEFAULT_CACHE_BYTES, BlockCache, block_edges
from gridformer.datasets.store import TokenStore, open_token_store
from torch.utils.data import Dataset

__all__ = ["TokenStoreDataset"]


def _subset(store: TokenStore, names: str | Sequence[str] | None, what: str) -> list[str]:
    names = store.variables if names is None else [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in store.variables]
    if missing:
        msg = f"{what} {missing} not in the token store; it has {store.variables}"
        raise ValueError(msg)
    return names


class _StepViews:
    """Per-step tensor views of a cached block (the block's bytes are counted once)."""

    __slots__ = ("steps",)

    def __init__(self, steps: tuple[torch.Tensor, ...]) -> None:
        self.steps = steps


class TokenStoreDataset(Dataset):
    """Pairs (``window`` input steps -> the step ``lead`` after the window) from a token store.

    Parameters
    ----------
    store
        A :class:`~gridformer.datasets.TokenStore` or the path of one.
    inputs, targets
        Variables of the inputs and targets (default: all stored variables for both).
    window, lead, stride
        Input steps per item, steps from the last input to the target, steps between items.
    lat_weighted
        Return a third item ``(N,)``: the stored latitude weights of the target step (needs
        a lat/lon store and ``targets`` = all stored variables, the cells those weights count).
    frames
        The stored steps to draw items from (a ``slice`` of step positions; default all): every
        input and target step of an item lies inside.
    cache_bytes
        Budget of the block cache in bytes (per process).

    Attributes
    ----------
    layout
        The store's ``TokenLayout`` (``valid``: tokens valid at any stored step).
    """

    def __init__(
        self,
        store: TokenStore | str | os.PathLike[str],
        *,
        inputs: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        window: int = 1,
        lead: int = 1,
        stride: int = 1,
        lat_weighted: bool = False,
        frames: slice | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.store = store if isinstance(store, TokenStore) else open_token_store(store)
        for name, value in (("window", window), ("lead", lead), ("stride", stride)):
            if isinstance(value, bool) or int(value) < 1:
                msg = f"{name}={value!r} must be a positive int"
                raise ValueError(msg)
        self.inputs = _subset(self.store, inputs, "inputs")
        self.targets = _subset(self.store, targets, "targets")
        self.window, self.lead, self.stride = int(window), int(lead), int(stride)
        frames = frames if frames is not None else slice(None)
        if not isinstance(frames, slice) or frames.step not in (None, 1):
            msg = f"frames={frames!r} must be a slice of step positions with step 1"
            raise ValueError(msg)
        f0, f1, _ = frames.indices(self.store.n_time)
        self.starts = f0 + np.arange(0, f1 - f0 - self.window - self.lead + 1, self.stride)
        if self.starts.size == 0:
            msg = (f"window={window} + lead={lead} needs more than the {max(f1 - f0, 0)} steps "
                   f"of frames={frames!r} (the store has {self.store.n_time})")
            raise ValueError(msg)
        if lat_weighted and not self.store.has_weight:
            msg = "lat_weighted=True needs a lat/lon token store (this one has no weights)"
            raise ValueError(msg)
        if lat_weighted and sorted(self.targets) != sorted(self.store.variables):
            msg = (f"lat_weighted=True needs targets = all stored variables "
                   f"{self.store.variables} (the stored weights count cells where every "
                   f"variable is valid), not {self.targets}")
            raise ValueError(msg)
        self.lat_weighted = bool(lat_weighted)
        self.layout = self.store.layout
        self._in = [self.store.feature_slices[v] for v in self.inputs]
        self._out = [self.store.feature_slices[v] for v in self.targets]
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 1:
            msg = f"cache_bytes={cache_bytes!r} must be a positive int"
            raise ValueError(msg)
        # blocks of whole stored chunks, up to a quarter of the cache: few reads, each large
        chunk = self.store.time_chunks[0]
        step_bytes = self.store.n_tokens * (self.store.n_features * 4 + 5)
        max_steps = max(chunk, (cache_bytes // 4 // step_bytes) // chunk * chunk)
        self.edges = block_edges(self.store.n_time, None, max_steps)
        self._edges = self.edges.tolist()
        self._all = [self.store.feature_slices[v] for v in self.store.variables]
        self.cache = BlockCache(cache_bytes)

    def __len__(self) -> int:
        return int(self.starts.size)

    def item_blocks(self) -> np.ndarray:
        """Block index of each item's first step (for :class:`BlockShuffleSampler`)."""
        return np.searchsorted(self.edges, self.starts, side="right") - 1

    def valid_rows(self) -> torch.Tensor:
        """``(len, N)`` bool: tokens valid in any input step of each item."""
        valid = self.store.valid  # (T, N)
        rows = np.zeros((len(self), valid.shape[1]), dtype=bool)
        for w in range(self.window):
            rows |= valid[self.starts + w]
        return torch.from_numpy(rows)

    def _load(self, b: int) -> dict[str, np.ndarray]:
        a, e = int(self.edges[b]), int(self.edges[b + 1])
        block = {"tokens": self.store.read("tokens", a, e)}  # (T_b, N, F)
        if self.lat_weighted:
            block["weight"] = self.store.read("weight", a, e)  # (T_b, N)
        return block

    def _frames(self, name: str, steps: np.ndarray) -> np.ndarray:
        """Stored ``name`` at ``steps`` (any shape), gathered block by block (a new array)."""
        flat = steps.ravel()
        where = np.searchsorted(self.edges, flat, side="right") - 1
        out = None
        for b in np.unique(where).tolist():
            sel = np.flatnonzero(where == b)
            block = self.cache.get(b, self._load)[name]
            if out is None:
                out = np.empty((flat.size, *block.shape[1:]), dtype=block.dtype)
            out[sel] = block[flat[sel] - self._edges[b]]
        return out.reshape(*steps.shape, *out.shape[1:])

    def _features(self, steps: np.ndarray, slices: list[slice]) -> np.ndarray:
        """``(B, N, D)`` from steps ``(B, W)``: per variable, its cells of each step."""
        frames = self._frames("tokens", steps)  # (B, W, N, F)
        if steps.shape[1] == 1 and slices == self._all:  # one step of every variable
            return frames[:, 0]
        b, _, n_tok = frames.shape[:3]
        parts = [frames[..., s].transpose(0, 2, 1, 3).reshape(b, n_tok, -1)
                 for s in slices]  # (B, N, W * P) each
        return np.concatenate(parts, axis=2)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t.clone() for t in self.__getitems__([index])[0])  # never the cache

    def _step_views(self, b: int, name: str) -> tuple[torch.Tensor, ...]:
        """Each step of cached block ``b``'s ``name`` as a tensor view, made once per load."""
        block = self.cache.get(b, self._load)
        views = block.get(("views", name))
        if views is None:  # a _StepViews: not counted again by the cache's byte budget
            views = block[("views", name)] = _StepViews(torch.from_numpy(block[name]).unbind(0))
        return views.steps

    def _views(self, steps: np.ndarray, name: str) -> list[torch.Tensor]:
        """Stored ``name`` at each of ``steps`` ``(B,)``: views of the cached blocks."""
        where = (np.searchsorted(self.edges, steps, side="right") - 1).tolist()
        return [self._step_views(b, name)[step - self._edges[b]]  # (N, F) or (N,)
                for b, step in zip(where, steps.tolist(), strict=True)]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        """Items ``indices`` (``DataLoader`` fetches whole batches so).

        With one input step of every stored variable as input and target, the items are views
        of the cached blocks, which the ``DataLoader``'s collation copies into the batch once;
        otherwise they are gathered into new arrays. ``dataset[i]`` always returns copies.
        """
        t0 = self.starts[np.asarray(indices, dtype=np.int64)]  # (B,)
        target = t0 + self.window - 1 + self.lead
        if self.window == 1 and self._in == self._all and self._out == self._all:
            parts = [self._views(t0, "tokens"), self._views(target, "tokens")]
            if self.lat_weighted:
                parts.append(self._views(target, "weight"))
            return list(zip(*parts, strict=True))
        out = [torch.from_numpy(self._features(t0[:, None] + np.arange(self.window), self._in)),
               torch.from_numpy(self._features(target[:, None], self._out))]
        if self.lat_weighted:
            out.append(torch.from_numpy(self._frames("weight", target)))  # (B, N)
        return list(zip(*(t.unbind(0) for t in out), strict=True))

    def with_valid_rows(self) -> Any:
        """:attr:`layout` whose ``valid`` has one row per item (for ``fit``'s batch masks);
        the layout itself when every token is valid in every item."""
        rows = self.valid_rows()
        if bool(rows.all()):
            return self.layout
        return dataclasses.replace(self.layout, valid=rows)
