"""GridFormer: a transformer over the tokens of a grid, aware of the grid through ``TokenLayout``.

::

    tokens (B, N, D) --embed--> (B, N, C) [+ absolute / sincos position] [+ frame code]
        --blocks (attention logits + relative / distance bias, invalid keys masked)-->
        --norm--> features (B, N, C) --head--> prediction
            field: (B, N, out)   index / class: pooled (B, out)

Space-time tokens: "relative" reads the frame offset from its 3-D offset table; "absolute",
"sincos" and "geodesic" (whose tables and distances are spatial only) add a fixed sine-cosine
code of the token's frame (:func:`~gridformer.model.position.frame_embedding`), so that frames
are told apart; "none" has no position at all.

The geometry that depends only on the layout (relative offset index, distances, key mask,
fixed position table) is built once per layout object and device and cached.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gridformer.model._masks import combine_masks, layout_key_mask, masked_mean
from gridformer.model.config import GridFormerConfig
from gridformer.model.layers import Block
from gridformer.model.position import (
    DistanceBias,
    RelativePositionBias,
    frame_embedding,
    relative_index,
    resample_absolute,
    sincos_embedding,
)

__all__ = ["GridFormer", "GridFormerOutput"]

#: Position modes whose encoding is spatial only, so space-time tokens get a frame code.
_FRAME_CODED = ("absolute", "sincos", "geodesic")


@dataclass
class GridFormerOutput:
    """What :class:`GridFormer` returns.

    Attributes
    ----------
    prediction
        ``(B, N, out_features)`` for head="field", ``(B, out_features)`` for "index"/"class".
    attention
        One ``(B, H, N, N)`` weight tensor per layer when ``return_attention=True``, else None
        (``N + 1`` with pool="cls" on pooled heads, the class token first).
    features
        ``(B, N, dim)`` final token features (after the last norm), for linear probing.
    """

    prediction: Tensor
    attention: tuple[Tensor, ...] | None
    features: Tensor


@dataclass
class _Geometry:
    """Layout-dependent, parameter-free tensors, cached per (layout, device)."""

    rel_index: Tensor | None  # (N', N') int64, value K = no bias (class token pairs)
    distances: Tensor | None  # (N', N') float32, 0 on class token pairs
    key_mask: Tensor | None  # (B', N) bool, None when every token is valid
    fixed_position: Tensor | None  # (N, C) float32: sincos table and / or frame code


class GridFormer(nn.Module):
    """Transformer over grid tokens; see :class:`GridFormerConfig` for every option.

    Examples
    --------
    >>> model = GridFormer(dataclasses.replace(TINY, in_features=4))        # doctest: +SKIP
    >>> out = model(tokens, layout, return_attention=True)                  # doctest: +SKIP
    >>> out.prediction.shape, out.attention[0].shape                        # doctest: +SKIP
    (torch.Size([B, N, 1]), torch.Size([B, 2, N, N]))
    """

    def __init__(self, config: GridFormerConfig) -> None:
        super().__init__()
        if not isinstance(config, GridFormerConfig):
            msg = f"config must be a GridFormerConfig, not {type(config).__name__}"
            raise TypeError(msg)
        self.config = cfg = config
        self.embed = nn.Linear(cfg.in_features, cfg.dim)
        self.pos_table = None
        if cfg.position == "absolute":
            self.pos_table = nn.Parameter(torch.randn(*cfg.reference_grid, cfg.dim) * 0.02)
        self.relative = None
        if cfg.position == "relative":
            self.relative = RelativePositionBias(cfg.heads, cfg.ndim, cfg.max_relative_offset)
        self.distance = None
        if cfg.distance_bias is not None or cfg.position == "geodesic":
            value = "learned" if cfg.learned_distance_bias else cfg.distance_bias
            self.distance = DistanceBias(cfg.heads, value, cfg.distance_scale_km)
        self.cls_token = None
        if cfg.head != "field" and cfg.pool == "cls":
            self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)
        n_offsets = (2 * cfg.max_relative_offset + 1) ** cfg.ndim
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, mlp_ratio=cfg.mlp_ratio, norm=cfg.norm,
                  residual=cfg.residual, dropout=cfg.dropout, content=cfg.content_attention,
                  relative_content=cfg.relative_content,
                  relative_key_content=cfg.relative_key_content, nonlinear_qk=cfg.nonlinear_qk,
                  n_offsets=n_offsets)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim) if cfg.norm else nn.Identity()
        self.head = nn.Linear(cfg.dim, cfg.out_features)
        self._geometry_cache: OrderedDict[tuple[int, str], tuple[Any, _Geometry]] = OrderedDict()

    # ------------------------------------------------------------------ forward
    def forward(self, tokens: Tensor, layout: Any, return_attention: bool = False,
                mask: Tensor | None = None) -> GridFormerOutput:
        """Run the model.

        Parameters
        ----------
        tokens
            ``(B, N, in_features)`` float tensor from the tokenizer, any float dtype (cast to
            the dtype of the model's parameters; the outputs are in that dtype).
        layout
            The ``TokenLayout`` of the tokens (geometry, valid mask).
        return_attention
            Use the explicit softmax and return every layer's weights.
        mask
            Optional ``(B, N)`` bool, True for tokens that may be attended to; combined (and)
            with ``layout.valid``.
        """
        cfg = self.config
        B, N, _D = self._check_tokens(tokens, layout)
        tokens = tokens.to(self.embed.weight.dtype)  # e.g. float64 tokens into a float32 model
        geo = self._geometry(layout, tokens.device)
        key_mask = combine_masks(geo.key_mask, mask, B, N, tokens.device)

        x = self.embed(tokens)  # (B, N, C)
        if self.pos_table is not None:
            x = x + self._absolute_position(layout)  # (N, C) broadcast
        if geo.fixed_position is not None:
            x = x + geo.fixed_position.to(x.dtype)  # (N, C) broadcast
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, N + 1, C)
            if key_mask is not None:
                key_mask = torch.cat([key_mask.new_ones(B, 1), key_mask], dim=1)  # (B, N + 1)
        x = self.drop(x)
        bias = self._position_bias(geo)  # (1, H, N', N') or None

        maps = []
        for block in self.blocks:
            x, weights = block(x, bias, key_mask, geo.rel_index, return_attention=return_attention)
            maps.append(weights)
        x = self.norm(x)

        features = x[:, 1:] if self.cls_token is not None else x  # (B, N, C)
        if cfg.head == "field":
            prediction = self.head(features)  # (B, N, out)
        elif self.cls_token is not None:
            prediction = self.head(x[:, 0])  # (B, out)
        else:
            prediction = self.head(masked_mean(features, key_mask))  # (B, out)
        return GridFormerOutput(prediction, tuple(maps) if return_attention else None, features)

    # ------------------------------------------------------------------ pieces
    def _check_tokens(self, tokens: Tensor, layout: Any) -> tuple[int, int, int]:
        if not isinstance(tokens, Tensor) or tokens.ndim != 3:
            shape = getattr(tokens, "shape", None)
            msg = f"tokens must be a (B, N, D) torch.Tensor, got shape {shape}"
            raise TypeError(msg)
        if not tokens.is_floating_point():
            msg = (
                f"tokens must be a floating-point tensor, got dtype {tokens.dtype}; tokenize with "
                f"PatchTokenizer or call tokens.float()"
            )
            raise TypeError(msg)
        B, N, D = tokens.shape
        if self.config.in_features != D:
            msg = (
                f"tokens have D={D} features per token but config.in_features="
                f"{self.config.in_features}; build the model with in_features={D} or tokenize "
                f"with the patch size / variables it was built for"
            )
            raise ValueError(msg)
        if layout.n_tokens != N:
            msg = f"tokens have N={N} tokens but layout.n_tokens={layout.n_tokens}"
            raise ValueError(msg)
        return B, N, D

    def _absolute_position(self, layout: Any) -> Tensor:
        grid = tuple(layout.patch_grid_shape)
        table = resample_absolute(self.pos_table, grid)  # (*grid, C)
        table = table.reshape(math.prod(grid), -1)  # (G, C)
        return table.repeat(getattr(layout, "n_frames", 1), 1)  # (N, C)

    def _position_bias(self, geo: _Geometry) -> Tensor | None:
        bias = None
        if self.relative is not None:
            bias = self.relative(geo.rel_index)  # (H, N', N')
        if self.distance is not None:
            d = self.distance(geo.distances)  # (H, N', N')
            bias = d if bias is None else bias + d
        return None if bias is None else bias.unsqueeze(0)  # (1, H, N', N')

    def _geometry(self, layout: Any, device: torch.device) -> _Geometry:
        key = (id(layout), str(device))
        hit = self._geometry_cache.get(key)
        if hit is not None and hit[0] is layout:
            self._geometry_cache.move_to_end(key)
            return hit[1]
        geo = self._build_geometry(layout, device)
        self._geometry_cache[key] = (layout, geo)  # strong ref: the id cannot be reused
        while len(self._geometry_cache) > 4:
            self._geometry_cache.popitem(last=False)
        return geo

    def _build_geometry(self, layout: Any, device: torch.device) -> _Geometry:
        cfg = self.config
        n_cls = 1 if self.cls_token is not None else 0
        rel_index = distances = fixed = None
        if self.relative is not None or cfg.relative_content or cfg.relative_key_content:
            offsets = torch.as_tensor(layout.offsets())  # (N, N, ndim)
            if offsets.shape[-1] != cfg.ndim:
                msg = (
                    f"the layout has {offsets.shape[-1]}-D token offsets but config.ndim="
                    f"{cfg.ndim}; build the model with ndim={offsets.shape[-1]}"
                )
                raise ValueError(msg)
            index = relative_index(offsets, tuple(layout.patch_size), cfg.max_relative_offset)
            no_bias = (2 * cfg.max_relative_offset + 1) ** cfg.ndim  # K: the zero column
            rel_index = nn.functional.pad(index, (n_cls, 0, n_cls, 0), value=no_bias)
            rel_index = rel_index.to(device)  # (N', N')
        if self.distance is not None:
            d = torch.as_tensor(layout.distances(), dtype=torch.float32)  # (N, N)
            distances = nn.functional.pad(d, (n_cls, 0, n_cls, 0)).to(device)  # (N', N')
        if cfg.position == "sincos":
            grid = tuple(layout.patch_grid_shape)
            table = sincos_embedding(grid, cfg.dim)  # (G, C)
            fixed = table.repeat(getattr(layout, "n_frames", 1), 1)  # (N, C), frame-major
        if getattr(layout, "is_spacetime", False) and cfg.position in _FRAME_CODED:
            frames = frame_embedding(layout.time_index, cfg.dim)  # (N, C)
            fixed = frames if fixed is None else fixed + frames
        fixed = fixed.to(device) if fixed is not None else None
        return _Geometry(rel_index, distances, layout_key_mask(layout, device), fixed)

