"""Token stores: NetCDF data anomalised, standardised and tokenized once, kept in zarr, read fast.

A store is a zarr group written by :func:`~gridformer.datasets.write_token_store` (or
``gridformer preprocess``)::

    tokens   (time, token, feature) float32   per step: every variable's patch cells, variable-major
    valid    (time, token)          bool      a token holds at least one non-NaN cell
    weight   (time, token)          float32   lat/lon grids: mean cos(lat) weight (mean 1) over the
                                              token's cells where every variable is valid
    climatology_<var> (month|dayofyear, *space)   when anomalies were taken
    time, lat, lon (or y, x)                  coordinates

Its attribute ``gridformer_store`` (JSON) records the format version, the gridformer version
that wrote it, the preprocessing settings (variables, patch size, padding, fill value,
anomalies, normalisation, stored time range, statistics period), the statistics and the token
geometry. :func:`open_token_store` refuses a store of another format or gridformer version, or
whose settings differ from the ones expected, so tokens made differently are never mixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from gridformer.datasets._zarr_direct import DirectReader, direct_reader

from gridformer import __version__

__all__ = ["FORMAT_VERSION", "STORE_ATTR", "TokenStore", "check_settings", "open_token_store"]

FORMAT_VERSION = 1
STORE_ATTR = "gridformer_store"
SETTING_KEYS = ("variables", "patch_size", "pad", "fill_value", "anomalies", "normalize",
                "time_range", "stats_time")


def _canonical(key: str, value: Any, ndim: int) -> Any:
    """A setting in the form the store records it (so that ``4`` equals ``[4, 4]``)."""
    if key == "variables":
        return [value] if isinstance(value, str) else [str(v) for v in value]
    if key == "patch_size":
        return [int(value)] * ndim if isinstance(value, int) else [int(v) for v in value]
    if key in ("time_range", "stats_time") and value is not None:
        return [str(v) for v in value]
    if key == "fill_value":
        return float(value)
    return value


def check_settings(recorded: Mapping[str, Any], expect: Mapping[str, Any], *, ndim: int,
                   where: str) -> None:
    """Refuse ``expect``\\ ed settings that differ from the ``recorded`` ones (names them all)."""
    unknown = sorted(set(expect) - set(SETTING_KEYS))
    if unknown:
        msg = f"unknown store settings {unknown}; valid: {list(SETTING_KEYS)}"
        raise ValueError(msg)
    differ = {k: (recorded.get(k), _canonical(k, v, ndim)) for k, v in expect.items()
              if _canonical(k, v, ndim) != recorded.get(k)}
    if differ:
        text = "; ".join(f"{k}: store has {a!r}, expected {b!r}" for k, (a, b) in differ.items())
        msg = (f"{where} was written with other settings ({text}); write a new store with "
               f"these settings (gridformer preprocess) rather than mixing the two")
        raise ValueError(msg)


class TokenStore:
    """An opened token store (read-only). Make one with :func:`open_token_store`.

    Attributes
    ----------
    path : Path
    meta : dict
        The recorded ``gridformer_store`` attribute.
    settings : dict
        Preprocessing settings (see the module docstring).
    variables : list of str
    feature_slices : dict of str to slice
        Each variable's features in a token (``patch cells`` per variable, variable-major).
    """

    def __init__(self, path: Path, meta: dict[str, Any], group: Any) -> None:
        self.path, self.meta, self._group = path, meta, group
        self.settings: dict[str, Any] = meta["settings"]
        self.variables: list[str] = list(self.settings["variables"])
        per_var = int(np.prod(meta["layout"]["patch_size"]))
        self.feature_slices = {v: slice(i * per_var, (i + 1) * per_var)
                               for i, v in enumerate(self.variables)}
        self.tokens = group["tokens"]  # zarr array (time, token, feature)
        self._readers: dict[str, DirectReader | None] = {}
        self.n_time, self.n_tokens, self.n_features = (int(n) for n in self.tokens.shape)

    def __repr__(self) -> str:
        return (f"TokenStore({str(self.path)!r}, variables={self.variables}, "
                f"steps={self.n_time}, tokens={self.n_tokens}, features={self.n_features})")

    def __getstate__(self) -> dict[str, Any]:  # zarr handles are reopened in each process
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import zarr

        self.__init__(state["path"], state["meta"], zarr.open_group(state["path"], mode="r"))

    @property
    def time_chunks(self) -> tuple[int, ...]:
        """Steps per stored chunk along time."""
        step = int(self.tokens.chunks[0])
        return tuple(min(step, self.n_time - a) for a in range(0, self.n_time, step))

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Steps ``start:stop`` of array ``name`` (``"tokens"``, ``"valid"``, ``"weight"``).

        Arrays stored uncompressed (``tokens`` and ``valid``) are read from their chunk files
        directly (see :mod:`gridformer.datasets._zarr_direct`, about twice zarr's speed); the
        rest (``weight``, compressed) via zarr.
        """
        if name not in self._readers:
            self._readers[name] = direct_reader(self._group[name])
        reader = self._readers[name]
        if reader is None:
            return np.asarray(self._group[name][start:stop])
        start, stop, _ = slice(start, stop).indices(reader.shape[0])
        return reader.read(start, max(start, stop))

    @property
    def has_weight(self) -> bool:
        return "weight" in self._group

    @cached_property
    def valid(self) -> np.ndarray:
        """``(time, token)`` bool: the token holds at least one non-NaN cell at that step."""
        return self.read("valid", 0, self.n_time)

    @cached_property
    def dataset(self) -> xr.Dataset:
        """The whole store as a lazy ``xr.Dataset`` (coordinates, climatologies, ...)."""
        return xr.open_zarr(self.path, consolidated=False)

    @property
    def times(self) -> xr.DataArray:
        return self.dataset["time"]

    @cached_property
    def layout(self) -> Any:
        """The ``TokenLayout`` of one step (``valid``: tokens valid at any stored step)."""
        import dataclasses

        import torch

        from gridformer.tokenize import PatchTokenizer

        geo = self.meta["layout"]
        dims = tuple(geo["spatial_dims"])
        # the coordinate arrays straight from the group: opening the whole store with
        # xarray lists every member, a cost each new dataset object would pay
        coords = {d: np.asarray(self._group[d]) for d in dims if d in self._group}
        zeros = xr.DataArray(np.zeros(geo["grid_shape"], dtype=np.float32), dims=dims,
                             coords=coords)
        tokenizer = PatchTokenizer(geo["patch_size"], pad=self.settings["pad"],
                                   fill_value=self.settings["fill_value"], spatial_dims=dims)
        _, layout = tokenizer.encode(zeros, periodic=tuple(geo["periodic"]))
        valid = torch.from_numpy(self.valid.any(axis=0))[None]  # (1, N)
        return dataclasses.replace(layout, valid=valid)

    def normalization(self) -> Any:
        """The statistics as a :class:`~gridformer.datasets.Standardizer` (None: not normalised)."""
        from gridformer.datasets.climate import Standardizer

        stats = self.meta["statistics"]
        if stats is None:
            return None
        mean = xr.Dataset({v: float(s["mean"]) for v, s in stats.items()})
        std = xr.Dataset({v: float(s["std"]) for v, s in stats.items()})
        return Standardizer(mean=mean, std=std)


def open_token_store(path: str | os.PathLike[str], *, expect: Mapping[str, Any] | None = None
                     ) -> TokenStore:
    """Open a token store for reading, refusing one that does not match.

    Parameters
    ----------
    path
        The store folder (``*.zarr``).
    expect
        Settings the caller relies on (any of ``variables``, ``patch_size``, ``pad``,
        ``fill_value``, ``anomalies``, ``normalize``, ``time_range``, ``stats_time``).

    Raises
    ------
    FileNotFoundError
        No such folder.
    ValueError
        Not a gridformer token store, another format version, written by another gridformer
        version, or settings that differ from ``expect`` (each difference named).
    """
    import zarr

    path = Path(path)
    if not path.is_dir():
        msg = f"token store {str(path)!r} does not exist (write one with `gridformer preprocess`)"
        raise FileNotFoundError(msg)
    try:
        group = zarr.open_group(path, mode="r")
        raw = group.attrs.get(STORE_ATTR)
    except (OSError, ValueError, KeyError) as error:
        msg = f"{str(path)!r} is not a readable zarr store ({error})"
        raise ValueError(msg) from None
    if raw is None:
        msg = (f"{str(path)!r} is not a gridformer token store (no {STORE_ATTR!r} attribute); "
               f"write one with `gridformer preprocess`")
        raise ValueError(msg)
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        msg = (f"token store {str(path)!r} has format version {meta.get('format_version')!r}; "
               f"this gridformer ({__version__}) reads format {FORMAT_VERSION}: write the store "
               f"again with `gridformer preprocess`")
        raise ValueError(msg)
    if meta.get("gridformer_version") != __version__:
        msg = (f"token store {str(path)!r} was written by gridformer "
               f"{meta.get('gridformer_version')!r}, this is gridformer {__version__!r}: "
               f"write the store again with this version (`gridformer preprocess`) so that "
               f"tokens made by different versions are never mixed")
        raise ValueError(msg)
    if expect:
        check_settings(meta["settings"], expect, ndim=len(meta["layout"]["spatial_dims"]),
                       where=f"token store {str(path)!r}")
    return TokenStore(path, meta, group)
