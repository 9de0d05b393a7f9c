"""FlexAttention path: the position bias computed inside the kernel by a ``score_mod``.

``torch.nn.attention.flex_attention`` adds ``score_mod(score, b, h, q_idx, kv_idx)`` to every
logit inside a compiled kernel, so no mask is ever written. The ``score_mod`` here reads the
same tables as the blockwise path (:mod:`gridformer.model.bias_tables`): relative biases and
distances at ``qoff[q] + koff[k]``, the class token's row and column left at zero, masked keys
at ``-inf``.

Measured on a 2-core CPU (torch 2.13, see ``benchmarks/RESULTS.md``) the compiled kernel is far
slower than the blockwise path and compiling takes seconds to tens of seconds, so
``attention_kernel="auto"`` never picks it; it is there for CUDA, where the GPU check script
compares both. It supports the relative and distance biases and key masks; the relative content
terms (``relative_content``, ``relative_key_content``) and attention dropout are refused by the
config.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from gridformer.model.blockwise import LayerLogits
from gridformer.tokenize.geometry import EARTH_RADIUS_KM

__all__ = ["flex_attention", "score_mod"]


# FlexAttention's compiled CUDA kernel refuses smaller heads (torch 2.11: "NYI: embedding
# dimension of the query, key, and value must be at least 16"), deep inside inductor
MIN_HEAD_DIM = 16


@functools.cache
def _compiled() -> Callable:
    from torch.nn.attention.flex_attention import flex_attention as flex

    return torch.compile(flex, dynamic=False)


def flex_attention(logits: LayerLogits, v: Tensor, *, compiled: bool = True) -> Tensor:
    """Attention ``(B, H, N', hdv)`` with FlexAttention; ``compiled=False`` runs it eagerly
    (a reference that materialises the scores: small N only, for tests)."""
    if logits.qr is not None or logits.ks is not None:
        msg = (
            "attention_kernel='flex' cannot add the relative content terms (relative_content, "
            "relative_key_content); use attention_kernel='chunked' or 'dense'"
        )
        raise ValueError(msg)
    q, k = logits.q, logits.k
    if q is None:  # bias-only logits: zero queries and keys
        q = k = torch.zeros_like(v)
    head_dim = min(q.shape[-1], v.shape[-1])
    if compiled and v.device.type != "cpu" and head_dim < MIN_HEAD_DIM:
        msg = (
            f"attention_kernel='flex' needs a head dimension (dim / heads) of at least "
            f"{MIN_HEAD_DIM} off the CPU (FlexAttention's compiled kernel), got {head_dim}; "
            f"use attention_kernel='chunked' or 'auto', or fewer heads"
        )
        raise ValueError(msg)
    mod = score_mod(logits)
    if compiled:
        fn = _compiled()
    else:
        from torch.nn.attention.flex_attention import flex_attention as fn
    return fn(q, k, v, score_mod=mod, scale=logits.scale)


def score_mod(logits: LayerLogits) -> Callable:
    """``score_mod(score, b, h, q_idx, kv_idx)``: position bias and key mask of ``logits``.

    The closure always holds the same cells, all tensors (zeros for an absent term), so that
    the compiled kernel's guards read alike whichever terms a model has.
    """
    positions, n_cls, H = logits.positions, logits.n_cls, logits.heads
    device = logits._device()
    n = logits.n_keys - n_cls
    zeros_index = torch.zeros(n, dtype=torch.int64, device=device)
    has_rel = positions is not None and getattr(positions, "relative", None) is not None
    has_dist = positions is not None and getattr(positions, "coef", None) is not None
    rel_table, rel_q, rel_k = torch.zeros(H, 1, device=device), zeros_index, zeros_index
    if has_rel:
        rel_table, (rel_q, rel_k) = positions.relative.values, positions.relative.token_offsets()
    formula, coef = "table", torch.zeros(H, device=device)
    parts = [(torch.zeros(1, device=device), zeros_index, zeros_index)] * 3
    if has_dist:
        formula, coef = positions.distance.formula, positions.coef
        found = [(p.values[0], *p.token_offsets()) for p in positions.distance.parts]
        parts = found + parts[len(found):]
    (t0, q0, k0), (t1, q1, k1), (t2, q2, k2) = parts
    keep = logits.key_mask
    has_mask = keep is not None
    if keep is None:
        keep = torch.ones(1, logits.n_keys, dtype=torch.bool, device=device)
    per_sample = keep.shape[0] > 1

    def mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        if has_rel or has_dist:
            qt, kt = (q_idx - n_cls).clamp(min=0), (kv_idx - n_cls).clamp(min=0)
            bias = torch.zeros_like(score)
            if has_rel:
                bias = bias + rel_table[h, rel_q[qt] + rel_k[kt]]
            if has_dist:
                p0, p1, p2 = t0[q0[qt] + k0[kt]], t1[q1[qt] + k1[kt]], t2[q2[qt] + k2[kt]]
                if formula == "table":
                    d = p0
                elif formula == "haversine":
                    h_ = torch.clamp(p0 + p1 * p2, 0.0, 1.0)
                    d = torch.asin(torch.sqrt(h_)) * (2.0 * EARTH_RADIUS_KM)
                else:  # euclid: squared offsets per axis (unused parts are zero)
                    d = torch.sqrt(p0 + p1 + p2)
                bias = bias + coef[h] * d
            spatial = (q_idx >= n_cls) & (kv_idx >= n_cls)
            score = score + torch.where(spatial, bias, torch.zeros_like(bias))
        if has_mask:
            valid = keep[b, kv_idx] if per_sample else keep[0, kv_idx]
            score = torch.where(valid, score, torch.full_like(score, float("-inf")))
        return score

    return mod
