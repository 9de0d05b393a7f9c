"""Checkpoints: everything needed to resume training bitwise, written atomically.

A checkpoint is a plain dict saved with :func:`torch.save` and read back with
``torch.load(..., weights_only=True)`` (tensors, numbers, strings, lists, dicts only)::

    format, model_class, config (dict), versions, seed, step,
    model (state dict), optimizer, scheduler, rng {"torch", "cuda"}, history, extra,
    metadata (plain JSON data: what using the model on new data needs; see
              gridformer.training.predictor)

:func:`~gridformer.training.predictor.load_model` turns a checkpoint back into a model that
takes and returns ``xr.Dataset``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

import gridformer
from gridformer._io import atomic_path

__all__ = [
    "FORMAT",
    "build_model",
    "load_checkpoint",
    "model_config",
    "read_checkpoint",
    "save_checkpoint",
    "unwrap",
]

FORMAT = "gridformer-checkpoint-1"
# config fields that may differ between a checkpoint and the model it is loaded into
# (dropout, and how attention is computed: the kernels give the same outputs)
_FREE_FIELDS = frozenset({"dropout", "attention_kernel", "attention_chunk", "checkpoint_blocks"})


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model)


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's config as a plain dict (dataclass configs via ``asdict``), or None."""
    config = getattr(unwrap(model), "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config) if isinstance(config, dict) else None


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None, step: int = 0, seed: int | None = None,
                    history: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint to ``path`` atomically (temp file + ``os.replace``).

    Stores the model class name and config dict, package versions, ``seed``, ``step``, the
    model / optimizer / scheduler state dicts, torch's CPU (and CUDA) RNG state, the training
    ``history`` so far, any ``extra`` (plain data only) and ``metadata``: JSON data describing
    how to feed the model (tokenizer, variables, normalisation, grid), read back by
    :func:`~gridformer.training.predictor.load_model`.

    Raises
    ------
    TypeError
        ``metadata`` that is not plain JSON data (dicts with string keys, lists, strings,
        numbers, booleans, None).
    """
    metadata = _plain_json("metadata", metadata)
    bare = unwrap(model)
    state = {
        "format": FORMAT,
        "model_class": type(bare).__name__,
        "config": model_config(bare),
        "versions": {"gridformer": gridformer.__version__, "torch": str(torch.__version__),
                     "python": platform.python_version()},
        "seed": seed,
        "step": int(step),
        "model": bare.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "history": history,
        "extra": extra or {},
        "metadata": metadata,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], model: nn.Module | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any | None = None,
                    restore_rng: bool = False, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``) and load it into the given objects.

    Parameters
    ----------
    path
        Checkpoint file from :func:`save_checkpoint`.
    model, optimizer, scheduler
        Objects to restore (each optional). The model's class and config must match the
        checkpoint's (``dropout`` may differ).
    restore_rng
        Also restore torch's global RNG state (for bitwise resumption).
    map_location
        Where tensors are loaded (``torch.load``'s argument).

    Returns
    -------
    The checkpoint dict (``step``, ``seed``, ``config``, ``history``, ...).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a gridformer checkpoint (unreadable, truncated, foreign format), or
        class/config/state incompatible with ``model``.
    """
    path = Path(path)
    state = _read(path, map_location)
    if model is not None:
        _check_compatible(path, state, unwrap(model))
        try:
            unwrap(model).load_state_dict(state["model"])
        except RuntimeError as error:
            msg = f"checkpoint {str(path)!r} does not fit the model: {error}"
            raise ValueError(msg) from None
    if optimizer is not None:
        if state["optimizer"] is None:
            msg = f"checkpoint {str(path)!r} holds no optimizer state"
            raise ValueError(msg)
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            msg = f"checkpoint {str(path)!r} holds no scheduler state"
            raise ValueError(msg)
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state


def build_model(state: dict[str, Any], *, where: str = "checkpoint") -> nn.Module:
    """Rebuild the model of a checkpoint dict (GridFormer, LocalCNN or FNO) in eval mode."""
    from gridformer.model import FNO, GridFormer, GridFormerConfig, LocalCNN

    kind, config = state["model_class"], dict(state["config"] or {})
    if kind == "GridFormer":
        model: nn.Module = GridFormer(GridFormerConfig.from_dict(config))
    elif kind in ("LocalCNN", "FNO"):
        cls = LocalCNN if kind == "LocalCNN" else FNO
        model = cls(config.pop("in_features"), config.pop("out_features"), **config)
    else:
        msg = (
            f"{where} holds a {kind}, which cannot be rebuilt; the known models are "
            f"GridFormer, LocalCNN and FNO"
        )
        raise ValueError(msg)
    model.load_state_dict(state["model"])
    return model.eval()


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (``torch.load(..., weights_only=True)``), checked.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a gridformer checkpoint (unreadable, truncated, foreign format).
    """
    return _read(Path(path), map_location)


def _plain_json(name: str, value: Any) -> Any:
    """``value`` through a JSON round trip: tuples become lists, numpy floats Python floats, so
    that ``torch.load(..., weights_only=True)`` reads it back."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        msg = (
            f"{name} must be plain JSON data (dicts with string keys, lists, strings, numbers, "
            f"booleans, None): {error}"
        )
        raise TypeError(msg) from None


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors for missing or foreign files."""
    if not path.is_file():
        msg = f"checkpoint {str(path)!r} does not exist"
        raise FileNotFoundError(msg)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip or torch errors of unreadable or unsafe files
        msg = (
            f"{str(path)!r} is not a readable gridformer checkpoint (format {FORMAT!r}): it may "
            f"be truncated, or not written by save_checkpoint ({type(error).__name__}: "
            f"{str(error)[:200]})"
        )
        raise ValueError(msg) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        msg = f"{str(path)!r} is not a gridformer checkpoint (format {FORMAT!r})"
        raise ValueError(msg)
    return state


def _check_compatible(path: Path, state: dict[str, Any], model: nn.Module) -> None:
    if state["model_class"] != type(model).__name__:
        msg = (
            f"checkpoint {str(path)!r} holds a {state['model_class']}, not a "
            f"{type(model).__name__}"
        )
        raise ValueError(msg)
    saved, current = state["config"], model_config(model)
    if saved is None or current is None:
        return
    keys = sorted((set(saved) | set(current)) - _FREE_FIELDS)
    diffs = [f"{k}={saved.get(k)!r} (checkpoint) vs {current.get(k)!r} (model)"
             for k in keys if _normalise(saved.get(k)) != _normalise(current.get(k))]
    if diffs:
        msg = (
            f"checkpoint {str(path)!r} was written for an incompatible config: "
            + "; ".join(diffs)
        )
        raise ValueError(msg)


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
