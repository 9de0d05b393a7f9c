"""``segmentation``: does sharper attention at boundary tokens go with crisper boundaries?

Claim (reference text, claim 3): ViTs adapt to dense prediction; hypothesis: the sharper (more
concentrated) a token's attention near boundaries, the crisper the boundary.

Task (:func:`gridformer.datasets.segmentation_task`): a 32 x 32 periodic grid cut into 4 x 4
patches (8 x 8 tokens); fronts, the label is the sign of a smooth random field, the input is
that field plus white noise of std 0.5, so cells near a front are ambiguous on their own.
GridFormer with a field head predicts the 16 cells x 2 classes of logits of every token,
trained with per-cell cross-entropy.

Metrics on the test set:

- ``mean_iou``: intersection over union per class, averaged over the classes.
- ``boundary_f1``: boundary cells (a differently labelled 4-neighbour) of the prediction
  against the truth, matched within 1 cell (Chebyshev), F1 of precision and recall (the
  boundary F-measure of Csurka et al. 2013 with a 1-cell tolerance).
- ``sharpness_boundary_correlation``: over the boundary tokens (tokens holding a true boundary
  cell), Spearman's rank correlation between attention sharpness, ``1 - entropy`` (entropy of
  the token's attention row over the 64 keys, normalised to [0, 1], averaged over layers and
  heads), and the share of the token's cells labelled right;
  ``sharpness_boundary_correlation_low`` / ``_high``: its 95% bootstrap interval (resampling
  whole test images, 1000 times).

Verdict: the correlation over seeds (95% Student-t interval) against 0; a correlation within
0.1 of 0 with a narrow interval counts as no relation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import Tensor

from gridformer.experiments._common import (
    derive_seed,
    gridformer_model,
    predict,
    tokenize,
    train,
)
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import compare_to_value, fmt

__all__ = ["EXPERIMENT", "boundary_f1", "mean_iou", "rank_correlation"]

_MODEL = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "position": "relative",
          "lr": 2e-3, "batch_size": 32}
QUICK = {"grid": [32, 32], "patch_size": 4, "kind": "fronts", "noise": 0.5,
         "n_train": 1024, "n_test": 256, "steps": 300, "bootstrap": 1000, **_MODEL}
FULL = {**QUICK, "n_train": 2048, "n_test": 512, "steps": 1500}


# ---------------------------------------------------------------- metrics
def mean_iou(prediction: np.ndarray, truth: np.ndarray, n_classes: int) -> float:
    """Mean over classes of ``|pred = c and truth = c| / |pred = c or truth = c|``."""
    ious = []
    for c in range(n_classes):
        union = np.logical_or(prediction == c, truth == c).sum()
        if union:
            ious.append(np.logical_and(prediction == c, truth == c).sum() / union)
    return float(np.mean(ious))


def _boundary(labels: np.ndarray) -> np.ndarray:
    """Cells ``(S, ny, nx)`` with a differently labelled 4-neighbour (periodic)."""
    out = np.zeros(labels.shape, dtype=bool)
    for axis in (-2, -1):
        for shift in (1, -1):
            out |= labels != np.roll(labels, shift, axis=axis)
    return out


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Periodic Chebyshev dilation of ``(S, ny, nx)`` masks by ``radius`` cells."""
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= np.roll(mask, (dy, dx), axis=(-2, -1))
    return out


def boundary_f1(prediction: np.ndarray, truth: np.ndarray, tolerance: int = 1) -> float:
    """Boundary F1 of label maps ``(S, ny, nx)``: boundaries matched within ``tolerance`` cells.

    1.0 when no boundary exists in either; 0.0 when only one of them has boundaries.
    """
    pred_b, true_b = _boundary(prediction), _boundary(truth)
    if not pred_b.any() and not true_b.any():
        return 1.0
    if not pred_b.any() or not true_b.any():
        return 0.0
    precision = (pred_b & _dilate(true_b, tolerance)).sum() / pred_b.sum()
    recall = (true_b & _dilate(pred_b, tolerance)).sum() / true_b.sum()
    return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either is constant."""
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def _bootstrap(groups: np.ndarray, x: np.ndarray, y: np.ndarray, n: int, seed: int
               ) -> tuple[float, float]:
    """95% percentile interval of the rank correlation, resampling whole groups (images)."""
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in ids]
    values = []
    for _ in range(n):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(ids), len(ids))])
        values.append(rank_correlation(x[pick], y[pick]))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


# ---------------------------------------------------------------- the run
def _cell_loss(n_classes: int):
    def loss(prediction: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        logits = prediction.reshape(*target.shape, n_classes)  # (B, N, cells, C)
        return F.cross_entropy(logits.reshape(-1, n_classes), target.reshape(-1).long())
    return loss


def _data(settings: Mapping[str, Any], n: int, seed: int) -> xr.Dataset:
    from gridformer.datasets import segmentation_task

    return segmentation_task(n, grid=tuple(settings["grid"]), kind=settings["kind"],
                             noise=settings["noise"], seed=seed)


def _sharpness(attention: list[tuple[Tensor, ...]], layout: Any) -> np.ndarray:
    """``1 - entropy`` per (sample, token), averaged over layers and heads.

    ``attention`` holds the per-layer maps of consecutive batches of the samples of ``layout``.
    """
    import dataclasses

    from gridformer.analysis import attention_entropy

    parts, lo = [], 0
    for batch in attention:
        hi = lo + batch[0].shape[0]
        rows = dataclasses.replace(layout, valid=layout.valid[lo:hi])  # this batch's samples
        parts.append(attention_entropy(batch, rows).mean(("layer", "head")).values)
        lo = hi
    return 1.0 - np.concatenate(parts)  # (S, N)


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: train the field model, score the test set, correlate sharpness and accuracy."""
    p = settings["patch_size"]
    train_set = _data(settings, settings["n_train"], derive_seed(seed, 1))
    classes = int(train_set.attrs["n_classes"])
    tokens, layout = tokenize(train_set.field, p, periodic=True)
    targets = tokenize(train_set.label, p, periodic=True)[0].long()  # (S, N, cells)
    torch.manual_seed(seed)
    model = gridformer_model(settings, in_features=p * p, out_features=p * p * classes,
                             head="field", patch_grid=tuple(layout.patch_grid_shape))
    loss = train(model, tokens, targets, layout, settings=settings, device=device, seed=seed,
                 loss=_cell_loss(classes))

    test = _data(settings, settings["n_test"], derive_seed(seed, 2))
    t_tokens, t_layout = tokenize(test.field, p, periodic=True)
    t_labels = tokenize(test.label, p, periodic=True)[0].long()  # (S, N, cells)
    logits, maps = predict(model, t_tokens, t_layout, device=device, attention=True,
                           batch_size=64)
    pred = logits.reshape(*t_labels.shape, classes).argmax(-1)  # (S, N, cells)
    pred_grid = _to_grid(pred, t_layout)  # (S, ny, nx)
    truth = test.label.values

    boundary_tokens = tokenize(test.boundary.astype(float), p, periodic=True)[0].amax(-1) > 0
    token_accuracy = (pred == t_labels).double().mean(-1).numpy()  # (S, N)
    sharp = _sharpness(maps, t_layout)  # (S, N)
    sample_of = np.broadcast_to(np.arange(sharp.shape[0])[:, None], sharp.shape)
    chosen = boundary_tokens.numpy()
    x, y, groups = sharp[chosen], token_accuracy[chosen], sample_of[chosen]
    low, high = _bootstrap(groups, x, y, settings["bootstrap"], derive_seed(seed, 3))
    metrics = {
        "mean_iou": mean_iou(pred_grid, truth, classes),
        "boundary_f1": boundary_f1(pred_grid, truth),
        "sharpness_boundary_correlation": rank_correlation(x, y),
        "sharpness_boundary_correlation_low": low,
        "sharpness_boundary_correlation_high": high,
        "boundary_token_share": float(chosen.mean()),
        "train_loss": loss,
    }
    artefacts = {"sharpness": x, "accuracy": y, "field": test.field.values[0],
                 "truth": truth[0], "prediction": pred_grid[0]}
    return SeedRun(metrics, artefacts)


def _to_grid(token_labels: Tensor, layout: Any) -> np.ndarray:
    """Per-cell token values ``(S, N, cells)`` back to ``(S, ny, nx)``."""
    from gridformer import PatchTokenizer

    grid = PatchTokenizer.decode(token_labels.double(), layout)
    return np.rint(np.asarray(grid.values)).astype(np.int64)


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Correlation of sharpness and boundary accuracy against 0 (margin 0.1)."""
    v = compare_to_value("rank correlation of attention sharpness and boundary-token accuracy",
                         metrics["sharpness_boundary_correlation"], 0.0, margin=0.1)
    lows = metrics["sharpness_boundary_correlation_low"]["values"]
    highs = metrics["sharpness_boundary_correlation_high"]["values"]
    boot = ", ".join(f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(lows, highs, strict=True))
    context = (f"mean IoU {fmt(metrics['mean_iou'])}, boundary F1 {fmt(metrics['boundary_f1'])}; "
               f"bootstrap intervals per seed {boot}; ")
    return Verdict(v.outcome, context + v.text)


def figure(result: ExperimentResult) -> Any:
    """Sharpness vs accuracy of boundary tokens (first seed), and input / truth / prediction."""
    from matplotlib.figure import Figure

    art = result.runs[0].artefacts
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=[1.4, 1, 1, 1])
    r = result.runs[0].metrics["sharpness_boundary_correlation"]
    axes[0].scatter(art["sharpness"], art["accuracy"], s=4, alpha=0.3)
    axes[0].set(xlabel="attention sharpness (1 - entropy)", ylabel="token accuracy",
                title=f"boundary tokens, seed {result.seeds[0]}: Spearman {r:.2f}")
    for ax, key, title in ((axes[1], "field", "input"), (axes[2], "truth", "truth"),
                           (axes[3], "prediction", "prediction")):
        ax.imshow(art[key], cmap="RdBu_r" if key == "field" else "viridis")
        ax.set(title=title, xticks=[], yticks=[])
    return fig


EXPERIMENT = Experiment(
    name="segmentation",
    description="per-cell fronts through noise with a field head: does sharper attention at "
                "boundary tokens go with better boundary accuracy?",
    claim="The sharper (lower-entropy) a token's attention near boundaries, the crisper the "
          "boundary.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
