"""``gridformer train --config cfg.yaml``: train a model on next-state pairs from a config file.

The config (YAML or JSON) has three sections::

    data:       # see gridformer.training.data: a NetCDF path or a solver run
      solver: {equation: heat, params: {diffusivity: 0.1}, grid: [32, 32], steps: 40, samples: 4}
      lead: 1
      patch_size: 1
      val_fraction: 0.2
    model:      # kind: gridformer (default) | local_cnn | fno; preset: tiny | small | stencil;
      preset: tiny        # any GridFormerConfig field overrides the preset; in/out_features and
      position: relative  # ndim default to the data's
    training:   # keyword arguments of gridformer.training.fit
      steps: 200
      lr: 0.001
      batch_size: 16

Writes ``DIR/checkpoint.pt`` (every ``checkpoint_every`` steps and at the end) and
``DIR/history.json``, both atomically; ``--json`` gets the standard result record. Runs under
torchrun (DistributedDataParallel, gloo on CPU, nccl on GPU; only rank 0 writes files)::

    torchrun --nproc_per_node=2 -m gridformer train --config cfg.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from gridformer.cli.common import UsageError, add_output_arguments, write_result

__all__ = ["DEFAULT_OUT", "build_model", "read_config", "register", "run"]

DEFAULT_OUT = Path("gridformer-out") / "train"

_SECTIONS = {"data", "model", "training"}
_FIT_KEYS = {"steps", "epochs", "lr", "batch_size", "warmup_steps", "weight_decay", "grad_clip",
             "device", "amp", "seed", "loss", "checkpoint_every", "resume_from", "progress"}


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a GridFormer (or baseline) on a NetCDF or solver-generated dataset",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE",
                   help="YAML or JSON file with data / model / training sections")
    add_output_arguments(p, out_help="folder for checkpoint.pt and history.json "
                                     f"(default: {DEFAULT_OUT})")
    p.set_defaults(func=run)


def read_config(path: Path) -> dict[str, Any]:
    """Read a YAML/JSON config and check its top-level sections."""
    if not path.is_file():
        msg = f"config file {str(path)!r} does not exist"
        raise FileNotFoundError(msg)
    import yaml

    text = path.read_text()
    try:
        config = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        msg = f"config {str(path)!r} is not valid {kind}: {error}"
        raise ValueError(msg) from None
    if not isinstance(config, dict):
        msg = f"config {str(path)!r} must be a mapping with sections {sorted(_SECTIONS)}"
        raise TypeError(msg)
    unknown = sorted(set(config) - _SECTIONS)
    if unknown or "data" not in config:
        msg = f"config sections {unknown or 'missing data'}: expected {sorted(_SECTIONS)}"
        raise ValueError(msg)
    return config


def build_model(spec: dict[str, Any], *, features: int, layout: Any) -> Any:
    """Build a GridFormer / LocalCNN / FNO from the ``model`` section for this data."""
    from gridformer.model import FNO, SMALL, STENCIL, TINY, GridFormer, GridFormerConfig, LocalCNN

    spec = dict(spec)
    kind = spec.pop("kind", "gridformer")
    ndim = len(layout.patch_grid_shape)
    if kind in ("local_cnn", "fno"):
        cls = LocalCNN if kind == "local_cnn" else FNO
        in_f, out_f = spec.pop("in_features", features), spec.pop("out_features", features)
        return cls(in_f, out_f, ndim=spec.pop("ndim", ndim), **spec)
    if kind != "gridformer":
        msg = f"model.kind={kind!r} is not one of ['gridformer', 'local_cnn', 'fno']"
        raise ValueError(msg)
    presets = {"tiny": TINY, "small": SMALL, "stencil": STENCIL}
    preset = spec.pop("preset", "tiny")
    if preset not in presets:
        msg = f"model.preset={preset!r} is not one of {sorted(presets)}"
        raise ValueError(msg)
    base = presets[preset].to_dict()
    base.update(in_features=features, out_features=features, ndim=ndim,
                reference_grid=tuple(layout.patch_grid_shape))
    base.update(spec)
    return GridFormer(GridFormerConfig.from_dict(base))


def run(args: argparse.Namespace) -> int:
    """Train as the config says; write the checkpoint, history and result record."""
    import torch

    from gridformer._io import write_json
    from gridformer.training import fit, resolve_device, tune_cpu_malloc
    from gridformer.training.checkpoint import model_config
    from gridformer.training.data import load_pairs

    started = time.perf_counter()
    config = read_config(args.config)
    training = dict(config.get("training") or {})
    unknown = sorted(set(training) - _FIT_KEYS)
    if unknown:
        msg = f"unknown training keys {unknown}; valid: {sorted(_FIT_KEYS)}"
        raise UsageError(msg)
    out = args.out or DEFAULT_OUT
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # checked before training, not when the checkpoint is written
        msg = f"--out={str(out)!r} must be a folder, but {str(blocking)!r} is a file"
        raise UsageError(msg)
    pairs = load_pairs(dict(config["data"]))
    malloc = None
    if resolve_device(training.get("device", "auto")).type == "cpu":
        malloc = tune_cpu_malloc()  # reuse freed attention buffers (GRIDFORMER_CPU_MALLOC=0: off)
    torch.manual_seed(int(training.get("seed", 0)))  # model initialisation
    model = build_model(dict(config.get("model") or {}), features=pairs.source["features"],
                        layout=pairs.layout)
    history = fit(model, pairs.train, layout=pairs.layout, val_data=pairs.val,
                  val_layout=pairs.val_layout, metadata=pairs.metadata,
                  checkpoint_path=out / "checkpoint.pt", **training)

    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    write_json(history.to_dict(), out / "history.json")
    metrics = {
        "final_train_loss": history.train_loss[-1] if history.train_loss else None,
        "first_train_loss": history.train_loss[0] if history.train_loss else None,
        "final_val_loss": history.val_loss[-1] if history.val_loss else None,
        "steps": len(history.step),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(history.seconds, 3),
        "data": pairs.source,
        "model": model_config(model),
        "checkpoint": str(out / "checkpoint.pt"),
        "history": str(out / "history.json"),
        "cpu_malloc": malloc,
    }
    write_result(args.json, command="train", config=config, metrics=metrics, started=started)
    loss = metrics["final_train_loss"]
    val = metrics["final_val_loss"]
    print(f"trained {metrics['steps']} steps: train loss {loss:.4g}"
          + (f", val loss {val:.4g}" if val is not None else "") + f"; wrote {out}")
    return 0

