"""encode/decode round trips (Hypothesis), token contents, validity, dask streaming."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import torch
import xarray as xr
from dask.callbacks import Callback
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gridformer.tokenize import PatchTokenizer

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def grids(draw):
    """A float32/float64 DataArray with random dims order, sizes, NaN mask, and a tokenizer."""
    spatial = draw(st.sampled_from([("lat", "lon"), ("y", "x"), ("x",)]))
    sizes = {d: draw(st.integers(1, 9)) for d in spatial}
    extra = draw(st.lists(st.sampled_from(["time", "level", "sample"]), unique=True, max_size=3))
    sizes.update({d: draw(st.integers(1, 4)) for d in extra})
    dims = list(draw(st.permutations(list(sizes))))
    shape = tuple(sizes[d] for d in dims)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.standard_normal(shape).astype(draw(st.sampled_from([np.float32, np.float64])))
    values[rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 0.9]))] = np.nan
    coords = {}
    if draw(st.booleans()):
        for d in spatial:
            step = 1.0 if draw(st.booleans()) else -2.5
            coords[d] = np.arange(sizes[d]) * step
    da = xr.DataArray(
        values,
        dims=dims,
        coords=coords,
        name=draw(st.sampled_from([None, "t"])),
        attrs={"units": "K"},
    )
    patch = tuple(draw(st.integers(1, sizes[d])) for d in spatial)
    channel = draw(st.sampled_from([None, *[d for d in extra if d != "time"]]))
    time_patch = draw(st.sampled_from([None, 1, 2, 3])) if "time" in extra else None
    tok = PatchTokenizer(
        patch_size=patch,
        time_patch=time_patch,
        fill_value=draw(st.sampled_from([0.0, -1.0])),
        pad=draw(st.sampled_from(["end", "center"])),
    )
    return da, tok, channel


@SETTINGS
@given(grids())
def test_roundtrip_dataarray(case):
    da, tok, channel = case
    tokens, layout = tok.encode(da, channel_dim=channel, periodic=False)
    n_ch = da.sizes[channel] if channel else 1
    t_patch = tok.time_patch or 1
    assert tokens.dtype == (torch.float64 if da.dtype == np.float64 else torch.float32)
    assert tokens.shape[1] == layout.n_tokens
    assert tokens.shape[2] == n_ch * t_patch * int(np.prod(layout.patch_size))
    assert not torch.isnan(tokens).any()
    for g, p, (before, after) in zip(
        layout.grid_shape, layout.patch_size, layout.padding, strict=True
    ):
        assert (g + before + after) % p == 0
        assert 0 <= before + after < p  # padded, never cropped
    back = tok.decode(tokens, layout)
    xr.testing.assert_identical(back, da)
    assert back.dims == da.dims
    # a token is valid iff it holds at least one non-NaN cell
    missing_all = layout.source.cell_missing
    if missing_all is not None:
        assert torch.equal(layout.valid, ~missing_all.all(-1))
    elif not any(sum(p) for p in layout.padding):
        assert bool(layout.valid.all())


@SETTINGS
@given(grids())
def test_roundtrip_dataset_and_array(case):
    da, tok, channel = case
    assume(channel is None)  # a Dataset's channels are its variables
    ds = xr.Dataset({"a": da, "b": (da * 2).astype(da.dtype)}, attrs={"title": "x"})
    ds["b"].attrs = {"units": "m"}
    tokens, layout = tok.encode(ds, periodic=False)
    assert tokens.shape[2] % 2 == 0
    xr.testing.assert_identical(tok.decode(tokens, layout), ds)
    arr_tokens, arr_layout = tok.encode(da.values, dims=da.dims, periodic=False)
    assert torch.equal(arr_tokens, tok.encode(da, periodic=False)[0])
    back = tok.decode(arr_tokens, arr_layout)
    np.testing.assert_array_equal(back.values, da.values)
    assert back.dims == da.dims
    t_tokens, _ = tok.encode(torch.from_numpy(da.values), dims=da.dims, periodic=False)
    assert torch.equal(t_tokens, arr_tokens)


def test_token_contents_patch_order():
    data = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    da = xr.DataArray(data, dims=("c", "y", "x"))
    tokens, layout = PatchTokenizer(patch_size=(2, 3)).encode(da, channel_dim="c")
    assert tokens.shape == (1, 4, 12)
    # token 1 = patch row 0, patch col 1; features (channel, dy, dx)
    expected = data[:, 0:2, 3:6].reshape(-1)
    np.testing.assert_array_equal(tokens[0, 1].numpy(), expected)
    np.testing.assert_allclose(layout.centers()["x"], [1.0, 4.0, 1.0, 4.0])


def test_nan_fill_and_invalid_tokens():
    data = np.ones((4, 4), dtype=np.float32)
    data[:2, :2] = np.nan  # one whole patch of land
    data[2, 3] = np.nan  # one cell of another patch
    tokens, layout = PatchTokenizer(patch_size=2, fill_value=-5.0).encode(
        xr.DataArray(data, dims=("y", "x"))
    )
    assert layout.valid.tolist() == [[False, True, True, True]]
    assert tokens[0, 0].tolist() == [-5.0] * 4
    assert tokens[0, 3].tolist() == [1.0, -5.0, 1.0, 1.0]
    back = PatchTokenizer.decode(tokens, layout)
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(data))


def test_float64_exact_by_default():
    da = xr.DataArray(np.random.default_rng(0).standard_normal((3, 5)), dims=("y", "x"))
    tok = PatchTokenizer(patch_size=2)
    tokens, layout = tok.encode(da)
    assert tokens.dtype == torch.float64
    xr.testing.assert_identical(tok.decode(tokens, layout), da)


def test_integer_data_roundtrip():
    da = xr.DataArray(np.arange(12, dtype=np.int32).reshape(3, 4), dims=("y", "x"))
    tok = PatchTokenizer(patch_size=2)
    xr.testing.assert_identical(tok.decode(*tok.encode(da)), da)


class _CountComputes(Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


def test_dask_input_streams_chunk_by_chunk():
    loaded: list[int] = []

    def load(i):
        loaded.append(i)
        return np.full((1, 6, 8), float(i), dtype=np.float32)

    parts = [dsa.from_delayed(dask.delayed(load)(i), (1, 6, 8), np.float32) for i in range(5)]
    lazy = xr.DataArray(dsa.concatenate(parts), dims=("time", "y", "x"))
    with _CountComputes() as counter:
        tokens, _layout = PatchTokenizer(patch_size=2).encode(lazy)
    assert sorted(loaded) == [0, 1, 2, 3, 4]  # every step read exactly once
    assert counter.count == 5  # one compute per time chunk, never the whole array at once
    assert tokens.shape == (5, 12, 4)
    assert torch.equal(tokens[:, 0, 0], torch.arange(5, dtype=torch.float32))
    eager = PatchTokenizer(patch_size=2).encode(lazy.compute())[0]
    assert torch.equal(tokens, eager)


def test_dask_multi_batch_dims_with_nan():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((3, 4, 5, 7)).astype(np.float32)
    values[values > 1.0] = np.nan
    da = xr.DataArray(
        values,
        dims=("sample", "time", "lat", "lon"),
        coords={"lat": np.linspace(-60, 60, 5), "lon": np.arange(7) * 50.0},
    )
    lazy = da.chunk({"sample": 2, "time": 3})
    tok = PatchTokenizer(patch_size=(2, 3))
    tokens, layout = tok.encode(lazy)
    ref_tokens, ref_layout = tok.encode(da)
    assert torch.equal(tokens, ref_tokens)
    assert torch.equal(layout.valid, ref_layout.valid)
    xr.testing.assert_identical(tok.decode(tokens, layout), da)


def test_dask_spacetime_streams_along_time():
    rng = np.random.default_rng(2)
    values = rng.standard_normal((7, 2, 4, 6)).astype(np.float32)  # (time, level, y, x)
    values[3, :, :2, :3] = np.nan
    da = xr.DataArray(values, dims=("time", "level", "y", "x"))
    lazy = da.chunk({"time": 3})  # chunk edges 3, 6 -> tubelet edges 4, 6
    tok = PatchTokenizer(patch_size=2, time_patch=2)
    with _CountComputes() as counter:
        tokens, layout = tok.encode(lazy, channel_dim="level")
    assert counter.count == 3  # steps [0, 4), [4, 6), [6, 7) + time padding
    ref_tokens, ref_layout = tok.encode(da, channel_dim="level")
    assert torch.equal(tokens, ref_tokens)
    assert torch.equal(layout.valid, ref_layout.valid)
    assert layout.time_padding == (0, 1)
    xr.testing.assert_identical(tok.decode(tokens, layout), da)
