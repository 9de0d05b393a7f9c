"""Scaled dot-product attention with an additive position bias: the one function that the model
and the analysis both call (equinox style: attention weights as a pure function).

Two paths behind one flag, giving the same output (tested to 1e-5):

- fast (``return_weights=False``): :func:`torch.nn.functional.scaled_dot_product_attention`,
  with the bias and the key mask folded into its additive ``attn_mask``; when there is neither,
  ``attn_mask=None`` and no ``(B, H, N, N)`` tensor is ever built;
- explicit (``return_weights=True``): ``softmax(q k^T * scale + bias)`` written out, returning
  the weights for inspection. On a GPU with gradients on, the output still comes from the
  fused kernel and the weights from a separate softmax beside it (:func:`_fused_and_weights`):
  a loss on the output alone then runs the fused backward, not one over the ``(N, N)`` weights,
  and a loss that reads the weights still gets their gradient through the softmax's graph.
  Like the fast path, its output then has no second derivative: PyTorch defines none for its
  fused attention backward (a ``create_graph=True`` gradient through it raises on use; seen
  on the CPU's flash kernel, torch 2.13).

For large N the same logits are formed a block of queries at a time, with the position bias
read from per-layout tables instead of an ``(H, N, N)`` tensor
(:mod:`gridformer.model.blockwise`; FlexAttention in :mod:`gridformer.model.flex`); this
function stays the reference they are tested against.

Logits of a query i and a key j::

    logits[b, h, i, j] = scale * q[b, h, i] . k[b, h, j]   (if q and k are given)
                       + bias[b, h, i, j]                  (broadcast; position terms)
                       - inf                               (if key j is masked)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["attention"]


def attention(
    q: Tensor | None,
    k: Tensor | None,
    v: Tensor,
    bias: Tensor | None = None,
    key_mask: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    scale: float | None = None,
    return_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention of ``v`` under content logits ``q k^T`` plus an additive ``bias``.

    Parameters
    ----------
    q, k
        Queries and keys, ``(B, H, N, hd)``. Both None: no content term, the logits are the
        bias alone (a fixed stencil).
    v
        Values, ``(B, H, N, hdv)``.
    bias
        Additive logits broadcastable to ``(B, H, N, N)``, e.g. ``(1, H, N, N)`` for a position
        bias shared by the batch.
    key_mask
        ``(B, N)`` bool, True where a key may be attended to. Masked keys get weight exactly 0;
        every query row needs at least one valid key.
    dropout_p
        Dropout on the attention weights (pass 0 in eval mode).
    scale
        Factor on ``q k^T``; default ``1 / sqrt(hd)``.
    return_weights
        False: fused kernel, weights not formed. True: weights returned (explicit softmax; on
        a GPU with gradients on, the fused output and a separate softmax beside it).

    Returns
    -------
    out
        ``(B, H, N, hdv)``.
    weights
        ``(B, H, N, N)`` attention weights (rows sum to 1 over valid keys; before dropout), or
        None on the fast path.
    """
    if (q is None) != (k is None):
        msg = "attention() needs both q and k, or neither (bias-only logits)"
        raise ValueError(msg)
    if q is None and bias is None:
        msg = "attention() without q and k needs a bias"
        raise ValueError(msg)
    if return_weights and v.device.type != "cpu" and _needs_grad(q, k, v, bias):
        return _fused_and_weights(q, k, v, bias, key_mask, dropout_p=dropout_p, scale=scale)
    if return_weights:
        return _explicit(q, k, v, bias, key_mask, dropout_p=dropout_p, scale=scale)

    if (bias is not None and bias.requires_grad and torch.is_grad_enabled()
            and v.device.type == "cpu"):
        # A learned bias: the CPU's fused kernel has no gradient for its mask, so autograd
        # would run PyTorch's math attention, whose "safe" softmax adds three more (N, N)
        # passes forward; the explicit path is the same arithmetic without them.
        out, _weights = _explicit(q, k, v, bias, key_mask, dropout_p=dropout_p, scale=scale)
        return out, None
    return _fused(q, k, v, bias, key_mask, dropout_p=dropout_p, scale=scale), None


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _fused(q: Tensor | None, k: Tensor | None, v: Tensor, bias: Tensor | None,
           key_mask: Tensor | None, *, dropout_p: float, scale: float | None) -> Tensor:
    """The output ``(B, H, N, hdv)`` by ``scaled_dot_product_attention``."""
    B, H, N, _ = v.shape
    mask = _additive_mask(bias, key_mask, dtype=v.dtype)
    if q is None:
        # bias-only logits: zero queries/keys make q k^T vanish inside the fused kernel
        q = k = v.new_zeros(B, H, N, 1)  # (B, H, N, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          scale=scale)


def _fused_and_weights(q: Tensor | None, k: Tensor | None, v: Tensor, bias: Tensor | None,
                       key_mask: Tensor | None, *, dropout_p: float, scale: float | None
                       ) -> tuple[Tensor, Tensor]:
    """The fused kernel's output and, beside it, the weights by a separate softmax.

    The two are separate functions of the same inputs, so autograd adds their gradients: a
    loss on the output alone never runs the weights' backward (the explicit path's ``(N, N)``
    backward is what made ``return_attention`` cost ~1.6x a fused training step on CUDA), and
    a loss on the weights gets exactly the explicit path's gradient. Costs one more logits
    product and softmax forward per layer; the weights are kept either way (returned).
    """
    out = _fused(q, k, v, bias, key_mask, dropout_p=dropout_p, scale=scale)  # (B, H, N, hdv)
    return out, _softmax_weights(q, k, v, bias, key_mask, scale=scale)


def _additive_mask(bias: Tensor | None, key_mask: Tensor | None, *, dtype: torch.dtype
                   ) -> Tensor | None:
    """Fold bias and key mask into SDPA's ``attn_mask`` (bool when there is no bias)."""
    if key_mask is None:
        return None if bias is None else bias.to(dtype)
    keep = key_mask[:, None, None, :]  # (B, 1, 1, N)
    if bias is None:
        return keep
    return bias.to(dtype).masked_fill(~keep, float("-inf"))  # (B, H, N, N)


def _explicit(q: Tensor | None, k: Tensor | None, v: Tensor, bias: Tensor | None,
              key_mask: Tensor | None, *, dropout_p: float, scale: float | None
              ) -> tuple[Tensor, Tensor]:
    """``softmax(q k^T * scale + bias)`` written out: output and weights ``(B, H, N, N)``.

    The scale goes on ``q`` (``N x hd``), not on the logits, and the bias is added in place
    (inside ``baddbmm`` when it has the batch's size or the batch is one sample), so the
    logits cost one matrix product and one ``(N, N)`` pass before the softmax.
    """
    weights = _softmax_weights(q, k, v, bias, key_mask, scale=scale)  # (B, H, N, N)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (B, H, N, hdv)


def _softmax_weights(q: Tensor | None, k: Tensor | None, v: Tensor, bias: Tensor | None,
                     key_mask: Tensor | None, *, scale: float | None) -> Tensor:
    """``softmax(q k^T * scale + bias)`` over the keys, ``(B, H, N, N)`` (no dropout)."""
    B, H, N, _ = v.shape
    if q is not None and k is not None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        if bias is not None and (B == 1 or bias.shape[0] == B):
            # one pass: logits = bias + (q scale) k^T, the bias viewed as (B H, N, N)
            start = bias.to(v.dtype).expand(B, H, N, N).reshape(B * H, N, N)
            logits = torch.baddbmm(start, (q * scale).reshape(B * H, N, -1),
                                   k.reshape(B * H, N, -1).transpose(-2, -1))
            logits = logits.view(B, H, N, N)  # (B, H, N, N)
        elif bias is not None:
            # a bias shared by the batch: reshaping it to (B H, N, N) would copy it B times
            # (and baddbmm copy that again); broadcast it in one in-place add instead
            logits = ((q * scale) @ k.transpose(-2, -1)).add_(bias.to(v.dtype))  # (B, H, N, N)
        else:
            logits = (q * scale) @ k.transpose(-2, -1)  # (B, H, N, N)
    else:
        logits = bias.to(v.dtype).expand(B, H, N, N)  # (B, H, N, N)
    if key_mask is not None:
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return torch.softmax(logits, dim=-1)  # (B, H, N, N)
