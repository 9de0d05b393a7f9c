"""The models of ``gridformer experiment pde-benchmark`` and their training recipes.

Every model maps a field batch ``(B, *grid)`` to the next frame ``(B, *grid)``. The learned
ones (all but ``stencil``) act in residual form ``u + s * net(u)``, ``s`` the RMS increment of
the training pairs (a fixed scale, so every net outputs O(1) values).

==========================  =================================================================
model                       architecture (recipe)
==========================  =================================================================
``gridformer``              standard GridFormer on cell tokens: 2 blocks, 4 heads, dim 32, MLP
                            ratio 2, content attention + learned relative position bias over
                            the whole grid (AdamW 1e-3, wd 0.01, 5% warm-up, cosine)
``gridformer-patch``        the same on patch tokens (4 cells in 1-D, 2 x 2 in 2-D per token)
``gridformer-geodesic``     the same on cell tokens, positions only through a learned per-head
                            grid-distance bias ``-b_h d_ij`` (periodic grid units)
``stencil``                 the attention-stencil model of ``gridformer stencil``
                            (:func:`~gridformer.experiments.stencil_models.build_field_model`):
                            one head whose softmax row *is* the update stencil, ``u_new = A u``,
                            radius from the task's CFL/diffusion numbers, state-dependent logits
                            on Burgers (its own recipe, as in ``gridformer stencil``: L-BFGS
                            with strong Wolfe line search on a fixed subset of the pairs; see
                            :func:`train_stepper` for how its budget matches the others')
``fno``                     FNO, 4 Fourier layers, width 20, 12 modes (PDEBench's FNO1d sizes;
                            8 modes in 2-D) (Adam 1e-3 halved every quarter of the steps, as
                            PDEBench halves every 100 of 500 epochs)
``unet``                    compact 2-level U-Net, width 16, circular padding (as FNO)
``cnn``                     LocalCNN, 3 layers, kernel 3, 32 channels (as FNO)
==========================  =================================================================
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["LBFGS_RATIO", "MODELS", "PATCH", "Stepper", "build_model", "stencil_radius",
           "train_stepper"]

MODELS = ("gridformer", "gridformer-patch", "gridformer-geodesic", "stencil", "fno", "unet",
          "cnn")
#: cells per patch axis of ``gridformer-patch`` by grid dimension
PATCH = {1: 4, 2: 2}
#: The stencil's recipe: Adam for the first ``steps // 4`` minibatch steps (out of the uniform
#: start, see :func:`train_stepper`), then L-BFGS on a fixed subset of
#: ``LBFGS_RATIO * batch_size`` training pairs for the rest of the pair evaluations,
#: ``(steps - steps // 4) // LBFGS_RATIO`` loss-and-gradient evaluations.
LBFGS_RATIO = 4
_CHUNK = 256  # pairs per forward/backward inside one full-batch evaluation (bounds memory)


def check_model(kind: Any) -> str:
    """``kind`` if it is a known model, else a ValueError listing the valid ones."""
    if kind not in MODELS:
        msg = f"unknown model {kind!r}; valid: {', '.join(MODELS)}"
        raise ValueError(msg)
    return kind


def _to_patches(u: torch.Tensor, p: int) -> torch.Tensor:
    """``(B, *grid)`` -> ``(B, N, p**ndim)`` tokens of ``p``-cell patches, row-major."""
    if u.ndim == 2:
        return u.reshape(u.shape[0], -1, p)  # (B, X/p, p)
    B, Y, X = u.shape
    x = u.reshape(B, Y // p, p, X // p, p).permute(0, 1, 3, 2, 4)  # (B, Y/p, X/p, p, p)
    return x.reshape(B, -1, p * p)  # (B, N, p*p)


def _from_patches(tokens: torch.Tensor, grid: tuple[int, ...], p: int) -> torch.Tensor:
    """Inverse of :func:`_to_patches`: ``(B, N, p**ndim)`` -> ``(B, *grid)``."""
    B = tokens.shape[0]
    if len(grid) == 1:
        return tokens.reshape(B, *grid)  # (B, X)
    Y, X = grid
    x = tokens.reshape(B, Y // p, X // p, p, p).permute(0, 1, 3, 2, 4)  # (B, Y/p, p, X/p, p)
    return x.reshape(B, Y, X)


class Stepper(nn.Module):
    """``(B, *grid) -> (B, *grid)``: ``u + scale * net(u)`` around a token model.

    ``patch`` cells per axis form a token (1: cell tokens, one feature per token).
    """

    def __init__(self, net: nn.Module, layout: Any, scale: float, patch: int = 1) -> None:
        super().__init__()
        self.net, self.layout, self.patch = net, layout, patch
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        tokens = _to_patches(u, self.patch)  # (B, N, p**ndim)
        out = self.net(tokens, self.layout).prediction  # (B, N, p**ndim)
        return u + self.scale * _from_patches(out, tuple(u.shape[1:]), self.patch)


def stencil_radius(task: str, cells: int, amplitude: float) -> int:
    """Stencil radius (cells) that one saved frame of ``task`` needs: the distance a signal
    travels (velocity or ``amplitude`` x frame step / h) plus three diffusion lengths
    ``sqrt(2 D dt) / h``, rounded up, at least 1 and at most ``cells // 2 - 1``."""
    from gridformer.experiments.pde_tasks import TASKS

    spec = TASKS[task]
    h, dt = 1.0 / cells, spec.saved_step
    speed = spec.params.get("velocity", amplitude if spec.equation == "burgers" else 0.0)
    diff = spec.params.get("diffusivity", spec.params.get("viscosity", 0.0))
    diff = max(diff) if isinstance(diff, tuple | list) else diff
    reach = abs(speed) * dt / h + 3 * math.sqrt(2 * diff * dt) / h
    return int(min(max(1, math.ceil(reach)), cells // 2 - 1))


def build_model(kind: str, grid: tuple[int, ...], scale: float, seed: int, *,
                radius: int = 1, state_dependent: bool = False,
                amplitude: float = 1.0) -> nn.Module:
    """One of :data:`MODELS` on a periodic grid ``grid`` (cells per axis), initialised from
    ``seed``; ``radius``, ``state_dependent`` and ``amplitude`` are for ``stencil`` only."""
    from gridformer.experiments.stencil_models import build_field_model
    from gridformer.model import FNO, TINY, GridFormer, LocalCNN, UNet
    from gridformer.tokenize import TokenLayout

    check_model(kind)
    grid = tuple(int(g) for g in grid)
    ndim = len(grid)
    if kind == "stencil":
        return build_field_model("stencil", grid, state_dependent=state_dependent,
                                 radius=radius, seed=seed, amplitude=amplitude)
    torch.manual_seed(seed)
    patch = PATCH[ndim] if kind == "gridformer-patch" else 1
    layout = TokenLayout.for_grid(grid, patch_size=patch, periodic=True)
    if kind.startswith("gridformer"):
        tokens = [g // patch for g in grid]
        cfg = dataclasses.replace(TINY, ndim=ndim, dim=32, depth=2, heads=4, mlp_ratio=2.0,
                                  in_features=patch**ndim, out_features=patch**ndim,
                                  max_relative_offset=max(tokens) // 2)
        if kind == "gridformer-geodesic":
            cfg = dataclasses.replace(cfg, position="geodesic", distance_bias="learned",
                                      distance_scale_km=1.0)
        net: nn.Module = GridFormer(cfg)
    elif kind == "fno":
        net = FNO(1, 1, width=20, modes=min(12 if ndim == 1 else 8, min(grid) // 2), layers=4,
                  ndim=ndim)
    elif kind == "unet":
        net = UNet(1, 1, width=16, levels=2, ndim=ndim)
    else:
        net = LocalCNN(1, 1, hidden=32, layers=3, kernel_size=3, ndim=ndim)
    return Stepper(net, layout, scale, patch)


def _optimizer(kind: str, model: nn.Module, steps: int) -> tuple[Any, Any]:
    """``kind``'s recipe: the optimizer and its per-step learning-rate schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    if kind.startswith("gridformer"):  # AdamW, warm-up 5%, then cosine to 0
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
        warm = max(1, steps // 20)
        return opt, torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps)
                                                                          / steps)))
    # The stencil's parameters are logits that must travel O(10) (to weight ~e-10 outside the
    # support): lr 5e-2 (Adam moves each by about lr per step); constant, L-BFGS follows.
    if kind == "stencil":
        opt = torch.optim.Adam(params, lr=5e-2)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    opt = torch.optim.Adam(params, lr=1e-3)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 4), gamma=0.5)


def _chunked_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: float, *,
                  backward: bool) -> float:
    """Loss of ``model`` on all pairs ``x``, ``y`` ``(M, *grid)`` (MSE over ``norm``),
    evaluated in chunks of :data:`_CHUNK` pairs; with ``backward`` the gradients of the whole
    batch accumulate in ``.grad`` (the same as one full-batch backward)."""
    total = 0.0
    for start in range(0, x.shape[0], _CHUNK):
        xc, yc = x[start:start + _CHUNK], y[start:start + _CHUNK]  # (C, *grid)
        loss = ((model(xc) - yc) ** 2).sum() / (y.numel() * norm)
        if backward:
            loss.backward()
        total += float(loss.detach())
    return total


def _train_lbfgs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: float, *,
                 budget: int, batch_size: int, gen: torch.Generator) -> dict[str, float]:
    """Deterministic L-BFGS with a strong Wolfe line search (``gridformer stencil``'s fit) on a
    fixed subset (drawn with ``gen``) of ``LBFGS_RATIO * batch_size`` pairs, for ``budget``
    evaluations (the line search may finish its last iteration a few evaluations past it)."""
    budget = max(1, budget)
    subset = torch.randperm(x.shape[0], generator=gen)[:LBFGS_RATIO * batch_size]
    xs, ys = x[subset], y[subset]  # (S, *grid)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=budget, max_eval=budget, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        return torch.tensor(_chunked_loss(model, xs, ys, norm, backward=True))

    opt.step(closure)
    state = opt.state[params[0]]
    return {"lbfgs_steps": float(state["n_iter"]), "lbfgs_evaluations": float(state["func_evals"]),
            "lbfgs_pairs": float(xs.shape[0])}


def train_stepper(model: nn.Module, kind: str, inputs: np.ndarray, targets: np.ndarray, *,
                  steps: int, batch_size: int, seed: int, device: Any) -> dict[str, float]:
    """Train ``model`` on pairs ``(M, *grid)`` with ``kind``'s recipe.

    The budget is ``steps * batch_size`` pair evaluations (forward and backward) for every
    model. Minibatch models take ``steps`` optimizer steps on batches of ``batch_size`` pairs
    drawn with ``seed``. ``stencil`` spends the same number as Adam then L-BFGS: a quarter of
    the steps with Adam (lr 5e-2, minibatches as the others), then the rest of the pair
    evaluations as full-batch L-BFGS (strong Wolfe line search, as ``gridformer stencil``
    fits it) on a fixed subset of ``LBFGS_RATIO * batch_size`` pairs drawn with ``seed``:
    ``(steps - steps // 4) // LBFGS_RATIO`` loss-and-gradient evaluations. L-BFGS needs a
    deterministic objective, and with the stencil's few parameters (5 to ~430 logits) the
    subset still holds far more cell equations than unknowns. Why Adam first: from the
    uniform start (every cell weighted 1/N) the steepest-descent ray leads to the saturated
    "no change" softmax (all weight on the centre, loss 1, vanishing gradient), where the
    line search stops and L-BFGS stays; Adam moves each logit by about its learning rate per
    step, out of the uniform start without saturating, and L-BFGS then drives the logits
    outside the stencil towards -inf, which Adam does only slowly.

    Returns
    -------
    dict
        ``train_loss`` (MSE of the step over the mean square increment: minibatch models the
        mean over the last 10% of steps; ``stencil`` over all training pairs after the fit),
        ``train_seconds`` (wall) and ``train_cpu_seconds`` of the training, ``train_steps``
        (optimizer steps: Adam steps, plus L-BFGS iterations for ``stencil``),
        ``train_evaluations`` (loss-and-gradient evaluations) and ``train_pair_evaluations``
        (their pairs summed); ``stencil`` also ``lbfgs_steps``, ``lbfgs_evaluations``,
        ``lbfgs_pairs``.
    """
    dtype = next(model.parameters()).dtype
    x = torch.as_tensor(inputs, dtype=dtype, device=device)
    y = torch.as_tensor(targets, dtype=dtype, device=device)
    norm = float(((y - x) ** 2).mean()) or 1.0
    model.to(device).train()
    batch = min(batch_size, x.shape[0])
    adam_steps = steps // 4 if kind == "stencil" else steps
    opt, sched = _optimizer(kind, model, adam_steps)
    gen = torch.Generator().manual_seed(seed)
    losses, started, cpu = [], time.perf_counter(), time.process_time()
    for _ in range(adam_steps):
        index = torch.randint(0, x.shape[0], (batch,), generator=gen)
        loss = ((model(x[index]) - y[index]) ** 2).mean() / norm
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    out = {"train_steps": float(adam_steps), "train_evaluations": float(adam_steps),
           "train_pair_evaluations": float(adam_steps * batch)}
    if kind == "stencil":
        lbfgs = _train_lbfgs(model, x, y, norm, budget=(steps - adam_steps) // LBFGS_RATIO,
                             batch_size=batch_size, gen=gen)
        out["train_steps"] += lbfgs["lbfgs_steps"]
        out["train_evaluations"] += lbfgs["lbfgs_evaluations"]
        out["train_pair_evaluations"] += lbfgs["lbfgs_evaluations"] * lbfgs["lbfgs_pairs"]
        out.update(lbfgs)
    out["train_seconds"] = time.perf_counter() - started
    out["train_cpu_seconds"] = time.process_time() - cpu
    model.eval()
    if kind == "stencil":
        with torch.no_grad():
            out["train_loss"] = _chunked_loss(model, x, y, norm, backward=False)
    else:
        out["train_loss"] = float(np.mean(losses[-max(1, steps // 10):]))
    return out
