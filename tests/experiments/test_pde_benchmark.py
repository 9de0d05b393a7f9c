"""pde-benchmark: cached FD tasks, PDEBench metrics of known predictors, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.experiments import pde_tasks
from gridformer.experiments.harness import run_experiment
from gridformer.experiments.pde_benchmark import (
    EXPERIMENT,
    QUICK,
    build_model,
    check_settings,
    evaluate,
    high_fraction,
    stable_steps,
)
from gridformer.experiments.pde_models import MODELS, _from_patches, _to_patches, train_stepper
from gridformer.experiments.pde_tasks import generate, inner_steps, load_task

SMALL = {"samples": 3, "cells": 16, "frames": 4, "seed": 1}


def test_task_is_generated_once_and_read_back_from_pdebench_hdf5(tmp_path, monkeypatch):
    first = load_task("advection-1d", **SMALL, cache_dir=tmp_path)
    (path,) = tmp_path.glob("advection-1d-*.hdf5")
    with h5py.File(path) as f:
        assert f["tensor"].shape == (3, 4, 16)  # PDEBench arrays: (sample, time, x)

    def no_solver(*args, **kwargs):
        raise AssertionError("the cached file should have been read, not regenerated")

    monkeypatch.setattr(pde_tasks, "generate", no_solver)
    np.testing.assert_array_equal(load_task("advection-1d", **SMALL, cache_dir=tmp_path), first)


def test_a_cached_file_from_other_settings_is_refused(tmp_path):
    load_task("burgers-1d", **SMALL, cache_dir=tmp_path)
    (path,) = tmp_path.glob("burgers-1d-*.hdf5")
    with h5py.File(path, "r+") as f:
        f.attrs["gridformer_generation"] = '{"cells": 32}'
    with pytest.raises(ValueError, match=r"generated with other settings.*delete it"):
        load_task("burgers-1d", **SMALL, cache_dir=tmp_path)


def test_ground_truth_conserves_mass_and_keeps_fisher_kpp_in_unit_interval(tmp_path):
    adv = load_task("advection-1d", **SMALL, cache_dir=tmp_path)  # periodic flux form
    np.testing.assert_allclose(adv.sum(-1), adv[:, :1].sum(-1).repeat(4, 1), atol=1e-10)
    kpp = load_task("diffusion-reaction-1d", **SMALL, cache_dir=tmp_path)
    assert kpp.min() >= 0.0
    assert kpp.max() <= 1.0
    assert (kpp[:, -1].mean(-1) > kpp[:, 0].mean(-1)).all()  # logistic growth, rho = 1


def test_metrics_of_exact_and_persistence_predictors_match_their_definition():
    rng = np.random.default_rng(0)
    test = rng.normal(size=(3, 5, 8))  # (S, T, X)

    def oracle(u):  # the true next frame of the test frame nearest to each state
        rows = []
        for v in u.double().numpy():
            s, t = np.unravel_index(np.abs(test[:, :4] - v).sum(-1).argmin(), (3, 4))
            rows.append(torch.as_tensor(test[s, t + 1], dtype=torch.float32))
        return torch.stack(rows)

    exact = evaluate(oracle, test)
    assert exact["nrmse"] < 1e-6
    assert exact["rollout_nrmse"] < 1e-6
    assert exact["stable_steps"] == 4
    still = evaluate(lambda u: u, test)
    rel = lambda e, q: np.mean(np.linalg.norm(e, axis=-1) / np.linalg.norm(q, axis=-1))  # noqa: E731
    one = np.mean([rel(test[:, t] - test[:, t - 1], test[:, t]) for t in range(1, 5)])
    roll = [rel(test[:, t] - test[:, 0], test[:, t]) for t in range(1, 5)]
    assert still["nrmse"] == pytest.approx(one, rel=1e-5)
    assert still["rollout_nrmse_curve"] == pytest.approx(roll, rel=1e-5)
    assert still["rollout_nrmse"] == pytest.approx(np.mean(roll), rel=1e-5)


def test_stable_steps_counts_steps_before_nrmse_exceeds_one():
    assert stable_steps([0.1, 0.5, 1.2, 0.3]) == 2
    assert stable_steps([0.1, float("nan")]) == 1
    assert stable_steps([0.2, 0.9]) == 2


@pytest.mark.parametrize("grid", [(16,), (8, 8)])
def test_learned_models_start_as_small_perturbations_of_the_identity_step(grid):
    u = torch.randn(2, *grid)
    for kind in MODELS:
        if kind == "stencil":
            continue
        step = build_model(kind, grid, scale=1e-3, seed=0)
        with torch.no_grad():
            out = step(u)
        assert out.shape == u.shape, kind
        assert (out - u).abs().max() < 0.05 * u.abs().max(), kind


@pytest.mark.parametrize("grid", [(16,), (8, 8)])
def test_stencil_model_is_a_convex_average_so_keeps_constant_fields(grid):
    for state_dependent in (False, True):
        step = build_model("stencil", grid, 1e-3, 0, radius=2, state_dependent=state_dependent)
        with torch.no_grad():
            out = step(torch.full((2, *grid), 0.7, dtype=torch.float64))  # weights sum to 1
        np.testing.assert_allclose(out.numpy(), 0.7, rtol=1e-12)


def test_geodesic_variant_is_mirror_symmetric_so_cannot_tell_upwind_from_downwind():
    """Distances are the only position signal, and mirroring the grid keeps them: the
    model commutes with the mirror (so it cannot learn advection's direction)."""
    u = torch.randn(3, 16)
    geodesic = build_model("gridformer-geodesic", (16,), scale=1.0, seed=0)
    relative = build_model("gridformer", (16,), scale=1.0, seed=0)
    with torch.no_grad():
        geodesic.net.distance.strength.copy_(torch.tensor([0.5, 1.0, -0.3, 2.0]))  # learned
        mirrored = geodesic(u.flip(-1)).flip(-1)
        np.testing.assert_allclose(mirrored.numpy(), geodesic(u).numpy(), atol=1e-5)
        for table in relative.net.parameters():  # a random relative table is not symmetric
            table.add_(0.3 * torch.randn_like(table))
        assert (relative(u.flip(-1)).flip(-1) - relative(u)).abs().max() > 1e-3
        shifted = relative(u.roll(4, -1)).roll(-4, -1)  # but it commutes with shifts
        np.testing.assert_allclose(shifted.numpy(), relative(u).numpy(), atol=1e-5)


def test_patch_tokens_are_contiguous_blocks_and_round_trip():
    u = torch.arange(2 * 8 * 8.0).reshape(2, 8, 8)
    tokens = _to_patches(u, 2)  # (B, 16, 4)
    assert tokens.shape == (2, 16, 4)
    np.testing.assert_array_equal(tokens[1, 5].numpy(), u[1, 2:4, 2:4].reshape(-1).numpy())
    np.testing.assert_array_equal(_from_patches(tokens, (8, 8), 2).numpy(), u.numpy())
    line = torch.arange(16.0).reshape(1, 16)
    np.testing.assert_array_equal(_to_patches(line, 4)[0, 2].numpy(), [8, 9, 10, 11])


def _fd_frame_stencil(task, data, cells, equation, **params):
    """FD update stencil of one saved frame of ``task`` (one solver step per frame here)."""
    from gridformer import solvers

    dims = ("y", "x") if data.ndim == 4 else ("x",)
    centres = (np.arange(cells) + 0.5) / cells
    u0 = xr.DataArray(data[:, 0], dims=("sample", *dims), coords=dict.fromkeys(dims, centres))
    assert inner_steps(task, u0) == 1  # so one frame is one FD step
    return solvers.update_stencil(equation, dt=0.01, spacing=1 / cells, **params).values


def _attention_row(model, inputs, cell):
    """The stencil model's attention row of ``cell`` ``(B, *grid)`` (its update stencil)."""
    row = model.attention(torch.as_tensor(inputs[:2]))[-1][:, 0, cell]  # (B, N)
    return row.reshape(2, *inputs.shape[1:]).numpy()


def test_stencil_recipe_recovers_the_upwind_fd_stencil_of_advection(tmp_path):
    n = 16
    data = load_task("advection-1d", samples=4, cells=n, frames=5, seed=2, cache_dir=tmp_path)
    fd = _fd_frame_stencil("advection-1d", data, n, "advection", velocity=0.4)  # (1-c, c, 0)
    expected = np.zeros(n)
    expected[7:10] = fd  # offsets -1, 0, +1 around cell 8
    inputs, targets = data[:, :-1].reshape(-1, n), data[:, 1:].reshape(-1, n)
    model = build_model("stencil", (n,), 1.0, 0, radius=1)
    result = train_stepper(model, "stencil", inputs, targets, steps=200, batch_size=4, seed=0,
                           device="cpu")
    # Adam (50 steps) then L-BFGS: the downstream and far weights go to ~0, which Adam alone
    # does not reach in this budget (a softmax weight 0 needs a logit at -inf)
    np.testing.assert_allclose(_attention_row(model, inputs, 8), expected[None].repeat(2, 0),
                               rtol=0, atol=1e-5)
    assert result["train_loss"] < 1e-6
    assert result["lbfgs_evaluations"] >= 1
    assert result["train_pair_evaluations"] <= 200 * 4  # the minibatch models' budget


@pytest.mark.slow
def test_stencil_recipe_recovers_the_anisotropic_heat_fd_stencil(tmp_path):
    n = 12
    data = load_task("heat-2d", samples=8, cells=n, frames=3, seed=2, cache_dir=tmp_path)
    fd = _fd_frame_stencil("heat-2d", data, n, "heat", diffusivity=(0.01, 0.04))  # (3, 3)
    expected = np.zeros((n, n))
    expected[5:8, 5:8] = fd  # around cell (6, 6)
    inputs, targets = data[:, :-1].reshape(-1, n, n), data[:, 1:].reshape(-1, n, n)
    model = build_model("stencil", (n, n), 1.0, 0, radius=1)
    train_stepper(model, "stencil", inputs, targets, steps=400, batch_size=8, seed=0,
                  device="cpu")
    row = _attention_row(model, inputs, 6 * n + 6)  # (2, n, n)
    np.testing.assert_allclose(row, expected[None].repeat(2, 0), rtol=0, atol=1e-5)
    assert fd[1, 2] != pytest.approx(fd[2, 1])  # anisotropic: x and y weights differ


def test_heat_2d_modes_decay_by_the_fd_amplification_factor(tmp_path):
    n = 8
    data = load_task("heat-2d", samples=2, cells=n, frames=4, seed=3, cache_dir=tmp_path)
    u0 = xr.DataArray(data[:, 0], dims=("sample", "y", "x"),
                      coords={"y": (np.arange(n) + 0.5) / n, "x": (np.arange(n) + 0.5) / n})
    inner = inner_steps("heat-2d", u0)
    dt = 0.01 / inner
    r_y, r_x = 0.01 * dt * n**2, 0.04 * dt * n**2  # d_a dt / h^2, (d_y, d_x) = (0.01, 0.04)
    k = 2 * np.pi * np.fft.fftfreq(n)  # k h per mode
    g = 1 + 2 * r_y * (np.cos(k)[:, None] - 1) + 2 * r_x * (np.cos(k)[None, :] - 1)  # (ky, kx)
    modes = np.fft.fft2(data)  # (S, T, ky, kx)
    big = np.abs(modes[:, 0]) > 1e-6 * np.abs(modes[:, 0]).max()
    assert big.sum() >= 4  # the initial states hold several modes
    for t in range(1, 4):
        expected = modes[:, 0] * g ** (inner * t)
        np.testing.assert_allclose(modes[:, t][big], expected[big], rtol=1e-9, atol=1e-12)
    assert not np.allclose(g[0, 1], g[1, 0])  # anisotropic: x decays faster than y


def test_burgers_2d_conserves_the_mean_and_keeps_the_maximum(monkeypatch):
    from gridformer.experiments import pde_tasks as module

    original = module.initial_conditions
    monkeypatch.setattr(module, "initial_conditions",
                        lambda *a: original(*a) + 0.3)  # nonzero mean
    u = generate("burgers-2d", 2, 8, 5, 0).values  # (S, T, Y, X)
    np.testing.assert_allclose(u.mean((-2, -1)), 0.3 + np.zeros((2, 5)), atol=1e-12)
    peak = np.abs(u).max((-2, -1))  # monotone scheme: max |u| does not grow
    assert (np.diff(peak, axis=1) <= 1e-12).all()
    assert np.abs(u[:, -1] - u[:, 0]).max() > 1e-2  # and the field did evolve


def test_high_fraction_is_the_energy_share_above_a_quarter_of_the_cells():
    x = (np.arange(16) + 0.5) / 16
    low, high = np.sin(2 * np.pi * x), np.sin(2 * np.pi * 6 * x)  # 6 > 16 / 4: high band
    assert high_fraction(np.stack([low])) == pytest.approx(0.0, abs=1e-20)
    assert high_fraction(np.stack([low + 0.5 * high])) == pytest.approx(0.25 / 1.25)
    y = np.sqrt(2) * np.cos(2 * np.pi * 5 * x)[:, None] * np.ones(16)  # high along y only
    assert high_fraction(np.stack([y, np.ones((16, 16))])) == pytest.approx(0.5)  # same energy


@pytest.mark.parametrize(("key", "value", "match"), [
    ("tasks", ["heat-3d"], "unknown task 'heat-3d'; valid: advection-1d, burgers-1d, "
                           "diffusion-reaction-1d, heat-2d, burgers-2d"),
    ("models", ["transformer"], "unknown model 'transformer'; valid: gridformer, "
                                "gridformer-patch, gridformer-geodesic, stencil, fno, unet, cnn"),
    ("n_test", 0, "n_test=0 is too small"),
    ("n_train", 0, "n_train=0 is too small"),
    ("frames", 2, "frames=2 is too small"),
    ("cells", 18, "cells=18 must be a multiple of 4"),
    ("cells_2d", 10, "cells_2d=10 must be a multiple of 4"),
])
def test_bad_settings_are_refused_before_training(key, value, match):
    with pytest.raises(ValueError, match=match):
        check_settings({**QUICK, key: value})


@pytest.mark.slow
def test_tiny_benchmark_reports_every_model_under_pdebench_keys(tmp_path):
    overrides = {"tasks": ["advection-1d"], "cells": 16, "cells_2d": 8, "frames": 4, "n_train": 2,
                 "n_test": 2, "steps": 3, "batch_size": 4, "cache_dir": str(tmp_path)}
    result = run_experiment(EXPERIMENT, seeds=1, overrides=overrides)
    m = result.metrics
    test = load_task("advection-1d", samples=4, cells=16, frames=4, seed=0,
                     cache_dir=tmp_path)[2:]
    persistence = evaluate(lambda u: u, test)
    assert m["advection-1d/persistence_rollout_nrmse"]["mean"] == pytest.approx(
        persistence["rollout_nrmse"])
    for model in MODELS:
        budget = m[f"advection-1d/{model}_train_pair_evaluations"]["mean"]
        if model == "stencil":  # L-BFGS (3 // 4 Adam steps): at least one evaluation
            assert m["advection-1d/stencil_lbfgs_evaluations"]["mean"] >= 1
            assert budget <= 3 * 4 + 6  # 6 pairs: the line search may finish one over
        else:
            assert m[f"advection-1d/{model}_train_steps"]["mean"] == 3
            assert budget == 3 * 4
        assert len(m[f"advection-1d/{model}_rollout_nrmse_curve"]["mean"]) == 3
        assert np.isfinite(m[f"advection-1d/{model}_nrmse"]["mean"])
    assert "rollout nRMSE" in result.verdict.text


def test_verdict_compares_gridformer_with_the_best_baseline_and_survives_divergence():
    from gridformer.experiments.pde_benchmark import verdict

    def summary(value):
        return {"mean": value, "sd": None, "values": [value]}

    settings = {"tasks": ["burgers-1d"], "models": ["gridformer", "fno", "cnn"]}
    metrics = {"burgers-1d/gridformer_rollout_nrmse": summary(0.05),
               "burgers-1d/fno_rollout_nrmse": summary(None),  # diverged: NaN -> None
               "burgers-1d/cnn_rollout_nrmse": summary(0.046)}
    assert verdict(metrics, settings).outcome == "holds"  # 0.05 <= 1.1 * 0.046
    metrics["burgers-1d/cnn_rollout_nrmse"] = summary(0.04)
    result = verdict(metrics, settings)
    assert result.outcome == "does not hold"
    assert "fno inf" in result.text
