"""Tokens from CUDA tensors equal those from the same data on the CPU; skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.tokenize import PatchTokenizer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_cuda_tensor_encodes_like_the_cpu_tensor(dtype):
    values = torch.randn(3, 17, 30, dtype=torch.float64)
    values[0, :4, :5] = float("nan")
    values = values.to(dtype)
    tok = PatchTokenizer(patch_size=4)
    dims = ("time", "y", "x")
    on_gpu, layout_gpu = tok.encode(values.cuda(), dims=dims)
    on_cpu, layout_cpu = tok.encode(values, dims=dims)
    assert on_gpu.dtype == dtype
    assert torch.equal(on_gpu, on_cpu)
    assert torch.equal(layout_gpu.valid, layout_cpu.valid)
    back = tok.decode(on_gpu.cuda(), layout_gpu)
    expected = values.float() if dtype == torch.bfloat16 else values
    np.testing.assert_array_equal(back.values, expected.numpy())
    assert isinstance(back, xr.DataArray)
