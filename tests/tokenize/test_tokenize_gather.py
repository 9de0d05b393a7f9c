"""The one-pass compiled patchify against the NumPy pad + transpose path it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from gridformer.tokenize import PatchTokenizer
from gridformer.tokenize._gather import gather_tokens, padding_valid, token_valid
from gridformer.tokenize._patchify import patchify


def _pads(size: int, patch: int, center: bool) -> tuple[int, int]:
    extra = (-size) % patch
    return (extra // 2, extra - extra // 2) if center else (0, extra)


@st.composite
def blocks(draw):
    """A (B, C, T, Y, X) array (C or Fortran order, some NaNs), patch, pads and dtypes."""
    shape = tuple(draw(st.integers(1, n)) for n in (2, 2, 4, 9, 9))
    patch = tuple(draw(st.integers(1, n)) for n in shape[2:])
    center = draw(st.booleans())
    pads = tuple(_pads(n, p, center) for n, p in zip(shape[2:], patch, strict=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    arr = rng.standard_normal(shape).astype(dtype)
    arr[rng.random(shape) < draw(st.sampled_from([0.0, 0.02, 0.2, 1.0]))] = np.nan
    if draw(st.booleans()):
        arr = np.asfortranarray(arr)
    out_dtype = draw(st.sampled_from([dtype, np.float32]))
    return arr, patch, pads, out_dtype, draw(st.sampled_from([0.0, -3.5]))


@settings(max_examples=60, deadline=None)
@given(blocks())
def test_gather_equals_numpy_patchify(case):
    arr, patch, pads, out_dtype, fill = case
    counts = [(n + sum(p)) // k for n, p, k in zip(arr.shape[2:], pads, patch, strict=True)]
    shape = (arr.shape[0], int(np.prod(counts)), arr.shape[1] * int(np.prod(patch)))
    out = np.full(shape, 7.0, dtype=out_dtype)
    reference = np.full(shape, 7.0, dtype=out_dtype)
    mask = gather_tokens(arr, out, patch, pads, fill)
    ref_mask, has_nan = patchify(arr, patch, pads, fill, reference)
    np.testing.assert_array_equal(out, reference)  # every token written, bit for bit
    if has_nan:
        np.testing.assert_array_equal(mask, ref_mask)
        np.testing.assert_array_equal(token_valid(mask), ~ref_mask.all(axis=-1))
    else:
        assert mask is None
        expected = np.ones(shape[1], dtype=bool) if ref_mask is None else ~ref_mask[0].all(-1)
        np.testing.assert_array_equal(padding_valid(arr.shape[2:], patch, pads), expected)


def test_gather_mask_when_only_some_rows_of_tokens_hold_nans():
    """The mask of rows of tokens without NaNs (padding flags only) next to one with a NaN."""
    rng = np.random.default_rng(3)
    arr = rng.standard_normal((2, 1, 3, 10, 11)).astype(np.float32)  # (B, C, T, Y, X)
    arr[1, 0, 2, 4, 7] = np.nan  # one row of tokens of one batch entry
    patch, pads = (1, 3, 4), ((0, 0), (1, 1), (0, 1))
    counts = [(n + sum(p)) // k for n, p, k in zip(arr.shape[2:], pads, patch, strict=True)]
    shape = (2, int(np.prod(counts)), int(np.prod(patch)))
    out, reference = np.empty(shape, np.float32), np.empty(shape, np.float32)
    mask = gather_tokens(arr, out, patch, pads, 0.0)
    ref_mask, has_nan = patchify(arr, patch, pads, 0.0, reference)
    assert has_nan
    np.testing.assert_array_equal(out, reference)
    np.testing.assert_array_equal(mask, ref_mask)
    assert mask.sum() == ref_mask.sum() > 1  # the NaN and the padding cells


@pytest.mark.parametrize("px", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("order", ["C", "F"])
def test_gather_equals_numpy_for_each_patch_width(px, order):
    """Narrow patches (1, 2, 4 cells wide) take their own row-run loop; wider ones the other."""
    rng = np.random.default_rng(px)
    arr = rng.standard_normal((2, 2, 4, 7, 5 * px + 3)).astype(np.float64)  # (B, C, T, Y, X)
    arr[rng.random(arr.shape) < 0.05] = np.nan
    arr = np.asarray(arr, order=order)
    patch = (2, 3, px)
    pads = ((0, 0), (1, 1), (1, (-(5 * px + 4)) % px))
    counts = [(n + sum(p)) // k for n, p, k in zip(arr.shape[2:], pads, patch, strict=True)]
    shape = (2, int(np.prod(counts)), 2 * int(np.prod(patch)))
    out = np.full(shape, 7.0, dtype=np.float32)
    reference = np.full(shape, 7.0, dtype=np.float32)
    mask = gather_tokens(arr, out, patch, pads, -1.0)
    ref_mask, has_nan = patchify(arr, patch, pads, -1.0, reference)
    assert has_nan
    np.testing.assert_array_equal(out, reference)
    np.testing.assert_array_equal(mask, ref_mask)


def test_token_valid_marks_tokens_with_any_present_cell():
    missing = np.ones((2, 4, 5), dtype=bool)
    missing[0, 1, 4] = False  # present only in its last cell
    missing[1, 2] = False
    missing[1, 3, 0] = False
    expected = np.array([[False, True, False, False], [False, False, True, True]])
    np.testing.assert_array_equal(token_valid(missing), expected)
    np.testing.assert_array_equal(token_valid(missing[:, :, :0]), np.zeros((2, 4), bool))


def test_encode_keeps_every_float_bit():
    """Subnormals, signed zeros, infinities and NaN payload positions survive the round trip."""
    values = np.array([[0.0, -0.0, 1e-45, -np.inf], [np.inf, 3.4e38, np.nan, -1e-40]],
                      dtype=np.float32)
    da = xr.DataArray(np.tile(values, (3, 2)), dims=("y", "x"))
    tok = PatchTokenizer(patch_size=(2, 3))
    tokens, layout = tok.encode(da)
    back = tok.decode(tokens, layout)
    np.testing.assert_array_equal(back.values.view(np.uint32)[~np.isnan(back.values)],
                                  da.values.view(np.uint32)[~np.isnan(da.values)])
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(da.values))


def test_dask_blocks_without_nan_get_their_padding_in_the_cell_mask():
    """NaN in one streamed block only: the other blocks' padding is still marked missing."""
    values = np.random.default_rng(3).standard_normal((7, 5, 5)).astype(np.float32)
    values[1, 0, 0] = np.nan  # first block only
    da = xr.DataArray(values, dims=("time", "y", "x"))
    tok = PatchTokenizer(patch_size=2, time_patch=2)
    tokens, layout = tok.encode(da.chunk({"time": 2}))
    ref_tokens, ref_layout = tok.encode(da)
    assert torch.equal(tokens, ref_tokens)
    assert torch.equal(layout.source.cell_missing, ref_layout.source.cell_missing)
    assert bool(layout.source.cell_missing[0, -1].any())  # the last token holds padding
    assert torch.equal(layout.valid, ref_layout.valid)
