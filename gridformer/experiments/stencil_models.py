"""Models for the stencil experiments, seen as maps from one field to the next, and their fit.

Every model — the one-layer stencil GridFormer, a fuller GridFormer, the LocalCNN and FNO
baselines — is wrapped in :class:`FieldModel`, which maps a field batch ``(B, *grid)`` to the
next state ``(B, *grid)``. That is the form rollouts and :func:`effective_stencil` need.

Why L-BFGS: a softmax row reaches the exact (convex) heat or upwind stencil only in the limit
of logits -> -inf outside the support. Adam creeps there slowly and leaves ~0.2% of the weight
spread over the whole grid, which a 100-step rollout amplifies; full-batch L-BFGS with a strong
Wolfe line search drives the long-range logits down in a few hundred evaluations.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["MODEL_KINDS", "FieldModel", "build_field_model", "fit_field_model"]

MODEL_KINDS = ("stencil", "gridformer", "cnn", "fno")
_STATE_FEATURES = 8  # tanh features of the state behind the Burgers stencil's logits
_FEATURE_SLOPE = 2.5  # their slope, in units of 1 / amplitude
#: Fixed logit -8 per cell of distance for the Burgers stencil: the far tokens share the
#: clipped edge of the relative tables, and without it ~1% of the attention stays spread over
#: them (its gradient vanishes once the fit is good): 100-step rollout error 0.49 on the
#: default 32x32 problem, 0.20 with -4 per cell, 0.09 with -8 (mass within radius 1: 0.99999).
#: Inside the stencil the learned relative bias absorbs it.
_LOCALITY = 8.0


class FieldModel(nn.Module):
    """``(B, *grid)`` -> ``(B, *grid)`` around a token model ``net(tokens, layout)``.

    Cell tokens: token ``n`` is cell ``n`` in row-major order, one feature (the value).
    With ``residual=True`` the net predicts the increment ``u_new - u``.
    """

    def __init__(self, net: nn.Module, layout: Any, *, residual: bool = False) -> None:
        super().__init__()
        self.net, self.layout, self.residual = net, layout, residual

    @property
    def has_attention(self) -> bool:
        """Whether the wrapped net has attention maps to read (a GridFormer)."""
        from gridformer.model import GridFormer

        return isinstance(self.net, GridFormer)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the parameters; inputs are cast to it and outputs cast back."""
        return next(self.parameters()).dtype

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        batch, grid = u.shape[0], u.shape[1:]
        x = u.to(self.dtype)
        tokens = x.reshape(batch, -1, 1)  # (B, N, 1)
        out = self.net(tokens, self.layout).prediction.reshape(batch, *grid)  # (B, *grid)
        return (x + out if self.residual else out).to(u.dtype)

    def attention(self, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every layer's attention ``(B, H, N, N)`` for the fields ``u`` ``(B, *grid)``."""
        if not self.has_attention:
            msg = (f"model {type(self.net).__name__} has no attention to read a stencil from; "
                   f"use gridformer.analysis.effective_stencil (its Jacobian stencil) instead")
            raise ValueError(msg)
        with torch.no_grad():
            tokens = u.to(self.dtype).reshape(u.shape[0], -1, 1)  # (B, N, 1)
            out = self.net(tokens, self.layout, return_attention=True)
        return out.attention


def _freeze_identity_chain(net: nn.Module, amplitude: float = 1.0) -> None:
    """Fix the value path of a STENCIL GridFormer so that the prediction is ``mean_h A_h @ u``.

    ``embed`` copies ``u`` into every channel (one per head, head size 1), ``value``, ``query``
    and ``proj`` are identities and ``head`` averages the channels. The prediction is then the
    head-mean of softmax rows: weights >= 0 that sum to 1 by construction (the discrete maximum
    principle and mass conservation of the convex FD schemes), and the head-averaged attention
    row *is* the update stencil. Left free, the chain's overall scale and offset are pinned down
    only by the fields' means (one Fourier mode of many) and drift, which shows up as a slowly
    growing rollout error.

    With ``relative_content`` the table ``R`` starts at zero, so the logits of head ``h`` are
    ``bias_h(o) + u_i R_h(o)``: linear in the parameters. This loses nothing (with one feature
    per head, the query's scale and offset are absorbed by ``R`` and ``bias``) and removes the
    ``q x R`` product whose saddle points stall L-BFGS.

    With ``nonlinear_qk`` and ``relative_key_content`` (the Burgers stencil) the feature layer
    is fixed to the basis ``phi_f(u) = tanh(s (u - c_f))`` (centres ``c_f`` spanning
    ``+-1.2 amplitude``), ``q`` and ``k`` are identities and the logits are
    ``bias(o) + phi(u_i)·R(o) + phi(u_j)·S(o)`` (over sqrt(channels)): still linear in the
    learned tables, but nonlinear in the states of both the query and the key.
    """
    attn = net.blocks[0].attn
    channels = net.embed.weight.shape[0]
    with torch.no_grad():
        net.embed.weight.fill_(1.0)
        net.head.weight.fill_(1.0 / channels)
        for module in (attn.v, attn.proj, attn.q, attn.k):
            if module is not None:
                module.weight.copy_(torch.eye(channels))
        for module in (net.embed, attn.v, attn.proj, net.head, attn.q, attn.k):
            if module is not None:
                module.bias.zero_()
                module.requires_grad_(False)
        for table in (attn.relative, attn.relative_key):
            if table is not None:
                table.zero_()
        if attn.feature is not None:  # fixed basis tanh((u - c_f) / width), c_f spanning the range
            layer = attn.feature[0]
            centres = torch.linspace(-1.2, 1.2, channels) * amplitude
            layer.weight.zero_()
            layer.weight[:, 0] = _FEATURE_SLOPE / amplitude
            layer.bias.copy_(-_FEATURE_SLOPE / amplitude * centres)
            layer.requires_grad_(False)


def build_field_model(kind: str, grid: tuple[int, ...], *, state_dependent: bool = False,
                      radius: int = 1, seed: int = 0, amplitude: float = 1.0) -> FieldModel:
    """Build one of :data:`MODEL_KINDS` for a periodic grid, initialised from ``seed``.

    Parameters
    ----------
    kind
        ``"stencil"``: the STENCIL preset (one head, logits = relative bias per offset, no
        residual/norm/MLP) with its value path fixed to the identity, so the prediction is
        ``A @ u`` (starts as a uniform average, learns only the logits);
        ``"gridformer"``: two residual blocks with MLPs, content and relative attention;
        ``"cnn"``: LocalCNN (3 layers, 3x3); ``"fno"``: FNO (3 Fourier layers, 8 modes).
        CNN and FNO predict the increment (residual), as is usual for learned steppers.
    state_dependent
        For ``"stencil"``: make the logit of each offset a function of the states at both ends,
        ``bias(o) + phi(u_i)·R(o) + phi(u_j)·S(o)`` with ``phi`` 8 fixed tanh features of the
        state, plus a fixed locality bias ``-8 |o|`` (cells), so the stencil can follow the
        local state (Burgers). Why both ends: conservative
        upwind Burgers is ``u_i - dt/(2h) (u_i + u_{i-1}) (u_i - u_{i-1})`` (for u > 0), a convex
        combination whose upwind weight is ``~ (u_i + u_{i-1})``, and a softmax logit is its
        logarithm; a logit linear in ``u_i`` alone leaves ~16% of the step's change unfitted.
    amplitude
        Typical ``max |u|`` of the fields, which the tanh features of ``state_dependent`` span.
    radius
        Stencil radius to represent; the relative table reaches ``radius + 1``.
    """
    from gridformer.model import FNO, STENCIL, TINY, GridFormer, LocalCNN
    from gridformer.tokenize import TokenLayout

    if kind not in MODEL_KINDS:
        msg = f"model={kind!r} is not one of {list(MODEL_KINDS)}"
        raise ValueError(msg)
    torch.manual_seed(seed)
    ndim = len(grid)
    layout = TokenLayout.for_grid(grid, patch_size=1, periodic=True)
    if kind == "stencil":
        cfg = dataclasses.replace(STENCIL, ndim=ndim, max_relative_offset=radius + 1)
        if state_dependent:
            cfg = dataclasses.replace(cfg, dim=_STATE_FEATURES, relative_content=True,
                                      relative_key_content=True, nonlinear_qk=True,
                                      distance_bias=_LOCALITY, distance_scale_km=1.0)
        net = GridFormer(cfg)
        _freeze_identity_chain(net, amplitude)
        return FieldModel(net.double(), layout)
    if kind == "gridformer":
        cfg = dataclasses.replace(TINY, ndim=ndim, dim=16, depth=2, heads=2, mlp_ratio=2.0,
                                  max_relative_offset=radius + 2)
        return FieldModel(GridFormer(cfg), layout)
    if kind == "cnn":
        return FieldModel(LocalCNN(1, 1, hidden=32, layers=3, kernel_size=3, ndim=ndim),
                          layout, residual=True)
    modes = min(8, *(g // 2 for g in grid))
    return FieldModel(FNO(1, 1, width=16, modes=modes, layers=3, ndim=ndim), layout,
                      residual=True)


def fit_field_model(
    model: FieldModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    optimizer: str = "lbfgs",
    steps: int = 300,
    lr: float | None = None,
    seed: int = 0,
    rtol: float = 1e-2,
    patience: int = 4,
    callback: Any = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Full-batch fit of ``model`` to ``targets`` ``(M, *grid)`` from ``inputs`` ``(M, *grid)``.

    The loss is the MSE divided by the mean squared increment ``(targets - inputs)^2``: 1 for
    "predict no change", 0 for a perfect step.

    Parameters
    ----------
    optimizer
        ``"lbfgs"`` (``torch.optim.LBFGS``, strong Wolfe line search; ``steps`` = outer
        iterations of up to 20 evaluations each, stopping early when converged) or ``"adam"``
        (``steps`` Adam steps).
    lr
        Learning rate (default 1 for L-BFGS, 1e-2 for Adam).
    rtol, patience
        L-BFGS stops after ``patience`` outer iterations in a row that each lower the loss by
        less than the fraction ``rtol`` (a stuck line search can recover, so one is not enough).
    callback
        Called as ``callback(step, loss)`` after every step.
    progress
        Optional wrapper of the step iterable, called as ``progress(range(steps), total=steps,
        desc=...)`` (e.g. :func:`gridformer._progress.progress` for a tqdm bar).

    Returns
    -------
    dict
        ``loss`` (final normalised loss), ``losses`` (per step), ``evaluations`` (loss and
        gradient evaluations), ``seconds``.
    """
    if optimizer not in ("lbfgs", "adam"):
        msg = f"optimizer={optimizer!r} is not one of ['lbfgs', 'adam']"
        raise ValueError(msg)
    torch.manual_seed(seed)
    x = torch.as_tensor(inputs, dtype=model.dtype)
    y = torch.as_tensor(targets, dtype=model.dtype)
    scale = float(np.mean((targets - inputs) ** 2)) or 1.0
    params = [p for p in model.parameters() if p.requires_grad]
    evaluations = 0

    def loss_fn() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        return ((model(x) - y) ** 2).mean() / scale

    started, losses = time.perf_counter(), []
    step_range = range(steps) if progress is None else progress(
        range(steps), total=steps, desc=f"fit {optimizer}")
    model.train()
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr or 1.0, max_iter=20, history_size=50,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                                tolerance_change=1e-14)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        stalled = 0
        for step in step_range:
            loss = float(opt.step(closure).detach())
            losses.append(loss)
            if callback is not None:
                callback(step, loss)
            previous = losses[-2] if len(losses) > 1 else np.inf
            stalled = stalled + 1 if previous - loss <= rtol * previous else 0
            if stalled >= patience or not np.isfinite(loss):  # converged / diverged
                break
    else:
        opt = torch.optim.Adam(params, lr=lr or 1e-2)
        for step in step_range:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if callback is not None:
                callback(step, losses[-1])
    model.eval()
    with torch.no_grad():
        final = float(loss_fn())
    return {"loss": final, "losses": losses, "evaluations": evaluations,
            "seconds": time.perf_counter() - started}
