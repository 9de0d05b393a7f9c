"""Position terms as small tables over the token grid: the bias of any query rows, never N x N.

Tokens are row-major over the token grid ``g = (g_0, ..., g_{A-1})`` (``(frames,)`` first on
space-time layouts, then the patch grid). A position term that depends only on where the query
and the key sit is held as an :class:`AxisTable`, indexed per axis ``a`` in one of three ways:

- ``"offset"``: by the offset ``k_a - q_a`` (``2 g_a - 1`` entries): relative positions, and
  distances along uniformly spaced axes;
- ``"pair"``: by the pair ``(q_a, k_a)`` (``g_a²`` entries): latitude in great-circle distances;
- ``"none"``: the axis does not enter (1 entry): time in spatial distances.

Queries are addressed by *reversed* grid coordinates ``q'_a = g_a - 1 - q_a`` (token ``n`` has
reversed index ``N - 1 - n``). The flat table index is then affine in the query and key
coordinates with non-negative strides::

    offset: t_a = k_a + q'_a              (= k_a - q_a + g_a - 1)
    pair:   t_a = q'_a * g_a + k_a        (pair tables store the query axis reversed)

so the term for a block of consecutive reversed tokens against every key is one strided view of
the table (:meth:`AxisTable.block`, copied once into an attention mask), and single rows are a
gather at ``qoff[q] + koff[k]`` (:meth:`AxisTable.rows`, also what a FlexAttention ``score_mod``
reads). :func:`bias_geometry` builds the parameter-free tables of a layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gridformer.tokenize.geometry import EARTH_RADIUS_KM

__all__ = [
    "TABLE_LIMIT",
    "AxisTable",
    "BiasGeometry",
    "DistanceTerm",
    "bias_geometry",
    "token_blocks",
    "token_grid",
]

#: Largest precomputed distance table (elements); above it distances are evaluated per block
#: from per-axis tables (slower, same values, memory still linear in N).
TABLE_LIMIT = 1 << 24

_SIZE = {"offset": lambda g: 2 * g - 1, "pair": lambda g: g * g, "none": lambda g: 1}


@dataclass(frozen=True)
class AxisTable:
    """A table ``(L, S)`` over the token grid; ``L`` = 1 or one row per head.

    ``kinds[a]`` says how axis ``a`` indexes it (module docstring); ``S`` is the product of the
    per-axis sizes, row-major in axis order.
    """

    values: Tensor  # (L, S), contiguous
    kinds: tuple[str, ...]
    grid: tuple[int, ...]

    def __post_init__(self) -> None:
        size = math.prod(_SIZE[k](g) for k, g in zip(self.kinds, self.grid, strict=True))
        if self.values.ndim != 2 or self.values.shape[1] != size:
            msg = f"AxisTable values {tuple(self.values.shape)} do not match (L, {size})"
            raise ValueError(msg)
        object.__setattr__(self, "values", self.values.contiguous())

    def with_values(self, values: Tensor) -> AxisTable:
        """The same indexing over other values ``(L', S)`` (e.g. per-head relative biases)."""
        return AxisTable(values, self.kinds, self.grid)

    def to(self, *args: Any, **kwargs: Any) -> AxisTable:
        return self.with_values(self.values.to(*args, **kwargs))

    def _strides(self) -> tuple[list[int], list[int]]:
        sizes = [_SIZE[k](g) for k, g in zip(self.kinds, self.grid, strict=True)]
        flat = [math.prod(sizes[a + 1 :]) for a in range(len(sizes))]
        q_strides = [s * g if k == "pair" else (0 if k == "none" else s)
                     for k, g, s in zip(self.kinds, self.grid, flat, strict=True)]
        k_strides = [0 if k == "none" else s for k, s in zip(self.kinds, flat, strict=True)]
        return q_strides, k_strides

    def block(self, start: Sequence[int], shape: Sequence[int]) -> Tensor:
        """Strided view ``(L, *shape, *grid)``: reversed queries ``start + i`` against all keys."""
        q_strides, k_strides = self._strides()
        offset = sum(s * q for s, q in zip(start, q_strides, strict=True))
        L, S = self.values.shape
        return self.values.as_strided(
            (L, *shape, *self.grid), (S, *q_strides, *k_strides),
            self.values.storage_offset() + offset,
        )

    def token_offsets(self) -> tuple[Tensor, Tensor]:
        """Per-token ``(qoff, koff)`` ``(N,)`` int64: entry ``[q, k]`` at ``qoff[q] + koff[k]``."""
        q_strides, k_strides = self._strides()
        device = self.values.device
        coords = _grid_coords(self.grid, device)  # (N, A) in token order
        reversed_ = torch.tensor(self.grid, device=device) - 1 - coords
        qoff = (reversed_ * torch.tensor(q_strides, device=device)).sum(-1)
        koff = (coords * torch.tensor(k_strides, device=device)).sum(-1)
        return qoff, koff

    def rows(self, tokens: Tensor) -> Tensor:
        """Entries for query ``tokens`` ``(Q,)`` against all keys: ``(L, Q, N)``."""
        qoff, koff = self.token_offsets()
        index = qoff.index_select(0, tokens)[:, None] + koff[None, :]  # (Q, N)
        flat = self.values.index_select(1, index.reshape(-1))  # (L, Q * N)
        return flat.view(self.values.shape[0], *index.shape)  # (L, Q, N)


def _grid_coords(grid: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """``(N, A)`` int64 grid coordinates of every token, row-major."""
    axes = [torch.arange(g, device=device) for g in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def token_grid(layout: Any) -> tuple[int, ...]:
    """The token grid of a layout: ``(n_frames, *patch_grid_shape)`` or ``patch_grid_shape``."""
    frames = (int(layout.n_frames),) if getattr(layout, "is_spacetime", False) else ()
    return frames + tuple(int(g) for g in layout.patch_grid_shape)


def token_blocks(grid: Sequence[int], max_rows: int
                 ) -> Iterator[tuple[tuple[int, ...], tuple[int, ...], int]]:
    """Split the reversed token order into rectangular blocks of at most ``max_rows`` tokens.

    Yields ``(start, shape, first)``: the block's reversed grid coordinates ``start + i`` for
    ``i`` in ``shape`` cover reversed tokens ``first .. first + prod(shape) - 1`` (token
    ``n = N - 1 - r``). Whole trailing axes are kept together where they fit.
    """
    grid = tuple(int(g) for g in grid)
    A = len(grid)
    inner = [math.prod(grid[a + 1 :]) for a in range(A)]

    def split(axis: int, prefix: tuple[int, ...]) -> Iterator[tuple]:
        if inner[axis] > max_rows and axis < A - 1:
            for s in range(grid[axis]):
                yield from split(axis + 1, (*prefix, s))
            return
        step = max(1, max_rows // inner[axis])
        for s in range(0, grid[axis], step):
            n = min(step, grid[axis] - s)
            start = (*prefix, s) + (0,) * (A - axis - 1)
            first = sum(c * inner[a] for a, c in enumerate(start))
            yield start, (1,) * axis + (n,) + grid[axis + 1 :], first

    yield from split(0, ())


# ---------------------------------------------------------------- parameter-free geometry
@dataclass(frozen=True)
class DistanceTerm:
    """Pairwise token distances as tables: ``formula(*parts)`` elementwise (km or grid units).

    ``formula`` is ``"table"`` (one precomputed table), ``"haversine"`` (parts ``sin²(Δφ/2)``,
    ``cos φ_q cos φ_k``, ``sin²(Δλ/2)``) or ``"euclid"`` (squared offsets per axis).
    """

    formula: str
    parts: tuple[AxisTable, ...]

    def evaluate(self, parts: Sequence[Tensor]) -> Tensor:
        """Distances from the parts' values (views, rows or gathered scalars), broadcast."""
        if self.formula == "table":
            return parts[0]
        if self.formula == "haversine":
            h = torch.addcmul(parts[0], parts[1], parts[2]).clamp(0.0, 1.0)
            return torch.asin(torch.sqrt(h)) * (2.0 * EARTH_RADIUS_KM)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return torch.sqrt(total)

    def to(self, *args: Any, **kwargs: Any) -> DistanceTerm:
        return DistanceTerm(self.formula, tuple(p.to(*args, **kwargs) for p in self.parts))


@dataclass(frozen=True)
class BiasGeometry:
    """Parameter-free position tables of one layout (built once per layout and device).

    ``columns``: the relative-table column (``(2M+1)^ndim`` layout of
    :func:`~gridformer.model.position.relative_index`) of every grid offset, or None;
    ``distance``: the pairwise distances, or None.
    """

    grid: tuple[int, ...]
    columns: AxisTable | None
    distance: DistanceTerm | None
    n_columns: int = 0  # K = (2M+1)^A columns of the relative table; K itself means "no term"

    @property
    def n_tokens(self) -> int:
        return math.prod(self.grid)

    def to(self, device: torch.device | str) -> BiasGeometry:
        columns = self.columns.to(device) if self.columns is not None else None
        distance = self.distance.to(device) if self.distance is not None else None
        return BiasGeometry(self.grid, columns, distance, self.n_columns)


def bias_geometry(layout: Any, *, max_offset: int | None, distance: bool,
                  table_limit: int = TABLE_LIMIT) -> BiasGeometry:
    """Tables for the relative columns (``max_offset`` M, or None) and the distances of a layout.

    Relative offsets are in patches (frames on the time axis), wrapped on periodic dims and
    clipped to ``[-M, M]`` as in ``relative_index(layout.offsets(), ...)``; distances equal
    ``layout.distances()`` (great-circle km on lat/lon, grid units otherwise).
    """
    grid = token_grid(layout)
    periodic = ((False,) if len(grid) > layout.ndim else ()) + tuple(layout.periodic)
    columns, n_columns = None, 0
    if max_offset is not None:
        n_columns = (2 * max_offset + 1) ** len(grid)
        width = 2 * max_offset + 1
        column = torch.zeros((), dtype=torch.int64)
        for g, per in zip(grid, periodic, strict=True):
            delta = np.arange(-(g - 1), g)  # (2g - 1,) key minus query
            if per:
                delta = np.mod(delta + g // 2, g) - g // 2
            steps = torch.from_numpy(np.clip(delta, -max_offset, max_offset) + max_offset)
            column = column[..., None] * width + steps  # (..., 2g - 1)
        columns = AxisTable(column.reshape(1, -1), ("offset",) * len(grid), grid)
    term = _distance_term(layout, grid, table_limit) if distance else None
    return BiasGeometry(grid, columns, term, n_columns)


def _toeplitz(pair: np.ndarray) -> np.ndarray | None:
    """``ext`` (2g - 1,) with ``pair[q, k] == ext[k - q + g - 1]``, or None if no such ``ext``."""
    g = pair.shape[0]
    ext = np.concatenate([pair[::-1, 0][:-1], pair[0]])  # Δ = -(g-1) .. g-1
    index = np.arange(g)[None, :] - np.arange(g)[:, None] + g - 1
    tol = 1e-9 * max(1.0, float(np.abs(pair).max()))
    return ext if np.abs(ext[index] - pair).max() <= tol else None


def _axis_values(pair: np.ndarray) -> tuple[str, np.ndarray]:
    """(kind, flat values) of one axis from its ``(g, g)`` [query, key] table: by offset when
    it depends on ``k - q`` only (uniformly spaced centres), else by pair."""
    ext = _toeplitz(pair)
    if ext is not None:
        return "offset", ext
    return "pair", pair[::-1].reshape(-1)  # query axis reversed


def _distance_term(layout: Any, grid: tuple[int, ...], limit: int) -> DistanceTerm:
    """Distances of ``layout.distances()`` as one table, or as per-axis parts above ``limit``."""
    time = ("none",) * (len(grid) - layout.ndim)  # space-time: time does not enter
    if layout.is_geographic:  # haversine, separable as in TokenLayout.distances
        pc = layout.patch_coords()
        phi = np.radians(pc[layout.spatial_dims[0]])
        lam = np.radians(pc[layout.spatial_dims[1]])
        dphi = (np.sin((phi[None, :] - phi[:, None]) / 2.0) ** 2)[::-1].reshape(-1, 1)
        coscos = (np.cos(phi)[:, None] * np.cos(phi)[None, :])[::-1].reshape(-1, 1)
        lon_kind, dlam = _axis_values(np.sin((lam[None, :] - lam[:, None]) / 2.0) ** 2)
        kinds = (*time, "pair", lon_kind)
        if _table_size(kinds, grid) <= limit:
            h = np.clip(dphi + coscos * dlam[None, :], 0.0, 1.0)  # (g0², lon entries)
            d = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))
            return DistanceTerm("table", (_table(d, kinds, grid),))
        return DistanceTerm("haversine", (
            _table(dphi, (*time, "pair", "none"), grid),
            _table(coscos, (*time, "pair", "none"), grid),
            _table(dlam, (*time, "none", lon_kind), grid),
        ))
    cells = layout.patch_coords(in_cells=True)
    squares = []
    for d, dim in enumerate(layout.spatial_dims):
        delta = cells[dim][None, :] - cells[dim][:, None]  # (g, g) key minus query, cells
        if layout.periodic[d]:  # periodic dims are never padded: the period is the grid size
            size = layout.grid_shape[d]
            delta = np.mod(delta + size / 2.0, size) - size / 2.0
        squares.append(_axis_values(delta**2))
    kinds = (*time, *(k for k, _ in squares))
    if _table_size(kinds, grid) <= limit:
        total = np.zeros(())
        for a, (_kind, values) in enumerate(squares):  # broadcast over the product space
            total = total + values.reshape((-1,) + (1,) * (len(squares) - a - 1))
        return DistanceTerm("table", (_table(np.sqrt(total), kinds, grid),))
    parts = []
    for a, (kind, values) in enumerate(squares):
        axis_kinds = ["none"] * layout.ndim
        axis_kinds[a] = kind
        parts.append(_table(values, (*time, *axis_kinds), grid))
    return DistanceTerm("euclid", tuple(parts))


def _table_size(kinds: Sequence[str], grid: Sequence[int]) -> int:
    return math.prod(_SIZE[k](g) for k, g in zip(kinds, grid, strict=True))


def _table(values: np.ndarray, kinds: tuple[str, ...], grid: tuple[int, ...]) -> AxisTable:
    return AxisTable(torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)
                     .reshape(1, -1), kinds, grid)
