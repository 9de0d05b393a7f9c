"""`PatchTokenizer`: grids into patch tokens ``(B, N, D)`` plus a :class:`TokenLayout`, and back.

Dims are sorted into four roles:

* spatial dims (``("lat", "lon")``, ``("y", "x")`` or ``("x",)``, or ``spatial_dims=``) are cut
  into patches;
* an optional channel dim (``channel_dim=``; the variables of a Dataset) is stacked into the
  token features;
* an optional time dim (with ``time_patch=``) is cut into tubelets of ``time_patch`` frames, so
  tokens run over ``(frame, patch-row, patch-col)``;
* every other dim becomes the batch axis ``B``, flattened row-major in the data's dim order.

Features are ordered ``(channel, time-in-patch, *space-in-patch)``, so
``D = channels * time_patch * prod(patch_size)``.

Padding and periodicity: a grid that the patch size does not divide is padded (``pad="end"``: after
the last cell, or ``"center"``), never cropped; padded cells are invalid and carry
``fill_value``. Padding breaks a wrap-around, so a dim that needs padding is not periodic:
asking for ``periodic=True`` on it raises ``ValueError``; periodicity inferred from the data
(global longitude, ``periodic`` coordinate attr, ``bc="periodic"`` attr) is dropped with a
``UserWarning``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from gridformer.tokenize._checks import (
    check_patch_entries,
    normalize_patch_size,
    normalize_periodic,
    padding_for,
    spatial_coordinate,
)
from gridformer.tokenize._decode import decode_tokens
from gridformer.tokenize._gather import padding_valid, token_valid
from gridformer.tokenize._inputs import (
    SourceInfo,
    as_dataarray,
    find_spatial_dims,
    is_truthy,
    token_dtype,
    without_auxiliary,
)
from gridformer.tokenize._stream import fill_tokens
from gridformer.tokenize.geometry import default_coord, is_global_lon
from gridformer.tokenize.layout import TokenLayout

__all__ = ["PatchTokenizer"]

_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}

Data = xr.DataArray | xr.Dataset | np.ndarray | torch.Tensor


def _inferred_periodic(da: xr.DataArray, dim: str, coord: np.ndarray, geographic: bool) -> bool:
    if dim in da.coords and "periodic" in da.coords[dim].attrs:
        return is_truthy(da.coords[dim].attrs["periodic"])
    if geographic:
        return dim == "lon" and is_global_lon(coord)
    return str(da.attrs.get("bc", "")).lower() == "periodic"


def _spatial_coords(
    da: xr.DataArray, spatial: tuple[str, ...], geographic: bool
) -> dict[str, np.ndarray]:
    """1-D strictly monotonic numeric coordinate per spatial dim (defaults when absent).

    On a geographic grid the longitudes are unwrapped into one eastward run.
    """
    coords = {}
    for d, dim in enumerate(spatial):
        if dim in da.coords:
            longitude = geographic and d == 1
            coords[dim] = spatial_coordinate(dim, da.coords[dim].values, longitude=longitude)
        else:
            coords[dim] = default_coord(dim, da.sizes[dim])  # global grid on lat/lon, else index
    return coords


def _source_info(data, da, kind, **fields) -> SourceInfo:
    """What decode needs to rebuild ``data`` (coords, attrs, names, dtypes)."""
    per_var = kind == "dataset"
    return SourceInfo(
        kind=kind,
        dims=tuple(da.dims),
        coords=None if kind == "array" else data.coords,
        name=da.name if kind == "dataarray" else None,
        attrs=dict(data.attrs) if kind != "array" else {},
        dtype=np.dtype(da.dtype),
        variables=tuple(data.data_vars) if per_var else (),
        var_attrs={k: dict(v.attrs) for k, v in data.data_vars.items()} if per_var else {},
        var_dtypes={k: v.dtype for k, v in data.data_vars.items()} if per_var else {},
        var_dims={k: v.dims for k, v in data.data_vars.items()} if per_var else {},
        **fields,
    )


def _is_geographic(da: xr.DataArray, spatial: tuple[str, ...]) -> bool:
    if spatial == ("lat", "lon"):
        return True
    if len(spatial) != 2:
        return False
    units = [str(da.coords[d].attrs.get("units", "")) if d in da.coords else "" for d in spatial]
    return (
        units[0].startswith("degree")
        and units[0].endswith(("north", "N"))
        and units[1].startswith("degree")
        and units[1].endswith(("east", "E"))
    )


class PatchTokenizer:
    """Cut gridded data into patch tokens and put tokens back (exact inverse).

    Parameters
    ----------
    patch_size
        Cells per patch: an int for every spatial dim or one per dim (``1`` = every cell a token).
    time_patch
        Frames per space-time tubelet along ``time_dim``; ``None`` (default) keeps time in the
        batch axis.
    fill_value
        Value written to the tokens for NaN and padded cells.
    spatial_dims
        Names of the spatial dims (default: ``("lat", "lon")``, ``("y", "x")`` or ``("x",)``).
    time_dim
        Name of the time dim used by ``time_patch``.
    pad
        ``"end"`` (pad after the last cell) or ``"center"`` (split the padding).
    dtype
        Token dtype. Default ``None``: the data's own float dtype (float16, bfloat16 tensors,
        float32, float64), so :meth:`decode` gives back the very same numbers; bools and ints of
        up to 16 bits become float32, wider ints float64. A given dtype (e.g. ``torch.float32``
        to halve the memory of float64 data) is used as is, and the round trip is then exact
        only to that precision. Models cast tokens to their own dtype.

    Examples
    --------
    >>> tok = PatchTokenizer(patch_size=4)
    >>> tokens, layout = tok.encode(da)          # da dims ("time", "lat", "lon")
    >>> tokens.shape                             # (n_time, n_tokens, 16)
    >>> tok.decode(tokens, layout).identical(da)
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] = 1,
        *,
        time_patch: int | None = None,
        fill_value: float = 0.0,
        spatial_dims: Sequence[str] | None = None,
        time_dim: str = "time",
        pad: str = "end",
        dtype: torch.dtype | None = None,
    ) -> None:
        if time_patch is not None and (isinstance(time_patch, bool) or int(time_patch) < 1):
            msg = f"time_patch={time_patch!r} must be a positive int or None"
            raise ValueError(msg)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            msg = f"dtype={dtype!r} must be None (keep the data's) or a floating-point torch dtype"
            raise TypeError(msg)
        padding_for(1, 1, pad)  # validates pad
        check_patch_entries(patch_size)  # types and signs now; sizes against the grid in encode
        self.patch_size = patch_size
        self.time_patch = None if time_patch is None else int(time_patch)
        self.fill_value = float(fill_value)
        self.spatial_dims = None if spatial_dims is None else tuple(spatial_dims)
        self.time_dim = time_dim
        self.pad = pad
        self.dtype = dtype

    def __repr__(self) -> str:
        return (
            f"PatchTokenizer(patch_size={self.patch_size!r}, time_patch={self.time_patch!r}, "
            f"fill_value={self.fill_value!r}, pad={self.pad!r}, dtype={self.dtype})"
        )

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        data: Data,
        dims: Sequence[str] | None = None,
        channel_dim: str | None = None,
        *,
        periodic: bool | Sequence[bool] | Mapping[str, bool] | None = None,
    ) -> tuple[torch.Tensor, TokenLayout]:
        """Tokenize ``data``.

        Parameters
        ----------
        data
            ``xr.DataArray``; ``xr.Dataset`` (its data variables, all on one grid, become
            channels; variables that CF marks as auxiliary, such as cell bounds named by a
            ``bounds`` attribute or a grid mapping named by ``grid_mapping``, are carried as
            coordinates instead); or ``np.ndarray`` / ``torch.Tensor`` with ``dims=``.
            Dask-backed data is computed one chunk of the batch dims at a time (or, without
            batch dims, one run of whole space-time tubelets at a time), never all at once.
        dims
            Dim names of an array input.
        channel_dim
            Dim stacked into the token features (e.g. ``"level"``); not allowed for a Dataset.
        periodic
            Wrap-around per spatial dim (bool, one per dim, or ``{dim: bool}``); default
            inferred: global longitude, a ``periodic`` coordinate attr, or ``attrs["bc"] ==
            "periodic"`` on y/x data.

        Returns
        -------
        tokens : torch.Tensor
            ``(B, N, D)`` in the tokenizer's ``dtype`` (default: the data's float dtype); NaN
            and padded cells hold ``fill_value``.
        layout : TokenLayout
            Geometry, validity ``(B, N)`` and what :meth:`decode` needs.
        """
        tensor_dtype = data.dtype if isinstance(data, torch.Tensor) else None
        auxiliary: tuple[str, ...] = ()
        if isinstance(data, xr.Dataset):
            data, auxiliary = without_auxiliary(data)
        da, kind, channel_dim = as_dataarray(data, dims, channel_dim)
        dtype = token_dtype(da.dtype, self.dtype, tensor_dtype)
        spatial = find_spatial_dims(da.dims, self.spatial_dims)
        time_dim = self._check_roles(da, spatial, channel_dim)
        sizes = dict(da.sizes)
        patch = normalize_patch_size(self.patch_size, spatial, sizes)
        geographic = _is_geographic(da, spatial)
        coords = _spatial_coords(da, spatial, geographic)
        pads = tuple(
            padding_for(sizes[d], p, self.pad) for d, p in zip(spatial, patch, strict=True)
        )
        per = self._resolve_periodic(da, spatial, coords, pads, periodic, geographic)
        n_time = sizes[time_dim] if time_dim else 1
        t_patch = self.time_patch or 1
        t_pad = (0, (-n_time) % t_patch)

        batch_dims = tuple(d for d in da.dims if d not in (*spatial, channel_dim, time_dim))
        batch_shape = tuple(sizes[d] for d in batch_dims)
        order = (
            *batch_dims,
            *((channel_dim,) if channel_dim else ()),
            *((time_dim,) if time_dim else ()),
            *spatial,
        )
        arr = da.transpose(*order).data  # (*batch, [C], [T], *S), lazy for dask
        n_channels = sizes[channel_dim] if channel_dim else 1

        geometry = TokenLayout(
            spatial_dims=spatial,
            grid_shape=tuple(sizes[d] for d in spatial),
            patch_size=patch,
            padding=pads,
            periodic=per,
            is_geographic=geographic,
            coords=coords,
            time_dim=time_dim,
            time_patch=t_patch,
            n_time=n_time,
            time_padding=t_pad,
        )
        tokens, missing = self._fill(arr, geometry, batch_shape, n_channels, dtype)
        if missing is None:  # no NaN: a token is valid unless it is all padding
            spans = (n_time, *geometry.grid_shape)
            by_padding = padding_valid(spans, (t_patch, *patch), (t_pad, *pads))  # (N,)
            valid = torch.from_numpy(np.repeat(by_padding[None], tokens.shape[0], axis=0))
        else:
            valid = torch.from_numpy(token_valid(missing))  # (B, N)
        source = _source_info(
            data,
            da,
            kind,
            batch_dims=batch_dims,
            batch_shape=batch_shape,
            channel_dim=channel_dim,
            n_channels=n_channels,
            cell_missing=None if missing is None else torch.from_numpy(missing),
            auxiliary=auxiliary,
        )
        layout = dataclasses.replace(geometry, valid=valid, source=source)
        return tokens, layout

    def _check_roles(
        self, da: xr.DataArray, spatial: tuple[str, ...], channel_dim: str | None
    ) -> str | None:
        """Check the channel and time dims against the data; return the time dim (or None)."""
        if channel_dim is not None and channel_dim not in da.dims:
            msg = f"channel_dim={channel_dim!r} is not a dim of the data; dims are {da.dims!r}"
            raise ValueError(msg)
        if channel_dim in spatial:
            msg = f"channel_dim={channel_dim!r} is also a spatial dim {spatial!r}"
            raise ValueError(msg)
        if self.time_patch is None:
            return None
        time_dim = self.time_dim
        if time_dim not in da.dims or time_dim in spatial or time_dim == channel_dim:
            msg = (
                f"time_patch={self.time_patch} needs a time dim {time_dim!r} that is neither "
                f"spatial nor the channel dim; the data has dims {da.dims!r} (set time_dim=)"
            )
            raise ValueError(msg)
        return time_dim

    def _fill(
        self,
        arr: np.ndarray,
        geometry: TokenLayout,
        batch_shape: tuple[int, ...],
        n_channels: int,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """Tokens ``(B, N, D)`` in ``dtype`` from ``arr`` ``(*batch, [C], [T], *S)``.

        Also returns the missing-cell mask ``(B, N, D)`` (NaN or padded cells) when any cell
        was NaN, else None.
        """
        patch = (geometry.time_patch, *geometry.patch_size)
        shape = (int(np.prod(batch_shape)), geometry.n_tokens, n_channels * int(np.prod(patch)))
        # NumPy has no bfloat16: such tokens are filled as float32 (exact for bfloat16 data).
        # The buffer is a NumPy array shared with the tensor: NumPy asks Linux for huge pages
        # for large arrays, so first writes fault 2 MiB pages instead of 4 KiB ones (several
        # times faster than into torch.empty's memory).
        buffer_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
        buffer = np.empty(shape, dtype=_NUMPY_DTYPES[buffer_dtype])  # (B, N, D)
        tokens = torch.from_numpy(buffer)
        missing = fill_tokens(
            arr,
            buffer,
            batch_shape,
            n_channels,
            geometry.n_time,
            patch,
            (geometry.time_padding, *geometry.padding),
            fill_value=self.fill_value,
            stream_time=geometry.is_spacetime,
        )
        return tokens.to(dtype), missing

    def _resolve_periodic(
        self,
        da: xr.DataArray,
        spatial: tuple[str, ...],
        coords: dict[str, np.ndarray],
        pads: tuple[tuple[int, int], ...],
        periodic: bool | Sequence[bool] | Mapping[str, bool] | None,
        geographic: bool,
    ) -> tuple[bool, ...]:
        """Periodicity per spatial dim: explicit (checked against padding) or inferred."""
        if periodic is not None:
            per = normalize_periodic(periodic, spatial)
            for dim, is_per, pad in zip(spatial, per, pads, strict=True):
                if is_per and sum(pad):
                    msg = (
                        f"periodic dim {dim!r} ({da.sizes[dim]} cells) needs {sum(pad)} padding "
                        f"cells for patch_size={self.patch_size!r}, which breaks the wrap-around; "
                        f"use a patch size that divides {da.sizes[dim]} or periodic=False"
                    )
                    raise ValueError(msg)
            return per
        per = []
        for dim, pad in zip(spatial, pads, strict=True):
            is_per = _inferred_periodic(da, dim, coords[dim], geographic)
            if is_per and sum(pad):
                warnings.warn(
                    f"dim {dim!r} looks periodic but needs {sum(pad)} padding cells for "
                    f"patch_size={self.patch_size!r}; treating it as non-periodic",
                    UserWarning,
                    stacklevel=3,
                )
                is_per = False
            per.append(is_per)
        return tuple(per)

    # ------------------------------------------------------------------ decode
    @staticmethod
    def decode(tokens: torch.Tensor, layout: TokenLayout) -> xr.DataArray | xr.Dataset:
        """Exact inverse of :meth:`encode`: tokens ``(B, N, D)`` back to the input's form.

        Values, NaNs (from the layout's cell mask), coordinates, dim order, attrs, name and dtype
        are restored; padding is cropped. A Dataset input comes back as a Dataset (its CF
        auxiliary variables as data variables again); an array input as a DataArray with its
        ``dims`` and no coordinates. With the default token dtype the values come back bit for
        bit; tokens cast to a narrower dtype (``dtype=`` or by a model) round to that precision.
        """
        return decode_tokens(tokens, layout)
