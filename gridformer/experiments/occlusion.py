"""``occlusion``: does global attention see through a fence of missing cells?

Claim (reference text, claim 1): a CNN passes information neighbour to neighbour, so a fence
breaks the chain; self-attention lets any patch talk to any other, so the visible parts on both
sides of an occluder still combine.

Task (:func:`gridformer.datasets.occlusion_task`): a 32 x 32 grid cut into 4 x 4 patches
(8 x 8 tokens); one evidence patch in the two leftmost patch columns, one in the two rightmost,
each +-2 on a smooth background; the class is whether their signs differ (an XOR, which no sum
of per-side features can decide, so the two sides must meet). A share ``f`` of the other
patches is NaN (random blocks: cloud cover, or random patch drop as in Naseer et al. 2021,
"Intriguing properties of vision transformers", where DeiT kept most of its accuracy with half
of the patches dropped and ResNets collapsed). Missing patches are invalid tokens: GridFormer
never attends to them; the LocalCNN never reads them (its hidden features there are zeroed
after every layer, as outside the grid), so information must go around them.

Models: GridFormer (relative position bias over the whole patch grid, mean-pooled class head)
and a LocalCNN with kernel 3 and 6 layers, receptive field 13 patches: on a clean grid it
spans the 8 x 8 patch grid, so the CNN *can* bring the two sides together, neighbour by
neighbour, and the experiment measures what occlusion does to that chain. Context baseline:
the same CNN fed the zero-filled grid as if it were complete ("zero fill": it computes features
inside the gaps and may carry information across them).

Training and test: both models train on a mixture of all occlusion fractions (the same
samples for each), so neither meets missing data for the first time at test time; test sets
are paired (the same evidence and background at every fraction, only the occlusion differs).
Budgets follow the model sizes (a few thousand samples, a few hundred to a few thousand AdamW
steps); they were set before any result was seen and are the same for both models.

Metrics: ``vit_accuracy``, ``cnn_accuracy`` (clean); ``vit_accuracy_occluded``,
``cnn_accuracy_occluded`` (curves over ``occlusion_fractions``); ``cnn_zero_fill_*`` (the
context baseline); ``cnn_receptive_field`` (patches). Verdict: GridFormer's occluded accuracy
at ``headline_fraction`` against the CNN's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.experiments._common import (
    cnn_model,
    derive_seed,
    gridformer_model,
    predict,
    tokenize,
    train,
)
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import at, compare_above, fmt

__all__ = ["EXPERIMENT"]

_MODEL = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "position": "relative",
          "cnn_hidden": 32, "cnn_layers": 6, "cnn_kernel": 3, "lr": 2e-3, "batch_size": 64}
QUICK = {"grid": [32, 32], "patch_size": 4, "pattern": "blocks",
         "occlusion_fractions": [0.25, 0.5, 0.75], "headline_fraction": 0.5,
         "n_train": 1024, "n_test": 512, "steps": 200, **_MODEL}
FULL = {**QUICK, "n_train": 4096, "n_test": 1024, "steps": 1500}


def _data(settings: Mapping[str, Any], n: int, fraction: float, seed: int) -> xr.Dataset:
    from gridformer.datasets import occlusion_task

    return occlusion_task(n, grid=tuple(settings["grid"]), patch_size=settings["patch_size"],
                          fraction=fraction, pattern=settings["pattern"], seed=seed)


def _accuracy(model: Any, tokens: torch.Tensor, layout: Any, labels: torch.Tensor,
              device: Any) -> float:
    logits, _ = predict(model, tokens, layout, device=device)
    return float((logits.argmax(-1) == labels).double().mean())


def _filled(layout: Any) -> Any:
    """The layout of the zero-filled grid: every token valid."""
    import dataclasses

    return dataclasses.replace(layout, valid=None)


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: train the three models on mixed occlusion, test clean and at each fraction."""
    fractions = [0.0, *settings["occlusion_fractions"]]
    per = max(1, settings["n_train"] // len(fractions))
    parts = [_data(settings, per, f, derive_seed(seed, 1, i)) for i, f in enumerate(fractions)]
    train_set = xr.concat(parts, dim="sample")
    tokens, layout = tokenize(train_set.field, settings["patch_size"])
    labels = torch.as_tensor(train_set.label.values)
    D, grid = tokens.shape[-1], tuple(layout.patch_grid_shape)

    torch.manual_seed(seed)
    models = {
        "vit": gridformer_model(settings, in_features=D, out_features=2, head="class",
                                patch_grid=grid),
        "cnn": cnn_model(settings, in_features=D, out_features=2, head="class"),
        "cnn_zero_fill": cnn_model(settings, in_features=D, out_features=2, head="class"),
    }
    losses = {}
    for name, model in models.items():
        seen = _filled(layout) if name == "cnn_zero_fill" else layout
        losses[name] = train(model, tokens, labels, seen, settings=settings, device=device,
                             seed=seed)

    accuracy: dict[str, list[float]] = {name: [] for name in models}
    examples = []
    test_seed = derive_seed(seed, 2)  # the same samples at every fraction (paired)
    for f in fractions:
        test = _data(settings, settings["n_test"], f, test_seed)
        t_tokens, t_layout = tokenize(test.field, settings["patch_size"])
        t_labels = torch.as_tensor(test.label.values)
        for name, model in models.items():
            seen = _filled(t_layout) if name == "cnn_zero_fill" else t_layout
            accuracy[name].append(_accuracy(model, t_tokens, seen, t_labels, device))
        examples.append(test.field.isel(sample=0).values)

    metrics: dict[str, Any] = {"occlusion_fractions": list(settings["occlusion_fractions"])}
    for name in models:
        metrics[f"{name}_accuracy"] = accuracy[name][0]
        metrics[f"{name}_accuracy_occluded"] = accuracy[name][1:]
    for name in models:
        metrics[f"{name}_train_loss"] = losses[name]
    metrics["cnn_receptive_field"] = float(models["cnn"].receptive_field)
    return SeedRun(metrics, {"examples": examples, "fractions": fractions})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """GridFormer vs CNN occluded accuracy at the headline fraction (clean accuracy as context)."""
    fractions = metrics["occlusion_fractions"]["mean"]
    i = int(np.argmin(np.abs(np.asarray(fractions) - settings["headline_fraction"])))
    v = compare_above(f"occluded accuracy ({fractions[i]:.0%} of patches missing)",
                      "GridFormer", at(metrics["vit_accuracy_occluded"], i),
                      "CNN", at(metrics["cnn_accuracy_occluded"], i), margin=0.02)
    context = (f"clean accuracy GridFormer {fmt(metrics['vit_accuracy'])}, CNN "
               f"{fmt(metrics['cnn_accuracy'])} (chance 0.5); ")
    return Verdict(v.outcome, context + v.text)


def figure(result: ExperimentResult) -> Any:
    """Accuracy against the share of missing patches (mean ± sd over seeds), and one input."""
    from matplotlib.figure import Figure

    m = result.metrics
    x = [0.0, *m["occlusion_fractions"]["mean"]]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax, img = fig.subplots(1, 2, width_ratios=[1.6, 1])
    for key, label in (("vit", "GridFormer"), ("cnn", "LocalCNN (masked)"),
                       ("cnn_zero_fill", "LocalCNN (zero fill)")):
        mean = [m[f"{key}_accuracy"]["mean"], *m[f"{key}_accuracy_occluded"]["mean"]]
        sd = [m[f"{key}_accuracy"]["sd"], *m[f"{key}_accuracy_occluded"]["sd"]]
        sd = [0.0 if s is None else s for s in sd]
        ax.errorbar(x, mean, yerr=sd, marker="o", capsize=3, label=label)
    ax.axhline(0.5, color="grey", linestyle=":", label="chance")
    ax.set(xlabel="share of patches missing", ylabel="test accuracy", ylim=(0.4, 1.02),
           title=f"occlusion ({result.settings['pattern']}), {len(result.seeds)} seeds")
    ax.legend(loc="lower left")
    example = result.runs[0].artefacts["examples"][-1]
    img.imshow(np.ma.masked_invalid(example), cmap="RdBu_r", vmin=-3, vmax=3)
    img.set(title=f"a test input, {x[-1]:.0%} missing (white)", xticks=[], yticks=[])
    return fig


EXPERIMENT = Experiment(
    name="occlusion",
    description="seeing through a fence: XOR of two distant patches with missing patches "
                "between (GridFormer vs LocalCNN)",
    claim="Global attention sees through occlusion: visible parts on both sides of missing "
          "cells still combine, where a local CNN's neighbour-to-neighbour chain breaks.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
