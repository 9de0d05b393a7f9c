"""Reading a trained model as physics: stencils, rollouts and spectral errors.

Public API::

    attention_stencil(attention, layout, *, layers=None, heads=None, radius=None)
        -> xr.DataArray over ("dy", "dx"), with coordinate "spread"
    effective_stencil(model_fn, u, *, n_positions=64, radius=None) -> xr.DataArray
    compare_stencils(learned, reference) -> StencilComparison
    stencil_moments(stencil) -> (m0, m1, m2);  stencil_to_dict(stencil) -> JSON-ready dict
    rollout(step_fn, u0, steps) -> ndarray (steps + 1, B, *grid)
    rollout_errors(prediction, reference, *, pdebench=False) -> xr.Dataset(rel_l2, nrmse
        [, pdebench_rmse, pdebench_nrmse, ... with pdebench=True] over time, coord step)
    spectral_error(prediction, reference) -> xr.Dataset over wavenumber
    pdebench_metrics(prediction, target) -> xr.Dataset (PDEBench's RMSE, nRMSE, cRMSE, max,
        bRMSE, fRMSE by band);  pdebench_metrics_per_step(...) -> the same over time
    upwind_consistency(stencils, velocity) -> float;  upwind_lean(...) -> xr.DataArray

Teleconnections (xarray in and out)::

    teleconnection_map(attention, layout, query, *, combine="mean" | "rollout") -> (lat, lon)
    query_tokens(layout, query) -> token indices of a point or box
    mean_attention_distance(attention, layout) -> (layer, head) km, coord "uniform"
    attention_entropy(attention, layout=None) -> (layer, sample, head, query) in [0, 1]
    attention_rollout(attentions, *, residual=0.5) -> Tensor (B, Q, K)
    correlation_map(field, index, *, dim="time", lag=0) -> (lat, lon)
    pattern_correlation(a, b) -> float;  leading_eofs(field, n=3) -> xr.Dataset (needs xeofs)
    lat_weighted_rmse, anomaly_correlation (WeatherBench 2);  index_skill -> correlation, rmse
"""

from gridformer.analysis.attention_stats import (
    attention_entropy,
    attention_rollout,
    mean_attention_distance,
)
from gridformer.analysis.climate_stats import (
    correlation_map,
    leading_eofs,
    pattern_correlation,
)
from gridformer.analysis.compare import (
    StencilComparison,
    compare_stencils,
    stencil_moments,
    stencil_to_dict,
)
from gridformer.analysis.effective import effective_stencil
from gridformer.analysis.pde_metrics import (
    PDEBENCH_BANDS,
    pdebench_metrics,
    pdebench_metrics_per_step,
)
from gridformer.analysis.rollout import rollout, rollout_errors, spectral_error
from gridformer.analysis.skill import anomaly_correlation, index_skill, lat_weighted_rmse
from gridformer.analysis.stencils import (
    attention_stencil,
    crop_stencil,
    offset_dims,
    stack_attention,
)
from gridformer.analysis.teleconnection import query_tokens, teleconnection_map
from gridformer.analysis.upwind import upwind_consistency, upwind_lean

__all__ = [
    "PDEBENCH_BANDS",
    "StencilComparison",
    "anomaly_correlation",
    "attention_entropy",
    "attention_rollout",
    "attention_stencil",
    "compare_stencils",
    "correlation_map",
    "crop_stencil",
    "effective_stencil",
    "index_skill",
    "lat_weighted_rmse",
    "leading_eofs",
    "mean_attention_distance",
    "offset_dims",
    "pattern_correlation",
    "pdebench_metrics",
    "pdebench_metrics_per_step",
    "query_tokens",
    "rollout",
    "rollout_errors",
    "spectral_error",
    "stack_attention",
    "stencil_moments",
    "stencil_to_dict",
    "teleconnection_map",
    "upwind_consistency",
    "upwind_lean",
]
