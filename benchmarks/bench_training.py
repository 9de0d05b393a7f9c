"""One training step of GridFormer against ``nn.TransformerEncoder`` of the same size.

The step is forward, MSE loss, backward and an AdamW update, on 1,024 tokens (a periodic
32 x 32 grid, patch 1), ``in_features = out_features = 16``, dim 128, depth 4, 4 heads, MLP
ratio 4 (GELU), pre-norm, no dropout, one sample per step on the CPU. The peer is
``nn.TransformerEncoder`` with the same embedding, final norm and head, and no position term.

Cases (milliseconds per step, lower is better), for GridFormer's default relative position
bias (learned, so its logits need a gradient: on the CPU, whose fused kernel gives a mask none,
the step runs :mod:`gridformer.model.table_attention`, which reads the bias from its small
per-grid table; on CUDA, ``scaled_dot_product_attention`` with the bias as an additive mask)
and for ``position="none"`` (no mask: the same fused kernel as the peer):

* the fused step vs ``nn.TransformerEncoder`` (target: <= 1.1x);
* the step with ``return_attention=True`` (the weights every analysis needs) vs the fused
  step (target: <= 1.5x): on the CPU, for both positions, :mod:`gridformer.model.table_attention`
  (which returns the weights its backward reads); on CUDA the fused output with a
  separate softmax beside it for the weights;
* on the CPU, the relative rows again at a batch of 8 (each layer's attention is then 128 MiB,
  above glibc's largest mmap threshold: see :func:`gridformer.training.tune_cpu_malloc`);
* for the relative bias only, a peer computing the same function (no target): the same
  ``nn.TransformerEncoder`` given a learned relative-bias table of the same size through its
  ``mask`` argument, gathered straight from the clipped table and copied per sample to
  ``(B H, N, N)`` as ``nn.MultiheadAttention`` takes it (:class:`_RelativeBiasEncoder`, what a
  user of plain PyTorch would write; GridFormer shares one ``(1, H, N, N)`` bias with the
  batch, and off the CPU gathers it through every unclipped offset). The encoder without any
  position term is the issue's peer; this row says how much of the gap is the bias itself.

On the CPU the rows run again in a fresh process after
:func:`gridformer.training.tune_cpu_malloc` (glibc keeps freed ``N x N`` buffers for reuse, as
``gridformer train`` sets it on the CPU), both sides alike; their cases end in "malloc tuned".

On CUDA (``device="cuda"``) both run under bf16 autocast with a batch of 32, and the rows add
the achieved TFLOP/s (model FLOPs: 3x the forward matmuls and attention products).

Run alone: ``python benchmarks/bench_training.py [--quick] [--device cuda] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gridformer import GridFormer, GridFormerConfig, TokenLayout
from gridformer.model.position import relative_index

if __package__:
    from benchmarks._common import compare, row, skipped_row, write_json
else:  # python benchmarks/bench_training.py
    from _common import compare, row, skipped_row, write_json  # type: ignore[no-redef]

GRID, FEATURES, DIM, DEPTH, HEADS = (32, 32), 16, 128, 4, 4
CPU_BATCH = 8  # the second CPU batch size (the first is one sample)


class _Encoder(nn.Module):
    """``nn.TransformerEncoder`` with GridFormer's embedding, final norm and head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(FEATURES, DIM)
        layer = nn.TransformerEncoderLayer(DIM, HEADS, 4 * DIM, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, DEPTH, norm=nn.LayerNorm(DIM),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(DIM, FEATURES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)))  # (B, N, F)


class _RelativeBiasEncoder(_Encoder):
    """:class:`_Encoder` with a learned relative position bias passed as its attention mask.

    The table holds one logit per head and clipped offset ``(dy, dx)`` on the periodic grid
    (``(2 max_offset + 1)^2`` columns numbered as GridFormer numbers them,
    :func:`gridformer.model.position.relative_index`); each step
    gathers it to ``(B * H, N, N)`` for ``nn.MultiheadAttention``'s float ``attn_mask``.
    """

    def __init__(self, max_offset: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(HEADS, (2 * max_offset + 1) ** 2))
        offsets = torch.as_tensor(TokenLayout.for_grid(GRID, periodic=True).offsets())
        self.register_buffer("index", relative_index(offsets, (1, 1), max_offset))  # (N, N)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B = tokens.shape[0]
        bias = self.table[:, self.index]  # (H, N, N)
        mask = bias.expand(B, *bias.shape).reshape(B * HEADS, *bias.shape[1:])  # (B*H, N, N)
        return self.head(self.encoder(self.embed(tokens), mask=mask))  # (B, N, F)


def _step(model: nn.Module, forward: Callable[[], torch.Tensor], target: torch.Tensor,
          device: str) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
                else contextlib.nullcontext())

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = nn.functional.mse_loss(forward().float(), target)
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return step


def step_flops(batch: int, n: int = GRID[0] * GRID[1], dim: int = DIM, depth: int = DEPTH,
               mlp_ratio: int = 4) -> float:
    """Model FLOPs of one training step: 3x the forward matmuls (QKVO, MLP) and QK^T, AV."""
    per_layer = 2 * batch * n * dim * dim * (4 + 2 * mlp_ratio) + 4 * batch * n * n * dim
    return 3.0 * depth * per_layer


def _pair_rows(position: str, batch: int, repeats: int, device: str,
               kernel: str = "auto", same_work: bool = True) -> list[dict[str, Any]]:
    """Fused vs the peer, explicit vs fused (and, relative on the CPU, vs the same work)."""
    torch.manual_seed(0)
    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    tokens = torch.randn(batch, GRID[0] * GRID[1], FEATURES, device=device)
    target = torch.randn_like(tokens)
    config = GridFormerConfig(in_features=FEATURES, out_features=FEATURES, dim=DIM, depth=DEPTH,
                              heads=HEADS, mlp_ratio=4.0, position=position,
                              attention_kernel=kernel)
    model = GridFormer(config).to(device)
    peer = _Encoder().to(device)
    fused = _step(model, lambda: model(tokens, layout).prediction, target, device)
    explicit = _step(model, lambda: model(tokens, layout, return_attention=True).prediction,
                     target, device)
    encoder = _step(peer, lambda: peer(tokens), target, device)
    flops = step_flops(batch)

    def tflops(seconds: list[float]) -> float:
        return flops / min(seconds) / 1e12

    def ms(seconds: list[float]) -> list[float]:
        return [1e3 * s for s in seconds]

    # a batch on the CPU: three warm-up steps each, while glibc's heap grows to hold it
    warmup = 3 if batch > 1 and device == "cpu" else 1
    extra = {"batch": batch, "position": position, "attention_kernel": kernel}
    label = position if kernel == "auto" else f"{position}, attention_kernel={kernel}"
    if device == "cpu" and batch != 1:
        label += f", batch {batch}"
    ours, theirs = compare(fused, encoder, repeats, warmup)
    first = row(f"training step, position={label} (fused attention) vs "
                "nn.TransformerEncoder", ours=ms(ours), peer="torch.nn.TransformerEncoder",
                theirs=ms(theirs), work=0, units="ms per step", target=1.1,
                higher_is_better=False, achieved_TFLOP_per_s=tflops(ours),
                peer_TFLOP_per_s=tflops(theirs), **extra)
    with_maps, plain = compare(explicit, fused, repeats, warmup)
    second = row(f"training step, position={label}, return_attention=True vs the fused "
                 "step", ours=ms(with_maps), peer="GridFormer fused step", theirs=ms(plain),
                 work=0, units="ms per step", target=1.5, higher_is_better=False,
                 achieved_TFLOP_per_s=tflops(with_maps), peer_TFLOP_per_s=tflops(plain),
                 **extra)
    if position != "relative" or kernel != "auto" or not same_work:
        return [first, second]
    biased_peer = _RelativeBiasEncoder(config.max_relative_offset).to(device)
    biased = _step(biased_peer, lambda: biased_peer(tokens), target, device)
    ours, theirs = compare(fused, biased, repeats, warmup)
    third = row("training step, position=relative vs nn.TransformerEncoder with the same "
                "learned relative bias as its mask (same work; no target)", ours=ms(ours),
                peer="torch.nn.TransformerEncoder + relative-bias mask", theirs=ms(theirs),
                work=0, units="ms per step", higher_is_better=False, **extra)
    return [first, second, third]


def _batch_and_repeats(quick: bool, device: str) -> tuple[int, int]:
    return 32 if device.startswith("cuda") else 1, 2 if quick else 5


def _position_rows(quick: bool, device: str) -> list[dict[str, Any]]:
    """The rows of the module docstring: relative and none, each fused and with maps (on the
    CPU also relative at a batch of 8)."""
    batch, repeats = _batch_and_repeats(quick, device)
    rows = [*_pair_rows("relative", batch, repeats, device),
            *_pair_rows("none", batch, repeats, device)]
    if device == "cpu":  # a batch's (B, H, N, N) attention is larger than 32 MiB
        rows += _pair_rows("relative", CPU_BATCH, 2 if quick else 3, device, same_work=False)
    return rows


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Time the steps (see the module docstring) on ``device``."""
    batch, repeats = _batch_and_repeats(quick, device)
    results = _position_rows(quick, device)
    if device == "cpu":
        results += _tuned_malloc_rows(quick)
    if device.startswith("cuda"):  # the bias inside FlexAttention's compiled kernel
        try:
            results += _pair_rows("relative", batch, repeats, device, kernel="flex")
        except Exception as error:  # report it and keep the other rows
            results.append(skipped_row("training step, position=relative, "
                                       "attention_kernel=flex", "torch.nn.TransformerEncoder",
                                       f"{type(error).__name__}: {str(error)[:300]}"))
    return {"name": "training", "results": results,
            "settings": {"quick": quick, "repeats": repeats, "device": device, "batch": batch,
                         "tokens": GRID[0] * GRID[1], "dim": DIM, "depth": DEPTH,
                         "heads": HEADS, "positions": ["relative", "none"],
                         "step_GFLOP": step_flops(batch) / 1e9,
                         "torch_threads": torch.get_num_threads(),
                         "autocast": "bf16" if device.startswith("cuda") else None}}


def _tuned_malloc_rows(quick: bool) -> list[dict[str, Any]]:
    """The CPU rows in a fresh process with glibc's malloc tuned (it cannot be undone here)."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "tuned.json")
        command = [sys.executable, "-m", "benchmarks.bench_training", "--tuned-malloc",
                   "--json", out, *(["--quick"] if quick else [])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return [skipped_row("training steps, malloc tuned", "torch.nn.TransformerEncoder",
                                done.stderr.strip()[-300:])]
        with open(out) as file:
            return json.load(file)["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    parser.add_argument("--json", metavar="PATH", default="-", help="output file ('-' = stdout)")
    parser.add_argument("--tuned-malloc", action="store_true",
                        help="only the CPU rows, after gridformer.training.tune_cpu_malloc()")
    args = parser.parse_args()
    if not args.tuned_malloc:
        write_json(run(quick=args.quick, device=args.device), args.json)
        return
    from gridformer.training import tune_cpu_malloc

    os.environ["GRIDFORMER_CPU_MALLOC"] = "1"
    applied = tune_cpu_malloc()
    rows = _position_rows(args.quick, "cpu")
    for result in rows:
        result["case"] += ", malloc tuned"
        result["malloc"] = applied
    write_json({"name": "training", "results": rows}, args.json)


if __name__ == "__main__":
    sys.exit(main())
