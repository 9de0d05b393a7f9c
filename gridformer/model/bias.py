"""The position terms of one forward pass, for any query rows or blocks of the key axis.

Two sources with one interface, both on the attention's key axis ``N' = n_cls + N`` (a class
token first, if any; its row and column get no position term):

- :class:`TablePositions` reads small tables over the token grid
  (:mod:`gridformer.model.bias_tables`): no ``(N', N')`` tensor at any size;
- :class:`DensePositions` slices the materialised ``(1, H, N', N')`` bias and ``(N', N')``
  relative index of the dense path (small N, and the reference).

``rows(positions)`` gives ``(L, Q, N')`` for query positions on the key axis; ``block(start,
shape, first)`` gives ``(L, R, N')`` for a block of spatial tokens from
:func:`~gridformer.model.bias_tables.token_blocks` (reversed order); ``L`` is the number of
heads, or 1 for a term shared by the heads. The ``columns_*`` twins give the relative-table
column of each pair (``K`` = "no term"), which the relative content terms gather with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gridformer.model.bias_tables import AxisTable, BiasGeometry

__all__ = ["DensePositions", "TablePositions", "block_tokens", "relative_entries"]


def block_tokens(first: int, shape: Sequence[int], n_tokens: int, device: torch.device
                 ) -> Tensor:
    """Token indices ``(R,)`` (descending) of a reversed block starting at reversed ``first``."""
    return n_tokens - 1 - first - torch.arange(math.prod(shape), device=device)


def relative_entries(columns: AxisTable, learned: Tensor, dtype: torch.dtype) -> AxisTable:
    """The learned ``(H, K)`` relative bias placed on a layout's column table: ``(H, S)``.

    Entry ``s`` gets ``learned[:, columns.values[0, s]]``; column ``K`` (class-token pairs,
    "no term") gets 0. Differentiable in ``learned``.
    """
    padded = F.pad(learned, (0, 1))  # (H, K + 1): column K is "no bias"
    values = padded.index_select(1, columns.values[0].to(learned.device))  # (H, S)
    return columns.with_values(values.to(dtype))


class TablePositions:
    """Relative bias and/or distance bias ``-strength_h * d / scale`` read from tables.

    Parameters
    ----------
    geometry
        The layout's parameter-free tables (relative columns, distances).
    relative
        ``(H, K)`` learned relative table (``RelativePositionBias.table``), or None.
    strength
        ``(H,)`` distance-bias strengths (``DistanceBias.strength``), or None.
    scale
        Distance that one unit of strength acts over (km or grid units).
    n_cls
        1 when a class token sits first on the key axis, else 0.
    dtype
        Dtype of the bias (the attention's dtype).
    """

    def __init__(self, geometry: BiasGeometry, *, relative: Tensor | None,
                 strength: Tensor | None, scale: float, n_cls: int, dtype: torch.dtype) -> None:
        self.geometry, self.n_cls, self.dtype = geometry, n_cls, dtype
        self.n_tokens = geometry.n_tokens
        self.n_keys = n_cls + self.n_tokens
        cols = geometry.columns
        self.relative = None
        if relative is not None:
            if cols is None:
                msg = "a relative bias needs the layout's relative columns (max_offset)"
                raise ValueError(msg)
            self.relative = relative_entries(cols, relative, dtype)  # (H, S)
        self.coef = None if strength is None else (-strength / scale).to(dtype)  # (H,)
        self.distance = geometry.distance if strength is not None else None
        if self.distance is not None:
            self.distance = self.distance.to(dtype=dtype)
        self.n_columns = geometry.n_columns

    @property
    def has_bias(self) -> bool:
        return self.relative is not None or self.coef is not None

    @property
    def heads(self) -> int:
        if self.relative is not None:
            return self.relative.values.shape[0]
        return 1 if self.coef is None else self.coef.shape[0]

    # ------------------------------------------------------------------ bias
    def rows(self, positions: Tensor) -> Tensor | None:
        """Bias ``(L, Q, N')`` of the queries at key-axis ``positions`` ``(Q,)``."""
        if not self.has_bias:
            return None
        out = torch.zeros(self.heads, len(positions), self.n_keys, dtype=self.dtype,
                          device=positions.device)
        spatial = positions >= self.n_cls
        tokens = positions[spatial] - self.n_cls
        part = 0
        if self.relative is not None:
            part = self.relative.rows(tokens)  # (H, Q', N)
        if self.coef is not None:
            d = self.distance.evaluate([p.rows(tokens) for p in self.distance.parts])  # (1, Q', N)
            part = part + self.coef[:, None, None] * d
        out[:, spatial, self.n_cls :] = part.to(self.dtype)
        return out

    def block(self, start: Sequence[int], shape: Sequence[int], first: int,
              out: Tensor | None = None) -> Tensor | None:
        """Bias ``(L, R, N')`` of a reversed token block; written into ``out`` when given."""
        if not self.has_bias:
            return None
        R = math.prod(shape)
        if out is None:
            out = torch.empty(self.heads, R, self.n_keys, dtype=self.dtype,
                              device=self._device)
        out[..., : self.n_cls] = 0.0
        grid = self.geometry.grid
        target = out[..., self.n_cls :].view(self.heads, *shape, *grid)  # (L, *shape, *grid)
        rel = self.relative.block(start, shape) if self.relative is not None else None
        if self.coef is None:
            target.copy_(rel)
            return out
        parts = [p.block(start, shape) for p in self.distance.parts]
        d = self.distance.evaluate(parts)  # a view for a table, computed otherwise
        coef = self.coef.view(-1, *([1] * (target.ndim - 1)))
        if torch.is_grad_enabled() and (coef.requires_grad or (rel is not None
                                                               and rel.requires_grad)):
            target.copy_(coef * d if rel is None else torch.addcmul(rel, coef, d))  # autograd
        elif rel is None:
            torch.mul(coef, d, out=target)  # one pass, no temporary
        else:
            torch.addcmul(rel, coef, d, out=target)
        return out

    # ------------------------------------------------------------------ relative columns
    def column_rows(self, positions: Tensor) -> Tensor:
        """Relative-table column ``(Q, N')`` of each pair (``K`` on class-token pairs)."""
        out = torch.full((len(positions), self.n_keys), self.n_columns, dtype=torch.int64,
                         device=positions.device)
        spatial = positions >= self.n_cls
        out[spatial, self.n_cls :] = self.geometry.columns.rows(positions[spatial] - self.n_cls)[0]
        return out

    def column_block(self, start: Sequence[int], shape: Sequence[int], first: int) -> Tensor:
        R = math.prod(shape)
        out = torch.full((R, self.n_keys), self.n_columns, dtype=torch.int64, device=self._device)
        target = out[:, self.n_cls :].view(*shape, *self.geometry.grid)
        target.copy_(self.geometry.columns.block(start, shape)[0])
        return out

    @property
    def _device(self) -> torch.device:
        cols = self.geometry.columns
        if cols is not None:
            return cols.values.device
        return self.geometry.distance.parts[0].values.device


class DensePositions:
    """The same interface over a materialised bias ``(1, H, N', N')`` and index ``(N', N')``."""

    def __init__(self, bias: Tensor | None, rel_index: Tensor | None, n_cls: int,
                 n_keys: int) -> None:
        self.bias, self.rel_index, self.n_cls, self.n_keys = bias, rel_index, n_cls, n_keys
        self.n_tokens = n_keys - n_cls

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    def rows(self, positions: Tensor) -> Tensor | None:
        return None if self.bias is None else self.bias[0].index_select(1, positions)  # (H, Q, N')

    def block(self, start: Sequence[int], shape: Sequence[int], first: int,
              out: Tensor | None = None) -> Tensor | None:
        if self.bias is None:
            return None
        rows = self.rows(self.n_cls + block_tokens(first, shape, self.n_tokens, self.bias.device))
        return rows if out is None else out.copy_(rows)

    def column_rows(self, positions: Tensor) -> Tensor:
        return self.rel_index.index_select(0, positions)  # (Q, N')

    def column_block(self, start: Sequence[int], shape: Sequence[int], first: int) -> Tensor:
        device = self.rel_index.device
        return self.column_rows(self.n_cls + block_tokens(first, shape, self.n_tokens, device))
