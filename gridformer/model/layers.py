"""Transformer layers: self-attention with position terms, MLP, and the pre-norm block.

Letters in shape comments: B batch, N tokens, C width (dim), H heads, hd head size,
K relative-offset table columns.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gridformer.model.attention import attention

__all__ = ["MLP", "Block", "SelfAttention"]


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

    def forward(self, x: Tensor, bias: Tensor | None = None, key_mask: Tensor | None = None,
                rel_index: Tensor | None = None, *, return_attention: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """``x`` (B, N, C) -> output (B, N, C) and weights (B, H, N, N) or None.

        ``bias`` is broadcastable to (B, H, N, N); ``rel_index`` (N, N) indexes ``R`` and ``S``
        (value K means "no term", used for a class token).
        """
        B, N, C = x.shape
        v = self._split(self.v(x))  # (B, H, N, hd)
        h = self.feature(x) if self.feature is not None else x  # (B, N, C)
        q = self._split(self.q(h)) if self.q is not None else None  # (B, H, N, hd)
        k = self._split(self.k(h)) if self.k is not None else None  # (B, H, N, hd)
        if (self.relative is not None or self.relative_key is not None) and rel_index is None:
            msg = "relative_content / relative_key_content need the layout's relative offset index"
            raise ValueError(msg)
        if self.relative is not None:
            R = torch.nn.functional.pad(self.relative, (0, 0, 0, 1))  # (H, K + 1, hd)
            qr = (q @ R.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, N, K + 1)
            rel = qr.gather(-1, rel_index.expand(B, self.heads, N, N))  # (B, H, N, N)
            bias = rel if bias is None else bias + rel
        if self.relative_key is not None:
            S = torch.nn.functional.pad(self.relative_key, (0, 0, 0, 1))  # (H, K + 1, hd)
            ks = (k @ S.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, N, K + 1)
            # term of (query i, key j) is ks[j, index_ij]: gather along the column axis
            rel = ks.transpose(-2, -1).gather(-2, rel_index.expand(B, self.heads, N, N))
            bias = rel if bias is None else bias + rel  # (B, H, N, N)
        if not self.content:
            q = k = None
        out, weights = attention(
            q, k, v, bias, key_mask,
            dropout_p=self.dropout if self.training else 0.0, return_weights=return_attention,
        )
        out = out.transpose(1, 2).reshape(B, N, C)  # (B, N, C)
        return self.proj_drop(self.proj(out)), weights


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

    def forward(self, x: Tensor, bias: Tensor | None = None, key_mask: Tensor | None = None,
                rel_index: Tensor | None = None, *, return_attention: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """``x`` (B, N, C) -> (B, N, C) and this layer's attention weights (or None)."""
        a, weights = self.attn(self.norm1(x), bias, key_mask, rel_index,
                               return_attention=return_attention)
        x = x + a if self.residual else a
        if self.mlp is not None:
            m = self.mlp(self.norm2(x))
            x = x + m if self.residual else m
        return x, weights
