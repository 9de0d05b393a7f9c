"""Teleconnection maps: query resolution, planted attention, masks, class tokens, rollout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer import datasets
from gridformer.analysis import attention_rollout, query_tokens, teleconnection_map
from gridformer.model import TINY, GridFormer
from gridformer.tokenize import PatchTokenizer, TokenLayout

SHAPE, PATCH = (16, 32), 2  # 8 x 16 tokens; patch centres lat -78.75 + 22.5 k, lon 11.25 + 22.5 k
QUERY_BOX = {"lat": (-15.0, 15.0), "lon": (180.0, 230.0)}  # 2 x 2 tokens
REMOTE_BOX = {"lat": (30.0, 60.0), "lon": (280.0, 320.0)}  # 2 x 2 tokens


def _layout(valid=None, lon_offset=0.0) -> TokenLayout:
    lat, lon = datasets.global_grid(*SHAPE)
    coords = {"lat": lat, "lon": lon + lon_offset}
    layout = TokenLayout.for_grid(SHAPE, patch_size=PATCH, dims=("lat", "lon"), coords=coords)
    if valid is not None:
        layout = dataclasses.replace(layout, valid=torch.as_tensor(valid))
    return layout


def _token(layout: TokenLayout, row: int, col: int) -> int:
    return row * layout.patch_grid_shape[1] + col


def _planted_attention(layout, strengths, heads=2):
    """Layer 0: query-box rows give weight s to the remote box, 1 - s spread evenly; other rows
    and layer 1 are uniform. Returns the layers and the two boxes' token indices."""
    n = layout.n_tokens
    source, target = query_tokens(layout, QUERY_BOX), query_tokens(layout, REMOTE_BOX)
    first = torch.full((len(strengths), heads, n, n), 1.0 / n, dtype=torch.float64)
    for b, s in enumerate(strengths):
        row = torch.full((n,), (1 - s) / n, dtype=torch.float64)
        row[target] += s / len(target)
        first[b, :, source] = row
    second = torch.full_like(first, 1.0 / n)
    return [first, second], source, target


def test_query_tokens_resolve_points_boxes_and_longitude_conventions():
    layout = _layout()
    assert query_tokens(layout, (1.0, 200.0)).tolist() == [_token(layout, 4, 8)]
    assert query_tokens(layout, {"lon": -160.0, "lat": 1.0}).tolist() == [_token(layout, 4, 8)]
    assert query_tokens(layout, QUERY_BOX).tolist() == [
        _token(layout, 3, 8), _token(layout, 3, 9), _token(layout, 4, 8), _token(layout, 4, 9)
    ]
    assert query_tokens(layout, ((15.0, -15.0), (180.0, 230.0))).tolist() == (
        query_tokens(layout, QUERY_BOX).tolist()
    )
    seam = query_tokens(layout, {"lat": (-15.0, 15.0), "lon": (340.0, 20.0)})
    assert seam.tolist() == [_token(layout, 3, 0), _token(layout, 3, 15),
                             _token(layout, 4, 0), _token(layout, 4, 15)]
    shifted = _layout(lon_offset=-180.0)  # a -180..180 grid: lon 200 means -160
    assert query_tokens(shifted, (1.0, 200.0)).tolist() == [_token(shifted, 4, 0)]
    assert query_tokens(shifted, (1.0, -160.0)).tolist() == [_token(shifted, 4, 0)]


def test_space_time_tokens_give_one_query_token_and_one_map_per_frame():
    lat, lon = datasets.global_grid(*SHAPE)
    data = xr.DataArray(np.zeros((4, *SHAPE)), dims=("time", "lat", "lon"),
                        coords={"time": np.arange(4), "lat": lat, "lon": lon})
    _, layout = PatchTokenizer(patch_size=PATCH, time_patch=2).encode(data)
    per_frame = layout.n_spatial_tokens
    tokens = query_tokens(layout, (1.0, 200.0))
    assert tokens.tolist() == [_token(layout, 4, 8), per_frame + _token(layout, 4, 8)]
    n = layout.n_tokens
    attention = torch.zeros(1, 1, n, n, dtype=torch.float64)
    attention[0, 0, :, 3] = 1.0  # everything looks at token 3 of the first frame
    result = teleconnection_map(attention, layout, (1.0, 200.0))
    assert result.dims == ("frame", "lat", "lon")
    assert float(result.isel(frame=0).values.ravel()[3]) == 1.0
    assert float(result.sum()) == 1.0


def test_query_errors_name_the_point_and_the_grid():
    lat = np.linspace(0.5, 29.5, 30)
    regional = TokenLayout.for_grid((30, 8), patch_size=2, dims=("lat", "lon"),
                                    coords={"lat": lat, "lon": np.arange(8) + 100.5},
                                    periodic=False)
    with pytest.raises(ValueError, match=r"query point \{'lat': 50.0, 'lon': 102.0\} lies outside "
                                         r"the grid: lat in \[0, 30\], lon in \[100, 108\]"):
        query_tokens(regional, (50.0, 102.0))
    valid = torch.ones(1, _layout().n_tokens, dtype=torch.bool)
    valid[0, _token(_layout(), 4, 8)] = False
    with pytest.raises(ValueError, match=r"falls on token \[72\], which holds no valid data"):
        query_tokens(_layout(valid), (1.0, 200.0))
    with pytest.raises(ValueError, match=r"query box .* contains no valid token centre"):
        query_tokens(_layout(), {"lat": (1.0, 2.0), "lon": (0.0, 360.0)})
    with pytest.raises(ValueError, match=r"query names dims \['depth'\] that the grid lacks"):
        query_tokens(_layout(), {"depth": 5.0})
    with pytest.raises(TypeError, match=r"query value for 'lat' must be a number or a \(lo, hi\)"):
        query_tokens(_layout(), {"lat": "north", "lon": 3.0})
    with pytest.raises(ValueError, match=r"query='nino' is not a known name"):
        teleconnection_map(torch.eye(128)[None, None], _layout(), "nino")


def test_map_from_a_query_box_peaks_at_the_planted_remote_box():
    layout = _layout()
    strengths = [0.5, 0.7, 0.9]
    attention, _, target = _planted_attention(layout, strengths)
    result = teleconnection_map(attention, layout, QUERY_BOX)
    n = layout.n_tokens
    assert result.dims == ("lat", "lon")
    assert result.attrs["units"] == "1"
    assert result.attrs["n_samples"] == 3
    peak = result.where(result == result.max(), drop=True)
    assert 30 <= float(peak.lat[0]) <= 60
    assert 280 <= float(peak.lon[0]) <= 320
    flat = result.values.ravel()  # token order: row-major over the patch grid
    s = np.array(strengths)
    in_remote = ((1 - s) / n + s / len(target) + 1 / n) / 2  # mean of the two layers
    np.testing.assert_allclose(flat[target], in_remote.mean(), rtol=1e-12)
    np.testing.assert_allclose(result["spread"].values.ravel()[target], in_remote.std(),
                               rtol=1e-9)
    assert flat.sum() == pytest.approx(1.0)
    only_first = teleconnection_map(attention, layout, QUERY_BOX, layers=[0], heads=[1])
    np.testing.assert_allclose(only_first.values.ravel()[target], (s / 4 + (1 - s) / n).mean())


def test_masked_query_tokens_are_excluded_and_masked_keys_are_nan():
    layout0 = _layout()
    n = layout0.n_tokens
    source = query_tokens(layout0, QUERY_BOX)
    land = _token(layout0, 0, 0)
    valid = torch.ones(2, n, dtype=torch.bool)
    valid[:, land] = False
    valid[1, source[-1]] = False  # one query token is masked in sample 1 only
    layout = _layout(valid)
    attention = torch.zeros(2, 1, n, n, dtype=torch.float64)
    for i, q in enumerate(source):
        attention[:, 0, q, 100 + i] = 1.0  # query token i looks at token 100 + i
    result = teleconnection_map(attention, layout, QUERY_BOX)
    flat = result.values.ravel()
    # sample 0 averages 4 rows (0.25 each), sample 1 the 3 valid ones (1/3 each)
    np.testing.assert_allclose(flat[100:103], (0.25 + 1 / 3) / 2)
    np.testing.assert_allclose(flat[103], 0.25 / 2)
    assert np.isnan(flat[land])
    assert np.isnan(result["spread"].values.ravel()[land])


def test_query_subset_rows_give_the_same_map_and_missing_rows_are_named():
    layout = _layout()
    attention, source, _ = _planted_attention(layout, [0.6, 0.8])
    full = teleconnection_map(attention, layout, QUERY_BOX)
    rows = np.concatenate([source[::-1], [5]])
    subset = teleconnection_map([a[:, :, rows] for a in attention], layout, QUERY_BOX,
                                query_index=rows)
    np.testing.assert_allclose(subset.values, full.values, rtol=1e-12)
    with pytest.raises(ValueError, match=r"needs attention rows at key positions \[.*\], which "
                                         r"query_index=\[5\] does not hold"):
        teleconnection_map([a[:, :, [5]] for a in attention], layout, QUERY_BOX, query_index=[5])


def test_rollout_combination_matches_attention_rollout_rows():
    layout = _layout()
    n = layout.n_tokens
    gen = torch.Generator().manual_seed(0)
    attention = [torch.softmax(torch.randn(2, 2, n, n, generator=gen, dtype=torch.float64), -1)
                 for _ in range(3)]
    source = query_tokens(layout, QUERY_BOX)
    result = teleconnection_map(attention, layout, QUERY_BOX, combine="rollout")
    expected = attention_rollout(attention)[:, source].mean(1).mean(0)  # (N,)
    np.testing.assert_allclose(result.values.ravel(), expected.numpy(), rtol=1e-10)
    assert result.attrs["combine"] == "rollout (residual=0.5)"
    eye = [torch.eye(n, dtype=torch.float64)[None, None]] * 2
    point = teleconnection_map(eye, layout, (1.0, 200.0), combine="rollout")
    assert point.values.ravel()[_token(layout, 4, 8)] == 1.0
    assert np.nansum(point.values) == 1.0


def test_class_token_and_pooled_queries():
    layout = _layout()
    n = layout.n_tokens
    gen = torch.Generator().manual_seed(2)
    with_cls = torch.softmax(torch.randn(2, 2, n + 1, n + 1, generator=gen), -1)
    result = teleconnection_map(with_cls, layout, "cls")
    row = with_cls[:, :, 0].double().mean(dim=(0, 1))  # (N + 1,)
    np.testing.assert_allclose(result.values.ravel(), row[1:].numpy(), rtol=1e-6)
    assert result.attrs["weight_to_class_token"] == pytest.approx(float(row[0]))
    pooled = teleconnection_map(with_cls, layout, "pooled")
    np.testing.assert_allclose(pooled.values, result.values)
    no_cls = with_cls[:, :, 1:, 1:] / with_cls[:, :, 1:, 1:].sum(-1, keepdim=True)
    mean_pool = teleconnection_map(no_cls, layout, "pooled")
    np.testing.assert_allclose(mean_pool.values.ravel(),
                               no_cls.double().mean(dim=(0, 1, 2)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"query='cls' needs attention with a class token"):
        teleconnection_map(no_cls, layout, "cls")


@pytest.mark.slow
def test_map_from_a_cls_model_on_land_masked_data_sums_to_one():
    tele = datasets.planted_teleconnection(4, shape=SHAPE, seed=0)
    x = tele["x"].where(~((tele.lat > 60) & (tele.lon < 90)))  # a "continent"
    tokens, layout = PatchTokenizer(patch_size=PATCH).encode(x)
    cfg = dataclasses.replace(TINY, in_features=PATCH * PATCH, head="index", pool="cls",
                              reference_grid=layout.patch_grid_shape)
    torch.manual_seed(0)
    with torch.no_grad():
        out = GridFormer(cfg).eval()(tokens, layout, return_attention=True)
    result = teleconnection_map(out, layout, "cls", combine="rollout")
    land = ~layout.valid[0].numpy()
    assert land.any()
    assert np.isnan(result.values.ravel()[land]).all()
    total = np.nansum(result.values) + result.attrs["weight_to_class_token"]
    assert total == pytest.approx(1.0, abs=1e-5)
    # the identity path alone keeps 1/2 of the class token's weight on itself per layer
    assert result.attrs["weight_to_class_token"] >= 0.5**cfg.depth


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_maps_from_a_query_set_output_equal_the_maps_from_full_attention(pool):
    """A model output for one query point (rows only, plus its probe) gives the same maps as
    the full N x N attention, for any query and both combinations; the chunked kernel forms
    the rollout block by block."""
    valid = torch.ones(2, 8 * 16, dtype=torch.bool)
    valid[:, 5:9] = False  # land in both samples
    valid[1, 40] = False
    layout = _layout(valid)
    cfg = dataclasses.replace(TINY, in_features=PATCH * PATCH, head="index", pool=pool,
                              position="geodesic", depth=3, attention_kernel="chunked",
                              attention_chunk=7)
    torch.manual_seed(0)
    model = GridFormer(cfg).eval()
    with torch.no_grad():
        model.distance.strength.normal_(0.0, 2.0)
        tokens = torch.randn(2, layout.n_tokens, PATCH * PATCH)
        full = model(tokens, layout, return_attention=True)
        rows = model(tokens, layout, return_attention=(1.0, 200.0))
    queries = [(1.0, 200.0), QUERY_BOX, "pooled"] + (["cls"] if pool == "cls" else [])
    for query in queries:
        for combine in ("mean", "rollout"):
            expected = teleconnection_map(full, layout, query, combine=combine)
            result = teleconnection_map(rows, layout, query, combine=combine)
            np.testing.assert_allclose(result.values, expected.values, rtol=1e-5, atol=1e-8)
            np.testing.assert_allclose(result["spread"].values, expected["spread"].values,
                                       rtol=1e-4, atol=1e-8)
            weight = result.attrs.pop("weight_to_class_token")
            assert weight == pytest.approx(expected.attrs.pop("weight_to_class_token"),
                                           rel=1e-5)
            assert result.attrs == expected.attrs
