"""One attention layer with a learned relative bias, forward + backward, by every kernel torch has.

The relative-bias training step on CUDA is 1.17-1.37x ``nn.TransformerEncoder`` (H100,
2026-11-27 18:40-18:51; issue 12 asks for <= 1.1x; ``benchmarks/RESULTS.md``, "GPU, third lent
session", holds this probe's numbers and what they say). This probe times the attention
alone, at the training benchmark's size (batch 32, 4 heads, 1,024 tokens, head dim 32, bf16),
so that a lent GPU says in one short run which kernel the model should use:

* ``flash, no bias``: the encoder's kernel (the reference; no bias, no bias gradient);
* ``sdpa + bias (default dispatch)``: what GridFormer ran on CUDA before 2026-11-27 18:36
  (the bias gathered from the clipped table, as a ``(1, H, N, N)`` additive mask that needs a
  gradient; the model's path now is the unclipped two-step row below);
* the same pinned to each SDPA backend (efficient, cuDNN, math), one row each (an error is
  recorded, not raised);
* ``flex, table score_mod``: the bias read from the ``(H, K)`` table inside FlexAttention;
* ``explicit``: ``softmax(q k^T + bias) v`` written out, float32 softmax;
* the ``return_attention`` path before and now: ``maps: explicit softmax, forward +
  backward`` and ``maps: fused output + weights beside`` (a loss on the output only);
* where the relative step's extra time goes, each the default dispatch with one part changed:
  ``sdpa + bias, presorted table gradient`` (the table's gradient summed over offsets presorted
  once per layout with ``segment_reduce``, instead of the gather's backward, an ``index_add_``
  of ``N^2`` values into ``(2M+1)^2`` entries per head), ``sdpa + bias, unclipped two-step
  gather`` (the table spread over every unclipped offset first, as the model does off the
  CPU, so the backward's atomic adds land on 1,089 entries, at most N each), ``sdpa + bias
  leaf`` (a bias that needs a gradient but comes from no table: no gather backward; no table
  gradient) and
  ``sdpa + frozen bias`` (no bias gradient at all).

Every variant's outputs and gradients (q, k, v and the table) are compared with the explicit
float32 reference (not the bias-free flash row, which computes another function).
Milliseconds are CUDA-event times, median of ``--repeats`` after warm-up.

Run: ``python benchmarks/gpu_bias_probe.py [--json PATH] [--device cuda|cpu]`` (``cpu``, small
sizes: a check of the plumbing; the CUDA-only rows are then skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchmarks._uninstalled  # noqa: F401 - gridformer from this checkout if not installed
from benchmarks._common import write_json
from gridformer.model.flex import _compiled as compiled_flex
from gridformer.model.position import (
    gather_relative_bias,
    relative_index,
    unclipped_relative_index,
)
from gridformer.tokenize import TokenLayout

Inputs = dict[str, torch.Tensor]
# the module (the package re-exports its function under the same name)
attention_module = importlib.import_module("gridformer.model.attention")


def make_inputs(batch: int, heads: int, side: int, head_dim: int, device: str,
                dtype: torch.dtype, seed: int = 0) -> Inputs:
    """q, k, v ``(B, H, N, hd)``; the table ``(H, K)``, the relative index ``(N, N)``, and
    ``order`` ``(N^2,)`` / ``lengths`` ``(K,)``: the index sorted by offset, each offset's count.
    """
    generator = torch.Generator().manual_seed(seed)
    n, max_offset = side * side, 8
    width = 2 * max_offset + 1
    offsets = torch.as_tensor(TokenLayout.for_grid((side, side), periodic=True).offsets())

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    out = {name: rand(batch, heads, n, head_dim) for name in ("q", "k", "v")}
    out["table"] = (0.5 * torch.randn(heads, width * width, generator=generator)).to(device)
    out["index"] = relative_index(offsets, (1, 1), max_offset).to(device)  # (N, N) int64
    flat = out["index"].flatten()  # the presorted gradient's layout, made once as a model would
    out["order"] = torch.argsort(flat, stable=True)  # (N^2,)
    out["lengths"] = torch.bincount(flat, minlength=width * width)  # (K,)
    # the model's CUDA layout: each pair's column in a table of every offset present, and
    # each such column's clipped table column
    wide, fold = unclipped_relative_index(offsets, (1, 1), max_offset)
    out["unclipped_index"], out["fold"] = wide.to(device), fold.to(device)  # (N, N), (K',)
    return out


def _bias(inp: Inputs, dtype: torch.dtype) -> torch.Tensor:
    """The bias gathered from the clipped table (``gather_relative_bias``): an
    ``index_select``, whose backward is an ``index_add_`` (atomic adds on CUDA; offsets clipped
    at ``max_offset`` crowd the edge entries: at 32 x 32 tokens and ``max_offset=8`` a corner
    entry takes ~8 % of the pairs)."""
    bias = gather_relative_bias(inp["table"], inp["index"])  # (H, N, N)
    return bias.to(dtype).unsqueeze(0)  # (1, H, N, N)


def explicit(inp: Inputs) -> torch.Tensor:
    q, k, v = inp["q"], inp["k"], inp["v"]
    logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1) + _bias(inp, q.dtype)  # (B,H,N,N)
    return torch.softmax(logits.float(), -1).to(v.dtype) @ v  # (B, H, N, hd)


class _PresortedGather(torch.autograd.Function):
    """``table[:, index]`` whose backward sums the gradient per offset in a presorted order."""

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, index: torch.Tensor, order: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(order, lengths)
        return table[:, index]  # (H, N, N)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        order, lengths = ctx.saved_tensors
        grouped = grad.reshape(grad.shape[0], -1)[:, order].t()  # (N^2, H), by offset
        summed = torch.segment_reduce(grouped, "sum", lengths=lengths, axis=0)  # (K, H)
        return summed.t().contiguous(), None, None, None


def _unclipped_bias(inp: Inputs, dtype: torch.dtype) -> torch.Tensor:
    """The same bias gathered in two steps: the table spread over every unclipped offset
    ``(H, K')``, then the pairs from that, as ``GridFormer`` gathers it off the CPU
    (``unclipped_relative_index``). The backward's ``index_add_`` then spreads the ``N^2``
    values over ``K'`` entries (33^2 = 1,089 on the periodic 32 x 32 grid, at most N = 1,024
    pairs each, not 82,944 on a clipped corner), and a small second one folds ``K'`` into
    ``K``."""
    bias = gather_relative_bias(inp["table"], inp["unclipped_index"], inp["fold"])  # (H, N, N)
    return bias.to(dtype).unsqueeze(0)  # (1, H, N, N)


def _presorted_bias(inp: Inputs, dtype: torch.dtype) -> torch.Tensor:
    bias = _PresortedGather.apply(inp["table"], inp["index"], inp["order"], inp["lengths"])
    return bias.to(dtype).unsqueeze(0)  # (1, H, N, N)


def sdpa(backend: SDPBackend | None,
         bias: Callable[[Inputs, torch.dtype], torch.Tensor] | None = _bias
         ) -> Callable[[Inputs], torch.Tensor]:
    def run(inp: Inputs) -> torch.Tensor:
        mask = None if bias is None else bias(inp, inp["q"].dtype)
        pin = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
        with pin:
            return F.scaled_dot_product_attention(inp["q"], inp["k"], inp["v"], attn_mask=mask)

    return run


def flex_table(inp: Inputs) -> torch.Tensor:
    table, index = inp["table"], inp["index"]

    def score_mod(score: torch.Tensor, b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor,
                  kv_idx: torch.Tensor) -> torch.Tensor:
        return score + table[h, index[q_idx, kv_idx]]

    return compiled_flex()(inp["q"], inp["k"], inp["v"], score_mod=score_mod)


def explicit_bias(inp: Inputs) -> torch.Tensor:
    """The ``return_attention`` path before: the explicit softmax, forward and backward."""
    out, _weights = attention_module._explicit(inp["q"], inp["k"], inp["v"],
                                               _bias(inp, inp["q"].dtype), None, dropout_p=0.0,
                                               scale=None)
    return out  # (B, H, N, hd)


def fused_beside_weights(inp: Inputs) -> torch.Tensor:
    """The ``return_attention`` path now (on a GPU): the fused output, the weights from a
    separate softmax beside it (a loss on the output never runs their backward)."""
    out, weights = attention_module._fused_and_weights(
        inp["q"], inp["k"], inp["v"], _bias(inp, inp["q"].dtype), None, dropout_p=0.0,
        scale=None)
    inp["_weights"] = weights  # kept as the model keeps its maps, until the step ends
    return out


def variants(device: str) -> dict[str, Callable[[Inputs], torch.Tensor]]:
    rows: dict[str, Callable[[Inputs], torch.Tensor]] = {
        "flash, no bias": sdpa(SDPBackend.FLASH_ATTENTION if device == "cuda" else None,
                               bias=None),
        "sdpa + bias (default dispatch)": sdpa(None),
        "sdpa + bias, efficient": sdpa(SDPBackend.EFFICIENT_ATTENTION),
        "sdpa + bias, cudnn": sdpa(SDPBackend.CUDNN_ATTENTION),
        "sdpa + bias, math": sdpa(SDPBackend.MATH),
        "flex, table score_mod": flex_table,
        "explicit": explicit,
        "sdpa + bias, presorted table gradient": sdpa(None, bias=_presorted_bias),
        "sdpa + bias, unclipped two-step gather": sdpa(None, bias=_unclipped_bias),
        "sdpa + bias leaf": sdpa(None, bias=lambda inp, dtype:
                                 _bias(inp, dtype).detach().requires_grad_()),
        "sdpa + frozen bias": sdpa(None, bias=lambda inp, dtype: _bias(inp, dtype).detach()),
        "maps: explicit softmax, forward + backward": explicit_bias,
        "maps: fused output + weights beside": fused_beside_weights,
    }
    if device != "cuda":  # these backends and FlexAttention's backward are CUDA-only
        for name in ("sdpa + bias, efficient", "sdpa + bias, cudnn", "flex, table score_mod"):
            rows.pop(name)
    return rows


def _fresh(inp: Inputs) -> Inputs:
    out = {name: t.detach().clone().requires_grad_() for name, t in inp.items()
           if t.is_floating_point()}
    return {**inp, **out}  # the integer layout tensors as they are


def _grads(fn: Callable[[Inputs], torch.Tensor], inp: Inputs, grad_out: torch.Tensor
           ) -> dict[str, torch.Tensor]:
    leaves = _fresh(inp)
    out = fn(leaves)
    out.backward(grad_out)
    grads = {name: leaves[name].grad for name in ("q", "k", "v", "table")}
    return {"out": out.detach(), **grads}


@contextlib.contextmanager
def _timer(device: str) -> Iterator[Callable[[], float]]:
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        result: list[float] = []
        yield lambda: result[0]
        end.record()
        torch.cuda.synchronize()
        result.append(start.elapsed_time(end))
    else:
        result = []
        begin = time.perf_counter()
        yield lambda: result[0]
        result.append(1e3 * (time.perf_counter() - begin))


def probe(device: str = "cuda", repeats: int = 20, *, batch: int = 32, heads: int = 4,
          side: int = 32, head_dim: int = 32) -> dict[str, Any]:
    """Time and check every variant; one row each (``error`` instead where it failed)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    inp = make_inputs(batch, heads, side, head_dim, device, dtype)
    grad_out = torch.randn_like(inp["q"])
    ref_inp = {name: (t.float() if t.is_floating_point() else t) for name, t in inp.items()}
    reference = _grads(explicit, ref_inp, grad_out.float())
    rows = []
    for name, fn in variants(device).items():
        row: dict[str, Any] = {"variant": name}
        try:
            got = _grads(fn, inp, grad_out)  # warm-up (compiles flex) and the check
            if name != "flash, no bias":  # (without the bias it is another function)
                row["max_abs_error"] = {
                    key: None if got[key] is None else
                    float((got[key].float() - reference[key]).abs().max())
                    for key in reference}
            times = []
            for _ in range(repeats):
                leaves = _fresh(inp)
                with _timer(device) as elapsed:
                    fn(leaves).backward(grad_out)
                times.append(elapsed())
            row.update(ms_median=statistics.median(times), ms_min=min(times))
        except Exception as error:  # one backend missing must not hide the others
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        rows.append(row)
    base = next((r.get("ms_median") for r in rows if r["variant"] == "flash, no bias"), None)
    for row in rows:
        if base and "ms_median" in row:
            row["vs_flash_no_bias"] = row["ms_median"] / base
    return {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "torch": torch.__version__, "dtype": str(dtype).removeprefix("torch."),
            "shape": {"batch": batch, "heads": heads, "tokens": side * side,
                      "head_dim": head_dim}, "repeats": repeats, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", metavar="PATH", default="-", help="output ('-' = stdout)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; --device cpu checks the plumbing", file=sys.stderr)
        return 2
    small = {} if args.device == "cuda" else {"batch": 2, "side": 8}
    write_json(probe(args.device, args.repeats, **small), args.json)  # atomic; "-": stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
