"""The direct chunk reader returns exactly what zarr returns, and only where it applies."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from gridformer.datasets._zarr_direct import direct_reader


def _plain(tmp_path, shape=(23, 5, 3), chunk=4, dtype="float32", **kwargs):
    array = zarr.create_array(tmp_path / "a.zarr", shape=shape, chunks=(chunk, *shape[1:]),
                              dtype=dtype, compressors=None, fill_value=np.nan
                              if np.dtype(dtype).kind == "f" else 0, **kwargs)
    values = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    array[:] = values
    return array, values


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
def test_every_range_equals_zarr_bit_for_bit(tmp_path, dtype):
    array, values = _plain(tmp_path, dtype=dtype)  # 23 steps in chunks of 4: a partial last one
    reader = direct_reader(array)
    assert reader is not None
    for start, stop in [(0, 23), (0, 1), (3, 4), (3, 5), (4, 8), (5, 22), (21, 23), (22, 23),
                        (7, 7)]:
        got = reader.read(start, stop)
        np.testing.assert_array_equal(got, array[start:stop])
        np.testing.assert_array_equal(got, values[start:stop])
        assert got.dtype == np.dtype(dtype)
        assert got.flags.c_contiguous


def test_a_chunk_zarr_left_out_reads_as_the_fill_value(tmp_path):
    array, _ = _plain(tmp_path)
    array[4:8] = np.nan  # all fill value: zarr removes the chunk's file
    assert not (tmp_path / "a.zarr" / "c" / "1" / "0" / "0").exists()
    got = direct_reader(array).read(2, 10)
    np.testing.assert_array_equal(got, array[2:10])
    assert np.isnan(got[2:6]).all()
    assert np.isfinite(got[:2]).all()


def test_a_truncated_chunk_file_is_an_error_naming_it(tmp_path):
    array, _ = _plain(tmp_path)
    path = tmp_path / "a.zarr" / "c" / "2" / "0" / "0"
    path.write_bytes(path.read_bytes()[:100])
    reader = direct_reader(array)
    np.testing.assert_array_equal(reader.read(0, 8), array[0:8])  # other chunks still read
    with pytest.raises(ValueError, match=r"c/2/0/0' holds 100 bytes from step 0, expected 120: "
                                         r"the store is damaged"):
        reader.read(6, 10)


@pytest.mark.parametrize("kwargs", [
    {"compressors": zarr.codecs.ZstdCodec()},       # compressed
    {"chunks": (4, 5, 1)},                          # chunked along a later axis
    {"shards": (8, 5, 3)},                          # sharded
])
def test_other_layouts_are_left_to_zarr(tmp_path, kwargs):
    options = {"shape": (23, 5, 3), "chunks": (4, 5, 3), "dtype": "float32",
               "compressors": None, **kwargs}
    array = zarr.create_array(tmp_path / "b.zarr", **options)
    assert direct_reader(array) is None


def test_a_big_endian_array_is_left_to_zarr(tmp_path):
    array = zarr.create_array(tmp_path / "c.zarr", shape=(8, 2), chunks=(4, 2), dtype=">f4",
                              compressors=None)
    assert direct_reader(array) is None
