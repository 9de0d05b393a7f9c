"""``spatiotemporal``: space-time tokens on moving features — does attention track motion?

Claim (reference text, claim 5): cut every frame into patches and concatenate them into one
sequence; attention across frames tracks motion. Most attention goes to tokens of other frames,
and the amount of motion in a patch relates to how much it attends to its own past position.

Task: predict the next frame of a short clip, from ``n_frames`` frames. Half the clips are
Gaussian blobs moving at integer velocities of up to 2 cells per frame per axis, some still,
over a static background (:func:`gridformer.datasets.moving_blobs`); half are the FD advection
solver's upwind trajectories of a smooth field at up to 2 cells per frame
(:func:`gridformer.datasets.advection_clips`). 16 x 16 periodic grids, 4 x 4 patches, so a
clip of 4 frames is 4 x 16 = 64 space-time tokens (tubelets of one frame, ``time_patch=1``).

Models (same width, depth, heads, budget): *joint* space-time attention (TimeSformer's and
ViViT's "joint" model; one GridFormer over all 64 tokens, relative position bias over (frame,
y, x), so frames are told apart by their offsets) whose tokens of the last frame predict the
next frame; *per-frame* (spatial only): the same GridFormer run on each frame alone (attention
within a frame, ViViT's factorised encoder without its temporal transformer), the frames'
features of each patch concatenated and mapped linearly to the next frame.

Metrics on held-out clips: ``spacetime_error`` and ``spatial_only_error`` =
``rms(prediction - next frame) / rms(next frame - last frame)`` (1 = no better than
persistence); from the joint model's attention (every layer, head and query, mean):
``temporal_attention_fraction`` (mass on tokens of other frames; uniform attention would give
``temporal_attention_uniform`` = (T - 1) / T) and ``motion_self_past_correlation`` (Spearman,
across every (clip, frame >= 1, patch), between the patch's motion — the rms change of its
cells since the previous frame — and the attention it pays to the same patch in the previous
frame), with ``self_past_attention_still`` / ``_fast`` (patches whose rms change is below 0.01 / the
fastest-changing quarter) as context. Verdict: all three parts of the claim — temporal fraction
above 0.5, a correlation whose interval excludes 0 (its sign reported), joint error below
per-frame error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from gridformer.experiments._common import derive_seed, predict, train
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import compare, compare_to_value, fmt, interval

__all__ = ["EXPERIMENT", "PerFrameModel", "self_past_attention", "temporal_fraction"]

_MODEL = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "lr": 2e-3, "batch_size": 32}
QUICK = {"grid": [16, 16], "patch_size": 4, "n_frames": 4, "tasks": ["blobs", "advection"],
         "max_speed": 2, "n_train": 512, "n_test": 256, "steps": 150, **_MODEL}
FULL = {**QUICK, "n_train": 1024, "n_test": 512, "steps": 500}
STILL = 1e-2  # rms change (field units; fields have std 0.5 - 1) below which a patch is still


def clips(settings: Mapping[str, Any], n: int, seed: int) -> xr.DataArray:
    """``(sample, time, y, x)`` clips of ``n_frames + 1`` frames, the tasks in equal shares."""
    from gridformer.datasets import advection_clips, moving_blobs

    parts = []
    tasks = _check_tasks(settings["tasks"])
    for i, task in enumerate(tasks):
        k = n // len(tasks) + (i < n % len(tasks))
        common = {"grid": tuple(settings["grid"]), "n_frames": settings["n_frames"] + 1,
                  "seed": derive_seed(seed, i)}
        if task == "blobs":
            parts.append(moving_blobs(k, max_speed=settings["max_speed"], **common).field)
        else:  # "advection": Courant numbers up to max_speed / 2, 2 solver steps a frame
            courant = np.linspace(-1, 1, 5) * settings["max_speed"] / 2
            parts.append(advection_clips(k, courant=tuple(courant), steps_per_frame=2,
                                         **common).field)
    return xr.concat(parts, dim="sample")


def _check_tasks(tasks: Any) -> list[str]:
    """``tasks``: a non-empty list of ``"blobs"`` and / or ``"advection"``."""
    names = list(tasks) if isinstance(tasks, list | tuple) else [tasks]
    if not names or any(t not in ("blobs", "advection") for t in names):
        msg = f"tasks={tasks!r} must be a non-empty list of 'blobs' and / or 'advection'"
        raise ValueError(msg)
    return names


def tokens(settings: Mapping[str, Any], field: xr.DataArray) -> tuple[Tensor, Tensor, Any, Any]:
    """Space-time input tokens ``(S, T * Ns, D)``, next-frame tokens ``(S, Ns, D)``, their
    layouts (space-time, one frame)."""
    from gridformer import PatchTokenizer

    T, p = settings["n_frames"], settings["patch_size"]
    spacetime = PatchTokenizer(patch_size=p, time_patch=1, time_dim="time", dtype=torch.float32)
    x, layout = spacetime.encode(field.isel(time=slice(0, T)), periodic=True)
    frame = PatchTokenizer(patch_size=p, dtype=torch.float32)
    y, frame_layout = frame.encode(field.isel(time=T).drop_vars("time"), periodic=True)
    return x, y, layout, frame_layout


class PerFrameModel(nn.Module):
    """Spatial-only baseline: a GridFormer over each frame alone, the frames fused per patch.

    ``tokens`` ``(B, T * Ns, D)`` (frame-major) -> ``(B * T, Ns, D)`` -> encoder features
    ``(B * T, Ns, C)`` -> per patch ``(B, Ns, T * C)`` -> linear -> ``(B, Ns, out_features)``.
    """

    def __init__(self, encoder: nn.Module, frame_layout: Any, n_frames: int,
                 out_features: int) -> None:
        super().__init__()
        self.encoder, self.frame_layout, self.n_frames = encoder, frame_layout, n_frames
        self.fuse = nn.Linear(n_frames * encoder.config.dim, out_features)

    def forward(self, tokens: Tensor, layout: Any = None, return_attention: bool = False,
                mask: Tensor | None = None) -> Any:
        from gridformer.model import GridFormerOutput

        B, N, D = tokens.shape
        T, Ns = self.n_frames, N // self.n_frames
        out = self.encoder(tokens.reshape(B * T, Ns, D), self.frame_layout,
                           return_attention=return_attention)
        feats = out.features.reshape(B, T, Ns, -1).transpose(1, 2).reshape(B, Ns, -1)
        return GridFormerOutput(self.fuse(feats), out.attention, feats)  # (B, Ns, out)


def _models(settings: Mapping[str, Any], D: int, layout: Any, frame_layout: Any
            ) -> dict[str, nn.Module]:
    from gridformer.model import GridFormer, GridFormerConfig

    common = {"in_features": D, "out_features": D, "dim": settings["dim"],
              "depth": settings["depth"], "heads": settings["heads"],
              "mlp_ratio": settings["mlp_ratio"], "position": "relative", "head": "field"}
    reach = max(settings["n_frames"], *frame_layout.patch_grid_shape)
    joint = GridFormer(GridFormerConfig(ndim=3, max_relative_offset=reach, **common))
    spatial = GridFormer(GridFormerConfig(ndim=2, max_relative_offset=reach,
                                          **{**common, "out_features": 1}))
    return {"spacetime": joint,
            "spatial_only": PerFrameModel(spatial, frame_layout, settings["n_frames"], D)}


def _next_frame_loss(n_spatial: int):
    from gridformer.training.losses import mse

    def loss(prediction: Tensor, target: Tensor) -> Tensor:
        return mse(prediction[:, -n_spatial:], target)  # the last frame's tokens

    return loss


def temporal_fraction(attention: Tensor, time_index: np.ndarray) -> Tensor:
    """Attention mass on keys of another frame, per query: ``(B, H, N, N)`` -> ``(B, H, N)``."""
    t = torch.as_tensor(time_index)
    other = (t[:, None] != t[None, :]).to(attention.dtype)  # (N, N)
    return (attention * other).sum(-1)


def self_past_attention(attention: Tensor, n_spatial: int) -> Tensor:
    """Weight of query ``q`` on key ``q - Ns`` (same patch, previous frame), frame-major tokens:
    ``(B, H, N, N)`` -> ``(B, H, N - Ns)`` for the queries of frames 1 .. T-1."""
    N = attention.shape[-1]
    q = torch.arange(n_spatial, N)
    return attention[..., q, q - n_spatial]


def _attention_metrics(maps: list[tuple[Tensor, ...]], x: Tensor, layout: Any, Ns: int
                       ) -> dict[str, Any]:
    from scipy import stats

    per_layer, past = [], []
    for batch in maps:
        per_layer.append(torch.stack([temporal_fraction(a, layout.time_index).mean((1, 2))
                                      for a in batch], -1))  # (B, layers)
        past.append(torch.stack([self_past_attention(a, Ns).mean(1) for a in batch]).mean(0))
    fraction = torch.cat(per_layer).mean(0)  # (layers,)
    self_past = torch.cat(past).numpy().ravel()  # (S * (N - Ns),)
    motion = (x[:, Ns:] - x[:, :-Ns]).pow(2).mean(-1).sqrt().numpy().ravel()  # rms change
    still = motion < STILL
    fast = motion >= np.quantile(motion, 0.75)
    return {
        "temporal_attention_fraction": float(fraction.mean()),
        "temporal_attention_by_layer": fraction.tolist(),
        "motion_self_past_correlation": float(stats.spearmanr(motion, self_past).statistic),
        "self_past_attention_still": float(self_past[still].mean()) if still.any() else np.nan,
        "self_past_attention_fast": float(self_past[fast].mean()),
        "still_patch_share": float(still.mean()),
        "_scatter": (motion, self_past),
    }


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: train the joint and per-frame models, score next frames, read the attention."""
    _check_tasks(settings["tasks"])
    x, y, layout, frame_layout = tokens(settings, clips(settings, settings["n_train"],
                                                        derive_seed(seed, 1)))
    tx, ty, t_layout, _ = tokens(settings, clips(settings, settings["n_test"],
                                                 derive_seed(seed, 2)))
    Ns, T = frame_layout.n_tokens, settings["n_frames"]
    torch.manual_seed(seed)
    models = _models(settings, x.shape[-1], layout, frame_layout)
    metrics: dict[str, Any] = {}
    persistence = (ty - tx[:, -Ns:]).pow(2).mean().sqrt()
    for name, model in models.items():
        metrics[f"{name}_train_loss"] = train(model, x, y, layout, settings=settings,
                                              device=device, seed=seed,
                                              loss=_next_frame_loss(Ns))
        prediction, maps = predict(model, tx, t_layout, device=device,
                                   attention=name == "spacetime")
        error = (prediction[:, -Ns:] - ty).pow(2).mean().sqrt() / persistence
        metrics[f"{name}_error"] = float(error)
        if maps is not None:
            attention = _attention_metrics(maps, tx, t_layout, Ns)
    scatter = attention.pop("_scatter")
    metrics = {"temporal_attention_fraction": attention.pop("temporal_attention_fraction"),
               "temporal_attention_uniform": (T - 1) / T,
               "motion_self_past_correlation": attention.pop("motion_self_past_correlation"),
               "spacetime_error": metrics.pop("spacetime_error"),
               "spatial_only_error": metrics.pop("spatial_only_error"), **attention, **metrics}
    return SeedRun(metrics, {"scatter": scatter})


def _correlation_part(summary: Mapping[str, Any]) -> Verdict:
    head = f"motion vs self-past attention (Spearman) {fmt(summary)}"
    iv = interval(summary)
    if iv is None:
        return Verdict("inconclusive", f"{head} — inconclusive (one seed gives no interval)")
    ranges = f"(95% interval [{iv[0]:.3g}, {iv[1]:.3g}])"
    if iv[1] < 0:
        return Verdict("holds", f"{head} {ranges}: negative — moving patches attend less to "
                                f"their own past position; related, the claim holds")
    if iv[0] > 0:
        return Verdict("holds", f"{head} {ranges}: positive — moving patches attend more to "
                                f"their own past position; related, the claim holds")
    return Verdict("inconclusive", f"{head} {ranges}: the interval contains 0 — inconclusive")


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Holds when all three parts hold, does not hold when any does not, else inconclusive."""
    parts = [
        compare_to_value("temporal attention fraction", metrics["temporal_attention_fraction"],
                         0.5, margin=0.02),
        _correlation_part(metrics["motion_self_past_correlation"]),
        compare("next-frame error / persistence", "joint space-time",
                metrics["spacetime_error"], "per-frame (spatial only)",
                metrics["spatial_only_error"], margin=0.02, better="lower"),
    ]
    outcomes = {p.outcome for p in parts}
    outcome = ("holds" if outcomes == {"holds"} else
               "does not hold" if "does not hold" in outcomes else "inconclusive")
    uniform = metrics["temporal_attention_uniform"]["mean"]
    text = "; ".join(p.text for p in parts)
    return Verdict(outcome, f"{text} (uniform attention would put {uniform:.2f} on other "
                            f"frames) — overall: {outcome}")


def figure(result: ExperimentResult) -> Any:
    """Errors of both models, attention to other frames per layer, motion vs self-past."""
    from matplotlib.figure import Figure

    m = result.metrics
    fig = Figure(figsize=(13, 4), layout="constrained")
    ax_err, ax_layer, ax_sc = fig.subplots(1, 3)
    names = ("spacetime_error", "spatial_only_error")
    ax_err.bar(["joint space-time", "per-frame"], [m[k]["mean"] for k in names],
               yerr=[m[k]["sd"] or 0.0 for k in names], capsize=4, color=["C0", "C1"])
    ax_err.axhline(1.0, color="grey", linestyle=":", label="persistence")
    ax_err.set(ylabel="next-frame error / persistence", title="next-frame prediction")
    ax_err.legend()
    layers = m["temporal_attention_by_layer"]
    ax_layer.errorbar(np.arange(1, len(layers["mean"]) + 1), layers["mean"],
                      yerr=[s or 0.0 for s in layers["sd"]], marker="o", capsize=3)
    ax_layer.axhline(0.5, color="k", linestyle=":", label="claim: > 0.5")
    ax_layer.axhline(m["temporal_attention_uniform"]["mean"], color="grey", linestyle="--",
                     label="uniform attention")
    ax_layer.set_xticks(np.arange(1, len(layers["mean"]) + 1))
    ax_layer.set(xlabel="layer", ylabel="attention on other frames", ylim=(0, 1),
                 title="attention across time (joint model)")
    ax_layer.legend()
    motion, past = result.runs[0].artefacts["scatter"]
    pick = np.random.default_rng(0).permutation(motion.size)[:3000]
    ax_sc.scatter(motion[pick], past[pick], s=3, alpha=0.4)
    ax_sc.set(xlabel="patch motion (rms change since the previous frame)",
              ylabel="attention to own past position",
              title=f"Spearman {fmt(m['motion_self_past_correlation'], '.2f')} (seed "
                    f"{result.seeds[0]} shown)")
    return fig


EXPERIMENT = Experiment(
    name="spatiotemporal",
    description="space-time tokens on moving blobs and FD advection: attention across frames, "
                "motion vs own-past attention, joint vs per-frame model",
    claim="With space-time tokens most attention goes to tokens of other frames, a patch's "
          "motion relates to how much it attends to its own past position, and joint "
          "space-time attention predicts the next frame better than a per-frame model.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
