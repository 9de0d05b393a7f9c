"""Dense attention with a learned relative bias read from its table: the CPU training path.

It serves forwards with gradients on (training steps) on the CPU in two cases
(:meth:`GridFormer._takes_table_path
<gridformer.model.gridformer.GridFormer._takes_table_path>`): a learned relative bias (with
or without the weights returned), and, with ``table=None``, logits without any position term
when the weights are returned (``return_attention=True``): the weights it returns are the
tensor its backward reads, so a step with attention maps costs what a step without them
costs.

On the CPU, ``scaled_dot_product_attention``'s fused kernel gives an additive mask no gradient,
so a learned relative bias needs the explicit ``softmax(q k^T * scale + bias)``. Written with
autograd that costs, per step, a gather of the ``(H, N', N')`` bias from the table, a copy of
it into every layer's logits, a sum of the layers' ``(H, N', N')`` bias gradients and a
scatter of that sum back into the table, on top of PyTorch's softmax backward and matrix
products in the orientation autograd picks.

:class:`TableBiasAttention` is the same arithmetic without those passes: the bias is added to
the logits straight from the small per-layout table (:func:`add_table_bias`), and the softmax
gradient and the table's gradient come out of one pass over the weights
(:func:`softmax_table_backward`); the weight-side products of the backward are taken as
``dO^T P`` and ``q^T dS`` (``(hd, N')`` results), which MKL runs faster than autograd's
``P^T dO`` and ``dS^T q``. Both passes run over chunks of a few (sample, head) slices
(:data:`_CHUNK_BYTES` of ``(N', N')`` products each): a chunk's matrix product, bias, softmax
and product with ``v`` (its gradient products and softmax backward in the backward) follow
one another while its products are still in the cache, and the backward's ``dL/dweights``
needs one chunk's buffer instead of a ``(B H, N', N')`` one. The weights and that buffer
come from :mod:`gridformer.model._weight_buffers`, kept from one step to the next (up to
1 GiB; :func:`release_weight_buffers` drops them) and handed out again only once nothing can
read them, so a step does not fault its attention memory in again even where glibc's malloc
is left at its defaults. Outputs and gradients equal the
reference :func:`gridformer.model.attention.attention` with the gathered bias (tested to float
tolerance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numba import get_num_threads
from torch import Tensor

from gridformer.model._table_kernels import (
    add_table_bias,
    softmax_backward,
    softmax_table_backward,
)
from gridformer.model._weight_buffers import release_weight_buffers, weight_buffer
from gridformer.model.attention import attention
from gridformer.model.bias import relative_entries
from gridformer.model.bias_tables import AxisTable

__all__ = [
    "RelativeTable",
    "TableBiasAttention",
    "TableIndex",
    "relative_table",
    "release_weight_buffers",
    "table_attention",
]

#: Row chunks per (sample, head) in the backward pass are chosen so that there are at least
#: this many parallel jobs per numba thread.
_JOBS_PER_THREAD = 2

#: Bytes of ``(N', N')`` products per chunk of (sample, head) slices: the forward and the
#: backward run over chunks this large, each chunk's passes one after another (two slices at
#: 1,024 tokens in float32; 8 MiB of weights and 8 MiB of their gradient fit a 32 MiB L3).
_CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class TableIndex:
    """Where the table entry of each (query, key) token pair sits (parameter-free).

    ``qoff`` ``(N,)`` and ``run_koff`` ``(R,)`` int64: the entry of query ``q`` and key
    ``r * run_len + j`` is ``qoff[q] + run_koff[r] + j`` (module docstring of
    :mod:`gridformer.model._table_kernels`), from ``columns.token_offsets()``.
    """

    qoff: np.ndarray
    run_koff: np.ndarray
    run_len: int
    columns: AxisTable  # (1, S): the relative-table column of each entry (K = no bias)

    @classmethod
    def from_columns(cls, columns: AxisTable) -> TableIndex:
        """Index of a layout's relative-column table (``BiasGeometry.columns``)."""
        if any(kind != "offset" for kind in columns.kinds):
            msg = f"relative columns are indexed by offsets on every axis, not {columns.kinds}"
            raise ValueError(msg)
        qoff, koff = (t.cpu().numpy().astype(np.int64) for t in columns.token_offsets())
        run_len = int(columns.grid[-1])
        run_koff = np.ascontiguousarray(koff[::run_len])
        expected = (run_koff[:, None] + np.arange(run_len)).reshape(-1)
        if not np.array_equal(koff, expected):  # offset tables step by one along the last axis
            msg = "the relative columns' key offsets do not run contiguously along the last axis"
            raise ValueError(msg)
        return cls(np.ascontiguousarray(qoff), run_koff, run_len, columns)


@dataclass(frozen=True)
class RelativeTable:
    """A learned relative bias as a per-layout table: what :func:`table_attention` reads.

    ``entries`` holds the bias of every table entry, ``(H, S)`` (gathered from the learned
    ``(H, K)`` table, so gradients reach it); ``index`` places the entries; ``n_cls`` class
    tokens sit first on the key axis and get no bias.
    """

    entries: AxisTable
    index: TableIndex
    n_cls: int

    @property
    def values(self) -> Tensor:
        """``(H, S)``: the bias of every table entry."""
        return self.entries.values


def relative_table(learned: Tensor, index: TableIndex, *, n_cls: int, dtype: torch.dtype
                   ) -> RelativeTable:
    """The per-layout table of a learned ``(H, K)`` relative bias (column ``K`` = no bias)."""
    return RelativeTable(relative_entries(index.columns, learned, dtype), index, n_cls)


def table_attention(q: Tensor, k: Tensor, v: Tensor, table: RelativeTable | None,
                    key_mask: Tensor | None = None, *, return_weights: bool = False
                    ) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(q k^T / sqrt(hd) + bias) v`` with the bias read from ``table``.

    Parameters
    ----------
    q, k, v
        ``(B, H, N', hd)`` on the CPU, float32 or float64.
    table
        The learned relative bias of this layout (:func:`relative_table`), or None: no bias
        (the same chunked passes, for weights the caller wants returned).
    key_mask
        ``(B, N')`` bool, True where a key may be attended to, or None.
    return_weights
        Also return the attention weights ``softmax(q k^T / sqrt(hd) + bias)``, ``(B, H, N',
        N')``: the tensor the backward reads (no copy; gradients may flow through it too;
        changing it in place makes a later backward refuse, as with any saved tensor).

    Returns
    -------
    ``(B, H, N', hdv)``, or that and the weights with ``return_weights``.

    Raises
    ------
    TypeError
        When q, k, v and the table are not all float32 or all float64 CPU tensors, or the
        key mask is not bool.
    ValueError
        When the shapes do not fit each other or the table's layout (names each shape).
    """
    tensors = {"q": q, "k": k, "v": v}
    if table is not None:
        tensors["table.values"] = table.values
    if not all(isinstance(t, Tensor) for t in tensors.values()):
        found = {name: type(t).__name__ for name, t in tensors.items()}
        msg = f"table_attention needs tensors for q, k, v (and the table); got {found}"
        raise TypeError(msg)
    dtypes = {t.dtype for t in tensors.values()}
    devices = {t.device.type for t in tensors.values()}
    if len(dtypes) != 1 or dtypes - {torch.float32, torch.float64} or devices != {"cpu"}:
        found = ", ".join(f"{name} {t.dtype} on {t.device}" for name, t in tensors.items())
        msg = (f"table_attention needs q, k, v (and the table) all float32 or all float64 "
               f"on the CPU; got {found}")
        raise TypeError(msg)
    _check_shapes(q, k, v, table, key_mask)
    if q.shape[0] == 0:  # an empty batch: the reference's shapes, without the passes
        bias = None if table is None else _dense_bias(table.values, table.index, table.n_cls)
        out, weights = attention(q, k, v, bias, key_mask, return_weights=True)
        return (out, weights) if return_weights else out
    values, index, n_cls = (None, None, 0) if table is None else (table.values, table.index,
                                                                  table.n_cls)
    out, weights = TableBiasAttention.apply(q, k, v, values, index, n_cls, key_mask)
    return (out, weights) if return_weights else out


def _check_shapes(q: Tensor, k: Tensor, v: Tensor, table: RelativeTable | None,
                  key_mask: Tensor | None) -> None:
    """Refuse shapes the compiled passes would read or write out of bounds."""
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.ndim != 4 or k.shape != q.shape or v.ndim != 4 or v.shape[:3] != q.shape[:3]:
        msg = (f"table_attention needs q and k of one (B, H, N', hd) shape and v of shape "
               f"(B, H, N', hdv); got {shapes}")
        raise ValueError(msg)
    n_keys = q.shape[2] if table is None else table.n_cls + len(table.index.qoff)
    heads = q.shape[1] if table is None else table.values.shape[0]
    if q.shape[1] != heads or q.shape[2] != n_keys:
        msg = (f"table_attention: the table holds H={heads} heads over N'={n_keys} keys "
               f"({table.n_cls} class token(s) + {len(table.index.qoff)} grid tokens); "
               f"got {shapes}")
        raise ValueError(msg)
    if key_mask is not None and (key_mask.dtype != torch.bool
                                 or tuple(key_mask.shape) != (q.shape[0], n_keys)):
        msg = (f"key_mask must be a bool tensor of shape (B, N') = {(q.shape[0], n_keys)}; "
               f"got {key_mask.dtype} {tuple(key_mask.shape)}")
        raise (TypeError if key_mask.dtype != torch.bool else ValueError)(msg)


class TableBiasAttention(torch.autograd.Function):
    """Autograd function behind :func:`table_attention` (module docstring)."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, values: Tensor | None,
                index: TableIndex | None, n_cls: int, key_mask: Tensor | None
                ) -> tuple[Tensor, Tensor]:
        B, H, N, hd = q.shape
        scale = 1.0 / math.sqrt(hd)
        qs = (q * scale).reshape(B * H, N, hd)  # (B H, N, hd)
        keys = k.reshape(B * H, N, hd)  # (B H, N, hd)
        vals = v.reshape(B * H, N, v.shape[-1])  # (B H, N, hdv)
        table = None if values is None else values.detach().contiguous().numpy()  # (H, S)
        masked = None
        if key_mask is not None:  # (B H, 1, N'): True where a key is masked out
            masked = (~key_mask)[:, None, None, :].expand(B, H, 1, N).reshape(B * H, 1, N)
        # outputs are tensors of their own, not views (a view made here could not be changed
        # in place): the weights, saved for the backward, and the output
        weights = weight_buffer((B, H, N, N), q.dtype)  # (B, H, N, N), kept for reuse
        out = v.new_empty(B, H, N, v.shape[-1])  # (B, H, N, hdv)
        flat_weights = weights.view(B * H, N, N)  # (B H, N, N)
        flat_out = out.view(B * H, N, -1)  # (B H, N, hdv)
        for part in _slice_chunks(B * H, N, q.element_size()):
            logits = flat_weights[part]  # (c, N, N): one chunk's products stay in cache
            torch.bmm(qs[part], keys[part].transpose(1, 2), out=logits)
            if table is not None:
                add_table_bias(logits.numpy(), table, index.qoff, index.run_koff,
                               index.run_len, n_cls, part.start % H)
            if masked is not None:
                logits.masked_fill_(masked[part], float("-inf"))
            # softmax in place (ATen's kernel reads each row before writing it; the tests
            # compare with the out-of-place softmax)
            torch.ops.aten._softmax.out(logits, -1, False, out=logits)
            torch.bmm(logits, vals[part], out=flat_out[part])  # (c, N, hdv)
        # the backward's row sums dO . O read a copy (N x hdv per head, cheap), so that the
        # caller may change the output in place as with any other op
        ctx.save_for_backward(q, k, v, values, weights, out.detach().clone())
        ctx.index, ctx.n_cls, ctx.scale, ctx.key_mask = index, n_cls, scale, key_mask
        ctx.set_materialize_grads(False)  # no (B, H, N, N) zeros for weights nobody used
        return out, weights

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor | None, grad_weights: Tensor | None
                 ) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: a backward that is differentiable
            return _reference_backward(ctx, grad_out, grad_weights)
        q, k, v, values, weights, out = ctx.saved_tensors
        B, H, N, hd = q.shape
        hdv = v.shape[-1]
        index = ctx.index
        if grad_out is None:  # only the weights were used
            grad_out = torch.zeros_like(out)
        qs = (q * ctx.scale).reshape(B * H, N, hd)  # (B H, N, hd)
        keys = k.reshape(B * H, N, hd)  # (B H, N, hd)
        vals = v.reshape(B * H, N, hdv)  # (B H, N, hdv)
        d_out = grad_out.reshape(B * H, N, hdv)  # (B H, N, hdv)
        flat_weights = weights.view(B * H, N, N)  # (B H, N, N)
        # sum_j P_ij dP_ij for the softmax backward: dO_i . O_i while dP = dO v^T; with the
        # weights' own gradient added to dP, it is summed per chunk below
        d_weights = None
        if grad_weights is None:
            row_dot = (d_out * out.view(B * H, N, -1)).sum(-1)  # (B H, N)
        else:
            d_weights = grad_weights.reshape(B * H, N, N)  # (B H, N, N)
            row_dot = q.new_empty(B * H, N)  # (B H, N)
        parts = _slice_chunks(B * H, N, q.element_size())
        size = parts[0].stop - parts[0].start
        grad = weight_buffer((size, N, N), q.dtype)  # (c, N, N): dL/dweights, then dL/dlogits
        rows = _row_chunks(size, N)
        table_grad = d_values = None  # one chunk's partial table gradients, and their sum
        if values is not None and ctx.needs_input_grad[3]:
            table_grad = q.new_empty(size, rows, values.shape[1])  # (c, C, S)
            d_values = q.new_zeros(H, values.shape[1])  # (H, S)
        d_q = q.new_empty(B * H, N, hd)  # (B H, N, hd)
        d_keys_t = q.new_empty(B * H, hd, N)  # (B H, hd, N)
        d_vals_t = q.new_empty(B * H, hdv, N)  # (B H, hdv, N)
        for part in parts:
            c = part.stop - part.start
            w, g = flat_weights[part], grad[:c]  # (c, N, N) each
            torch.bmm(d_out[part].transpose(1, 2), w, out=d_vals_t[part])  # (c, hdv, N)
            torch.bmm(d_out[part], vals[part].transpose(1, 2), out=g)  # (c, N, N)
            if d_weights is not None:
                g += d_weights[part]
                row_dot[part] = (w * g).sum(-1)  # (c, N)
            if table_grad is None:  # no table, or a frozen one
                softmax_backward(w.numpy(), g.numpy(), row_dot[part].numpy())
            else:  # each row chunk of a slice sums its own partial table gradient
                partial = table_grad[:c].zero_()  # (c, C, S)
                softmax_table_backward(w.numpy(), g.numpy(), row_dot[part].numpy(),
                                       partial.view(-1, values.shape[1]).numpy(),
                                       index.qoff, index.run_koff, index.run_len, ctx.n_cls)
                heads = torch.arange(part.start, part.stop) % H  # (c,)
                d_values.index_add_(0, heads, partial.sum(1))  # (H, S)
            torch.bmm(g, keys[part], out=d_q[part])  # (c, N, hd)
            torch.bmm(qs[part].transpose(1, 2), g, out=d_keys_t[part])  # (c, hd, N)
        return (d_q.mul_(ctx.scale).view(B, H, N, hd),
                d_keys_t.transpose(1, 2).view(B, H, N, hd),
                d_vals_t.transpose(1, 2).view(B, H, N, hdv), d_values, None, None, None)


def _reference_backward(ctx: Any, grad_out: Tensor | None, grad_weights: Tensor | None
                        ) -> tuple[Tensor | None, ...]:
    """Gradients from the dense-bias formula, as a graph (for double backward).

    Under ``create_graph=True`` the compiled backward would give gradients without a graph;
    this recomputes ``attention(q, k, v, bias)`` with the ``(1, H, N', N')`` bias gathered
    from the table and differentiates it with autograd, so second derivatives exist.
    """
    q, k, v, values, _weights, _out = ctx.saved_tensors
    bias = None if values is None else _dense_bias(values, ctx.index, ctx.n_cls)
    out, weights = attention(q, k, v, bias, ctx.key_mask, scale=ctx.scale, return_weights=True)
    used = [(t, g) for t, g in ((out, grad_out), (weights, grad_weights)) if g is not None]
    inputs = (q, k, v, values)
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    grads = iter(torch.autograd.grad([t for t, _ in used], wanted, [g for _, g in used],
                                     create_graph=True, allow_unused=True))
    return (*(next(grads) if t is not None and t.requires_grad else None for t in inputs),
            None, None, None)


def _dense_bias(values: Tensor, index: TableIndex, n_cls: int) -> Tensor:
    """``(1, H, N', N')``: the table's bias on every (query, key) pair, 0 on class tokens."""
    tokens = torch.arange(len(index.qoff))
    spatial = index.columns.with_values(values).rows(tokens)  # (H, N, N)
    return F.pad(spatial, (n_cls, 0, n_cls, 0))[None]


def _row_chunks(jobs: int, rows: int) -> int:
    """Row chunks per (sample, head) so that every numba thread gets a few jobs."""
    wanted = _JOBS_PER_THREAD * get_num_threads()
    return max(1, min(rows, -(-wanted // jobs)))


def _slice_chunks(slices: int, n: int, itemsize: int) -> list[slice]:
    """Runs of (sample, head) slices whose ``(c, N', N')`` products fill about
    :data:`_CHUNK_BYTES`: each chunk's products, softmax and matrix products follow one another
    while the chunk is in the cache (module docstring)."""
    size = max(1, min(slices, _CHUNK_BYTES // (n * n * itemsize)))
    return [slice(start, min(slices, start + size)) for start in range(0, slices, size)]
