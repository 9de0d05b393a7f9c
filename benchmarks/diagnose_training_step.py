"""Where the CPU training step with a learned relative bias spends its time beyond the peer's.

The step of :mod:`benchmarks.bench_training` (1,024 tokens, dim 128, depth 4, batch 1) in seven
variants, timed in turn in one process, each after ``tune_cpu_malloc()`` as ``gridformer
train`` runs on the CPU (milliseconds per step, min and median):

* ``encoder``: ``nn.TransformerEncoder``, no position term (the issue's peer);
* ``none``: GridFormer without a position term (the same fused kernel as the peer);
* ``none, explicit attention``: the same model with every attention call sent down the
  explicit softmax path (diagnostic only: the path a learned bias needs on the CPU, minus
  the bias);
* ``relative, table frozen``: the relative bias with its table not trained (the table path
  without the table's gradient; before it, the fused kernel with a float mask);
* ``relative``: the default, trained bias, read from its table by
  :mod:`gridformer.model.table_attention` (explicit softmax, no ``(H, N, N)`` bias tensor);
* ``relative, dense bias``: the same model with ``TABLE_ATTENTION`` off, the reference path
  (explicit path plus the bias gather, its gradient summed over layers and scattered into the
  table);
* ``encoder + relative-bias mask``: the peer given the same trained bias as its mask (same
  work).

Run: ``python benchmarks/diagnose_training_step.py [--repeats 12]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from gridformer import GridFormer, GridFormerConfig, TokenLayout
from gridformer.training import tune_cpu_malloc

if __package__:
    from benchmarks import bench_training as training
else:  # python benchmarks/diagnose_training_step.py
    import bench_training as training  # type: ignore[no-redef]

GRID, FEATURES = training.GRID, training.FEATURES


@contextlib.contextmanager
def explicit_attention() -> Iterator[None]:
    """Send every attention call of GridFormer's layers down the explicit softmax path."""
    layers = sys.modules["gridformer.model.layers"]
    fused = layers.attention

    def explicit(*args: Any, **kwargs: Any) -> Any:
        out, weights = fused(*args, **{**kwargs, "return_weights": True})
        return out, weights if kwargs.get("return_weights") else None

    layers.attention = explicit
    try:
        yield
    finally:
        layers.attention = fused


@contextlib.contextmanager
def dense_bias_path() -> Iterator[None]:
    """Train the relative bias through the dense ``(1, H, N, N)`` bias (the reference path)."""
    model = sys.modules["gridformer.model.gridformer"]
    before, model.TABLE_ATTENTION = model.TABLE_ATTENTION, False
    try:
        yield
    finally:
        model.TABLE_ATTENTION = before


def variants() -> dict[str, Callable[[], None]]:
    """One training step per variant of the module docstring."""
    torch.manual_seed(0)
    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    tokens = torch.randn(1, GRID[0] * GRID[1], FEATURES)
    target = torch.randn_like(tokens)

    def gridformer(position: str) -> GridFormer:
        return GridFormer(GridFormerConfig(in_features=FEATURES, out_features=FEATURES,
                                           dim=training.DIM, depth=training.DEPTH,
                                           heads=training.HEADS, mlp_ratio=4.0,
                                           position=position))

    def step_of(model: torch.nn.Module, forward: Callable[[], torch.Tensor]
                ) -> Callable[[], None]:
        return training._step(model, forward, target, "cpu")

    encoder, biased = training._Encoder(), training._RelativeBiasEncoder(max_offset=8)
    none, explicit, frozen, relative, dense = (gridformer(p) for p in
                                               ("none", "none", "relative", "relative",
                                                "relative"))
    frozen.relative.requires_grad_(False)

    def explicit_forward() -> torch.Tensor:
        with explicit_attention():
            return explicit(tokens, layout).prediction

    def dense_forward() -> torch.Tensor:
        with dense_bias_path():
            return dense(tokens, layout).prediction

    return {
        "encoder": step_of(encoder, lambda: encoder(tokens)),
        "none": step_of(none, lambda: none(tokens, layout).prediction),
        "none, explicit attention": step_of(explicit, explicit_forward),
        "relative, table frozen": step_of(frozen, lambda: frozen(tokens, layout).prediction),
        "relative": step_of(relative, lambda: relative(tokens, layout).prediction),
        "relative, dense bias": step_of(dense, dense_forward),
        "encoder + relative-bias mask": step_of(biased, lambda: biased(tokens)),
    }


def diagnose(repeats: int) -> dict[str, dict[str, float]]:
    """Milliseconds per step of each variant (two warm-up rounds, then ``repeats`` rounds)."""
    steps = variants()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats + 2):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= 2:
                times[name].append(1e3 * (time.perf_counter() - start))
    peer = min(times["encoder"])
    return {name: {"min_ms": min(t), "median_ms": statistics.median(t),
                   "min_vs_encoder": min(t) / peer} for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12, help="timed rounds (default 12)")
    args = parser.parse_args()
    os.environ.setdefault("GRIDFORMER_CPU_MALLOC", "1")
    malloc = tune_cpu_malloc()
    print(f"torch threads {torch.get_num_threads()}, malloc {malloc}")
    for name, t in diagnose(args.repeats).items():
        print(f"{name:30s} min {t['min_ms']:7.1f} ms  median {t['median_ms']:7.1f} ms  "
              f"{t['min_vs_encoder']:.2f}x the encoder")


if __name__ == "__main__":
    sys.exit(main())
