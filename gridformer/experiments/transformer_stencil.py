"""A standard GridFormer (2 blocks, MLPs, content attention, Adam) that learns its FD stencil.

The recipe is a :class:`Recipe` of switchable ingredients; :func:`train_recipe` builds the
model, fits it with Adam to one-step FD pairs and :func:`stencil_metrics` reads the three
numbers the claim is about:

- ``last_layer_mass_in_support``: attention mass of the last layer (mean over heads, samples
  and queries) on the offsets of the FD stencil;
- ``jacobian_stencil_error``: ``max |J - FD|`` over all offsets, ``J`` the effective
  (Jacobian) stencil of the whole model (:func:`gridformer.analysis.effective_stencil`);
- ``rollout_rel_l2``: relative L2 error against the FD solver after the rollout.

The model is :func:`~gridformer.experiments.build_field_model`'s ``"gridformer"`` (TINY:
``dim=16``, 2 pre-norm blocks with residuals and GELU MLPs, 2 heads, content attention plus a
learned relative bias shared by the blocks); the ingredients change its initialisation, an
optional learned distance bias, whether the blocks have LayerNorms, the output form, the
training data and the loss. ``docs/transformer-stencil.md`` has the ablation and why each
ingredient is there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gridformer.experiments.stencil_models import FieldModel

__all__ = ["INGREDIENTS", "RECIPE", "Recipe", "RecipeModel", "build_recipe_model",
           "jacobian_stencil_error", "last_layer_mass_in_support", "stencil_metrics",
           "support_mask", "train_recipe", "training_pairs"]

#: Ingredients that :meth:`Recipe.without` can remove, in the order of the ablation table.
INGREDIENTS = ("mixed_data", "no_norm", "residual", "zero_head", "linear_init",
               "conservative", "locality_init", "support_init", "distance_bias",
               "lr_schedule")

#: The value that switches each ingredient off.
_OFF = {"mixed_data": False, "no_norm": False, "residual": False, "zero_head": False,
        "linear_init": False, "conservative": False, "locality_init": 0.0, "support_init": 0.0,
        "distance_bias": False, "lr_schedule": False}


@dataclass(frozen=True)
class Recipe:
    """How the standard GridFormer is initialised and trained (defaults: the recipe).

    Attributes
    ----------
    mixed_data
        Train on smooth fields as well as broadband ones (half each), the loss of each
        sample relative to its own mean squared increment; else broadband fields only, the
        loss relative to the batch's mean squared increment.
    no_norm
        Build the blocks without LayerNorms (``norm=False``). A LayerNorm of an affinely
        embedded scalar is invariant to the scale of its input, so no network with one
        before the head is exactly linear in ``u``.
    residual
        Predict the increment: ``u_new = u + net(u)`` (else ``u_new = net(u)``).
    zero_head
        Initialise the output head to zero, so training starts from "no change" (with
        ``residual``) instead of a random field.
    linear_init
        Initialise every block's query projection and MLP output layer to zero, so that
        training starts from a map that is exactly affine in ``u``: the content logits
        ``q . k`` start at 0 (attention from the position terms alone) and the MLPs add
        nothing. Both stay learnable (the query's gradient is not zero), so the nonlinear
        terms grow only as far as the data pays for them. The FD update is linear; without
        this the fitted model keeps a state-dependent part that the one-step loss leaves
        loose and a 100-step rollout accumulates.
    conservative
        Remove the spatial mean of the increment, so ``mean(u_new) == mean(u)`` exactly
        (heat and advection on a periodic grid conserve it).
    locality_init
        ``lambda`` (per cell^2) of the relative-bias initialisation ``-lambda |o|^2``
        (``o`` the clipped offset); 0 = the library's zero table (uniform attention).
    support_init
        Lower the relative-bias initialisation by this much (logit units) on every offset
        outside the equation's own FD support (0 = off). The table stays learnable. A task
        prior: it tells the model where the stencil is, as ``support_penalty`` does.
    distance_bias
        Add a learned per-head grid-distance bias ``-b_h d`` (``d`` in cells, ``b_h`` from 0).
    locality_penalty, locality_radius
        Weight of :func:`~gridformer.training.regularizers.attention_locality_penalty` on
        every layer (0 = off), and its free radius in cells (1: the 5-point cross is free,
        the corners cost ``sqrt 2 - 1`` per unit of weight).
    locality_metric
        Distance the locality penalty measures: ``"euclidean"`` (``layout.distances()``) or
        ``"chebyshev"`` (box distance ``max_i |o_i|``: with radius 1 the whole 3 x 3 box,
        corners included, is free).
    support_penalty
        Weight of the attention mass outside the equation's own FD support, every layer
        (0 = off). A task prior: it tells the model where the stencil is.
    entropy_penalty
        Weight of :func:`~gridformer.training.regularizers.attention_entropy_penalty` (last
        layer); 0 = off.
    lr_schedule
        Cosine decay of the learning rate from ``lr`` to 0 over ``steps`` (else constant).
    lr, steps
        Adam learning rate and number of full-batch steps.
    """

    mixed_data: bool = True
    no_norm: bool = True
    residual: bool = True
    zero_head: bool = True
    linear_init: bool = True
    conservative: bool = True
    locality_init: float = 2.0
    support_init: float = 10.0
    distance_bias: bool = True
    locality_penalty: float = 0.0
    locality_radius: float = 1.0
    locality_metric: str = "euclidean"
    support_penalty: float = 0.0
    entropy_penalty: float = 0.0
    lr_schedule: bool = True
    lr: float = 1e-2
    steps: int = 2000

    def without(self, ingredient: str) -> Recipe:
        """This recipe with one of :data:`INGREDIENTS` switched off."""
        if ingredient not in INGREDIENTS:
            msg = f"ingredient={ingredient!r} is not one of {list(INGREDIENTS)}"
            raise ValueError(msg)
        return dataclasses.replace(self, **{ingredient: _OFF[ingredient]})

    def plain(self) -> Recipe:
        """Every ingredient off: the standard GridFormer trained with constant-rate Adam."""
        return dataclasses.replace(self, **_OFF)


#: The recipe the documented numbers use.
RECIPE = Recipe()


def _offset_norm2(max_offset: int, ndim: int) -> torch.Tensor:
    """``|o|^2`` (cells^2) of every column of a ``(2M+1)^ndim`` relative table."""
    axis = torch.arange(-max_offset, max_offset + 1, dtype=torch.float32)
    grids = torch.meshgrid(*([axis] * ndim), indexing="ij")
    return sum(g**2 for g in grids).reshape(-1)  # (K,), row-major like relative_index


def build_recipe_model(recipe: Recipe, grid: Sequence[int], *, seed: int = 0,
                       fd_stencil: Any = None) -> FieldModel:
    """The standard GridFormer of ``build_field_model("gridformer", grid)`` with ``recipe``;
    ``fd_stencil`` (the equation's ``solvers.update_stencil``) is needed only for
    ``recipe.support_init``."""
    from gridformer.model import TINY, GridFormer
    from gridformer.tokenize import TokenLayout

    torch.manual_seed(seed)
    ndim = len(grid)
    cfg = dataclasses.replace(TINY, ndim=ndim, dim=16, depth=2, heads=2, mlp_ratio=2.0,
                              max_relative_offset=3)
    if recipe.distance_bias:
        cfg = dataclasses.replace(cfg, distance_bias="learned", distance_scale_km=1.0)
    if recipe.no_norm:
        cfg = dataclasses.replace(cfg, norm=False)
    net = GridFormer(cfg)
    if recipe.locality_init:
        with torch.no_grad():
            table = -recipe.locality_init * _offset_norm2(cfg.max_relative_offset, ndim)
            net.relative.table.copy_(table.expand_as(net.relative.table))
    if recipe.support_init:
        _lower_outside_support(net.relative, fd_stencil, recipe.support_init)
    if recipe.zero_head:
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.zero_()
    if recipe.linear_init:
        with torch.no_grad():
            for block in net.blocks:
                for layer in (block.attn.q, block.mlp.out):
                    layer.weight.zero_()
                    layer.bias.zero_()
    layout = TokenLayout.for_grid(tuple(grid), patch_size=1, periodic=True)
    return RecipeModel(net, layout, residual=recipe.residual, conservative=recipe.conservative)


def _lower_outside_support(relative: Any, fd_stencil: Any, amount: float) -> None:
    """Subtract ``amount`` from every column of the relative-bias table ``(H, K)`` whose
    offset is not a non-zero entry of ``fd_stencil``."""
    if fd_stencil is None:
        msg = "fd_stencil=None: recipe.support_init needs the equation's FD stencil"
        raise ValueError(msg)
    inside = torch.zeros(relative.table.shape[1], dtype=torch.bool)
    for offset in _support_offsets(fd_stencil):
        inside[relative.offset_to_column(offset)] = True
    with torch.no_grad():
        relative.table[:, ~inside] -= amount


class RecipeModel(FieldModel):
    """:class:`FieldModel` whose step can be made conservative: the spatial mean of the
    increment is removed, so ``mean(u_new) == mean(u)`` exactly (heat and advection on a
    periodic grid conserve it)."""

    def __init__(self, net: torch.nn.Module, layout: Any, *, residual: bool,
                 conservative: bool) -> None:
        super().__init__(net, layout, residual=residual)
        self.conservative = conservative

    @property
    def device(self) -> torch.device:
        """Device of the parameters; inputs are moved to it and outputs moved back."""
        return next(self.parameters()).device

    def step(self, u: torch.Tensor, return_attention: bool = False
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Next state ``(B, *grid)`` (on ``u``'s device and dtype) and, if asked, every
        layer's attention ``(B, H, N, N)`` (on the model's device)."""
        batch, grid = u.shape[0], u.shape[1:]
        x = u.to(device=self.device, dtype=self.dtype)
        out = self.net(x.reshape(batch, -1, 1), self.layout, return_attention=return_attention)
        new = out.prediction.reshape(batch, *grid)  # (B, *grid)
        if self.residual:
            new = x + new
        if self.conservative:
            axes = tuple(range(1, x.ndim))
            new = new - (new - x).mean(axes, keepdim=True)
        return new.to(device=u.device, dtype=u.dtype), out.attention

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.step(u)[0]

    def attention(self, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every layer's attention ``(B, H, N, N)`` for the fields ``u`` ``(B, *grid)``, on
        the CPU."""
        with torch.no_grad():
            attention = self.step(u, return_attention=True)[1]
        return tuple(a.cpu() for a in attention)


def _forward(model: RecipeModel, u: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Next state ``(B, *grid)`` and every layer's attention ``(B, H, N, N)``."""
    return model.step(u, return_attention=True)


def support_mask(layout: Any, fd_stencil: Any) -> torch.Tensor:
    """``(N, N)`` bool: key ``k`` lies on a non-zero offset of ``fd_stencil`` from query ``q``.

    ``fd_stencil`` is a DataArray over ``("dy", "dx")`` (or ``("dx",)``) with integer offset
    coordinates in cells, ``key - query`` as in :meth:`TokenLayout.offsets`.
    """
    offsets = torch.as_tensor(layout.offsets())  # (N, N, ndim), key - query, cells
    mask = torch.zeros(offsets.shape[:2], dtype=torch.bool)
    for offset in _support_offsets(fd_stencil):
        mask |= (offsets == torch.tensor(offset)).all(-1)
    return mask


def _support_offsets(fd_stencil: Any) -> list[tuple[int, ...]]:
    """The integer offsets (cells, per dim of ``fd_stencil``) of its non-zero weights."""
    coords = [np.asarray(fd_stencil[d].values).astype(np.int64) for d in fd_stencil.dims]
    return [tuple(int(c[i]) for c, i in zip(coords, index, strict=True))
            for index in zip(*np.nonzero(np.asarray(fd_stencil.values)), strict=True)]


def _outside_mass(attention: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Mean over layers, samples, heads and queries of the row mass off ``mask`` ``(N, N)``."""
    outside = (~mask).to(attention[0].dtype)  # (N, N)
    return sum((a * outside).sum(-1).mean() for a in attention) / len(attention)


def _box_locality(attention: Sequence[torch.Tensor], layout: Any, radius: float
                  ) -> torch.Tensor:
    """Locality penalty with the Chebyshev distance ``max_i |o_i|`` (cells) instead of the
    Euclidean one: ``sum_k A[q, k] max(d - r, 0)``, mean over layers, samples, heads, queries."""
    box = torch.as_tensor(layout.offsets()).abs().amax(-1).to(attention[0])  # (N, N)
    excess = (box - radius).clamp_min(0.0)
    return sum((a * excess).sum(-1).mean() for a in attention) / len(attention)


def train_recipe(model: FieldModel, recipe: Recipe, inputs: np.ndarray, targets: np.ndarray,
                 *, seed: int = 0, fd_stencil: Any = None) -> dict[str, Any]:
    """Full-batch Adam on ``inputs`` -> ``targets`` (each ``(M, *grid)``) with the penalties.

    The data loss is the MSE over the mean squared increment (1 = "no change").
    ``fd_stencil`` (the equation's ``solvers.update_stencil``) is needed only when
    ``recipe.support_penalty`` is on.

    Returns
    -------
    dict
        ``loss`` (final data loss), ``losses`` (per step), ``steps``, ``seconds``,
        ``cpu_seconds`` (process CPU time).
    """
    from gridformer.training.regularizers import (
        attention_entropy_penalty,
        attention_locality_penalty,
    )

    if recipe.locality_metric not in ("euclidean", "chebyshev"):
        msg = (f"locality_metric={recipe.locality_metric!r} is not one of "
               f"['euclidean', 'chebyshev']")
        raise ValueError(msg)
    mask = None
    if recipe.support_penalty:
        if fd_stencil is None:
            msg = "fd_stencil=None: recipe.support_penalty needs the equation's FD stencil"
            raise ValueError(msg)
        mask = support_mask(model.layout, fd_stencil)
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    if mask is not None:
        mask = mask.to(device)
    x = torch.as_tensor(inputs, dtype=model.dtype, device=device)
    y = torch.as_tensor(targets, dtype=model.dtype, device=device)
    axes = tuple(range(1, inputs.ndim))
    scale = torch.as_tensor(np.mean((targets - inputs) ** 2, axis=axes if recipe.mixed_data
                                    else None), dtype=model.dtype,
                            device=device).clamp_min(1e-12)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.steps)
             if recipe.lr_schedule else None)
    started, cpu, losses = time.perf_counter(), time.process_time(), []
    model.train()
    for _ in range(recipe.steps):
        opt.zero_grad()
        pred, attention = _forward(model, x)
        per_sample = ((pred - y) ** 2).flatten(1).mean(1)  # (M,)
        data = (per_sample / scale).mean()
        loss = data
        if recipe.locality_penalty and recipe.locality_metric == "chebyshev":
            loss = loss + recipe.locality_penalty * _box_locality(
                attention, model.layout, recipe.locality_radius)
        elif recipe.locality_penalty:
            loss = loss + recipe.locality_penalty * attention_locality_penalty(
                attention, model.layout, radius=recipe.locality_radius)
        if mask is not None:
            loss = loss + recipe.support_penalty * _outside_mass(attention, mask)
        if recipe.entropy_penalty:
            loss = loss + recipe.entropy_penalty * attention_entropy_penalty(
                attention, model.layout, layers=-1)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(float(data.detach()))
        if not math.isfinite(losses[-1]):
            break
    model.eval()
    return {"loss": losses[-1], "losses": losses, "steps": len(losses),
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def last_layer_mass_in_support(attention: Any, layout: Any, fd_stencil: Any) -> float:
    """Attention mass of the LAST layer on the offsets where ``fd_stencil`` is non-zero.

    Parameters
    ----------
    attention
        Per layer ``(B, H, N, N)`` (a sequence, or one tensor for one layer).
    layout
        The token layout (cell tokens: offsets in grid cells).
    fd_stencil
        Reference stencil over ``("dy", "dx")`` (or ``("dx",)``), e.g.
        ``solvers.update_stencil``.

    Returns
    -------
    float
        Mean over samples, heads and queries of the row mass on the support, in [0, 1].
    """
    from gridformer.analysis import attention_stencil, compare_stencils

    last = attention if isinstance(attention, torch.Tensor) else list(attention)[-1]
    return float(compare_stencils(attention_stencil(last, layout), fd_stencil).mass_in_support)


def jacobian_stencil_error(model_fn: Any, u: np.ndarray, fd_stencil: Any, *,
                           n_positions: int = 16, seed: int = 0,
                           dtype: torch.dtype = torch.float32) -> float:
    """``max |J - FD|`` over every offset, ``J`` the effective (Jacobian) stencil of
    ``model_fn`` around the fields ``u`` ``(B, *grid)`` (dimensionless weights); ``J`` is
    averaged over ``n_positions`` random cells per field (``seed``), fed as ``dtype``."""
    from gridformer.analysis import compare_stencils, effective_stencil

    jacobian = effective_stencil(model_fn, u, n_positions=n_positions, seed=seed, dtype=dtype)
    return float(compare_stencils(jacobian, fd_stencil).max_abs_error)


def stencil_metrics(model: RecipeModel, fd_stencil: Any, test: np.ndarray,
                    reference: Any, *, seed: int = 0) -> dict[str, float]:
    """The three numbers of the claim for a trained ``model``.

    Parameters
    ----------
    fd_stencil
        ``solvers.update_stencil`` of the equation (dims ``("dy", "dx")``).
    test
        Test fields ``(S, *grid)`` (the rollout's initial states); attention and Jacobian
        stencils are read around them.
    reference
        FD trajectory ``(time, sample, *grid)`` from ``test``.

    Returns
    -------
    dict
        ``last_layer_mass_in_support``, ``jacobian_stencil_error``, ``rollout_rel_l2`` (after
        the last step of ``reference``; ``inf`` if the rollout diverged).
    """
    from gridformer.analysis import rollout, rollout_errors

    attention = model.attention(torch.as_tensor(test, dtype=model.dtype))
    steps = reference.sizes["time"] - 1
    errors = rollout_errors(rollout(model, test, steps, dtype=model.dtype), reference)
    rel = float(errors["rel_l2"].isel(time=-1))
    return {"last_layer_mass_in_support": last_layer_mass_in_support(
                attention, model.layout, fd_stencil),
            "jacobian_stencil_error": jacobian_stencil_error(model, test, fd_stencil,
                                                             seed=seed),
            "rollout_rel_l2": rel if math.isfinite(rel) else float("inf")}


def training_pairs(equation: str, grid: Sequence[int], *, n_train: int, dt: float,
                   params: dict[str, Any], recipe: Recipe, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One-step FD pairs ``(inputs, targets)``, each ``(n_train, *grid)``, from ``seed``.

    Broadband random fields; with ``recipe.mixed_data`` half of them smooth (seed
    ``seed + 1000``, never the test fields' ``seed + 1``).
    """
    from gridformer.experiments.stencil_data import fd_pairs, random_fields

    spacing = (1.0,) * len(grid)
    n_smooth = n_train // 2 if recipe.mixed_data else 0
    fields = random_fields(n_train - n_smooth, grid, seed=seed)
    if n_smooth:
        smooth = random_fields(n_smooth, grid, seed=seed + 1000, kind="smooth")
        fields = np.concatenate([fields, smooth])
    return fd_pairs(equation, fields, dt=dt, spacing=spacing, params=params)
