"""The array core of the tokenizer: pad + reshape + permute, and the exact inverse.

Arrays are in the canonical order ``(B, C, T, *S)``: batch, channel, time (size 1 for purely
spatial tokens) and the spatial dims. Tokens are ``(B, N, D)`` with ``N = prod(n_k)`` over the
patched axes ``(T, *S)`` (row-major, last spatial dim fastest) and ``D = C * prod(p_k)`` ordered
``(channel, time-in-patch, *space-in-patch)``. No Python loop runs over patches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["patchify", "unpatchify"]


def _perm(n_patched: int) -> tuple[list[int], list[int]]:
    """Permutation ``(B, C, n0, p0, n1, p1, ...)`` -> ``(B, n0, n1, ..., C, p0, p1, ...)``."""
    outer = [2 + 2 * k for k in range(n_patched)]
    inner = [3 + 2 * k for k in range(n_patched)]
    return [0, *outer, 1, *inner], outer


def patchify(
    arr: np.ndarray,
    patch: Sequence[int],
    pads: Sequence[tuple[int, int]],
    fill_value: float,
    out: np.ndarray,
) -> tuple[np.ndarray | None, bool]:
    """Cut ``arr`` ``(B, C, T, *S)`` into tokens written to ``out`` ``(B, N, D)``.

    NaN cells and padding cells are written as ``fill_value``.

    Returns
    -------
    missing : np.ndarray or None
        ``(B, N, D)`` bool, True for NaN or padded cells, or None when there are none.
    has_nan : bool
        Whether ``arr`` held any NaN (padding aside).
    """
    b, c = arr.shape[:2]
    spans = arr.shape[2:]
    nan = np.isnan(arr) if np.issubdtype(arr.dtype, np.floating) else None
    if nan is not None and not nan.any():
        nan = None
    has_nan = nan is not None
    if nan is not None:
        arr = np.where(nan, np.asarray(fill_value, dtype=arr.dtype), arr)
    padded = any(sum(p) for p in pads)
    if padded:
        width = [(0, 0), (0, 0), *pads]
        arr = np.pad(arr, width, constant_values=fill_value)
        nan = np.pad(
            nan if nan is not None else np.zeros((b, c, *spans), dtype=bool),
            width,
            constant_values=True,
        )
    counts = [s // p for s, p in zip(arr.shape[2:], patch, strict=True)]
    split = [b, c, *[v for n, p in zip(counts, patch, strict=True) for v in (n, p)]]
    perm, _ = _perm(len(patch))
    view = out.reshape([b, *counts, c, *patch])  # (B, n0, n1, ..., C, p0, p1, ...)
    view[...] = arr.reshape(split).transpose(perm)
    if nan is None:
        return None, False
    return nan.reshape(split).transpose(perm).reshape(out.shape), has_nan  # (B, N, D)


def unpatchify(
    tokens: np.ndarray,
    channels: int,
    patch: Sequence[int],
    pads: Sequence[tuple[int, int]],
    spans: Sequence[int],
) -> np.ndarray:
    """Inverse of :func:`patchify`: tokens ``(B, N, D)`` -> ``(B, C, T, *S)``, padding cropped."""
    b = tokens.shape[0]
    padded_spans = [s + sum(p) for s, p in zip(spans, pads, strict=True)]
    counts = [s // p for s, p in zip(padded_spans, patch, strict=True)]
    perm, _ = _perm(len(patch))
    inverse = np.argsort(perm)
    arr = tokens.reshape([b, *counts, channels, *patch]).transpose(inverse)
    arr = arr.reshape([b, channels, *padded_spans])  # (B, C, T_pad, *S_pad)
    crop = tuple(slice(before, before + s) for (before, _), s in zip(pads, spans, strict=True))
    return arr[(slice(None), slice(None), *crop)]
