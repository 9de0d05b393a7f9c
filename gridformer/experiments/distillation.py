"""``distillation``: does a teacher's soft output help a small GridFormer trained on little data?

Claim (reference text, claim 8; DeiT, Touvron et al. 2021: a distilled DeiT-B reached 83.4%
top-1 on ImageNet against 81.8% without distillation): a large teacher's soft outputs train a
small transformer student better than the labels alone, with the text's loss
``L = lam * KL(p_student || p_teacher) + (1 - lam) * CE``. Hinton et al. (2015) and DeiT write
the KL the other way round, ``KL(p_teacher || p_student)``, with a temperature;
:func:`gridformer.training.distillation_loss` has both (``kl_direction``), and both are run.

Task (:func:`gridformer.datasets.spectral_slope_task`): classify the spectral slope of a
16 x 16 Gaussian random field among 6 slopes from -1 to -3.5 (4 x 4 patches, 16 tokens).
Neighbouring slopes look alike, so a teacher's soft outputs say which classes are close —
the "dark knowledge" distillation is meant to pass on.

Teacher: a LocalCNN (DeiT's teacher was a convnet; slope is a local texture statistic, which
a CNN's inductive bias suits) or a larger GridFormer (``teacher="gridformer"``), trained on all
``n_train`` samples — or loaded from ``teacher_checkpoint`` (a ``save_checkpoint`` file whose
model fits the task, checked before any training). Students: the same small GridFormer,
trained on the first ``student_fraction`` of the samples, from the same initialisation and
batch order: with the labels alone (cross-entropy), and with the distillation loss for every
KL direction, weight ``lam`` in ``lambdas`` and ``temperature`` in ``temperatures``. The KL
term is scaled by T^2 (Hinton); at T = 1 the loss is the text's formula exactly.

Metrics (test accuracy): ``teacher_accuracy``, ``student_accuracy`` (labels only),
``student_kd_accuracy`` (the text's direction at ``headline_lam`` and
``headline_temperature``, both fixed before any run), ``student_kd_accuracy_hinton`` (the
other direction, same lam and T), ``kd_gain`` / ``kd_gain_hinton`` (minus the plain student),
and ``sweep_accuracy_<direction>`` over the (lam, T) grid (``sweep_lambda``,
``sweep_temperature`` give its points). Verdict: the distilled student (text's direction)
against the plain one; Hinton's direction is compared the same way in the text.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gridformer.experiments._common import (
    cnn_model,
    derive_seed,
    gridformer_model,
    predict,
    tokenize,
    train,
)
from gridformer.experiments.harness import Experiment, ExperimentResult, SeedRun, Verdict
from gridformer.experiments.verdicts import compare, fmt

__all__ = ["DIRECTIONS", "EXPERIMENT", "check_settings", "load_teacher", "train_student"]

DIRECTIONS = ("student_teacher", "teacher_student")  # KL(p_s || p_t) (text), KL(p_t || p_s)
_TASK = {"grid": [16, 16], "patch_size": 4, "slopes": [-1.0, -1.5, -2.0, -2.5, -3.0, -3.5],
         "noise_sd": 0.1}
QUICK = {**_TASK, "n_train": 2048, "n_test": 512, "student_fraction": 0.1,
         "teacher": "cnn", "teacher_checkpoint": None, "teacher_steps": 300,
         "teacher_dim": 64, "teacher_depth": 4, "cnn_hidden": 32, "cnn_layers": 4,
         "cnn_kernel": 3, "dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0,
         "steps": 150, "lr": 2e-3, "batch_size": 32, "lambdas": [0.5],
         "temperatures": [1.0, 4.0], "headline_lam": 0.5, "headline_temperature": 1.0}
FULL = {**QUICK, "n_test": 1024, "teacher_steps": 1000, "steps": 300, "lambdas": [0.5, 0.9],
        "temperatures": [1.0, 4.0]}


def _fraction(name: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 < value <= 1 or not math.isfinite(value)):
        msg = f"{name}={value!r} must be a fraction of the training samples in (0, 1]"
        raise ValueError(msg)
    return float(value)


def check_settings(settings: Mapping[str, Any]) -> None:
    """Refuse settings that cannot work, before any data is drawn or model trained."""
    _fraction("student_fraction", settings["student_fraction"])
    if settings["teacher"] not in ("cnn", "gridformer"):
        msg = f"teacher={settings['teacher']!r} is not one of ['cnn', 'gridformer']"
        raise ValueError(msg)
    for lam in [*settings["lambdas"], settings["headline_lam"]]:
        if not 0 <= lam <= 1:
            msg = f"lambdas={settings['lambdas']!r} / headline_lam: every lam must be in [0, 1]"
            raise ValueError(msg)
    if settings["headline_lam"] not in settings["lambdas"] or (
            settings["headline_temperature"] not in settings["temperatures"]):
        msg = (f"headline_lam={settings['headline_lam']!r} and headline_temperature="
               f"{settings['headline_temperature']!r} must be among lambdas="
               f"{settings['lambdas']!r} and temperatures={settings['temperatures']!r}")
        raise ValueError(msg)
    if settings["teacher_checkpoint"] is not None:
        load_teacher(settings)


def load_teacher(settings: Mapping[str, Any]) -> nn.Module:
    """The teacher in ``settings["teacher_checkpoint"]``, checked against the task: a class
    head over ``patch_size**2`` features per token with one logit per slope."""
    from gridformer.training.checkpoint import build_model, read_checkpoint

    path = settings["teacher_checkpoint"]
    state = read_checkpoint(path)
    config = dict(state.get("config") or {})
    need = {"in_features": settings["patch_size"] ** 2, "out_features": len(settings["slopes"]),
            "head": "class"}
    got = {key: config.get(key) for key in need}
    if state.get("model_class") not in ("GridFormer", "LocalCNN") or got != need:
        msg = (f"teacher_checkpoint={str(path)!r} holds a {state.get('model_class')} with "
               f"{', '.join(f'{k}={v!r}' for k, v in got.items())}; this task needs a "
               f"GridFormer or LocalCNN with {', '.join(f'{k}={v!r}' for k, v in need.items())} "
               f"({settings['patch_size']} x {settings['patch_size']} patches of one field, "
               f"{len(settings['slopes'])} slope classes)")
        raise ValueError(msg)
    return build_model(state, where=f"teacher_checkpoint={str(path)!r}")


def _data(settings: Mapping[str, Any], n: int, seed: int) -> tuple[Tensor, Tensor, Any]:
    from gridformer.datasets import spectral_slope_task

    task = spectral_slope_task(n, grid=tuple(settings["grid"]), slopes=settings["slopes"],
                               noise_sd=settings["noise_sd"], seed=seed)
    x, layout = tokenize(task.field, settings["patch_size"], periodic=True)
    return x, torch.as_tensor(task.label.values), layout


def _kd_loss(lam: float, temperature: float, direction: str):
    from gridformer.training import distillation_loss

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        teacher, labels = target[:, :-1], target[:, -1].long()  # (B, C), (B,)
        return distillation_loss(logits, teacher, labels, lam, temperature, direction)

    return loss


def train_student(settings: Mapping[str, Any], x: Tensor, labels: Tensor, layout: Any, *,
                  seed: int, device: Any, teacher_logits: Tensor | None = None,
                  lam: float = 0.0, temperature: float = 1.0,
                  direction: str = "student_teacher") -> nn.Module:
    """The small GridFormer from the seed's initialisation, trained with cross-entropy
    (``teacher_logits=None``) or the distillation loss; the same batches either way."""
    torch.manual_seed(derive_seed(seed, 3))
    model = gridformer_model(settings, in_features=x.shape[-1],
                             out_features=len(settings["slopes"]), head="class",
                             patch_grid=tuple(layout.patch_grid_shape))
    if teacher_logits is None:
        train(model, x, labels, layout, settings=settings, device=device, seed=seed)
    else:
        target = torch.cat([teacher_logits, labels[:, None].float()], dim=1)  # (S, C + 1)
        train(model, x, target, layout, settings=settings, device=device, seed=seed,
              loss=_kd_loss(lam, temperature, direction))
    return model


def _teacher(settings: Mapping[str, Any], x: Tensor, labels: Tensor, layout: Any, seed: int,
             device: Any) -> nn.Module:
    if settings["teacher_checkpoint"] is not None:
        return load_teacher(settings)
    torch.manual_seed(derive_seed(seed, 4))
    C = len(settings["slopes"])
    if settings["teacher"] == "cnn":
        model = cnn_model(settings, in_features=x.shape[-1], out_features=C, head="class")
    else:
        big = {**settings, "dim": settings["teacher_dim"], "depth": settings["teacher_depth"]}
        model = gridformer_model(big, in_features=x.shape[-1], out_features=C, head="class",
                                 patch_grid=tuple(layout.patch_grid_shape))
    train(model, x, labels, layout, settings={**settings, "steps": settings["teacher_steps"]},
          device=device, seed=seed)
    return model


def _accuracy(model: nn.Module, x: Tensor, labels: Tensor, layout: Any, device: Any) -> float:
    logits, _ = predict(model, x, layout, device=device)
    return float((logits.argmax(-1) == labels).double().mean())


def run(seed: int, settings: Mapping[str, Any], device: Any) -> SeedRun:
    """One seed: teacher on all the data, students on a fraction, with and without KD."""
    check_settings(settings)
    x, labels, layout = _data(settings, settings["n_train"], derive_seed(seed, 1))
    tx, t_labels, t_layout = _data(settings, settings["n_test"], derive_seed(seed, 2))
    teacher = _teacher(settings, x, labels, layout, seed, device)
    k = max(1, round(settings["student_fraction"] * len(labels)))
    sx, s_labels = x[:k], labels[:k]
    soft, _ = predict(teacher, sx, layout, device=device)  # (k, C) teacher logits
    score = {"teacher": _accuracy(teacher, tx, t_labels, t_layout, device),
             "plain": _accuracy(train_student(settings, sx, s_labels, layout, seed=seed,
                                              device=device), tx, t_labels, t_layout, device)}
    grid = [(lam, t) for lam in settings["lambdas"] for t in settings["temperatures"]]
    sweep: dict[str, list[float]] = {d: [] for d in DIRECTIONS}
    for direction in DIRECTIONS:
        for lam, t in grid:
            student = train_student(settings, sx, s_labels, layout, seed=seed, device=device,
                                    teacher_logits=soft, lam=lam, temperature=t,
                                    direction=direction)
            sweep[direction].append(_accuracy(student, tx, t_labels, t_layout, device))
    head = grid.index((settings["headline_lam"], settings["headline_temperature"]))
    kd, hinton = sweep["student_teacher"][head], sweep["teacher_student"][head]
    metrics = {"teacher_accuracy": score["teacher"], "student_accuracy": score["plain"],
               "student_kd_accuracy": kd, "kd_gain": kd - score["plain"],
               "student_kd_accuracy_hinton": hinton, "kd_gain_hinton": hinton - score["plain"],
               "chance_accuracy": 1 / len(settings["slopes"]),
               "student_samples": float(k),
               "sweep_lambda": [float(lam) for lam, _ in grid],
               "sweep_temperature": [float(t) for _, t in grid],
               **{f"sweep_accuracy_{d}": sweep[d] for d in DIRECTIONS}}
    return SeedRun(metrics)


def verdict(metrics: dict[str, dict[str, Any]], settings: Mapping[str, Any]) -> Verdict:
    """Distilled (text's KL direction) vs plain student; Hinton's direction alongside."""
    lam, t = settings["headline_lam"], settings["headline_temperature"]
    text = compare(f"test accuracy, lam={lam:g}, T={t:g}: KL(p_student||p_teacher)",
                   "distilled", metrics["student_kd_accuracy"], "plain student",
                   metrics["student_accuracy"], margin=0.01)
    hinton = compare("Hinton's KL(p_teacher||p_student)", "distilled",
                     metrics["student_kd_accuracy_hinton"], "plain student",
                     metrics["student_accuracy"], margin=0.01)
    gains = (metrics["kd_gain"]["mean"], metrics["kd_gain_hinton"]["mean"])
    better = ("larger with KL(p_student||p_teacher)" if gains[0] > gains[1] else
              "larger with KL(p_teacher||p_student)" if gains[1] > gains[0] else "equal")
    context = (f"teacher {fmt(metrics['teacher_accuracy'])} on all data, students on "
               f"{metrics['student_samples']['mean']:.0f} samples (chance "
               f"{metrics['chance_accuracy']['mean']:.3f}); ")
    return Verdict(text.outcome,
                   f"{context}{text.text}; {hinton.text.replace(' — the claim', ': it')}; "
                   f"mean gain over the plain student: KL(p_student||p_teacher) "
                   f"{gains[0]:+.3f}, KL(p_teacher||p_student) {gains[1]:+.3f} — {better}")


def figure(result: ExperimentResult) -> Any:
    """Accuracies (mean ± sd) and the (lam, T) sweep of both KL directions."""
    from matplotlib.figure import Figure

    m = result.metrics
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax_bar, ax_sweep = fig.subplots(1, 2)
    keys = {"teacher": "teacher_accuracy", "plain student": "student_accuracy",
            "KD KL(s||t)": "student_kd_accuracy", "KD KL(t||s)": "student_kd_accuracy_hinton"}
    ax_bar.bar(list(keys), [m[k]["mean"] for k in keys.values()],
               yerr=[m[k]["sd"] or 0.0 for k in keys.values()], capsize=4,
               color=["grey", "C1", "C0", "C2"])
    ax_bar.axhline(m["chance_accuracy"]["mean"], color="k", linestyle=":", label="chance")
    ax_bar.set(ylabel="test accuracy", ylim=(0, 1), title=f"{len(result.seeds)} seeds")
    ax_bar.legend()
    lams, temps = m["sweep_lambda"]["mean"], m["sweep_temperature"]["mean"]
    for d, style in zip(DIRECTIONS, ("-", "--"), strict=True):
        acc = np.asarray(m[f"sweep_accuracy_{d}"]["mean"])
        for t in sorted(set(temps)):
            pick = [i for i, v in enumerate(temps) if v == t]
            label = f"{'KL(s||t)' if d == DIRECTIONS[0] else 'KL(t||s)'}, T={t:g}"
            ax_sweep.plot([lams[i] for i in pick], acc[pick], style, marker="o", label=label)
    ax_sweep.axhline(m["student_accuracy"]["mean"], color="C1", linestyle=":",
                     label="plain student")
    ax_sweep.set(xlabel="KL weight lam", ylabel="test accuracy", title="students by lam, T")
    ax_sweep.legend(fontsize=8)
    return fig


EXPERIMENT = Experiment(
    name="distillation",
    description="a CNN teacher on all data distilled into a small GridFormer on 10% of it, "
                "both KL directions, over lam and temperature",
    claim="A teacher's soft outputs (L = lam KL(p_student||p_teacher) + (1 - lam) CE) train a "
          "small GridFormer on little data better than the labels alone.",
    quick=QUICK, full=FULL, run=run, verdict=verdict, figure=figure,
)
