"""Bad input gives a clear ValueError/TypeError naming the problem (messages pinned)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.tokenize import PatchTokenizer, TokenLayout


def grid(dims=("time", "y", "x"), shape=(2, 4, 6), **coords) -> xr.DataArray:
    return xr.DataArray(np.zeros(shape, dtype="float32"), dims=dims, coords=coords)


def test_missing_spatial_dims():
    with pytest.raises(
        ValueError, match=r"no spatial dims found among the data dims \('time', 'a', 'b'\)"
    ):
        PatchTokenizer(2).encode(grid(dims=("time", "a", "b")))


def test_unknown_spatial_dims_requested():
    with pytest.raises(ValueError, match=r"spatial dims \['row'\] are not dims of the data"):
        PatchTokenizer(2, spatial_dims=("row", "x")).encode(grid())


def test_named_spatial_dims_work():
    tokens, layout = PatchTokenizer(2, spatial_dims=("a", "b")).encode(grid(dims=("t", "a", "b")))
    assert layout.spatial_dims == ("a", "b")
    assert tokens.shape == (2, 6, 4)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ((5, 2), r"patch_size=\(5, 2\) is larger than the grid: 5 > 4 cells along dim 'y'"),
        ((1, 2, 3), r"has 3 entries but there are 2 spatial dims"),
    ],
)
def test_bad_patch_size(patch, message):
    with pytest.raises(ValueError, match=message):
        PatchTokenizer(patch).encode(grid())


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (0, r"patch_size=0 must be positive \(cells per patch, >= 1\)"),
        ((2, -1), r"patch_size=\(2, -1\) must be positive"),
    ],
)
def test_non_positive_patch_size_fails_at_construction(patch, message):
    with pytest.raises(ValueError, match=message):
        PatchTokenizer(patch)


@pytest.mark.parametrize("patch", ["2", 2.0, True, (2, 2.5), (True, 2), ()])
def test_patch_size_wrong_type(patch):
    with pytest.raises(TypeError, match=r"patch_size=.* must be an int or a tuple of ints"):
        PatchTokenizer(patch)


def test_dataset_variables_not_sharing_grid():
    ds = xr.Dataset({"t": grid(), "mask": grid(dims=("y", "x"), shape=(4, 6))})
    with pytest.raises(ValueError, match="Dataset variables do not share the grid: 't' has dims"):
        PatchTokenizer(2).encode(ds)


def test_non_monotonic_coordinate():
    da = grid(x=[0.0, 1.0, 3.0, 2.0, 4.0, 5.0])
    with pytest.raises(
        ValueError, match=r"coordinate 'x' is not strictly monotonic \(first break at index 3"
    ):
        PatchTokenizer(2).encode(da)


def test_array_without_dims():
    with pytest.raises(TypeError, match=r"has no dim names; pass dims="):
        PatchTokenizer(2).encode(np.zeros((4, 4)))
    with pytest.raises(
        ValueError, match=r"dims=\('y',\) has 1 names but the array has shape \(4, 4\)"
    ):
        PatchTokenizer(2).encode(torch.zeros(4, 4), dims=("y",))


def test_unsupported_type():
    with pytest.raises(TypeError, match="cannot tokenize data of type list"):
        PatchTokenizer(2).encode([[1.0, 2.0]])


def test_channel_and_time_dims_checked():
    with pytest.raises(ValueError, match="channel_dim='level' is not a dim of the data"):
        PatchTokenizer(2).encode(grid(), channel_dim="level")
    with pytest.raises(ValueError, match="time_patch=2 needs a time dim 'time'"):
        PatchTokenizer(2, time_patch=2).encode(grid(dims=("sample", "y", "x")))
    with pytest.raises(ValueError, match="time_patch=0 must be a positive int"):
        PatchTokenizer(2, time_patch=0)


def test_explicit_periodic_with_padding_refused():
    with pytest.raises(ValueError, match=r"periodic dim 'x' .* needs 2 padding cells"):
        PatchTokenizer((2, 4)).encode(grid(), periodic=(False, True))


def test_inferred_periodic_with_padding_warns_and_drops():
    da = xr.DataArray(
        np.zeros((3, 10)),
        dims=("lat", "lon"),
        coords={"lat": [-30.0, 0.0, 30.0], "lon": np.arange(10) * 36.0},
    )
    with pytest.warns(UserWarning, match="dim 'lon' looks periodic but needs 2 padding cells"):
        _, layout = PatchTokenizer((1, 4)).encode(da)
    assert layout.periodic == (False, False)
    _, layout = PatchTokenizer((1, 5)).encode(da)
    assert layout.periodic == (False, True)


def test_periodic_from_bc_attr():
    da = grid()
    da.attrs["bc"] = "periodic"
    assert PatchTokenizer(2).encode(da)[1].periodic == (True, True)
    assert PatchTokenizer(2).encode(grid())[1].periodic == (False, False)


def test_decode_shape_mismatch_and_bare_layout():
    tokens, layout = PatchTokenizer(2).encode(grid())
    with pytest.raises(ValueError, match=r"do not match the layout: expected \(B=2, N=6, D=4\)"):
        PatchTokenizer.decode(tokens[:, :5], layout)
    with pytest.raises(ValueError, match="has no source data"):
        PatchTokenizer.decode(tokens, TokenLayout.for_grid((4, 6), patch_size=2))


def test_layout_periodic_and_padded_refused():
    with pytest.raises(
        ValueError, match=r"dim 'x' is periodic but padded by \(0, 2\); padding breaks the wrap"
    ):
        TokenLayout(
            spatial_dims=("x",), grid_shape=(6,), patch_size=(4,), padding=((0, 2),),
            periodic=(True,),
        )


def test_non_numeric_coordinate_refused():
    with pytest.raises(TypeError, match=r"coordinate 'x' has dtype <U1; it must be real numbers"):
        PatchTokenizer(2).encode(grid(x=list("abcdef")))
