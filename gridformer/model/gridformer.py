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

Attention kernels (``GridFormerConfig.attention_kernel``, same outputs to float tolerance):
"dense" materialises the ``(1, H, N', N')`` bias from ``layout.offsets()`` /
``layout.distances()`` (the reference; "auto" uses it up to ``DENSE_MAX_TOKENS`` keys);
"chunked" reads the bias of each block of queries from per-layout tables
(:mod:`gridformer.model.blockwise`); "flex" computes it inside FlexAttention
(:mod:`gridformer.model.flex`). ``return_attention`` may name a query set
(:mod:`gridformer.model.queries`): the output then holds ``(B, H, Q, N')`` rows per layer,
their ``query_index`` and an :class:`~gridformer.model.probe.AttentionProbe`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gridformer.model._masks import combine_masks, layout_key_mask, masked_mean
from gridformer.model.bias import DensePositions, TablePositions
from gridformer.model.bias_tables import BiasGeometry, bias_geometry, token_grid
from gridformer.model.config import GridFormerConfig
from gridformer.model.layers import AttentionContext, Block
from gridformer.model.position import (
    DistanceBias,
    RelativePositionBias,
    frame_embedding,
    relative_index,
    resample_absolute,
    sincos_embedding,
    unclipped_relative_index,
)
from gridformer.model.probe import AttentionProbe
from gridformer.model.queries import check_full_maps_fit, query_positions
from gridformer.model.table_attention import TableIndex, relative_table

__all__ = ["DENSE_MAX_TOKENS", "GridFormer", "GridFormerOutput"]

#: Position modes whose encoding is spatial only, so space-time tokens get a frame code.
_FRAME_CODED = ("absolute", "sincos", "geodesic")

#: attention_kernel="auto" builds the dense (H, N', N') bias up to this many keys.
DENSE_MAX_TOKENS = 2048

#: Train a learned relative bias on the CPU with :mod:`gridformer.model.table_attention` (the
#: bias read from its table; same numbers as the reference path, fewer passes). False: the
#: dense bias through :func:`gridformer.model.attention.attention`.
TABLE_ATTENTION = True


@dataclass
class GridFormerOutput:
    """What :class:`GridFormer` returns.

    Attributes
    ----------
    prediction
        ``(B, N, out_features)`` for head="field", ``(B, out_features)`` for "index"/"class".
    attention
        Per layer: ``(B, H, N, N)`` weights with ``return_attention=True``; ``(B, H, Q, N)``
        rows for a query set (``query_index`` says whose); None otherwise (``N + 1`` keys
        with pool="cls" on pooled heads, the class token first).
    features
        ``(B, N, dim)`` final token features (after the last norm), for linear probing.
    query_index
        ``(Q,)`` key-axis position of each attention row for a query set (token ``n`` at
        ``n + 1`` after a class token), else None.
    probe
        For a query set: an :class:`~gridformer.model.probe.AttentionProbe` that forms any
        layer's rows and the rollout of any queries block by block (what
        ``analysis.attention_rollout`` and ``teleconnection_map`` use), else None.
    """

    prediction: Tensor
    attention: tuple[Tensor, ...] | None
    features: Tensor
    query_index: np.ndarray | None = None
    probe: AttentionProbe | None = None


@dataclass
class _Geometry:
    """Layout-dependent, parameter-free tensors, cached per (layout, device)."""

    # (N', N') int64, value K = no bias (class token pairs); None where bias_index serves alone
    rel_index: Tensor | None
    distances: Tensor | None  # (N', N') float32, 0 on class token pairs
    key_mask: Tensor | None  # (B', N) bool, None when every token is valid
    fixed_position: Tensor | None  # (N, C) float32: sincos table and / or frame code
    tables: BiasGeometry | None = None  # position tables of the chunked / flex kernels
    grid: tuple[int, ...] = ()  # the token grid ((frames,) + patch grid)
    table_index: TableIndex | None = None  # relative columns for table_attention (dense)
    # off the CPU: the dense relative bias gathered through every unclipped offset first
    # (RelativePositionBias.forward's fold): (N', N') int64 (value K' = no bias), (K' + 1,)
    bias_index: Tensor | None = None
    bias_fold: Tensor | None = None


def _spread_relative_gather(device: torch.device | str) -> bool:
    """Whether the dense relative bias is gathered through every unclipped offset first.

    Off the CPU: there the gather's backward, an ``index_add_``, is atomic adds, and clipped
    offsets pile onto a few edge entries of the table. (The CPU trains on the table path.)
    """
    return torch.device(device).type != "cpu"


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
    def forward(self, tokens: Tensor, layout: Any, return_attention: Any = False,
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
            ``False``; ``True`` for every layer's full ``(B, H, N, N)`` weights (refused when
            they would not fit in free memory); or a query set, giving ``(B, H, Q, N)`` rows
            per layer plus ``query_index`` and ``probe`` on the output: token indices (int,
            list, range, integer array), a place (tuple or mapping: a point or a box, as in
            ``analysis.query_tokens``) or ``"cls"`` (see :mod:`gridformer.model.queries`).
        mask
            Optional ``(B, N)`` bool, True for tokens that may be attended to; combined (and)
            with ``layout.valid``.
        """
        cfg = self.config
        B, N, _D = self._check_tokens(tokens, layout)
        tokens = tokens.to(self.embed.weight.dtype)  # e.g. float64 tokens into a float32 model
        n_cls = 1 if self.cls_token is not None else 0
        full = isinstance(return_attention, bool | np.bool_) and bool(return_attention)
        kernel = self._kernel(N + n_cls, full)
        geo = self._geometry(layout, tokens.device, dense=kernel == "dense")
        key_mask = combine_masks(geo.key_mask, mask, B, N, tokens.device)
        if key_mask is not None and self.cls_token is not None:
            key_mask = torch.cat([key_mask.new_ones(B, 1), key_mask], dim=1)  # (B, N + 1)
        queries = query_positions(return_attention, layout, n_cls, key_mask)
        if full:
            check_full_maps_fit(B, cfg.heads, cfg.depth, N + n_cls, tokens.device)

        x = self.embed(tokens)  # (B, N, C)
        if self.pos_table is not None:
            x = x + self._absolute_position(layout)  # (N, C) broadcast
        if geo.fixed_position is not None:
            x = x + geo.fixed_position.to(x.dtype)  # (N, C) broadcast
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, N + 1, C)
        x = self.drop(x)
        ctx = self._context(geo, kernel, key_mask, n_cls, x.dtype, full, queries)

        maps, records = [], []
        for block in self.blocks:
            if cfg.checkpoint_blocks and self.training and torch.is_grad_enabled():
                x, weights, record = checkpoint(block, x, ctx, use_reentrant=False)
            else:
                x, weights, record = block(x, ctx)
            maps.append(weights)
            records.append(record)
        x = self.norm(x)

        features = x[:, 1:] if self.cls_token is not None else x  # (B, N, C)
        if cfg.head == "field":
            prediction = self.head(features)  # (B, N, out)
        elif self.cls_token is not None:
            prediction = self.head(x[:, 0])  # (B, out)
        else:
            prediction = self.head(masked_mean(features, key_mask))  # (B, out)
        if queries is None:
            return GridFormerOutput(prediction, tuple(maps) if full else None, features)
        return GridFormerOutput(prediction, tuple(maps), features, query_index=queries,
                                probe=AttentionProbe(records))

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
        """The dense ``(1, H, N', N')`` bias (the reference; ``attention_kernel="dense"``)."""
        bias = None
        if self.relative is not None and geo.bias_fold is not None:
            bias = self.relative(geo.bias_index, geo.bias_fold)  # (H, N', N')
        elif self.relative is not None:
            bias = self.relative(geo.rel_index)  # (H, N', N')
        if self.distance is not None:
            d = self.distance(geo.distances)  # (H, N', N')
            bias = d if bias is None else bias + d
        return None if bias is None else bias.unsqueeze(0)  # (1, H, N', N')

    def _kernel(self, n_keys: int, full: bool) -> str:
        """The kernel of this call: the configured one, or "auto" resolved by size."""
        kernel = self.config.attention_kernel
        if kernel == "auto":
            kernel = "dense" if n_keys <= DENSE_MAX_TOKENS or not self._pairwise else "chunked"
        if kernel == "flex" and full:
            kernel = "chunked"  # FlexAttention returns no weights: full maps block by block
        return kernel

    @property
    def _pairwise(self) -> bool:
        """Whether the logits hold pairwise position terms (a bias or relative content)."""
        cfg = self.config
        return cfg.uses_bias or cfg.relative_content or cfg.relative_key_content

    def _context(self, geo: _Geometry, kernel: str, key_mask: Tensor | None, n_cls: int,
                 dtype: torch.dtype, full: bool, queries: np.ndarray | None
                 ) -> AttentionContext:
        """What the blocks of this forward share: kernel, position terms, mask, requests."""
        device = key_mask.device if key_mask is not None else self.embed.weight.device
        ctx = AttentionContext(kernel=kernel, key_mask=key_mask, grid=geo.grid, n_cls=n_cls,
                               full_maps=full, keep_logits=queries is not None,
                               max_rows=self.config.attention_chunk or None)
        if queries is not None:
            ctx.queries = torch.as_tensor(queries, device=device)
        if kernel == "dense" and self._takes_table_path(geo, dtype, device, full, queries):
            ctx.table_path = True
            if self.relative is not None:
                ctx.relative_table = relative_table(self.relative.table, geo.table_index,
                                                    n_cls=n_cls, dtype=dtype)
        elif kernel == "dense":
            ctx.dense_bias, ctx.rel_index = self._position_bias(geo), geo.rel_index
            if ctx.dense_bias is not None or ctx.rel_index is not None:
                n_keys = n_cls + math.prod(geo.grid)
                ctx.positions = DensePositions(ctx.dense_bias, ctx.rel_index, n_cls, n_keys)
        elif geo.tables is not None:
            ctx.positions = TablePositions(
                geo.tables,
                relative=self.relative.table if self.relative is not None else None,
                strength=self.distance.strength if self.distance is not None else None,
                scale=self.config.distance_scale_km, n_cls=n_cls, dtype=dtype)
        return ctx

    def _takes_table_path(self, geo: _Geometry, dtype: torch.dtype, device: torch.device,
                          full: bool, queries: np.ndarray | None) -> bool:
        """Whether this forward runs :func:`~gridformer.model.table_attention.table_attention`.

        That path serves forwards on the CPU with gradients on (training, or a gradient taken
        in eval mode) in float32 / float64 (no autocast) for content attention with no
        attention dropout in any layer and no query set, and either the learned relative bias
        alone (trained or frozen; no distance bias or relative content terms; the geometry
        holds its index only on the CPU), with or without full weights, or no position term
        in the logits at all when full weights are returned (``return_attention=True``;
        without them the fused kernel serves). Every other case takes the dense bias or the
        fused kernel.
        """
        cfg = self.config
        if not (TABLE_ATTENTION and device.type == "cpu"
                and torch.is_grad_enabled() and dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled("cpu") and cfg.content_attention
                and self.distance is None and not cfg.relative_content
                and not cfg.relative_key_content and queries is None
                and not (cfg.dropout > 0 and any(b.attn.training for b in self.blocks))):
            return False
        if self.relative is None:
            return full
        return geo.table_index is not None

    def _geometry(self, layout: Any, device: torch.device, dense: bool = True) -> _Geometry:
        key = (id(layout), str(device), dense)
        hit = self._geometry_cache.get(key)
        if hit is not None and hit[0] is layout:
            self._geometry_cache.move_to_end(key)
            return hit[1]
        geo = self._build_geometry(layout, device, dense)
        self._geometry_cache[key] = (layout, geo)  # strong ref: the id cannot be reused
        while len(self._geometry_cache) > 4:
            self._geometry_cache.popitem(last=False)
        return geo

    def _build_geometry(self, layout: Any, device: torch.device, dense: bool = True
                        ) -> _Geometry:
        cfg = self.config
        n_cls = 1 if self.cls_token is not None else 0
        rel_index = distances = fixed = tables = None
        relative = self.relative is not None or cfg.relative_content or cfg.relative_key_content
        grid = token_grid(layout)
        if relative and len(grid) != cfg.ndim:
            msg = (
                f"the layout has {len(grid)}-D token offsets but config.ndim="
                f"{cfg.ndim}; build the model with ndim={len(grid)}"
            )
            raise ValueError(msg)
        bias_index = bias_fold = None
        if dense and relative:
            offsets = torch.as_tensor(layout.offsets())  # (N, N, ndim)
            patch, M = tuple(layout.patch_size), cfg.max_relative_offset
            no_bias = (2 * M + 1) ** cfg.ndim  # K: the zero column
            content_terms = cfg.relative_content or cfg.relative_key_content
            if self.relative is not None and _spread_relative_gather(device):
                wide, fold = unclipped_relative_index(offsets, patch, M)
                bias_index = nn.functional.pad(wide, (n_cls, 0, n_cls, 0), value=len(fold))
                bias_index = bias_index.to(device)  # (N', N'), value K' = no bias
                bias_fold = nn.functional.pad(fold, (0, 1), value=no_bias).to(device)  # (K'+1,)
                # the clipped pair index only for the content terms that gather with it
                rel_index = bias_fold[bias_index] if content_terms else None  # (N', N')
            else:
                index = relative_index(offsets, patch, M)
                rel_index = nn.functional.pad(index, (n_cls, 0, n_cls, 0), value=no_bias)
                rel_index = rel_index.to(device)  # (N', N')
        table_index = None
        if dense and self.relative is not None and torch.device(device).type == "cpu":
            columns = bias_geometry(layout, max_offset=cfg.max_relative_offset,
                                    distance=False).columns
            table_index = TableIndex.from_columns(columns)
        if dense and self.distance is not None:
            d = torch.as_tensor(layout.distances(), dtype=torch.float32)  # (N, N)
            distances = nn.functional.pad(d, (n_cls, 0, n_cls, 0)).to(device)  # (N', N')
        if not dense and (relative or self.distance is not None):
            tables = bias_geometry(layout, max_offset=cfg.max_relative_offset if relative
                                   else None, distance=self.distance is not None).to(device)
        if cfg.position == "sincos":
            table = sincos_embedding(tuple(layout.patch_grid_shape), cfg.dim)  # (G, C)
            fixed = table.repeat(getattr(layout, "n_frames", 1), 1)  # (N, C), frame-major
        if getattr(layout, "is_spacetime", False) and cfg.position in _FRAME_CODED:
            frames = frame_embedding(layout.time_index, cfg.dim)  # (N, C)
            fixed = frames if fixed is None else fixed + frames
        fixed = fixed.to(device) if fixed is not None else None
        return _Geometry(rel_index, distances, layout_key_mask(layout, device), fixed, tables,
                         grid, table_index, bias_index, bias_fold)
