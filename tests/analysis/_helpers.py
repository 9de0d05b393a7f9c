"""Hand-built layouts, FD stencils and attention matrices for the analysis tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class GridLayout:
    """Stand-in for TokenLayout on a plain periodic grid with one token per cell."""

    grid_shape: tuple[int, ...]
    spatial_dims: tuple[str, ...] = ("y", "x")
    periodic: tuple[bool, ...] = field(default=())

    @property
    def patch_grid_shape(self) -> tuple[int, ...]:
        return self.grid_shape

    @property
    def n_tokens(self) -> int:
        return int(np.prod(self.grid_shape))

    def offsets(self) -> torch.Tensor:
        idx = np.stack(np.unravel_index(np.arange(self.n_tokens), self.grid_shape), -1)
        delta = idx[None, :, :] - idx[:, None, :]  # key minus query, (N, N, ndim)
        periodic = self.periodic or (True,) * len(self.grid_shape)
        for d, length in enumerate(self.grid_shape):
            if periodic[d]:
                delta[..., d] = (delta[..., d] + length // 2) % length - length // 2
        return torch.as_tensor(delta, dtype=torch.int64)


def make_layout(grid_shape: tuple[int, ...], dims: tuple[str, ...] = ("y", "x")):
    """The real TokenLayout when it exists, else the stand-in (same offsets convention)."""
    try:
        from gridformer.tokenize import TokenLayout

        return TokenLayout.for_grid(grid_shape, patch_size=1, periodic=True, dims=dims)
    except (ImportError, AttributeError):
        return GridLayout(tuple(grid_shape), dims)


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
