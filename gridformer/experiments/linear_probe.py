"""``linear-probe``: do features pretrained without labels transfer to a new task?

Claim (reference text, claim 9): freeze a pretrained transformer and train only a linear
classifier on its features; a small gap to full fine-tuning shows that the features transfer.
Anchor: MAE (He et al. 2022) — ViT-L linear probe 75.8% vs fine-tuned 85.9% top-1 on ImageNet,
a 10-point gap: linear probing underrates what features can do.

Pretraining (no labels): a GridFormer (relative position bias, field head) learns next-step
prediction on FD solver trajectories — isotropic heat diffusion (D = 1, 5 forward-Euler steps
of dt = 0.2, periodic, unit spacing) from the fields of the new task's distribution, whose
labels are never read.

New task (:func:`gridformer.datasets.spectral_slope_task`): classify the spectral slope of a
16 x 16 field among 6 slopes (4 x 4 patches, 16 tokens), with the first ``f`` of
``n_train`` labelled samples for each ``f`` in ``label_fractions``. Three models per budget:
*linear probe* (the pretrained encoder frozen; a linear classifier on its mean-pooled,
standardised final features, full-batch Adam for ``probe_steps``), *fine-tuning* (the
pretrained encoder with a new class head, every weight trained) and *scratch* (the same
architecture from random weights); fine-tuning and scratch share steps, learning rate and
batches.

Metrics (test accuracy, curves over ``label_fractions``): ``linear_probe_score``,
``finetune_score``, ``scratch_score``, ``probe_gap`` = fine-tune minus probe; with
``pretrain_error`` (next-step error / persistence of the pretraining task) and
``chance_accuracy``. Verdict: the probe gap at the largest label budget against 0.05 (a
"small" gap, set before any run; MAE's was 0.10); probe vs scratch at the smallest budget as
context.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gridformer.experiments._common import derive_seed, gridformer_model, predict, tokenize, train
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import at, compare, compare_to_value, fmt

__all__ = ["EXPERIMENT", "check_label_fractions", "finetune_model", "linear_probe"]

QUICK = {"grid": [16, 16], "patch_size": 4, "slopes": [-1.0, -1.5, -2.0, -2.5, -3.0, -3.5],
         "noise_sd": 0.1, "diffusivity": 1.0, "dt": 0.2, "solver_steps": 5,
         "n_pretrain": 1024, "pretrain_steps": 200, "n_train": 1024, "n_test": 512,
         "label_fractions": [0.1, 1.0], "dim": 32, "depth": 2, "heads": 4,
         "mlp_ratio": 2.0, "lr": 2e-3, "batch_size": 32, "steps": 150, "probe_steps": 300,
         "probe_lr": 1e-2, "small_gap": 0.05}
FULL = {**QUICK, "n_pretrain": 2048, "pretrain_steps": 600, "n_test": 1024,
        "label_fractions": [0.05, 0.25, 1.0], "steps": 300}


def check_label_fractions(fractions: Any) -> list[float]:
    """``label_fractions``: a non-empty list of numbers in (0, 1]."""
    values = list(fractions) if isinstance(fractions, list | tuple) else [fractions]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real)
           or not math.isfinite(v) or not 0 < v <= 1]
    if not values or bad:
        msg = (f"label_fractions={fractions!r}: every label fraction must be in (0, 1] (the "
               f"share of the labelled training samples used); out of range: {bad}")
        raise ValueError(msg)
    return [float(v) for v in values]


def _task(settings: Mapping[str, Any], n: int, seed: int) -> Any:
    from gridformer.datasets import spectral_slope_task

    return spectral_slope_task(n, grid=tuple(settings["grid"]), slopes=settings["slopes"],
                               noise_sd=settings["noise_sd"], seed=seed)


def _pretrain(settings: Mapping[str, Any], seed: int, device: Any) -> tuple[nn.Module, float]:
    """Next-step heat prediction on unlabelled fields; the model and its test error."""
    from gridformer import solvers

    def pairs(n: int, s: int) -> tuple[Tensor, Tensor, Any]:
        u0 = _task(settings, n, s).field  # its labels are never read
        u1 = solvers.solve("heat", u0, steps=settings["solver_steps"], dt=settings["dt"],
                           diffusivity=settings["diffusivity"],
                           save_every=settings["solver_steps"]).u.isel(time=-1)
        x, layout = tokenize(u0, settings["patch_size"], periodic=True)
        y, _ = tokenize(u1.drop_vars("time", errors="ignore"), settings["patch_size"],
                        periodic=True)
        return x, y, layout

    x, y, layout = pairs(settings["n_pretrain"], derive_seed(seed, 5))
    torch.manual_seed(derive_seed(seed, 6))
    model = gridformer_model(settings, in_features=x.shape[-1], out_features=x.shape[-1],
                             head="field", patch_grid=tuple(layout.patch_grid_shape))
    train(model, x, y, layout, settings={**settings, "steps": settings["pretrain_steps"]},
          device=device, seed=seed, loss="mse")
    tx, ty, t_layout = pairs(256, derive_seed(seed, 7))
    prediction, _ = predict(model, tx, t_layout, device=device)
    error = (prediction - ty).pow(2).mean().sqrt() / (ty - tx).pow(2).mean().sqrt()
    return model, float(error)


@torch.no_grad()
def _features(encoder: nn.Module, x: Tensor, layout: Any, device: Any) -> Tensor:
    encoder.eval().to(device)
    out = [encoder(x[i:i + 128].to(device), layout).features.mean(1).float().cpu()
           for i in range(0, len(x), 128)]  # (b, C) mean over tokens
    return torch.cat(out)


def linear_probe(encoder: nn.Module, x: Tensor, labels: Tensor, layout: Any, test: tuple,
                 *, n_classes: int, steps: int, lr: float, seed: int, device: Any) -> float:
    """Test accuracy of a linear classifier on the frozen ``encoder``'s mean-pooled features
    (standardised with the training features' mean and std); the encoder is not changed."""
    train_f = _features(encoder, x, layout, device)  # (S, C)
    test_f = _features(encoder, test[0], test[2], device)
    mean, std = train_f.mean(0), train_f.std(0, unbiased=False).clamp(min=1e-6)
    torch.manual_seed(seed)
    head = nn.Linear(train_f.shape[1], n_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    inputs = (train_f - mean) / std
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(head(inputs), labels.long()).backward()
        optimizer.step()
    with torch.no_grad():
        guess = head((test_f - mean) / std).argmax(-1)
    return float((guess == test[1]).double().mean())


def finetune_model(settings: Mapping[str, Any], encoder: nn.Module | None, D: int,
                   patch_grid: tuple[int, ...], seed: int) -> nn.Module:
    """A class-head GridFormer: the pretrained encoder's weights (all but the head) when
    ``encoder`` is given, else random (scratch); the same new head either way."""
    torch.manual_seed(derive_seed(seed, 8))
    model = gridformer_model(settings, in_features=D, out_features=len(settings["slopes"]),
                             head="class", patch_grid=patch_grid)
    if encoder is not None:
        state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("head.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"head.weight", "head.bias"}:
            msg = f"encoder weights do not fit: missing {missing}, unexpected {unexpected}"
            raise RuntimeError(msg)
    return model


def _accuracy(model: nn.Module, test: tuple, device: Any) -> float:
    logits, _ = predict(model, test[0], test[2], device=device)
    return float((logits.argmax(-1) == test[1]).double().mean())


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: pretrain, then probe / fine-tune / scratch at every label budget."""
    fractions = check_label_fractions(settings["label_fractions"])
    encoder, pretrain_error = _pretrain(settings, seed, device)
    pool, test_task = (_task(settings, settings["n_train"], derive_seed(seed, 1)),
                       _task(settings, settings["n_test"], derive_seed(seed, 2)))
    x, layout = tokenize(pool.field, settings["patch_size"], periodic=True)
    labels = torch.as_tensor(pool.label.values)
    tx, t_layout = tokenize(test_task.field, settings["patch_size"], periodic=True)
    test = (tx, torch.as_tensor(test_task.label.values), t_layout)
    grid = tuple(layout.patch_grid_shape)
    scores: dict[str, list[float]] = {"linear_probe": [], "finetune": [], "scratch": []}
    for f in fractions:
        k = max(1, round(f * len(labels)))
        scores["linear_probe"].append(linear_probe(
            encoder, x[:k], labels[:k], layout, test, n_classes=len(settings["slopes"]),
            steps=settings["probe_steps"], lr=settings["probe_lr"], seed=seed, device=device))
        for name, init in (("finetune", encoder), ("scratch", None)):
            model = finetune_model(settings, init, x.shape[-1], grid, seed)
            train(model, x[:k], labels[:k], layout, settings=settings, device=device, seed=seed)
            scores[name].append(_accuracy(model, test, device))
    gap = [a - b for a, b in zip(scores["finetune"], scores["linear_probe"], strict=True)]
    metrics = {"linear_probe_score": scores["linear_probe"], "finetune_score": scores["finetune"],
               "scratch_score": scores["scratch"], "probe_gap": gap,
               "label_fractions": fractions, "pretrain_error": pretrain_error,
               "chance_accuracy": 1 / len(settings["slopes"])}
    return SeedRun(metrics)


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """The probe gap at the largest label budget against ``small_gap`` (lower is the claim)."""
    fractions = metrics["label_fractions"]["mean"]
    last = int(np.argmax(fractions))
    first = int(np.argmin(fractions))
    gap = compare_to_value(f"probe gap (fine-tune - linear probe) with {fractions[last]:.0%} "
                           f"of the labels", at(metrics["probe_gap"], last),
                           settings["small_gap"], margin=0.01, better="lower")
    scratch = compare(f"with {fractions[first]:.0%} of the labels: accuracy", "linear probe",
                      at(metrics["linear_probe_score"], first), "scratch",
                      at(metrics["scratch_score"], first), margin=0.01)
    context = (f"accuracy with {fractions[last]:.0%} of the labels: probe "
               f"{fmt(at(metrics['linear_probe_score'], last))}, fine-tune "
               f"{fmt(at(metrics['finetune_score'], last))}, scratch "
               f"{fmt(at(metrics['scratch_score'], last))} (chance "
               f"{metrics['chance_accuracy']['mean']:.3f}); ")
    return Verdict(gap.outcome, f"{context}{gap.text}; context, probe vs scratch: "
                                f"{scratch.text.replace(' — the claim', ': it')}")


def figure(result: ExperimentResult) -> Any:
    """Accuracy against the labelled share for probe, fine-tuning and scratch."""
    from matplotlib.figure import Figure

    m = result.metrics
    x = m["label_fractions"]["mean"]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for key, label in (("linear_probe_score", "linear probe (frozen)"),
                       ("finetune_score", "fine-tuned"), ("scratch_score", "from scratch")):
        ax.errorbar(x, m[key]["mean"], yerr=[s or 0.0 for s in m[key]["sd"]], marker="o",
                    capsize=3, label=label)
    ax.axhline(m["chance_accuracy"]["mean"], color="grey", linestyle=":", label="chance")
    ax.set(xscale="log", xlabel="share of labelled samples", ylabel="test accuracy",
           ylim=(0, 1), title=f"pretrained on next-step heat prediction, "
                              f"{len(result.seeds)} seeds")
    ax.legend()
    return fig


EXPERIMENT = Experiment(
    name="linear-probe",
    description="pretrain on next-step heat prediction, then linear probe vs fine-tuning vs "
                "scratch on spectral-slope classes at several label budgets",
    claim="Features of a GridFormer pretrained without labels transfer: a linear probe on the "
          "frozen features comes within a small gap of full fine-tuning.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
