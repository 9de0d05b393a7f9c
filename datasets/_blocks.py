"""Time blocks for the torch datasets: where blocks start, an LRU cache of them, a block sampler.

Reading one item at a time from a NetCDF file or a zarr store costs a task graph, a file read and
a tokenization per item. Cutting the time axis into blocks aligned with the storage chunks, and
reading, converting and caching each block once, turns every item into a few array views. The
cache holds blocks up to a byte budget and drops the least recently used; when the data do not
fit, :class:`BlockShuffleSampler` gives a shuffled order that visits a few blocks at a time, so
each block is still read once per epoch.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["BlockCache", "BlockShuffleSampler", "block_edges", "nbytes"]

DEFAULT_CACHE_BYTES = 512 * 2**20  # per process (each DataLoader worker holds its own cache)


def block_edges(n_time: int, chunk_edges: Sequence[int] | None, max_steps: int) -> np.ndarray:
    """Block starts plus ``n_time``: the storage chunk edges, long chunks cut to ``max_steps``.

    Parameters
    ----------
    n_time
        Time steps in all.
    chunk_edges
        Edges of the storage chunks along time (``0, ..., n_time``), or None for unchunked data.
    max_steps
        Longest block (a chunk longer than this is read in several blocks).
    """
    edges = np.unique(np.asarray([0, n_time] if chunk_edges is None else chunk_edges, dtype=int))
    out = [0]
    for start, stop in itertools.pairwise(edges.tolist()):
        out.extend(range(start + max_steps, stop, max_steps))
        out.append(stop)
    return np.unique(np.asarray(out, dtype=np.int64))


def nbytes(value: Any) -> int:
    """Bytes held by nested dicts/tuples/lists of NumPy arrays and tensors."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, torch.Tensor):
        return int(value.numel() * value.element_size())
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(nbytes(v) for v in value)
    return 0


class BlockCache:
    """Least-recently-used cache of loaded blocks, bounded in bytes.

    Parameters
    ----------
    max_bytes
        Budget; the block being returned is always kept, even when it alone exceeds it.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._blocks: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.loads = 0  # blocks read so far (a block read twice counts twice)

    def get(self, index: int, load: Callable[[int], Any]) -> Any:
        """Block ``index`` from the cache, or ``load(index)`` (evicting the oldest over budget)."""
        hit = self._blocks.get(index)
        if hit is not None:
            self._blocks.move_to_end(index)
            return hit[0]
        value = load(index)
        size = nbytes(value)
        self.loads += 1
        while self._blocks and self.bytes + size > self.max_bytes:
            _, (_, old) = self._blocks.popitem(last=False)
            self.bytes -= old
        self._blocks[index] = (value, size)
        self.bytes += size
        return value

    def __getstate__(self) -> dict:
        """Pickled empty: each process (DataLoader worker) fills its own cache."""
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_bytes"])


class BlockShuffleSampler(Sampler[int]):
    """Shuffled item order that visits ``blocks_per_group`` time blocks at a time.

    The blocks are shuffled, taken in groups, and the items whose first time step lies in a
    group are shuffled together; so with a cache of at least ``blocks_per_group + 1`` blocks
    every block is read once per epoch. Epoch ``e`` uses seed ``seed + e`` (call
    :meth:`set_epoch`, as with ``DistributedSampler``).

    Parameters
    ----------
    dataset
        A dataset with ``item_blocks()``: the block of each item's first time step
        (:class:`~gridformer.datasets.ForecastDataset`,
        :class:`~gridformer.datasets.TokenStoreDataset`).
    blocks_per_group
        Blocks whose items are mixed together (more: better mixing, more memory).
    seed
        Base seed of the order.
    """

    def __init__(self, dataset: Any, *, blocks_per_group: int = 4, seed: int = 0) -> None:
        if isinstance(blocks_per_group, bool) or int(blocks_per_group) < 1:
            msg = f"blocks_per_group={blocks_per_group!r} must be a positive int"
            raise ValueError(msg)
        self.item_blocks = np.asarray(dataset.item_blocks())
        self.blocks_per_group, self.seed, self.epoch = int(blocks_per_group), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.item_blocks.size)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed + self.epoch)
        blocks = np.unique(self.item_blocks)
        rng.shuffle(blocks)
        for lo in range(0, blocks.size, self.blocks_per_group):
            group = blocks[lo : lo + self.blocks_per_group]
            items = np.flatnonzero(np.isin(self.item_blocks, group))
            rng.shuffle(items)
            yield from items.tolist()
