"""Hand-built layouts, FD stencils and attention matrices for the analysis tests."""

from __future__ import annotations

import numpy as np
import torch

from gridformer.tokenize import TokenLayout


def make_layout(grid_shape: tuple[int, ...], dims: tuple[str, ...] = ("y", "x"),
                periodic: bool = True) -> TokenLayout:
    """One token per cell of a bare grid (periodic by default)."""
    return TokenLayout.for_grid(grid_shape, patch_size=1, periodic=periodic, dims=dims)


def heat_stencil(r_y: float, r_x: float) -> dict[tuple[int, int], float]:
    """Forward-Euler 5-point heat stencil, r = D dt / h^2 per axis."""
    return {(0, 0): 1 - 2 * r_y - 2 * r_x, (-1, 0): r_y, (1, 0): r_y, (0, -1): r_x, (0, 1): r_x}


def stencil_attention(weights: dict[tuple, float], layout) -> torch.Tensor:
    """Attention matrix (1, 1, N, N) whose row q puts weights[o] on key q + o."""
    offsets = layout.offsets().numpy()  # (N, N, ndim)
    attention = np.zeros(offsets.shape[:2])
    for offset, w in weights.items():
        attention[np.all(offsets == np.array(offset), axis=-1)] = w
    return torch.as_tensor(attention)[None, None]


def apply_stencil(u: np.ndarray, weights: dict[tuple, float]) -> np.ndarray:
    """u_new[i] = sum_o w[o] u[i + o] on a periodic grid (last len(o) axes)."""
    out = np.zeros_like(u)
    for offset, w in weights.items():
        axes = tuple(range(u.ndim - len(offset), u.ndim))
        out += w * np.roll(u, tuple(-o for o in offset), axis=axes)
    return out


def smooth_fields(n: int, shape: tuple[int, ...], seed: int = 0, modes: int = 3) -> np.ndarray:
    """(n, *shape) random sums of low Fourier modes."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.arange(s) / s for s in shape), indexing="ij")
    out = np.zeros((n, *shape))
    for b in range(n):
        for _ in range(modes):
            k = rng.integers(-3, 4, size=len(shape))
            phase = rng.uniform(0, 2 * np.pi)
            out[b] += rng.normal() * np.cos(2 * np.pi * sum(ki * g for ki, g in
                                                            zip(k, grids, strict=True)) + phase)
    return out
