"""pde-benchmark: cached FD tasks, PDEBench metrics of known predictors, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from gridformer.experiments import pde_tasks
from gridformer.experiments.harness import run_experiment
from gridformer.experiments.pde_benchmark import (
    EXPERIMENT,
    QUICK,
    build_model,
    check_settings,
    evaluate,
    stable_steps,
)
from gridformer.experiments.pde_tasks import load_task

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


def test_models_start_as_small_perturbations_of_the_identity_step():
    u = torch.randn(2, 16)
    for kind in ("gridformer", "fno", "unet", "cnn"):
        step = build_model(kind, 16, scale=1e-3, seed=0)
        with torch.no_grad():
            assert (step(u) - u).abs().max() < 0.05 * u.abs().max(), kind


@pytest.mark.parametrize(("key", "value", "match"), [
    ("tasks", ["heat-3d"], "unknown task 'heat-3d'; valid: advection-1d, burgers-1d"),
    ("models", ["transformer"], "unknown model 'transformer'; valid: gridformer, fno, unet"),
    ("n_test", 0, "n_test=0 is too small"),
    ("frames", 2, "frames=2 is too small"),
    ("cells", 18, "multiple of 4"),
])
def test_bad_settings_are_refused_before_training(key, value, match):
    with pytest.raises(ValueError, match=match):
        check_settings({**QUICK, key: value})


@pytest.mark.slow
def test_tiny_benchmark_reports_every_model_under_pdebench_keys(tmp_path):
    overrides = {"tasks": ["advection-1d"], "cells": 16, "frames": 4, "n_train": 2,
                 "n_test": 2, "steps": 3, "batch_size": 4, "cache_dir": str(tmp_path)}
    result = run_experiment(EXPERIMENT, seeds=1, overrides=overrides)
    m = result.metrics
    test = load_task("advection-1d", samples=4, cells=16, frames=4, seed=0,
                     cache_dir=tmp_path)[2:]
    persistence = evaluate(lambda u: u, test)
    assert m["advection-1d/persistence_rollout_nrmse"]["mean"] == pytest.approx(
        persistence["rollout_nrmse"])
    for model in ("gridformer", "fno", "unet", "cnn"):
        assert m[f"advection-1d/{model}_train_steps"]["mean"] == 3
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
