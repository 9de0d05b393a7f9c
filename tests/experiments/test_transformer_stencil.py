"""transformer-stencil: metrics that hold by construction, the recipe's switches, a tiny run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gridformer import solvers
from gridformer.experiments import get_experiment, run_experiment
from gridformer.experiments.transformer_stencil import (
    INGREDIENTS,
    RECIPE,
    build_recipe_model,
    jacobian_stencil_error,
    last_layer_mass_in_support,
    support_mask,
    train_recipe,
)
from gridformer.experiments.transformer_stencil_suite import ablation_table, variant_recipe
from gridformer.tokenize import TokenLayout

GRID = (8, 8)
HEAT = solvers.update_stencil("heat", dt=0.4, spacing=(1.0, 1.0),
                              diffusivity=(0.6, 0.3)).reset_coords(drop=True)
UPWIND = solvers.update_stencil("advection", dt=0.4, spacing=(1.0, 1.0),
                                velocity=(0.5, -0.25)).reset_coords(drop=True)


def stencil_map(weights: dict[tuple[int, int], float], grid=GRID) -> torch.Tensor:
    """``(N, N)`` attention whose every row puts ``weights[(dy, dx)]`` on ``u[y+dy, x+dx]``."""
    ny, nx = grid
    a = torch.zeros(ny * nx, ny * nx, dtype=torch.float64)
    for y in range(ny):
        for x in range(nx):
            for (dy, dx), w in weights.items():
                a[y * nx + x, ((y + dy) % ny) * nx + (x + dx) % nx] += w
    return a


def periodic_stencil_step(weights: dict[tuple[int, int], float]):
    """A linear periodic update ``u_new[i] = sum_o w_o u[i + o]`` written with torch.roll."""
    def step(u: torch.Tensor) -> torch.Tensor:
        return sum(w * torch.roll(u, shifts=(-dy, -dx), dims=(1, 2))
                   for (dy, dx), w in weights.items())
    return step


def fd_weights(stencil) -> dict[tuple[int, int], float]:
    return {(int(dy), int(dx)): float(stencil.sel(dy=dy, dx=dx))
            for dy in stencil.dy.values for dx in stencil.dx.values
            if float(stencil.sel(dy=dy, dx=dx)) != 0.0}


# ---------------------------------------------------------------- metrics by construction
def test_mass_in_support_of_hand_made_maps_counts_only_the_last_layer():
    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    upwind = fd_weights(UPWIND)  # dimensionally split upwind: the corner (-1, 1) too
    assert set(upwind) == {(0, 0), (-1, 0), (0, 1), (-1, 1)}
    exact = stencil_map(upwind)  # head 0: the FD row itself -> mass 1
    # head 1: 0.7 on the centre, 0.3 downstream (+1, 0), outside the upwind support
    leaky = stencil_map({(0, 0): 0.7, (1, 0): 0.3})
    last = torch.stack([exact, leaky])[None]  # (1, 2, N, N)
    first = stencil_map({(2, 2): 1.0})[None, None].expand(1, 2, -1, -1)  # all mass outside
    mass = last_layer_mass_in_support((first, last), layout, UPWIND)
    assert mass == pytest.approx((1.0 + 0.7) / 2, abs=1e-12)
    # against the 5-point heat support, (+1, 0) is inside and the upwind corner outside
    assert last_layer_mass_in_support((first, last), layout, HEAT) == pytest.approx(
        (1.0 - upwind[(-1, 1)] + 1.0) / 2, abs=1e-12)
    assert last_layer_mass_in_support(first, layout, HEAT) == pytest.approx(0.0)


def test_jacobian_stencil_error_of_a_known_linear_step_is_its_weight_difference():
    u = np.random.default_rng(0).normal(size=(2, *GRID))
    exact = fd_weights(HEAT)
    assert jacobian_stencil_error(periodic_stencil_step(exact), u, HEAT,
                                  dtype=torch.float64) < 1e-12
    off = {**exact, (1, 1): 0.003, (0, 0): exact[(0, 0)] - 0.02}  # a new offset, a changed one
    assert jacobian_stencil_error(periodic_stencil_step(off), u, HEAT,
                                  dtype=torch.float64) == pytest.approx(0.02, abs=1e-12)


# ---------------------------------------------------------------- the recipe's switches
def test_variants_switch_off_exactly_one_ingredient_and_none_switches_off_all():
    default = variant_recipe("recipe", 7)
    assert default.steps == 7
    for name in INGREDIENTS:
        changed = [f for f in INGREDIENTS
                   if getattr(variant_recipe(f"no_{name}", 7), f) != getattr(default, f)]
        assert changed == [name]
    plain = variant_recipe("none", 7)
    assert all(getattr(plain, f) != getattr(default, f) for f in INGREDIENTS)
    with pytest.raises(ValueError, match=r"ablation variant 'no_dropout' is not one of "
                                         r"\['recipe', 'none', 'no_mixed_data'"):
        variant_recipe("no_dropout", 7)
    with pytest.raises(ValueError, match="ingredient='adam' is not one of"):
        RECIPE.without("adam")


def test_locality_init_and_conservative_step():
    model = build_recipe_model(RECIPE, GRID, seed=0, fd_stencil=HEAT)
    rel = model.net.relative
    lam, low = RECIPE.locality_init, RECIPE.support_init
    # the 5-point cross of heat is the support: only the offsets outside it are lowered
    for offset, norm2, lowered in (((0, 0), 0, 0), ((1, 0), 1, 0), ((-1, 1), 2, low),
                                   ((0, 3), 9, low), ((5, -7), 18, low)):
        assert rel.table[:, rel.offset_to_column(offset)].tolist() == pytest.approx(
            [-lam * norm2 - lowered] * rel.table.shape[0])
    # an untrained (random) net still keeps the spatial mean exactly: conservative step
    with torch.no_grad():
        model.net.head.weight.normal_()
        u = torch.randn(3, *GRID, dtype=torch.float64)
        new = model(u)
    assert not torch.allclose(new, u)
    assert torch.allclose(new.mean((1, 2)), u.mean((1, 2)), atol=1e-6)


def test_linear_init_starts_affine_in_u_and_stays_learnable():
    rng = np.random.default_rng(0)
    u1, u2 = (torch.as_tensor(rng.normal(size=(2, *GRID)), dtype=torch.float32)
              for _ in range(2))

    def affine_defect(recipe) -> float:
        model = build_recipe_model(recipe, GRID, seed=0, fd_stencil=HEAT)
        with torch.no_grad():
            model.net.head.weight.normal_()  # a non-zero head: the increment is visible
            zero = torch.zeros_like(u1)
            g = [model(u) - u for u in (u1 + u2, u1, u2, zero)]  # increments
        return float((g[0] - g[1] - g[2] + g[3]).abs().max() / g[1].abs().max())

    # g(u1 + u2) = g(u1) + g(u2) - g(0) holds for an affine map only
    assert affine_defect(RECIPE) < 1e-5
    assert affine_defect(RECIPE.without("linear_init")) > 1e-3
    model = build_recipe_model(dataclasses.replace(RECIPE, steps=3), GRID, seed=0,
                               fd_stencil=HEAT)
    queries = [b.attn.q.weight for b in model.net.blocks]
    assert all(float(q.detach().abs().max()) == 0.0 for q in queries)
    u = rng.normal(size=(2, *GRID))
    train_recipe(model, dataclasses.replace(RECIPE, steps=3), u, 0.9 * u + 0.1 * u.mean())
    assert all(float(q.detach().abs().max()) > 0.0 for q in queries)  # the content term can grow


# ---------------------------------------------------------------- the experiment
def test_tiny_run_keys_ablation_rows_and_verdict():
    result = run_experiment(get_experiment("transformer-stencil"), mode="quick", seeds=[0],
                            overrides={"grid": [8, 8], "steps": 3, "rollout_steps": 2,
                                       "n_train": 2, "n_test": 1, "ablation": ["none"],
                                       "equations": ["advection"]})
    metrics = ("last_layer_mass_in_support", "jacobian_stencil_error", "rollout_rel_l2",
               "train_loss", "train_cpu_seconds")
    assert set(result.metrics) == {f"{p}advection_{m}" for p in ("", "ablation_none_")
                                   for m in metrics}
    rows = ablation_table(result)
    assert [(r["variant"], r["equation"]) for r in rows] == [("recipe", "advection"),
                                                             ("none", "advection")]
    for row in rows:
        assert 0.0 <= row["last_layer_mass_in_support"] <= 1.0 + 1e-6
        assert math.isfinite(row["jacobian_stencil_error"])
    # three Adam steps do not learn the stencil: the verdict must say so
    assert result.verdict.outcome == "does not hold"
    assert "advection: last_layer_mass_in_support" in result.verdict.text


def test_bad_variant_or_equation_fails_before_training():
    experiment = get_experiment("transformer-stencil")
    with pytest.raises(ValueError, match="ablation variant 'no_adam'"):
        run_experiment(experiment, mode="quick", seeds=[0], overrides={"ablation": ["no_adam"]})
    with pytest.raises(ValueError, match="equation 'burgers' is not one of"):
        run_experiment(experiment, mode="quick", seeds=[0],
                       overrides={"equations": ["burgers"]})


def test_support_mask_and_box_locality_of_hand_made_maps():
    from gridformer.experiments.transformer_stencil import _box_locality, _outside_mass
    from gridformer.training.regularizers import attention_locality_penalty

    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    mask = support_mask(layout, UPWIND)
    assert mask.sum(1).tolist() == [4] * (GRID[0] * GRID[1])
    # query (0, 0): keys at offsets (0, 0), (-1, 0), (0, 1), (-1, 1), wrapped periodically
    assert sorted(mask[0].nonzero().flatten().tolist()) == sorted(
        [0, 7 * 8 + 0, 0 * 8 + 1, 7 * 8 + 1])
    upwind = stencil_map(fd_weights(UPWIND))[None, None]  # (1, 1, N, N)
    leaky = stencil_map({(0, 0): 0.7, (1, 1): 0.2, (0, 2): 0.1})[None, None]
    assert float(_outside_mass([upwind], mask)) == pytest.approx(0.0, abs=1e-12)
    assert float(_outside_mass([upwind, leaky], mask)) == pytest.approx(0.15, abs=1e-12)
    # the box (Chebyshev) distance frees the upwind corner; the Euclidean one charges it
    corner = fd_weights(UPWIND)[(-1, 1)]
    assert float(_box_locality([upwind], layout, 1.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(attention_locality_penalty(upwind, layout, radius=1.0)) == pytest.approx(
        corner * (math.sqrt(2) - 1), abs=1e-6)
    # (0, 2) is 1 cell beyond the box: 0.1 * 1
    assert float(_box_locality([leaky], layout, 1.0)) == pytest.approx(0.1, abs=1e-12)


def test_support_penalty_needs_the_fd_stencil():
    recipe = dataclasses.replace(RECIPE, support_penalty=1.0, steps=1)
    model = build_recipe_model(recipe, GRID, seed=0, fd_stencil=UPWIND)
    u = np.zeros((1, *GRID))
    with pytest.raises(ValueError, match=r"fd_stencil=None: recipe\.support_penalty needs"):
        train_recipe(model, recipe, u, u)
    bad = dataclasses.replace(RECIPE, locality_metric="manhattan", steps=1)
    with pytest.raises(ValueError, match="locality_metric='manhattan' is not one of"):
        train_recipe(model, bad, u, u)


def test_support_init_lowers_only_the_offsets_outside_the_fd_support():
    recipe = dataclasses.replace(RECIPE, support_init=7.0)  # the recipe's is 10
    rel = build_recipe_model(recipe, GRID, seed=0, fd_stencil=UPWIND).net.relative
    lam = RECIPE.locality_init
    # inside the upwind support: the locality init only; outside (downstream, far): 7 lower
    for offset, norm2, lowered in (((0, 0), 0, 0), ((-1, 0), 1, 0), ((-1, 1), 2, 0),
                                   ((1, 0), 1, 7), ((1, -1), 2, 7), ((0, 3), 9, 7)):
        assert rel.table[:, rel.offset_to_column(offset)].tolist() == pytest.approx(
            [-lam * norm2 - lowered] * rel.table.shape[0])
    with pytest.raises(ValueError, match=r"fd_stencil=None: recipe\.support_init needs"):
        build_recipe_model(recipe, GRID, seed=0)
