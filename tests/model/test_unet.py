"""UNet: shapes in 1-D/2-D, periodic shift equivariance, masked tokens never read."""

from __future__ import annotations

import pytest
import torch

from gridformer.model import UNet
from gridformer.tokenize import TokenLayout


@pytest.mark.parametrize("grid", [(16,), (8, 12)])
def test_field_head_keeps_one_value_per_token(grid):
    layout = TokenLayout.for_grid(grid, periodic=True)
    model = UNet(1, 2, width=4, ndim=len(grid))
    out = model(torch.randn(3, layout.n_tokens, 1), layout).prediction
    assert out.shape == (3, layout.n_tokens, 2)


def test_shift_by_pooling_factor_commutes_on_periodic_grid():
    torch.manual_seed(0)
    layout = TokenLayout.for_grid((8, 12), periodic=True)
    model = UNet(1, 1, width=4, levels=2).double()
    u = torch.randn(2, 8, 12, dtype=torch.float64)
    run = lambda f: model(f.reshape(2, -1, 1), layout).prediction.reshape(2, 8, 12)  # noqa: E731
    shifted = torch.roll(u, shifts=(4, -4), dims=(1, 2))
    torch.testing.assert_close(run(shifted), torch.roll(run(u), shifts=(4, -4), dims=(1, 2)))
    # a non-periodic grid sees the edges: the same shift no longer commutes
    open_layout = TokenLayout.for_grid((8, 12), periodic=False)
    a = model(shifted.reshape(2, -1, 1), open_layout).prediction.reshape(2, 8, 12)
    b = torch.roll(model(u.reshape(2, -1, 1), open_layout).prediction.reshape(2, 8, 12),
                   shifts=(4, -4), dims=(1, 2))
    assert (a - b).abs().max() > 1e-6


def test_masked_tokens_are_never_read():
    torch.manual_seed(0)
    layout = TokenLayout.for_grid((16,), periodic=True)
    model = UNet(1, 1, width=4, ndim=1)
    tokens = torch.randn(1, 16, 1)
    mask = torch.ones(1, 16, dtype=torch.bool)
    mask[0, 5] = False
    changed = tokens.clone()
    changed[0, 5] = 1e3
    torch.testing.assert_close(model(tokens, layout, mask=mask).prediction,
                               model(changed, layout, mask=mask).prediction)


def test_grid_not_divisible_by_pooling_is_refused():
    layout = TokenLayout.for_grid((10,), periodic=True)
    with pytest.raises(ValueError, match=r"multiples of 4; got patch_grid_shape=\(10,\)"):
        UNet(1, 1, ndim=1)(torch.randn(1, 10, 1), layout)
    with pytest.raises(ValueError, match="levels=0 must be an integer >= 1"):
        UNet(1, 1, levels=0)
