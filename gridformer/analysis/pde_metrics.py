"""The error metrics PDEBench reports (Takamoto et al., NeurIPS 2022), with its definitions.

For a prediction ``p`` and target ``q`` over samples ``b``, channels ``c``, space ``s`` (``N``
points) and time ``t``, with ``e = p - q``:

* ``rmse``       mean_b sqrt(mean_s e^2)
* ``nrmse``      mean_b [sqrt(mean_s e^2) / sqrt(mean_s q^2)]  (normalised by the target's RMS,
  so per sample it equals the relative L2 error ``||e|| / ||q||``; NaN for an all-zero target)
* ``crmse``      sqrt(mean_b (sum_s p - sum_s q)^2) / N  (error of the conserved total)
* ``max_error``  max_b max_s |e|
* ``brmse``      mean_b sqrt(mean of e^2 over the boundary faces): the first and last cell along
  every spatial axis, a corner cell counted once per face it lies on
* ``frmse``      error in Fourier space, averaged over wavenumber bands ``low`` = [0, 4),
  ``mid`` = [4, 12), ``high`` = [12, end): in 1-D, ``sqrt(mean_b |rfft(e)_k|^2) / N * L`` per
  ``k = 0 .. N//2``; in 2-D/3-D, ``|fftn(e)|^2`` summed over shells ``floor(|k|)`` of the
  non-negative quadrant (``0 <= k_i < N_i // 2``), shells below ``min(N_i // 2)`` kept, then
  ``sqrt(mean_b(.)) / prod(N_i) * prod(L_i)``.

Each metric is computed per channel and time step; :func:`pdebench_metrics` then averages over
channels and time steps (PDEBench's ``if_mean=True``) and :func:`pdebench_metrics_per_step`
over channels only. The first ``initial_step`` time steps (given to the model, error 0) are
left out, as in PDEBench. Differences from PDEBench's code: samples are pooled in one batch
(PDEBench averages per-batch values, so ``crmse``/``frmse``, which average inside a square
root, depend on its batch size), and in 3-D ``brmse`` keeps channels apart and averages over
samples like 1-D/2-D (PDEBench's 3-D branch mixes channels into the face sum).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["PDEBENCH_BANDS", "pdebench_metrics", "pdebench_metrics_per_step"]

PDEBENCH_BANDS = (4, 12)  # PDEBench's iLow, iHigh: band edges in wavenumber index
_BATCH_DIMS = ("sample",)
_LONG_NAMES = {
    "rmse": "root-mean-square error",
    "nrmse": "RMSE / RMS of the target",
    "crmse": "RMSE of the conserved total (sum over space) / number of points",
    "max_error": "maximum absolute error",
    "brmse": "RMSE on the boundary faces",
    "frmse": "RMSE in Fourier space by wavenumber band",
}


def pdebench_metrics(
    prediction: Any,
    target: Any,
    *,
    initial_step: int = 1,
    channel_dim: str | None = None,
    lengths: float | Mapping[str, float] = 1.0,
    bands: Sequence[int] = PDEBENCH_BANDS,
) -> xr.Dataset:
    """PDEBench's six metrics, averaged over channels and time steps.

    Parameters
    ----------
    prediction, target
        ``xr.DataArray`` over ``time``, optionally ``sample`` and a channel dim, and 1-3
        spatial dims (all other dims); or ``xr.Dataset`` whose variables are the channels. An
        ndarray ``prediction`` takes the target's dims. Dims are matched by name.
    initial_step
        Leading time steps left out (the given initial condition; PDEBench's default 1).
    channel_dim
        Dim holding channels (default ``"channel"`` when present, else none).
    lengths
        Domain length per spatial dim (one number for all, or ``{dim: length}``); scales
        ``frmse`` only. PDEBench's training scripts use 1.
    bands
        ``(i_low, i_high)`` wavenumber-index edges of the ``frmse`` bands.

    Returns
    -------
    xr.Dataset
        Scalars ``rmse``, ``crmse``, ``max_error``, ``brmse`` (in the data's units), ``nrmse``
        (dimensionless) and ``frmse`` over ``band`` = ``low``, ``mid``, ``high`` (with
        coords ``k_start``/``k_stop``: index range, stop exclusive). A band with no
        wavenumbers (a coarse grid) is NaN.
    """
    steps = pdebench_metrics_per_step(prediction, target, initial_step=initial_step,
                                      channel_dim=channel_dim, lengths=lengths, bands=bands)
    out = steps.drop_vars(["step", "time"]).mean("time", keep_attrs=True)
    out.attrs = {**steps.attrs, "averaged_over": "channels and time steps"}
    return out


def pdebench_metrics_per_step(
    prediction: Any,
    target: Any,
    *,
    initial_step: int = 1,
    channel_dim: str | None = None,
    lengths: float | Mapping[str, float] = 1.0,
    bands: Sequence[int] = PDEBENCH_BANDS,
) -> xr.Dataset:
    """PDEBench's six metrics per time step (averaged over channels).

    Parameters are those of :func:`pdebench_metrics`.

    Returns
    -------
    xr.Dataset
        Over ``time`` (the target's time coordinate after ``initial_step``; ``step`` is the
        index in the full trajectory): ``rmse``, ``nrmse``, ``crmse``, ``max_error``,
        ``brmse``, and ``frmse`` over ``(band, time)``.
    """
    pred, targ, spatial, time_coord = _arrays(prediction, target, channel_dim)
    start = _check_initial_step(initial_step, pred.shape[2])
    i_low, i_high = _check_bands(bands)
    size = _lengths(lengths, spatial)
    pred, targ = pred[:, :, start:], targ[:, :, start:]  # (B, C, T, *S)
    values = _per_channel_step(pred, targ, size, i_low, i_high)
    n_freq = values.pop("n_shells")
    data = {k: (("time",), v.mean(axis=0)) for k, v in values.items() if k != "frmse"}
    data["frmse"] = (("band", "time"), values["frmse"].mean(axis=0))
    coords = {
        "time": time_coord[start:],
        "band": ["low", "mid", "high"],
        "k_start": ("band", [0, i_low, i_high]),
        "k_stop": ("band", [i_low, i_high, max(n_freq, i_high)]),
    }
    ds = xr.Dataset(data, coords=coords)
    ds = ds.assign_coords(step=("time", np.arange(start, start + pred.shape[2])))
    units = getattr(target, "attrs", {}).get("units") if not isinstance(target, xr.Dataset) \
        else None
    for name, long_name in _LONG_NAMES.items():
        ds[name].attrs["long_name"] = long_name
        if name == "nrmse":
            ds[name].attrs["units"] = "1"
        elif units is not None:
            ds[name].attrs["units"] = units
    ds.attrs = {"spatial_dims": " ".join(spatial), "initial_step": start,
                "definition": "PDEBench metric_func", "averaged_over": "channels"}
    return ds


# ------------------------------------------------------------------------------ the metrics
def _per_channel_step(pred: np.ndarray, targ: np.ndarray, size: list[float], i_low: int,
                      i_high: int) -> dict[str, np.ndarray]:
    """Every metric as ``(C, T)`` (``frmse``: ``(C, 3, T)``) from ``(B, C, T, *S)`` arrays."""
    space = tuple(range(3, pred.ndim))
    n_points = math.prod(pred.shape[3:])
    err = pred - targ  # (B, C, T, *S)
    rmse_b = np.sqrt(np.mean(err**2, axis=space))  # (B, C, T)
    rms_target = np.sqrt(np.mean(targ**2, axis=space))
    totals = np.sum(pred, axis=space) - np.sum(targ, axis=space)  # (B, C, T)
    spectrum = _fourier_error(err, size)  # (C, T, K)
    n_shells = spectrum.shape[-1]
    frmse = np.stack([_band_mean(spectrum, lo, hi) for lo, hi in
                      ((0, i_low), (i_low, i_high), (i_high, n_shells))], axis=1)  # (C, 3, T)
    return {
        "rmse": rmse_b.mean(axis=0),
        "nrmse": _ratio(rmse_b, rms_target).mean(axis=0),
        "crmse": np.sqrt(np.mean(totals**2, axis=0)) / n_points,
        "max_error": np.abs(err).max(axis=space).max(axis=0),
        "brmse": _boundary_rmse(err).mean(axis=0),
        "frmse": frmse,
        "n_shells": np.asarray(n_shells),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where ``den`` is 0 (nRMSE of an all-zero target is undefined)."""
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _boundary_rmse(err: np.ndarray) -> np.ndarray:
    """``(B, C, T)``: RMS of ``err`` over the first and last cell along each spatial axis."""
    total, count = 0.0, 0
    for axis in range(3, err.ndim):
        for index in (0, -1):
            face = np.take(err, index, axis=axis) ** 2  # (B, C, T, *other S)
            total = total + face.sum(axis=tuple(range(3, face.ndim)))
            count += math.prod(face.shape[3:])
    return np.sqrt(total / count)


def _fourier_error(err: np.ndarray, size: list[float]) -> np.ndarray:
    """``(C, T, K)`` error amplitude per wavenumber (1-D) or per shell (2-D, 3-D)."""
    shape = err.shape[3:]
    if len(shape) == 1:
        power = np.abs(np.fft.rfft(err, axis=-1)) ** 2  # (B, C, T, N//2 + 1)
        return np.sqrt(power.mean(axis=0)) / shape[0] * size[0]
    half = [n // 2 for n in shape]
    power = np.abs(np.fft.fftn(err, axes=tuple(range(3, err.ndim)))) ** 2
    power = power[(..., *(slice(0, h) for h in half))]  # non-negative quadrant only
    radius = np.sqrt(sum(k**2 for k in np.meshgrid(*(np.arange(h) for h in half),
                                                   indexing="ij")))
    shell = np.floor(radius).astype(int).ravel()
    n_shells = min(half)
    keep = shell < n_shells
    flat = power.reshape(*power.shape[:3], -1)[..., keep]  # (B, C, T, M) kept modes
    members = np.eye(n_shells)[shell[keep]]  # (M, K): which shell each mode is in
    summed = flat @ members  # (B, C, T, K)
    return np.sqrt(summed.mean(axis=0)) / math.prod(shape) * math.prod(size)


def _band_mean(spectrum: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean over shells ``[start, stop)`` of a ``(C, T, K)`` spectrum; NaN when empty."""
    part = spectrum[..., start:stop]
    if part.shape[-1] == 0:
        return np.full(spectrum.shape[:-1], np.nan)
    return part.mean(axis=-1)


# ------------------------------------------------------------------------------ inputs
def _as_dataarray(obj: Any, name: str, channel_dim: str | None) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        if not obj.data_vars:
            msg = f"{name} is an xr.Dataset without data variables"
            raise ValueError(msg)
        return obj.to_dataarray(dim=channel_dim or "channel")
    if isinstance(obj, xr.DataArray):
        return obj
    msg = f"{name} must be an xr.DataArray or xr.Dataset, not {type(obj).__name__}"
    raise TypeError(msg)


def _arrays(prediction: Any, target: Any, channel_dim: str | None
            ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """``(B, C, T, *S)`` float64 prediction and target, spatial dims, time coordinate."""
    targ = _as_dataarray(target, "target", channel_dim)
    if isinstance(prediction, np.ndarray | list):
        arr = np.asarray(prediction, dtype=np.float64)
        if isinstance(target, xr.Dataset) or arr.shape != targ.shape:
            msg = (f"prediction as an array must have the target's shape {targ.shape} "
                   f"{targ.dims}, got {arr.shape}; pass an xr.DataArray otherwise")
            raise ValueError(msg)
        pred = targ.copy(data=arr)
    else:
        pred = _as_dataarray(prediction, "prediction", channel_dim)
    if "time" not in targ.dims:
        msg = f"target needs a 'time' dim; it has dims {targ.dims}"
        raise ValueError(msg)
    if set(pred.dims) != set(targ.dims) or any(pred.sizes[d] != targ.sizes[d]
                                               for d in targ.dims):
        msg = f"prediction {dict(pred.sizes)} and target {dict(targ.sizes)} differ"
        raise ValueError(msg)
    channel = channel_dim or ("channel" if "channel" in targ.dims else None)
    if channel is not None and channel not in targ.dims:
        msg = f"channel_dim={channel_dim!r} is not a dim of the target {targ.dims}"
        raise ValueError(msg)
    lead = [d for d in (*_BATCH_DIMS, channel, "time") if d is not None and d in targ.dims]
    spatial = [str(d) for d in targ.dims if d not in lead]
    if not 1 <= len(spatial) <= 3:
        msg = (f"PDEBench metrics need 1 to 3 spatial dims; the target has {spatial} besides "
               f"{lead} (name a channel dim with channel_dim=)")
        raise ValueError(msg)
    arrays = []
    for da in (pred, targ):
        for d in ("sample", channel):
            if d is None or d not in da.dims:
                da = da.expand_dims(d or "channel")
        arrays.append(np.asarray(da.transpose("sample", channel or "channel", "time",
                                              *spatial).values, dtype=np.float64))
    time = targ["time"].values if "time" in targ.coords else np.arange(targ.sizes["time"])
    return arrays[0], arrays[1], spatial, time


def _check_initial_step(initial_step: Any, n_time: int) -> int:
    if isinstance(initial_step, bool) or not isinstance(initial_step, int | np.integer) or \
            not 0 <= initial_step < n_time:
        msg = (f"initial_step={initial_step!r} must be an integer in [0, {n_time - 1}] (the "
               f"data have {n_time} time steps)")
        raise ValueError(msg)
    return int(initial_step)


def _check_bands(bands: Sequence[int]) -> tuple[int, int]:
    values = tuple(bands)
    if len(values) != 2 or not all(isinstance(v, int | np.integer) for v in values) or \
            not 0 < values[0] < values[1]:
        msg = f"bands={bands!r} must be two integers 0 < i_low < i_high (PDEBench: (4, 12))"
        raise ValueError(msg)
    return int(values[0]), int(values[1])


def _lengths(lengths: float | Mapping[str, float], spatial: list[str]) -> list[float]:
    if isinstance(lengths, Mapping):
        missing = [d for d in spatial if d not in lengths]
        if missing:
            msg = f"lengths={dict(lengths)!r} must give every spatial dim {spatial}"
            raise ValueError(msg)
        values = [lengths[d] for d in spatial]
    else:
        values = [lengths] * len(spatial)
    if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values):
        msg = f"lengths={lengths!r} must be positive finite numbers"
        raise ValueError(msg)
    return [float(v) for v in values]
