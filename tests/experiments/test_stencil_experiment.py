"""End-to-end physics of the stencil experiment on small grids (FD ground truth from solvers)."""

import numpy as np
import pytest
import torch

from gridformer.experiments import run_stencil_experiment
from gridformer.experiments.stencil_data import random_fields
from gridformer.experiments.stencil_models import build_field_model, fit_field_model


@pytest.mark.slow
def test_heat_attention_is_the_fd_stencil_16x16():
    result = run_stencil_experiment("heat", grid=(16, 16), diffusivity=(0.6, 0.3), dt=0.4,
                                    rollout_steps=30, n_rollout=2, seed=0)
    m = result.metrics()
    assert m["max_abs_error"] <= 1e-3
    assert m["mass_in_support"] >= 0.999
    assert m["effective_max_abs_error"] <= 1e-3
    assert m["rollout_rel_l2"] <= 1e-3
    assert len(m["rollout_rel_l2_curve"]) == 31
    # the centre weight 1 - 2 (r_y + r_x) = 0.28, and the order conditions hold
    assert float(result.learned_stencil.sel(dy=0, dx=0)) == pytest.approx(0.28, abs=1e-3)
    assert result.comparison.max_moment_error <= 1e-2


def test_upwind_advection_1d_is_learned():
    result = run_stencil_experiment("advection", grid=(16,), velocity=0.5, dt=0.4,
                                    rollout_steps=50, n_rollout=2, seed=1)
    m = result.metrics()
    assert m["fd_stencil"]["offsets"] == [[-1], [0]]
    assert m["fd_stencil"]["weights"] == pytest.approx([0.2, 0.8])
    assert m["max_abs_error"] <= 1e-3
    assert m["mass_in_support"] >= 0.999
    assert m["rollout_rel_l2"] <= 1e-3
    # first moment = -c (advection by 0.2 cells per step)
    assert result.comparison.moment1_error[0] == pytest.approx(0.0, abs=1e-3)


def test_bad_input_errors_are_clear():
    with pytest.raises(ValueError, match=r"burgers is nonlinear: its update has no fixed "
                                         r"finite-difference stencil.*effective \(Jacobian\)"):
        run_stencil_experiment("burgers", grid=(16,), compare_fd=True)
    with pytest.raises(ValueError, match=r"grid=\(4, 4\) is too small for the heat stencil of "
                                         r"radius 1: every dim needs >= 5 cells"):
        run_stencil_experiment("heat", grid=(4, 4))
    with pytest.raises(ValueError, match=r"equation='navier_stokes' is not supported by the "
                                         r"stencil experiment; choose one of \['heat', "):
        run_stencil_experiment("navier_stokes", grid=(16, 16))
    with pytest.raises(ValueError, match=r"model='mlp' is not one of \['stencil', 'gridformer', "
                                         r"'cnn', 'fno'\]"):
        run_stencil_experiment("heat", grid=(16, 16), model="mlp")
    # unstable: the solver's error passes through
    with pytest.raises(ValueError, match=r"dt=2\.0 is unstable for heat"):
        run_stencil_experiment("heat", grid=(16, 16), dt=2.0, rollout_steps=2)


def test_model_without_attention_asked_for_attention():
    cnn = build_field_model("cnn", (8, 8))
    with pytest.raises(ValueError, match=r"model LocalCNN has no attention to read a stencil "
                                         r"from; use gridformer\.analysis\.effective_stencil"):
        cnn.attention(torch.zeros(1, 8, 8))


@pytest.mark.parametrize("kind", ["gridformer", "cnn", "fno"])
def test_field_models_take_float64_fields(kind):
    """Fields of float64 data go through a float32 model: cast in, the result cast back to the
    fields' dtype, equal to the float32 path."""
    model = build_field_model(kind, (8, 8)).eval()
    u = torch.as_tensor(random_fields(2, (8, 8), seed=0))  # float64
    with torch.no_grad():
        out = model(u)
        ref = model(u.float())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), ref, atol=1e-6, rtol=0)


def test_lbfgs_beats_adam_on_the_same_budget():
    """The prototype's finding: softmax stencils need L-BFGS to push off-support mass to 0."""
    from gridformer import solvers

    x = random_fields(2, (12,), seed=0)
    fd = solvers.update_stencil("heat", dt=0.4, spacing=1.0, diffusivity=0.5)
    y = sum(float(w) * np.roll(x, -int(o), axis=-1) for o, w in zip(fd.dx.values, fd.values,
                                                                     strict=True))
    losses = {}
    for optimizer, steps in (("lbfgs", 10), ("adam", 200)):
        model = build_field_model("stencil", (12,))
        losses[optimizer] = fit_field_model(model, x, y, optimizer=optimizer, steps=steps)["loss"]
    assert losses["lbfgs"] < 1e-6
    assert losses["lbfgs"] < 1e-3 * losses["adam"]


def test_burgers_attention_leans_upwind_1d():
    result = run_stencil_experiment("burgers", grid=(32,), viscosity=0.05, dt=0.4,
                                    rollout_steps=10, n_rollout=2, baselines=(), seed=0)
    assert result.fd_stencil is None
    assert result.comparison is None
    assert result.upwind_consistency >= 0.9
    # the rollout stays bounded: a softmax row is a convex combination (maximum principle)
    assert np.abs(result.prediction).max() <= np.abs(result.prediction[0]).max() + 1e-6
    m = result.metrics()
    assert m["max_abs_error"] is None
    assert m["upwind_consistency"] == result.upwind_consistency


def test_burgers_stencil_logits_depend_on_both_states_and_fit():
    """Upwind Burgers' weight ~ (u_i + u_j) needs logits nonlinear in both ends' states; a logit
    linear in u_i alone left ~16% of the step's change unfitted (0.2 on this 1-D problem)."""
    from gridformer.experiments.stencil_data import fd_pairs

    x = random_fields(4, (32,), seed=0, amplitude=1.0)
    inputs, targets = fd_pairs("burgers", x, dt=0.4, spacing=(1.0,),
                               params={"viscosity": 0.05}, steps_per_field=2)
    model = build_field_model("stencil", (32,), state_dependent=True)
    loss = fit_field_model(model, inputs, targets, steps=8)["loss"]
    assert loss < 0.03
    # still a stencil: softmax rows, so the prediction is a convex combination of the inputs
    u = torch.as_tensor(inputs)
    with torch.no_grad():
        out = model(u)
    assert out.max() <= u.max() + 1e-9
    assert out.min() >= u.min() - 1e-9


@pytest.mark.slow
def test_burgers_stencil_rolls_out_better_than_the_cnn_32x32():
    """The default Burgers problem: the one-head stencil beats the LocalCNN trained on the same
    data with the same L-BFGS budget (measured 0.118 vs 0.156 at 100 steps with torch 2.13.0 on
    the 2-core CPU machine; an earlier environment gave 0.093 vs 0.212, so only the order is
    asserted, not a margin)."""
    result = run_stencil_experiment("burgers", grid=(32, 32), viscosity=0.05, dt=0.4, seed=0,
                                    baselines=("cnn",))
    m = result.metrics()
    cnn = m["baselines"]["cnn"]["rollout_rel_l2"]
    assert m["rollout_rel_l2"] <= 0.15
    assert m["rollout_rel_l2"] < cnn
    assert m["upwind_consistency"] >= 0.9
