"""Position encodings, each a small function or layer that knows nothing of the model.

- :func:`resample_absolute` — a learned absolute table moved to another grid (bicubic, each
  axis on its own, never assuming a square grid); a pure function of the old and new shape.
- :func:`sincos_embedding` — fixed n-D sine-cosine table of the patch index.
- :func:`frame_embedding` — fixed 1-D sine-cosine code of each token's frame (space-time tokens).
- :func:`relative_index` + :class:`RelativePositionBias` — a per-head bias indexed by the integer
  token offset (key minus query, in patches, clipped), so the weights work on any grid size.
- :class:`DistanceBias` — ``-distance_bias * d / scale`` per head, fixed or learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DistanceBias",
    "RelativePositionBias",
    "frame_embedding",
    "gather_relative_bias",
    "relative_index",
    "resample_absolute",
    "sincos_embedding",
    "unclipped_relative_index",
]


def resample_absolute(table: Tensor, grid_shape: Sequence[int]) -> Tensor:
    """Resample an absolute position table ``(*old_grid, C)`` to ``(*grid_shape, C)``.

    Bicubic interpolation (``align_corners=False``) with the height and width scaled
    independently; a 1-D table is treated as a ``(1, L)`` image. Returns ``table`` itself when the
    shapes already match.

    Raises
    ------
    ValueError
        When the number of grid dims differs (a 2-D table cannot serve a 1-D layout) or is not
        1 or 2.
    """
    old = tuple(table.shape[:-1])
    new = tuple(int(n) for n in grid_shape)
    if len(old) != len(new):
        msg = (
            f"the absolute position table was learned on a {len(old)}-D reference_grid={old} "
            f"and cannot be resampled to a {len(new)}-D layout with patch_grid_shape={new}; "
            f"use position='relative' or 'sincos', or a reference_grid with {len(new)} dims"
        )
        raise ValueError(msg)
    if old == new:
        return table
    if len(old) not in (1, 2):
        msg = f"absolute tables can be resampled in 1-D or 2-D, not {len(old)}-D"
        raise ValueError(msg)
    C = table.shape[-1]
    image = table.reshape(1, *((1,) * (2 - len(old))), *old, C).movedim(-1, 1)  # (1, C, h, w)
    size = (1, *new) if len(new) == 1 else new
    image = F.interpolate(image.float(), size=size, mode="bicubic", align_corners=False)
    return image.movedim(1, -1).reshape(*new, C).to(table.dtype)  # (*new, C)


def sincos_embedding(grid_shape: Sequence[int], dim: int) -> Tensor:
    """Fixed sine-cosine embedding of the patch index, ``(prod(grid_shape), dim)`` float32.

    Each grid axis gets ``dim // (2 * ndim)`` frequencies (sin and cos, MAE style, base 10000);
    leftover channels are zero. Rows are in row-major (last axis fastest) token order.
    """
    ndim = len(grid_shape)
    per_axis = dim // (2 * ndim)
    coords = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in grid_shape),
                            indexing="ij")
    parts = []
    if per_axis:
        freqs = 1.0 / 10000 ** (torch.arange(per_axis, dtype=torch.float64) / per_axis)
        for axis in coords:
            angle = axis.reshape(-1, 1) * freqs  # (G, per_axis)
            parts += [torch.sin(angle), torch.cos(angle)]
    table = torch.cat(parts, dim=1) if parts else torch.zeros(math.prod(grid_shape), 0)
    table = F.pad(table, (0, dim - table.shape[1]))  # (G, dim)
    return table.float()


def frame_embedding(time_index: Sequence[int] | Tensor, dim: int) -> Tensor:
    """Fixed sine-cosine code of each token's frame, ``(N, dim)`` float32.

    Row ``n`` is the 1-D :func:`sincos_embedding` (all ``dim`` channels, ``dim // 2``
    frequencies, base 10000) of the frame index ``time_index[n]`` (``layout.time_index``), so
    tokens of different frames differ and tokens of one frame share the code. Parameter-free:
    it works for any number of frames.
    """
    index = torch.as_tensor(time_index, dtype=torch.int64)  # (N,)
    n_frames = int(index.max()) + 1 if index.numel() else 1
    return sincos_embedding((n_frames,), dim)[index]  # (N, dim)


def relative_index(offsets: Tensor, patch_size: Sequence[int], max_offset: int) -> Tensor:
    """Index into a ``(2M+1)^ndim`` relative table for every (query, key) pair.

    Parameters
    ----------
    offsets
        ``(N, N, ndim)`` int, key minus query in grid cells (``layout.offsets()``); for
        space-time layouts the first axis is time in frames.
    patch_size
        Cells per patch for the spatial axes (the last ``len(patch_size)`` axes).
    max_offset
        M: offsets are rounded to whole patches (exact for offsets between patches, which are
        multiples of the patch size) and clipped to ``[-M, M]`` per axis.

    Returns
    -------
    ``(N, N)`` int64; entry ``sum_a (o_a + M) * (2M+1)^(ndim-1-a)``.
    """
    return _columns(_patch_steps(offsets, patch_size), max_offset)


def _patch_steps(offsets: Tensor, patch_size: Sequence[int]) -> Tensor:
    """``(..., ndim)`` offsets in cells -> in whole patches (rounded), int64."""
    ndim = offsets.shape[-1]
    cells = [1] * (ndim - len(patch_size)) + [int(p) for p in patch_size]
    steps = offsets.long()  # (..., ndim) in cells
    if any(c != 1 for c in cells):
        cells_t = torch.tensor(cells, dtype=torch.int64)
        steps = torch.div(steps + cells_t // 2, cells_t, rounding_mode="floor")  # in patches
    return steps


def _columns(steps: Tensor, reach: int | Sequence[int]) -> Tensor:
    """Column of each ``(..., ndim)`` patch offset in a table of ``prod(2 R_a + 1)`` offsets.

    Offsets are clipped to ``[-R_a, R_a]`` on axis ``a``; ``reach`` is one ``R`` for every axis
    (``max_offset``: the learned ``(2M+1)^ndim`` table) or one per axis; the last axis is
    fastest.
    """
    ndim = steps.shape[-1]
    reach_t = torch.as_tensor(reach, dtype=torch.int64).expand(ndim)  # (ndim,)
    steps = torch.maximum(torch.minimum(steps, reach_t), -reach_t) + reach_t
    widths = 2 * reach_t + 1  # (ndim,)
    strides = torch.ones(ndim, dtype=torch.int64)
    for axis in range(ndim - 2, -1, -1):
        strides[axis] = strides[axis + 1] * widths[axis + 1]
    return (steps * strides).sum(-1)


def unclipped_relative_index(offsets: Tensor, patch_size: Sequence[int], max_offset: int
                             ) -> tuple[Tensor, Tensor]:
    """:func:`relative_index` in two steps: every pair's unclipped offset, then its column.

    Gathering the bias as ``table[:, fold][:, index]`` gives ``table[:, relative_index(...)]``
    exactly, but the gradient of the pair gather (on CUDA an ``index_add_`` of atomic adds)
    lands on one entry per *unclipped* offset, at most N pairs each, instead of piling every
    pair beyond ``M`` onto the few clipped edge entries (at 32 x 32 tokens and M = 8, 82,944
    pairs on one corner entry); the fold's own gradient is a small ``(K',)`` sum.

    Returns
    -------
    index
        ``(N, N)`` int64 into a table of every offset present: ``K' = prod_a (2 R_a + 1)``
        columns, ``R_a`` the largest ``|offset|`` in patches (frames) on axis ``a``.
    fold
        ``(K',)`` int64: each such offset's column of the clipped ``(2M+1)^ndim`` table.
    """
    steps = _patch_steps(offsets, patch_size)  # (N, N, ndim)
    ndim = steps.shape[-1]
    reach = steps.reshape(-1, ndim).abs().amax(0) if steps.numel() else torch.zeros(
        ndim, dtype=torch.int64)  # (ndim,)
    axes = [torch.arange(-int(r), int(r) + 1) for r in reach]
    every = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)  # (2R_0+1, ..., ndim)
    return _columns(steps, reach), _columns(every.reshape(-1, ndim), max_offset)


class RelativePositionBias(nn.Module):
    """Learned per-head bias ``table[h, index(offset)]`` over clipped integer offsets.

    ``table`` has shape ``(heads, (2M+1)^ndim)``, initialised to zero (uniform attention); the
    entry of offset ``o`` (per axis, in patches) is ``table[:, offset_to_column(o)]``.
    """

    def __init__(self, heads: int, ndim: int, max_offset: int) -> None:
        super().__init__()
        self.ndim = ndim
        self.max_offset = max_offset
        self.table = nn.Parameter(torch.zeros(heads, (2 * max_offset + 1) ** ndim))

    def offset_to_column(self, offset: Sequence[int]) -> int:
        """Column of ``table`` for one integer offset (per axis, in patches, clipped)."""
        if len(offset) != self.ndim:
            msg = f"offset={tuple(offset)} needs {self.ndim} entries"
            raise ValueError(msg)
        M, column = self.max_offset, 0
        for o in offset:
            column = column * (2 * M + 1) + (max(-M, min(M, int(o))) + M)
        return column

    def forward(self, index: Tensor, fold: Tensor | None = None) -> Tensor:
        """``index`` (N, N) -> (H, N, N); see :func:`gather_relative_bias`."""
        return gather_relative_bias(self.table, index, fold)


def gather_relative_bias(table: Tensor, index: Tensor, fold: Tensor | None = None) -> Tensor:
    """The bias ``(H, N, N)`` of a learned ``(H, K)`` relative table at every pair.

    ``index`` (N, N) from :func:`relative_index`, value ``K`` = no bias (a zero column is
    appended). With ``fold`` (``(K',)``, or ``(K' + 1,)`` whose last value is ``K``), ``index``
    is the unclipped one of :func:`unclipped_relative_index` (value ``K'`` = no bias): the
    same bias, its gradient spread over every unclipped offset first.
    """
    padded = F.pad(table, (0, 1))  # (H, K + 1): last column is the zero "no bias" slot
    if fold is not None:
        padded = padded.index_select(1, fold)  # (H, K' [+ 1])
    return padded.index_select(1, index.reshape(-1)).view(len(padded), *index.shape)


class DistanceBias(nn.Module):
    """Bias ``-b_h * d / scale`` from pairwise distances ``d`` (km or grid units).

    ``value="learned"`` learns ``b_h`` per head (initialised to 0); a number fixes it for all
    heads (``> 0`` favours near keys, ``< 0`` far ones).
    """

    def __init__(self, heads: int, value: float | str, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)
        if value == "learned":
            self.strength = nn.Parameter(torch.zeros(heads))
        else:
            self.register_buffer("strength", torch.full((heads,), float(value)), persistent=False)

    def forward(self, distances: Tensor) -> Tensor:
        """``distances`` (N, N) -> bias (H, N, N)."""
        return -self.strength[:, None, None] * (distances / self.scale)  # (H, N, N)
