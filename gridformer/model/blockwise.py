"""Attention a block of queries at a time: memory that grows with N, not N².

One layer's logits are recorded as :class:`LayerLogits` (queries, keys, position terms, key
mask), the same formula as :func:`gridformer.model.attention.attention`::

    logits[b, h, i, j] = scale * q_i . k_j + bias_h(i, j)
                         + q_i . R[col(i, j)] / sqrt(hd) + k_j . S[col(i, j)] / sqrt(hd)
                         - inf   (masked key j)

From it, any rows or block of rows can be formed without the other rows:

- :func:`chunked_attention`: the fused kernel (``scaled_dot_product_attention``) per block of
  queries, the block's position bias written once into its additive mask; in training each
  block's mask is rebuilt in the backward pass instead of kept (a fused forward and an explicit
  backward, :mod:`gridformer.model.block_grad`, or a checkpointed block of math attention);
- :func:`blockwise_weights`: the full ``(B, H, N', N')`` maps, built block by block;
- :func:`attention_rows`: the weights of chosen query rows, ``(B, H, Q, N')``;
- :func:`attention_product`: ``r @ mean_h A_h`` for row vectors ``r`` ``(B, P, N')`` (one step
  of attention rollout), without forming ``A``.

Blocks follow :func:`~gridformer.model.bias_tables.token_blocks` (reversed token order, so the
table terms are strided views); a class token's row is its own block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from gridformer.model.bias import block_tokens
from gridformer.model.bias_tables import token_blocks
from gridformer.model.block_grad import BiasedBlock, supports

__all__ = [
    "BLOCK_BYTES",
    "CUDA_BLOCK_BYTES",
    "LayerLogits",
    "attention_product",
    "attention_rows",
    "blockwise_weights",
    "chunked_attention",
]

#: Bytes of one block's additive mask (B', H, R, N') that sets the query rows R per block:
#: on the CPU, larger blocks run the fused kernel faster (measured: 360 rows beat 180 and 90
#: at 16,200 tokens) and 128 MiB keeps the peak far below the data; GPUs get larger blocks.
BLOCK_BYTES = 128 * 2**20
CUDA_BLOCK_BYTES = 1024 * 2**20


@dataclass
class LayerLogits:
    """Everything that defines one layer's attention logits (module docstring).

    ``q``/``k`` ``(B, H, N', hd)`` (None: no content term); ``positions`` a
    :class:`~gridformer.model.bias.TablePositions` or ``DensePositions`` (or None);
    ``qr``/``ks`` ``(B, H, N', K + 1)`` relative content terms ``q·R`` and ``k·S`` already
    divided by ``sqrt(hd)``; ``key_mask`` ``(B', N')`` bool; ``grid`` the token grid.
    """

    q: Tensor | None
    k: Tensor | None
    positions: Any
    key_mask: Tensor | None
    grid: tuple[int, ...]
    batch: int
    heads: int
    n_cls: int = 0
    qr: Tensor | None = None
    ks: Tensor | None = None
    scale: float | None = None
    max_rows: int | None = None
    dtype: torch.dtype = torch.float32

    @property
    def n_keys(self) -> int:
        return self.n_cls + math.prod(self.grid)

    @property
    def needs_blocks(self) -> bool:
        """Whether the logits hold pairwise terms beyond ``q·k`` and a key mask."""
        has_bias = self.positions is not None and self.positions.has_bias
        return has_bias or self.qr is not None or self.ks is not None

    def detached(self) -> LayerLogits:
        """A copy holding detached tensors (for analysis after the forward pass)."""
        def d(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.detach()

        return replace(self, q=d(self.q), k=d(self.k), qr=d(self.qr), ks=d(self.ks))

    # ------------------------------------------------------------------ pieces
    def _device(self) -> torch.device:
        for t in (self.q, self.qr, self.ks, self.key_mask):
            if t is not None:
                return t.device
        return torch.device("cpu")

    def blocks(self, rows_per_block: int | None = None
               ) -> Iterator[tuple[Tensor, tuple | None]]:
        """``(positions (R,), block)``: the class-token row, then the token blocks."""
        device = self._device()
        if self.n_cls:
            yield torch.arange(self.n_cls, device=device), None
        rows = rows_per_block or self.rows_per_block()
        n = math.prod(self.grid)
        for start, shape, first in token_blocks(self.grid, rows):
            yield self.n_cls + block_tokens(first, shape, n, device), (start, shape, first)

    def rows_per_block(self) -> int:
        if self.max_rows:
            return int(self.max_rows)
        mask_batch = 1 if self.key_mask is None and self.qr is None and self.ks is None \
            else self.batch
        per_row = mask_batch * self.heads * self.n_keys * 4
        budget = CUDA_BLOCK_BYTES if self._device().type == "cuda" else BLOCK_BYTES
        return max(1, budget // per_row)

    def bias(self, positions: Tensor, block: tuple | None, out: Tensor | None = None
             ) -> Tensor | None:
        """Everything but ``q·k``: ``(B' | 1, H | 1, R, N')`` additive (-inf on masked keys).

        ``out`` ``(L, R, N')``: a buffer for the position bias of a block (reused between
        blocks when no gradient is needed; fresh pages cost more than the bias itself).
        """
        bias = None
        if self.positions is not None and self.positions.has_bias:
            bias = (self.positions.rows(positions) if block is None
                    else self.positions.block(*block, out=out))[None]  # (1, L, R, N')
        if self.qr is not None or self.ks is not None:
            cols = (self.positions.column_rows(positions) if block is None
                    else self.positions.column_block(*block))  # (R, N')
            index = cols.expand(self.batch, self.heads, *cols.shape)  # (B, H, R, N')
            if self.qr is not None:
                term = self.qr.index_select(2, positions).gather(-1, index)  # (B, H, R, N')
                bias = term if bias is None else bias + term
            if self.ks is not None:
                term = self.ks.transpose(-2, -1).gather(-2, index)  # (B, H, R, N')
                bias = term if bias is None else bias + term
        if self.key_mask is not None:
            keep = self.key_mask[:, None, None, :]  # (B', 1, 1, N')
            if bias is None:
                return keep
            if bias.shape[0] >= keep.shape[0] and bias.ndim == 4 and block is not None:
                return bias.masked_fill_(~keep, float("-inf"))
            bias = torch.where(keep, bias, float("-inf"))
        return bias

    def logits(self, positions: Tensor, block: tuple | None = None) -> Tensor:
        """Explicit logits ``(B, H, R, N')`` of the query rows at ``positions``."""
        B, H, R = self.batch, self.heads, len(positions)
        if self.q is not None:
            scale = self.scale if self.scale is not None else 1.0 / math.sqrt(self.q.shape[-1])
            q = self.q.index_select(2, positions) * scale  # (B, H, R, hd)
            logits = q @ self.k.transpose(-2, -1)  # (B, H, R, N')
        else:
            logits = torch.zeros(B, H, R, self.n_keys, dtype=self.dtype, device=self._device())
        extra = self.bias(positions, block)
        if extra is None:
            return logits
        if extra.dtype == torch.bool:
            return logits.masked_fill(~extra, float("-inf"))
        return logits + extra


# ---------------------------------------------------------------- kernels
def chunked_attention(logits: LayerLogits, v: Tensor, *, dropout_p: float = 0.0) -> Tensor:
    """Fused attention a block of queries at a time; ``(B, H, N', hdv)`` in token order."""
    q, k = logits.q, logits.k
    if q is None:
        q = k = v.new_zeros(*v.shape[:-1], 1)  # bias-only logits: q k^T vanishes
    k, v = k.contiguous(), v.contiguous()  # the fused kernel would copy them for every block
    train = torch.is_grad_enabled() and any(
        t.requires_grad for t in (q, k, v) if t is not None)
    buffer = None
    if not train and logits.positions is not None and logits.positions.has_bias:
        rows = min(logits.rows_per_block(), math.prod(logits.grid))
        buffer = v.new_empty(logits.positions.heads, rows * logits.n_keys)  # (L, R * N')
    outs = []
    for positions, block in logits.blocks():
        args = (q.index_select(2, positions), k, v, positions, block)
        if train and supports(logits, block, dropout_p):  # fused forward, explicit backward
            table = logits.positions
            rel = table.relative.values if table.relative is not None else None
            out = BiasedBlock.apply(logits, *args, rel, table.coef)
        elif train:
            out = checkpoint(_fused_block, logits, *args, dropout_p, use_reentrant=False)
        else:
            view = None
            if buffer is not None and block is not None:
                view = buffer[:, : len(positions) * logits.n_keys].view(-1, len(positions),
                                                                        logits.n_keys)
            out = _fused_block(logits, *args, dropout_p, out=view)
        outs.append(out)  # (B, H, R, hdv)
    # blocks: the class token's row, then the tokens in reversed order
    spatial = torch.cat(outs[logits.n_cls > 0 :], dim=2).flip(2)  # (B, H, N, hdv)
    return torch.cat([outs[0], spatial], dim=2) if logits.n_cls else spatial


def _fused_block(logits: LayerLogits, q: Tensor, k: Tensor, v: Tensor, positions: Tensor,
                 block: tuple | None, dropout_p: float, out: Tensor | None = None) -> Tensor:
    mask = logits.bias(positions, block, out)
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          scale=logits.scale)


def attention_rows(logits: LayerLogits, positions: Tensor) -> Tensor:
    """Weights ``(B, H, Q, N')`` of the query rows at key-axis ``positions``."""
    return torch.softmax(logits.logits(positions), dim=-1)


def blockwise_weights(logits: LayerLogits, v: Tensor, *, dropout_p: float = 0.0
                      ) -> tuple[Tensor, Tensor]:
    """Output ``(B, H, N', hdv)`` and full weights ``(B, H, N', N')``, block by block."""
    B, H, N, _ = v.shape
    weights = None
    for positions, block in logits.blocks():
        rows = torch.softmax(logits.logits(positions, block), -1)  # (B, H, R, N')
        if weights is None:  # the softmax's dtype: float32 under CUDA autocast, bf16 v or not
            weights = rows.new_empty(B, H, N, N)  # (B, H, N', N')
        weights.index_copy_(2, positions, rows)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped.to(v.dtype) @ v, weights  # (B, H, N', hdv); the maps keep their dtype


def attention_product(logits: LayerLogits, r: Tensor, heads: list[int] | None = None
                      ) -> Tensor:
    """``r @ mean_{h in heads} A_h`` for row vectors ``r`` ``(B, P, N')`` -> ``(B, P, N')``."""
    heads = list(range(logits.heads)) if heads is None else list(heads)
    out = torch.zeros_like(r)
    for positions, block in logits.blocks():
        rows = torch.softmax(logits.logits(positions, block), dim=-1)  # (B, H, R, N')
        mean = rows[:, heads].mean(1).to(r.dtype)  # (B, R, N')
        out = out + r.index_select(2, positions) @ mean  # (B, P, N')
    return out
