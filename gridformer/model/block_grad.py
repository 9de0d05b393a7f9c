"""Training through a block of the chunked kernel: fused forward, explicit backward.

The fused kernel (``scaled_dot_product_attention``) gives no gradient for its additive mask, so
when the position bias is learned, autograd would run the whole block through PyTorch's
explicit "math" attention instead: the forward written out, kept or recomputed, and the bias
gradient scattered back through a strided view of the table. :class:`BiasedBlock` keeps the
fused forward and writes the backward out once per block::

    S  = scale q k^T + bias (-inf on masked keys)      P = softmax(S)        (B, H, R, N')
    dv = P^T dO      dP = dO v^T      dS = P * (dP - rowsum(dO * O))
    dq = scale dS k  dk = scale dS^T q
    d relative[h, t] = sum of dS[:, h, i, j] over the pairs (i, j) that read table entry t
    d coef[h]        = sum of dS[:, h, i, j] * distance(i, j)

with ``bias = relative[h, qoff[i] + koff[j]] + coef[h] * distance(i, j)`` read from the
tables of :class:`~gridformer.model.bias.TablePositions` (no ``(N', N')`` tensor). Measured on
a busy 2-core CPU at 4,096 tokens (relative bias, dim 64, depth 2, 4 heads) a training step
took 5.5-5.9 CPU s against 8.2-9.1 with the math path. Relative content terms and dropout keep
the math path (checkpointed per block).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BiasedBlock", "supports"]


def supports(logits: Any, block: tuple | None, dropout_p: float) -> bool:
    """Whether :class:`BiasedBlock` can train this block (a token block, table bias only)."""
    positions = logits.positions
    return (block is not None and dropout_p == 0.0 and logits.qr is None and logits.ks is None
            and hasattr(positions, "relative") and hasattr(positions, "coef")
            and positions.has_bias)


class BiasedBlock(torch.autograd.Function):
    """``attention(q_block, k, v)`` under the table bias of ``logits`` (module docstring).

    ``forward(logits, q (B, H, R, hd), k, v (B, H, N', hd), positions (R,), block,
    relative (H, S) | None, coef (H,) | None)``; ``relative`` and ``coef`` are the tensors
    the bias reads (``positions.relative.values``, ``positions.coef``), passed so that
    autograd carries their gradients to the parameters.
    """

    @staticmethod
    def forward(ctx: Any, logits: Any, q: Tensor, k: Tensor, v: Tensor, positions: Tensor,
                block: tuple, relative: Tensor | None, coef: Tensor | None) -> Tensor:
        mask = _mask(logits, positions, block, q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=logits.scale)
        ctx.save_for_backward(q, k, v, out, positions)
        ctx.logits, ctx.block = logits, block
        return out  # (B, H, R, hdv)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, out, positions = ctx.saved_tensors
        logits, block = ctx.logits, ctx.block
        scale = logits.scale if logits.scale is not None else 1.0 / math.sqrt(q.shape[-1])
        s = torch.matmul(q * scale, k.transpose(-2, -1))  # (B, H, R, N')
        s.add_(_mask(logits, positions, block, q.dtype))
        p = torch.softmax(s, dim=-1)  # (B, H, R, N')
        del s
        dv = p.transpose(-2, -1) @ grad_out  # (B, H, N', hdv)
        ds = grad_out @ v.transpose(-2, -1)  # dP (B, H, R, N')
        ds.sub_((grad_out * out).sum(-1, keepdim=True)).mul_(p)  # dS = P (dP - D)
        del p
        needs = ctx.needs_input_grad
        dq = (ds @ k) * scale if needs[1] else None  # (B, H, R, hd)
        dk = (ds.transpose(-2, -1) @ q) * scale if needs[2] else None  # (B, H, N', hd)
        d_rel, d_coef = _bias_grads(logits.positions, ds, positions, block, needs[6], needs[7])
        return None, dq, dk, dv, None, None, d_rel, d_coef


def _mask(logits: Any, positions: Tensor, block: tuple, dtype: torch.dtype) -> Tensor:
    """The block's additive mask ``(B' | 1, H, R, N')`` (bias, -inf on masked keys)."""
    with torch.no_grad():
        return logits.bias(positions, block).to(dtype)


def _bias_grads(table: Any, ds: Tensor, positions: Tensor, block: tuple, relative: bool,
                coef: bool) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of the relative table ``(H, S)`` and the distance coefficients ``(H,)``."""
    n_cls = table.n_cls
    per_head = ds.sum(0)[:, :, n_cls:]  # (H, R, N): class-token pairs hold no bias
    d_rel = d_coef = None
    if relative:
        values = table.relative.values
        qoff, koff = table.relative.token_offsets()
        index = qoff.index_select(0, positions - n_cls)[:, None] + koff[None, :]  # (R, N)
        d_rel = torch.zeros_like(values).index_add_(
            1, index.reshape(-1), per_head.reshape(len(values), -1).to(values.dtype))
    if coef:
        start, shape, _first = block
        dist = table.distance.evaluate([p.block(start, shape) for p in table.distance.parts])
        dist = dist.reshape(len(positions), -1).to(ds.dtype)  # (R, N)
        d_coef = (per_head * dist).sum((1, 2)).to(table.coef.dtype)  # (H,)
    return d_rel, d_coef
