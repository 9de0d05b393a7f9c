"""The CUDA training step with each of its two CUDA-only choices switched off, in one run.

``bench_training``'s relative and bias-free steps (batch 32, 1,024 tokens, dim 128, depth 4,
bf16 autocast), fused and with ``return_attention=True``, under four settings:

* ``now``: the code as it is;
* ``explicit maps``: ``return_attention`` through the explicit softmax, forward and backward
  (now: the fused output with a separate softmax beside it for the weights,
  :func:`gridformer.model.attention._fused_and_weights`);
* ``clipped gather``: the relative bias gathered straight from the clipped table (now: through
  every unclipped offset first, ``_spread_relative_gather``, so the backward's atomic adds do not
  pile onto the clipped edge entries);
* ``both before``: both switched off (the code of the 08:06 H100 run).

Each setting's rows are ``bench_training``'s (the peer ``nn.TransformerEncoder`` and the fused
step are timed again beside it), so ratios compare within one setting and milliseconds across.
A discarded warm-up pass comes first (the first setting of the H100 run at fabb86c was ~25 %
slower than the same code in the run before it), and the settings run in ``--rounds`` rounds
(each round all four in turn), so drift shows as a difference between rounds.

Run: ``python benchmarks/gpu_training_ab.py [--device cuda|cpu] [--json PATH]`` (``cpu``: a
quick check of the plumbing; neither switch changes anything there, the CPU takes neither
path).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchmarks._uninstalled  # noqa: F401 - gridformer from this checkout if not installed
from benchmarks._common import write_json
from benchmarks.bench_training import _pair_rows

attention_module = importlib.import_module("gridformer.model.attention")
gridformer_module = importlib.import_module("gridformer.model.gridformer")

SETTINGS = {"now": (), "explicit maps": ("maps",), "clipped gather": ("gather",),
            "both before": ("maps", "gather")}


@contextlib.contextmanager
def switched_off(parts: tuple[str, ...]) -> Iterator[None]:
    saved = (attention_module._needs_grad, gridformer_module._spread_relative_gather)
    try:
        if "maps" in parts:  # the GPU's fused-beside path is taken only when this is True
            attention_module._needs_grad = lambda *tensors: False
        if "gather" in parts:
            gridformer_module._spread_relative_gather = lambda device: False
        yield
    finally:
        attention_module._needs_grad, gridformer_module._spread_relative_gather = saved


def run(device: str = "cuda", repeats: int = 5, rounds: int = 1,
        json_path: str | None = None) -> dict[str, Any]:
    """The rows of every setting and round; written to ``json_path`` after each setting (a
    run stopped by a time limit keeps what it measured)."""
    batch = 32 if device == "cuda" else 1
    out: dict[str, Any] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                           "torch": torch.__version__, "batch": batch, "repeats": repeats,
                           "rounds": rounds, "settings": {name: [] for name in SETTINGS}}
    _pair_rows("relative", batch, 2, device)  # warm-up, discarded
    for round_ in range(rounds):
        for name, parts in SETTINGS.items():
            with switched_off(parts):
                rows = [*_pair_rows("relative", batch, repeats, device, same_work=False),
                        *_pair_rows("none", batch, repeats, device)]
            out["settings"][name].append([
                {key: r.get(key) for key in ("case", "gridformer", "peer_value", "ratio",
                                             "target", "met", "achieved_TFLOP_per_s",
                                             "gridformer_stats", "peer_stats")} for r in rows])
            write_json(out, json_path)  # atomic, after each setting
            print(round_, name, [(r["case"][:50], round(r["gridformer"], 2),
                                  round(r["ratio"], 3)) for r in rows], file=sys.stderr,
                  flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the four settings")
    parser.add_argument("--json", metavar="PATH", default="-", help="output ('-' = stdout)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; --device cpu checks the plumbing", file=sys.stderr)
        return 2
    path = None if args.json == "-" else args.json
    result = run(args.device, args.repeats, args.rounds, path)
    if path is None:
        write_json(result, "-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
