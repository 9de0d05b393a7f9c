"""``fit``: the training loop (AdamW, warmup + cosine, clipping, AMP on CUDA, checkpoints, DDP).

Reproducibility: the batches of epoch ``e`` are a permutation drawn from ``seed + e``
(:class:`~torch.utils.data.DistributedSampler`, also in single-process runs), so step ``s`` always
sees the same batch; torch's global RNG (dropout) is seeded with ``seed`` at the start and saved
in checkpoints. Resuming from a checkpoint therefore reproduces an uninterrupted run bitwise on
CPU.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, Dataset, DistributedSampler

from gridformer._progress import progress_bar, progress_enabled
from gridformer.training import distributed
from gridformer.training._batches import Split, batch_loss, evaluate_split
from gridformer.training.allocator import tune_cpu_malloc
from gridformer.training.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "History",
    "NonFiniteLossError",
    "evaluate",
    "fit",
    "resolve_device",
    "warmup_cosine",
]


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite (names the step and batch)."""


@dataclass
class History:
    """Metrics recorded by :func:`fit` (one entry per optimiser step, or per evaluation)."""

    step: list[int] = field(default_factory=list)  # optimiser step (0-based)
    epoch: list[int] = field(default_factory=list)  # epoch of each step
    train_loss: list[float] = field(default_factory=list)  # batch loss at each step
    lr: list[float] = field(default_factory=list)  # learning rate used at each step
    val_step: list[int] = field(default_factory=list)  # step after which val ran
    val_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)  # mean train loss per full epoch
    seconds: float = 0.0  # wall time of the (last) fit call

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON / checkpoint friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> History:
        return cls(**values)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else through :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        msg = f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        raise ValueError(msg) from None


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor for :class:`torch.optim.lr_scheduler.LambdaLR`: linear warmup to 1 over
    ``warmup_steps``, then a half cosine towards 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def fit(
    model: nn.Module,
    train_data: Dataset | tuple[Any, Any],
    *,
    layout: Any,
    loss: str | Callable[..., Tensor] = "mse",
    steps: int | None = None,
    epochs: int | None = None,
    lr: float = 1e-3,
    batch_size: int = 32,
    val_data: Dataset | tuple[Any, Any] | None = None,
    val_layout: Any | None = None,
    warmup_steps: int | None = None,
    weight_decay: float = 0.01,
    grad_clip: float | None = 1.0,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    seed: int = 0,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    metadata: dict[str, Any] | None = None,
) -> History:
    """Train ``model`` on ``(inputs (N, D), target)`` pairs; returns the :class:`History`.

    Parameters
    ----------
    model
        A GridFormer or baseline: ``model(tokens, layout, mask=...) -> output.prediction``.
    train_data, val_data
        Map-style datasets of pairs, or tuples ``(inputs (S, N, D), targets (S, ...))``.
    layout
        The ``TokenLayout`` of the inputs (passed to the model). If ``layout.valid`` has one row
        per training sample, each batch gets its rows as ``mask`` (model and loss), and those
        rows alone mask the batch.
    val_layout
        Layout of ``val_data`` when its ``valid`` rows differ from the training ones
        (default: ``layout``).
    loss
        "mse", "lat_weighted_mse" (latitudes from ``layout.centers()``), "cross_entropy", or a
        callable ``(prediction, target[, mask]) -> scalar``.
    steps, epochs
        Training length: exactly one of them.
    lr, weight_decay
        AdamW settings (weight decay on >= 2-D parameters only, nanoGPT style).
    batch_size
        Samples per step (per process under torchrun).
    warmup_steps
        Linear warmup length; default 5% of the steps. Then cosine decay to 0.
    grad_clip
        Max global gradient norm (None: no clipping).
    device
        "auto" (CUDA if available), "cpu", "cuda", ... On the CPU, glibc's malloc is set to
        keep freed attention buffers for reuse (:func:`~gridformer.training.tune_cpu_malloc`:
        the whole process, for good; ``GRIDFORMER_CPU_MALLOC=0`` leaves it alone), as
        ``gridformer train`` does.
    amp
        bfloat16 autocast; default on for CUDA. Ignored on CPU.
    seed
        Seeds the batch order and torch's global RNG (dropout). Stored in checkpoints.
    checkpoint_path
        Where checkpoints go; may contain ``{step}`` (e.g. ``"ckpt_{step}.pt"``). Written every
        ``checkpoint_every`` steps and at the end.
    resume_from
        A checkpoint to continue from (model, optimizer, scheduler, RNG, step, history).
    progress
        tqdm bar with the loss; default: :func:`gridformer._progress.progress_enabled`
        (terminals and Jupyter, never when ``CI`` is set).
    metadata
        Plain JSON-able data stored in every checkpoint under ``"metadata"``: what
        :func:`~gridformer.training.load_model` needs to use the model on new data (tokenizer
        settings, variables, normalisation, grid; see
        :func:`gridformer.training.data.load_pairs`).

    Raises
    ------
    NonFiniteLossError
        (a ValueError) when the loss is NaN/inf, naming the step, epoch and batch index.
    ValueError
        ``steps``/``epochs``/``batch_size`` not integers >= 1, ``lr`` not positive, an unknown
        ``device``, inputs and targets of different lengths, a prediction that does not fit
        the targets, or ``GRIDFORMER_CPU_MALLOC`` set to something other than 0 or 1.
    """
    _check_length(steps, epochs, batch_size, lr)
    started = time.perf_counter()
    train = Split.build(train_data, "train_data", layout, loss)
    if len(train.dataset) == 0:
        msg = "train_data is empty"
        raise ValueError(msg)
    val = None
    if val_data is not None:
        val = Split.build(val_data, "val_data", layout if val_layout is None else val_layout,
                          loss)

    device = resolve_device(device)
    if device.type == "cpu":  # before any process group exists: its errors leave none open
        tune_cpu_malloc()  # attention buffers reused, not re-faulted every step
    ctx, device = distributed.setup(device)
    bar: Any = progress_bar(total=0, enabled=False)
    net = None
    try:
        use_amp = device.type == "cuda" and amp is not False
        sampler = DistributedSampler(train.dataset, num_replicas=ctx.world, rank=ctx.rank,
                                     shuffle=True, seed=seed)
        per_epoch = math.ceil(len(sampler) / batch_size)
        total = steps if steps is not None else epochs * per_epoch
        warmup = round(0.05 * total) if warmup_steps is None else warmup_steps

        model.to(device)
        optimizer, scheduler = _optimizer(model, lr, weight_decay, warmup, total)
        history, start = _restore(resume_from, model, optimizer, scheduler, seed)
        net = distributed.wrap(model, ctx, device)

        def checkpoint(step: int) -> None:
            if checkpoint_path is None or not ctx.is_main:
                return
            save_checkpoint(str(checkpoint_path).format(step=step), model, optimizer=optimizer,
                            scheduler=scheduler, step=step, seed=seed,
                            history=history.to_dict(), metadata=metadata)

        show = progress_enabled() if progress is None else progress
        bar = progress_bar(total=total, initial=start, desc="train", enabled=show and ctx.is_main)
        batches: list[list[int]] = []
        for step in range(start, total):
            epoch, b = divmod(step, per_epoch)
            if b == 0 or not batches:
                sampler.set_epoch(epoch)
                batches = list(BatchSampler(sampler, batch_size, drop_last=False))
            loss_value = _train_step(
                net, train, batches[b], optimizer=optimizer, scheduler=scheduler,
                grad_clip=grad_clip, device=device, amp=use_amp, ctx=ctx, history=history,
                where=f"step {step} (epoch {epoch}, batch {b}", lr=lr)
            end_of_epoch = b == per_epoch - 1
            _record(history, step, epoch, loss_value, end_of_epoch=end_of_epoch)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
            if val is not None and (end_of_epoch or step == total - 1):
                history.val_step.append(step)
                history.val_loss.append(evaluate_split(net, val, batch_size=batch_size,
                                                       device=device, amp=use_amp))
            if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < total:
                checkpoint(step + 1)
        history.seconds = time.perf_counter() - started
        checkpoint(total)
        ctx.synchronize()
    finally:
        bar.close()
        net = None  # release the DDP wrapper (its reducer uses the process group) before ending it
        ctx.close()
    return history


def _record(history: History, step: int, epoch: int, loss: float, *, end_of_epoch: bool
            ) -> None:
    """Append one step's loss to ``history`` (and the epoch's mean at its last step)."""
    history.step.append(step)
    history.epoch.append(epoch)
    history.train_loss.append(loss)
    if end_of_epoch:
        losses = [v for v, e in zip(history.train_loss, history.epoch, strict=True) if e == epoch]
        history.epoch_loss.append(float(np.mean(losses)))


def _check_length(steps: Any, epochs: Any, batch_size: Any, lr: Any) -> None:
    """Refuse a training length, batch size or learning rate that cannot work."""
    if (steps is None) == (epochs is None):
        msg = (
            f"pass exactly one of steps= or epochs= (got steps={steps}, "
            f"epochs={epochs})"
        )
        raise ValueError(msg)
    for name, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, numbers.Integral) or value < 1):
            msg = f"{name}={value!r} must be an integer >= 1"
            raise ValueError(msg)
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        msg = f"lr={lr!r} must be a positive finite number"
        raise ValueError(msg)


def _optimizer(model: nn.Module, lr: float, weight_decay: float, warmup: int, total: int
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay on >= 2-D parameters only) and its warmup + cosine schedule."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total))
    return optimizer, scheduler


def _restore(resume_from: str | os.PathLike[str] | None, model: nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: Any, seed: int
             ) -> tuple[History, int]:
    """The history and first step: from a checkpoint (RNG included), or fresh with ``seed``."""
    if resume_from is None:
        torch.manual_seed(seed)
        return History(), 0
    state = load_checkpoint(resume_from, model, optimizer=optimizer, scheduler=scheduler,
                            restore_rng=True)
    history = History.from_dict(state["history"]) if state["history"] else History()
    return history, state["step"]


def _train_step(net: nn.Module, train: Split, index: list[int], *,
                optimizer: torch.optim.Optimizer, scheduler: Any, grad_clip: float | None,
                device: torch.device, amp: bool, ctx: distributed.DistributedContext,
                history: History, where: str, lr: float) -> float:
    """One optimiser step on the batch ``index``; returns the loss averaged over processes.

    Records the learning rate used in ``history.lr``. ``where`` ("step s (epoch e, batch b")
    and ``lr`` only serve the message of a non-finite loss.
    """
    net.train()
    value = batch_loss(net, train, index, device=device, amp=amp)
    finite = bool(torch.isfinite(value))
    if not ctx.all_true(finite, device):  # every rank stops, none waits in all-reduce
        what = f"{value.item()}" if not finite else "non-finite on another process"
        msg = (
            f"loss is {what} at {where}, samples {index[:8]}{'...' if len(index) > 8 else ''}"
            f"); lower lr={lr} or check the data for NaN/inf"
        )
        raise NonFiniteLossError(msg)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    history.lr.append(optimizer.param_groups[0]["lr"])
    optimizer.step()
    scheduler.step()
    return ctx.mean(float(value.item()), device)


def evaluate(model: nn.Module, data: Dataset | tuple[Any, Any], *, layout: Any,
             loss: str | Callable[..., Tensor] = "mse", batch_size: int = 32,
             device: str | torch.device = "auto", amp: bool = False) -> float:
    """Mean loss of ``model`` over ``data`` (in order, eval mode), weighted by batch size.

    ``layout.valid`` may have one row per sample of ``data`` (each batch then gets its rows as
    ``mask``), or one row shared by all. The batches go through the same function as the
    training steps of :func:`fit`.
    """
    split = Split.build(data, "data", layout, loss)
    return evaluate_split(model, split, batch_size=batch_size, device=resolve_device(device),
                          amp=amp)

