"""ForecastDataset's block path: the same items as the per-item path, each block read once."""

from __future__ import annotations

import pickle

import dask
import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr
from gridformer.datasets import BlockShuffleSampler, ForecastDataset
from gridformer.datasets._blocks import BlockCache, block_edges
from torch.utils.data import DataLoader

from gridformer import PatchTokenizer

T, LEV, LAT, LON = 23, 2, 6, 10


def climate(chunks: int | None = 5) -> xr.Dataset:
    """t (float32, time first), z (float64, level before time), NaNs in both; lat/lon coords."""
    rng = np.random.default_rng(1)
    t = rng.normal(size=(T, LAT, LON)).astype(np.float32)
    t[3, 0, :4] = np.nan  # a NaN patch in one step
    z = rng.normal(size=(LEV, T, LAT, LON))
    z[:, 10, 5, 9] = np.nan
    ds = xr.Dataset(
        {"t": (("time", "lat", "lon"), t), "z": (("level", "time", "lat", "lon"), z)},
        coords={"time": np.arange(T), "level": [500, 850],
                "lat": np.linspace(-75.0, 75.0, LAT), "lon": np.arange(LON) * 36.0},
    )
    return ds if chunks is None else ds.chunk({"time": chunks})


def all_items(data: ForecastDataset) -> list[tuple[torch.Tensor, ...]]:
    return [data[i] for i in range(len(data))]


@pytest.mark.parametrize("chunks", [None, 5, 1])
@pytest.mark.parametrize("tokenized", [False, True])
@pytest.mark.filterwarnings("ignore:dim 'lon' looks periodic")  # the per-item path's warning
def test_block_items_equal_per_item_items(chunks, tokenized):
    ds = climate(chunks)
    opts = {"inputs": ["z", "t"], "targets": ["t", "z"], "window": 3, "lead": 2, "stride": 2,
            "lat_weighted": True}
    if tokenized:
        opts["tokenizer"] = PatchTokenizer(4, fill_value=-9.0)  # pads lat 6->8, lon 10->12
    fast = ForecastDataset(ds, **opts)
    slow = ForecastDataset(ds, cache_bytes=0, **opts)
    assert len(fast) == len(slow) == 10
    for a, b in zip(all_items(fast), all_items(slow), strict=True):
        assert len(a) == len(b) == 3
        for u, v in zip(a, b, strict=True):
            assert u.dtype == v.dtype
            assert u.shape == v.shape
            assert torch.equal(u, v)
    order = [7, 0, 9, 3, 3, 5]  # a batch across blocks, as a DataLoader fetches it
    batch = next(iter(DataLoader(fast, batch_size=6, sampler=order)))
    for field, column in enumerate(batch):
        assert torch.equal(column, torch.stack([slow[i][field] for i in order]))


def test_channel_order_follows_each_variable_dim_order():
    ds = climate(None)
    x, y = ForecastDataset(ds, inputs=["z"], targets=["t"], window=2)[4]  # steps 4, 5 -> 6
    z = ds["z"].values  # (level, time, lat, lon): channels level-major, then step
    want = np.stack([z[0, 4], z[0, 5], z[1, 4], z[1, 5]])
    np.testing.assert_array_equal(x.numpy(), np.nan_to_num(want).astype(np.float32))
    np.testing.assert_array_equal(y[0].numpy(), ds["t"].values[6])


def test_each_chunk_is_read_once_in_an_epoch():
    reads: list[int] = []

    def load(i: int) -> np.ndarray:
        reads.append(i)
        return np.full((4, LAT, LON), float(i))

    data = dsa.concatenate([dsa.from_delayed(dask.delayed(load)(i), (4, LAT, LON), float)
                            for i in range(6)])  # 6 chunks of 4 steps
    ds = xr.Dataset({"t": (("time", "lat", "lon"), data)},
                    coords={"lat": np.linspace(-50, 50, LAT), "lon": np.arange(LON) * 36.0})
    fast = ForecastDataset(ds, window=2, lead=1, tokenizer=PatchTokenizer(2))
    reads.clear()  # the layout probe read item 0
    loader = DataLoader(fast, batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    n = sum(batch[0].shape[0] for batch in loader)
    assert n == 24 - 2 - 1 + 1
    assert sorted(reads) == list(range(6))  # every chunk once, none twice
    x, y = fast[5]  # steps 5, 6 -> 7: chunk 1 (steps 4..7), values 1.0 everywhere
    assert float(x.min()) == float(x.max()) == 1.0
    assert float(y.min()) == 1.0


def test_small_cache_with_block_sampler_reads_each_block_once():
    ds = climate(4)  # 6 chunks of 4 steps (the last has 3)
    step_bytes = LAT * LON * (4 + LEV * 8)
    # blocks are the 6 chunks (a block may take a quarter of the cache); the cache holds 4
    data = ForecastDataset(ds, window=1, lead=1, cache_bytes=4 * 4 * step_bytes)
    assert data._blocks.edges.tolist() == [0, 4, 8, 12, 16, 20, 23]
    sampler = BlockShuffleSampler(data, blocks_per_group=2, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(data)))
    assert order != sorted(order)
    for i in order:
        data[i]
    cache = data._blocks.cache
    assert cache.bytes <= cache.max_bytes
    # each group of 2 blocks (plus the next block for items near a block's end) is read once
    assert cache.loads <= 6 + 3
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_pickled_dataset_has_an_empty_cache_and_the_same_items():
    data = ForecastDataset(climate(5), tokenizer=PatchTokenizer(2), window=2)
    x0, y0 = data[7]
    assert data._blocks.cache.bytes > 0
    again = pickle.loads(pickle.dumps(data))
    assert again._blocks.cache.bytes == 0
    x1, y1 = again[7]
    assert torch.equal(x0, x1)
    assert torch.equal(y0, y1)


def test_block_edges_follow_chunks_and_cut_long_ones():
    assert block_edges(10, [0, 4, 10], 3).tolist() == [0, 3, 4, 7, 10]
    assert block_edges(7, None, 3).tolist() == [0, 3, 6, 7]


def test_cache_keeps_its_budget_and_the_newest_block():
    cache = BlockCache(250)
    for i in range(4):
        cache.get(i, lambda i: np.zeros(100, dtype=np.uint8))
    assert cache.bytes == 200
    assert cache.loads == 4
    assert cache.get(3, lambda i: pytest.fail("block 3 should be cached")) is not None


def test_bad_cache_and_sampler_arguments():
    ds = climate(5)
    with pytest.raises(ValueError, match=r"cache_bytes=-1 must be an int >= 0"):
        ForecastDataset(ds, cache_bytes=-1)
    with pytest.raises(ValueError, match=r"blocks_per_group=0 must be a positive int"):
        BlockShuffleSampler(ForecastDataset(ds), blocks_per_group=0)
    with pytest.raises(ValueError, match="lat_weighted=True needs a 'lat' coordinate"):
        ForecastDataset(ds.drop_vars("lat"), lat_weighted=True)
