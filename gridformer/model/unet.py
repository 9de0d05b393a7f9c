"""A compact U-Net baseline with GridFormer's call signature ``model(tokens, layout)``.

PDEArena (Gupta & Brandstetter 2022) found a plain U-Net the strongest simple baseline for
neural PDE solvers. This one is deliberately small (CPU budgets, 1-D and 2-D grids)::

    lift (3x3) -> block(w)  ------------------------------------ concat -> block(w) -> project
                    \\ avg-pool 2 -> block(2w) ----- concat -> block(2w) ↗ (nearest x2, conv)
                                        \\ avg-pool 2 -> block(4w) ↗ (nearest x2, conv)

with ``levels`` poolings (default 2) and ``block = conv3x3 -> GELU -> conv3x3 -> GELU``. Every
convolution pads *circularly* on the layout's periodic dims and with zeros elsewhere, so on a
periodic grid the model commutes with shifts by multiples of ``2**levels`` cells (pooling
breaks finer shifts). No normalisation layers: GroupNorm would make the update depend on the
field's amplitude only through its shape, which a PDE step does not.

Tokens ``(B, N, D)`` are reshaped to the patch grid as in :mod:`gridformer.model.baselines`
(space-time frames folded into channels). Masks: tokens that ``layout.valid`` or ``mask=``
mark invalid are zeroed before the first layer, and hidden features at cells with no valid
frame are zeroed after every block (at coarser levels: cells of which no fine cell is valid),
so an invalid cell is never read and acts like the zero padding outside a non-periodic grid.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gridformer.model.baselines import _check_head, _masked_input, _output, tokens_to_grid
from gridformer.model.gridformer import GridFormerOutput

__all__ = ["UNet"]


def _pad(x: Tensor, periodic: tuple[bool, ...], r: int) -> Tensor:
    """Pad the last ``len(periodic)`` axes of ``x`` by ``r``: circular where periodic, else 0."""
    for axis, wrap in enumerate(periodic):
        dim = x.ndim - len(periodic) + axis
        if wrap:
            x = torch.cat([x.narrow(dim, x.shape[dim] - r, r), x, x.narrow(dim, 0, r)], dim)
        else:
            x = F.pad(x, [0, 0] * (x.ndim - dim - 1) + [r, r])
    return x


class _Block(nn.Module):
    """``conv3x3 -> GELU -> conv3x3 -> GELU`` (1-D or 2-D), padding set per axis."""

    def __init__(self, c_in: int, c_out: int, ndim: int) -> None:
        super().__init__()
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        self.conv1, self.conv2 = conv(c_in, c_out, 3), conv(c_out, c_out, 3)

    def forward(self, x: Tensor, periodic: tuple[bool, ...]) -> Tensor:
        x = F.gelu(self.conv1(_pad(x, periodic, 1)))  # (B, c_out, *grid)
        return F.gelu(self.conv2(_pad(x, periodic, 1)))  # (B, c_out, *grid)


class UNet(nn.Module):
    """Compact U-Net (PDEArena's strongest simple baseline), 1-D or 2-D.

    Parameters
    ----------
    in_features, out_features
        Token size D in, output size per token (field) or per sample (index/class).
    width
        Channels at full resolution; level ``l`` has ``width * 2**l``.
    levels
        Number of 2x poolings (>= 1). Each patch-grid dim must be divisible by ``2**levels``.
    ndim
        1 or 2 grid axes.
    frames
        Frames F of space-time layouts (folded into channels).
    head
        ``"field"``, ``"index"`` or ``"class"``.

    Examples
    --------
    >>> layout = TokenLayout.for_grid((32, 32), periodic=True)              # doctest: +SKIP
    >>> UNet(1, 1, width=16)(torch.randn(4, 1024, 1), layout).prediction.shape  # doctest: +SKIP
    torch.Size([4, 1024, 1])
    """

    def __init__(self, in_features: int, out_features: int, *, width: int = 16,
                 levels: int = 2, ndim: int = 2, frames: int = 1, head: str = "field") -> None:
        super().__init__()
        _check_head(head)
        if ndim not in (1, 2):
            msg = f"ndim={ndim} must be 1 or 2"
            raise ValueError(msg)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            msg = f"levels={levels!r} must be an integer >= 1 (number of 2x poolings)"
            raise ValueError(msg)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            msg = f"width={width!r} must be a positive integer"
            raise ValueError(msg)
        self.config = {"in_features": in_features, "out_features": out_features,
                       "width": width, "levels": levels, "ndim": ndim, "frames": frames,
                       "head": head}
        self.in_features, self.frames, self.ndim, self.levels = in_features, frames, ndim, levels
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        widths = [width * 2**level for level in range(levels + 1)]
        self.lift = conv(frames * in_features, width, 3)
        self.down = nn.ModuleList(
            _Block(widths[max(level - 1, 0)], widths[level], ndim) for level in range(levels + 1))
        self.up_conv = nn.ModuleList(conv(widths[level + 1], widths[level], 3)
                                     for level in range(levels))
        self.up = nn.ModuleList(_Block(2 * widths[level], widths[level], ndim)
                                for level in range(levels))
        out_channels = out_features * (frames if head == "field" else 1)
        self.project = conv(width, out_channels, 1)
        self.pool_head = nn.Linear(out_channels, out_features) if head != "field" else None

    def _check_grid(self, layout: Any) -> tuple[int, ...]:
        grid = tuple(int(g) for g in layout.patch_grid_shape)
        factor = 2**self.levels
        if len(grid) != self.ndim or any(g % factor for g in grid):
            msg = (f"the UNet with levels={self.levels}, ndim={self.ndim} needs a {self.ndim}-D "
                   f"patch grid whose sizes are multiples of {factor}; got patch_grid_shape="
                   f"{grid} (use fewer levels or pad the grid)")
            raise ValueError(msg)
        return grid

    def _pool(self, x: Tensor) -> Tensor:
        return (F.avg_pool1d if self.ndim == 1 else F.avg_pool2d)(x, 2)  # (B, C, *grid / 2)

    def forward(self, tokens: Tensor, layout: Any, return_attention: bool = False,
                mask: Tensor | None = None) -> GridFormerOutput:
        """``tokens`` (B, N, D) -> prediction (B, N, out) or (B, out); no attention maps.

        ``mask`` (B, N) bool, True for valid tokens, is combined (and) with ``layout.valid``.
        """
        self._check_grid(layout)
        tokens, keep = _masked_input(tokens, layout, mask, self.in_features,
                                     self.lift.weight.dtype)
        periodic = tuple(bool(p) for p in getattr(layout, "periodic", (False,) * self.ndim))
        keeps = [keep]  # (B, 1, *grid) per level, or None
        for _ in range(self.levels):
            keeps.append(None if keeps[-1] is None else  # a coarse cell with any valid cell
                         (F.max_pool1d if self.ndim == 1 else F.max_pool2d)(keeps[-1], 2))

        def masked(x: Tensor, level: int) -> Tensor:
            return x if keeps[level] is None else x * keeps[level]

        x = masked(self.lift(_pad(tokens_to_grid(tokens, layout), periodic, 1)), 0)  # (B, w, ..)
        skips = []
        for level, block in enumerate(self.down):
            x = masked(block(self._pool(x) if level else x, periodic), level)  # (B, w_l, ...)
            skips.append(x)
        x = skips.pop()  # bottleneck (B, w_L, *grid / 2**L)
        for level in reversed(range(self.levels)):
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, w_{l+1}, *grid_l)
            x = self.up_conv[level](_pad(x, periodic, 1))  # (B, w_l, *grid_l)
            x = torch.cat([x, skips.pop()], dim=1)  # (B, 2 w_l, *grid_l)
            x = masked(self.up[level](x, periodic), level)  # (B, w_l, *grid_l)
        return _output(self.project(x), self.frames, self.pool_head, keep)
