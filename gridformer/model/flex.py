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

__all__ = ["flex_attention", "score_mod"]


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
    mod = score_mod(logits)
    if compiled:
        fn = _compiled()
    else:
        from torch.nn.attention.flex_attention import flex_attention as fn
    return fn(q, k, v, score_mod=mod, scale=logits.scale)


def score_mod(logits: LayerLogits) -> Callable:
    """``score_mod(score, b, h, q_idx, kv_idx)``: position bias and key mask of ``logits``."""
    positions, n_cls = logits.positions, logits.n_cls
    has_bias = positions is not None and positions.has_bias
    relative = distance = None
    if has_bias and positions.relative is not None:
        relative = (positions.relative.values, *positions.relative.token_offsets())
    if has_bias and positions.coef is not None:
        distance = [(p.values[0], *p.token_offsets()) for p in positions.distance.parts]
        evaluate, coef = positions.distance.evaluate, positions.coef
    keep = logits.key_mask
    per_sample = keep is not None and keep.shape[0] > 1

    def mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        if has_bias:
            qt, kt = (q_idx - n_cls).clamp(min=0), (kv_idx - n_cls).clamp(min=0)
            bias = torch.zeros_like(score)
            if relative is not None:
                table, qoff, koff = relative
                bias = bias + table[h, qoff[qt] + koff[kt]]
            if distance is not None:
                d = evaluate([vals[qo[qt] + ko[kt]] for vals, qo, ko in distance])
                bias = bias + coef[h] * d
            spatial = (q_idx >= n_cls) & (kv_idx >= n_cls)
            score = score + torch.where(spatial, bias, torch.zeros_like(bias))
        if keep is not None:
            valid = keep[b, kv_idx] if per_sample else keep[0, kv_idx]
            score = torch.where(valid, score, torch.full_like(score, float("-inf")))
        return score

    return mod
