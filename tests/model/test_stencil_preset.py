"""STENCIL preset: one attention layer with a hand-set bias table IS a finite-difference update.

The FD updates are computed independently with numpy ``np.roll``.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from gridformer.model import STENCIL, GridFormer
from gridformer.tokenize import TokenLayout

NEG = -1e4  # exp(NEG) underflows to exactly 0: keys outside the stencil get weight 0


def stencil_model(weights: dict[tuple[int, ...], float], ndim: int = 2) -> GridFormer:
    """STENCIL model whose linear maps are identities and whose attention row is ``weights``."""
    model = GridFormer(dataclasses.replace(STENCIL, ndim=ndim)).double()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.fill_(1.0)
                module.bias.zero_()
        table = model.relative.table
        table.fill_(NEG)
        for offset, w in weights.items():
            table[0, model.relative.offset_to_column(offset)] = math.log(w)
    return model


def run(model: GridFormer, u: np.ndarray, periodic: bool = True) -> np.ndarray:
    layout = TokenLayout.for_grid(u.shape, patch_size=1, periodic=periodic)
    tokens = torch.from_numpy(u.reshape(1, -1, 1))  # (1, N, 1) float64
    with torch.no_grad():
        out = model(tokens, layout)
    fast = out.prediction.numpy().reshape(u.shape)
    with torch.no_grad():
        slow = model(tokens, layout, return_attention=True).prediction.numpy().reshape(u.shape)
    np.testing.assert_allclose(fast, slow, atol=1e-12, rtol=0)
    return fast


def test_heat_5_point_stencil_reproduces_fd_update():
    r = 0.2  # kappa * dt / dx**2 (stable: <= 0.25)
    model = stencil_model({(0, 0): 1 - 4 * r, (1, 0): r, (-1, 0): r, (0, 1): r, (0, -1): r})
    u = np.random.default_rng(0).normal(size=(7, 9))
    lap = (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1) - 4 * u)
    expected = u + r * lap
    np.testing.assert_allclose(run(model, u), expected, atol=1e-12, rtol=0)


def test_upwind_advection_stencil_direction():
    # u_t + c u_x = 0, c > 0, upwind: u_new[x] = (1 - nu) u[x] + nu u[x - 1]: offset dx = -1
    nu = 0.3
    model = stencil_model({(0, 0): 1 - nu, (0, -1): nu})
    u = np.random.default_rng(1).normal(size=(5, 8))
    expected = (1 - nu) * u + nu * np.roll(u, 1, axis=1)
    np.testing.assert_allclose(run(model, u), expected, atol=1e-12, rtol=0)


def test_one_dimensional_heat_stencil():
    r = 0.4
    model = stencil_model({(0,): 1 - 2 * r, (1,): r, (-1,): r}, ndim=1)
    u = np.random.default_rng(2).normal(size=(16,))
    expected = u + r * (np.roll(u, 1) + np.roll(u, -1) - 2 * u)
    np.testing.assert_allclose(run(model, u), expected, atol=1e-12, rtol=0)


def test_stencil_attention_row_is_the_stencil():
    r = 0.1
    weights = {(0, 0): 1 - 4 * r, (1, 0): r, (-1, 0): r, (0, 1): r, (0, -1): r}
    model = stencil_model(weights)
    layout = TokenLayout.for_grid((6, 6), patch_size=1, periodic=True)
    tokens = torch.zeros(1, 36, 1, dtype=torch.float64)
    w = model(tokens, layout, return_attention=True).attention[0][0, 0]  # (N, N)
    offsets = layout.offsets()
    for key in range(36):
        off = tuple(offsets[14, key].tolist())
        assert w[14, key].item() == pytest.approx(weights.get(off, 0.0), abs=1e-15)


def test_relative_content_makes_the_stencil_depend_on_the_local_state():
    model = GridFormer(dataclasses.replace(STENCIL, relative_content=True)).double()
    with torch.no_grad():
        model.blocks[0].attn.relative.normal_()
    layout = TokenLayout.for_grid((5, 5), patch_size=1, periodic=True)
    low = torch.full((1, 25, 1), -1.0, dtype=torch.float64)
    high = torch.full((1, 25, 1), 2.0, dtype=torch.float64)
    w_low = model(low, layout, return_attention=True).attention[0]
    w_high = model(high, layout, return_attention=True).attention[0]
    assert not torch.allclose(w_low, w_high)  # q_i . R[offset] changes with u_i
    plain = GridFormer(STENCIL).double()
    w1 = plain(low, layout, return_attention=True).attention[0]
    w2 = plain(high, layout, return_attention=True).attention[0]
    torch.testing.assert_close(w1, w2)  # without it the stencil is fixed


def test_relative_key_content_makes_the_weight_depend_on_the_key_state():
    """k_j . S[offset]: the weight of a neighbour follows the neighbour's own value."""
    cfg = dataclasses.replace(STENCIL, ndim=1, relative_key_content=True, nonlinear_qk=True)
    model = GridFormer(cfg).double()
    with torch.no_grad():
        model.blocks[0].attn.relative_key.normal_()
    layout = TokenLayout.for_grid((7,), patch_size=1, periodic=True)
    u = torch.zeros(1, 7, 1, dtype=torch.float64)
    w0 = model(u, layout, return_attention=True).attention[0][0, 0, 3]  # query 3, (N,)
    u[0, 2, 0] = 1.5  # change only the left neighbour of query 3
    w1 = model(u, layout, return_attention=True).attention[0][0, 0, 3]
    assert not torch.allclose(w0[2], w1[2])
    # the logits of the other keys are unchanged: their weights keep their ratios
    torch.testing.assert_close(w0[[3, 4]] / w0[3], w1[[3, 4]] / w1[3])
    assert model.blocks[0].attn.feature is not None  # nonlinear_qk: tanh feature layer
