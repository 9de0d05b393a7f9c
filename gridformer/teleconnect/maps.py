"""Maps and the numbers that compare them: attention vs correlation (and EOF 1), skill.

The attention map lives on the token grid (one value per patch); the correlation map on the
cell grid. They are compared on the token grid, where the model sees the data: ``|correlation|``
is averaged over each token's valid cells (the tokenizer's own patches, padding included), and
the centred, cos(lat)-weighted :func:`~gridformer.analysis.pattern_correlation` is taken between
that map and the attention map.

- ``attention_mass_in_top_correlation_region``: the share of the query's attention to grid
  tokens that falls on the tokens whose ``|correlation|`` is at least half its largest value;
  ``uniform_mass_in_top_correlation_region`` is the same share under uniform attention.
- ``peak_lat`` / ``peak_lon``: the centre of the token with the most attention.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.analysis import (
    anomaly_correlation,
    correlation_map,
    index_skill,
    lat_weighted_rmse,
    leading_eofs,
    pattern_correlation,
    teleconnection_map,
)
from gridformer.datasets import lat_weights
from gridformer.teleconnect.config import TeleconnectConfig
from gridformer.teleconnect.prep import Prepared
from gridformer.teleconnect.query import Query

__all__ = [
    "attention_maps",
    "correlation_maps",
    "eof_map",
    "map_metrics",
    "region_mass",
    "skill",
    "to_tokens",
]


def attention_maps(rows: list[torch.Tensor], prepared: Prepared, query: Query, part_steps: Any,
                   config: TeleconnectConfig) -> tuple[xr.DataArray, xr.DataArray]:
    """The teleconnection map on the token grid and on the cell grid (each patch repeated)."""
    layout = prepared.part_layout(part_steps)
    layers = -1 if config.combine == "last" else None
    kwargs = {"query_index": query.positions, "layers": layers}
    tokens = teleconnection_map(rows, layout, query.spec, **kwargs)
    cells = teleconnection_map(rows, layout, query.spec, upsample=True, **kwargs)
    rule = "last block, mean over heads" if layers == -1 else "mean over blocks and heads"
    for m in (tokens, cells):
        m.attrs["combine"] = rule
    return tokens, cells


def correlation_maps(prepared: Prepared, query: Query, config: TeleconnectConfig
                     ) -> tuple[xr.DataArray, xr.DataArray]:
    """Correlation of each input with the target index at lag ``lead`` (input leading).

    Returns the map ``(lat, lon)`` (``(input, lat, lon)`` with several inputs) and the index it
    correlates with: the target itself, or a field target averaged (cos lat) over the query
    region. The whole record is used, as in a classical correlation map.
    """
    target = prepared.target
    if prepared.kind == "field":
        region = target.where(query.region)
        index = region.weighted(lat_weights(target["lat"])).mean(("lat", "lon"))
        index = index.rename(f"{target.name} over the query region")
    else:
        index = target
    maps = [correlation_map(prepared.inputs[name], index, lag=-config.lead).expand_dims(
        input=[name]) for name in config.inputs]
    corr = xr.concat(maps, dim="input")
    corr.attrs = {**maps[0].attrs,
                  "long_name": f"correlation with {index.name} {config.lead} steps later"}
    if len(config.inputs) == 1:
        corr = corr.squeeze("input", drop=True)
    return corr.rename("correlation"), index


def to_tokens(field: xr.DataArray, prepared: Prepared) -> xr.DataArray:
    """Mean of a ``(lat, lon)`` map over each token's valid cells, on the token grid."""
    tokens, _ = prepared.tokenizer.__class__(
        prepared.tokenizer.patch_size, dtype=torch.float64, fill_value=float("nan"),
    ).encode(field.transpose("lat", "lon"))  # (1, N, P)
    with warnings.catch_warnings():  # an all-NaN patch (land, padding) is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.nanmean(tokens[0].numpy(), axis=-1)  # (N,)
    return prepared.layout.to_grid(values, name=field.name)


def region_mass(attention: xr.DataArray, region: xr.DataArray) -> float:
    """Share of ``attention`` (token grid) on the tokens where ``region`` (token grid) holds."""
    values = np.nan_to_num(attention.values)
    return float(values[region.values].sum() / values.sum())


def map_metrics(attention: xr.DataArray, abs_corr: xr.DataArray) -> dict[str, Any]:
    """Pattern correlation, peak and attention mass in the top-|correlation| region."""
    attention = attention.drop_vars("spread")
    peak = attention.where(np.isfinite(attention), -np.inf).argmax(("lat", "lon"))
    top = abs_corr >= 0.5 * float(abs_corr.max())
    valid = np.isfinite(attention.values)
    return {
        "pattern_correlation": pattern_correlation(attention, abs_corr),
        "peak_lat": float(attention["lat"][int(peak["lat"])]),
        "peak_lon": float(attention["lon"][int(peak["lon"])]),
        "attention_mass_in_top_correlation_region": region_mass(attention, top),
        "uniform_mass_in_top_correlation_region": float((top.values & valid).sum()
                                                         / valid.sum()),
        "top_correlation_tokens": int(top.values.sum()),
        "max_abs_correlation": float(abs_corr.max()),
    }


def eof_map(prepared: Prepared, config: TeleconnectConfig) -> tuple[xr.DataArray | None, str]:
    """EOF 1 of the first input's standardised anomalies (xeofs), or None and why not."""
    name = config.inputs[0]
    try:
        eofs = leading_eofs(prepared.inputs[name], n=1)
    except ModuleNotFoundError:
        return None, "EOF 1 left out: xeofs is not installed (pip install 'gridformer[climate]')"
    except ValueError as err:
        return None, f"EOF 1 left out: {err}"
    eof = eofs["eofs"].sel(mode=1, drop=True).rename("eof1")
    ratio = float(eofs["explained_variance_ratio"].sel(mode=1))
    eof.attrs = {"long_name": f"EOF 1 of {name} ({100 * ratio:.1f}% of the variance)",
                 "units": "1", "explained_variance_ratio": ratio, "input": name}
    return eof, ""


def _region_series(field: xr.DataArray) -> xr.DataArray:
    return field.weighted(lat_weights(field["lat"])).mean(("lat", "lon"))


def skill(prediction: torch.Tensor, prepared: Prepared, query: Query, part: str
          ) -> dict[str, float]:
    """Skill on one part, in the target's anomaly units.

    Index: Pearson correlation and RMSE, beside the RMSE of predicting the climatology (a zero
    anomaly). Field: over the cells of the query region (what the model is trained on),
    WeatherBench 2's latitude-weighted RMSE and anomaly correlation (ACC), and the correlation
    and RMSE of the region mean.
    """
    steps = prepared.pairs[part][1]
    truth = prepared.target.isel(time=steps) * prepared.scale
    if prepared.kind == "index":
        pred = xr.DataArray(prediction[:, 0].double().numpy(), dims=("time",),
                            coords={"time": truth["time"]}) * prepared.scale
        scores = index_skill(pred, truth)
        return {"correlation": float(scores["correlation"]), "rmse": float(scores["rmse"]),
                "rmse_climatology": float(np.sqrt(float((truth**2).mean())))}
    tokenizer = prepared.tokenizer.__class__(prepared.tokenizer.patch_size,
                                             dtype=torch.float64, fill_value=float("nan"))
    _, layout = tokenizer.encode(truth)  # the grid of this part, to decode the prediction
    pred = tokenizer.decode(prediction.double(), layout).where(query.region)  # (time, lat, lon)
    truth = truth.where(query.region)
    regional = index_skill(_region_series(pred), _region_series(truth))
    return {
        "rmse": float(lat_weighted_rmse(pred, truth)),
        "acc": float(anomaly_correlation(pred, truth)),
        "rmse_climatology": float(lat_weighted_rmse(xr.zeros_like(truth), truth)),
        "query_correlation": float(regional["correlation"]),
        "query_rmse": float(regional["rmse"]),
    }
