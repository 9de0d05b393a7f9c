"""Token dtypes: by default the input's float dtype, so decode gives back the very same bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.tokenize import PatchTokenizer

BITS = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}


def awkward_values(dtype, shape=(3, 5, 7)) -> np.ndarray:
    """Values that a narrower float would change: many digits, huge, tiny, -0.0, NaN."""
    rng = np.random.default_rng(0)
    info = np.finfo(dtype)
    values = (rng.standard_normal(shape) * np.pi).astype(dtype)
    values[0, 0, :3] = [info.max, info.tiny, info.smallest_subnormal]
    values[0, 1, 0] = -0.0
    values[rng.random(shape) < 0.2] = np.nan  # a NaN mask
    values[1, :2, :3] = np.nan  # a whole (2, 3) patch of NaN: an invalid token
    return values


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("pad", ["end", "center"])
def test_default_round_trip_is_bitwise(dtype, pad):
    da = xr.DataArray(
        awkward_values(dtype),
        dims=("time", "y", "x"),
        coords={"x": np.arange(7) * 0.1},
        attrs={"units": "K"},
        name="t",
    )
    tok = PatchTokenizer((2, 3), pad=pad)  # 5 x 7 cells: padded in both dims
    tokens, layout = tok.encode(da)
    assert sum(map(sum, layout.padding)) > 0
    assert tokens.dtype == getattr(torch, np.dtype(dtype).name)
    assert not bool(layout.valid.all())  # the all-NaN patch is an invalid token
    back = tok.decode(tokens, layout)
    assert back.dtype == dtype
    xr.testing.assert_identical(back, da)
    bits = BITS[dtype]
    np.testing.assert_array_equal(back.values.view(bits), da.values.view(bits))


def test_float64_dataset_round_trip_is_bitwise():
    values = awkward_values(np.float64)
    other = np.where(np.isnan(values), np.nan, -values)  # NaN cells come back as plain NaN
    ds = xr.Dataset({"a": (("time", "y", "x"), values), "b": (("time", "y", "x"), other)})
    tokens, layout = PatchTokenizer(2).encode(ds)
    assert tokens.dtype == torch.float64
    back = PatchTokenizer.decode(tokens, layout)
    for name in ("a", "b"):
        np.testing.assert_array_equal(back[name].values.view(np.uint64),
                                      ds[name].values.view(np.uint64))


def test_bfloat16_tensor_gives_bfloat16_tokens():
    data = torch.randn(4, 6, dtype=torch.float32).to(torch.bfloat16)
    tokens, layout = PatchTokenizer(2).encode(data, dims=("y", "x"))
    assert tokens.dtype == torch.bfloat16
    back = PatchTokenizer.decode(tokens, layout)  # NumPy has no bfloat16: float32, same values
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.values, data.float().numpy())


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.bool_, torch.float32),
        (np.int8, torch.float32),
        (np.uint16, torch.float32),
        (np.int32, torch.float64),
        (np.int64, torch.float64),
    ],
)
def test_integers_get_a_float_that_holds_them_exactly(dtype, expected):
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    values = np.arange(12).reshape(3, 4).astype(dtype)
    if info is not None:  # the largest value (int64: 2**53): int32 and int64 need float64
        values.flat[-1] = min(int(info.max), 2**53)
    da = xr.DataArray(values, dims=("y", "x"))
    tokens, layout = PatchTokenizer(2).encode(da)
    assert tokens.dtype == expected
    xr.testing.assert_identical(PatchTokenizer.decode(tokens, layout), da)


def test_requested_dtype_is_used_and_rounds():
    da = xr.DataArray(np.full((2, 2), 1.0 + 2.0**-40), dims=("y", "x"))
    tok = PatchTokenizer(1, dtype=torch.float32)
    tokens, layout = tok.encode(da)
    assert tokens.dtype == torch.float32
    assert float(tok.decode(tokens, layout)[0, 0]) == 1.0  # float32 cannot hold 2**-40 on 1


def test_bad_dtypes_refused():
    with pytest.raises(
        TypeError, match=r"dtype=torch\.int32 must be None \(keep the data's\) or a floating-point"
    ):
        PatchTokenizer(1, dtype=torch.int32)
    with pytest.raises(TypeError, match=r"cannot tokenize data of dtype complex128: tokens hold"):
        PatchTokenizer(1).encode(xr.DataArray(np.ones((2, 2), dtype=complex), dims=("y", "x")))
