"""Transformer layers: self-attention with position terms, MLP, and the pre-norm block.

Letters in shape comments: B batch, N tokens (N' with a class token), C width (dim), H heads,
hd head size, K relative-offset table columns, Q query rows.

What every layer of one forward pass shares (kernel, position terms, key mask, which attention
to return) travels in an :class:`AttentionContext` built by the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gridformer.model.attention import attention
from gridformer.model.blockwise import (
    LayerLogits,
    attention_rows,
    blockwise_weights,
    chunked_attention,
)
from gridformer.model.table_attention import RelativeTable, table_attention

__all__ = ["MLP", "AttentionContext", "Block", "SelfAttention"]


@dataclass
class AttentionContext:
    """What the layers of one forward pass share.

    Attributes
    ----------
    kernel
        ``"dense"``, ``"chunked"`` or ``"flex"`` (see ``GridFormerConfig.attention_kernel``).
    positions
        ``DensePositions`` / ``TablePositions`` (:mod:`gridformer.model.bias`) or None.
    dense_bias, rel_index
        ``(1, H, N', N')`` bias and ``(N', N')`` relative index of the dense kernel (or None).
    key_mask
        ``(B, N')`` bool, True where a key may be attended to, or None.
    grid, n_cls
        The token grid and the number of class tokens first on the key axis.
    full_maps
        Return every layer's full ``(B, H, N', N')`` weights.
    queries
        Key-axis positions ``(Q,)`` whose rows to return, or None.
    keep_logits
        Return each layer's detached :class:`LayerLogits` (for an ``AttentionProbe``).
    max_rows
        Query rows per block of the chunked kernel (None: sized by memory).
    table_path
        The dense kernel runs :func:`~gridformer.model.table_attention.table_attention` (CPU,
        gradients on: the learned relative bias read from ``relative_table``, or no bias at all
        when full weights are returned; ``dense_bias`` is then None).
    relative_table
        The learned relative bias as a per-layout table on the table path (None: no bias).
    """

    kernel: str = "dense"
    positions: Any = None
    dense_bias: Tensor | None = None
    rel_index: Tensor | None = None
    key_mask: Tensor | None = None
    grid: tuple[int, ...] = ()
    n_cls: int = 0
    full_maps: bool = False
    queries: Tensor | None = None
    keep_logits: bool = False
    max_rows: int | None = None
    table_path: bool = False
    relative_table: RelativeTable | None = None


class SelfAttention(nn.Module):
    """Multi-head self-attention whose logits are content and/or position terms.

    Parameters
    ----------
    dim, heads
        Width C and number of heads H (H divides C).
    content
        Include ``q_i . k_j / sqrt(hd)``. False: no key projection, logits from ``bias`` only.
    relative_content
        Include ``q_i . R[h, index_ij] / sqrt(hd)`` with a learned ``R`` of shape
        ``(H, n_offsets, hd)`` (Shaw et al. 2018).
    relative_key_content
        Include ``k_j . S[h, index_ij] / sqrt(hd)`` with a learned ``S`` of shape
        ``(H, n_offsets, hd)`` (DeBERTa's position-to-content term).
    nonlinear_qk
        Project ``q`` and ``k`` from ``tanh(feature(x))`` (a learned ``C -> C`` layer) instead
        of ``x``, so the logits are nonlinear in the token content.
    n_offsets
        Columns K of the relative tables (``(2M+1)^ndim``); needed with ``relative_content``.
    dropout
        Dropout on attention weights and on the output projection.
    """

    def __init__(self, dim: int, heads: int, *, content: bool = True,
                 relative_content: bool = False, relative_key_content: bool = False,
                 nonlinear_qk: bool = False, n_offsets: int = 0, dropout: float = 0.0
                 ) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.content, self.dropout = content, dropout
        self.q = nn.Linear(dim, dim) if content or relative_content else None
        self.k = nn.Linear(dim, dim) if content or relative_key_content else None
        self.feature = None
        if nonlinear_qk and (self.q is not None or self.k is not None):
            self.feature = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        self.relative = None
        if relative_content:
            self.relative = nn.Parameter(torch.randn(heads, n_offsets, self.head_dim) * 0.02)
        self.relative_key = None
        if relative_key_content:
            self.relative_key = nn.Parameter(torch.randn(heads, n_offsets, self.head_dim) * 0.02)

    def _split(self, x: Tensor) -> Tensor:
        B, N, _C = x.shape
        return x.view(B, N, self.heads, self.head_dim).transpose(1, 2)  # (B, H, N, hd)

    def forward(self, x: Tensor, ctx: AttentionContext
                ) -> tuple[Tensor, Tensor | None, LayerLogits | None]:
        """``x`` (B, N', C) -> output (B, N', C), weights and the layer's logits record.

        The weights are ``(B, H, N', N')`` with ``ctx.full_maps``, the rows ``(B, H, Q, N')``
        of ``ctx.queries``, else None; the record is returned with ``ctx.keep_logits``.
        """
        B, N, C = x.shape
        v = self._split(self.v(x))  # (B, H, N, hd)
        h = self.feature(x) if self.feature is not None else x  # (B, N, C)
        q = self._split(self.q(h)) if self.q is not None else None  # (B, H, N, hd)
        k = self._split(self.k(h)) if self.k is not None else None  # (B, H, N, hd)
        qr = ks = None
        if self.relative is not None or self.relative_key is not None:
            if ctx.positions is None:
                msg = ("relative_content / relative_key_content need the layout's relative "
                       "offset index")
                raise ValueError(msg)
            if self.relative is not None:
                R = torch.nn.functional.pad(self.relative, (0, 0, 0, 1))  # (H, K + 1, hd)
                qr = (q @ R.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, N, K + 1)
            if self.relative_key is not None:
                S = torch.nn.functional.pad(self.relative_key, (0, 0, 0, 1))  # (H, K + 1, hd)
                ks = (k @ S.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, N, K + 1)
        if not self.content:
            q = k = None
        logits = LayerLogits(q, k, ctx.positions, ctx.key_mask, ctx.grid, B, self.heads,
                             n_cls=ctx.n_cls, qr=qr, ks=ks, max_rows=ctx.max_rows,
                             dtype=v.dtype)
        dropout = self.dropout if self.training else 0.0
        out, weights = self._attend(logits, v, ctx, dropout)
        if ctx.queries is not None:
            weights = attention_rows(logits, ctx.queries)  # (B, H, Q, N)
        out = out.transpose(1, 2).reshape(B, N, C)  # (B, N, C)
        record = logits.detached() if ctx.keep_logits else None
        return self.proj_drop(self.proj(out)), weights, record

    @staticmethod
    def _attend(logits: LayerLogits, v: Tensor, ctx: AttentionContext, dropout: float
                ) -> tuple[Tensor, Tensor | None]:
        """``(B, H, N, hd)`` output and full weights (with ``ctx.full_maps``) by the kernel."""
        q, k = logits.q, logits.k
        if ctx.table_path:
            if ctx.full_maps:
                return table_attention(q, k, v, ctx.relative_table, ctx.key_mask,
                                       return_weights=True)
            return table_attention(q, k, v, ctx.relative_table, ctx.key_mask), None
        if ctx.kernel == "dense":
            bias = ctx.dense_bias
            B, H, N = logits.batch, logits.heads, logits.n_keys
            if logits.qr is not None:
                rel = logits.qr.gather(-1, ctx.rel_index.expand(B, H, N, N))  # (B, H, N, N)
                bias = rel if bias is None else bias + rel
            if logits.ks is not None:
                # term of (query i, key j) is ks[j, index_ij]: gather along the column axis
                rel = logits.ks.transpose(-2, -1).gather(-2, ctx.rel_index.expand(B, H, N, N))
                bias = rel if bias is None else bias + rel  # (B, H, N, N)
            return attention(q, k, v, bias, ctx.key_mask, dropout_p=dropout,
                             return_weights=ctx.full_maps)
        if ctx.full_maps:
            return blockwise_weights(logits, v, dropout_p=dropout)
        if not logits.needs_blocks:  # q.k and a key mask only: the fused kernel is O(N)
            return attention(q, k, v, None, ctx.key_mask, dropout_p=dropout)
        if ctx.kernel == "flex":
            from gridformer.model.flex import flex_attention

            return flex_attention(logits, v), None
        return chunked_attention(logits, v, dropout_p=dropout), None


class MLP(nn.Module):
    """Two-layer GELU MLP, ``C -> hidden -> C``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.out(self.act(self.fc(x))))  # (B, N, C)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    ``norm=False`` drops the LayerNorms, ``residual=False`` the skip connections and
    ``mlp_ratio=0`` the MLP, leaving a bare attention layer (a stencil).
    """

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, norm: bool = True,
                 residual: bool = True, dropout: float = 0.0, content: bool = True,
                 relative_content: bool = False, relative_key_content: bool = False,
                 nonlinear_qk: bool = False, n_offsets: int = 0) -> None:
        super().__init__()
        self.residual = residual
        self.norm1 = nn.LayerNorm(dim) if norm else nn.Identity()
        self.attn = SelfAttention(dim, heads, content=content, relative_content=relative_content,
                                  relative_key_content=relative_key_content,
                                  nonlinear_qk=nonlinear_qk, n_offsets=n_offsets, dropout=dropout)
        hidden = round(dim * mlp_ratio)
        self.norm2 = nn.LayerNorm(dim) if norm and hidden else nn.Identity()
        self.mlp = MLP(dim, hidden, dropout) if hidden else None

    def forward(self, x: Tensor, ctx: AttentionContext
                ) -> tuple[Tensor, Tensor | None, LayerLogits | None]:
        """``x`` (B, N, C) -> (B, N, C), this layer's weights and logits record (or None)."""
        a, weights, record = self.attn(self.norm1(x), ctx)
        x = x + a if self.residual else a
        if self.mlp is not None:
            m = self.mlp(self.norm2(x))
            x = x + m if self.residual else m
        return x, weights, record
