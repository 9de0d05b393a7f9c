"""Compiled (numba) passes that read a relative-position table ``(H, S)`` over the token grid.

The relative bias of query ``q`` and key ``k`` is ``table[h, qoff[q] + koff[k]]``
(:meth:`gridformer.model.bias_tables.AxisTable.token_offsets`). Along the last grid axis the
keys' ``koff`` rise by one, so the keys fall into ``R`` runs of ``run_len`` tokens (one grid
row each) whose table entries are contiguous: run ``r`` of query ``q`` starts at
``qoff[q] + run_koff[r]``. Both passes go through a row of logits run by run, with contiguous
slices on both sides, so LLVM vectorises them, and the table (a few thousand entries) stays in
cache: no ``(H, N, N)`` bias tensor is ever built.

Arrays: logits / weights ``(BH, N', N')`` with ``BH = B * H`` (head ``bh % H``, or a run of
``BH`` consecutive (sample, head) slices of such an array), the first
``n_cls`` rows and columns being class tokens (no bias); ``qoff`` ``(N,)``, ``run_koff``
``(R,)`` int64 with ``R * run_len = N``.
"""

from __future__ import annotations

from numba import njit, prange

__all__ = ["add_table_bias", "softmax_backward", "softmax_table_backward"]


@njit(inline="always")
def _add_run(dst, dst_start, src, src_start, n):  # pragma: no cover - jit
    """``dst[dst_start : dst_start + n] += src[src_start : src_start + n]`` (vectorised)."""
    out = dst[dst_start:dst_start + n]
    add = src[src_start:src_start + n]
    for j in range(n):
        out[j] += add[j]


@njit(inline="always")
def _softmax_row_backward(w, g, d):  # pragma: no cover - jit
    """``g = w * (g - d)`` in place over one row: dL/dweights to dL/dlogits."""
    for j in range(g.shape[0]):
        g[j] = w[j] * (g[j] - d)


@njit(parallel=True, fastmath=True, cache=True)
def add_table_bias(logits, table, qoff, run_koff, run_len, n_cls, head0):  # pragma: no cover - jit
    """``logits[bh, n_cls + q, n_cls + k] += table[(head0 + bh) % H, qoff[q] + koff[k]]`` in
    place (``head0``: the head of ``logits[0]``, when it is a slice of a ``(B H, N', N')``
    array)."""
    BH = logits.shape[0]
    H = table.shape[0]
    N = qoff.shape[0]
    R = run_koff.shape[0]
    for job in prange(BH * N):
        bh = job // N
        q = job - bh * N
        row = logits[bh, n_cls + q]
        entries = table[(head0 + bh) % H]
        base = qoff[q]
        for r in range(R):
            _add_run(row, n_cls + r * run_len, entries, base + run_koff[r], run_len)


@njit(parallel=True, fastmath=True, cache=True)
def softmax_table_backward(weights, grad, row_dot, table_grad, qoff, run_koff, run_len,
                           n_cls):  # pragma: no cover - jit
    """Softmax backward in place, and the table's gradient, in one pass.

    ``grad`` holds ``dL/dweights`` and becomes ``dL/dlogits = weights * (grad - row_dot)``,
    where ``row_dot[bh, i] = sum_j weights[bh, i, j] grad[bh, i, j]`` (computed by the
    caller: ``dO_i . O_i`` from the ``(N, hd)`` output when ``grad = dO v^T``). ``table_grad``
    ``(BH * C, S)`` (zeroed by the caller) receives ``dL/dlogits`` summed per table entry;
    the rows are split into ``C`` chunks per ``bh``, each with its own row of ``table_grad``
    so that parallel chunks never write the same entries (the caller sums the ``C * B``
    rows of each head).
    """
    BH, NQ = weights.shape[:2]
    R = run_koff.shape[0]
    C = table_grad.shape[0] // BH
    per_chunk = (NQ + C - 1) // C
    for job in prange(BH * C):
        bh = job // C
        chunk = job - bh * C
        acc = table_grad[job]
        for i in range(chunk * per_chunk, min(NQ, (chunk + 1) * per_chunk)):
            g = grad[bh, i]
            _softmax_row_backward(weights[bh, i], g, row_dot[bh, i])
            if i < n_cls:
                continue
            base = qoff[i - n_cls]
            for r in range(R):
                _add_run(acc, base + run_koff[r], g, n_cls + r * run_len, run_len)


@njit(parallel=True, fastmath=True, cache=True)
def softmax_backward(weights, grad, row_dot):  # pragma: no cover - jit
    """Softmax backward in place, without a table: ``grad`` (``dL/dweights``) becomes
    ``weights * (grad - row_dot)`` (``row_dot`` as in :func:`softmax_table_backward`)."""
    BH, NQ = weights.shape[:2]
    for job in prange(BH * NQ):
        bh = job // NQ
        i = job - bh * NQ
        _softmax_row_backward(weights[bh, i], grad[bh, i], row_dot[bh, i])
