"""Baselines with GridFormer's call signature ``model(tokens, layout) -> output.prediction``.

- :class:`LocalCNN`: a stack of small convolutions whose receptive field is stated
  (``receptive_field``, in patches) and limited; circular padding on periodic dims, zero
  padding elsewhere. What a purely local model can do.
- :class:`FNO`: a compact Fourier neural operator (Li et al. 2021) in 1-D or 2-D: lift, then
  layers of ``gelu(spectral_conv(x) + pointwise(x))``, then project. Global but fixed mixing.

Both reshape tokens ``(B, N, D)`` to the patch grid ``(B, F*D, *patch_grid_shape)`` (F frames
folded into channels) and back. ``head="index"``/``"class"`` mean-pool the grid to a vector.

Masks: tokens that ``layout.valid`` or ``mask=`` mark invalid are never read. They are zeroed
before the first layer, and hidden features at cells with no valid frame are zeroed after every
hidden layer, so an invalid cell acts like the zero padding outside a non-periodic grid; pooled
heads average valid cells only. (Scoring only valid tokens is the loss's job: ``fit`` passes
the same mask to it.) Tokens of any float dtype are cast to the dtype of the parameters.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gridformer.model._masks import combine_masks, layout_key_mask
from gridformer.model.gridformer import GridFormerOutput

__all__ = ["FNO", "LocalCNN", "SpectralConv", "grid_to_tokens", "tokens_to_grid"]


def tokens_to_grid(tokens: Tensor, layout: Any) -> Tensor:
    """``(B, N, D)`` tokens -> ``(B, F * D, *patch_grid_shape)`` image (frames into channels)."""
    grid = tuple(layout.patch_grid_shape)
    frames = getattr(layout, "n_frames", 1)
    B, N, D = tokens.shape
    if frames * math.prod(grid) != N:
        msg = f"tokens have N={N} but the layout has {frames} x {grid} tokens"
        raise ValueError(msg)
    x = tokens.reshape(B, frames, *grid, D)  # (B, F, *grid, D)
    x = x.movedim(-1, 2)  # (B, F, D, *grid)
    return x.reshape(B, frames * D, *grid)  # (B, F*D, *grid)


def grid_to_tokens(x: Tensor, frames: int = 1) -> Tensor:
    """``(B, F * C, *grid)`` image -> ``(B, N, C)`` tokens, inverse of :func:`tokens_to_grid`."""
    B, FC, *grid = x.shape
    x = x.reshape(B, frames, FC // frames, *grid)  # (B, F, C, *grid)
    x = x.movedim(2, -1)  # (B, F, *grid, C)
    return x.reshape(B, -1, FC // frames)  # (B, N, C)


def _check_head(head: str) -> None:
    if head not in ("field", "index", "class"):
        msg = f"head={head!r} is not one of ['field', 'index', 'class']"
        raise ValueError(msg)


def _check_features(tokens: Tensor, in_features: int) -> None:
    if not isinstance(tokens, Tensor) or not tokens.is_floating_point():
        kind = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
        msg = f"tokens must be a floating-point torch.Tensor (B, N, D), got {kind}"
        raise TypeError(msg)
    if tokens.ndim != 3 or tokens.shape[-1] != in_features:
        msg = (
            f"tokens of shape {tuple(tokens.shape)} do not have in_features={in_features} "
            f"features per token (expected (B, N, {in_features}))"
        )
        raise ValueError(msg)


def _masked_input(tokens: Tensor, layout: Any, mask: Tensor | None, in_features: int,
                  dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """Cast ``tokens`` to ``dtype`` and zero the invalid ones.

    Returns the tokens ``(B, N, D)`` and the cells to keep in hidden layers ``(B, 1, *grid)``
    (1 where any frame of the cell is valid, else 0), or None when every token is valid.
    """
    _check_features(tokens, in_features)
    tokens = tokens.to(dtype)  # e.g. float64 tokens into a float32 model
    B, N, _ = tokens.shape
    keep = combine_masks(layout_key_mask(layout, tokens.device), mask, B, N, tokens.device)
    if keep is None:
        return tokens, None
    tokens = tokens.masked_fill(~keep[..., None], 0.0)  # (B, N, D); also drops NaN there
    cells = tokens_to_grid(keep[..., None].to(dtype), layout)  # (B, F, *grid)
    return tokens, cells.amax(dim=1, keepdim=True)  # (B, 1, *grid)


class LocalCNN(nn.Module):
    """Local convolutional baseline with a stated, limited receptive field.

    Parameters
    ----------
    in_features, out_features
        Token size D in, output size per token (field) or per sample (index/class).
    hidden
        Channels of the hidden layers.
    layers
        Number of convolutions (``layers - 1`` GELUs in between).
    kernel_size
        Odd kernel size per axis.
    ndim
        1 or 2 grid axes.
    frames
        Frames F of space-time layouts (folded into channels).
    head
        "field", "index" or "class".

    Attributes
    ----------
    receptive_field
        Width in patches of the input window that one output token sees:
        ``1 + layers * (kernel_size - 1)``.
    """

    def __init__(self, in_features: int, out_features: int, *, hidden: int = 32, layers: int = 3,
                 kernel_size: int = 3, ndim: int = 2, frames: int = 1, head: str = "field"
                 ) -> None:
        super().__init__()
        _check_head(head)
        if ndim not in (1, 2):
            msg = f"ndim={ndim} must be 1 or 2"
            raise ValueError(msg)
        if kernel_size % 2 == 0 or kernel_size < 1:
            msg = f"kernel_size={kernel_size} must be a positive odd integer"
            raise ValueError(msg)
        self.config = {"in_features": in_features, "out_features": out_features,
                       "hidden": hidden, "layers": layers, "kernel_size": kernel_size,
                       "ndim": ndim, "frames": frames, "head": head}
        self.in_features, self.head, self.frames = in_features, head, frames
        self.ndim, self.kernel_size = ndim, kernel_size
        self.receptive_field = 1 + layers * (kernel_size - 1)
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        out_channels = out_features * (frames if head == "field" else 1)
        widths = [frames * in_features] + [hidden] * (layers - 1) + [out_channels]
        self.convs = nn.ModuleList(
            conv(a, b, kernel_size) for a, b in itertools.pairwise(widths)
        )
        self.pool_head = nn.Linear(out_channels, out_features) if head != "field" else None

    def _pad(self, x: Tensor, periodic: tuple[bool, ...]) -> Tensor:
        r = self.kernel_size // 2
        for axis, wrap in enumerate(periodic):  # axis 0 is the first grid dim
            dim = x.ndim - len(periodic) + axis
            if wrap:
                x = torch.cat([x.narrow(dim, x.shape[dim] - r, r), x, x.narrow(dim, 0, r)], dim)
            else:
                pad = [0, 0] * (x.ndim - dim - 1) + [r, r]
                x = F.pad(x, pad)
        return x

    def forward(self, tokens: Tensor, layout: Any, return_attention: bool = False,
                mask: Tensor | None = None) -> GridFormerOutput:
        """``tokens`` (B, N, D) -> prediction (B, N, out) or (B, out); no attention maps.

        ``mask`` (B, N) bool, True for valid tokens, is combined (and) with ``layout.valid``.
        """
        tokens, keep = _masked_input(tokens, layout, mask, self.in_features,
                                     self.convs[0].weight.dtype)
        periodic = tuple(getattr(layout, "periodic", (False,) * self.ndim))
        x = tokens_to_grid(tokens, layout)  # (B, F*D, *grid)
        for i, conv in enumerate(self.convs):
            x = conv(self._pad(x, periodic))  # (B, channels, *grid)
            if i < len(self.convs) - 1:
                x = F.gelu(x)
                x = x * keep if keep is not None else x  # invalid cells stay zero
        return _output(x, self.frames, self.pool_head, keep)


class SpectralConv(nn.Module):
    """Fourier layer: keep the lowest ``modes`` frequencies per axis, multiply by learned
    complex weights (channels in -> out), transform back. 1-D or 2-D (``len(modes)``)."""

    def __init__(self, channels: int, modes: tuple[int, ...]) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        corners = 2 if len(modes) == 2 else 1  # positive and negative y frequencies
        self.weight = nn.Parameter(
            scale * torch.randn(corners, channels, channels, *modes, dtype=torch.cfloat)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, C, *grid) real -> (B, C, *grid)."""
        ndim = len(self.modes)
        grid = x.shape[-ndim:]
        with torch.autocast(x.device.type, enabled=False):
            xf = torch.fft.rfftn(x.float(), dim=tuple(range(-ndim, 0)))  # (B, C, ..., W//2+1)
            out = torch.zeros_like(xf)
            mx = min(self.modes[-1], xf.shape[-1])
            if ndim == 1:
                out[..., :mx] = torch.einsum("bix,oix->box", xf[..., :mx],
                                             self.weight[0, :, :, :mx].transpose(0, 1))
            else:
                my = min(self.modes[0], grid[0] // 2)
                w = self.weight[..., :my, :mx].transpose(1, 2)  # (2, out, in, my, mx)
                out[..., :my, :mx] = torch.einsum("biyx,oiyx->boyx", xf[..., :my, :mx], w[0])
                if my:
                    out[..., -my:, :mx] = torch.einsum("biyx,oiyx->boyx",
                                                       xf[..., -my:, :mx], w[1])
            return torch.fft.irfftn(out, s=grid, dim=tuple(range(-ndim, 0))).to(x.dtype)


class FNO(nn.Module):
    """Compact Fourier neural operator (periodic boundaries assumed by the FFT).

    Parameters
    ----------
    in_features, out_features
        Token size D in, output per token (field) or per sample (index/class).
    width
        Channels of the Fourier layers.
    modes
        Frequencies kept per axis; an int means the same on every axis of ``ndim``.
    layers
        Number of Fourier layers.
    ndim
        1 or 2 grid axes.
    frames, head
        As in :class:`LocalCNN`.
    """

    def __init__(self, in_features: int, out_features: int, *, width: int = 32,
                 modes: int | tuple[int, ...] = 12, layers: int = 4, ndim: int = 2,
                 frames: int = 1, head: str = "field") -> None:
        super().__init__()
        _check_head(head)
        if ndim not in (1, 2):
            msg = f"ndim={ndim} must be 1 or 2"
            raise ValueError(msg)
        modes = (modes,) * ndim if isinstance(modes, int) else tuple(modes)
        if len(modes) != ndim:
            msg = f"modes={modes} needs {ndim} entries for ndim={ndim}"
            raise ValueError(msg)
        self.config = {"in_features": in_features, "out_features": out_features,
                       "width": width, "modes": modes, "layers": layers, "ndim": ndim,
                       "frames": frames, "head": head}
        self.in_features, self.frames, self.ndim = in_features, frames, ndim
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        out_channels = out_features * (frames if head == "field" else 1)
        self.lift = conv(frames * in_features, width, 1)
        self.spectral = nn.ModuleList(SpectralConv(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(conv(width, width, 1) for _ in range(layers))
        self.project = nn.Sequential(conv(width, width, 1), nn.GELU(),
                                     conv(width, out_channels, 1))
        self.pool_head = nn.Linear(out_channels, out_features) if head != "field" else None

    def forward(self, tokens: Tensor, layout: Any, return_attention: bool = False,
                mask: Tensor | None = None) -> GridFormerOutput:
        """``tokens`` (B, N, D) -> prediction (B, N, out) or (B, out); no attention maps.

        ``mask`` (B, N) bool, True for valid tokens, is combined (and) with ``layout.valid``.
        """
        tokens, keep = _masked_input(tokens, layout, mask, self.in_features,
                                     self.lift.weight.dtype)
        x = self.lift(tokens_to_grid(tokens, layout))  # (B, width, *grid)
        for spectral, pointwise in zip(self.spectral, self.pointwise, strict=True):
            x = x * keep if keep is not None else x  # invalid cells are never read
            x = F.gelu(spectral(x) + pointwise(x))  # (B, width, *grid)
        x = x * keep if keep is not None else x
        return _output(self.project(x), self.frames, self.pool_head, keep)


def _output(x: Tensor, frames: int, pool_head: nn.Linear | None,
            keep: Tensor | None) -> GridFormerOutput:
    """Grid output (B, channels, *grid) -> GridFormerOutput (features = output tokens).

    ``keep`` (B, 1, *grid) or None: the cells pooled heads average over.
    """
    if pool_head is None:
        tokens = grid_to_tokens(x, frames)  # (B, N, out)
        return GridFormerOutput(tokens, None, tokens)
    if keep is None:
        pooled = x.flatten(2).mean(-1)  # (B, channels)
    else:
        pooled = (x * keep).flatten(2).sum(-1) / keep.flatten(2).sum(-1)  # (B, channels)
    return GridFormerOutput(pool_head(pooled), None, grid_to_tokens(x, 1))
