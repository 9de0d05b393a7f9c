"""``counting``: count objects whose two halves lie farther apart than a CNN can see.

Claim (reference text, claim 2): in a puzzle where the two halves of each object lie far apart
and the task is to count the whole objects, a ViT pairs the halves through attention, while a
local-only model fails.

Task (:func:`gridformer.datasets.counting_task`): a 16 x 64 grid cut into 4 x 4 patches
(4 x 16 tokens); 8 object types, each a fixed random +-1.5 pattern two patches wide; three left
halves in the 4 leftmost patch columns and three right halves in the 4 rightmost, on a smooth
background; the label is the number of types with both halves present (0-3, drawn uniformly, so
chance accuracy is 1/4). Every sample has six halves and either side alone is a uniform draw
of distinct types, so nothing but the pairing tells the count.

Models: GridFormer (relative position bias over the whole patch grid, mean-pooled class head)
and a LocalCNN with kernel 3 and 4 layers: receptive field 9 patches, so its window spans at
most 8 patch columns while the halves are at least 9 apart: no output cell sees both halves of
an object, by construction. Its head averages the cells and is linear, so it can only add up
what each side shows, and a count of matches is not such a sum. Same data, steps and optimiser
for both, set before any result was seen.

Metrics: ``vit_accuracy``, ``cnn_accuracy``, ``chance_accuracy`` (1 / classes),
``pairing_attention``: over the half-tokens of complete objects in the test set, the share
whose strongest attention (the query itself left out) lands on the matching half, for the best
layer and head (as Clark et al. 2019 report the best head per relation; with 64 tokens a random
choice would hit 1/63). Also ``cnn_receptive_field`` and ``min_half_distance`` (patches).
Verdict: GridFormer's accuracy against the CNN's.
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
from gridformer.experiments.verdicts import compare_above, fmt

__all__ = ["EXPERIMENT", "pairing_share"]

_MODEL = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "position": "relative",
          "cnn_hidden": 32, "cnn_layers": 4, "cnn_kernel": 3, "lr": 2e-3, "batch_size": 64}
QUICK = {"patch_grid": [4, 16], "patch_size": 4, "n_types": 8, "n_pairs": 3,
         "region_columns": 4, "n_train": 2048, "n_test": 512, "steps": 300, **_MODEL}
FULL = {**QUICK, "n_train": 4096, "n_test": 1024, "steps": 1500}


def _data(settings: Mapping[str, Any], n: int, seed: int) -> xr.Dataset:
    from gridformer.datasets import counting_task

    return counting_task(n, patch_grid=tuple(settings["patch_grid"]),
                         patch_size=settings["patch_size"], n_types=settings["n_types"],
                         n_pairs=settings["n_pairs"], region_columns=settings["region_columns"],
                         seed=seed)


def pairing_share(attention: tuple[torch.Tensor, ...], data: xr.Dataset) -> np.ndarray:
    """Share of complete-object half-tokens whose strongest attention lands on their partner.

    Parameters
    ----------
    attention
        Per layer ``(S, H, N, N)`` weights on the samples of ``data`` (in order).
    data
        The :func:`~gridformer.datasets.counting_task` dataset (``half_token``, ``partner``).

    Returns
    -------
    np.ndarray
        ``(layers, heads)`` shares in ``[0, 1]``; the query itself is left out of the argmax.
        NaN when no sample has a complete object.
    """
    tokens = torch.as_tensor(data.half_token.values)  # (S, halves)
    partner = torch.as_tensor(data.partner.values)  # (S, halves)
    sample, half = torch.nonzero(partner >= 0, as_tuple=True)  # complete-object halves
    if sample.numel() == 0:
        return np.full((len(attention), attention[0].shape[1]), np.nan)
    query = tokens[sample, half]  # (M,)
    target = tokens[sample, partner[sample, half]]  # (M,)
    shares = []
    for layer in attention:
        rows = layer[sample, :, query].clone()  # (M, H, N)
        rows[torch.arange(len(query)), :, query] = -1.0  # leave the query itself out
        hits = rows.argmax(-1) == target[:, None]  # (M, H)
        shares.append(hits.double().mean(0).numpy())
    return np.stack(shares)  # (L, H)


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: train GridFormer and the CNN to count, test both, read the ViT's pairing."""
    train_set = _data(settings, settings["n_train"], derive_seed(seed, 1))
    tokens, layout = tokenize(train_set.field, settings["patch_size"])
    labels = torch.as_tensor(train_set.label.values)
    classes = int(train_set.attrs["n_classes"])
    D, grid = tokens.shape[-1], tuple(layout.patch_grid_shape)

    torch.manual_seed(seed)
    vit = gridformer_model(settings, in_features=D, out_features=classes, head="class",
                           patch_grid=grid)
    cnn = cnn_model(settings, in_features=D, out_features=classes, head="class")
    losses = {name: train(model, tokens, labels, layout, settings=settings, device=device,
                          seed=seed) for name, model in (("vit", vit), ("cnn", cnn))}

    test = _data(settings, settings["n_test"], derive_seed(seed, 2))
    t_tokens, t_layout = tokenize(test.field, settings["patch_size"])
    t_labels = torch.as_tensor(test.label.values)
    vit_logits, maps = predict(vit, t_tokens, t_layout, device=device, attention=True)
    cnn_logits, _ = predict(cnn, t_tokens, t_layout, device=device)
    attention = tuple(torch.cat([batch[i] for batch in maps]) for i in range(len(maps[0])))
    shares = pairing_share(attention, test)
    metrics = {
        "vit_accuracy": float((vit_logits.argmax(-1) == t_labels).double().mean()),
        "cnn_accuracy": float((cnn_logits.argmax(-1) == t_labels).double().mean()),
        "chance_accuracy": 1.0 / classes,
        "pairing_attention": float(np.nanmax(shares)),
        "vit_train_loss": losses["vit"],
        "cnn_train_loss": losses["cnn"],
        "cnn_receptive_field": float(cnn.receptive_field),
        "min_half_distance": float(test.attrs["min_half_distance"]),
    }
    return SeedRun(metrics, {"pairing_by_head": shares, "example": test.isel(sample=0),
                             "attention_example": attention[int(np.nanargmax(shares.max(1)))][0]})


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """GridFormer vs CNN counting accuracy; chance and the pairing share as context."""
    v = compare_above("counting accuracy", "GridFormer", metrics["vit_accuracy"], "CNN",
                      metrics["cnn_accuracy"], margin=0.02)
    field = metrics["cnn_receptive_field"]["mean"]
    context = (f"chance {metrics['chance_accuracy']['mean']:.3f}; the CNN's {field:.0f}-patch "
               f"window spans {field - 1:.0f} patch columns, the halves lie >= "
               f"{metrics['min_half_distance']['mean']:.0f} apart; attention pairs "
               f"{fmt(metrics['pairing_attention'])} of the halves; ")
    return Verdict(v.outcome, context + v.text)


def figure(result: ExperimentResult) -> Any:
    """Accuracies (bars, mean ± sd) with chance, and one test input with its halves marked."""
    from matplotlib.figure import Figure

    m = result.metrics
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    bars, img = fig.subplots(1, 2, width_ratios=[1, 2.4])
    names = ["GridFormer", "LocalCNN", "pairing\n(attention)"]
    keys = ["vit_accuracy", "cnn_accuracy", "pairing_attention"]
    means = [m[k]["mean"] for k in keys]
    sds = [m[k]["sd"] or 0.0 for k in keys]
    bars.bar(names, means, yerr=sds, capsize=4, color=["C0", "C1", "C2"])
    bars.hlines(m["chance_accuracy"]["mean"], -0.4, 1.4, color="grey", linestyle=":",
                label="chance")
    n_tokens = int(np.prod(result.settings["patch_grid"]))
    bars.hlines(1 / (n_tokens - 1), 1.6, 2.4, color="grey", linestyle=":")  # a random key
    bars.set(ylim=(0, 1.05), ylabel="accuracy / share", title=f"{len(result.seeds)} seeds")
    bars.legend(loc="upper right")
    example = result.runs[0].artefacts["example"]
    img.imshow(example.field.values, cmap="RdBu_r", vmin=-2.5, vmax=2.5)
    p = int(example.attrs["patch_size"])
    for h in range(example.sizes["half"]):
        r, c = int(example.half_row[h]), int(example.half_col[h])
        color = "k" if int(example.partner[h]) >= 0 else "0.6"
        img.add_patch(_rect(c * p - 0.5, r * p - 0.5, p, color))
        img.text(c * p + p / 2 - 0.5, r * p - 1, str(int(example.half_type[h])),
                 ha="center", fontsize=8)
    img.set(title=f"a test input: count {int(example.label)} (black: halves of complete "
                  f"objects, numbers: types)", xticks=[], yticks=[])
    return fig


def _rect(x: float, y: float, size: int, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), size, size, fill=False, edgecolor=color, linewidth=1.5)


EXPERIMENT = Experiment(
    name="counting",
    description="count objects split into halves farther apart than the CNN's receptive field; "
                "does attention pair the halves?",
    claim="A ViT pairs the distant halves of objects through attention and counts the whole "
          "objects; a local-only model fails.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
