"""Mean attention distance, attention entropy and attention rollout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gridformer.analysis import attention_entropy, attention_rollout, mean_attention_distance
from gridformer.tokenize import TokenLayout

R_EARTH = 6371.0


def _haversine(lat1, lon1, lat2, lon2):
    """Great-circle distance in km, written out independently of the package."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R_EARTH * np.arcsin(np.sqrt(h))


def _geo_layout(shape=(6, 12), patch=2, valid=None) -> TokenLayout:
    layout = TokenLayout.for_grid(shape, patch_size=patch, dims=("lat", "lon"))
    if valid is not None:
        layout = dataclasses.replace(layout, valid=torch.as_tensor(valid))
    return layout


def _uniform(valid: torch.Tensor, heads: int = 2) -> torch.Tensor:
    """Attention (B, H, N, N) uniform over each sample's valid keys."""
    w = valid.to(torch.float64) / valid.sum(-1, keepdim=True)  # (B, N)
    return w[:, None, None, :].expand(-1, heads, valid.shape[1], -1).clone()


def _land_mask(n_tokens: int, batch: int = 2) -> torch.Tensor:
    valid = torch.ones(batch, n_tokens, dtype=torch.bool)
    valid[:, [0, 5, 7]] = False
    valid[1, 10] = False  # the mask may differ between samples
    return valid


def test_uniform_attention_gives_the_uniform_reference_with_masked_tokens():
    layout0 = _geo_layout()
    valid = _land_mask(layout0.n_tokens)
    layout = _geo_layout(valid=valid)
    attention = [_uniform(valid), _uniform(valid)]
    result = mean_attention_distance(attention, layout)

    lat, lon = layout.centers()["lat"], layout.centers()["lon"]
    d = _haversine(lat[:, None], lon[:, None], lat[None, :], lon[None, :])  # (N, N)
    expected = []
    for b in range(valid.shape[0]):
        v = valid[b].numpy()
        expected.extend(d[np.ix_(v, v)].mean(axis=1))  # one value per valid query
    expected = float(np.mean(expected))

    assert result.dims == ("layer", "head")
    assert result.shape == (2, 2)
    assert result.attrs["units"] == "km"
    np.testing.assert_allclose(float(result["uniform"]), expected, rtol=1e-5)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5)


def test_attention_to_the_east_neighbour_is_its_great_circle_distance():
    layout = _geo_layout(shape=(4, 8), patch=1)
    n = layout.n_tokens
    east = torch.zeros(1, 1, n, n, dtype=torch.float64)
    index = np.arange(n).reshape(4, 8)
    east[0, 0, index.ravel(), np.roll(index, -1, axis=1).ravel()] = 1.0  # periodic in lon
    self_attention = torch.eye(n, dtype=torch.float64)[None, None]
    result = mean_attention_distance([east, self_attention], layout)
    lat = layout.coords["lat"]
    expected = _haversine(lat, 0.0, lat, 45.0).mean()  # 8 cells: 45 degrees of longitude
    np.testing.assert_allclose(float(result[0, 0]), expected, rtol=1e-5)
    assert float(result[1, 0]) == 0.0


def test_masked_query_rows_do_not_count():
    valid = _land_mask(_geo_layout().n_tokens)
    layout = _geo_layout(valid=valid)
    n = layout.n_tokens
    attention = torch.eye(n, dtype=torch.float64).expand(2, 1, n, n).clone()  # valid: self
    for b in range(2):
        far = torch.zeros(n, dtype=torch.float64)
        far[17] = 1.0
        attention[b, 0, ~valid[b]] = far  # invalid query rows look far away
    result = mean_attention_distance(attention, layout)
    assert float(result[0, 0]) == 0.0
    assert result.attrs["n_queries"] == int(valid.sum())


def test_class_token_is_dropped_and_query_subset_matches_full_rows():
    layout = _geo_layout()
    n = layout.n_tokens
    gen = torch.Generator().manual_seed(0)
    full = torch.softmax(torch.randn(2, 3, n + 1, n + 1, generator=gen, dtype=torch.float64), -1)
    rows = np.array([0, 4, 9, 18])  # key-axis positions; 0 is the class token
    subset = mean_attention_distance(full[:, :, rows], layout, query_index=rows)
    spatial = full[:, :, 1:, 1:] / full[:, :, 1:, 1:].sum(-1, keepdim=True)
    d = layout.distances().double()
    per_query = (spatial * d).sum(-1)  # (B, H, N)
    expected = per_query[:, :, rows[1:] - 1].mean(dim=(0, 2))
    np.testing.assert_allclose(subset.values[0], expected.numpy(), rtol=1e-6)
    assert subset.attrs["n_queries"] == 2 * 3  # two samples, three spatial queries


def test_distance_errors_name_the_mismatch():
    layout = _geo_layout()
    with pytest.raises(ValueError, match=r"K=5 keys but the layout has N=18 tokens"):
        mean_attention_distance(torch.ones(1, 1, 5, 5) / 5, layout)
    with pytest.raises(ValueError, match=r"pass query_index="):
        mean_attention_distance(torch.ones(1, 1, 3, 18) / 18, layout)
    with pytest.raises(ValueError, match=r"attention=None"):
        mean_attention_distance(None, layout)


def test_entropy_is_one_for_uniform_rows_and_zero_for_one_hot_rows():
    n = 10
    uniform = torch.full((2, 3, n, n), 1.0 / n)
    one_hot = torch.eye(n).expand(2, 3, n, n)
    half = torch.zeros(1, 1, 1, n)
    half[..., :2] = 0.5
    result = attention_entropy([uniform, one_hot])
    assert result.dims == ("layer", "sample", "head", "query")
    np.testing.assert_allclose(result.sel(layer=0).values, 1.0, atol=1e-12)
    np.testing.assert_allclose(result.sel(layer=1).values, 0.0, atol=1e-12)
    two_keys = attention_entropy(half, query_index=[3])
    np.testing.assert_allclose(float(two_keys.squeeze()), np.log(2) / np.log(n), rtol=1e-12)
    assert int(two_keys["query"][0]) == 3


def test_entropy_counts_only_valid_keys_and_leaves_invalid_queries_nan():
    valid = _land_mask(_geo_layout().n_tokens)
    layout = _geo_layout(valid=valid)
    result = attention_entropy(_uniform(valid), layout)
    values = result.values[0]  # (B, H, N)
    for b in range(2):
        np.testing.assert_allclose(values[b][:, valid[b].numpy()], 1.0, atol=1e-12)
        assert np.isnan(values[b][:, ~valid[b].numpy()]).all()


def test_rollout_of_identity_attention_is_identity():
    n = 7
    eye = torch.eye(n).expand(2, 4, n, n)
    rolled = attention_rollout([eye, eye, eye])
    np.testing.assert_allclose(rolled.numpy(), np.broadcast_to(np.eye(n), (2, n, n)), atol=0)


def test_rollout_matches_the_abnar_zuidema_product():
    n = 6
    gen = torch.Generator().manual_seed(1)
    layers = [
        torch.softmax(torch.randn(2, 3, n, n, generator=gen, dtype=torch.float64), -1)
        for _ in range(3)
    ]
    mixed = [0.5 * a.double().mean(1).numpy() + 0.5 * np.eye(n) for a in layers]
    expected = mixed[2] @ mixed[1] @ mixed[0]  # last layer first: A_3 A_2 A_1
    rolled = attention_rollout(layers)
    np.testing.assert_allclose(rolled.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(rolled.sum(-1).numpy(), 1.0, rtol=1e-12)

    plain = attention_rollout(layers, residual=0.0, layers=[0, 1], heads=[2])
    w = [a[:, 2].double().numpy() for a in layers]
    np.testing.assert_allclose(plain.numpy(), w[1] @ w[0], rtol=1e-12)

    rows = [4, 1]  # only the last layer's rows for two queries
    top = layers[-1][:, :, rows]
    subset = attention_rollout([*layers[:-1], top], query_index=rows)
    np.testing.assert_allclose(subset.numpy(), expected[:, rows], rtol=1e-12)
    picked = attention_rollout(layers, query_index=rows)
    np.testing.assert_allclose(picked.numpy(), expected[:, rows], rtol=1e-12)


def test_rollout_needs_complete_lower_layers_and_a_valid_residual():
    n = 5
    full = torch.full((1, 1, n, n), 1.0 / n)
    with pytest.raises(ValueError, match=r"layer 0 of the rollout holds 2 of 5 query rows"):
        attention_rollout([full[:, :, :2], full], query_index=[0, 1])
    with pytest.raises(ValueError, match=r"residual=1.0 must lie in \[0, 1\)"):
        attention_rollout([full], residual=1.0)
    with pytest.raises(ValueError, match=r"layers=\[3\] must select indices in 0..0"):
        attention_rollout([full], layers=[3])


def test_query_set_output_supplies_its_query_index_and_distance_rows():
    """Distance and entropy of a model output for a query set equal those of the same rows of
    the full maps; the distance rows come without the (N, N) matrix."""
    from gridformer.analysis.attention_stats import distance_rows
    from gridformer.model import TINY, GridFormer

    layout = TokenLayout.for_grid((8, 16), patch_size=2, dims=("lat", "lon"))
    cfg = dataclasses.replace(TINY, in_features=4, position="geodesic")
    torch.manual_seed(0)
    model = GridFormer(cfg).eval()
    with torch.no_grad():
        model.distance.strength.normal_(0.0, 2.0)
        tokens = torch.randn(2, layout.n_tokens, 4)
        full = model(tokens, layout, return_attention=True)
        sub = model(tokens, layout, return_attention=[0, 9, 31])
    subset = [a[:, :, [0, 9, 31]] for a in full.attention]
    expected = mean_attention_distance(subset, layout, query_index=[0, 9, 31])
    np.testing.assert_allclose(mean_attention_distance(sub, layout).values, expected.values,
                               rtol=1e-5)
    entropy = attention_entropy(sub, layout)
    np.testing.assert_array_equal(entropy["query"].values, [0, 9, 31])
    np.testing.assert_allclose(entropy.values, attention_entropy(
        subset, layout, query_index=[0, 9, 31]).values, rtol=1e-5)
    np.testing.assert_allclose(distance_rows(layout, np.array([0, 9, 31])).numpy(),
                               layout.distances()[[0, 9, 31]].double().numpy(), rtol=1e-6)
