"""Position encodings: resampling, sincos table, frame code, relative index."""

import math

import pytest
import torch

from gridformer.model import frame_embedding, relative_index, resample_absolute, sincos_embedding
from gridformer.model.position import RelativePositionBias


def test_resample_is_identity_on_same_grid():
    table = torch.randn(3, 5, 7)
    assert resample_absolute(table, (3, 5)) is table


def test_resample_non_square_each_axis_on_its_own():
    # a table varying along width only stays constant along height after resampling
    row = torch.linspace(-1, 1, 6)
    table = row.reshape(1, 6, 1).expand(4, 6, 2).contiguous()  # (4, 6, C=2)
    out = resample_absolute(table, (9, 11))
    assert out.shape == (9, 11, 2)
    torch.testing.assert_close(out, out[:1].expand_as(out))
    torch.testing.assert_close(out[0, :, 0], out[0, :, 1])


def test_resample_is_pure_function_of_shapes():
    table = torch.randn(4, 6, 3)
    a = resample_absolute(table, (8, 5))
    b = resample_absolute(table, (8, 5))
    torch.testing.assert_close(a, b)
    assert resample_absolute(torch.randn(10, 3), (15,)).shape == (15, 3)


def test_resample_rejects_other_dimensionality():
    with pytest.raises(ValueError, match=r"2-D reference_grid=\(4, 6\) and cannot be resampled "
                                         r"to a 1-D layout with patch_grid_shape=\(12,\)"):
        resample_absolute(torch.randn(4, 6, 3), (12,))


def test_sincos_shape_and_values():
    table = sincos_embedding((3, 4), 10)  # 2 frequencies per axis, 2 zero-padded channels
    assert table.shape == (12, 10)
    assert torch.all(table[:, 8:] == 0)
    torch.testing.assert_close(table[0, :8], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))


def test_relative_index_rounds_to_patches_and_clips():
    offsets = torch.tensor([[[0, 0], [0, 2], [4, -6], [-20, 0]]])  # (1, 4, 2) cells
    index = relative_index(offsets, (2, 2), max_offset=2)
    bias = RelativePositionBias(heads=1, ndim=2, max_offset=2)
    col = bias.offset_to_column
    assert index.tolist() == [[col((0, 0)), col((0, 1)), col((2, -2)), col((-2, 0))]]


def test_frame_embedding_is_the_sine_cosine_of_the_frame_index():
    dim = 8  # 4 frequencies 10000^(-k/4): sin in channels 0..3, cos in 4..7
    code = frame_embedding([0, 0, 1, 1, 2, 2], dim)  # two tokens per frame
    assert code.shape == (6, dim)
    for row, frame in enumerate([0, 0, 1, 1, 2, 2]):
        for k in range(4):
            angle = frame * 10000.0 ** (-k / 4)
            assert float(code[row, k]) == pytest.approx(math.sin(angle), abs=1e-6)
            assert float(code[row, 4 + k]) == pytest.approx(math.cos(angle), abs=1e-6)
    assert torch.equal(code[0], code[1])
    assert not torch.equal(code[1], code[2])


def _layout(kind: str):
    """Layouts for the unclipped index: 2-D (patches per axis, periodic or not) and space-time."""
    import numpy as np
    import xarray as xr

    from gridformer.tokenize import PatchTokenizer, TokenLayout

    if kind.startswith("2d"):
        grid, patch, periodic = {"2d-patch2": ((8, 12), 2, False),
                                 "2d-periodic": ((10, 10), 1, True),
                                 "2d-patch3x2": ((9, 14), (3, 2), (False, True))}[kind]
        return TokenLayout.for_grid(grid, patch_size=patch, periodic=periodic)
    field = xr.DataArray(np.zeros((7, 12, 12), dtype="float32"), dims=("time", "y", "x"))
    time_patch, patch = {"3d-frames": (1, (2, 3)), "3d-time-patch2": (2, 2)}[kind]
    return PatchTokenizer(patch_size=patch, time_patch=time_patch).encode(field)[1]


@pytest.mark.parametrize(("kind", "max_offset"),
                         [("2d-patch2", 2), ("2d-periodic", 3), ("2d-periodic", 8),
                          ("2d-patch3x2", 1), ("3d-frames", 1), ("3d-time-patch2", 2)])
def test_unclipped_gather_is_the_clipped_bias_with_the_same_gradient(kind, max_offset):
    """``table[:, fold][:, unclipped index]`` is ``table[:, relative_index]``, value and table
    gradient, whether offsets reach past ``max_offset`` (clipped) or not (``2d-periodic`` at
    8), in 2-D with patches per axis and in space-time (frames first); the unclipped table
    has one column per offset present, ``prod_a (2 R_a + 1)``."""
    from gridformer.model.position import _patch_steps, unclipped_relative_index

    layout = _layout(kind)
    offsets = torch.as_tensor(layout.offsets())  # (N, N, ndim)
    ndim = offsets.shape[-1]
    patch = tuple(layout.patch_size)
    index = relative_index(offsets, patch, max_offset)
    wide, fold = unclipped_relative_index(offsets, patch, max_offset)
    reach = _patch_steps(offsets, patch).reshape(-1, ndim).abs().amax(0)  # (ndim,)
    assert len(fold) == math.prod(2 * int(r) + 1 for r in reach)
    assert torch.equal(fold[wide], index)  # every pair lands on its clipped column
    assert len(torch.unique(wide)) == len(torch.unique(_patch_steps(offsets, patch).reshape(
        -1, ndim), dim=0))  # one column per distinct offset
    torch.manual_seed(0)
    bias = RelativePositionBias(heads=3, ndim=ndim, max_offset=max_offset).double()
    with torch.no_grad():
        bias.table.normal_()
    no_bias = bias.table.shape[1]
    pad = (1, 0, 1, 0)  # a class token first: its row and column get no bias
    plain_index = torch.nn.functional.pad(index, pad, value=no_bias)
    spread_index = torch.nn.functional.pad(wide, pad, value=len(fold))
    spread_fold = torch.nn.functional.pad(fold, (0, 1), value=no_bias)
    weights = torch.randn(3, *plain_index.shape, dtype=torch.float64)
    results = []
    for args in ((plain_index,), (spread_index, spread_fold)):
        bias.table.grad = None
        out = bias(*args)  # (H, N', N')
        (out * weights).sum().backward()
        results.append((out.detach(), bias.table.grad.clone()))
    assert torch.equal(results[1][0], results[0][0])
    assert torch.all(results[0][0][:, 0] == 0)
    assert torch.all(results[0][0][:, :, 0] == 0)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-10, rtol=0)
