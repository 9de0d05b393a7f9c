"""`TokenLayout`: the one geometry object that maps tokens to places on the grid and back.

A layout records how a grid was cut into patch tokens (dims, shape, patch size, padding,
periodicity, cell coordinates, optional space-time frames) and answers every geometric question
about the tokens: centre coordinates, pairwise offsets in grid cells, pairwise distances (km on
lat/lon grids) and how to put per-token values back on the grid.

Token order is row-major over ``(frame, patch-row, patch-col)``, the last spatial dim fastest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.tokenize._checks import (
    normalize_patch_size,
    normalize_periodic,
    padding_for,
    spatial_coordinate,
)
from gridformer.tokenize._grid import values_to_grid
from gridformer.tokenize.geometry import (
    EARTH_RADIUS_KM,
    default_coord,
    is_global_lon,
    patch_centers,
    wrap_offsets,
)

__all__ = ["TokenLayout"]


@dataclass(frozen=True, eq=False)
class TokenLayout:
    """Geometry of a token sequence cut from a grid (immutable; pairwise results are cached).

    Build one with :meth:`PatchTokenizer.encode` (from data) or :meth:`TokenLayout.for_grid`
    (a bare grid, for models and tests).

    Attributes
    ----------
    spatial_dims : tuple of str
        ``("lat", "lon")``, ``("y", "x")`` or ``("x",)`` (or user-chosen names).
    grid_shape : tuple of int
        Cells per spatial dim, before padding.
    patch_size : tuple of int
        Cells per patch along each spatial dim.
    padding : tuple of (int, int)
        ``(before, after)`` padding cells per spatial dim (padded cells are invalid).
    periodic : tuple of bool
        Whether each spatial dim wraps around. A dim that needed padding is never periodic.
    is_geographic : bool
        True for lat/lon grids in degrees: distances are great-circle km.
    coords : dict of str to np.ndarray
        Cell-centre coordinate ``(L,)`` per spatial dim, strictly monotonic. When the data has
        none: the cell index, or a global cell-centred grid in degrees for dims named
        ``lat``/``lon``. On geographic layouts the longitudes are unwrapped into one continuous
        run (``[350, 355, 0, 5]`` is held as ``[350, 355, 360, 365]``), so patch centres and
        distances of a region across the 0° or 180° meridian come out right.
    time_dim : str or None
        Time dim folded into space-time tokens (``None`` for purely spatial tokens).
    time_patch : int
        Frames (time steps) per token; 1 unless space-time tokens.
    n_time : int
        Time steps before time padding (1 for purely spatial tokens).
    time_padding : (int, int)
        ``(before, after)`` padding steps on the time axis.
    valid : torch.Tensor
        ``(B, N)`` bool, True where a token holds at least one valid (non-NaN, unpadded) cell.
        Layouts from :meth:`for_grid` have ``B = 1`` and broadcast over any batch.
    """

    spatial_dims: tuple[str, ...]
    grid_shape: tuple[int, ...]
    patch_size: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    periodic: tuple[bool, ...]
    is_geographic: bool = False
    coords: Mapping[str, np.ndarray] = field(default_factory=dict)
    time_dim: str | None = None
    time_patch: int = 1
    n_time: int = 1
    time_padding: tuple[int, int] = (0, 0)
    valid: torch.Tensor | None = None
    source: Any = field(default=None, repr=False)  # SourceInfo for decode; None for bare grids

    def __post_init__(self) -> None:
        ndim = len(self.spatial_dims)
        for name in ("grid_shape", "patch_size", "padding", "periodic"):
            if len(getattr(self, name)) != ndim:
                msg = (
                    f"TokenLayout {name}={getattr(self, name)!r} must have one entry per spatial "
                    f"dim {self.spatial_dims!r}"
                )
                raise ValueError(msg)
        for dim, is_per, pad in zip(self.spatial_dims, self.periodic, self.padding, strict=True):
            if is_per and sum(pad):
                msg = (
                    f"dim {dim!r} is periodic but padded by {pad}; padding breaks the wrap-around, "
                    f"so a padded dim must have periodic=False"
                )
                raise ValueError(msg)
        coords = {}
        for d, (dim, size) in enumerate(zip(self.spatial_dims, self.grid_shape, strict=True)):
            c = self.coords.get(dim)
            if c is None:
                c = default_coord(dim, size)
            else:
                c = np.asarray(c)
                if c.shape != (size,):
                    msg = f"coordinate {dim!r} has shape {c.shape}, expected ({size},)"
                    raise ValueError(msg)
                # longitudes unwrapped: a region across 0° or 180° stays one eastward run
                c = spatial_coordinate(dim, c, longitude=self.is_geographic and d == 1)
            c = np.array(c, dtype=np.float64)  # a private, read-only copy
            c.setflags(write=False)
            coords[dim] = c
        object.__setattr__(self, "coords", coords)
        if self.valid is None:
            object.__setattr__(self, "valid", torch.ones(1, self.n_tokens, dtype=torch.bool))

    def __repr__(self) -> str:
        time = (
            f", time_dim={self.time_dim!r}, time_patch={self.time_patch}"
            if self.is_spacetime
            else ""
        )
        return (
            f"TokenLayout(spatial_dims={self.spatial_dims!r}, grid_shape={self.grid_shape!r}, "
            f"patch_size={self.patch_size!r}, padding={self.padding!r}, "
            f"periodic={self.periodic!r}, is_geographic={self.is_geographic}{time}, "
            f"n_tokens={self.n_tokens}, batch={self.valid.shape[0]})"
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def for_grid(
        cls,
        grid_shape: int | Sequence[int],
        patch_size: int | Sequence[int] = 1,
        *,
        periodic: bool | Sequence[bool] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, np.ndarray] | None = None,
    ) -> TokenLayout:
        """Layout for a bare grid without data (all tokens valid, ``valid`` of shape ``(1, N)``).

        Parameters
        ----------
        grid_shape
            Cells per spatial dim, e.g. ``(32, 32)`` or ``64`` for a 1-D grid.
        patch_size
            Cells per patch, an int for every dim or one per dim.
        periodic
            Wrap-around per dim (bool for all, or one per dim). Default: longitude periodic on
            ``("lat", "lon")`` grids that cover the globe (always with the default coordinates),
            nothing periodic otherwise. Periodic dims must be divisible by the patch size.
        dims
            Spatial dim names; default ``("y", "x")`` in 2-D and ``("x",)`` in 1-D. With
            ``("lat", "lon")`` the layout is geographic, on a global cell-centred grid unless
            ``coords`` are given.
        coords
            Optional cell-centre coordinates per dim (default: cell index, or degrees on lat/lon).

        Examples
        --------
        >>> layout = TokenLayout.for_grid((32, 32), patch_size=1, periodic=True)
        >>> layout.n_tokens, tuple(layout.offsets().shape)
        (1024, (1024, 1024, 2))
        """
        shape = (int(grid_shape),) if np.isscalar(grid_shape) else tuple(int(s) for s in grid_shape)
        if dims is None:
            dims = ("x",) if len(shape) == 1 else ("y", "x") if len(shape) == 2 else None
            if dims is None:
                msg = f"grid_shape={shape!r} has {len(shape)} dims; pass dims= to name them"
                raise ValueError(msg)
        dims = tuple(dims)
        if len(dims) != len(shape):
            msg = f"dims={dims!r} must name each of the {len(shape)} dims of grid_shape={shape!r}"
            raise ValueError(msg)
        geographic = dims == ("lat", "lon")
        patch = normalize_patch_size(patch_size, dims, dict(zip(dims, shape, strict=True)))
        if periodic is None:  # longitude wraps on a global grid only
            lon = (coords or {}).get("lon") if geographic else None
            periodic = (False, lon is None or is_global_lon(lon)) if geographic else False
        per = normalize_periodic(periodic, dims)
        pads = tuple(padding_for(s, p) for s, p in zip(shape, patch, strict=True))
        for dim, is_per, pad in zip(dims, per, pads, strict=True):
            if is_per and sum(pad) > 0:
                msg = (
                    f"dim {dim!r} is periodic but its size is not divisible by the patch size "
                    f"{patch!r}; padding would break the wrap-around. Choose a patch size that "
                    f"divides grid_shape={shape!r} or periodic=False"
                )
                raise ValueError(msg)
        return cls(
            spatial_dims=dims,
            grid_shape=shape,
            patch_size=patch,
            padding=pads,
            periodic=per,
            is_geographic=geographic,
            coords=dict(coords or {}),
        )

    # ------------------------------------------------------------------ sizes
    @property
    def ndim(self) -> int:
        """Number of spatial dims."""
        return len(self.spatial_dims)

    @property
    def padded_shape(self) -> tuple[int, ...]:
        """Cells per spatial dim after padding."""
        return tuple(g + b + a for g, (b, a) in zip(self.grid_shape, self.padding, strict=True))

    @property
    def patch_grid_shape(self) -> tuple[int, ...]:
        """Tokens per spatial dim."""
        return tuple(s // p for s, p in zip(self.padded_shape, self.patch_size, strict=True))

    @property
    def n_frames(self) -> int:
        """Token frames along time (1 unless space-time tokens)."""
        return (self.n_time + sum(self.time_padding)) // self.time_patch

    @property
    def n_spatial_tokens(self) -> int:
        """Tokens per frame."""
        return int(np.prod(self.patch_grid_shape))

    @property
    def n_tokens(self) -> int:
        """Sequence length ``N = n_frames * prod(patch_grid_shape)``."""
        return self.n_frames * self.n_spatial_tokens

    @property
    def is_spacetime(self) -> bool:
        """True when a time dim was folded into the tokens (``time_patch`` was given)."""
        return self.time_dim is not None

    @property
    def time_index(self) -> np.ndarray:
        """``(N,)`` int64 frame index of each token (a fresh copy)."""
        return self._time_index.copy()

    @property
    def patch_index(self) -> np.ndarray:
        """``(N, ndim)`` int64 patch-grid index of each token along each spatial dim (a copy)."""
        return self._patch_index.copy()

    @cached_property
    def _time_index(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_frames, dtype=np.int64), self.n_spatial_tokens)

    @cached_property
    def _patch_index(self) -> np.ndarray:
        idx = np.indices(self.patch_grid_shape, dtype=np.int64).reshape(self.ndim, -1).T
        return np.tile(idx, (self.n_frames, 1))  # (N, ndim)

    # ------------------------------------------------------------------ geometry
    def patch_coords(self, *, in_cells: bool = False) -> dict[str, np.ndarray]:
        """Centre coordinate of each patch row/column: ``{dim: (patch_grid_shape[d],)}``.

        ``in_cells=True`` gives the centres in grid cells (cell index ``0 .. L - 1`` along the
        dim, whatever its coordinate), the unit of :meth:`offsets` and of :meth:`distances` on
        non-geographic grids.
        """
        out = {}
        for dim, size, p, pad in zip(self.spatial_dims, self.grid_shape, self.patch_size,
                                     self.padding, strict=True):
            coord = np.arange(size, dtype=np.float64) if in_cells else self.coords[dim]
            out[dim] = patch_centers(coord, p, *pad)
        return out

    def centers(self, *, in_cells: bool = False) -> dict[str, np.ndarray]:
        """Token-centre coordinate per spatial dim: ``{dim: (N,) float64}`` (mean of real cells).

        ``in_cells=True``: in grid cells, as :meth:`patch_coords`.
        """
        pc = self.patch_coords(in_cells=in_cells)
        return {dim: pc[dim][self._patch_index[:, d]] for d, dim in enumerate(self.spatial_dims)}

    def offsets(self, *, in_patches: bool = False) -> torch.Tensor:
        """Pairwise token offsets, key minus query: ``(N, N, ndim)`` int64.

        Offsets are in grid cells (``in_patches=True``: in patches), wrapped into
        ``[-L // 2, L - L // 2 - 1]`` on periodic dims (``L`` = period). For space-time layouts the
        time axis comes first, in frames (never wrapped). Entry ``[q, k]`` is ``pos[k] - pos[q]``.
        The result is computed once per layout and shared; do not modify it in place.
        """
        return self._offsets_patches if in_patches else self._offsets_cells

    @property
    def _token_grid(self) -> tuple[int, ...]:
        """Shape of the token grid: ``(n_frames, *patch_grid_shape)`` or ``patch_grid_shape``."""
        return ((self.n_frames,) if self.is_spacetime else ()) + self.patch_grid_shape

    def _pairwise(self, table: np.ndarray, axis: int) -> torch.Tensor:
        """Broadcast view ``(*grid, *grid)`` of a per-axis table ``(n, n)`` [query, key].

        Tokens are row-major over the token grid, so reshaping ``(*grid, *grid)`` to ``(N, N)``
        gives the token-pair matrix; no per-pair arithmetic or gather is needed.
        """
        k = len(self._token_grid)
        shape = [1] * (2 * k)
        shape[axis] = shape[k + axis] = table.shape[0]
        return torch.from_numpy(np.ascontiguousarray(table)).reshape(shape)

    def _offsets(self, in_patches: bool) -> torch.Tensor:
        grid = self._token_grid
        periodic = ((False,) if self.is_spacetime else ()) + self.periodic
        scale = ((1,) if self.is_spacetime else ()) + (
            (1,) * self.ndim if in_patches else self.patch_size
        )
        n_tok = self.n_tokens
        out = torch.empty((n_tok, n_tok, len(grid)), dtype=torch.int64)
        for a, (n, per) in enumerate(zip(grid, periodic, strict=True)):
            table = np.arange(n)[None, :] - np.arange(n)[:, None]  # (n, n) key minus query
            if per:
                table = wrap_offsets(table, n)
            table = (table * scale[a]).astype(np.int64)
            # write straight into the strided slice, viewed as (*grid, *grid): one pass
            out[..., a].view(*grid, *grid).copy_(self._pairwise(table, a).expand(*grid, *grid))
        return out  # (N, N, ndim)

    @cached_property
    def _offsets_patches(self) -> torch.Tensor:
        return self._offsets(in_patches=True)

    @cached_property
    def _offsets_cells(self) -> torch.Tensor:
        return self._offsets(in_patches=False)

    def distances(self) -> torch.Tensor:
        """Pairwise distances between token centres: ``(N, N)`` float32.

        Geographic layouts: great-circle km (haversine, R = 6371.0 km) between the centre
        coordinates. Other layouts: Euclidean distance in grid units (cells, the unit of
        :meth:`offsets`), whatever the coordinate spacing, with the minimum-image convention on
        periodic dims; multiply by the cell size for physical units. A token's centre is the
        mean of its real (unpadded) cells. Space-time layouts give the spatial distance only.
        Computed once.
        """
        return self._distances

    @cached_property
    def _distances(self) -> torch.Tensor:
        first = 1 if self.is_spacetime else 0  # token-grid axis of the first spatial dim
        if self.is_geographic:
            pc = self.patch_coords()  # centre per patch row / column, degrees
            # haversine, separable: h = sin²(Δφ/2) + cos φ_q cos φ_k sin²(Δλ/2)
            phi = np.radians(pc[self.spatial_dims[0]])
            lam = np.radians(pc[self.spatial_dims[1]])
            dphi = np.sin((phi[None, :] - phi[:, None]) / 2.0) ** 2
            coscos = np.cos(phi)[:, None] * np.cos(phi)[None, :]
            dlam = np.sin((lam[None, :] - lam[:, None]) / 2.0) ** 2
            h = self._pairwise(dphi, first) + self._pairwise(coscos, first) * self._pairwise(
                dlam, first + 1
            )
            h = h.expand(*self._token_grid, *self._token_grid)
            dist = 2.0 * EARTH_RADIUS_KM * torch.asin(torch.sqrt(h.clamp(0.0, 1.0)))
        else:
            sq = torch.zeros((), dtype=torch.float64)
            for d, size in enumerate(self.grid_shape):
                cells = np.arange(size, dtype=np.float64)  # grid units, whatever the coords
                c = patch_centers(cells, self.patch_size[d], *self.padding[d])  # (n,)
                delta = c[None, :] - c[:, None]  # (n, n) key minus query
                if self.periodic[d]:  # periodic dims are never padded: the period is `size`
                    delta = np.mod(delta + size / 2.0, size) - size / 2.0
                sq = sq + self._pairwise(delta**2, first + d)
            dist = torch.sqrt(sq.expand(*self._token_grid, *self._token_grid))
        return dist.to(torch.float32).reshape(self.n_tokens, self.n_tokens)  # (N, N)

    # ------------------------------------------------------------------ back to the grid
    def to_grid(
        self,
        values: torch.Tensor | np.ndarray,
        upsample: bool = False,
        *,
        name: str | None = None,
        dims: Sequence[str] | None = None,
    ) -> xr.DataArray:
        """Put per-token values ``(..., N)`` back on the grid as an ``xr.DataArray``.

        Parameters
        ----------
        values
            ``(..., N)`` array or tensor (an attention row, an error per token, a prediction).
        upsample
            False: one value per patch on the patch grid, with patch-centre coordinates.
            True: each value repeated over its patch's cells, padding cropped, on the original
            cell coordinates.
        name
            Name of the returned DataArray.
        dims
            Names of the leading ``...`` dims (default ``dim_0``, ``dim_1``, ...).

        Returns
        -------
        xr.DataArray
            dims ``(*leading, [frame | time], *spatial_dims)``.
        """
        return values_to_grid(self, values, upsample=upsample, name=name, dims=dims)
