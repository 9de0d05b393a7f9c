"""Streaming for the tokenizer: fill the token tensor block by block from NumPy or dask input.

A dask array is never computed whole: each block of its batch-dim chunk grid (or, without batch
dims, each run of whole space-time tubelets) is computed, patchified straight into its slice of
the output, and dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from gridformer.tokenize._gather import FAST_DTYPES, gather_tokens
from gridformer.tokenize._patchify import patchify

__all__ = ["fill_tokens"]


def _blocks(
    arr: Any,
    batch_shape: tuple[int, ...],
    n_time: int,
    patch: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    stream_time: bool,
    n_tokens: int,
) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...], tuple[tuple[int, int], ...]]]:
    """Yield ``(arr_index, out_index, pads)`` per block: which part of ``arr`` fills which tokens.

    ``out_index`` indexes the output viewed as ``(*batch, N, D)``. Blocks follow the dask chunk
    grid of the batch dims; without batch dims, space-time input is cut along time at chunk
    edges rounded up to whole tubelets (time padding goes to the last block). NumPy input is
    one block.
    """
    nb = len(batch_shape)
    chunks = getattr(arr, "chunks", None)
    if chunks is not None and nb == 0 and stream_time:
        t_axis, tp = arr.ndim - len(patch), patch[0]
        per_frame = n_tokens // ((n_time + sum(pads[0])) // tp)
        edges = np.cumsum((0, *chunks[t_axis]))
        edges = np.unique(np.minimum(-(-edges // tp) * tp, n_time))  # whole tubelets
        for start, stop in itertools.pairwise(edges.tolist()):
            last_pad = pads[0][1] if stop == n_time else 0
            arr_index = (slice(None),) * t_axis + (slice(start, stop),)
            out_index = (slice(start // tp * per_frame, -(-stop // tp) * per_frame),)
            yield arr_index, out_index, ((0, last_pad), *pads[1:])
        return
    if chunks is None or nb == 0:
        spans = [[(0, size)] for size in batch_shape]
    else:
        spans = [list(itertools.pairwise(np.cumsum((0, *c)).tolist())) for c in chunks[:nb]]
    for block in itertools.product(*spans):
        index = tuple(slice(a, e) for a, e in block)
        yield index, index, pads


def fill_tokens(
    arr: Any,
    out: np.ndarray,
    batch_shape: tuple[int, ...],
    n_channels: int,
    n_time: int,
    patch: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    *,
    fill_value: float,
    stream_time: bool = False,
) -> np.ndarray | None:
    """Write tokens into ``out`` ``(B, N, D)`` block by block.

    ``arr`` is a NumPy or dask array ``(*batch, [C], [T], *S)``. A dask array is computed one
    block of its batch-dim chunk grid at a time (spatial chunks are joined per block); with
    no batch dims and space-time tokens (``stream_time``), one run of whole tubelets along
    time at a time. Peak memory is the output plus one block. Returns the missing-cell mask
    ``(B, N, D)`` (NaN or padded cells) when any cell was NaN, else None (padding alone is
    known from the layout).
    """
    out_nd = out.reshape(*batch_shape, *out.shape[1:])  # (*batch, N, D), a view
    n_spatial = len(patch) - 1
    missing = None
    no_nan: list[tuple[Any, ...]] = []  # (out_index, spans, pads) of blocks without NaN
    for arr_index, out_index, block_pads in _blocks(
        arr, batch_shape, n_time, patch, pads, stream_time, out.shape[1]
    ):
        piece = np.asarray(arr[arr_index])  # computes only this block
        target = out_nd[out_index]  # (*b, n, D), a view of the output
        direct = target.flags.c_contiguous
        dest = target if direct else np.empty_like(target)
        flat = dest.reshape(-1, *dest.shape[-2:])  # (b, n, D), still a view
        spans = piece.shape[piece.ndim - n_spatial :]
        piece = piece.reshape(flat.shape[0], n_channels, -1, *spans)  # (b, C, T, *S)
        miss = _fill_block(piece, flat, patch, block_pads, fill_value)
        if not direct:
            target[...] = dest
        if miss is None:
            no_nan.append((out_index, piece.shape[2:], block_pads))
            continue
        if missing is None and target.shape == out_nd.shape:  # one block: its mask is all
            missing = miss.reshape(out_nd.shape)
            continue
        if missing is None:
            missing = np.zeros(out_nd.shape, dtype=bool)
        missing[out_index] = miss.reshape(target.shape)
    if missing is None:
        return None
    for out_index, spans, block_pads in no_nan:  # (n, D), broadcast over batch entries
        missing[out_index] = _padding_mask(spans, patch, block_pads, n_channels)
    return missing.reshape(out.shape)


def _fill_block(
    piece: np.ndarray,
    flat: np.ndarray,
    patch: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    fill_value: float,
) -> np.ndarray | None:
    """Tokens of one block ``(b, C, T, *S)`` into ``flat`` ``(b, n, D)``; mask iff NaNs.

    Float32/float64 data on 1-D and 2-D grids take the one-pass compiled path; other dtypes
    (ints, float16) and grids of more dims the NumPy path.
    """
    if (
        len(patch) <= 3
        and piece.dtype in FAST_DTYPES
        and flat.dtype in FAST_DTYPES
        and flat.flags.c_contiguous
    ):
        b, c, t, *spans = piece.shape
        ones = 3 - len(patch)  # 1-D grids: a y axis of one cell
        piece5 = piece.reshape(b, c, t, *(1,) * ones, *spans)  # (b, C, T, Y, X)
        patch3 = (patch[0], *(1,) * ones, *patch[1:])
        pads3 = (pads[0], *((0, 0),) * ones, *pads[1:])
        return gather_tokens(piece5, flat, patch3, pads3, fill_value)
    if not np.issubdtype(piece.dtype, np.floating):
        piece = piece.astype(np.float64)
    miss, has_nan = patchify(piece, patch, pads, fill_value, flat)
    return miss if has_nan else None


def _padding_mask(
    spans: tuple[int, ...],
    patch: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    n_channels: int,
) -> np.ndarray:
    """``(N, D)`` bool: True for the padding cells of a block of grid size ``spans``."""
    probe = np.zeros((1, 1, *spans), dtype=np.float32)
    one = np.empty((1, *padded_token_shape(spans, patch, pads)), dtype=np.float32)
    miss, _ = patchify(probe, patch, pads, 0.0, one)
    if miss is None:
        return np.zeros((one.shape[1], one.shape[2] * n_channels), dtype=bool)
    return np.tile(miss[0], (1, n_channels))  # features are channel-major


def padded_token_shape(
    spans: tuple[int, ...], patch: tuple[int, ...], pads: tuple[tuple[int, int], ...]
) -> tuple[int, int]:
    """``(N, D / C)`` of the tokens of a grid of size ``spans`` (one channel)."""
    counts = [(s + sum(p)) // k for s, p, k in zip(spans, pads, patch, strict=True)]
    return int(np.prod(counts)), int(np.prod(patch))
