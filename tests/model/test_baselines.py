"""Baselines: same call signature, stated receptive field, periodic padding, FNO shapes."""

import pytest
import torch

from gridformer.model import FNO, LocalCNN
from gridformer.tokenize import TokenLayout

B, D, OUT = 2, 5, 3


def test_local_cnn_shapes_and_receptive_field():
    layout = TokenLayout.for_grid((7, 9), patch_size=1, periodic=False)
    model = LocalCNN(D, OUT, hidden=8, layers=2, kernel_size=3).eval()
    assert model.receptive_field == 5
    tokens = torch.randn(B, 63, D)
    base = model(tokens, layout).prediction
    assert base.shape == (B, 63, OUT)
    bumped = tokens.clone()
    bumped[:, 3 * 9 + 4] += 10.0  # token (3, 4)
    changed = (model(bumped, layout).prediction - base).abs().sum((0, 2)).reshape(7, 9) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.min() >= 1
    assert rows.max() <= 5
    assert cols.min() >= 2
    assert cols.max() <= 6
    assert changed[3, 4]


def test_local_cnn_pads_circularly_on_periodic_dims():
    layout = TokenLayout.for_grid((6, 8), patch_size=1, periodic=(False, True))
    model = LocalCNN(1, 1, hidden=4, layers=1, kernel_size=3).eval()
    tokens = torch.zeros(1, 48, 1)
    tokens[0, 2 * 8 + 0] = 1.0  # (2, 0): its x-neighbour across the seam is (2, 7)
    out = model(tokens, layout).prediction.reshape(6, 8)
    base = model(torch.zeros(1, 48, 1), layout).prediction.reshape(6, 8)
    diff = (out - base).abs() > 0
    assert diff[2, 7]
    assert diff[1, 7]
    assert not diff[0, 7]
    assert not diff[5, 0]


@pytest.mark.parametrize("shape", [(8, 12), (16,)])
def test_fno_shapes(shape):
    layout = TokenLayout.for_grid(shape, patch_size=1, periodic=True)
    model = FNO(D, OUT, width=6, modes=3, layers=2, ndim=len(shape))
    out = model(torch.randn(B, layout.n_tokens, D), layout)
    assert out.prediction.shape == (B, layout.n_tokens, OUT)
    out.prediction.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fno_is_translation_equivariant():
    layout = TokenLayout.for_grid((8, 8), patch_size=1, periodic=True)
    model = FNO(1, 1, width=4, modes=3, layers=2).eval()
    u = torch.randn(1, 8, 8, 1)
    a = model(u.reshape(1, 64, 1), layout).prediction.reshape(8, 8)
    b = model(torch.roll(u, (2, 3), (1, 2)).reshape(1, 64, 1), layout).prediction.reshape(8, 8)
    torch.testing.assert_close(torch.roll(a, (2, 3), (0, 1)), b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [LocalCNN, FNO])
def test_index_head_and_bad_tokens(cls):
    layout = TokenLayout.for_grid((4, 6), patch_size=1, periodic=True)
    model = cls(D, OUT, head="index")
    assert model(torch.randn(B, 24, D), layout).prediction.shape == (B, OUT)
    with pytest.raises(ValueError, match=r"do not have in_features=5"):
        model(torch.randn(B, 24, 4), layout)
    with pytest.raises(ValueError, match=r"head='seg' is not one of"):
        cls(D, OUT, head="seg")
