"""Write a token store: anomalies, standardisation and tokens of (larger-than-memory) NetCDF data.

:func:`write_token_store` is lazy end to end (dask) and runs on a ``distributed.Client`` when
one is given, on dask's local scheduler otherwise. The data pass through in chunks of whole
frames along time, so the memory of a worker is bounded by a few chunks, never the dataset:

1. (``anomalies="month"|"dayofyear"``) the climatology over the statistics period (one pass);
2. (``normalize=True``) one mean and one standard deviation per variable of the (anomaly)
   data over the statistics period (one pass, both at once);
3. tokens, validity and latitude weights per chunk, written to a temporary zarr store
   (one pass), which then replaces ``path`` in one rename: a store is complete or absent.

See :mod:`gridformer.datasets.store` for the store's layout and what it records.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from gridformer.datasets._cluster import on_scheduler, worker_memory_available
from gridformer.datasets.climate import Standardizer, anomalies, climatology, lat_weights
from gridformer.datasets.store import FORMAT_VERSION, STORE_ATTR, TokenStore, open_token_store

from gridformer import __version__
from gridformer.tokenize._patchify import patchify

__all__ = ["TASK_MEMORY_FACTOR", "plan_chunks", "token_chunks", "write_token_store"]

# Worker memory per chunk (held as float64) that the pipeline needs above the worker's own
# baseline: the read, anomaly, standardised, stacked and tokenized copies of a task plus the
# chunks dask keeps in flight. Measured: 303-319 MB over a 143-150 MB baseline with 15-16 MB chunks
# (tests/datasets/test_store_memory.py, one worker, one thread) while each task carried its own
# copy of the climatology; 254 MiB over 140 MiB with 15.1 MiB chunks since it is shared. 20 keeps
# the margin (CI once killed a worker at the old working set).
TASK_MEMORY_FACTOR = 20
TARGET_CHUNK_BYTES = 16 * 2**20  # processing chunk (as float64) when memory allows
STORE_CHUNK_BYTES = 2 * 2**20  # zarr chunk along time: what one random item read costs
_FREQS = ("month", "dayofyear")


def plan_chunks(step_bytes: int, token_step_bytes: int, n_time: int, *,
                memory: tuple[int, int] | None, chunk_steps: int | None = None,
                store_steps: int | None = None) -> tuple[int, int]:
    """Steps per processing chunk and per stored zarr chunk (a divisor of the former).

    Parameters
    ----------
    step_bytes
        Bytes of one time step of all variables as float64.
    token_step_bytes
        Bytes of one time step of tokens (float32).
    n_time
        Steps in all.
    memory
        ``(available, limit)`` bytes of the tightest worker (see
        ``worker_memory_available``), or None when no limit is known.
    chunk_steps, store_steps
        Requested sizes (None: chosen here).

    Raises
    ------
    ValueError
        One step (or the requested chunk) needs more memory than a worker has available (a
        task holds about ``TASK_MEMORY_FACTOR`` copies of its chunk), or sizes that are not
        positive multiples.
    """
    for name, value in (("chunk_steps", chunk_steps), ("store_steps", store_steps)):
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            msg = f"{name}={value!r} must be a positive int"
            raise ValueError(msg)
    task = step_bytes * TASK_MEMORY_FACTOR
    fits = n_time
    if memory is not None:
        available, limit = memory
        where = (f"the worker memory limit {limit / 2**20:.1f} MiB "
                 f"({max(available, 0) / 2**20:.1f} MiB of it available to tasks)")
        if task > available:
            msg = (f"{where} is too small for one chunk: a single time step is "
                   f"{step_bytes / 2**20:.2f} MiB as float64 and a task holds about "
                   f"{TASK_MEMORY_FACTOR} copies ({task / 2**20:.1f} MiB); give the workers more "
                   f"memory or select fewer variables")
            raise ValueError(msg)
        fits = max(1, available // task)
        if chunk_steps is not None and int(chunk_steps) > fits:
            msg = (f"chunk_steps={chunk_steps} needs about "
                   f"{int(chunk_steps) * task / 2**20:.1f} MiB per task, more than {where}; "
                   f"use chunk_steps <= {fits}")
            raise ValueError(msg)
    store = store_steps or max(1, STORE_CHUNK_BYTES // max(token_step_bytes, 1))
    chunk = chunk_steps or max(1, min(fits, TARGET_CHUNK_BYTES // max(step_bytes, 1)))
    store = min(int(store), int(chunk), n_time)
    if chunk_steps is None:
        chunk = max(store, int(chunk) // store * store)
    elif int(chunk) % store:
        msg = f"chunk_steps={chunk_steps} must be a multiple of store_steps={store}"
        raise ValueError(msg)
    return min(int(chunk), n_time), store


def token_chunks(data: xr.Dataset, layout: Any, *, client: Any = None,
                 chunk_steps: int | None = None, store_steps: int | None = None
                 ) -> tuple[int, int]:
    """:func:`plan_chunks` for ``data`` cut as ``layout`` says, on ``client``'s workers.

    ``layout`` may also be a patch size (the layout of one step is then made here). Open the
    files with ``chunks={"time": chunk}`` so that no task reads more than one chunk.
    """
    if not hasattr(layout, "n_tokens"):
        layout = _geometry(data, layout, "end", 0.0)
    n_var = len(data.data_vars)
    cells = int(np.prod(layout.grid_shape))
    token_step = layout.n_tokens * n_var * int(np.prod(layout.patch_size)) * 4
    return plan_chunks(n_var * cells * 8, token_step, data.sizes["time"],
                       memory=worker_memory_available(client), chunk_steps=chunk_steps,
                       store_steps=store_steps)


def _time_slice(data: xr.Dataset, span: Sequence[Any] | None, name: str) -> slice:
    """Positions of the steps from ``span[0]`` to ``span[1]`` (labels, inclusive)."""
    if span is None:
        return slice(0, data.sizes["time"])
    if isinstance(span, str) or len(span) != 2:
        msg = f"{name}={span!r} must be a (start, stop) pair of time labels, e.g. ('1980', '1999')"
        raise ValueError(msg)
    index = data.get_index("time")
    where = index.slice_indexer(*(_time_label(label, index, name) for label in span))
    if where.stop <= where.start:
        msg = f"{name}={tuple(span)!r} selects no time step of the data"
        raise ValueError(msg)
    return slice(int(where.start), int(where.stop))


def _time_label(label: Any, index: pd.Index, name: str) -> Any:
    """``label`` as a value of a numeric time index (the CLI passes every label as text).

    A numeric index compared with text would order the labels as strings: ``'1094'`` would
    sort before ``2`` and select the wrong steps without a word.
    """
    if not isinstance(label, str) or index.dtype.kind not in "iuf":
        return label
    try:
        return int(label) if index.dtype.kind in "iu" else float(label)
    except ValueError:
        msg = (f"{name} label {label!r} is not a {index.dtype} value, as the time "
               f"coordinate's are ({index[0]} .. {index[-1]})")
        raise ValueError(msg) from None


def _geometry(data: xr.Dataset, patch_size: Any, pad: str, fill_value: float) -> Any:
    """The token layout of one step, after checking that every variable is on (time, *space)."""
    from gridformer.tokenize import PatchTokenizer

    if "time" not in data.dims:
        msg = f"the data have no 'time' dim (dims {tuple(data.dims)})"
        raise ValueError(msg)
    tokenizer = PatchTokenizer(patch_size, pad=pad, fill_value=fill_value)
    first = data[next(iter(data.data_vars))].isel(time=0)
    # the geometry needs the coordinates and attrs, not the values: read nothing
    _, layout = tokenizer.encode(first.copy(data=np.zeros(first.shape, dtype=np.float32)))
    for name, var in data.data_vars.items():
        extra = sorted(set(var.dims) - {"time", *layout.spatial_dims})
        if extra or "time" not in var.dims:
            msg = (f"variable {name!r} has dims {var.dims}; a token store takes variables on "
                   f"('time', {', '.join(map(repr, layout.spatial_dims))}): select or split "
                   f"the other dims {extra} first (e.g. ds['z'].sel(level=500))")
            raise ValueError(msg)
    return layout


def _patch_cells(cells: np.ndarray, patch: tuple[int, ...], pads: tuple, fill_value: float,
                 dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Cells ``(T_b, C, *S)`` -> tokens ``(T_b, N, C * P)`` and their missing-cell mask.

    The tokenizer's own NumPy core (no torch, so workers stay small); the token order and
    values are those of ``PatchTokenizer.encode`` (tested against it). The mask is True for
    NaN and padding cells.
    """
    b, c = cells.shape[:2]
    counts = [(s + sum(p)) // k for s, p, k in zip(cells.shape[2:], pads, patch, strict=True)]
    out = np.empty((b, int(np.prod(counts)), c * int(np.prod(patch))), dtype=dtype)
    missing, _ = patchify(cells[:, :, None], (1, *patch), ((0, 0), *pads), fill_value, out)
    return out, (missing if missing is not None else np.zeros(out.shape, dtype=bool))


def _tokenize_block(block: np.ndarray, *, patch: tuple[int, ...], pads: tuple,
                    fill_value: float) -> np.ndarray:
    """Cells ``(T_b, V, *S)`` -> float32 tokens ``(T_b, N, V * P)`` (runs on the workers)."""
    return _patch_cells(block.astype(np.float32), patch, pads, fill_value, np.float32)[0]


def _token_info(block: np.ndarray, *, patch: tuple[int, ...], pads: tuple,
                lat_w: np.ndarray | None) -> np.ndarray:
    """``(T_b, N, 2)`` float32: token valid (a cell of a variable not NaN), latitude weight."""
    present = ~np.isnan(block)  # (T_b, V, *S)
    _, missing = _patch_cells(np.where(present, 0.0, np.nan), patch, pads, 0.0, np.float32)
    out = np.zeros((*missing.shape[:2], 2), dtype=np.float32)
    out[..., 0] = ~missing.all(-1)  # the tokenizer's rule for layout.valid
    if lat_w is not None:
        shape = (1, 1, -1) + (1,) * (block.ndim - 3)
        w = lat_w.reshape(shape) * present.all(axis=1, keepdims=True)  # (T_b, 1, *S)
        tw, padding = _patch_cells(w, patch, pads, 0.0, np.float64)  # (T_b, N, P)
        cells = tw.shape[-1] - padding.sum(-1)  # the token's grid cells (w has no NaN)
        out[..., 1] = tw.sum(-1) / np.maximum(cells, 1)
    return out


def _token_dataset(z: xr.Dataset, layout: Any, settings: dict[str, Any], chunk: int
                   ) -> xr.Dataset:
    """Lazy tokens, validity and weights of the standardised data ``z`` (dims time, *space)."""
    spatial = layout.spatial_dims
    variables = settings["variables"]
    cells = dsa.stack([z[v].transpose("time", *spatial).data for v in variables], axis=1)
    cells = cells.rechunk({0: chunk, 1: -1, **{2 + i: -1 for i in range(len(spatial))}})
    n_tok, per_var = layout.n_tokens, int(np.prod(layout.patch_size))
    drop = list(range(3, cells.ndim))
    opts = {"patch": tuple(layout.patch_size), "pads": tuple(map(tuple, layout.padding))}
    tokens = cells.map_blocks(_tokenize_block, fill_value=settings["fill_value"], **opts,
                              dtype=np.float32, drop_axis=drop,
                              chunks=(cells.chunks[0], (n_tok,), (len(variables) * per_var,)))
    lat_w = (lat_weights(z["lat"]).values if layout.is_geographic and "lat" in z.coords
             else None)
    info = cells.map_blocks(_token_info, lat_w=lat_w, **opts, dtype=np.float32, drop_axis=drop,
                            chunks=(cells.chunks[0], (n_tok,), (2,)))
    out = xr.Dataset(
        {"tokens": (("time", "token", "feature"), tokens),
         "valid": (("time", "token"), info[..., 0] > 0.5)},
        coords={"time": z["time"], **{d: z[d] for d in spatial if d in z.coords}},
    )
    if lat_w is not None:
        out["weight"] = (("time", "token"), info[..., 1])
    return out


def _meta(settings: dict[str, Any], stats: Standardizer | None, layout: Any) -> str:
    statistics = None if stats is None else {
        v: {"mean": float(stats.mean[v]), "std": float(stats.std[v])}
        for v in settings["variables"]}
    return json.dumps({
        "format_version": FORMAT_VERSION,
        "gridformer_version": __version__,
        "settings": settings,
        "statistics": statistics,
        "layout": {"spatial_dims": list(layout.spatial_dims),
                   "grid_shape": [int(n) for n in layout.grid_shape],
                   "patch_size": [int(p) for p in layout.patch_size],
                   "padding": [list(map(int, p)) for p in layout.padding],
                   "periodic": [bool(p) for p in layout.periodic],
                   "geographic": bool(layout.is_geographic),
                   "n_tokens": int(layout.n_tokens)},
    })


def _replace_atomically(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished store ``tmp`` to ``path`` (replacing an old store only if asked)."""
    if not path.exists():
        os.replace(tmp, path)
        return
    if not overwrite:  # appeared while writing
        msg = f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it"
        raise ValueError(msg)
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def write_token_store(
    data: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    patch_size: int | Sequence[int],
    anomalies: str | None = None,
    normalize: bool = True,
    time: Sequence[Any] | None = None,
    stats_time: Sequence[Any] | None = None,
    fill_value: float = 0.0,
    pad: str = "end",
    chunk_steps: int | None = None,
    store_steps: int | None = None,
    client: Any = None,
    overwrite: bool = False,
) -> TokenStore:
    """Anomalise, standardise and tokenize ``data`` into a zarr token store at ``path``.

    Parameters
    ----------
    data
        Canonical data (:func:`~gridformer.datasets.open_dataset`): every data variable on
        ``(time, lat, lon)`` (or ``(time, y, x)``, ``(time, x)``). Lazy (dask) data are
        processed chunk by chunk; NumPy data are chunked here.
    path
        The store folder to write (``*.zarr``); written beside it, then renamed into place.
    patch_size
        Cells per token along each spatial dim.
    anomalies
        ``"month"`` or ``"dayofyear"``: subtract the climatology of the statistics period
        (kept in the store); None: keep the values.
    normalize
        Standardise each variable with one mean and standard deviation over the statistics
        period (of the anomalies, when taken).
    time
        ``(start, stop)`` labels (inclusive) of the steps to store; default all.
    stats_time
        ``(start, stop)`` labels within ``time`` of the period whose climatology and statistics
        are used (e.g. the training years, so validation data never leak into them); default
        the stored steps.
    fill_value, pad
        Token value of NaN and padding cells; where padding goes (see ``PatchTokenizer``).
    chunk_steps, store_steps
        Steps per processing chunk and per stored zarr chunk (default: sized to the workers'
        memory, about 16 MiB as float64 and 2 MiB of tokens); see :func:`plan_chunks`.
    client
        A ``distributed.Client`` to run on (default: dask's local scheduler).
    overwrite
        Replace an existing store at ``path`` (atomically).

    Returns
    -------
    TokenStore
        The written store, opened.

    Raises
    ------
    ValueError
        ``path`` exists (without ``overwrite``), variables not on (time, *space), an unknown
        ``anomalies``, empty time selections, a chunk that does not fit the workers' memory.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it"
        raise ValueError(msg)
    if anomalies is not None and anomalies not in _FREQS:
        msg = f"anomalies={anomalies!r} is not one of {list(_FREQS)} or None"
        raise ValueError(msg)
    data = data.isel(time=_time_slice(data, time, "time"))
    stats_where = _time_slice(data, stats_time, "stats_time")
    layout = _geometry(data, patch_size, pad, fill_value)
    variables = [str(v) for v in data.data_vars]
    chunk, store = token_chunks(data, layout, client=client, chunk_steps=chunk_steps,
                                store_steps=store_steps)
    label = [str(v) for v in data["time"].values[[0, -1]]]
    stats_label = [str(v) for v in data["time"].values[[stats_where.start, stats_where.stop - 1]]]
    settings = {"variables": variables, "patch_size": [int(p) for p in layout.patch_size],
                "pad": pad, "fill_value": float(fill_value), "anomalies": anomalies,
                "normalize": bool(normalize), "time_range": label, "stats_time": stats_label,
                "stats_steps": [stats_where.start, stats_where.stop]}
    # float64 throughout: anomalies of float32 values near 280 K would keep ~1e-5 K of noise
    data = data.chunk({"time": chunk, **dict.fromkeys(layout.spatial_dims, -1)}).astype(np.float64)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with on_scheduler(client):
            period = data.isel(time=stats_where)
            clim = None
            if anomalies is not None:
                clim = climatology(period, freq=anomalies).compute()
                _check_coverage(data, clim, anomalies)
                # the climatology goes in as one dask chunk that every task depends on: passed
                # in kwargs, each task would carry (and a worker hold) its own copy of it, which
                # measured +313 MB for 287 chunks of a 73 x 144 monthly climatology
                data = data.map_blocks(_anomalies, args=[clim.chunk()],
                                       kwargs={"freq": anomalies}, template=data)
                period = data.isel(time=stats_where)
            stats = (Standardizer.fit(period, dims=("time", *layout.spatial_dims))
                     if normalize else None)
            z = stats.transform(data) if stats is not None else data
            out = _token_dataset(z, layout, settings, chunk)
            if clim is not None:
                for v in variables:
                    out[f"climatology_{v}"] = clim[v].astype(np.float32)
            out.attrs[STORE_ATTR] = _meta(settings, stats, layout)
            encoding = {"tokens": {"chunks": (store, layout.n_tokens, out.sizes["feature"]),
                                   "compressors": None},  # float tokens barely compress
                        # 1 byte per token and step (1/(4F) of the tokens); read whole by
                        # each dataset: uncompressed, its chunk files are read directly
                        "valid": {"chunks": (store, layout.n_tokens), "compressors": None}}
            if "weight" in out:
                encoding["weight"] = {"chunks": (store, layout.n_tokens)}
            out.to_zarr(tmp, mode="w-", encoding=encoding, consolidated=False)
        _replace_atomically(tmp, path, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return open_token_store(path)


def _check_coverage(data: xr.Dataset, clim: xr.Dataset, freq: str) -> None:
    """Refuse stored steps whose month (day of year) the statistics period never saw."""
    missing = sorted(set(getattr(data["time"].dt, freq).values.tolist())
                     - set(clim[freq].values.tolist()))
    if missing:
        msg = (f"stats_time lacks {freq} {missing[:12]}{' ...' if len(missing) > 12 else ''} "
               f"of the stored steps, so their anomalies would be undefined; choose a "
               f"statistics period of whole years")
        raise ValueError(msg)


def _anomalies(block: xr.Dataset, clim: xr.Dataset, *, freq: str) -> xr.Dataset:
    """Anomalies of one time chunk (the climatology is one shared, small chunk)."""
    return anomalies(block, freq=freq, clim=clim)
