"""Global attention at climate resolution: time and peak memory against the number of tokens.

Every configuration runs in a fresh Python process (what a user running one map waits for), on
a global lat/lon layout of ``N`` patch tokens (GridFormer dim 64, depth 2, 4 heads, one
sample, float32), and reports:

- ``first_forward_s`` / ``first_forward_peak_gib``: the first forward pass in the process,
  including the position-bias setup, and the process's peak resident memory (VmHWM) after it;
- ``forward_s``: a later forward pass (best of ``repeats``);
- ``maps_s``: a forward pass that also returns the attention rows of ``queries`` query tokens
  per layer, and ``maps_peak_gib`` the peak after it;
- with ``--train``: ``train_step_s`` / ``train_peak_gib`` for one forward + backward + SGD step
  (field head, MSE), without and with ``checkpoint_blocks``.

CPU peaks are the child's VmHWM from ``/proc/self/status`` (``ru_maxrss`` if unavailable);
CUDA peaks are ``torch.cuda.max_memory_allocated``. Run::

    .venv/bin/python benchmarks/bench_attention_memory.py --json results.json
    .venv/bin/python benchmarks/bench_attention_memory.py --tokens 2048,16200 --positions geodesic

``run(...) -> dict`` does the same from Python.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

__all__ = ["GRIDS", "run"]

#: Token counts and their (lat, lon) patch grids: 2k, 8k, 16,200 (0.25° with patch 8) and 32k.
GRIDS = {2048: (32, 64), 8192: (64, 128), 16200: (90, 180), 32768: (128, 256)}


def _peak_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Any, device: str) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _child(config: dict[str, Any]) -> dict[str, Any]:
    """One configuration, measured in this (fresh) process."""
    import numpy as np
    import torch

    from gridformer.model import GridFormer, GridFormerConfig
    from gridformer.tokenize import TokenLayout

    device, n = config["device"], int(config["tokens"])
    patch = 2
    grid = GRIDS.get(n) or _grid_for(n)
    layout = TokenLayout.for_grid((grid[0] * patch, grid[1] * patch), patch_size=patch,
                                  dims=("lat", "lon"))
    cfg = GridFormerConfig(in_features=patch * patch, out_features=patch * patch, dim=64,
                           depth=2, heads=4, position=config["position"],
                           attention_kernel=config["kernel"],
                           checkpoint_blocks=bool(config.get("checkpoint", False)))
    torch.manual_seed(0)
    model = GridFormer(cfg).to(device)
    with torch.no_grad():  # trained-looking position terms (the zero init would be trivial)
        for name, p in model.named_parameters():
            if not p.any():
                p.normal_(0.0, 2.0 if name.endswith("strength") else 1.0)
    tokens = torch.randn(1, layout.n_tokens, cfg.in_features, device=device)
    result: dict[str, Any] = {"tokens": layout.n_tokens, "grid": list(grid), **config}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    result["setup_peak_gib"] = _peak(device)
    if config.get("train"):
        return {**result, **_train(model, tokens, layout, device)}
    model.eval()
    with torch.no_grad():
        result["first_forward_s"], _ = _timed(lambda: model(tokens, layout), device)
        result["first_forward_peak_gib"] = _peak(device)
        times = [_timed(lambda: model(tokens, layout), device)[0]
                 for _ in range(config["repeats"])]
        result["forward_s"] = min(times)
        rng = np.random.default_rng(0)
        queries = np.sort(rng.choice(layout.n_tokens, config["queries"], replace=False))
        maps = [_timed(lambda: model(tokens, layout, return_attention=queries), device)
                for _ in range(config["repeats"])]
        result["maps_s"] = min(t for t, _ in maps)
        result["maps_shape"] = list(maps[0][1].attention[0].shape)
        result["maps_peak_gib"] = _peak(device)
    result["maps_over_forward"] = result["maps_s"] / result["forward_s"]
    if device.startswith("cuda"):
        result["attention_tflops"] = _flops(cfg, layout.n_tokens) / result["forward_s"] / 1e12
    return result


def _train(model: Any, tokens: Any, layout: Any, device: str) -> dict[str, Any]:
    import torch

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    target = torch.randn_like(tokens)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(tokens, layout).prediction, target)
        loss.backward()
        opt.step()

    first, _ = _timed(step, device)
    second, _ = _timed(step, device)
    return {"train_first_step_s": first, "train_step_s": second, "train_peak_gib": _peak(device)}


def _peak(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    return _peak_gib()


def _flops(cfg: Any, n: int) -> float:
    """Matmul FLOPs of the attention steps of one forward: q k^T and A v per layer and head."""
    return cfg.depth * 2 * (2.0 * n * n * cfg.dim)


def _grid_for(n: int) -> tuple[int, int]:
    lat = round(math.sqrt(n / 2))
    return lat, n // lat


def _measure(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its JSON line is the result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(config)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return {**config, "error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(tokens: tuple[int, ...] = (2048, 8192, 16200, 32768),
        positions: tuple[str, ...] = ("none", "geodesic", "relative"),
        kernels: tuple[str, ...] = ("auto",), *, queries: int = 100, repeats: int = 2,
        train: bool = False, device: str = "cpu", timeout: float = 900.0) -> dict[str, Any]:
    """Measure every (tokens, position, kernel) in its own process; returns a JSON-ready dict."""
    import torch

    rows = []
    for n in tokens:
        for position in positions:
            for kernel in kernels:
                base = {"tokens": n, "position": position, "kernel": kernel, "device": device,
                        "queries": queries, "repeats": repeats}
                rows.append(_measure(base, timeout))
                if train:
                    for ckpt in (False, True):
                        rows.append(_measure({**base, "train": True, "checkpoint": ckpt},
                                             timeout))
    return {
        "benchmark": "attention_memory",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "results": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="2048,8192,16200,32768")
    parser.add_argument("--positions", default="none,geodesic,relative")
    parser.add_argument("--kernels", default="auto")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="also time training steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", help="write the results here ('-' = stdout only)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    result = run(tuple(int(t) for t in args.tokens.split(",")),
                 tuple(args.positions.split(",")), tuple(args.kernels.split(",")),
                 queries=args.queries, repeats=args.repeats, train=args.train,
                 device=args.device, timeout=args.timeout)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json and args.json != "-":
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
