"""Global attention at climate resolution: time and peak memory against the number of tokens.

Every configuration runs in a fresh Python process (what a user running one map waits for), on
a global lat/lon layout of ``N`` patch tokens (GridFormer dim 64, depth 2, 4 heads, one
sample, float32), and reports:

- ``first_forward_s`` / ``first_forward_peak_gib``: the first forward pass in the process,
  including the position-bias setup, and the process's peak resident memory (VmHWM) after it;
  ``first_forward_cpu_s`` the CPU seconds it used (all threads; a figure that other load on a
  shared machine disturbs less than wall time);
- ``forward_s`` / ``forward_cpu_s``: a later forward pass (best of ``repeats``);
- ``maps_s``: a forward pass that also returns the attention rows of ``queries`` query tokens
  per layer (``maps_over_forward`` = ``maps_s / forward_s``), ``maps_peak_gib`` the peak after;
- ``attention_step_s`` / ``attention_tflops``: one attention layer alone (projections, position
  bias and kernel), with the ``4 N² C`` FLOPs of ``q k^T`` and ``A v`` per second;
- with ``--train``: ``train_step_s`` / ``train_peak_gib`` for one forward + backward + SGD step
  (MSE on the field head), with and without ``checkpoint_blocks``.

CPU peaks are the child's VmHWM from ``/proc/self/status`` (``ru_maxrss`` if unavailable);
CUDA peaks are ``torch.cuda.max_memory_allocated`` (reset per configuration; ``--in-process``
runs every configuration in one process, which is how the GPU check saves start-up time).
``--check`` compares the kernels against the dense reference on the device first. Run::

    .venv/bin/python benchmarks/bench_attention_memory.py --json out.json --plot out.png
    .venv/bin/python benchmarks/bench_attention_memory.py --tokens 2048,16200 --positions geodesic

``run(...) -> dict`` does the same from Python; ``markdown(result)`` formats its table.
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

__all__ = ["GRIDS", "check", "markdown", "plot", "run"]

#: Token counts and their (lat, lon) patch grids: 2k, 8k, 16,200 (0.25° with patch 8) and 32k.
GRIDS = {2048: (32, 64), 8192: (64, 128), 16200: (90, 180), 32768: (128, 256)}
DIM, DEPTH, HEADS, PATCH = 64, 2, 4, 2


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


def _peak(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    return _peak_gib()


def _timed(fn: Any, device: str) -> tuple[float, float, Any]:
    """(wall s, CPU s, result) of ``fn()``, synchronising CUDA around it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _setup(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Layout, model (trained-looking position terms) and tokens of one configuration."""
    import torch

    from gridformer.model import GridFormer, GridFormerConfig
    from gridformer.tokenize import TokenLayout

    n = int(config["tokens"])
    grid = GRIDS.get(n) or (round(math.sqrt(n / 2)), n // round(math.sqrt(n / 2)))
    layout = TokenLayout.for_grid((grid[0] * PATCH, grid[1] * PATCH), patch_size=PATCH,
                                  dims=("lat", "lon"))
    cfg = GridFormerConfig(in_features=PATCH * PATCH, out_features=PATCH * PATCH, dim=DIM,
                           depth=DEPTH, heads=HEADS, position=config["position"],
                           attention_kernel=config["kernel"],
                           checkpoint_blocks=bool(config.get("checkpoint", False)))
    torch.manual_seed(0)
    model = GridFormer(cfg).to(config["device"])
    with torch.no_grad():  # the zero-initialised position terms would make the bias trivial
        for name, p in model.named_parameters():
            if not p.any():
                p.normal_(0.0, 2.0 if name.endswith("strength") else 1.0)
    tokens = torch.randn(1, layout.n_tokens, cfg.in_features, device=config["device"])
    return layout, model, tokens


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """One configuration, measured in this process (fresh, unless ``--in-process``)."""
    import numpy as np
    import torch

    device = config["device"]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    layout, model, tokens = _setup(config)
    result: dict[str, Any] = {**config, "tokens": layout.n_tokens,
                              "grid": list(layout.patch_grid_shape),
                              "setup_peak_gib": _peak(device)}
    if config.get("train"):
        kernel = model._kernel(layout.n_tokens, full=False)  # what "auto" resolves to
        return {**result, "kernel": kernel, **_train(model, tokens, layout, device)}
    model.eval()
    repeats = int(config.get("repeats", 2))
    with torch.no_grad():
        wall, cpu, _ = _timed(lambda: model(tokens, layout), device)
        result.update(first_forward_s=wall, first_forward_cpu_s=cpu,
                      first_forward_peak_gib=_peak(device))
        runs = [_timed(lambda: model(tokens, layout), device) for _ in range(repeats)]
        result.update(forward_s=min(r[0] for r in runs), forward_cpu_s=min(r[1] for r in runs))
        rng = np.random.default_rng(0)
        queries = np.sort(rng.choice(layout.n_tokens, int(config.get("queries", 100)),
                                     replace=False))
        maps = [_timed(lambda: model(tokens, layout, return_attention=queries), device)
                for _ in range(repeats)]
        result.update(maps_s=min(m[0] for m in maps), maps_cpu_s=min(m[1] for m in maps),
                      maps_shape=list(maps[0][2].attention[0].shape),
                      maps_peak_gib=_peak(device))
        result["maps_over_forward"] = result["maps_s"] / result["forward_s"]
        result.update(_attention_step(model, layout, device, repeats))
    return result


def _attention_step(model: Any, layout: Any, device: str, repeats: int) -> dict[str, Any]:
    """One attention layer (its own ``4 N² C`` matmul FLOPs per second)."""
    import torch

    n = layout.n_tokens
    kernel = model._kernel(n, full=False)
    geo = model._geometry(layout, torch.device(device), dense=kernel == "dense")
    ctx = model._context(geo, kernel, geo.key_mask, 0, torch.float32, False, None)
    x = torch.randn(1, n, DIM, device=device)
    attn = model.blocks[0].attn
    runs = [_timed(lambda: attn(x, ctx), device)[0] for _ in range(repeats + 1)][1:]
    step = min(runs)
    return {"attention_step_s": step, "attention_tflops": 4.0 * n * n * DIM / step / 1e12}


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

    first, _, _ = _timed(step, device)
    wall, cpu, _ = _timed(step, device)
    return {"train_first_step_s": first, "train_step_s": wall, "train_step_cpu_s": cpu,
            "train_peak_gib": _peak(device)}


def check(device: str, tokens: int = 2048, kernels: tuple[str, ...] = ("chunked", "flex")
          ) -> dict[str, float]:
    """Largest difference of each kernel's prediction from the dense reference on ``device``;
    ``.../grad`` keys: largest difference of the chunked kernel's parameter gradients (one
    training step's MSE loss), relative to the largest reference gradient."""
    import torch

    out = {}
    for position in ("geodesic", "relative"):
        base = {"tokens": tokens, "position": position, "device": device}
        layout, model, x = _setup({**base, "kernel": "dense"})
        with torch.no_grad():
            reference = model.eval()(x, layout).prediction
        for kernel in [k for k in kernels if k != "dense"]:
            _, other, _ = _setup({**base, "kernel": kernel})
            with torch.no_grad():
                pred = other.eval()(x, layout).prediction
            out[f"{position}/{kernel}"] = float((pred - reference).abs().max())
        if "chunked" not in kernels:
            continue
        grads = []
        for kernel in ("dense", "chunked"):
            _, net, _ = _setup({**base, "kernel": kernel})
            loss = torch.nn.functional.mse_loss(net.train()(x, layout).prediction,
                                                torch.ones_like(reference))
            loss.backward()
            grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
        scale = float(grads[0].abs().max())
        out[f"{position}/chunked/grad"] = float((grads[1] - grads[0]).abs().max()) / scale
    return out


def _measure(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its last output line is the result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(config)]
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return {**config, "error": f"exit {done.returncode}: {' | '.join(tail)}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "load_before": load, "load_after": os.getloadavg()[0]}


def run(tokens: tuple[int, ...] = (2048, 8192, 16200, 32768),
        positions: tuple[str, ...] = ("none", "geodesic", "relative"),
        kernels: tuple[str, ...] = ("chunked", "dense"), *, dense_max: int = 8192,
        queries: int = 100, repeats: int = 2, train: tuple[int, ...] = (),
        device: str = "cpu", in_process: bool = False, timeout: float = 900.0,
        progress: Any = None) -> dict[str, Any]:
    """Measure every (tokens, position, kernel); JSON-ready dict with a ``results`` list.

    The dense kernel (the N x N reference) runs only up to ``dense_max`` tokens; ``train``
    lists the token counts that also get training steps (geodesic and relative bias, with and
    without ``checkpoint_blocks``). ``progress(record)`` is called with the record so far
    after each configuration (the command line writes it, so a run cut short keeps its rows).
    """

    configs = []
    for n in tokens:
        for position in positions:
            for kernel in kernels:
                if kernel == "dense" and n > dense_max:
                    continue
                configs.append({"tokens": n, "position": position, "kernel": kernel,
                                "device": device, "queries": queries, "repeats": repeats})
    for n in train:
        for position in ("geodesic", "relative"):
            for ckpt in (False, True):
                configs.append({"tokens": n, "position": position, "kernel": "auto",
                                "device": device, "train": True, "checkpoint": ckpt})
    rows: list[dict[str, Any]] = []
    record = _record(device, rows)
    for config in configs:
        rows.append(measure(config) if in_process else _measure(config, timeout))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if progress is not None:
            progress({**record, "complete": False})
    return {**record, "complete": True}


def _record(device: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    return {
        "benchmark": "attention_memory",
        "model": {"dim": DIM, "depth": DEPTH, "heads": HEADS, "batch": 1, "dtype": "float32"},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": os.getloadavg(),
        "results": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    """The inference rows as a Markdown table (times in s, memory in GiB)."""
    head = ("| tokens | position | kernel | first forward s (CPU s) | peak GiB | forward s "
            "(CPU s) | 100-query maps s | maps / forward | attention TFLOP/s |\n"
            "|---:|---|---|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in result["results"]:
        if r.get("train"):
            continue
        if "error" in r:
            lines.append(f"| {r['tokens']} | {r['position']} | {r['kernel']} | {r['error']} "
                         f"| | | | | |")
            continue
        lines.append(
            f"| {r['tokens']:,} | {r['position']} | {r['kernel']} | "
            f"{r['first_forward_s']:.2f} ({r['first_forward_cpu_s']:.2f}) | "
            f"{r['first_forward_peak_gib']:.2f} | {r['forward_s']:.2f} "
            f"({r['forward_cpu_s']:.2f}) | {r['maps_s']:.2f} | {r['maps_over_forward']:.2f} | "
            f"{r['attention_tflops']:.3f} |")
    train = [r for r in result["results"] if r.get("train") and "error" not in r]
    if train:
        lines.append("\n| tokens | position | kernel | checkpoint_blocks | train step s (CPU s) "
                     "| peak GiB |\n|---:|---|---|---|---:|---:|")
        lines += [f"| {r['tokens']:,} | {r['position']} | {r['kernel']} | {r['checkpoint']} | "
                  f"{r['train_step_s']:.2f} ({r['train_step_cpu_s']:.2f}) | "
                  f"{r['train_peak_gib']:.2f} |" for r in train]
    return head + "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: str) -> None:
    """Peak memory and first-forward time against tokens (log-log), one line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    series: dict[tuple[str, str], list[dict]] = {}
    for r in result["results"]:
        if not r.get("train") and "error" not in r:
            series.setdefault((r["kernel"], r["position"]), []).append(r)
    for (kernel, position), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["tokens"])
        n = [r["tokens"] for r in rows]
        style = "--o" if kernel == "dense" else "-o"
        axes[0].plot(n, [r["first_forward_peak_gib"] for r in rows], style, ms=3,
                     label=f"{kernel} {position}")
        axes[1].plot(n, [r["first_forward_cpu_s"] for r in rows], style, ms=3)
    ticks = sorted({r["tokens"] for rows in series.values() for r in rows})
    for ax, label in zip(axes, ("peak memory (GiB)", "first forward (CPU s)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="tokens N", ylabel=label)
        ax.set_xticks(ticks, [f"{round(t / 1000, 1):g}k" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3, which="both")
    axes[0].set_yticks([0.25, 0.5, 1, 2, 4])
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, path)
    plt.close(fig)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="2048,8192,16200,32768")
    parser.add_argument("--positions", default="none,geodesic,relative")
    parser.add_argument("--kernels", default="chunked,dense")
    parser.add_argument("--dense-max", type=int, default=8192)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train", default="", help="token counts that get training steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--check", action="store_true", help="kernels vs dense on the device")
    parser.add_argument("--check-only", action="store_true", help="only the kernel check")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--plot", help="write the memory / time plot (PNG) here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    checked = check(args.device, kernels=tuple(args.kernels.split(","))) \
        if args.check or args.check_only else None
    if checked is not None:
        print(json.dumps({"check_max_abs_diff": checked}), file=sys.stderr, flush=True)
    if args.check_only:
        record = {**_record(args.device, []), "check_max_abs_diff": checked}
        if args.json:
            _write(args.json, json.dumps(record, indent=2) + "\n")
        return

    def progress(partial: dict[str, Any]) -> None:
        if args.json:
            _write(args.json, json.dumps({**partial, "check_max_abs_diff": checked}, indent=2))

    result = run(tuple(int(t) for t in args.tokens.split(",")),
                 tuple(args.positions.split(",")), tuple(args.kernels.split(",")),
                 dense_max=args.dense_max, queries=args.queries, repeats=args.repeats,
                 train=tuple(int(t) for t in args.train.split(",") if t),
                 device=args.device, in_process=args.in_process, timeout=args.timeout,
                 progress=progress)
    if checked is not None:
        result["check_max_abs_diff"] = checked
    text = json.dumps(result, indent=2)
    if not args.json:
        print(text)
    print(markdown(result))
    if args.json:
        _write(args.json, text + "\n")
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
