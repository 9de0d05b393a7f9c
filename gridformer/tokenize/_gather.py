"""One-pass patchify (numba): read the grid once, write the tokens once.

The NumPy path (:func:`gridformer.tokenize._patchify.patchify`) pads, masks NaNs, transposes and
builds a cell mask in separate passes. Here one compiled loop writes every token in order,
reading its cells straight from the unpadded input; padding and NaN cells get ``fill_value``
and NaNs are counted on the way. Only when there were NaNs does a second pass build the cell
mask (tokens away from the padding vectorised, as in the first). Rows of tokens (one batch
entry, time patch and row of patches each) run in parallel. Patches 1, 2 or 4 cells wide
take one run per grid row through all the tokens along it instead of going token by token
(whose loops over a patch's cells are then too short to pay).

Arrays are 5-D ``(B, C, T, Y, X)`` (1-D grids with ``Y = 1``) of float32 or float64; tokens
``(B, N, D)`` float32 or float64. Values are copied (or cast, when the dtypes differ), never
computed on, so the tokens hold exactly the input's numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["FAST_DTYPES", "gather_tokens", "padding_valid", "token_valid"]

FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(inline="always")
def _patch_row(rows, tok, ky, x, px, fill):  # pragma: no cover - jit
    """``tok[ky * px + k] = rows[ky, x + k]`` for ``k < px``, NaN -> ``fill``; counts NaNs.

    A loop of its own (with its own counter), so that LLVM vectorises it.
    """
    nan_cells = 0
    for k in range(px):
        value = rows[ky, x + k]
        nan = value != value
        nan_cells += nan
        tok[ky * px + k] = fill if nan else value
    return nan_cells


@njit(inline="always")
def _inner_tokens(arr, toks, b, t0, y0, x0, patch, fill):  # pragma: no cover - jit
    """Tokens ``toks`` ``(n, C * pt, py * px)`` whose cells all lie inside the data.

    ``(t0, y0, x0)`` is the data index of the first token's first cell (all >= 0). Per channel
    and time-in-patch, the ``py`` grid rows are read as one C-ordered ``(py, X)`` block while
    the tokens are written in order; NaN -> ``fill``. The innermost indices are unsigned, so
    numba adds no negative-index wrap-around and LLVM vectorises the copy. Returns the number
    of NaNs.
    """
    pt = patch[0]
    py = np.uint64(patch[1])
    px = np.uint64(patch[2])
    x_start = np.uint64(x0)
    nan_cells = 0
    for g in range(toks.shape[1]):  # (channel, time-in-patch) pairs
        rows = arr[b, g // pt, t0 + g % pt, y0:y0 + patch[1]]  # (py, X)
        for j in range(np.uint64(toks.shape[0])):
            tok = toks[j, g]  # (py * px,)
            x = x_start + j * px
            for ky in range(py):
                nan_cells += _patch_row(rows, tok, ky, x, px, fill)
    return nan_cells


@njit(inline="always")
def _token_run(row, out, dst, src, n, step, px, fill):  # pragma: no cover - jit
    """``out[dst + j * step + k] = row[src + j * px + k]`` for ``j < n``, ``k < px``; NaN ->
    ``fill``; returns the NaNs. Called with a literal ``px``, so LLVM unrolls the ``k`` loop."""
    nan_cells = 0
    for j in range(n):
        d = dst + j * step
        s = src + j * px
        for k in range(px):
            value = row[s + k]
            nan = value != value
            nan_cells += nan
            out[d + k] = fill if nan else value
    return nan_cells


@njit(inline="always")
def _mask_run(row, flags, dst, src, n, step, px):  # pragma: no cover - jit
    """As :func:`_token_run`, writing the missing (NaN) flags into ``flags`` instead."""
    for j in range(n):
        d = dst + j * step
        s = src + j * px
        for k in range(px):
            value = row[s + k]
            flags[d + k] = value != value


@njit(inline="always")
def _narrow_run(row, out, flags, dst, src, n, step, px, fill, write_mask):  # pragma: no cover
    """One grid row into every token along it: values (returns the NaNs) or flags."""
    if write_mask:
        _mask_run(row, flags, dst, src, n, step, px)
        return 0
    return _token_run(row, out, dst, src, n, step, px, fill)


@njit(inline="always")
def _inner_narrow(arr, out, flags, first, n, b, t0, y0, x0, patch, fill,
                  write_mask):  # pragma: no cover - jit
    """As :func:`_inner_tokens` / :func:`_inner_mask` for patches 1, 2 or 4 cells wide.

    ``out`` and ``flags`` are the tokens and the mask viewed as ``(B * N * D,)``; ``first`` is
    the flat index ``b * N + n`` of the first token. Token by token, a narrow patch leaves the
    loops over its rows and cells too short to pay; here each grid row is one run that writes
    its ``px`` cells into every token along it (stride ``D``), with ``px`` a literal so that
    the inner loop unrolls. Indices are unsigned (no wrap-around checks). Returns the NaNs.
    """
    pt = patch[0]
    py = np.uint64(patch[1])
    px = np.uint64(patch[2])
    groups = np.uint64(arr.shape[1] * pt)  # (channel, time-in-patch) pairs
    step = groups * py * px  # D
    start = np.uint64(first) * step
    x_start = np.uint64(x0)
    count = np.uint64(n)
    nan_cells = 0
    for g in range(groups):
        for ky in range(py):
            row = arr[b, g // pt, t0 + g % pt, y0 + ky]  # (X,)
            dst = start + (g * py + ky) * px
            if px == 1:
                nan_cells += _narrow_run(row, out, flags, dst, x_start, count, step,
                                         np.uint64(1), fill, write_mask)
            elif px == 2:
                nan_cells += _narrow_run(row, out, flags, dst, x_start, count, step,
                                         np.uint64(2), fill, write_mask)
            else:
                nan_cells += _narrow_run(row, out, flags, dst, x_start, count, step,
                                         np.uint64(4), fill, write_mask)
    return nan_cells


@njit(inline="always")
def _inner_mask(arr, flags, b, t0, y0, x0, patch):  # pragma: no cover - jit
    """As :func:`_inner_tokens`, but the missing (NaN) flags ``(n, C * pt, py * px)``."""
    pt = patch[0]
    py = np.uint64(patch[1])
    px = np.uint64(patch[2])
    x_start = np.uint64(x0)
    for g in range(flags.shape[1]):  # (channel, time-in-patch) pairs
        rows = arr[b, g // pt, t0 + g % pt, y0:y0 + patch[1]]  # (py, X)
        for j in range(np.uint64(flags.shape[0])):
            flag = flags[j, g]  # (py * px,)
            x = x_start + j * px
            for ky in range(py):
                for k in range(px):
                    value = rows[ky, x + k]
                    flag[ky * px + k] = value != value


@njit(inline="always")
def _edge_token(arr, tok, flags, b, t0, y0, x0, patch, fill, write_mask):  # pragma: no cover
    """One token cell by cell: values into ``tok`` (D,), or missing flags into ``flags`` (D,).

    ``(t0, y0, x0)`` is the data index of the token's first cell (negative in padding).
    Returns the number of NaNs read.
    """
    _, n_chan, n_t, n_y, n_x = arr.shape
    nan_cells = 0
    d = 0
    for c in range(n_chan):
        for kt in range(patch[0]):
            t = t0 + kt
            for ky in range(patch[1]):
                y = y0 + ky
                for kx in range(patch[2]):
                    x = x0 + kx
                    if 0 <= t < n_t and 0 <= y < n_y and 0 <= x < n_x:
                        value = arr[b, c, t, y, x]
                        missing = value != value
                        nan_cells += missing
                    else:
                        value = fill
                        missing = True
                    if write_mask:
                        flags[d] = missing
                    else:
                        tok[d] = fill if missing else value
                    d += 1
    return nan_cells


@njit(parallel=True, cache=True)
def _gather(arr, out, out_flat, out4, mask, mask_flat, mask4, counts, patch, start, fill,
            write_mask):  # pragma: no cover - jit
    """Write tokens ``out`` ``(B, N, D)`` (or, with ``write_mask``, ``mask``) from ``arr``.

    ``out_flat`` and ``out4`` are ``out`` viewed as ``(B * N * D,)`` and ``(B, N, C * pt, py *
    px)``; ``mask_flat`` and ``mask4`` are ``mask`` viewed so.
    ``counts`` = tokens per axis ``(nt, ny, nx)``; ``patch`` = ``(pt, py, px)``; ``start`` =
    the padding before the data per axis: token cell ``j`` of an axis reads data index
    ``j - start``. Returns the number of NaN cells read.
    """
    n_batch, _, n_t, n_y, n_x = arr.shape
    nt, ny, nx = counts[0], counts[1], counts[2]
    pt, py, px = patch[0], patch[1], patch[2]
    lo = min((start[2] + px - 1) // px, nx)  # tokens [lo, hi) along x hold no padding
    hi = max(min((start[2] + n_x) // px, nx), lo)
    nan_cells = 0
    for row in prange(n_batch * nt * ny):
        b = row // (nt * ny)
        it = row // ny % nt
        iy = row % ny
        n0 = (it * ny + iy) * nx
        t0 = it * pt - start[0]
        y0 = iy * py - start[1]
        inside = t0 >= 0 and t0 + pt <= n_t and y0 >= 0 and y0 + py <= n_y
        first, last = (lo, hi) if inside else (0, 0)
        if last > first and (px == 1 or px == 2 or px == 4):
            nan_cells += _inner_narrow(arr, out_flat, mask_flat, b * out.shape[1] + n0 + first,
                                       last - first, b, t0, y0, first * px - start[2], patch,
                                       fill, write_mask)
        elif last > first and write_mask:
            _inner_mask(arr, mask4[b, n0 + first:n0 + last], b, t0, y0, first * px - start[2],
                        patch)
        elif last > first:
            nan_cells += _inner_tokens(arr, out4[b, n0 + first:n0 + last], b, t0, y0,
                                       first * px - start[2], patch, fill)
        for ix in range(nx):
            if first <= ix < last:
                continue
            flags = mask[b, n0 + ix] if write_mask else mask[0, 0]
            nan_cells += _edge_token(arr, out[b, n0 + ix], flags, b, t0, y0,
                                     ix * px - start[2], patch, fill, write_mask)
    return nan_cells


def gather_tokens(arr: np.ndarray, out: np.ndarray, patch: tuple[int, int, int],
                  pads: tuple[tuple[int, int], ...], fill_value: float) -> np.ndarray | None:
    """Fill ``out`` ``(B, N, D)`` from ``arr`` ``(B, C, T, Y, X)``; NaN and padding -> fill.

    Returns the missing-cell mask ``(B, N, D)`` bool (NaN or padding) when ``arr`` held NaNs,
    else None.
    """
    counts = np.array([(s + sum(p)) // k for s, p, k in zip(arr.shape[2:], pads, patch,
                                                           strict=True)], dtype=np.int64)
    patch_arr = np.array(patch, dtype=np.int64)
    start = np.array([p[0] for p in pads], dtype=np.int64)
    fill = out.dtype.type(fill_value)
    out4 = out.reshape(*out.shape[:2], arr.shape[1] * patch[0], patch[1] * patch[2])
    no_mask = np.zeros((1, 1, 1), dtype=np.bool_)
    flat = out.reshape(-1)  # (B * N * D,), a view
    nan_cells = _gather(arr, out, flat, out4, no_mask, no_mask.reshape(-1), no_mask[..., None],
                        counts, patch_arr, start, fill, False)
    if nan_cells == 0:
        return None
    mask = np.empty(out.shape, dtype=np.bool_)
    _gather(arr, out, flat, out4, mask, mask.reshape(-1), mask.reshape(out4.shape), counts,
            patch_arr, start, fill, True)
    return mask


@njit(parallel=True, cache=True)
def _any_present(flags, valid):  # pragma: no cover - jit
    """``valid[i] = not flags[i].all()`` for ``flags`` ``(M, D)``; stops at a present cell."""
    for i in prange(flags.shape[0]):
        row = flags[i]
        present = False
        for d in range(row.shape[0]):
            if not row[d]:
                present = True
                break
        valid[i] = present


def token_valid(missing: np.ndarray) -> np.ndarray:
    """``(B, N)`` bool from the missing-cell mask ``(B, N, D)``: tokens with a present cell.

    The same as ``~missing.all(axis=-1)``, which NumPy reduces over the short last axis at
    about a third of a copy's speed; this loop stops at each token's first present cell.
    """
    n_tokens = int(np.prod(missing.shape[:-1]))
    flags = np.ascontiguousarray(missing).reshape(n_tokens, missing.shape[-1])  # (B * N, D)
    valid = np.empty(flags.shape[0], dtype=np.bool_)
    if flags.shape[1] == 0:
        valid[:] = False
    else:
        _any_present(flags, valid)
    return valid.reshape(missing.shape[:-1])


def padding_valid(spans: tuple[int, ...], patch: tuple[int, ...],
                  pads: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``(N,)`` bool: tokens with at least one data cell (not all padding), row-major order."""
    valid = np.ones((), dtype=bool)
    for size, k, (before, after) in zip(spans, patch, pads, strict=True):
        cells = np.zeros(size + before + after, dtype=bool)
        cells[before:before + size] = True
        valid = np.multiply.outer(valid, cells.reshape(-1, k).any(axis=1))
    return valid.reshape(-1)
