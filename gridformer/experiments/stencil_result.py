"""What a stencil experiment returns, and its JSON-ready metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gridformer.analysis import StencilComparison, stencil_to_dict

__all__ = ["PDEBENCH_METRICS", "StencilResult", "pdebench_summary"]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _curve(values: xr.DataArray) -> list[float | None]:
    return [_finite(v) for v in np.asarray(values.values, dtype=float)]


PDEBENCH_METRICS = ("rmse", "nrmse", "crmse", "max_error", "brmse")


def _pdebench_row(errors: xr.Dataset) -> dict[str, Any]:
    """PDEBench's metrics of one step (or averaged over steps) as JSON-ready numbers."""
    row: dict[str, Any] = {name: _finite(float(errors[f"pdebench_{name}"]))
                           for name in PDEBENCH_METRICS}
    frmse = errors["pdebench_frmse"]
    row["frmse"] = {str(band): _finite(float(frmse.sel(band=band))) for band in frmse.band.values}
    return row


def pdebench_summary(errors: xr.Dataset) -> dict[str, Any] | None:
    """PDEBench's metrics after one model step, at the end of the rollout, and averaged over
    steps ``1..N`` (what PDEBench's tables report: its ``metric_func`` with ``if_mean=True``
    and ``initial_step=1``). ``None`` when ``errors`` has no ``pdebench_*`` variables (made
    by ``rollout_errors`` without ``pdebench=True``)."""
    if "pdebench_rmse" not in errors:
        return None
    n = int(errors.sizes["time"]) - 1
    rolled = errors.isel(time=slice(1, None))
    return {
        "definition": "PDEBench metric_func (Takamoto et al. 2022): nrmse = RMSE / RMS of the "
                      "target; crmse, brmse, frmse as in PDEBench; domain length 1 per dim",
        "one_step": {"step": 1, **_pdebench_row(errors.isel(time=1))},
        "final": {"step": n, **_pdebench_row(errors.isel(time=n))},
        "rollout_mean": {"steps": [1, n], **_pdebench_row(rolled.mean("time", skipna=False))},
    }


@dataclass
class StencilResult:
    """Everything one :func:`run_stencil_experiment` measured.

    Attributes
    ----------
    learned_stencil
        Mean attention stencil over ``("dy", "dx")`` (``spread`` coordinate = std over
        queries), or None for a model without attention.
    effective_stencil
        Jacobian stencil ``d u_new[i] / d u[i + offset]`` averaged over positions.
    fd_stencil
        ``solvers.update_stencil`` (None for Burgers).
    comparison, effective_comparison
        The learned (attention, or effective when there is none) and the effective stencil
        against ``fd_stencil`` (None for Burgers).
    rollout
        ``rel_l2``, ``nrmse`` and PDEBench's metrics (``pdebench_*``, see
        :func:`gridformer.analysis.rollout_errors`) over ``time`` against the FD trajectory.
    spectral
        Error by wavenumber at the last rollout step.
    prediction, reference
        Model and FD trajectories ``(time, sample, *grid)`` (prediction as an array).
    upwind_consistency
        Burgers: fraction of cells (|u| > 0.1 max|u|) whose attention leans upstream.
    baselines
        Per baseline kind: ``{"fit": ..., "rollout": xr.Dataset}``.
    fit
        ``loss``, ``losses``, ``evaluations``, ``seconds`` of the training.
    """

    equation: str
    params: dict[str, Any]
    grid: tuple[int, ...]
    dt: float
    spacing: tuple[float, ...]
    seed: int
    model: str
    optimizer: str
    radius: int
    learned_stencil: xr.DataArray | None
    effective_stencil: xr.DataArray
    fd_stencil: xr.DataArray | None
    comparison: StencilComparison | None
    effective_comparison: StencilComparison | None
    rollout: xr.Dataset
    spectral: xr.Dataset
    prediction: np.ndarray
    reference: xr.DataArray
    upwind_consistency: float | None
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rollout_steps(self) -> int:
        """Number of model steps in the rollout."""
        return int(self.rollout.sizes["time"]) - 1

    def shown_stencil(self, which: str = "learned") -> xr.DataArray | None:
        """A stencil cropped to one cell beyond the FD radius (what tables and figures show)."""
        stencil = {"learned": self.learned_stencil, "effective": self.effective_stencil,
                   "fd": self.fd_stencil}[which]
        if stencil is None:
            return None
        r = self.radius + 1
        return stencil.sel({d: abs(stencil[d]) <= r for d in stencil.dims})

    def metrics(self) -> dict[str, Any]:
        """JSON-ready metrics (the ``"metrics"`` of ``gridformer stencil --json``).

        ``"pdebench"`` (also per baseline) holds PDEBench's RMSE, nRMSE, cRMSE, max error,
        bRMSE and fRMSE (low/mid/high bands) after one step, at the last step and averaged
        over the rollout (:func:`pdebench_summary`), so the numbers can sit beside PDEBench's
        published tables; non-finite values (a diverged rollout) are ``None``.
        """
        learned = self.shown_stencil("learned")
        if learned is None:  # no attention: the effective stencil is what was learned
            learned = self.shown_stencil("effective")
        cmp = self.comparison.as_dict() if self.comparison is not None else None
        eff = self.effective_comparison
        out: dict[str, Any] = {
            "equation": self.equation,
            "params": self.params,
            "model": self.model,
            "optimizer": self.optimizer,
            "stencil_source": "attention" if self.learned_stencil is not None else "effective",
            "learned_stencil": stencil_to_dict(learned),
            "fd_stencil": (stencil_to_dict(self.fd_stencil, atol=0.0)
                           if self.fd_stencil is not None else None),
            "effective_stencil": stencil_to_dict(self.shown_stencil("effective")),
            "max_abs_error": cmp["max_abs_error"] if cmp else None,
            "l1_error": cmp["l1_error"] if cmp else None,
            "mass_in_support": cmp["mass_in_support"] if cmp else None,
            "max_moment_error": cmp["max_moment_error"] if cmp else None,
            "comparison": cmp,
            "effective_max_abs_error": eff.max_abs_error if eff is not None else None,
            "effective_mass_in_support": eff.mass_in_support if eff is not None else None,
            "rollout_steps": self.rollout_steps,
            "rollout_rel_l2": _finite(self.rollout.rel_l2.values[-1]),
            "rollout_rel_l2_curve": _curve(self.rollout.rel_l2),
            "rollout_nrmse": _finite(self.rollout.nrmse.values[-1]),
            "rollout_nrmse_curve": _curve(self.rollout.nrmse),
            "spectral_error": {"wavenumber": self.spectral.wavenumber.values.tolist(),
                               "relative_error": _curve(self.spectral.relative_error)},
            "pdebench": pdebench_summary(self.rollout),
            "upwind_consistency": self.upwind_consistency,
            "train_loss": self.fit.get("loss"),
            "train_evaluations": self.fit.get("evaluations"),
            "train_seconds": self.fit.get("seconds"),
            "seconds": self.seconds,
        }
        if self.baselines:
            out["baselines"] = {
                name: {"rollout_rel_l2": _finite(b["rollout"].rel_l2.values[-1]),
                       "rollout_rel_l2_curve": _curve(b["rollout"].rel_l2),
                       "pdebench": pdebench_summary(b["rollout"]),
                       "train_loss": b["fit"]["loss"], "train_seconds": b["fit"]["seconds"]}
                for name, b in self.baselines.items()
            }
        return out
