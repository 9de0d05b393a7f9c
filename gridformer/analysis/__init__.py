"""Reading a trained model as physics: stencils, rollouts and spectral errors.

Public API::

    attention_stencil(attention, layout, *, layers=None, heads=None, radius=None)
        -> xr.DataArray over ("dy", "dx"), with coordinate "spread"
    effective_stencil(model_fn, u, *, n_positions=64, radius=None) -> xr.DataArray
    compare_stencils(learned, reference) -> StencilComparison
    stencil_moments(stencil) -> (m0, m1, m2);  stencil_to_dict(stencil) -> JSON-ready dict
    rollout(step_fn, u0, steps) -> ndarray (steps + 1, B, *grid)
    rollout_errors(prediction, reference) -> xr.Dataset(rel_l2, nrmse over time)
    spectral_error(prediction, reference) -> xr.Dataset over wavenumber
    pdebench_metrics(prediction, target) -> xr.Dataset (PDEBench's RMSE, nRMSE, cRMSE, max,
        bRMSE, fRMSE by band);  pdebench_metrics_per_step(...) -> the same over time
    upwind_consistency(stencils, velocity) -> float;  upwind_lean(...) -> xr.DataArray
"""

from gridformer.analysis.compare import (
    StencilComparison,
    compare_stencils,
    stencil_moments,
    stencil_to_dict,
)
from gridformer.analysis.effective import effective_stencil, wrapped_offsets
from gridformer.analysis.pde_metrics import (
    PDEBENCH_BANDS,
    pdebench_metrics,
    pdebench_metrics_per_step,
)
from gridformer.analysis.rollout import rollout, rollout_errors, spectral_error
from gridformer.analysis.stencils import (
    attention_stencil,
    crop_stencil,
    offset_dims,
    stack_attention,
)
from gridformer.analysis.upwind import upwind_consistency, upwind_lean

__all__ = [
    "PDEBENCH_BANDS",
    "StencilComparison",
    "attention_stencil",
    "compare_stencils",
    "crop_stencil",
    "effective_stencil",
    "offset_dims",
    "pdebench_metrics",
    "pdebench_metrics_per_step",
    "rollout",
    "rollout_errors",
    "spectral_error",
    "stack_attention",
    "stencil_moments",
    "stencil_to_dict",
    "upwind_consistency",
    "upwind_lean",
    "wrapped_offsets",
]
