import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.analysis import attention_stencil, compare_stencils, effective_stencil, rollout
from gridformer.model import FNO, TINY, GridFormer, LocalCNN

from ._helpers import apply_stencil, heat_stencil, make_layout, smooth_fields, stencil_attention


def _stencil_fn(weights):
    def step(u: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(u)
        for offset, w in weights.items():
            dims = tuple(range(u.ndim - len(offset), u.ndim))
            out = out + w * torch.roll(u, tuple(-o for o in offset), dims=dims)
        return out

    return step


def _as_reference(weights, dims=("dy", "dx"), radius=2):
    axes = [np.arange(-radius, radius + 1)] * len(dims)
    ref = xr.DataArray(np.zeros([2 * radius + 1] * len(dims)), dims=dims,
                       coords=dict(zip(dims, axes, strict=True)))
    for offset, w in weights.items():
        ref.loc[dict(zip(dims, offset, strict=True))] = w
    return ref


def test_linear_stencil_model_gives_its_stencil():
    weights = heat_stencil(0.2, 0.05)
    u = smooth_fields(2, (8, 10))
    eff = effective_stencil(_stencil_fn(weights), u, n_positions=5, dtype=torch.float64)
    assert eff.dims == ("dy", "dx")
    cmp = compare_stencils(eff, _as_reference(weights))
    assert cmp.max_abs_error < 1e-12
    np.testing.assert_allclose(eff.spread.values, 0.0, atol=1e-12)
    assert eff.attrs["n_positions"] == 10


def test_negative_weights_lax_wendroff_1d():
    c = 0.5  # Courant number; Lax-Wendroff weights (c(1+c)/2, 1-c^2, -c(1-c)/2)
    weights = {(-1,): c * (1 + c) / 2, (0,): 1 - c**2, (1,): -c * (1 - c) / 2}
    eff = effective_stencil(_stencil_fn(weights), smooth_fields(1, (16,)), dtype=torch.float64,
                            radius=2)
    assert eff.dims == ("dx",)
    assert float(eff.sel(dx=1)) == pytest.approx(-0.125, abs=1e-12)
    assert eff.attrs["mass_outside_radius"] == pytest.approx(0.0, abs=1e-12)


def test_convolution_matches_its_kernel():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=True)
    kernel = torch.arange(9.0).reshape(3, 3) / 36
    with torch.no_grad():
        conv.weight.copy_(kernel[None, None])
        conv.bias.fill_(0.3)
    eff = effective_stencil(lambda u: conv(u[:, None])[:, 0], smooth_fields(1, (7, 7)),
                            radius=1)
    # cross-correlation: weight at (dy, dx) is kernel[dy + 1, dx + 1]
    np.testing.assert_allclose(eff.values, kernel.numpy(), atol=1e-6)


def test_nonlinear_model_matches_numerical_jacobian():
    def burgers_like(u: torch.Tensor) -> torch.Tensor:  # u - 0.1 u (u - u_left)
        return u - 0.1 * u * (u - torch.roll(u, 1, dims=-1))

    u = smooth_fields(1, (12,), seed=3)
    eff = effective_stencil(burgers_like, u, dtype=torch.float64, n_positions=12)
    left = np.roll(u[0], 1)
    # d/du_{i-1} = 0.1 u_i, d/du_i = 1 - 0.1 (2 u_i - u_{i-1})
    assert float(eff.sel(dx=-1)) == pytest.approx(np.mean(0.1 * u[0]), abs=1e-12)
    assert float(eff.sel(dx=0)) == pytest.approx(np.mean(1 - 0.1 * (2 * u[0] - left)), abs=1e-12)
    assert float(eff.spread.sel(dx=-1)) == pytest.approx(np.std(0.1 * u[0]), abs=1e-12)


def test_effective_equals_attention_stencil_for_attention_model():
    layout = make_layout((6, 6))
    weights = heat_stencil(0.1, 0.2)
    attention = stencil_attention(weights, layout)[0, 0].float()  # (N, N)

    def model(u: torch.Tensor) -> torch.Tensor:  # values = u, one softmax-like row per query
        return (u.reshape(u.shape[0], -1) @ attention.T).reshape(u.shape)

    u = smooth_fields(3, (6, 6))
    eff = effective_stencil(model, u)
    att = attention_stencil(attention[None, None], layout)
    assert compare_stencils(eff, att).max_abs_error < 1e-6
    np.testing.assert_allclose(apply_stencil(u, weights),
                               model(torch.as_tensor(u).float()).numpy(), atol=1e-6)


def test_dataarray_input_and_errors():
    u = xr.DataArray(smooth_fields(2, (5, 6)), dims=("sample", "lat", "lon"))
    eff = effective_stencil(lambda v: 2 * v, u)
    assert eff.dims == ("dlat", "dlon")
    assert float(eff.sel(dlat=0, dlon=0)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"model_fn must map \(B, \*grid\) to the same shape; "
                                         r"got \(32, 5, 6\) -> \(32, 5\)"):
        effective_stencil(lambda v: v.sum(-1), u)
    with pytest.raises(ValueError, match=r"u must have a leading batch axis, shape \(B, \*grid\); "
                                         r"got \(4,\)"):
        effective_stencil(lambda v: v, np.zeros(4))
    with pytest.raises(ValueError, match=r"n_positions=0 must be >= 1"):
        effective_stencil(lambda v: v, u, n_positions=0)


def test_half_period_offset_wraps_like_the_layout():
    """On an even periodic axis, +L/2 and -L/2 are one cell; both stencils put it at -L/2."""
    layout = make_layout((6,), dims=("x",))
    shift = stencil_attention({(-3,): 1.0}, layout)  # row q: all weight on key q - 3 = q + 3
    att = attention_stencil(shift, layout)
    eff = effective_stencil(lambda u: torch.roll(u, -3, dims=-1), smooth_fields(1, (6,)))
    assert list(eff.dx.values) == list(att.dx.values) == [-3, -2, -1, 0, 1, 2]
    assert float(att.sel(dx=-3)) == pytest.approx(1.0, abs=1e-12)
    assert float(eff.sel(dx=-3)) == pytest.approx(1.0, abs=1e-12)


def _cell_model(kind):
    torch.manual_seed(0)
    if kind == "cnn":
        return LocalCNN(1, 1, hidden=4, layers=2, kernel_size=3).eval()
    if kind == "fno":
        return FNO(1, 1, width=4, modes=3, layers=1).eval()
    return GridFormer(dataclasses.replace(TINY, max_relative_offset=2)).eval()


@pytest.mark.parametrize("kind", ["cnn", "fno", "gridformer"])
def test_float64_fields_through_float32_models(kind):
    """Effective stencils and rollouts feed the model float64 tokens when asked: the model casts
    them, so the result is that of float32 input (to float32 rounding of the field)."""
    layout = make_layout((6, 6))
    model = _cell_model(kind)

    def step(u):  # (B, 6, 6) -> (B, 6, 6) through cell tokens (B, 36, 1)
        return model(u.reshape(u.shape[0], -1, 1), layout).prediction.reshape(u.shape)

    u = smooth_fields(2, (6, 6))
    eff64 = effective_stencil(step, u, n_positions=4, dtype=torch.float64)
    eff32 = effective_stencil(step, u, n_positions=4, dtype=torch.float32)
    np.testing.assert_allclose(eff64.values, eff32.values, atol=1e-5)
    assert np.abs(eff32.values).max() > 1e-3
    traj64 = rollout(step, u, 3, dtype=torch.float64)
    traj32 = rollout(step, u, 3, dtype=torch.float32)
    assert traj64.shape == (4, 2, 6, 6)
    np.testing.assert_allclose(traj64, traj32, atol=1e-5)
