"""Baselines: same call signature, stated receptive field, periodic padding, FNO shapes."""

import dataclasses

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


def _build(cls, head):
    torch.manual_seed(0)
    if cls is LocalCNN:
        return LocalCNN(D, OUT, hidden=6, layers=3, kernel_size=3, head=head).eval()
    return FNO(D, OUT, width=6, modes=3, layers=2, head=head).eval()


@pytest.mark.parametrize("head", ["field", "index"])
@pytest.mark.parametrize("cls", [LocalCNN, FNO])
def test_masked_tokens_are_never_read(cls, head):
    """Whatever masked tokens hold (1e3, NaN), no output changes: not a valid token's output,
    not a masked token's own output, not the pooled value."""
    layout = TokenLayout.for_grid((6, 8), patch_size=1, periodic=True)
    model = _build(cls, head)
    tokens = torch.randn(B, 48, D)
    mask = torch.ones(B, 48, dtype=torch.bool)
    mask[0, [3, 20, 21]] = False
    mask[1, 40] = False
    changed = tokens.clone()
    changed[0, [3, 20]] = 1e3
    changed[0, 21] = float("nan")
    changed[1, 40] = -1e3
    with torch.no_grad():
        a = model(tokens, layout, mask=mask).prediction
        b = model(changed, layout, mask=mask).prediction
        unmasked = model(changed, layout).prediction
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(unmasked[1], a[1], atol=1e-3)  # unmasked, the values are read


@pytest.mark.parametrize("cls", [LocalCNN, FNO])
def test_layout_valid_masks_like_mask(cls):
    layout = TokenLayout.for_grid((6, 8), patch_size=1, periodic=True)
    model = _build(cls, "field")
    tokens = torch.randn(B, 48, D)
    valid = torch.ones(B, 48, dtype=torch.bool)
    valid[:, 10] = False
    invalid_layout = dataclasses.replace(layout, valid=valid)
    with torch.no_grad():
        by_layout = model(tokens, invalid_layout).prediction
        by_mask = model(tokens, layout, mask=valid).prediction
    torch.testing.assert_close(by_layout, by_mask, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"samples \[1\] have no valid token"):
        model(tokens, layout, mask=torch.stack([valid[0], torch.zeros(48, dtype=torch.bool)]))


def test_pooled_head_averages_valid_cells_only():
    """A 1x1 identity LocalCNN with an identity pool head returns the mean of the valid cells."""
    layout = TokenLayout.for_grid((3, 4), patch_size=1, periodic=False)
    model = LocalCNN(1, 1, layers=1, kernel_size=1, head="index")
    with torch.no_grad():
        model.convs[0].weight.fill_(1.0)
        model.convs[0].bias.zero_()
        model.pool_head.weight.fill_(1.0)
        model.pool_head.bias.zero_()
    tokens = torch.arange(12.0).reshape(1, 12, 1)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, [1, 5, 6]] = True
    with torch.no_grad():
        out = model(tokens, layout, mask=mask).prediction
    assert out.item() == pytest.approx((1 + 5 + 6) / 3)


@pytest.mark.parametrize("cls", [LocalCNN, FNO])
def test_float64_tokens_into_float32_model(cls):
    layout = TokenLayout.for_grid((6, 8), patch_size=1, periodic=True)
    model = _build(cls, "field")
    tokens = torch.randn(B, 48, D, dtype=torch.float64)
    with torch.no_grad():
        out = model(tokens, layout).prediction
        ref = model(tokens.float(), layout).prediction
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=0, rtol=0)
    with pytest.raises(TypeError, match=r"tokens must be a floating-point torch.Tensor \(B, N, "
                                        r"D\), got torch.int64"):
        model(tokens.long(), layout)
